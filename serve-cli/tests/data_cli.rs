//! `twotower data …` through the real binary: import → stats → split, synth, help text, and bad input
//! failing with a clear message, a non-zero exit and no output left behind.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn tt() -> Command {
    let mut c = Command::cargo_bin("twotower").unwrap();
    c.arg("--quiet");
    c
}

fn stats_json(dir: &Path) -> Value {
    let out = tt()
        .args(["data", "stats", "--json", "--data"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn csv_import_stats_split() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log.csv");
    let mut text = String::from("who,what,stars,when\n");
    for u in 0..20 {
        for k in 0..5 {
            text.push_str(&format!(
                "u{u},i{},{},{}\n",
                (u + k) % 12,
                1 + (u + k) % 5,
                1000 + k
            ));
        }
    }
    text.push_str("u0,i0,5,999999\n"); // a repeat: the latest is kept
    std::fs::write(&log, text).unwrap();
    let items = tmp.path().join("items.csv");
    std::fs::write(&items, "what,title,genres\ni0,Amélie (2001),Comedy|Romance\n").unwrap();
    let ds = tmp.path().join("ds");
    tt().args(["data", "import", "--format", "csv"])
        .arg(&log)
        .args(["--out"])
        .arg(&ds)
        .args(["--user-col", "who", "--item-col", "what", "--weight-col", "stars"])
        .args(["--time-col", "when", "--items"])
        .arg(&items)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 100 interactions"))
        .stdout(predicate::str::contains("1 duplicate pairs"));
    let s = stats_json(&ds);
    assert_eq!(s["interactions"], 100);
    assert_eq!(s["interacting_users"], 20);
    assert_eq!(s["items"], 12);
    assert_eq!(s["time_range"][1], 999999);
    tt().args(["data", "stats", "--top", "12", "--data"])
        .arg(&ds)
        .assert()
        .success()
        .stdout(predicate::str::contains("Amélie (2001)"))
        .stdout(predicate::str::contains("density"));

    tt().args(["data", "split", "--test-last", "1", "--data"])
        .arg(&ds)
        .assert()
        .success()
        .stdout(predicate::str::contains("train 80 / test 20"));
    let s = stats_json(&ds);
    assert_eq!(s["split"], serde_json::json!([80, 20]));
    tt().args([
        "data",
        "split",
        "--strategy",
        "random",
        "--seed",
        "1",
        "--test-fraction",
        "0.4",
    ])
    .arg("--data")
    .arg(&ds)
    .assert()
    .success()
    .stdout(predicate::str::contains("train 60 / test 40"));
}

#[test]
fn movielens_and_synth() {
    let tmp = tempfile::tempdir().unwrap();
    let ml = tmp.path().join("ml");
    std::fs::create_dir(&ml).unwrap();
    std::fs::write(
        ml.join("movies.dat"),
        b"1::Mis\xe9rables, Les (1995)::Drama|Musical\n",
    )
    .unwrap();
    std::fs::write(ml.join("users.dat"), "1::F::1::10::48067\n").unwrap();
    std::fs::write(ml.join("ratings.dat"), "1::1::5::978300760\n").unwrap();
    let ds = tmp.path().join("ds");
    tt().args(["data", "import", "--format", "movielens-1m"])
        .arg(&ml)
        .arg("--out")
        .arg(&ds)
        .assert()
        .success();
    let s = stats_json(&ds);
    assert_eq!(s["top_items"][0]["title"], "Misérables, Les (1995)");

    let syn = tmp.path().join("syn");
    tt().args([
        "data",
        "synth",
        "--users",
        "50",
        "--items",
        "30",
        "--interactions",
        "900",
    ])
    .args(["--seed", "3", "--out"])
    .arg(&syn)
    .assert()
    .success()
    .stdout(predicate::str::contains("synthesised 900 interactions"));
    let a = stats_json(&syn)["fingerprint"].clone();
    tt().args([
        "data",
        "synth",
        "--users",
        "50",
        "--items",
        "30",
        "--interactions",
        "900",
    ])
    .args(["--seed", "3", "--out"])
    .arg(&syn)
    .assert()
    .success();
    assert_eq!(stats_json(&syn)["fingerprint"], a);
}

#[test]
fn help_documents_dedup_policy() {
    tt().args(["data", "import", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("keep the latest by time (the default)"));
}

#[test]
fn bad_input_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log.csv");
    std::fs::write(&log, "user,item\na,b\nc\n").unwrap();
    let ds = tmp.path().join("ds");
    tt().args(["data", "import", "--format", "csv"])
        .arg(&log)
        .arg("--out")
        .arg(&ds)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "log.csv:3: expected 2 fields like the header, found 1",
        ));
    std::fs::write(&log, "user,item\n").unwrap();
    tt().args(["data", "import", "--format", "csv"])
        .arg(&log)
        .arg("--out")
        .arg(&ds)
        .assert()
        .failure()
        .stderr(predicate::str::contains("header only"));
    let json = tmp.path().join("r.json");
    std::fs::write(&json, "[1,2]").unwrap();
    tt().args(["data", "import", "--format", "json"])
        .arg(&json)
        .arg("--out")
        .arg(&ds)
        .assert()
        .failure()
        .stderr(predicate::str::contains("expected an object mapping user ids"));
    tt().args(["data", "stats", "--data"])
        .arg(tmp.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("no manifest.json"));
    // Nothing but the inputs remains.
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["log.csv", "r.json"]);
}

/// Serves `body` with `status` on loopback; returns the base URL.
fn serve(status: &'static str, body: &'static [u8]) -> String {
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
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn download_errors_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let url = serve("200 OK", b"not the real zip");
    tt().args(["data", "download", "movielens-100k", "--url"])
        .arg(format!("{url}/ml-100k.zip"))
        .arg("--to")
        .arg(tmp.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("md5 mismatch"))
        .stderr(predicate::str::contains("0e33842e24a9c977be4e0107933c0723"));
    let url = serve("404 Not Found", b"");
    tt().args(["data", "download", "movielens-1m", "--md5", "00", "--url"])
        .arg(format!("{url}/x.zip"))
        .arg("--to")
        .arg(tmp.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("HTTP 404"));
    tt().args(["data", "download", "movielens-1m", "--md5", "00", "--to"])
        .arg(tmp.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("--md5 only makes sense with --url"));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
