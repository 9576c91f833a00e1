//! `twotower serve` on an ephemeral loopback port: every endpoint, every error, a hot index swap under
//! concurrent requests with zero failures, and a graceful SIGTERM.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::bin;

fn world(name: &str) -> PathBuf {
    common::quickstart(&format!("serve-{name}"), 200, 150, 8000, 1, 11)
}

use common::Server;

fn start(w: &Path) -> Server {
    Server::start(&w.join("model"), w.join("index"), &["--watch-ms", "50"])
}

/// Sends only the request head of a POST declaring `len` body bytes and returns (status line, reply).
fn raw_post_headers_only(base: &str, path: &str, len: usize) -> (String, String) {
    use std::io::{Read, Write};
    let addr = base.strip_prefix("http://").unwrap();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {len}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = c.read_to_string(&mut reply);
    let status = reply.lines().next().unwrap_or_default().to_string();
    (status, reply)
}

fn items(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_endpoint_and_every_error() {
    let w = world("endpoints");
    let s = start(&w);
    assert_eq!(s.text("/healthz").trim(), "ok");
    let (code, ready) = s.get("/readyz");
    assert_eq!(code, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["backend"]["kind"], "directory");
    assert_eq!(ready["backend"]["version"], 1);
    assert!(
        ready["backend"]["path"].as_str().unwrap().ends_with("index"),
        "{ready}"
    );

    let (code, v) = s.get("/v1/users/u1/recommendations?k=5");
    assert_eq!(code, 200, "{v}");
    assert_eq!(items(&v).len(), 5);
    assert_eq!(v["source"], "known");
    let (_, g) = s.get("/v1/users/u1/recommendations?k=5&exclude_seen=false");
    assert_eq!(items(&g).len(), 5);

    let (code, v) = s.get("/v1/users/nobody/recommendations");
    assert_eq!(code, 404);
    assert!(v["error"].as_str().unwrap().contains("nobody"));
    let (code, v) = s.get("/v1/users/nobody/recommendations?fallback=true&k=3");
    assert_eq!(code, 200);
    assert_eq!(v["source"], "popularity");
    assert_eq!(items(&v).len(), 3);

    for bad in [
        "k=0",
        "k=100000",
        "k=ten",
        "exclude_seen=maybe",
        "genre=NoSuchGenre",
        "ef=0",
    ] {
        let (code, v) = s.get(&format!("/v1/users/u1/recommendations?{bad}"));
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(v["error"].is_string(), "{bad}: {v}");
    }

    let (code, v) = s.post(
        "/v1/recommendations",
        &json!({"recent_items": ["i1", "i2"], "k": 4}).to_string(),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["source"], "items");
    let r = items(&v);
    assert_eq!(r.len(), 4);
    assert!(!r.contains(&"i1".to_string()) && !r.contains(&"i2".to_string()));
    for (body, want) in [
        (
            json!({"recent_items": ["i1", "zz9", "zz8"]}).to_string(),
            "zz9, zz8",
        ),
        (json!({"recent_items": []}).to_string(), "empty"),
        (json!({"recent_items": ["i1"], "k": 0}).to_string(), "k must be"),
        (json!({"recent_items": ["i1"], "bogus": 1}).to_string(), "bogus"),
        ("{not json".to_string(), "not valid"),
        ("[1,2]".to_string(), "not valid"),
    ] {
        let (code, v) = s.post("/v1/recommendations", &body);
        assert_eq!(code, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
    // Over the body limit: the verdict comes from the declared length, before any of the body is
    // sent, so this is deterministic (a client still uploading when the server closes could see a
    // reset instead of the answer).
    let (status, reply) = raw_post_headers_only(&s.base, "/v1/recommendations", 1 << 20);
    assert!(status.contains(" 413 "), "payload limit: {status}");
    assert!(reply.contains("--max-body"), "{reply}");

    let (code, v) = s.get("/v1/items/i3/similar?k=3");
    assert_eq!(code, 200);
    assert_eq!(items(&v).len(), 3);
    assert!(!items(&v).contains(&"i3".to_string()));
    assert_eq!(s.get("/v1/items/nope/similar").0, 404);
    let (code, v) = s.get("/v1/items/i3");
    assert_eq!(code, 200);
    assert_eq!(v["id"], "i3");
    assert_eq!(s.get("/v1/items/nope").0, 404);
    assert_eq!(s.get("/v2/whatever").0, 404);

    let m = s.text("/metrics");
    assert!(
        m.contains("twotower_requests_total{route=\"user_recommendations\",status=\"200\"}"),
        "{m}"
    );
    assert!(m.contains("twotower_request_seconds_bucket"), "{m}");
    assert!(m.contains("twotower_index_version 1"), "{m}");
    assert!(m.contains("twotower_catalog_items 150"), "{m}");
    assert!(m.contains("twotower_backend_info{kind=\"directory\""), "{m}");
    assert!(m.contains("version=\"0001\"} 1"), "{m}");
}

#[test]
fn hot_swap_under_load_fails_no_request_and_sigterm_is_graceful() {
    let w = world("swap");
    let s = Arc::new(start(&w));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let versions = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (s, stop, ok, failed, versions) = (
                s.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
                versions.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (code, v) = s.get(&format!("/v1/users/u{}/recommendations?k=10", (n * 7 + t) % 200));
                    if code == 200 && items(&v).len() == 10 {
                        ok.fetch_add(1, Ordering::Relaxed);
                        versions
                            .lock()
                            .unwrap()
                            .insert(v["index_version"].as_u64().unwrap());
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // Conditions, each polled with a generous deadline: no step waits a fixed time.
    let until = |what: &str, cond: &dyn Fn() -> bool| {
        let t0 = std::time::Instant::now();
        while !cond() {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    until("answers from version 1", &|| {
        versions.lock().unwrap().contains(&1)
    });
    let (model, index) = (w.join("model"), w.join("index"));
    for v in [2, 3] {
        Command::new(bin())
            .args(["--threads", "1", "index", "rebuild", "--quiet", "--model"])
            .arg(&model)
            .arg("--index")
            .arg(&index)
            .assert()
            .success();
        until(&format!("version {v} served"), &|| {
            s.text("/metrics")
                .contains(&format!("twotower_index_version {v}\n"))
        });
    }
    until("answers from version 3", &|| {
        versions.lock().unwrap().contains(&3)
    });
    stop.store(true, Ordering::Relaxed);
    for h in workers {
        h.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed across the swaps"
    );
    assert!(ok.load(Ordering::Relaxed) > 0);
    let seen = versions.lock().unwrap().clone();
    assert!(
        seen.contains(&1) && seen.contains(&3),
        "answers came from versions {seen:?}"
    );
    assert!(s.text("/metrics").contains("twotower_index_reloads_total 2"));

    // SIGTERM: the server finishes and exits 0.
    let mut s = Arc::try_unwrap(s).ok().expect("workers are done");
    let pid = s.child.id() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
