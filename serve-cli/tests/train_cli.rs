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
    assert!(!cut.exists(), "an unfinished run commits no model");
    let run = tmp.path().join(".cut.single");
    let after_cut = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(after_cut.lines().count(), 1, "the cut run stops after one epoch");
    assert_ne!(
        read(&run.join("checkpoint.safetensors")),
        read(&full.join("checkpoint.safetensors")),
        "one epoch is not two"
    );
    // Resuming the cut run with another configuration is refused.
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

    // A finished run has nothing to resume: an error, not a silent retraining over it.
    tt().args(["train", "--resume", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&cut)
        .args(SMALL)
        .args(["--epochs", "2"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nothing to resume"));
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

/// A finished model at `out` and a long run over it, started: returns the dataset, the child and
/// the bytes of every file of the finished model.
fn long_run_over_a_finished_model(tmp: &Path) -> (PathBuf, std::process::Child, Vec<(PathBuf, Vec<u8>)>) {
    let ds = dataset(tmp, 1_000, 500, 40_000);
    let out = tmp.join("m");
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(SMALL)
        .args(["--epochs", "1"])
        .assert()
        .success();
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = read(&p);
            (p, b)
        })
        .collect();
    files.sort();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("twotower"))
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
    (ds, child, files)
}

/// Waits (generously) until `path` exists while `child` runs.
fn wait_for(path: &Path, child: &mut std::process::Child) {
    let t0 = Instant::now();
    while !path.exists() {
        if t0.elapsed() > Duration::from_secs(180) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "{} did not appear in time (or the run exited early)",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_unchanged(files: &[(PathBuf, Vec<u8>)]) {
    for (p, b) in files {
        assert!(read(p) == *b, "{} changed", p.display());
    }
}

/// Starts a long training run over a finished model, waits for its first committed epoch, sends
/// `signal`: the finished model is untouched, byte for byte, and still evaluates; the interrupted
/// run resumes from the epoch it left beside it.
fn killed_run_leaves_a_loadable_model(signal: libc::c_int) {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, mut child, files) = long_run_over_a_finished_model(tmp.path());
    let out = tmp.path().join("m");
    let metrics = tmp.path().join(".m.single").join("metrics.jsonl");
    // Wait for at least one committed epoch, then a little more so the signal lands mid-epoch or
    // mid-commit rather than right at the start.
    wait_for(&metrics, &mut child);
    std::thread::sleep(Duration::from_millis(150));
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain kill(2) on the child this test started and still owns.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill failed");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was interrupted, not finished");

    assert_unchanged(&files);
    tt().args(["eval", "--model"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("popularity"));
    let lines = std::fs::read_to_string(&metrics).unwrap();
    assert!(!lines.is_empty());
    // The interrupted run resumes from its checkpoint; `out` moves only when it finishes.
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
    assert_unchanged(&files);
}

#[test]
fn sigkill_during_training_leaves_last_model_loadable() {
    killed_run_leaves_a_loadable_model(libc::SIGKILL);
}

#[test]
fn sigint_during_training_leaves_last_model_loadable() {
    killed_run_leaves_a_loadable_model(libc::SIGINT);
}

/// A second training into the same output while the first runs is refused, naming the holder;
/// the first is unaffected.
#[test]
fn a_second_training_of_the_same_output_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, mut child, files) = long_run_over_a_finished_model(tmp.path());
    wait_for(&tmp.path().join(".m.single"), &mut child);
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(tmp.path().join("m"))
        .args(SMALL)
        .args(["--epochs", "1"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("being trained by another process")
                .and(predicate::str::contains(format!("pid {}", child.id()))),
        );
    assert!(child.try_wait().unwrap().is_none(), "the first run goes on");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_unchanged(&files);
}

/// A disk that fills up while a run writes (simulated with a file-size limit: writes past 64 KiB
/// fail as on a full disk) fails the run with an error naming a file, and leaves the finished model
/// in place and no staging debris.
#[test]
fn a_full_disk_during_training_keeps_the_finished_model() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 300, 200, 6_000);
    let out = tmp.path().join("m");
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(SMALL)
        .args(["--epochs", "1"])
        .assert()
        .success();
    let before: Vec<Vec<u8>> = ["model.json", "weights.safetensors", "manifest.json"]
        .iter()
        .map(|f| read(&out.join(f)))
        .collect();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("twotower"));
    cmd.args(["--quiet", "--threads", "2", "train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(SMALL)
        .args(["--epochs", "2", "--seed", "9"]);
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let res = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "the run cannot finish on a full disk");
    assert!(
        stderr.contains(".safetensors") || stderr.contains(".json"),
        "{stderr}"
    );
    for (f, b) in ["model.json", "weights.safetensors", "manifest.json"]
        .iter()
        .zip(&before)
    {
        assert!(read(&out.join(f)) == *b, "{f} changed");
    }
    tt().args(["eval", "--model"]).arg(&out).assert().success();
    let debris: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging") || n.contains(".tmp"))
        .collect();
    assert!(debris.is_empty(), "{debris:?}");
}

/// Sizes that cannot fit are refused before anything is allocated, naming the setting.
#[test]
fn impossible_negative_counts_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 50, 40, 600);
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(tmp.path().join("m"))
        .args(SMALL)
        .args(["--extra-negatives", "100000000"])
        .timeout(Duration::from_secs(60))
        .assert()
        .failure()
        .stderr(predicate::str::contains("extra-negatives").and(predicate::str::contains("at most")));
    assert!(!tmp.path().join("m").exists());
}

/// The plan rule through the binary: small data gets the full plan, `--plan scaled` the scaled one
/// (successive halving over the candidates on their first epoch, no refit, one member). `train`
/// prints the plan before it starts and after it ends, and plan.json records the decision and
/// every candidate's runs. The same seed gives the same scaled model twice (one thread).
#[test]
fn the_plan_rule_is_printed_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 200, 150, 6_000);
    let train = |out: &Path, extra: &[&str]| {
        let o = Command::cargo_bin("twotower")
            .unwrap()
            .args(["--quiet", "--threads", "1", "train", "--data"])
            .arg(&ds)
            .arg("--out")
            .arg(out)
            .args(["--dim", "16", "--batch-size", "256", "--epochs", "3"])
            .args(extra)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        );
        assert!(o.status.success(), "{stdout}\n{stderr}");
        (stdout, stderr)
    };
    let plan =
        |out: &Path| -> serde_json::Value { serde_json::from_slice(&read(&out.join("plan.json"))).unwrap() };

    let full = tmp.path().join("full");
    let (stdout, stderr) = train(&full, &["--members", "1", "--no-refit"]);
    assert!(
        stderr.contains("plan: full ("),
        "the plan is announced before training: {stderr}"
    );
    assert!(stdout.contains("plan: full ("), "{stdout}");
    let p = plan(&full);
    assert_eq!(p["decision"]["shape"], "full");
    assert_eq!(p["decision"]["candidates"], 3);

    let scaled = tmp.path().join("scaled");
    let (stdout, stderr) = train(&scaled, &["--plan", "scaled"]);
    assert!(
        stderr.contains("plan: scaled (asked for (--plan scaled))"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 temperature candidates train their first"),
        "{stderr}"
    );
    assert!(stdout.contains("plan: scaled"), "{stdout}");
    let p = plan(&scaled);
    let d = &p["decision"];
    assert_eq!(d["shape"], "scaled");
    assert_eq!(
        (d["refit"].as_bool(), d["members"].as_u64()),
        (Some(false), Some(1))
    );
    assert_eq!(d["epochs"], 3);
    let runs = p["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "one run per candidate, then the final run: {p}");
    let kept: Vec<&serde_json::Value> = runs.iter().filter(|r| !r["member"].is_null()).collect();
    assert_eq!(kept.len(), 1, "{p}");
    assert_eq!(kept[0]["name"], "final", "the final run is the model: {p}");
    for r in &runs[..3] {
        assert_eq!(
            r["epochs"].as_array().unwrap().len(),
            1,
            "a candidate is judged once: {r}"
        );
    }
    let search = p["temperature_search"].as_array().unwrap();
    assert_eq!(search.len(), 3);
    let chosen: Vec<_> = search.iter().filter(|t| t["chosen"] == true).collect();
    assert_eq!(chosen.len(), 1);
    assert_eq!(
        chosen[0]["temperature"], kept[0]["temperature"],
        "the final run has the chosen one"
    );
    // The best candidate on validation is chosen.
    let best = search
        .iter()
        .map(|t| t["validation_recall"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(chosen[0]["validation_recall"].as_f64().unwrap(), best);
    let meta: serde_json::Value = serde_json::from_slice(&read(&scaled.join("model.json"))).unwrap();
    assert_eq!(meta["config"]["model"]["members"], 1);
    // Nothing left beside the model.
    let debris: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".scaled") && n != ".scaled.lock")
        .collect();
    assert!(debris.is_empty(), "{debris:?}");

    // Same seed, same thread count: the same model.
    let again = tmp.path().join("again");
    train(&again, &["--plan", "scaled"]);
    assert_eq!(
        read(&scaled.join("weights.safetensors")),
        read(&again.join("weights.safetensors"))
    );
}

/// `--budget` is parsed, refused when meaningless, and recorded; a budget too small for anything
/// past the first epoch leaves a complete model whose plan.json lists what was left out.
#[test]
fn a_budget_bounds_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 200, 150, 6_000);
    let out = tmp.path().join("m");
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(["--budget", "0s"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--budget").and(predicate::str::contains("at least 1s")));
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args(["--budget", "soon"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--budget"));
    // One second: the first epoch always trains; whatever else fits in the second on this machine
    // may train too, so only what holds either way is asserted.
    let o = tt()
        .args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&out)
        .args([
            "--dim",
            "16",
            "--batch-size",
            "256",
            "--epochs",
            "3",
            "--budget",
            "1s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("budget 1s"), "{stderr}");
    let p: serde_json::Value = serde_json::from_slice(&read(&out.join("plan.json"))).unwrap();
    assert!(!p["runs"].as_array().unwrap().is_empty());
    twotower_towers::Model::load(&out).expect("a complete model");
}

/// The R@10 cell of `method`'s row in an `eval`-style table.
fn recall_at_10(out: &str, method: &str) -> f64 {
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(method))
        .unwrap_or_else(|| panic!("no {method} row in:\n{out}"));
    row.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `bench synth-ceiling` ranks by the generator's own distribution: on data with planted clusters
/// it beats popularity by a wide margin and no trained model beats it; options that do not match
/// the data's ids are an error, not a table.
#[test]
fn synth_ceiling_bounds_a_model_from_above() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 300, 200, 9_000);
    let ceiling = |users: &str| {
        tt().args(["bench", "synth-ceiling", "--data"])
            .arg(&ds)
            .args(["--users", users, "--items", "200", "--interactions", "9000"])
            .args(["--clusters", "16", "--synth-seed", "7"])
            .assert()
    };
    let out = String::from_utf8(ceiling("300").success().get_output().stdout.clone()).unwrap();
    assert!(out.contains("Pop%@10") && out.contains("test items"), "{out}");
    let (best, pop) = (recall_at_10(&out, "ceiling"), recall_at_10(&out, "popularity"));
    assert!(best > 2.0 * pop, "ceiling {best} against popularity {pop}");

    let model = tmp.path().join("m");
    tt().args(["train", "--data"])
        .arg(&ds)
        .arg("--out")
        .arg(&model)
        .args(SMALL)
        .args(["--epochs", "2"])
        .assert()
        .success();
    let out = tt().args(["eval", "--model"]).arg(&model).assert().success();
    let got = recall_at_10(&String::from_utf8_lossy(&out.get_output().stdout), "model");
    assert!(
        got <= best + 1e-9,
        "a model ({got}) above the generator's ranking ({best})"
    );

    // Ids u0..u299 exist but none below 0 does with --users 0: refused by the options check.
    ceiling("0").failure().stderr(predicate::str::contains("--users"));
}
