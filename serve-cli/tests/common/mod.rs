//! What the binary-level tests share: the binary and a small quickstart world.

use assert_cmd::Command;
use std::path::PathBuf;
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
