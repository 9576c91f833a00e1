//! `download` against a zip served by a loopback HTTP server started here (no internet needed).
#![cfg(feature = "download")]

use std::io::{Read, Write};
use std::net::TcpListener;

use md5::{Digest, Md5};
use twotower_data::{
    download, import, DownloadSource, Error, ImportFormat, ImportOptions, MovieLens, NoProgress,
};

fn ml100k_zip() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.add_directory("ml-100k/", opts).unwrap();
    let item = b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n";
    for (name, body) in [
        ("ml-100k/u.data", &b"1\t1\t5\t881250949\n2\t1\t3\t881250950\n"[..]),
        ("ml-100k/u.item", &item[..]),
        (
            "ml-100k/u.user",
            &b"1|24|M|technician|85711\n2|53|F|other|94043\n"[..],
        ),
    ] {
        w.start_file(name, opts).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Serves `body` with `status` to every request until the process ends; returns the base URL.
fn serve(status: &'static str, body: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

#[test]
fn official_sources_have_published_checksums() {
    let s = MovieLens::Ml100k.official();
    assert_eq!(
        s.url,
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    );
    assert_eq!(s.md5, "0e33842e24a9c977be4e0107933c0723");
    assert_eq!(MovieLens::Ml1m.official().md5, "c4d9eecfca2ab87c1945afe126590906");
}

#[test]
fn downloads_verifies_unpacks_and_imports() {
    let zip = ml100k_zip();
    let url = serve("200 OK", zip.clone());
    let tmp = tempfile::tempdir().unwrap();
    let src = DownloadSource {
        url: format!("{url}/ml-100k.zip"),
        md5: md5_hex(&zip),
        folder: "ml-100k".into(),
    };
    let dir = download(&src, tmp.path(), &NoProgress).unwrap();
    assert_eq!(dir, tmp.path().join("ml-100k"));
    assert!(dir.join("u.data").is_file());
    let out = tmp.path().join("ds");
    let r = import(
        &dir,
        &out,
        &ImportOptions::new(ImportFormat::Movielens100k),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.interactions, 2);
    // Nothing else left (no .zip, no staging dir).
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["ds", "ml-100k"]);
    let mut inner: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    inner.sort();
    assert_eq!(inner, vec!["u.data", "u.item", "u.user"]);
}

#[test]
fn checksum_mismatch_and_http_errors_leave_nothing() {
    let zip = ml100k_zip();
    let url = serve("200 OK", zip);
    let tmp = tempfile::tempdir().unwrap();
    let src = DownloadSource {
        url: format!("{url}/ml-100k.zip"),
        md5: "0e33842e24a9c977be4e0107933c0723".into(),
        folder: "ml-100k".into(),
    };
    let e = download(&src, tmp.path(), &NoProgress).unwrap_err();
    assert!(matches!(e, Error::Corrupt { what: "md5", .. }), "{e}");
    assert!(e.to_string().contains("md5 mismatch"), "{e}");
    let missing = serve("404 Not Found", b"nope".to_vec());
    let e = download(
        &DownloadSource {
            url: format!("{missing}/x.zip"),
            ..src.clone()
        },
        tmp.path(),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("HTTP 404"), "{e}");
    // Not a zip, but the checksum matches what was served.
    let junk = b"this is not a zip".to_vec();
    let bad = serve("200 OK", junk.clone());
    let e = download(
        &DownloadSource {
            url: format!("{bad}/x.zip"),
            md5: md5_hex(&junk),
            folder: "ml-100k".into(),
        },
        tmp.path(),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("zip"), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
