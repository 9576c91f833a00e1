//! End to end through the real `twotower` binary: quickstart on a small synthetic dataset, the shell
//! driven through stdin, reload after a rebuild, a rebuild killed mid-way, and batch recommend.

use assert_cmd::Command;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;
use common::bin;

/// One quickstart shared by the tests (training is the slow part): dataset, model and index.
fn world() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::quickstart("e2e", 300, 200, 12_000, 2, 5))
}

fn query(stdin: &str) -> (Vec<Value>, bool, String) {
    let w = world();
    let out = Command::new(bin())
        .arg("query")
        .arg("--model")
        .arg(w.join("model"))
        .arg("--index")
        .arg(w.join("index"))
        .write_stdin(stdin)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (
        lines,
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn items_of(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn quickstart_builds_every_artifact() {
    let w = world();
    for sub in [
        "data/manifest.json",
        "data/train.parquet",
        "model/manifest.json",
        "index/CURRENT",
    ] {
        assert!(w.join(sub).exists(), "{sub} missing");
    }
}

#[test]
fn shell_answers_user_recent_similar_and_lookups() {
    let (out, ok, stderr) = query(
        "user u1\nuser u1 3\nrecent i1 i2 i3\nsimilar i5 4\nitem i5\nhistory u1 3\nk 5\nexact on\nuser u2\nstats\nquit\n",
    );
    assert!(ok, "stderr: {stderr}");
    assert_eq!(out.len(), 10, "{out:?}");
    // user u1: ten items, none from u1's training history, scores descending.
    assert_eq!(out[0]["cmd"], "user");
    assert_eq!(out[0]["source"], "known");
    let recs = items_of(&out[0]);
    assert_eq!(recs.len(), 10);
    let history: Vec<String> = {
        let (h, _, _) = query("history u1 100000\n");
        h[0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!history.is_empty());
    assert!(
        recs.iter().all(|r| !history.contains(r)),
        "a seen item was recommended"
    );
    let scores: Vec<f64> = out[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(items_of(&out[1]).len(), 3);
    assert_eq!(items_of(&out[1])[..], recs[..3], "k=3 is a prefix of k=10");
    // recent: the anonymous path excludes the items given.
    assert_eq!(out[2]["source"], "items");
    let r = items_of(&out[2]);
    assert_eq!(r.len(), 10);
    assert!(!r.iter().any(|i| ["i1", "i2", "i3"].contains(&i.as_str())));
    // similar: four neighbours, not the item itself.
    let s = items_of(&out[3]);
    assert_eq!(s.len(), 4);
    assert!(!s.contains(&"i5".to_string()));
    assert_eq!(out[4]["items"][0]["item"], "i5");
    assert_eq!(out[5]["items"].as_array().unwrap().len(), 3);
    assert_eq!(out[6]["set"], "k");
    assert_eq!(out[7]["set"], "exact");
    // exact on: ranked exactly, with the HNSW overlap reported.
    assert_eq!(items_of(&out[8]).len(), 5);
    assert!(out[8]["exact_overlap"].as_f64().unwrap() >= 0.6);
    assert!(out[9]["queries"].as_u64().unwrap() >= 4);
}

#[test]
fn shell_reports_unknown_ids_without_crashing() {
    let (out, ok, stderr) = query("user nobody\nitem nope\nrecent i1 nope2\nsimilar nope3\nbogus\nuser u1\n");
    assert!(!ok, "failed lines make the exit status non-zero");
    assert!(stderr.contains("4 command(s) failed"), "{stderr}");
    assert_eq!(out[0]["source"], "popularity");
    assert_eq!(items_of(&out[0]).len(), 10);
    assert!(out[1]["error"].as_str().unwrap().contains("nope"));
    assert!(out[2]["error"].as_str().unwrap().contains("nope2"));
    assert!(out[3]["error"].as_str().unwrap().contains("nope3"));
    assert!(out[4]["error"].as_str().unwrap().contains("unknown command"));
    assert_eq!(out[5]["source"], "known", "the shell goes on after errors");
}

fn twotower(args: &[&str]) -> assert_cmd::assert::Assert {
    Command::new(bin())
        .args(args)
        .timeout(Duration::from_secs(300))
        .assert()
}

fn copy_world(name: &str) -> PathBuf {
    let w = world();
    let dir = std::env::temp_dir().join(format!("twotower-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(w.join("index"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn read_line(r: &mut impl BufRead) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
}

#[test]
fn shell_follows_a_rebuild() {
    let w = world();
    let dir = copy_world("reload");
    let index = dir.join("index");
    let model = w.join("model");
    let mut child: Child = std::process::Command::new(bin())
        .arg("query")
        .arg("--model")
        .arg(&model)
        .arg("--index")
        .arg(&index)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "user u1").unwrap();
    let before = read_line(&mut stdout);
    let v0 = before["index_version"].as_u64().unwrap();
    twotower(&[
        "--threads",
        "1",
        "index",
        "rebuild",
        "--model",
        model.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
    ])
    .success();
    writeln!(stdin, "user u1").unwrap();
    let note = read_line(&mut stdout);
    assert!(note["note"].as_str().unwrap().contains("index moved"), "{note}");
    let after = read_line(&mut stdout);
    assert_eq!(after["index_version"].as_u64().unwrap(), v0 + 1);
    assert_eq!(items_of(&before), items_of(&after), "same model, same answer");
    writeln!(stdin, "reload").unwrap();
    assert_eq!(read_line(&mut stdout)["value"].as_u64().unwrap(), v0 + 1);
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn killed_rebuild_leaves_the_previous_version_live() {
    let w = world();
    let dir = copy_world("kill");
    let index = dir.join("index");
    let model = w.join("model");
    let current = std::fs::read_to_string(index.join("CURRENT")).unwrap();
    // Kill real rebuilds at several points (loading, embedding, graph, writing).
    for delay_ms in [5u64, 40, 120, 300] {
        let mut child = std::process::Command::new(bin())
            .args(["--threads", "1", "index", "rebuild", "--quiet", "--model"])
            .arg(&model)
            .arg("--index")
            .arg(&index)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let now = std::fs::read_to_string(index.join("CURRENT")).unwrap();
        if status.success() {
            // It finished before the kill: CURRENT moved to a complete version, which must load.
            assert_ne!(now, current);
        }
        let (out, ok, stderr) = {
            let o = Command::new(bin())
                .arg("query")
                .arg("--model")
                .arg(&model)
                .arg("--index")
                .arg(&index)
                .write_stdin("user u1\n")
                .timeout(Duration::from_secs(60))
                .output()
                .unwrap();
            (
                String::from_utf8(o.stdout).unwrap(),
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        assert!(
            ok,
            "after a kill at {delay_ms} ms the index no longer loads: {stderr}"
        );
        let answer: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(items_of(&answer).len(), 10);
    }
    // Debris of the killed writers is cleaned by gc, and the live version survives it.
    twotower(&["index", "gc", "--index", index.to_str().unwrap(), "--keep", "1"]).success();
    twotower(&[
        "index",
        "check",
        "--quiet",
        "--model",
        model.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--queries",
        "50",
        "--min-recall",
        "0.5",
    ])
    .success();
}

#[test]
fn recommend_all_writes_every_user_without_seen_items() {
    let w = world();
    let out = w.join("recs.parquet");
    let json = w.join("recs.jsonl");
    let (model, index) = (w.join("model"), w.join("index"));
    for o in [&out, &json] {
        Command::new(bin())
            .args(["recommend", "--all", "--k", "7", "--quiet", "--model"])
            .arg(&model)
            .arg("--index")
            .arg(&index)
            .arg("--out")
            .arg(o)
            .timeout(Duration::from_secs(120))
            .assert()
            .success()
            .stderr(predicates::str::contains("300 users"));
    }
    let text = std::fs::read_to_string(&json).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 300 * 7);
    assert_eq!(rows[0]["rank"], 1);
    assert_eq!(rows[6]["rank"], 7);
    assert!(std::fs::metadata(&out).unwrap().len() > 100);
    // u1's rows are the shell's answer for u1 with k=7.
    let (shell, _, _) = query("user u1 7\n");
    let u1: Vec<String> = rows
        .iter()
        .filter(|r| r["user"] == "u1")
        .map(|r| r["item"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(u1, items_of(&shell[0]));
}

#[test]
fn recommend_user_file_counts_unknown_users() {
    let w = world();
    let list = w.join("users.txt");
    std::fs::write(&list, "# a comment\nu1\nstranger\n\nu2\n").unwrap();
    Command::new(bin())
        .args(["recommend", "--quiet", "--k", "3", "--model"])
        .arg(w.join("model"))
        .arg("--index")
        .arg(w.join("index"))
        .arg("--users")
        .arg(&list)
        .arg("--out")
        .arg(w.join("few.jsonl"))
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "1 unknown user(s) got the popularity fallback",
        ));
    let text = std::fs::read_to_string(w.join("few.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 9);
}

#[test]
fn query_refuses_an_index_of_another_model() {
    let w = world();
    let other = std::env::temp_dir().join(format!("twotower-e2e-{}-other", std::process::id()));
    let _ = std::fs::remove_dir_all(&other);
    twotower(&[
        "train",
        "--quiet",
        "--data",
        w.join("data").to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
        "--epochs",
        "1",
        "--seed",
        "9",
    ])
    .success();
    let started = Instant::now();
    Command::new(bin())
        .arg("query")
        .arg("--model")
        .arg(&other)
        .arg("--index")
        .arg(w.join("index"))
        .write_stdin("user u1\n")
        .assert()
        .failure()
        .stderr(predicates::str::contains("model"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn bench_ann_measures_both_builders_on_embedded_vectors() {
    let w = world();
    let dir = copy_world("bench-ann");
    let (items, users) = (dir.join("items.parquet"), dir.join("users.parquet"));
    let model = w.join("model");
    for (flag, out) in [("--items", &items), ("--users", &users)] {
        Command::new(bin())
            .args(["embed", "--quiet", flag, "--model"])
            .arg(&model)
            .arg("--out")
            .arg(out)
            .timeout(Duration::from_secs(120))
            .assert()
            .success();
    }
    for builder in ["native", "hnsw-rs"] {
        let out = Command::new(bin())
            .args(["--threads", "2", "bench", "ann", "--json", "--ef", "10,200"])
            .args(["--builder", builder, "--items"])
            .arg(&items)
            .arg("--queries")
            .arg(&users)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rep["items"], 200, "{rep}");
        assert_eq!(rep["queries"], 300, "{rep}");
        let points = rep["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        // ef 200 ≥ the catalogue: the beam sees every reachable item, so recall is (almost) exact.
        let r = points[1]["recall"].as_f64().unwrap();
        assert!(r >= 0.99, "{builder}: recall@10 at ef 200 is {r}");
        assert!(points[0]["qps"].as_f64().unwrap() > 0.0);
        assert!(rep["build_s"].as_f64().unwrap() >= 0.0);
    }
    // A file that is not Parquet is an error naming it, not a panic.
    let bad = dir.join("bad.parquet");
    std::fs::write(&bad, b"not parquet").unwrap();
    Command::new(bin())
        .args(["bench", "ann", "--items"])
        .arg(&bad)
        .timeout(Duration::from_secs(60))
        .assert()
        .failure()
        .stderr(predicates::str::contains("bad.parquet"));
}
