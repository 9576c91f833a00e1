//! The daily job end to end through the real binary and `serve-cli/scripts/daily.sh`: day
//! partitions appended to a dataset that grows new users and items, warm-started candidates judged
//! against the model in service, a deliberately bad candidate refused by the gate, a rerun of a
//! day that changes nothing, and the model and index in service answering throughout. Also a warm
//! start and an append killed mid-way, which leave the previous model and dataset intact.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{bin, wait_for};

/// Day `day`'s log: users `0 .. 100 + 30·day` (new ones each day) mostly touch items of their
/// cluster (`user % 5 == item % 5`), among items `0 .. 100 + 10·day`; times within the day.
fn write_day(dir: &Path, day: u32) -> PathBuf {
    let p = dir.join(format!("day{day}.csv"));
    let mut s = String::from("user,item,ts\n");
    let (users, items) = (100 + 30 * day, 100 + 10 * day);
    let mut x = 12345u64 + day as u64;
    for u in 0..users {
        for k in 0..10u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (x >> 33) as u32;
            let i = if r % 10 < 9 {
                (u % 5) + 5 * (r / 10 % (items / 5))
            } else {
                r / 10 % items
            };
            let ts = 1_700_000_000i64 + day as i64 * 86_400 + (u * 10 + k) as i64;
            s.push_str(&format!("u{u},i{i},{ts}\n"));
        }
    }
    std::fs::write(&p, s).unwrap();
    p
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/daily.sh")
}

const TRAIN: &str =
    "--threads 1 --members 1 --dim 16 --temperature 0.1 --epochs 8 --batch-size 64 --no-refit";

/// Runs the daily job on `part`; returns its exit code and output.
fn daily(state: &Path, part: &Path, train_args: &str) -> (i32, String) {
    daily_with(state, part, train_args, None)
}

/// [`daily`], judging `candidate` (a model trained elsewhere) when given.
fn daily_with(state: &Path, part: &Path, train_args: &str, candidate: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new("bash");
    if let Some(c) = candidate {
        cmd.env("CANDIDATE", c);
    }
    let out = cmd
        .arg(script())
        .arg(state)
        .arg(part)
        .env("TWOTOWER", bin())
        .env("FORMAT", "csv")
        .env("IMPORT_ARGS", "--time-col ts --dedup keep-all")
        .env("TRAIN_ARGS", train_args)
        .env("EVAL_USERS", "0")
        // A small day judges on few users: the gate allows a drop that small data can show by
        // chance, and still refuses a candidate that learned nothing.
        .env("THRESHOLD", "0.25")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    (out.status.code().unwrap_or(-1), text)
}

fn served(state: &Path) -> String {
    std::fs::read_link(state.join("model"))
        .unwrap()
        .display()
        .to_string()
}

fn current(state: &Path) -> String {
    std::fs::read_to_string(state.join("index/CURRENT"))
        .unwrap()
        .trim()
        .to_string()
}

/// The model and index in service answer `user` with 10 items.
fn answers(state: &Path, user: &str) {
    let mut child = Command::new(bin())
        .args(["--quiet", "query", "--model"])
        .arg(state.join("model"))
        .arg("--index")
        .arg(state.join("index"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "user {user}").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or("")).unwrap();
    assert_eq!(answer["results"].as_array().map(Vec::len), Some(10), "{answer}");
}

#[test]
fn the_daily_job_appends_warm_starts_gates_and_swaps() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let days: Vec<PathBuf> = (0..4).map(|d| write_day(tmp.path(), d)).collect();

    // Day 0: the first run imports and trains from scratch.
    let (code, log) = daily(&state, &days[0], TRAIN);
    assert_eq!(code, 0, "{log}");
    assert_eq!(served(&state), "models/day0");
    let v0 = current(&state);
    answers(&state, "u1");

    // Day 1: appended (new users and items), warm-started, judged, put into service.
    let (code, log) = daily(&state, &days[1], TRAIN);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("gate: Recall@10") && log.contains(": pass"), "{log}");
    assert_eq!(served(&state), "models/day1");
    let v1 = current(&state);
    assert_ne!(v0, v1, "a new index version");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("models/day1/plan.json")).unwrap()).unwrap();
    let tables = plan["warm_start"]["tables"].as_array().unwrap();
    let item = tables.iter().find(|t| t["name"] == "item.id").unwrap();
    assert!(
        item["new"].as_u64().unwrap() > 0,
        "day 1 brought new items: {item}"
    );
    answers(&state, "u125");

    // The same day again: nothing to do.
    let (code, log) = daily(&state, &days[1], TRAIN);
    assert_eq!(code, 4, "{log}");
    assert_eq!(current(&state), v1);

    // Day 2 with a deliberately bad candidate, trained elsewhere: a model that learned nothing
    // (one epoch at a learning rate of 1e-9, so its vectors are its random initialisation). The gate
    // refuses it, and nothing in service changes.
    let bad = tmp.path().join("bad");
    let out = Command::new(bin())
        .args(["--quiet", "--threads", "1", "train", "--data"])
        .arg(state.join("dataset"))
        .arg("--out")
        .arg(&bad)
        .args([
            "--id-only",
            "--dim",
            "8",
            "--members",
            "1",
            "--temperature",
            "0.1",
            "--epochs",
            "1",
        ])
        .args(["--lr", "1e-9", "--embedding-lr", "1e-9", "--no-refit"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, log) = daily_with(&state, &days[2], TRAIN, Some(&bad));
    assert_eq!(code, 3, "{log}");
    assert!(log.contains(": fail"), "{log}");
    assert_eq!(served(&state), "models/day1");
    assert_eq!(current(&state), v1);
    assert!(state.join("rejected/day2/manifest.json").is_file());
    answers(&state, "u1");

    // Day 3: a good candidate again, warm-started from the model still in service (day 1's).
    let (code, log) = daily(&state, &days[3], TRAIN);
    assert_eq!(code, 0, "{log}");
    assert_eq!(served(&state), "models/day3");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("models/day3/plan.json")).unwrap()).unwrap();
    assert!(
        plan["warm_start"]["from"].as_str().unwrap().ends_with("model"),
        "{plan}"
    );
    let ds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("dataset/manifest.json")).unwrap()).unwrap();
    assert_eq!(ds["extra"]["appends"].as_array().unwrap().len(), 3);
    answers(&state, "u185");
}

fn tt(args: &[&str]) -> std::process::Output {
    Command::new(bin()).arg("--quiet").args(args).output().unwrap()
}

fn ok(o: std::process::Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `data import` of the day log `csv` into a new dataset (`how` = `--out`) or onto one
/// (`--append-to`).
fn import_day(csv: &Path, how: &str, ds: &Path) {
    ok(tt(&[
        "data",
        "import",
        "--format",
        "csv",
        "--time-col",
        "ts",
        how,
        ds.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]));
}

/// A small model trained from scratch on `ds` into `out` (one thread, one member, d 16), to warm-start
/// from.
fn base_model(ds: &Path, out: &Path) {
    ok(tt(&[
        "--threads",
        "1",
        "train",
        "--data",
        ds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--members",
        "1",
        "--dim",
        "16",
        "--temperature",
        "0.1",
        "--batch-size",
        "64",
        "--epochs",
        "2",
    ]));
}

#[test]
fn warm_start_refuses_other_networks_and_a_kill_leaves_the_previous_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (d0, d1) = (write_day(tmp.path(), 0), write_day(tmp.path(), 1));
    let ds = tmp.path().join("ds");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    import_day(&d0, "--out", &ds);
    let m0 = tmp.path().join("m0");
    base_model(&ds, &m0);
    import_day(&d1, "--append-to", &ds);
    let (dss, m0s) = (s(&ds), s(&m0));

    // Another dim is refused, naming it; nothing is written.
    let m1 = tmp.path().join("m1");
    let o = tt(&[
        "train",
        "--data",
        &dss,
        "--out",
        &s(&m1),
        "--init-from",
        &m0s,
        "--dim",
        "32",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("model.dim: 16 in the model, 32 here"), "{err}");
    assert!(!m1.exists());
    // --train-from after every row: nothing to train on.
    let o = tt(&[
        "train",
        "--data",
        &dss,
        "--out",
        &s(&m1),
        "--init-from",
        &m0s,
        "--train-from",
        "2100-01-01",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no training rows at or after --train-from"));

    // A warm start into m0 itself, killed once its first epoch is committed beside it: m0 is
    // still the model it was, byte for byte (or, had it finished, the complete new one).
    let before = std::fs::read(m0.join("weights.safetensors")).unwrap();
    let manifest = std::fs::read(m0.join("manifest.json")).unwrap();
    let mut child = Command::new(bin())
        .args([
            "--quiet",
            "--threads",
            "1",
            "train",
            "--data",
            &dss,
            "--out",
            &m0s,
            "--init-from",
            &m0s,
        ])
        .args(["--epochs", "400", "--patience", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hidden = |dir: &Path| {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with(".m0.") && e.path().join("manifest.json").is_file()
        })
    };
    assert!(
        wait_for(Duration::from_secs(300), || hidden(tmp.path())
            || child.try_wait().unwrap().is_some()),
        "no epoch was committed"
    );
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    if status.success() {
        assert_ne!(std::fs::read(m0.join("manifest.json")).unwrap(), manifest);
    } else {
        assert_eq!(std::fs::read(m0.join("weights.safetensors")).unwrap(), before);
        assert_eq!(std::fs::read(m0.join("manifest.json")).unwrap(), manifest);
    }
    // Whichever it is, it loads and embeds.
    let e = tmp.path().join("e.parquet");
    ok(tt(&["embed", "--model", &m0s, "--out", &s(&e)]));
}

#[test]
fn a_warm_start_cut_short_resumes_to_the_uninterrupted_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (d0, d1) = (write_day(tmp.path(), 0), write_day(tmp.path(), 1));
    let ds = tmp.path().join("ds");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let dss = s(&ds);
    import_day(&d0, "--out", &ds);
    let m0 = s(&tmp.path().join("m0"));
    base_model(&ds, Path::new(&m0));
    import_day(&d1, "--append-to", &ds);
    let warm = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "--threads",
            "1",
            "train",
            "--data",
            &dss,
            "--out",
            out,
            "--init-from",
            &m0,
        ];
        args.extend(["--epochs", "3", "--patience", "0"]);
        args.extend(extra);
        tt(&args)
    };
    let (whole, cut) = (s(&tmp.path().join("whole")), s(&tmp.path().join("cut")));
    ok(warm(&whole, &[]));
    ok(warm(&cut, &["--stop-after-epochs", "1"]));
    assert!(
        !Path::new(&cut).join("manifest.json").exists(),
        "a cut run leaves no model yet"
    );
    ok(warm(&cut, &["--resume"]));
    for f in ["weights.safetensors", "vocab.json", "plan.json"] {
        let read = |d: &str| std::fs::read(Path::new(d).join(f)).unwrap();
        if f == "plan.json" {
            let plan = |d: &str| -> serde_json::Value { serde_json::from_slice(&read(d)).unwrap() };
            assert_eq!(plan(&whole)["warm_start"], plan(&cut)["warm_start"]);
        } else {
            assert!(read(&whole) == read(&cut), "{f} differs after --resume");
        }
    }
}

#[test]
fn an_append_killed_midway_leaves_the_dataset_and_the_next_one_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let d0 = write_day(tmp.path(), 0);
    let ds = tmp.path().join("DS");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    import_day(&d0, "--out", &ds);
    let manifest = std::fs::read(ds.join("manifest.json")).unwrap();
    // The killed append reads a FIFO that never ends, so it is certainly mid-append (its staging
    // directory exists) when it is killed: no timing involved.
    let fifo = tmp.path().join("day.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut child = Command::new(bin())
        .args(["--quiet", "data", "import", "--format", "csv", "--time-col", "ts"])
        .arg(&fifo)
        .arg("--append-to")
        .arg(&ds)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut writer = common::fifo_writer(&fifo);
    writer.write_all(b"user,item,ts\nu900,i900,1800000000\n").unwrap();
    let staging = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".DS."))
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(120), || staging(tmp.path()) > 0),
        "no staging directory appeared"
    );
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) }, 0);
    assert!(!child.wait().unwrap().success());
    drop(writer);
    assert_eq!(
        std::fs::read(ds.join("manifest.json")).unwrap(),
        manifest,
        "the dataset is intact"
    );
    ok(tt(&["data", "stats", "--data", &s(&ds)]));
    let d1 = write_day(tmp.path(), 1);
    import_day(&d1, "--append-to", &ds);
    assert_eq!(
        staging(tmp.path()),
        0,
        "the next writer removed the dead one's staging"
    );
}
