//! Versions on disk: build, reload, add with tombstones, compact, gc, and every way a directory
//! can be wrong (missing CURRENT, other model, truncated or corrupted files, crash debris).

use std::fs;
use std::path::Path;

use twotower_data::progress::NoProgress;
use twotower_data::StagingDir;
use twotower_index::synthetic::clustered_unit_vectors;
use twotower_index::{check, CheckParams, Error, HnswParams, IndexDir, VectorIndex, VersionId};

/// Every test here builds its graphs on one thread: a parallel graph depends on how the threads
/// interleave, and these tests assert properties of particular graphs.
fn one_thread() {
    let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
}

const DIM: usize = 16;
const MODEL: &str = "model-a";

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn build(dir: &Path, n: usize, seed: u64) -> (IndexDir, Vec<String>, Vec<f32>) {
    let idx = IndexDir::new(dir);
    let ids = ids(n, "item");
    let v = clustered_unit_vectors(n, DIM, 20, 0.5, seed);
    idx.build_version(&ids, &v, DIM, HnswParams::default(), MODEL, &NoProgress)
        .unwrap();
    (idx, ids, v)
}

#[test]
fn build_open_search_and_reload() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, ids, v) = build(tmp.path(), 2000, 1);
    assert_eq!(idx.current().unwrap(), VersionId(1));
    let cur = idx.open_current(Some(MODEL)).unwrap();
    assert_eq!(cur.len(), 2000);
    assert_eq!(cur.info().dim, DIM);
    for i in [0usize, 999, 1999] {
        let hits = cur.search(&v[i * DIM..(i + 1) * DIM], 3, None).unwrap();
        assert_eq!(cur.id(hits[0].row), ids[i]);
    }
    // A second build while version 1 is open: the open version keeps working, CURRENT moves.
    let old = idx.open_current(Some(MODEL)).unwrap();
    let v2 = clustered_unit_vectors(500, DIM, 5, 0.5, 9);
    idx.build_version(&ids[..500], &v2, DIM, HnswParams::default(), MODEL, &NoProgress)
        .unwrap();
    assert_eq!(old.search(&v[..DIM], 1, None).unwrap().len(), 1);
    assert_eq!(idx.current().unwrap(), VersionId(2));
    assert_eq!(idx.open_current(Some(MODEL)).unwrap().len(), 500);
    assert_eq!(old.len(), 2000);
}

#[test]
fn add_tombstones_replaced_and_removed_items_then_compact() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _ids, v) = build(tmp.path(), 1000, 2);
    // item0 moves to item1's place; item2 is removed; new0..new9 are added.
    let mut new_ids = vec!["item0".to_string()];
    let mut new_v = v[DIM..2 * DIM].to_vec();
    new_ids.extend(ids_from("new", 10));
    new_v.extend(clustered_unit_vectors(10, DIM, 20, 0.5, 77));
    let report = idx
        .add_items(
            &new_ids,
            &new_v,
            &["item2".to_string(), "ghost".to_string()],
            MODEL,
            &NoProgress,
        )
        .unwrap();
    assert_eq!((report.added, report.replaced, report.removed), (10, 1, 1));
    assert_eq!(report.not_found, vec!["ghost".to_string()]);
    assert_eq!(report.version, VersionId(2));

    let cur = idx.open_current(Some(MODEL)).unwrap();
    assert_eq!(cur.len(), 1011);
    assert_eq!(cur.live_len(), 1009);
    assert!(!cur.is_live(0) && !cur.is_live(2));
    assert_eq!(cur.row_of("item0"), Some(1000));
    assert_eq!(cur.row_of("item2"), None);
    // item0's old vector: its old row is tombstoned, so the best hit is item1 / new item0 (same vector).
    let hits = cur.search(&v[..DIM], 20, None).unwrap();
    assert!(hits.iter().all(|h| cur.is_live(h.row)));
    let hits = cur.search(&v[2 * DIM..3 * DIM], 50, None).unwrap();
    assert!(hits.iter().all(|h| cur.id(h.row) != "item2"));
    let exact = cur.search_exact(&v[2 * DIM..3 * DIM], 50, None).unwrap();
    assert!(exact.iter().all(|h| cur.is_live(h.row)));
    // New items are found by their own vectors.
    for (i, id) in new_ids.iter().enumerate().skip(1) {
        let hits = cur.search(&new_v[i * DIM..(i + 1) * DIM], 3, None).unwrap();
        assert!(hits.iter().any(|h| cur.id(h.row) == id), "{id} not found");
    }
    // The model must match for add.
    assert!(matches!(
        idx.add_items(&new_ids[..1], &new_v[..DIM], &[], "model-b", &NoProgress),
        Err(Error::ModelMismatch { .. })
    ));

    let v3 = idx.compact(None, &NoProgress).unwrap();
    let c = idx.open_version(v3, Some(MODEL)).unwrap();
    assert_eq!((c.len(), c.live_len()), (1009, 1009));
    assert!(c.row_of("item2").is_none());
    assert!(c.row_of("new9").is_some());

    let held_out = clustered_unit_vectors(1100, DIM, 20, 0.5, 2).split_off(1000 * DIM);
    let report = check(&c, &held_out, &CheckParams::default(), &NoProgress).unwrap();
    assert_eq!(report.self_reach.checked, 1009);
    assert_eq!(
        report.self_reach.in_top_k, 1009,
        "{:?}",
        report.self_reach.unreachable
    );
    let at_default = report.by_ef.iter().find(|r| r.ef == report.default_ef).unwrap();
    assert!(at_default.recall >= 0.99, "{report:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let gc = idx.gc(1).unwrap();
    assert_eq!(gc.removed, vec![VersionId(1), VersionId(2)]);
    assert_eq!(idx.versions().unwrap(), vec![VersionId(3)]);
    assert!(idx.open_current(Some(MODEL)).is_ok());
}

fn ids_from(prefix: &str, n: usize) -> Vec<String> {
    ids(n, prefix)
}

#[test]
fn missing_foreign_and_damaged_indexes_are_clear_errors() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let none = IndexDir::new(tmp.path().join("nothing"));
    let err = none.open_current(None).unwrap_err();
    assert!(matches!(err, Error::NoCurrent { .. }), "{err}");
    assert!(err.to_string().contains("CURRENT"));

    let (idx, _, _) = build(&tmp.path().join("idx"), 800, 3);
    let err = idx.open_current(Some("model-b")).unwrap_err();
    assert!(matches!(err, Error::ModelMismatch { .. }), "{err}");

    let vdir = idx.version_path(VersionId(1));
    for file in [
        "graph.links",
        "vectors.f32",
        "embeddings.parquet",
        "ids.json",
        "tombstones.json",
    ] {
        let p = vdir.join(file);
        let orig = fs::read(&p).unwrap();
        // Truncated: every open checks sizes (and headers), and names the file.
        fs::write(&p, &orig[..orig.len() / 2]).unwrap();
        let err = idx.open_current(Some(MODEL)).unwrap_err();
        assert!(err.to_string().contains(file), "{file}: {err}");
        // Same size, one byte flipped: the files an open reads are checksummed then; the mapped
        // (or unread) bulk files are caught by `index check`'s verification and by a writer.
        let mut flipped = orig.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        fs::write(&p, &flipped).unwrap();
        if ["ids.json", "tombstones.json"].contains(&file) {
            let err = idx.open_current(Some(MODEL)).unwrap_err();
            assert!(err.to_string().contains(file), "{file}: {err}");
        }
        let err = idx.verify_version(VersionId(1)).unwrap_err();
        assert!(
            err.to_string().contains(file) && err.to_string().contains("sha256"),
            "{file}: {err}"
        );
        // Missing.
        fs::remove_file(&p).unwrap();
        assert!(idx.open_current(Some(MODEL)).is_err());
        fs::write(&p, &orig).unwrap();
        idx.open_current(Some(MODEL)).unwrap();
    }
    fs::write(idx.root().join("CURRENT"), "garbage").unwrap();
    let err = idx.open_current(None).unwrap_err();
    assert!(err.to_string().contains("CURRENT"), "{err}");
    fs::write(idx.root().join("CURRENT"), "0042\n").unwrap();
    assert!(idx.open_current(None).unwrap_err().to_string().contains("0042"));
}

#[test]
fn a_crashed_build_leaves_the_previous_version_live() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _, v) = build(tmp.path(), 600, 4);
    // A writer that died before commit: its staging dir is dropped (removed) ...
    {
        let staging = StagingDir::new(idx.version_path(VersionId(2))).unwrap();
        fs::write(staging.path().join("graph.hnsw.graph"), b"half a graph").unwrap();
    }
    // ... or, after kill -9, left behind with garbage, together with a half-written CURRENT temp
    // and a version dir without a manifest.
    let versions = idx.root().join("versions");
    fs::create_dir_all(versions.join(".0002.staging-dead")).unwrap();
    fs::write(
        versions.join(".0002.staging-dead/graph.hnsw.data"),
        vec![7u8; 1000],
    )
    .unwrap();
    fs::write(idx.root().join(".CURRENT.tmp-dead"), b"00").unwrap();
    fs::create_dir_all(versions.join("0002")).unwrap();
    fs::write(versions.join("0002/graph.hnsw.graph"), b"junk").unwrap();

    assert_eq!(idx.current().unwrap(), VersionId(1));
    let cur = idx.open_current(Some(MODEL)).unwrap();
    assert_eq!(cur.version(), VersionId(1));
    assert_eq!(cur.search(&v[..DIM], 1, None).unwrap()[0].row, 0);
    // The half-written version is an error to open, never a panic.
    assert!(idx.open_version(VersionId(2), None).is_err());
    // The next build skips the debris' number and becomes current.
    let next = idx
        .build_version(
            &ids(10, "x"),
            &v[..10 * DIM],
            DIM,
            HnswParams::default(),
            MODEL,
            &NoProgress,
        )
        .unwrap();
    assert_eq!(next, VersionId(3));
    assert_eq!(idx.open_current(Some(MODEL)).unwrap().len(), 10);
}

#[test]
fn bad_build_inputs_are_rejected_before_anything_is_written() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let idx = IndexDir::new(tmp.path());
    let v = clustered_unit_vectors(3, DIM, 1, 0.5, 1);
    let dup = vec!["a".to_string(), "b".to_string(), "a".to_string()];
    let err = idx
        .build_version(&dup, &v, DIM, HnswParams::default(), MODEL, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("\"a\""), "{err}");
    let err = idx
        .build_version(&ids(2, "a"), &v, DIM, HnswParams::default(), MODEL, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("2 ids for 3 vectors"), "{err}");
    assert!(matches!(idx.current(), Err(Error::NoCurrent { .. })));
}

/// `gc` removes staging left by a writer that no longer runs at once, and keeps a young one whose
/// writer may still be running.
#[test]
fn gc_removes_a_dead_writers_staging_at_once() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _, _) = build(tmp.path(), 200, 3);
    // Above the kernel's pid_max: no process can have it (a just-reaped pid could be reused).
    let dead = i32::MAX as u32;
    let versions = tmp.path().join("versions");
    let debris = versions.join(format!(".0009.staging-{dead}-1-2"));
    let live = versions.join(format!(".0010.staging-{}-1-2", std::process::id()));
    fs::create_dir_all(debris.join("x")).unwrap();
    fs::create_dir_all(&live).unwrap();
    let gc = idx.gc(3).unwrap();
    assert_eq!(gc.debris, vec![debris.clone()]);
    assert!(!debris.exists());
    assert!(live.exists(), "a running writer's staging stays");
}

/// An open maps the vectors and the graph's layer 0 and does not read `embeddings.parquet` at all:
/// with that file's bytes replaced (same size) the version opens and answers exactly as before,
/// and its rows are views of the mapped file. Its checksum still catches the change where every
/// byte is verified: `index check` (`verify_version`) and a writer deriving a new version (`add`).
#[test]
fn an_open_maps_the_bulk_files_and_reads_nothing_else() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, ids, v) = build(tmp.path(), 1200, 6);
    let before = idx.open_current(Some(MODEL)).unwrap();
    assert!(before.is_mapped(), "vectors and layer 0 are mapped");
    let queries = &v[..20 * DIM];
    let want = before.search_batch(queries, 10, None).unwrap();

    let emb = idx.version_path(VersionId(1)).join("embeddings.parquet");
    let len = fs::metadata(&emb).unwrap().len() as usize;
    fs::write(&emb, vec![0u8; len]).unwrap();
    let after = idx.open_current(Some(MODEL)).unwrap();
    assert!(after.is_mapped());
    assert_eq!(after.search_batch(queries, 10, None).unwrap(), want);
    assert_eq!(after.vector(7), &v[7 * DIM..8 * DIM]);

    let err = idx.verify_version(VersionId(1)).unwrap_err().to_string();
    assert!(
        err.contains("embeddings.parquet") && err.contains("sha256"),
        "{err}"
    );
    // Commit-time verification: a writer refuses to derive a version from damaged files.
    let err = idx
        .add_items(&ids[..1], &v[DIM..2 * DIM], &[], MODEL, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("embeddings.parquet"), "{err}");
    assert_eq!(idx.current().unwrap(), VersionId(1), "nothing was committed");
}

/// A byte flipped in the mapped vectors or in a layer-0 list still opens (an open does not hash
/// them) and never panics a search; `index check` and a writer catch it, naming the file.
#[test]
fn damage_in_mapped_files_is_caught_by_check_and_by_writers() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, ids, v) = build(tmp.path(), 900, 8);
    for file in ["vectors.f32", "graph.links"] {
        let p = idx.version_path(VersionId(1)).join(file);
        let orig = fs::read(&p).unwrap();
        let mut bad = orig.clone();
        // Past the headers: inside the vectors (a NaN), or halfway into the graph file, inside
        // layer 0 (a count beyond the stride or an id far outside the graph).
        let at = if file == "vectors.f32" {
            200
        } else {
            orig.len() / 2 / 4 * 4
        };
        for b in &mut bad[at..at + 4] {
            *b = 0xff;
        }
        fs::write(&p, &bad).unwrap();
        let cur = idx.open_current(Some(MODEL)).unwrap();
        cur.search_batch(&v[..10 * DIM], 5, None).unwrap();
        let err = idx.verify_version(VersionId(1)).unwrap_err().to_string();
        assert!(err.contains(file) && err.contains("sha256"), "{file}: {err}");
        let err = idx
            .add_items(&ids[..1], &v[DIM..2 * DIM], &[], MODEL, &NoProgress)
            .unwrap_err()
            .to_string();
        assert!(err.contains(file), "{file}: {err}");
        fs::write(&p, &orig).unwrap();
        idx.verify_version(VersionId(1)).unwrap();
    }
}
