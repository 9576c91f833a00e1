//! What the binary-level tests share: the binary and a small quickstart world.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use assert_cmd::Command;
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The `twotower` binary under test.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("twotower")
}

/// Runs `quickstart --no-shell` on a small synthetic dataset into a fresh temp dir named `name`
/// (dataset in `data/`, model in `model/`, index in `index/`).
pub fn quickstart(name: &str, users: u32, items: u32, interactions: u64, epochs: u32, seed: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twotower-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Command::new(bin())
        // One thread: the graph (and so every HNSW answer) is then a function of the vectors, not
        // of how build threads interleave, so tests can compare answers and assert self-reachability.
        .args(["--threads", "1", "quickstart", "--no-shell", "--quiet"])
        .args(["--users", &users.to_string(), "--items", &items.to_string()])
        .args([
            "--interactions",
            &interactions.to_string(),
            "--epochs",
            &epochs.to_string(),
        ])
        .args(["--seed", &seed.to_string(), "--out"])
        .arg(&dir)
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
    dir
}

/// Starts `twotower serve` on an ephemeral loopback port over `model` and `index` (with `extra`
/// flags) and returns the process and its base URL (`http://127.0.0.1:PORT`), read from the first
/// line the server prints.
#[allow(dead_code)] // not every test binary serves
pub fn serve(model: &Path, index: impl AsRef<OsStr>, extra: &[&str]) -> (Child, String) {
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--model"])
        .arg(model)
        .arg("--index")
        .arg(index)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    (child, base)
}

#[allow(dead_code)] // not every test binary serves
/// A running server, killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

#[allow(dead_code)]
impl Server {
    /// `twotower serve` over `model` and `index` (a directory or a Milvus address), with `extra` flags.
    pub fn start(model: &Path, index: impl AsRef<OsStr>, extra: &[&str]) -> Server {
        let (child, base) = serve(model, index, extra);
        Server { child, base }
    }

    /// GET: status and JSON body (`Null` when not JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = ureq::get(&format!("{}{path}", self.base))
            .timeout(Duration::from_secs(10))
            .call();
        reply(path, r)
    }

    /// GET that must succeed: the body.
    pub fn text(&self, path: &str) -> String {
        ureq::get(&format!("{}{path}", self.base))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    /// POST of a JSON body: status and JSON body.
    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let req = ureq::post(&format!("{}{path}", self.base)).set("content-type", "application/json");
        reply(path, req.send_string(body))
    }
}

/// Status and JSON body of an answer, error statuses included; a transport error fails the test.
fn reply(path: &str, r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let (code, resp) = match r {
        Ok(resp) => (resp.status(), resp),
        Err(ureq::Error::Status(code, resp)) => (code, resp),
        Err(e) => panic!("{path}: {e}"),
    };
    let body = resp.into_string().unwrap_or_default();
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[allow(dead_code)]
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 20 ms until it holds or `deadline` passes; the last answer.
#[allow(dead_code)]
pub fn wait_for(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Opens the write end of the FIFO `fifo` once a reader (a command under test) has opened its read
/// end: opening without blocking succeeds only then. Polled with a generous deadline.
#[allow(dead_code)]
pub fn fifo_writer(fifo: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let mut writer = None;
    assert!(
        wait_for(Duration::from_secs(120), || {
            writer = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo)
                .ok();
            writer.is_some()
        }),
        "nothing opened {} for reading",
        fifo.display()
    );
    writer.unwrap()
}
