//! `data download`: fetch an official MovieLens zip from GroupLens, check its published MD5, unpack it
//! (atomically, refusing entries that would escape the target folder). URL and checksum are
//! overridable so tests can serve a zip from a loopback server.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::artifact::StagingDir;
use crate::error::{Error, Result};
use crate::progress::Progress;

/// The MovieLens releases `data download` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovieLens {
    /// MovieLens 100K (ml-100k.zip, ~5 MB).
    Ml100k,
    /// MovieLens 1M (ml-1m.zip, ~6 MB).
    Ml1m,
}

impl std::str::FromStr for MovieLens {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "movielens-100k" | "ml-100k" => Ok(MovieLens::Ml100k),
            "movielens-1m" | "ml-1m" => Ok(MovieLens::Ml1m),
            _ => Err(format!(
                "unknown dataset {s:?} (expected movielens-100k or movielens-1m)"
            )),
        }
    }
}

/// Where to fetch a zip from, its expected MD5, and the folder it unpacks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSource {
    /// http(s) URL of the zip.
    pub url: String,
    /// Expected lower-case hex MD5 of the zip (GroupLens publishes MD5s).
    pub md5: String,
    /// Name of the folder created under the target directory (the zip's top-level folder).
    pub folder: String,
}

impl MovieLens {
    /// The official GroupLens URL and published checksum.
    pub fn official(self) -> DownloadSource {
        match self {
            MovieLens::Ml100k => DownloadSource {
                url: "https://files.grouplens.org/datasets/movielens/ml-100k.zip".into(),
                md5: "0e33842e24a9c977be4e0107933c0723".into(),
                folder: "ml-100k".into(),
            },
            MovieLens::Ml1m => DownloadSource {
                url: "https://files.grouplens.org/datasets/movielens/ml-1m.zip".into(),
                md5: "c4d9eecfca2ab87c1945afe126590906".into(),
                folder: "ml-1m".into(),
            },
        }
    }
}

/// Downloads, verifies and unpacks `src` into `to/<folder>`; returns that folder. Nothing is left
/// behind on failure (and an existing folder is replaced only on success).
pub fn download(src: &DownloadSource, to: &Path, progress: &dyn Progress) -> Result<PathBuf> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    let dl_err = |m: String| Error::Download {
        url: src.url.clone(),
        problem: m,
    };
    let resp = ureq::get(&src.url)
        .timeout(std::time::Duration::from_secs(300))
        .call()
        .map_err(|e| match e {
            ureq::Error::Status(code, r) => dl_err(format!("HTTP {code} {}", r.status_text())),
            ureq::Error::Transport(t) => dl_err(t.to_string()),
        })?;
    let total = resp.header("Content-Length").and_then(|v| v.parse::<u64>().ok());
    progress.start(&format!("downloading {}", src.url), total);

    let final_dir = to.join(&src.folder);
    let stage = StagingDir::new(&final_dir)?;
    let zip_path = stage.path().join(".download.zip");
    let mut out = File::create(&zip_path).map_err(|e| Error::io(&zip_path, e))?;
    let mut reader = resp.into_reader();
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| dl_err(format!("reading the response: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(&zip_path, e))?;
        progress.inc(n as u64);
    }
    out.sync_all().map_err(|e| Error::io(&zip_path, e))?;
    drop(out);
    progress.finish();
    let got = hex::encode(hasher.finalize());
    if !got.eq_ignore_ascii_case(src.md5.trim()) {
        return Err(Error::Corrupt {
            file: PathBuf::from(&src.url),
            what: "md5",
            expected: src.md5.clone(),
            found: got,
        });
    }
    unzip(&zip_path, stage.path(), &src.folder, progress)?;
    std::fs::remove_file(&zip_path).map_err(|e| Error::io(&zip_path, e))?;
    stage.commit()?;
    Ok(final_dir)
}

/// Extracts `zip_path` into `dest`, dropping a leading `folder/` component from entry names.
fn unzip(zip_path: &Path, dest: &Path, folder: &str, progress: &dyn Progress) -> Result<()> {
    let zerr = |m: String| Error::Zip {
        file: zip_path.to_path_buf(),
        problem: m,
    };
    let f = File::open(zip_path).map_err(|e| Error::io(zip_path, e))?;
    let mut archive = zip::ZipArchive::new(f).map_err(|e| zerr(e.to_string()))?;
    progress.start("unpacking", Some(archive.len() as u64));
    for k in 0..archive.len() {
        let mut entry = archive.by_index(k).map_err(|e| zerr(e.to_string()))?;
        let name = entry
            .enclosed_name()
            .ok_or_else(|| zerr(format!("entry {:?} escapes the target folder", entry.name())))?;
        let rel = name.strip_prefix(folder).unwrap_or(&name).to_path_buf();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        } else if entry.is_symlink() {
            return Err(zerr(format!("entry {:?} is a symlink; refusing", entry.name())));
        } else {
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
            }
            let mut out = File::create(&target).map_err(|e| Error::io(&target, e))?;
            std::io::copy(&mut entry, &mut out).map_err(|e| zerr(format!("{}: {e}", rel.display())))?;
        }
        progress.inc(1);
    }
    progress.finish();
    Ok(())
}
