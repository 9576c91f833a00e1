//! `twotower train|eval|embed` through the real binary on a small synthetic dataset: embeddings are
//! byte-identical across processes, `--resume` after a cut reproduces the uninterrupted weights, bad
//! configs are clear errors naming the file, and a training process killed mid-run (SIGINT or SIGKILL)
//! leaves the last complete model loadable.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;

fn tt() -> Command {
    let mut c = Command::cargo_bin("twotower").unwrap();
    c.args(["--quiet", "--threads", "2"]);
    c
}

/// A split synthetic dataset under `dir`.
fn dataset(dir: &Path, users: u32, items: u32, interactions: u32) -> PathBuf {
    let ds = dir.join("ds");
    tt().args(["data", "synth", "--out"])
        .arg(&ds)
        .args(["--users", &users.to_string(), "--items", &items.to_string()])
        .args(["--interactions", &interactions.to_string(), "--seed", "7"])
        .assert()
        .success();
    tt().args([
        "data",
        "split",
        "--strategy",
        "temporal",
        "--test-fraction",
        "0.2",
        "--data",
    ])
    .arg(&ds)
    .assert()
    .success();
    ds
}

/// Small, fast model flags shared by the tests.
/// A small single run (one fixed temperature, no refit, one member: the search, the refit and the
/// ensemble have their own test).
const SMALL: [&str; 11] = [
    "--dim",
    "16",
    "--batch-size",
    "256",
    "--patience",
    "0",
    "--temperature",
    "0.15",
    "--no-refit",
    "--members",
    "1",
];

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn embed_is_byte_identical_across_processes_and_resume_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 300, 200, 9_000);

    // Uninterrupted two-epoch run.
    let full = tmp.path().join("full");
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&full)
        .args(SMALL)
        .args(["--epochs", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("model written to"));

    // The default searches temperatures: one run each, the best on validation kept, then trained
    // again on every training row, twice (two ensemble members).
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(tmp.path().join("searched"))
        .args(["--dim", "16", "--batch-size", "256", "--epochs", "1"])
        .args(["--temperature-candidates", "0.1,0.2"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("temperature search")
                .and(predicate::str::contains("T 0.1 "))
                .and(predicate::str::contains("T 0.2 "))
                .and(predicate::str::contains("<- kept"))
                .and(predicate::str::contains("refit: trained again"))
                .and(predicate::str::contains("member 2  epoch  1"))
                .and(predicate::str::contains("2 members of dim 16")),
        );

    // `eval` prints the model and the popularity baseline.
    tt().args(["eval", "--model"])
        .arg(&full)
        .assert()
        .success()
        .stdout(predicate::str::contains("model").and(predicate::str::contains("popularity")));

    // Two `embed` processes write the same bytes (users and items), for one model and for the
    // default's two-member ensemble.
    for (name, model) in [("one", full.clone()), ("ensemble", tmp.path().join("searched"))] {
        for flag in ["--items", "--users"] {
            let a = tmp.path().join(format!("{name}-a{flag}.parquet"));
            let b = tmp.path().join(format!("{name}-b{flag}.parquet"));
            for p in [&a, &b] {
                tt().args(["embed", flag, "--model"])
                    .arg(&model)
                    .arg("--out")
                    .arg(p)
                    .assert()
                    .success();
            }
            let (x, y) = (read(&a), read(&b));
            assert!(x.len() > 100, "{name} {flag}: parquet too small");
            assert_eq!(x, y, "{name} {flag}: embeddings differ between processes");
        }
    }

    // Cut after one epoch (as if interrupted), then `--resume`: the same weights as the full run.
    let cut = tmp.path().join("cut");
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&cut)
        .args(SMALL)
        .args(["--epochs", "2", "--stop-after-epochs", "1"])
        .assert()
        .success();
    let after_cut = std::fs::read_to_string(cut.join("metrics.jsonl")).unwrap();
    assert_eq!(after_cut.lines().count(), 1, "the cut run stops after one epoch");
    assert_ne!(
        read(&cut.join("checkpoint.safetensors")),
        read(&full.join("checkpoint.safetensors")),
        "one epoch is not two"
    );
    tt().args(["train", "--resume", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&cut)
        .args(SMALL)
        .args(["--epochs", "2"])
        .assert()
        .success();
    assert_eq!(
        read(&cut.join("weights.safetensors")),
        read(&full.join("weights.safetensors")),
        "resume must reproduce the uninterrupted run"
    );
    assert_eq!(
        read(&cut.join("checkpoint.safetensors")),
        read(&full.join("checkpoint.safetensors"))
    );

    // Resuming with another configuration is refused.
    tt().args(["train", "--resume", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&cut)
        .args(&SMALL[..6])
        .args([
            "--epochs",
            "2",
            "--temperature",
            "0.3",
            "--no-refit",
            "--members",
            "1",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("configuration differs"));
    // A finished search (or refit) has nothing to resume: an error, not a silent new search.
    tt().args(["train", "--resume", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(tmp.path().join("searched"))
        .args(["--dim", "16", "--batch-size", "256", "--epochs", "1"])
        .args(["--temperature-candidates", "0.1,0.2"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nothing to resume"));
}

#[test]
fn bad_configs_are_clear_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 50, 40, 600);
    let out = tmp.path().join("m");

    let unknown = tmp.path().join("unknown.toml");
    std::fs::write(&unknown, "[item]\nid = true\ngenre = true\n").unwrap();
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .arg("--config")
        .arg(&unknown)
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown.toml").and(predicate::str::contains("genre")));

    let mismatch = tmp.path().join("mismatch.toml");
    std::fs::write(
        &mismatch,
        "[item]\nid_dim = 32\n[user]\nhistory = true\nshare_item_embeddings = true\nhistory_dim = 48\n",
    )
    .unwrap();
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .arg("--config")
        .arg(&mismatch)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("mismatch.toml")
                .and(predicate::str::contains("history_dim"))
                .and(predicate::str::contains("48"))
                .and(predicate::str::contains("32")),
        );

    let bad_value = tmp.path().join("zero.toml");
    std::fs::write(&bad_value, "[model]\ndim = 0\n").unwrap();
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .arg("--config")
        .arg(&bad_value)
        .assert()
        .failure()
        .stderr(predicate::str::contains("zero.toml").and(predicate::str::contains("model.dim")));
    assert!(!out.exists(), "a refused config writes no model");

    // A weights file that does not match model.json's dimensions is an error naming the file.
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(SMALL)
        .args(["--epochs", "1"])
        .assert()
        .success();
    let other = tmp.path().join("other");
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&other)
        .args(["--dim", "8", "--batch-size", "256", "--epochs", "1"])
        .assert()
        .success();
    std::fs::copy(other.join("weights.safetensors"), out.join("weights.safetensors")).unwrap();
    tt().args(["eval", "--model"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("weights.safetensors"));
}

/// Starts a long training run, waits for its first committed epoch, sends `signal`, and checks that
/// the model directory left behind loads and evaluates.
fn killed_run_leaves_a_loadable_model(signal: libc::c_int) {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 1_000, 500, 40_000);
    let out = tmp.path().join("m");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("twotower"))
        .args(["--quiet", "--threads", "2", "train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(SMALL)
        .args(["--epochs", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let metrics = out.join("metrics.jsonl");
    // Wait for at least one committed epoch, then a little more so the signal lands mid-epoch or
    // mid-commit rather than right at the start.
    while !metrics.exists() {
        if t0.elapsed() > Duration::from_secs(120) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("training wrote no epoch in time (or exited early)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain kill(2) on the child this test started and still owns.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill failed");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was interrupted, not finished");

    let lines = std::fs::read_to_string(&metrics).unwrap();
    assert!(!lines.is_empty());
    tt().args(["eval", "--model"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("popularity"));
    // The interrupted run resumes from its checkpoint.
    let done = lines.lines().count();
    tt().args(["train", "--resume", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(SMALL)
        .args(["--epochs", "1000", "--stop-after-epochs", "1"])
        .assert()
        .success();
    let after = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(
        after.lines().count(),
        done + 1,
        "resume continues where the kill left off"
    );
}

#[test]
fn sigkill_during_training_leaves_last_model_loadable() {
    killed_run_leaves_a_loadable_model(libc::SIGKILL);
}

#[test]
fn sigint_during_training_leaves_last_model_loadable() {
    killed_run_leaves_a_loadable_model(libc::SIGINT);
}
