//! What the binary-level tests share: the binary and a small quickstart world.

use assert_cmd::Command;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

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
pub fn serve(model: &Path, index: &Path, extra: &[&str]) -> (Child, String) {
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
