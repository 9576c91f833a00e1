//! Artifacts on disk that are never half-written: atomic file writes, staging directories swapped into
//! place, and `manifest.json` (kind, format version, counts, per-file checksums). Used by every crate that
//! writes an artifact (datasets, models, indexes), so a crash at any point leaves the previous one intact
//! and a corrupt or foreign directory is a clear error instead of a panic deep in a decoder.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// File name of the manifest inside every artifact directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Hex SHA-256 of a file's contents, streamed so large files do not need to fit in memory.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A name unique within this process and very likely across processes, for temp files and dirs.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn split_parent(path: &Path) -> Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("{}: not a file name", path.display())))?
        .to_string();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// fsyncs a directory so a rename inside it survives a crash.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one:
/// an [`AtomicFile`], fsync, rename over `path`, fsync the directory.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (out, mut f) = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io(out.temp_path(), e))?;
    f.sync_all().map_err(|e| Error::io(out.temp_path(), e))?;
    drop(f);
    out.commit()
}

/// What an output path must be when it already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// The rule for every output path (`--out`, artifacts): a symlink is followed to the path it names
/// (the new content replaces the link's target, and the link stays a link); an existing target
/// that is not a regular file (a directory, FIFO, device, socket — or, for an artifact, not a
/// directory) is refused, and so is a read-only one (no write permission bit set). Returns the
/// real path and the existing file's permissions, which the new file keeps.
fn output_target(path: &Path, kind: Kind) -> Result<(PathBuf, Option<fs::Permissions>)> {
    let mut real = path.to_path_buf();
    let mut hops = 0;
    while let Ok(m) = fs::symlink_metadata(&real) {
        if !m.file_type().is_symlink() {
            break;
        }
        hops += 1;
        if hops > 40 {
            return Err(Error::InvalidArgument(format!(
                "{}: too many levels of symbolic links",
                path.display()
            )));
        }
        let target = fs::read_link(&real).map_err(|e| Error::io(&real, e))?;
        real = if target.is_absolute() {
            target
        } else {
            real.parent().map_or_else(|| target.clone(), |p| p.join(&target))
        };
    }
    let shown = || {
        if real == path {
            path.display().to_string()
        } else {
            format!("{} (a symlink to {})", path.display(), real.display())
        }
    };
    let Ok(m) = fs::metadata(&real) else {
        return Ok((real, None));
    };
    let ft = m.file_type();
    let ok = match kind {
        Kind::File => ft.is_file(),
        Kind::Dir => ft.is_dir(),
    };
    if !ok {
        let what = file_kind(&ft);
        let want = match kind {
            Kind::File => "a regular file",
            Kind::Dir => "a directory",
        };
        return Err(Error::InvalidArgument(format!(
            "{} exists and is {what}, not {want}: refusing to replace it (choose another path)",
            shown()
        )));
    }
    if m.permissions().readonly() {
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            format!(" (mode {:o})", m.permissions().mode() & 0o7777)
        };
        #[cfg(not(unix))]
        let mode = String::new();
        return Err(Error::InvalidArgument(format!(
            "{} is read-only{mode}: refusing to replace it (make it writable, e.g. chmod u+w, or choose another path)",
            shown()
        )));
    }
    Ok((real, Some(m.permissions())))
}

fn file_kind(ft: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "a device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// One output file written under a temporary name beside it (`.NAME.tmp-PID-…`) and renamed into
/// place by [`AtomicFile::commit`]: readers see the old file or the complete new one; an error or a
/// drop before the commit removes the temporary; and a writer killed before its commit leaves a
/// temporary that the next writer of the same path removes (its pid is no longer alive).
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    parent: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary beside `path` (its directory is created if needed), after removing
    /// the temporaries of `path` that dead writers left.
    pub fn create(path: &Path) -> Result<(AtomicFile, File)> {
        let (path, keep) = output_target(path, Kind::File)?;
        let path = path.as_path();
        let (parent, name) = split_parent(path)?;
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let prefix = format!(".{name}.tmp-");
        if let Ok(entries) = fs::read_dir(&parent) {
            for e in entries.flatten() {
                let ours = e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix));
                if ours && is_abandoned(&e.path()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let tmp = parent.join(format!("{prefix}{}", unique_suffix()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        if let Some(perm) = keep {
            // The replaced file's mode is kept (a 600 file stays 600).
            let _ = file.set_permissions(perm);
        }
        Ok((
            AtomicFile {
                tmp,
                path: path.to_path_buf(),
                parent,
                committed: false,
            },
            file,
        ))
    }

    /// Where the content is being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary over the final path and fsyncs the directory. The caller has written
    /// and fsynced the file (`File::sync_all`) first.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.committed = true;
        fsync_dir(&self.parent)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// True while process `pid` exists (on Unix; elsewhere every pid counts as alive). A pid that exists
/// but belongs to another user counts as alive.
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if p <= 0 {
            return false;
        }
        // SAFETY: kill with signal 0 only checks for the process's existence.
        let rc = unsafe { libc::kill(p, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// The pid that created a temporary name of this module (`.NAME.staging-PID-…`, `.NAME.old-PID-…`,
/// `.NAME.tmp-PID-…`), or None for any other name.
pub fn temp_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    for marker in [".staging-", ".old-", ".tmp-"] {
        if let Some(at) = rest.rfind(marker) {
            let tail = &rest[at + marker.len()..];
            let mut it = tail.split('-');
            let pid = it.next()?.parse().ok()?;
            // pid-counter-nanos
            if it.clone().count() == 2 && it.all(|x| x.parse::<u64>().is_ok()) {
                return Some(pid);
            }
        }
    }
    None
}

/// True when `path` is a temporary left by this module whose writer is gone: its name carries the
/// pid of a process that no longer exists. Such a directory or file can never be committed and may
/// be deleted at once, whatever its age. The current process's own temporaries are never abandoned
/// (another thread may be writing them).
pub fn is_abandoned(path: &Path) -> bool {
    let Some(pid) = path.file_name().and_then(|n| n.to_str()).and_then(temp_owner) else {
        return false;
    };
    pid != std::process::id() && !pid_alive(pid)
}

/// Deletes the abandoned temporaries (see [`is_abandoned`]) of the artifact `final_dir`: its
/// staging and aside directories left in its parent by killed writers. Returns what was removed.
/// [`StagingDir::new`] calls this, so every artifact kind cleans up after a crash on its next write.
pub fn remove_abandoned(final_dir: &Path) -> Vec<PathBuf> {
    let Ok((parent, name)) = split_parent(final_dir) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(&parent) else {
        return Vec::new();
    };
    let old_prefix = format!(".{name}.old-");
    let prefixes = [format!(".{name}.staging-"), old_prefix.clone()];
    let mut removed = Vec::new();
    let mut abandoned: Vec<(PathBuf, bool)> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())))
        })
        .filter(|e| is_abandoned(&e.path()))
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    // Without RENAME_EXCHANGE a commit moves the old artifact aside before the new one moves in; a
    // writer killed in between left no artifact at all, and the aside copy is the previous one.
    if !final_dir.exists() {
        let aside = abandoned.iter().position(|(p, _)| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(old_prefix.as_str()))
        });
        if let Some(i) = aside {
            if fs::rename(&abandoned[i].0, final_dir).is_ok() {
                abandoned.remove(i);
            }
        }
    }
    for (p, is_dir) in abandoned {
        let r = if is_dir {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        if r.is_ok() {
            removed.push(p);
        }
    }
    removed
}

/// A hidden temporary directory beside the final artifact directory. Write everything into
/// [`StagingDir::path`], then [`StagingDir::commit`] swaps it into place atomically. Dropping it
/// without committing (an error, a panic) removes it, so a failed run leaves no output behind and the
/// previous artifact, if any, untouched.
#[derive(Debug)]
pub struct StagingDir {
    tmp: PathBuf,
    final_dir: PathBuf,
    parent: PathBuf,
    committed: bool,
}

impl StagingDir {
    /// Creates the staging directory next to `final_dir` (same filesystem, so the swap is a rename).
    /// The parent of `final_dir` is created if needed.
    pub fn new(final_dir: impl AsRef<Path>) -> Result<StagingDir> {
        let (final_dir, _) = output_target(final_dir.as_ref(), Kind::Dir)?;
        let (parent, name) = split_parent(&final_dir)?;
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        if final_dir.exists() && !final_dir.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not a directory",
                final_dir.display()
            )));
        }
        remove_abandoned(&final_dir);
        let tmp = parent.join(format!(".{name}.staging-{}", unique_suffix()));
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(StagingDir {
            tmp,
            final_dir,
            parent,
            committed: false,
        })
    }

    /// Where to write the artifact's files.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The directory the artifact will occupy after [`commit`](Self::commit).
    pub fn final_path(&self) -> &Path {
        &self.final_dir
    }

    /// fsyncs the staged files and swaps the staging directory into place. When `final_dir` already
    /// exists the swap is one `renameat2(RENAME_EXCHANGE)` on Linux (readers see old or new, never
    /// neither); on other systems or filesystems without it, the old directory is renamed aside first
    /// (a short window where `final_dir` is absent, but never a mix). The old contents are then removed.
    pub fn commit(mut self) -> Result<()> {
        sync_tree(&self.tmp)?;
        if self.final_dir.exists() {
            if !exchange(&self.tmp, &self.final_dir)? {
                let aside = self.parent.join(format!(
                    ".{}.old-{}",
                    self.final_dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    unique_suffix()
                ));
                fs::rename(&self.final_dir, &aside).map_err(|e| Error::io(&self.final_dir, e))?;
                fs::rename(&self.tmp, &self.final_dir).map_err(|e| Error::io(&self.final_dir, e))?;
                fsync_dir(&self.parent)?;
                self.committed = true;
                let _ = fs::remove_dir_all(&aside);
                return Ok(());
            }
            // After the exchange `tmp` holds the old artifact.
            fsync_dir(&self.parent)?;
            self.committed = true;
            let _ = fs::remove_dir_all(&self.tmp);
            Ok(())
        } else {
            fs::rename(&self.tmp, &self.final_dir).map_err(|e| Error::io(&self.final_dir, e))?;
            fsync_dir(&self.parent)?;
            self.committed = true;
            Ok(())
        }
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// fsyncs every regular file under `dir` and the directories themselves.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        let ft = entry.file_type().map_err(|e| Error::io(&p, e))?;
        if ft.is_dir() {
            sync_tree(&p)?;
        } else if ft.is_file() {
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&p, e))?;
        }
    }
    fsync_dir(dir)
}

/// Atomically exchanges two paths. Returns Ok(false) when the OS or filesystem does not support it.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("{}: NUL in path", a.display())))?;
    let cb = CString::new(b.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("{}: NUL in path", b.display())))?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(Error::io(b, err)),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> Result<bool> {
    Ok(false)
}

/// Size and checksum of one file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the contents.
    pub sha256: String,
}

/// `manifest.json`: what an artifact is, which format version wrote it, headline counts, and the
/// checksum of every file, so a reader can refuse a foreign, newer or corrupt artifact up front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Artifact kind, e.g. "dataset", "model", "index".
    pub kind: String,
    /// Format version of that kind; readers refuse newer versions.
    pub format_version: u32,
    /// RFC 3339 creation time (UTC, seconds).
    pub created_at: String,
    /// Headline counts (rows, users, items, ...).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Files relative to the artifact directory, with size and checksum.
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
    /// Kind-specific metadata (import options, split settings, model config, ...).
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl Manifest {
    /// A manifest for a new artifact, stamped with the current time.
    pub fn new(kind: &str, format_version: u32) -> Manifest {
        Manifest {
            kind: kind.to_string(),
            format_version,
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            counts: BTreeMap::new(),
            files: BTreeMap::new(),
            extra: serde_json::Value::Object(Default::default()),
        }
    }

    /// Hashes `dir/rel_name` and records it.
    pub fn add_file(&mut self, dir: &Path, rel_name: &str) -> Result<()> {
        let p = dir.join(rel_name);
        let bytes = fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
        let sha256 = sha256_file(&p)?;
        self.files
            .insert(rel_name.to_string(), FileEntry { bytes, sha256 });
        Ok(())
    }

    /// Writes `dir/manifest.json` atomically (pretty-printed, so people can read it).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| Error::ManifestInvalid {
            file: dir.join(MANIFEST_FILE),
            problem: e.to_string(),
        })?;
        text.push('\n');
        write_file_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())
    }

    /// Reads `dir/manifest.json` and checks that it is of `expected_kind` and a format version no newer
    /// than `supported_version`.
    pub fn read(dir: &Path, expected_kind: &str, supported_version: u32) -> Result<Manifest> {
        let p = dir.join(MANIFEST_FILE);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !dir.exists() {
                    return Err(Error::io(
                        dir,
                        std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
                    ));
                }
                return Err(Error::ManifestMissing {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io(&p, e)),
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::ManifestInvalid {
            file: p.clone(),
            problem: e.to_string(),
        })?;
        if m.kind != expected_kind {
            return Err(Error::WrongKind {
                dir: dir.to_path_buf(),
                expected: expected_kind.to_string(),
                found: m.kind,
            });
        }
        if m.format_version > supported_version {
            return Err(Error::NewerVersion {
                dir: dir.to_path_buf(),
                found: m.format_version,
                supported: supported_version,
            });
        }
        Ok(m)
    }

    /// Checks every listed file's size and checksum; the error names the first that differs.
    pub fn verify(&self, dir: &Path) -> Result<()> {
        self.verify_except(dir, &[])
    }

    /// Checks every listed file's size, and the checksum of every file but those `mapped` names:
    /// what an open does that reads and parses the small files (ids, vocabularies, tables) but maps
    /// or skips the bulk arrays, whose checksums are verified at commit and by the `check` commands.
    pub fn verify_except(&self, dir: &Path, mapped: &[&str]) -> Result<()> {
        self.verify_sizes(dir)?;
        for (name, entry) in &self.files {
            if mapped.contains(&name.as_str()) {
                continue;
            }
            let p = dir.join(name);
            let sha = sha256_file(&p)?;
            if sha != entry.sha256 {
                return Err(Error::Corrupt {
                    file: p,
                    what: "sha256",
                    expected: entry.sha256.clone(),
                    found: sha,
                });
            }
        }
        Ok(())
    }

    /// What an open checks on every start instead of [`Manifest::verify`]: every listed file is
    /// present with the size the manifest records. A truncated or missing file is an error naming
    /// it; a byte changed in place is not seen here (checksums are verified when an artifact is
    /// committed and by the `check` commands).
    pub fn verify_sizes(&self, dir: &Path) -> Result<()> {
        for (name, entry) in &self.files {
            let p = dir.join(name);
            let meta = match fs::metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::FileMissing { file: p })
                }
                Err(e) => return Err(Error::io(&p, e)),
            };
            if meta.len() != entry.bytes {
                return Err(Error::Corrupt {
                    file: p,
                    what: "size",
                    expected: entry.bytes.to_string(),
                    found: meta.len().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Identifies the artifact's contents: SHA-256 over the file names and checksums in name order.
    /// Independent of creation time, so re-importing the same input gives the same fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (name, entry) in &self.files {
            h.update(name.as_bytes());
            h.update([0u8]);
            h.update(entry.sha256.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn output_paths_follow_symlinks_keep_modes_and_refuse_read_only_and_special_targets() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.txt");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        // A chain of two relative links.
        std::os::unix::fs::symlink("real.txt", d.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", d.path().join("b")).unwrap();
        write_file_atomic(&d.path().join("b"), b"new").unwrap();
        assert!(fs::symlink_metadata(d.path().join("b"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
        // A dangling link: its target is created.
        std::os::unix::fs::symlink("fresh.txt", d.path().join("c")).unwrap();
        write_file_atomic(&d.path().join("c"), b"x").unwrap();
        assert_eq!(fs::read(d.path().join("fresh.txt")).unwrap(), b"x");
        // Read-only: refused, untouched.
        fs::set_permissions(&real, fs::Permissions::from_mode(0o444)).unwrap();
        let e = write_file_atomic(&d.path().join("b"), b"newer")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("read-only") && e.contains("mode 444") && e.contains("symlink"),
            "{e}"
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");
        // Not a regular file.
        let e = write_file_atomic(d.path(), b"x").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A loop.
        std::os::unix::fs::symlink("loop2", d.path().join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", d.path().join("loop2")).unwrap();
        let e = write_file_atomic(&d.path().join("loop1"), b"x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic links"), "{e}");
        // An artifact directory reached through a link is replaced in place, the link kept.
        let art = d.path().join("art");
        fs::create_dir(&art).unwrap();
        std::os::unix::fs::symlink("art", d.path().join("art-link")).unwrap();
        let s = StagingDir::new(d.path().join("art-link")).unwrap();
        fs::write(s.path().join("f"), "1").unwrap();
        s.commit().unwrap();
        assert!(fs::symlink_metadata(d.path().join("art-link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(art.join("f")).unwrap(), b"1");
        let e = StagingDir::new(&real).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        write_file_atomic(&p, b"one").unwrap();
        write_file_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn staging_dir_commit_creates_then_replaces() {
        let d = tempfile::tempdir().unwrap();
        let fin = d.path().join("art");
        let s = StagingDir::new(&fin).unwrap();
        fs::write(s.path().join("x"), b"old").unwrap();
        s.commit().unwrap();
        assert_eq!(fs::read(fin.join("x")).unwrap(), b"old");

        let s = StagingDir::new(&fin).unwrap();
        fs::write(s.path().join("y"), b"new").unwrap();
        s.commit().unwrap();
        assert!(!fin.join("x").exists());
        assert_eq!(fs::read(fin.join("y")).unwrap(), b"new");
        // Only the final directory remains: the old one and the staging dir are gone.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn staging_dir_dropped_leaves_nothing_and_keeps_old() {
        let d = tempfile::tempdir().unwrap();
        let fin = d.path().join("art");
        fs::create_dir(&fin).unwrap();
        fs::write(fin.join("keep"), b"1").unwrap();
        {
            let s = StagingDir::new(&fin).unwrap();
            fs::write(s.path().join("partial"), b"x").unwrap();
        }
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(fin.join("keep").exists());
    }

    #[test]
    fn temp_names_carry_their_owner() {
        assert_eq!(temp_owner(".ds.staging-1234-0-999"), Some(1234));
        assert_eq!(temp_owner(".my.data.set.staging-77-3-5"), Some(77));
        assert_eq!(temp_owner(".ds.old-9-1-2"), Some(9));
        assert_eq!(temp_owner(".f.tmp-9-1-2"), Some(9));
        assert_eq!(temp_owner("ds.staging-1-2-3"), None);
        assert_eq!(temp_owner(".ds.staging-x-2-3"), None);
        assert_eq!(temp_owner(".ds.staging-1-2"), None);
        assert_eq!(temp_owner(".ds"), None);
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
    }

    /// A pid that is certainly not running: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        // Above the kernel's pid_max: no process can have it (a just-reaped pid could be reused).
        i32::MAX as u32
    }

    #[test]
    fn staging_of_dead_writers_is_removed_by_the_next_writer_at_any_age() {
        let d = tempfile::tempdir().unwrap();
        let fin = d.path().join("art");
        let s = StagingDir::new(&fin).unwrap();
        fs::write(s.path().join("x"), b"1").unwrap();
        s.commit().unwrap();
        let dead = dead_pid();
        let debris = d.path().join(format!(".art.staging-{dead}-0-1"));
        fs::create_dir(&debris).unwrap();
        fs::write(debris.join("partial"), b"x").unwrap();
        let aside = d.path().join(format!(".art.old-{dead}-0-2"));
        fs::create_dir(&aside).unwrap();
        // A live writer's staging (ours, and another live process's) and other artifacts' debris stay.
        let mine = d.path().join(format!(".art.staging-{}-99-1", std::process::id()));
        fs::create_dir(&mine).unwrap();
        let other = d.path().join(format!(".other.staging-{dead}-0-1"));
        fs::create_dir(&other).unwrap();
        assert!(is_abandoned(&debris));
        assert!(!is_abandoned(&mine));
        assert!(!is_abandoned(&fin));

        let s = StagingDir::new(&fin).unwrap();
        assert!(!debris.exists() && !aside.exists());
        assert!(mine.exists() && other.exists());
        drop(s);
        assert_eq!(fs::read(fin.join("x")).unwrap(), b"1");
    }

    /// A writer killed between moving the old artifact aside and moving the new one in (the
    /// commit without RENAME_EXCHANGE) left no artifact: the next writer puts the aside copy back
    /// instead of deleting it.
    #[test]
    fn a_dead_writers_aside_copy_is_restored_when_the_artifact_is_missing() {
        let d = tempfile::tempdir().unwrap();
        let fin = d.path().join("art");
        let dead = dead_pid();
        let aside = d.path().join(format!(".art.old-{dead}-0-2"));
        fs::create_dir(&aside).unwrap();
        fs::write(aside.join("x"), b"previous").unwrap();
        let half = d.path().join(format!(".art.staging-{dead}-0-1"));
        fs::create_dir(&half).unwrap();
        let removed = remove_abandoned(&fin);
        assert_eq!(removed, vec![half.clone()]);
        assert_eq!(fs::read(fin.join("x")).unwrap(), b"previous");
        assert!(!aside.exists() && !half.exists());
    }

    #[test]
    fn manifest_roundtrip_verify_and_errors() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f.bin"), b"hello").unwrap();
        let mut m = Manifest::new("dataset", 1);
        m.counts.insert("rows".into(), 5);
        m.add_file(d.path(), "f.bin").unwrap();
        m.write(d.path()).unwrap();
        let r = Manifest::read(d.path(), "dataset", 1).unwrap();
        assert_eq!(r, m);
        r.verify(d.path()).unwrap();
        assert_eq!(
            r.files["f.bin"].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );

        assert!(matches!(
            Manifest::read(d.path(), "model", 1),
            Err(Error::WrongKind { .. })
        ));
        let mut newer = m.clone();
        newer.format_version = 7;
        newer.write(d.path()).unwrap();
        let e = Manifest::read(d.path(), "dataset", 1).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");

        fs::write(d.path().join("f.bin"), b"hellO").unwrap();
        let e = m.verify(d.path()).unwrap_err();
        assert!(matches!(e, Error::Corrupt { what: "sha256", .. }), "{e}");
        fs::write(d.path().join("f.bin"), b"hi").unwrap();
        assert!(matches!(
            m.verify(d.path()),
            Err(Error::Corrupt { what: "size", .. })
        ));
        fs::remove_file(d.path().join("f.bin")).unwrap();
        assert!(matches!(m.verify(d.path()), Err(Error::FileMissing { .. })));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Manifest::read(empty.path(), "dataset", 1),
            Err(Error::ManifestMissing { .. })
        ));
    }

    #[test]
    fn fingerprint_ignores_time_but_not_content() {
        let mut a = Manifest::new("dataset", 1);
        a.files.insert(
            "x".into(),
            FileEntry {
                bytes: 1,
                sha256: "aa".into(),
            },
        );
        let mut b = a.clone();
        b.created_at = "other".into();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.files.get_mut("x").unwrap().sha256 = "ab".into();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
