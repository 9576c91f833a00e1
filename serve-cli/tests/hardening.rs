//! Failure behaviour through the real binary: a server stalled by a half-sent request, a broken
//! CURRENT under the server and the shell, error bodies the framework makes itself, bad bytes on the
//! shell's stdin, headers and BOMs in user lists, and a batch job killed mid-run. No test depends on
//! timing: conditions are polled with generous deadlines and ports come from the OS. The hostile
//! user's cases are in `hostile.rs`.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
mod hard_world;
use common::bin;
use hard_world::{copy_index, metric, shell, sigterm, wait_for, world, Server};

#[test]
fn sigterm_with_a_half_sent_request_exits_within_the_deadline() {
    let index = copy_index("sigterm");
    // A header timeout far beyond the test's bound: only the shutdown deadline can end the stall.
    let mut s = Server::start(
        &index,
        &["--header-timeout-ms", "600000", "--shutdown-timeout-ms", "1000"],
    );
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(b"GET /v1/items/i1 HTT").unwrap();
    c.flush().unwrap();
    // The server has the connection once it answers another one.
    assert_eq!(s.get("/v1/items/i1").0, 200);
    sigterm(&s.child);
    let status = wait_for(30, "the server to exit after SIGTERM", || {
        s.child.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
    drop(c);
}

#[test]
fn a_stalled_request_head_is_closed_after_the_header_timeout() {
    let index = copy_index("stall");
    let s = Server::start(&index, &["--header-timeout-ms", "500"]);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"GET /v1/items/i1 HTTP/1.1\r\nhost: x\r\n").unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    // The server closes the connection (EOF, perhaps after a 408); a server without the timeout
    // would leave this read blocked until its 30 s read timeout.
    let r = c.read_to_end(&mut buf);
    assert!(r.is_ok(), "{r:?} after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[test]
fn framework_errors_have_json_bodies() {
    let index = copy_index("json-errors");
    let s = Server::start(&index, &["--max-body", "1024"]);
    // A path that is not UTF-8.
    let (code, v) = s.get("/v1/items/%FF%FE/similar");
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].is_string());
    // A method the route does not have.
    let (code, v) = s.raw_json(b"DELETE /v1/items/i1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(code, 405, "{v}");
    assert!(v["error"].is_string());
    // A chunked body over the limit (no content-length to refuse it by).
    let chunk = format!("{{\"recent_items\": [\"{}\"]}}", "x".repeat(4000));
    let req = format!(
        "POST /v1/recommendations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (code, v) = s.raw_json(req.as_bytes());
    assert_eq!(code, 413, "{v}");
    assert!(v["error"].is_string());
    // A request target that is too long.
    let (code, v) = s.get(&format!("/v1/items/{}", "a".repeat(10_000)));
    assert_eq!(code, 414, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit"));
    // Too many header lines.
    let mut req = String::from("GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
    for i in 0..150 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let (code, v) = s.raw_json(req.as_bytes());
    assert_eq!(code, 431, "{v}");
    // Ids no client should send, in a path and in a body.
    let (code, v) = s.get("/v1/users/a%09b/recommendations");
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("control character"), "{v}");
    for (body, want) in [
        (json!({"recent_items": [""]}), "empty"),
        (json!({"recent_items": ["i1", "a\u{0}b"]}), "control character"),
        (json!({"recent_items": ["i1\n"]}), "control character"),
    ] {
        let (code, v) = s.post("/v1/recommendations", &body.to_string());
        assert_eq!(code, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
}

/// Replaces `path` in one rename, as the index's writers do: a watcher never reads it half written
/// (an empty `CURRENT` then a second change would count as two failures).
fn write_whole(path: &Path, text: &str) {
    let tmp = path.with_extension("test-tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_broken_current_is_retried_only_when_it_changes() {
    let index = copy_index("broken-current");
    let s = Server::start(&index, &["--watch-ms", "20"]);
    let current = index.join("CURRENT");
    let good = std::fs::read_to_string(&current).unwrap();
    // CURRENT names a version that does not exist.
    write_whole(&current, "0042\n");
    let failures = wait_for(30, "a reload failure", || {
        let m = s.metrics();
        let f = metric(&m, "twotower_index_reload_failures_total");
        (f >= 1).then_some(f)
    });
    // While nothing changes, the watcher keeps looking but does not retry.
    let ticks = metric(&s.metrics(), "twotower_index_watch_ticks_total");
    wait_for(60, "50 more watch ticks", || {
        (metric(&s.metrics(), "twotower_index_watch_ticks_total") >= ticks + 50).then_some(())
    });
    let m = s.metrics();
    assert_eq!(
        metric(&m, "twotower_index_reload_failures_total"),
        failures,
        "retried though nothing changed:\n{m}"
    );
    // Still serving the loaded version.
    assert_eq!(s.get("/v1/users/u1/recommendations?k=3").0, 200);
    // Fixed, then rebuilt: the server follows.
    write_whole(&current, &good);
    Command::new(bin())
        .args(["index", "rebuild", "--quiet", "--model"])
        .arg(world().join("model"))
        .arg("--index")
        .arg(&index)
        .timeout(Duration::from_secs(120))
        .assert()
        .success();
    wait_for(60, "the rebuilt version to be served", || {
        let m = s.metrics();
        (metric(&m, "twotower_index_reloads_total") >= 1 && metric(&m, "twotower_index_version") >= 2)
            .then_some(())
    });
    let (code, v) = s.get("/v1/users/u1/recommendations?k=3");
    assert_eq!(code, 200);
    assert!(v["index_version"].as_u64().unwrap() >= 2, "{v}");
}

#[test]
fn the_shell_answers_past_a_line_that_is_not_utf8_and_prints_help_as_json() {
    let (out, ok) = shell(
        &world().join("index"),
        b"user u1 3\n\xff\xfe oops\nuser u2 3\nhelp\n",
    );
    assert!(!ok, "the bad line counts as a failed command");
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0]["source"], "known");
    assert!(out[0]["took_ms"].is_number(), "{}", out[0]);
    assert_eq!(out[0]["query"]["user"], "u1");
    assert!(out[1]["error"].as_str().unwrap().contains("UTF-8"), "{}", out[1]);
    assert_eq!(out[2]["query"]["user"], "u2");
    assert_eq!(out[3]["cmd"], "help");
    assert!(out[3]["commands"].as_array().unwrap().len() > 10);
}

#[test]
fn the_shell_keeps_answering_when_current_breaks() {
    let index = copy_index("shell-current");
    let mut child = std::process::Command::new(bin())
        .arg("query")
        .arg("--model")
        .arg(world().join("model"))
        .arg("--index")
        .arg(&index)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut read = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    writeln!(stdin, "user u1 3").unwrap();
    let before = read();
    assert_eq!(before["source"], "known");
    write_whole(&index.join("CURRENT"), "not a version\n");
    writeln!(stdin, "user u1 3").unwrap();
    let note = read();
    assert!(
        note["note"].as_str().unwrap().contains("still answering"),
        "{note}"
    );
    assert_eq!(read()["results"], before["results"]);
    std::fs::remove_file(index.join("CURRENT")).unwrap();
    writeln!(stdin, "user u1 3").unwrap();
    writeln!(stdin, "user u2 3").unwrap();
    // No second note while it stays broken.
    assert_eq!(read()["results"], before["results"]);
    assert_eq!(read()["query"]["user"], "u2");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn recommend_users_file_skips_bom_and_header_and_rejects_control_characters() {
    let dir = copy_index("users-file").parent().unwrap().to_path_buf();
    let list = dir.join("users.csv");
    std::fs::write(&list, "\u{feff}user_id\r\nu1\r\nu2\r\n").unwrap();
    let out = dir.join("recs.jsonl");
    let run = |list: &Path| {
        Command::new(bin())
            .args(["recommend", "--quiet", "--k", "2", "--model"])
            .arg(world().join("model"))
            .arg("--index")
            .arg(world().join("index"))
            .arg("--users")
            .arg(list)
            .arg("--out")
            .arg(&out)
            .timeout(Duration::from_secs(120))
            .assert()
    };
    let a = run(&list).success();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(stderr.contains("header line \"user_id\""), "{stderr}");
    assert!(!stderr.contains("unknown user"), "{stderr}");
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["user"], "u1");
    assert_eq!(rows[3]["user"], "u2");
    std::fs::write(&list, "u1\tu2\n").unwrap();
    let a = run(&list).failure();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stderr.contains("line 1") && stderr.contains("control character"),
        "{stderr}"
    );
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".recs.parquet.tmp-"))
        .collect()
}

#[test]
fn recommend_killed_mid_run_leaves_a_temporary_the_next_run_removes() {
    let dir = copy_index("killed-recommend").parent().unwrap().to_path_buf();
    let out = dir.join("recs.parquet");
    let list = dir.join("users.txt");
    let cmd = |list: &Path| {
        let mut c = std::process::Command::new(bin());
        c.args(["recommend", "--quiet", "--exact", "--k", "50", "--model"])
            .arg(world().join("model"))
            .arg("--index")
            .arg(world().join("index"))
            .arg("--users")
            .arg(list)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // A list long enough that the job is still writing when the temporary appears; a machine fast
    // enough to finish first gets a longer list.
    let mut lines = 50_000usize;
    let mut killed = false;
    for _ in 0..6 {
        let text: String = (0..lines).map(|i| format!("u{}\n", i % 300)).collect();
        std::fs::write(&list, text).unwrap();
        let mut child = cmd(&list).spawn().unwrap();
        let seen = wait_for(120, "the temporary or the end of the job", || {
            if !temps(&dir).is_empty() {
                return Some(true);
            }
            child.try_wait().unwrap().map(|_| false)
        });
        if seen && child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            // It may still have finished between the check and the kill: then try a longer list.
            if !out.exists() {
                killed = true;
                break;
            }
        }
        let _ = child.wait();
        let _ = std::fs::remove_file(&out);
        lines *= 4;
    }
    assert!(killed, "the job always finished before it could be killed");
    assert_eq!(temps(&dir).len(), 1, "kill -9 leaves its temporary");
    assert!(!out.exists());
    std::fs::write(&list, "u1\nu2\n").unwrap();
    assert!(cmd(&list).status().unwrap().success());
    assert!(out.exists());
    assert_eq!(
        temps(&dir),
        Vec::<String>::new(),
        "the next run removed the dead writer's temporary"
    );
}

/// A disk that fills while `recommend` writes (simulated with a file-size limit: writes past
/// 16 KiB fail as on a full disk) fails the job with an error naming the output file, and leaves
/// neither the output nor a temporary behind.
#[test]
fn a_full_disk_during_recommend_names_the_output_and_leaves_nothing() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recs.jsonl");
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["recommend", "--quiet", "--all", "--k", "100", "--model"])
        .arg(world().join("model"))
        .arg("--index")
        .arg(world().join("index"))
        .arg("--out")
        .arg(&out);
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 16 * 1024,
                rlim_max: 16 * 1024,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let res = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "the job cannot finish on a full disk");
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
