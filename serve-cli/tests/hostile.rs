//! The hostile user's cases through the real binary: terminal injection from data, secrets in
//! addresses, stalled bodies and connection floods, sizes that cannot be allocated, ids refused at
//! import, ambiguous and changing sources, a model paired with another dataset, bodiless HTTP errors
//! and output paths. No test depends on timing: conditions are polled with generous deadlines and
//! ports come from the OS.

use assert_cmd::Command;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

mod common;
mod hard_world;
use common::bin;
use hard_world::{copy_index, shell, wait_for, world, Server};
/// `twotower ARGS` (with `--quiet`), its output whatever the status.
fn tt(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .arg("--quiet")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twotower-hard2-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether `text` holds a character a terminal would act on (any control but newline).
fn has_raw_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

/// A catalogue whose titles carry terminal escapes and whose genres a newline, imported from CSV,
/// trained and indexed: `data/`, `model/`, `index/`.
fn hostile() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("hostile");
        let mut log = String::from("user,item,ts\n");
        for u in 0..60 {
            for k in 0..8 {
                log.push_str(&format!("u{u},i{},{}\n", (u * 3 + k * 7) % 40, 1000 + k));
            }
        }
        std::fs::write(dir.join("log.csv"), log).unwrap();
        let mut items = String::from("item,title,genres\n");
        for i in 0..40 {
            let title = match i {
                0 => "\u{1b}]0;PWNED\u{7}".to_string(),
                1 => "\u{1b}[2J cleared".to_string(),
                _ => format!("Film {i}"),
            };
            let genres = if i % 2 == 0 { "X\nY|Drama" } else { "Drama" };
            items.push_str(&format!("i{i},\"{title}\",\"{genres}\"\n"));
        }
        std::fs::write(dir.join("items.csv"), items).unwrap();
        let ok = |args: &[&str]| {
            let o = tt(args);
            assert!(o.status.success(), "{args:?}: {}", stderr_of(&o));
        };
        let (data, model, index) = (dir.join("data"), dir.join("model"), dir.join("index"));
        ok(&[
            "data",
            "import",
            "--format",
            "csv",
            s(&dir.join("log.csv")),
            "--time-col",
            "ts",
            "--items",
            s(&dir.join("items.csv")),
            "--out",
            s(&data),
        ]);
        ok(&[
            "--threads",
            "1",
            "train",
            "--data",
            s(&data),
            "--out",
            s(&model),
            "--epochs",
            "1",
            "--dim",
            "8",
            "--batch-size",
            "64",
            "--seed",
            "3",
        ]);
        ok(&[
            "--threads",
            "1",
            "index",
            "build",
            "--model",
            s(&model),
            "--index",
            s(&index),
        ]);
        dir
    })
}

#[test]
fn catalogue_control_characters_never_reach_the_terminal_from_the_shell() {
    let w = hostile();
    let out = Command::new(bin())
        .args(["query", "--format", "table", "--model"])
        .arg(w.join("model"))
        .arg("--index")
        .arg(w.join("index"))
        .write_stdin(
            "item i0\nitem i1\nitem i2\nfind pwned\nfind cleared\nhistory u0\nuser u0 40\n\
             similar i0 40\nuser \u{1b}[2Jx 3\nitem \u{1b}]0;x\u{7}\nfilter genre=Drama\nuser u1 40\n\
             user \u{202e}evil 3\n",
        )
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The titles and the genre are there, shown escaped.
    assert!(stdout.contains("\\u{1b}]0;PWNED\\u{7}"), "{stdout}");
    assert!(stdout.contains("\\u{1b}[2J cleared"), "{stdout}");
    assert!(stdout.contains("X\\nY"), "{stdout}");
    // A bidirectional override (it reorders what the terminal shows after it) is escaped too.
    assert!(stdout.contains("\\u{202e}evil"), "{stdout}");
    assert!(!stdout.contains('\u{202e}'), "{stdout:?}");
    assert!(
        !has_raw_control(&stdout),
        "raw control characters on stdout: {stdout:?}"
    );
    assert!(
        !has_raw_control(&stderr),
        "raw control characters on stderr: {stderr:?}"
    );
    // `data stats` lists the top items with their titles.
    let o = tt(&["data", "stats", "--top", "40", "--data", s(&w.join("data"))]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(stdout.contains("PWNED"), "{stdout}");
    assert!(!has_raw_control(&stdout), "{stdout:?}");
}

#[test]
fn ids_in_index_add_reports_and_errors_never_reach_the_terminal_raw() {
    let w = hostile();
    let dir = scratch("add-warnings");
    let index = dir.join("index");
    let ok = std::process::Command::new("cp")
        .arg("-r")
        .arg(w.join("index"))
        .arg(&index)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let model = w.join("model");
    let o = tt(&[
        "index",
        "add",
        "--model",
        s(&model),
        "--index",
        s(&index),
        "--remove",
        "\u{1b}[2J,zz\u{7}\u{9b}1m",
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), stderr_of(&o));
    assert!(
        !has_raw_control(&stdout) && !has_raw_control(&stderr),
        "{stdout:?} {stderr:?}"
    );
    assert!(stdout.contains("\\u{1b}[2J"), "{stdout:?} {stderr:?}");
    // An error that echoes an id: escaped too.
    let o = tt(&[
        "recommend",
        "--model",
        s(&model),
        "--index",
        s(&index),
        "--users",
        s(&dir.join("no\u{1b}[2Jsuch")),
        "--out",
        s(&dir.join("r.jsonl")),
    ]);
    let stderr = stderr_of(&o);
    assert!(!o.status.success());
    assert!(!has_raw_control(&stderr), "{stderr:?}");
}

#[test]
fn a_milvus_password_in_an_address_is_never_printed() {
    let w = world();
    let model = w.join("model");
    let addr = "milvus://admin:S3cretPW@127.0.0.1:1/recs";
    let out = scratch("password").join("r.jsonl");
    for args in [
        vec!["query", "--model", s(&model), "--index", addr],
        vec![
            "recommend",
            "--all",
            "--model",
            s(&model),
            "--index",
            addr,
            "--out",
            s(&out),
        ],
        vec!["serve", "--model", s(&model), "--index", addr],
        vec!["index", "build", "--model", s(&model), "--index", addr],
        vec!["index", "check", "--model", s(&model), "--index", addr],
    ] {
        let o = tt(&args);
        let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), stderr_of(&o));
        assert!(!o.status.success(), "{args:?}");
        assert!(
            !stdout.contains("S3cretPW") && !stderr.contains("S3cretPW"),
            "{args:?} printed the password: {stdout}{stderr}"
        );
        assert!(stderr.contains("admin:***@127.0.0.1"), "{args:?}: {stderr}");
        assert!(stderr.contains("TWOTOWER_MILVUS_TOKEN"), "{args:?}: {stderr}");
    }
}

/// Reads one reply from `c` until the server closes the connection; (status, whole reply).
fn read_reply(c: &mut TcpStream) -> (u16, String) {
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut reply = Vec::new();
    let r = c.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    assert!(r.is_ok(), "{r:?}: {text:?}");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (code, text)
}

#[test]
fn a_stalled_body_is_answered_408_and_closed_after_the_body_timeout() {
    let index = copy_index("stalled-body");
    // A header timeout far beyond the test's bound: only the body timeout can end the stall.
    let s = Server::start(
        &index,
        &["--header-timeout-ms", "600000", "--body-timeout-ms", "200"],
    );
    for path in ["/v1/recommendations", "/healthz"] {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .unwrap();
        let (code, reply) = read_reply(&mut c);
        assert_eq!(code, 408, "{path}: {reply}");
        let body = reply.split_once("\r\n\r\n").unwrap().1;
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply:?}"));
        assert!(v["error"].as_str().unwrap().contains("--body-timeout-ms"), "{v}");
    }
    // A chunked body that stalls is bounded the same way.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(
        b"POST /v1/recommendations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          transfer-encoding: chunked\r\n\r\n5\r\n{\"rec\r\n",
    )
    .unwrap();
    let (code, reply) = read_reply(&mut c);
    assert_eq!(code, 408, "chunked: {reply}");
    // A whole body is still read and answered.
    let (code, v) = s.post("/v1/recommendations", r#"{"recent_items": ["i1"], "k": 3}"#);
    assert_eq!(code, 200, "{v}");
}

#[test]
fn connections_beyond_the_bound_get_503_while_healthz_answers() {
    let index = copy_index("max-connections");
    let s = Server::start(
        &index,
        &[
            "--max-connections",
            "2",
            "--header-timeout-ms",
            "600000",
            "--body-timeout-ms",
            "600000",
        ],
    );
    // Two clients that stall mid-body hold every connection the bound allows.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.write_all(
            b"POST /v1/recommendations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        )
        .unwrap();
        stalled.push(c);
    }
    // Once the server holds both, another client is answered 503 with a JSON error…
    let v = wait_for(60, "a 503 beyond the connection bound", || {
        let (code, v) = s.get("/v1/items/i1");
        (code == 503).then_some(v)
    });
    assert!(v["error"].as_str().unwrap().contains("--max-connections"), "{v}");
    // …and /healthz still answers.
    let (code, reply) = s.raw(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(code, 200, "{reply}");
    assert!(reply.ends_with("ok\n"), "{reply:?}");
    // When the stalled clients hang up, requests are served again.
    drop(stalled);
    wait_for(60, "requests to be served again", || {
        (s.get("/v1/items/i1").0 == 200).then_some(())
    });
}

/// (status, body) of a raw request the HTTP layer answers itself.
fn raw_no_body(s: &Server, request: &[u8]) -> (u16, String) {
    let mut c = TcpStream::connect(&s.addr).unwrap();
    // The reply may come before the whole request is read: read while writing.
    let mut reader = c.try_clone().unwrap();
    let request = request.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = c.write_all(&request);
        c
    });
    let (code, reply) = read_reply(&mut reader);
    drop(writer.join());
    let body = reply.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (code, body)
}

#[test]
fn errors_the_http_layer_answers_itself_have_the_documented_status_and_no_body() {
    let index = copy_index("http-layer");
    let s = Server::start(&index, &[]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "two different Content-Length",
            b"POST /v1/recommendations HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}"
                .to_vec(),
            400,
        ),
        (
            "obs-fold",
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n  folded\r\n\r\n".to_vec(),
            400,
        ),
        (
            "raw 0xFF in the path",
            b"GET /v1/items/\xff HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "500 header lines",
            {
                let mut r = b"GET /healthz HTTP/1.1\r\nhost: x\r\n".to_vec();
                for i in 0..500 {
                    r.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
                }
                r.extend_from_slice(b"\r\n");
                r
            },
            431,
        ),
        (
            "a 100 KB target",
            format!("GET /v1/items/{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(100_000)).into_bytes(),
            414,
        ),
        (
            "a head over the buffer (a 1 MB target)",
            format!("GET /v1/items/{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(1_000_000)).into_bytes(),
            431,
        ),
    ];
    for (what, request, want) in cases {
        let (code, body) = raw_no_body(&s, &request);
        assert_eq!(code, want, "{what}");
        assert_eq!(body, "", "{what}: the HTTP layer's answers have no body");
    }
    // The server is unharmed.
    let (code, reply) = s.raw(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(code, 200, "{reply}");
}

#[test]
fn sizes_that_cannot_be_allocated_are_refused_before_training() {
    let data = world().join("data");
    let out = scratch("alloc").join("model");
    for (flags, want) in [
        (
            vec!["--history-len", "4294967296"],
            "user.history_len (--history-len)",
        ),
        (vec!["--layers", "100000,100000"], "item.layers (--layers)"),
        (vec!["--dim", "2000000000"], "model.dim (--dim)"),
        (
            vec!["--batch-size", "100000000000"],
            "train.batch_size (--batch-size)",
        ),
    ] {
        let mut args = vec!["train", "--data", s(&data), "--out", s(&out), "--epochs", "1"];
        args.extend(&flags);
        let o = tt(&args);
        let stderr = stderr_of(&o);
        assert_eq!(o.status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("needs about"),
            "{flags:?}: {stderr}"
        );
        assert!(!stderr.contains("memory allocation"), "{flags:?}: {stderr}");
    }
    assert!(!out.exists());
    // Other sizes from flags: eval's cut-offs, synth's counts, thread counts.
    let model = world().join("model");
    let syn = scratch("alloc-synth").join("syn");
    for (args, want) in [
        (vec!["eval", "--model", s(&model), "--k", "1000000000000"], "--k"),
        (
            vec![
                "data",
                "synth",
                "--users",
                "10",
                "--items",
                "10",
                "--interactions",
                "100000000000000",
                "--clusters",
                "2",
                "--out",
                s(&syn),
            ],
            "--interactions",
        ),
        (
            vec!["--threads", "100000000", "data", "stats", "--data", s(&data)],
            "--threads",
        ),
        (
            vec![
                "serve",
                "--workers",
                "100000000",
                "--model",
                s(&model),
                "--index",
                s(&world().join("index")),
            ],
            "--workers",
        ),
    ] {
        let o = tt(&args);
        let stderr = stderr_of(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    // A query's k and search breadth, however high the front end's own limit.
    let (out, _) = shell(
        &world().join("index"),
        b"k 1000000000000\nuser u1\nef 1000000000000\nk 5\nuser u1\n",
    );
    assert!(out[1]["error"].as_str().unwrap().contains("at most"), "{out:?}");
    assert!(out[4]["error"].as_str().unwrap().contains("at most"), "{out:?}");
    let index = copy_index("absurd-k");
    let srv = Server::start(&index, &["--max-k", "1000000000000000"]);
    let (code, v) = srv.get("/v1/users/u1/recommendations?k=1000000000000");
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most"), "{v}");
}

fn import(format: &str, src: &Path, out: &Path) -> std::process::Output {
    tt(&["data", "import", "--format", format, s(src), "--out", s(out)])
}

/// Writes a Parquet file with string columns `user` and `item`.
fn write_parquet(path: &Path, users: &[&str], items: &[&str]) {
    use arrow::array::{ArrayRef, StringArray};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let batch = RecordBatch::try_from_iter([
        ("user", Arc::new(StringArray::from(users.to_vec())) as ArrayRef),
        ("item", Arc::new(StringArray::from(items.to_vec())) as ArrayRef),
    ])
    .unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn ids_with_control_characters_or_empty_are_refused_at_import_naming_file_and_row() {
    let dir = scratch("bad-ids");
    let out = dir.join("ds");
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "csv",
            "nul.csv",
            b"user,item\nu1,i1\nu\x002,i2\n".to_vec(),
            "nul.csv:3",
        ),
        (
            "csv",
            "newline.csv",
            b"user,item\nu1,i1\nu2,\"i\n2\"\n".to_vec(),
            "newline.csv:3",
        ),
        (
            "csv",
            "escape.csv",
            b"user,item\nu1,i1\nu2,\x1b[2J\n".to_vec(),
            "escape.csv:3",
        ),
        (
            "tsv",
            "tab.tsv",
            b"user\titem\nu1\ti1\nu\x072\ti2\n".to_vec(),
            "tab.tsv:3",
        ),
        (
            "json",
            "empty.json",
            b"{\"u1\": {\"i1\": 5},\n \"\": {\"i2\": 4}}".to_vec(),
            "empty.json:2",
        ),
        (
            "json",
            "newline.json",
            b"{\"u1\": {\"i1\": 5},\n \"u2\": {\"i\\n2\": 4}}".to_vec(),
            "newline.json:2",
        ),
    ];
    for (format, name, bytes, at) in cases {
        let src = dir.join(name);
        std::fs::write(&src, bytes).unwrap();
        let o = import(format, &src, &out);
        let stderr = stderr_of(&o);
        assert!(!o.status.success(), "{name} was imported");
        assert!(stderr.contains(at), "{name}: {stderr}");
        assert!(
            stderr.contains("control character") || stderr.contains("empty"),
            "{name}: {stderr}"
        );
        assert!(!has_raw_control(&stderr), "{name}: {stderr:?}");
        assert!(!out.exists());
    }
    for (name, users, items, row) in [
        ("newline.parquet", vec!["u1", "u\n2"], vec!["i1", "i2"], "row 2"),
        ("nul.parquet", vec!["u1", "u2"], vec!["i1", "i\u{0}2"], "row 2"),
    ] {
        let src = dir.join(name);
        write_parquet(&src, &users, &items);
        let o = import("parquet", &src, &out);
        let stderr = stderr_of(&o);
        assert!(!o.status.success(), "{name} was imported");
        assert!(
            stderr.contains(name) && stderr.contains(row) && stderr.contains("control character"),
            "{name}: {stderr}"
        );
        assert!(!out.exists());
    }
}

#[test]
fn ambiguous_columns_are_refused_naming_them() {
    let dir = scratch("ambiguous");
    let out = dir.join("ds");
    let src = dir.join("dup.csv");
    std::fs::write(&src, "user,item,item,ts\nu1,i1,i2,1\n").unwrap();
    let o = import("csv", &src, &out);
    let stderr = stderr_of(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains("dup.csv") && stderr.contains("columns 2 and 3") && stderr.contains("\"item\""),
        "{stderr}"
    );
    let tree = dir.join("log");
    write_parquet(
        &tree.join("item=zzz/part-0.parquet"),
        &["u1", "u2"],
        &["i1", "i2"],
    );
    let o = import("parquet", &tree, &out);
    let stderr = stderr_of(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains("partition key \"item\"") && stderr.contains("item=zzz") && stderr.contains("column"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// Imports a log of `format` written by `write(path, rows)` (which returns where to cut it) while
/// the test cuts it there; see
/// [`a_source_that_changes_during_import_is_refused`].
fn cut_during_import(format: &str, name: &str, write: impl Fn(&Path, usize) -> u64) {
    let dir = scratch(&format!("changing-{format}"));
    let src = dir.join(name);
    let out = dir.join("ds");
    let staging = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".ds.staging-"))
    };
    // A log long enough that the import is still reading when the test truncates it; a machine
    // fast enough to finish first gets a longer one. A run that finished before the cut must have
    // read the whole log; one cut while reading must be refused.
    let mut rows = 200_000usize;
    let mut refused = false;
    for _ in 0..5 {
        let cut = write(&src, rows);
        let _ = std::fs::remove_dir_all(&out);
        let mut child = std::process::Command::new(bin())
            .args(["--quiet", "data", "import", "--format", format])
            .arg(&src)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The staging directory appears after the source is stamped and before it is read.
        let started = wait_for(120, "the import to start or end", || {
            if staging(&dir) {
                return Some(true);
            }
            child.try_wait().unwrap().map(|_| false)
        });
        if started {
            let f = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
            f.set_len(cut).unwrap();
        }
        let res = child.wait_with_output().unwrap();
        let stderr = stderr_of(&res);
        if res.status.success() {
            // Finished before the cut: everything was read.
            let o = tt(&["data", "stats", "--json", "--data", s(&out)]);
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            // Every (user, item) pair of the log is distinct at these sizes.
            assert_eq!(v["interactions"].as_u64(), Some(rows as u64), "{format}: {v}");
        } else {
            assert!(
                stderr.contains(name) && stderr.contains("changed while it was being imported"),
                "{format}: {stderr}"
            );
            assert!(!out.exists(), "{format}: nothing is written");
            refused = true;
            break;
        }
        rows *= 2;
    }
    assert!(
        refused,
        "{format}: the import always finished before the log could be cut"
    );
}

/// The pairs of a test log: (rows stay under lcm(5000, 997) = 4,985,000, so no pair repeats).
fn pair(r: usize) -> (String, String) {
    (format!("u{}", r % 5000), format!("i{}", r % 997))
}

#[test]
fn a_source_that_changes_during_import_is_refused() {
    // CSV cut at a line boundary (it used to import the first part and exit 0).
    cut_during_import("csv", "log.csv", |path, rows| {
        let mut text = String::with_capacity(rows * 16);
        text.push_str("user,item\n");
        for r in 0..rows {
            let (u, i) = pair(r);
            text.push_str(&format!("{u},{i}\n"));
        }
        std::fs::write(path, &text).unwrap();
        // At a line boundary: what is left is a valid, shorter log.
        (text[..text.len() / 3].rfind('\n').unwrap() + 1) as u64
    });
    // Parquet cut anywhere (it used to fail with a decoding error that did not say why).
    cut_during_import("parquet", "log.parquet", |path, rows| {
        let (users, items): (Vec<String>, Vec<String>) = (0..rows).map(pair).unzip();
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let items: Vec<&str> = items.iter().map(String::as_str).collect();
        write_parquet(path, &users, &items);
        std::fs::metadata(path).unwrap().len() / 3
    });
}

/// Another dataset (another synthetic draw) than the world's model was trained on.
fn other_dataset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch("other").join("data");
        let o = tt(&[
            "data",
            "synth",
            "--out",
            s(&d),
            "--users",
            "300",
            "--items",
            "200",
            "--interactions",
            "5000",
            "--seed",
            "11",
        ]);
        assert!(o.status.success(), "{}", stderr_of(&o));
        d
    })
}

#[test]
fn a_model_with_another_dataset_is_refused_with_advice() {
    let w = world();
    let (model, index) = (w.join("model"), w.join("index"));
    let other = other_dataset();
    let out = scratch("pairing");
    let check = |args: &[&str]| {
        let o = tt(args);
        let stderr = stderr_of(&o);
        assert!(!o.status.success(), "{args:?} accepted another dataset");
        assert!(
            stderr.contains("fingerprint") && stderr.contains("--data") && stderr.contains("twotower train"),
            "{args:?}: {stderr}"
        );
    };
    let (m, i, d) = (s(&model), s(&index), s(other));
    check(&["query", "--model", m, "--index", i, "--data", d]);
    check(&[
        "recommend",
        "--all",
        "--model",
        m,
        "--index",
        i,
        "--data",
        d,
        "--out",
        s(&out.join("r.jsonl")),
    ]);
    check(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--model",
        m,
        "--index",
        i,
        "--data",
        d,
    ]);
    check(&[
        "report",
        "--model",
        m,
        "--data",
        d,
        "--out",
        s(&out.join("r.html")),
    ]);
    check(&["bench", "query", "--model", m, "--index", i, "--data", d]);
    assert!(!out.join("r.jsonl").exists() && !out.join("r.html").exists());
    // A copy of the model's own dataset is fine.
    let copy = out.join("copy");
    assert!(std::process::Command::new("cp")
        .arg("-r")
        .arg(w.join("data"))
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    let o = Command::new(bin())
        .args(["query", "--model", m, "--index", i, "--data", s(&copy)])
        .write_stdin("user u1 3\n")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn set_mode(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn out_follows_symlinks_keeps_modes_and_refuses_read_only_and_special_targets() {
    let w = world();
    let dir = scratch("out-rule");
    let (model, index) = (w.join("model"), w.join("index"));
    let users = dir.join("users.txt");
    std::fs::write(&users, "u1\nu2\n").unwrap();
    let recommend = |out: &Path| {
        tt(&[
            "recommend",
            "--k",
            "2",
            "--model",
            s(&model),
            "--index",
            s(&index),
            "--users",
            s(&users),
            "--out",
            s(out),
        ])
    };
    let embed = |out: &Path| tt(&["embed", "--model", s(&model), "--out", s(out)]);
    let report = |out: &Path| tt(&["report", "--model", s(&model), "--out", s(out)]);
    let export = |out: &Path| tt(&["data", "export", "--data", s(&w.join("data")), "--out", s(out)]);
    let is_link = |p: &Path| std::fs::symlink_metadata(p).unwrap().file_type().is_symlink();

    // A symlink: the new content replaces the link's target; the link stays a link.
    for (name, run) in [
        ("recs.jsonl", &recommend as &dyn Fn(&Path) -> std::process::Output),
        ("items.parquet", &embed),
        ("report.html", &report),
    ] {
        let real = dir.join(format!("real-{name}"));
        std::fs::write(&real, "old").unwrap();
        set_mode(&real, 0o600);
        let link = dir.join(format!("link-{name}"));
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let o = run(&link);
        assert!(o.status.success(), "{name}: {}", stderr_of(&o));
        assert!(is_link(&link), "{name}: the link was replaced");
        assert_ne!(
            std::fs::read(&real).unwrap(),
            b"old",
            "{name}: the target is stale"
        );
        assert_eq!(mode(&real), 0o600, "{name}: the mode was not kept");

        // Read-only: refused, left as it was.
        let ro = dir.join(format!("ro-{name}"));
        std::fs::write(&ro, "keep").unwrap();
        set_mode(&ro, 0o444);
        let o = run(&ro);
        let stderr = stderr_of(&o);
        assert!(!o.status.success(), "{name}: a read-only target was replaced");
        assert!(
            stderr.contains("read-only") && stderr.contains(s(&ro)),
            "{name}: {stderr}"
        );
        assert_eq!(std::fs::read(&ro).unwrap(), b"keep");
        assert_eq!(mode(&ro), 0o444);

        // Not a regular file: a directory, a FIFO.
        let sub = dir.join(format!("dir-{name}"));
        std::fs::create_dir(&sub).unwrap();
        let fifo = dir.join(format!("fifo-{name}"));
        let c = std::ffi::CString::new(s(&fifo)).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        for target in [&sub, &fifo] {
            let o = run(target);
            let stderr = stderr_of(&o);
            assert!(!o.status.success(), "{name}: {target:?} was replaced");
            assert!(stderr.contains("not a regular file"), "{name}: {stderr}");
        }
        assert!(sub.is_dir());
        {
            use std::os::unix::fs::FileTypeExt;
            assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        }
    }

    // `data export` writes a directory: a symlink to an earlier export is followed the same way,
    // and a read-only one refused.
    let real = dir.join("real-export");
    let o = export(&real);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let link = dir.join("link-export");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = export(&link);
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(is_link(&link));
    assert!(real.join("interactions.parquet").is_file());
    set_mode(&real, 0o555);
    let o = export(&link);
    set_mode(&real, 0o755);
    let stderr = stderr_of(&o);
    assert!(!o.status.success() && stderr.contains("read-only"), "{stderr}");
}
