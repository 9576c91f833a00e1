//! What the failure-behaviour tests (`hardening.rs`, `hostile.rs`) share: one quickstart world, copies
//! of its index, a polling wait, and a server over that world with raw-socket access.
#![allow(dead_code)] // each test binary uses part of it

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::common;
use crate::common::bin;

/// One quickstart shared by the tests; tests that change the index work on a copy of it.
pub fn world() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::quickstart("hardening", 300, 200, 12_000, 1, 7))
}

/// A copy of the world's index (the model and dataset are shared, read-only).
pub fn copy_index(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twotower-hard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ok = std::process::Command::new("cp")
        .arg("-r")
        .arg(world().join("index"))
        .arg(&dir)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    dir.join("index")
}

/// Polls `f` until it returns `Some`, panicking with `what` after `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sigterm(child: &Child) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(index: &Path, extra: &[&str]) -> Server {
        let (child, base) = common::serve(&world().join("model"), index, extra);
        let addr = base
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{base:?}"))
            .to_string();
        Server { child, addr }
    }

    /// Sends raw bytes and returns (status code, headers+body text) of the reply.
    pub fn raw(&self, request: &[u8]) -> (u16, String) {
        let mut c = TcpStream::connect(&self.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(request).unwrap();
        let mut reply = Vec::new();
        let _ = c.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let code = reply
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {reply:?}"));
        (code, reply)
    }

    /// The JSON body of a raw reply, with its status.
    pub fn raw_json(&self, request: &[u8]) -> (u16, Value) {
        let (code, reply) = self.raw(request);
        let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "not JSON: {reply:?}"
        );
        let v = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply:?}"));
        (code, v)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        self.raw_json(req.as_bytes())
    }

    pub fn metrics(&self) -> String {
        let (code, reply) = self.raw(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        assert_eq!(code, 200);
        reply
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        self.raw_json(req.as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A metric's value in Prometheus text, 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Runs the shell on `stdin` over `index`; returns its JSON lines and whether it exited 0.
pub fn shell(index: &Path, stdin: &[u8]) -> (Vec<Value>, bool) {
    let out = Command::new(bin())
        .arg("query")
        .arg("--model")
        .arg(world().join("model"))
        .arg("--index")
        .arg(index)
        .write_stdin(stdin)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (lines, out.status.success())
}
