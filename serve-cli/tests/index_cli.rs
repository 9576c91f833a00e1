//! `twotower index build|rebuild|add` through the real binary: the index's live set survives adds,
//! removals and rebuilds; unchanged items are skipped; items the model cannot encode are not added;
//! directories that are not indexes are refused.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

mod common;
use common::bin;

/// One small quickstart shared by the tests: dataset `data/` (items i0..), model `model/`, index `index/`.
fn world() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::quickstart("index-cli", 150, 120, 6_000, 1, 3))
}

/// A fresh copy of the world's index for one test (dataset and model are shared, read-only).
fn index_copy(name: &str) -> PathBuf {
    let w = world();
    let dir = std::env::temp_dir().join(format!("twotower-index-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let index = dir.join("index");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(w.join("index"))
        .arg(&index)
        .status()
        .unwrap();
    assert!(status.success());
    index
}

/// Runs the binary; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--quiet")
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (success, out, err) = run(args);
    assert!(success, "{args:?} failed:\n{out}\n{err}");
    out
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `index add` of `args` against `index` with the world's model.
fn add(index: &Path, args: &[&str]) -> String {
    let model = world().join("model");
    let mut all = vec!["index", "add", "--model", p(&model), "--index", p(index)];
    all.extend_from_slice(args);
    ok(&all)
}

fn versions(index: &Path) -> usize {
    std::fs::read_dir(index.join("versions"))
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count()
}

/// Whether `id` is live: removing it says so (the removal is then undone by adding it back from `data`).
fn is_live(index: &Path, id: &str, data: &Path) -> bool {
    let out = add(index, &["--remove", id]);
    let live = !out.contains("not in the index");
    if live {
        add(index, &["--data", p(data), "--only", id]);
    }
    live
}

/// A dataset of items i0..i129 from another synthetic draw: i120..i129 are ids the model never saw,
/// with genres and title words it knows.
fn other_catalogue() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = world().join("other-data");
        let _ = std::fs::remove_dir_all(&d);
        ok(&[
            "data",
            "synth",
            "--out",
            p(&d),
            "--users",
            "40",
            "--items",
            "130",
            "--interactions",
            "3000",
            "--seed",
            "11",
        ]);
        d
    })
}

#[test]
fn an_unchanged_catalogue_is_skipped_and_remove_wins_over_data() {
    let index = index_copy("unchanged");
    let data = world().join("data");
    for _ in 0..3 {
        let out = add(&index, &["--data", p(&data)]);
        assert!(
            out.contains("unchanged (no new version): 0 added, 0 replaced, 120 unchanged, 0 removed"),
            "{out}"
        );
    }
    assert_eq!(versions(&index), 1, "no version for an unchanged catalogue");

    let out = add(&index, &["--data", p(&data), "--remove", "i5,i6"]);
    assert!(
        out.contains("0 added, 0 replaced, 118 unchanged, 2 removed"),
        "{out}"
    );
    // i5 and i6 really are gone: removing them again finds nothing.
    let out = add(&index, &["--remove", "i5,i6"]);
    assert!(
        out.contains("not in the index (nothing removed): i5, i6"),
        "{out}"
    );
}

#[test]
fn rebuild_keeps_the_live_set_and_reset_starts_over() {
    let index = index_copy("rebuild");
    let (model, data, other) = (world().join("model"), world().join("data"), other_catalogue());
    let out = add(
        &index,
        &[
            "--data",
            p(other),
            "--only",
            "i120,i121,i122",
            "--remove",
            "i5,i6",
        ],
    );
    assert!(
        out.contains("3 added, 0 replaced, 0 unchanged, 2 removed"),
        "{out}"
    );

    let out = ok(&["index", "rebuild", "--model", p(&model), "--index", p(&index)]);
    assert!(out.contains("of 121 items, the live set of version"), "{out}");
    assert!(!is_live(&index, "i5", &data) && !is_live(&index, "i6", &data));
    // The added items kept their vectors: adding them again changes nothing.
    let out = add(&index, &["--data", p(other), "--only", "i120,i121,i122"]);
    assert!(out.contains("0 added, 0 replaced, 3 unchanged"), "{out}");
    // Rebuilding from the model's catalogue and the other one: its items not in the live set are
    // not added, and said so.
    let out = ok(&[
        "index",
        "rebuild",
        "--model",
        p(&model),
        "--index",
        p(&index),
        "--data",
        p(other),
    ]);
    assert!(out.contains("of 121 items"), "{out}");
    assert!(out.contains("are not in the index and were not added"), "{out}");
    assert!(!is_live(&index, "i125", other));

    // --reset: the model's catalogue, removals and additions forgotten.
    let out = ok(&[
        "index",
        "rebuild",
        "--reset",
        "--model",
        p(&model),
        "--index",
        p(&index),
    ]);
    assert!(out.contains("of 120 items"), "{out}");
    assert!(is_live(&index, "i5", &data));
    let out = add(&index, &["--remove", "i120"]);
    assert!(out.contains("not in the index"), "{out}");

    let (_, help, _) = run(&["index", "rebuild", "--help"]);
    assert!(help.contains("live set") && help.contains("--reset"), "{help}");
}

#[test]
fn rebuild_with_another_model_needs_vectors_for_every_live_item() {
    let index = index_copy("other-model");
    let w = world();
    let (model, other) = (w.join("model"), other_catalogue());
    add(
        &index,
        &["--data", p(other), "--only", "i120,i121", "--remove", "i7"],
    );
    let m2 = w.join("model-2");
    let _ = std::fs::remove_dir_all(&m2);
    ok(&[
        "train",
        "--data",
        p(&w.join("data")),
        "--out",
        p(&m2),
        "--members",
        "1",
        "--no-refit",
        "--epochs",
        "1",
        "--temperature",
        "0.15",
        "--seed",
        "9",
    ]);
    let current = std::fs::read_to_string(index.join("CURRENT")).unwrap();
    let (success, out, err) = run(&["index", "rebuild", "--model", p(&m2), "--index", p(&index)]);
    assert!(!success, "{out}");
    assert!(
        err.contains("2 live item(s)") && err.contains("i120, i121"),
        "{err}"
    );
    assert!(err.contains("--data") && err.contains("--reset"), "{err}");
    assert_eq!(std::fs::read_to_string(index.join("CURRENT")).unwrap(), current);
    // With a dataset that has them, every live item is re-embedded by the new model.
    let out = ok(&[
        "index",
        "rebuild",
        "--model",
        p(&m2),
        "--index",
        p(&index),
        "--data",
        p(other),
    ]);
    assert!(
        out.contains("of 121 items") && out.contains("121 re-embedded, 0 kept"),
        "{out}"
    );
    // The old model no longer matches the index.
    let (success, _, err) = run(&[
        "index",
        "add",
        "--model",
        p(&model),
        "--index",
        p(&index),
        "--remove",
        "i1",
    ]);
    assert!(!success && err.contains("built for model"), "{err}");
}

#[test]
fn items_the_model_cannot_encode_are_not_added() {
    let index = index_copy("foreign");
    let w = world();
    // Another world: 200 item ids the model never saw, no features at all.
    let dir = w.join("foreign-src");
    std::fs::create_dir_all(&dir).unwrap();
    let mut log = String::from("user,item\n");
    for i in 0..200 {
        log.push_str(&format!("z{},x{i}\n", i % 17));
    }
    std::fs::write(dir.join("log.csv"), log).unwrap();
    let foreign = w.join("foreign-data");
    let _ = std::fs::remove_dir_all(&foreign);
    ok(&[
        "data",
        "import",
        "--format",
        "csv",
        p(&dir.join("log.csv")),
        "--out",
        p(&foreign),
    ]);
    let model = w.join("model");
    let (success, out, err) = run(&[
        "index",
        "add",
        "--model",
        p(&model),
        "--index",
        p(&index),
        "--data",
        p(&foreign),
    ]);
    assert!(!success, "{out}");
    assert!(err.contains("none of the 200 item(s)"), "{err}");
    assert_eq!(versions(&index), 1);
    // Beside a removal: the removal happens, the foreign items are counted and named, not added.
    let (success, out, err) = run(&[
        "index",
        "add",
        "--model",
        p(&model),
        "--index",
        p(&index),
        "--data",
        p(&foreign),
        "--remove",
        "i9",
    ]);
    assert!(success, "{err}");
    assert!(
        out.contains("0 added, 0 replaced, 0 unchanged, 1 removed, 200 not encodable"),
        "{out}"
    );
    assert!(
        err.contains("warning: 200 item(s)") && err.contains("x0"),
        "{err}"
    );
    let out = add(&index, &["--remove", "x0"]);
    assert!(out.contains("not in the index"), "{out}");
}

#[test]
fn build_refuses_a_directory_that_is_not_an_index() {
    let w = world();
    let model = w.join("model");
    for target in [w.join("data"), w.join("model")] {
        let before: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let (success, _, err) = run(&["index", "build", "--model", p(&model), "--index", p(&target)]);
        assert!(!success);
        assert!(
            err.contains("is not an index directory") && err.contains("manifest.json"),
            "{err}"
        );
        let after: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before.len(), after.len(), "{} was written into", target.display());
        assert!(!target.join("CURRENT").exists());
    }
    // An index is rebuilt in place by build as before.
    let index = index_copy("build");
    ok(&["index", "build", "--model", p(&model), "--index", p(&index)]);
    assert_eq!(versions(&index), 2);
}

/// What an open checks and what `index check` verifies, through the binary: a byte flipped in the
/// mapped vectors still opens (an open hashes only what it parses) but `index check` refuses the
/// version naming the file; a truncated vectors file or graph is refused by every open, naming it.
#[test]
fn check_verifies_every_byte_and_an_open_refuses_a_truncated_file() {
    let w = world();
    let index = index_copy("verify");
    let version = index.join("versions").join("0001");
    let model = w.join("model");
    let stats = |index: &Path| {
        let out = Command::new(bin())
            .args(["--quiet", "query", "--model", p(&model), "--index", p(index)])
            .write_stdin("stats\nquit\n")
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(stats(&index).0);
    for file in ["vectors.f32", "graph.links"] {
        let path = version.join(file);
        let orig = std::fs::read(&path).unwrap();
        let mut flipped = orig.clone();
        // Inside the vectors, or halfway into the graph file (layer 0, which an open maps unread).
        let at = if file == "graph.links" {
            orig.len() / 2
        } else {
            orig.len() - 8
        };
        flipped[at] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let (opened, err) = stats(&index);
        assert!(
            opened,
            "{file}: a flipped byte in a mapped file is not an open's to find: {err}"
        );
        let (checked, out, err) = run(&["index", "check", "--model", p(&model), "--index", p(&index)]);
        assert!(!checked, "{file}: index check passed a damaged version:\n{out}");
        assert!(err.contains(file) && err.contains("sha256"), "{file}: {err}");
        std::fs::write(&path, &orig[..orig.len() - 4]).unwrap();
        let (opened, err) = stats(&index);
        assert!(!opened && err.contains(file), "{file}: {err}");
        std::fs::write(&path, &orig).unwrap();
    }
    ok(&["index", "check", "--model", p(&model), "--index", p(&index)]);
}
