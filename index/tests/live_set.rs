//! The live set of a version (its ids less its tombstones) is what `add_items` changes and
//! `rebuild_live` keeps, exactly; writers refuse directories that are not indexes; batched search
//! answers as single searches do; `check` names unreachable items plainly.

use std::fs;
use std::path::Path;

use twotower_data::progress::NoProgress;
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

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn build(dir: &Path, n: usize, seed: u64) -> (IndexDir, Vec<String>, Vec<f32>) {
    let idx = IndexDir::new(dir);
    let ids = ids(n, "item");
    let v = clustered_unit_vectors(n, DIM, 10, 0.5, seed);
    idx.build_version(&ids, &v, DIM, HnswParams::default(), MODEL, &NoProgress)
        .unwrap();
    (idx, ids, v)
}

fn live(idx: &IndexDir) -> Vec<String> {
    let mut v: Vec<String> = idx
        .open_current(None)
        .unwrap()
        .live_ids()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn remove_wins_over_the_items_added_with_it() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, ids, v) = build(tmp.path(), 200, 1);
    // The whole catalogue again, with item5 changed, and item5 and item6 removed in the same call.
    let mut changed = v.clone();
    changed[5 * DIM] += 0.5;
    changed[6 * DIM] += 0.5;
    let r = idx
        .add_items(&ids, &changed, &s(&["item5", "item6"]), MODEL, &NoProgress)
        .unwrap();
    assert_eq!((r.added, r.replaced, r.removed, r.unchanged), (0, 0, 2, 198));
    let cur = idx.open_current(Some(MODEL)).unwrap();
    assert_eq!(cur.row_of("item5"), None);
    assert_eq!(cur.row_of("item6"), None);
    assert_eq!(cur.live_len(), 198);
    // Not in the graph's answers either.
    let hits = cur.search(&v[5 * DIM..6 * DIM], 20, None).unwrap();
    assert!(hits.iter().all(|h| cur.id(h.row) != "item5"));
}

#[test]
fn an_unchanged_catalogue_adds_nothing_and_writes_no_version() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, ids, v) = build(tmp.path(), 300, 2);
    for _ in 0..3 {
        let r = idx.add_items(&ids, &v, &[], MODEL, &NoProgress).unwrap();
        assert_eq!((r.added, r.replaced, r.unchanged, r.removed), (0, 0, 300, 0));
        assert!(!r.committed);
        assert_eq!(r.version, VersionId(1));
    }
    assert_eq!(idx.versions().unwrap(), vec![VersionId(1)]);
    // Scaled vectors normalise to the same rows: still unchanged. One really changed item is replaced.
    let mut w: Vec<f32> = v.iter().map(|x| x * 2.0).collect();
    w[7 * DIM + 3] += 0.25;
    let r = idx.add_items(&ids, &w, &[], MODEL, &NoProgress).unwrap();
    assert_eq!((r.added, r.replaced, r.unchanged), (0, 1, 299));
    assert!(r.committed);
    let cur = idx.open_current(Some(MODEL)).unwrap();
    assert_eq!((cur.len(), cur.live_len()), (301, 300));
    assert_eq!(cur.row_of("item7"), Some(300));
}

#[test]
fn rebuild_keeps_exactly_the_live_set() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, ids, v) = build(tmp.path(), 400, 3);
    // Items from another catalogue are added, two of ours are removed, one is changed.
    let extra = ids_vec("new", 10);
    let extra_v = clustered_unit_vectors(10, DIM, 3, 0.5, 33);
    idx.add_items(&extra, &extra_v, &s(&["item3", "item4"]), MODEL, &NoProgress)
        .unwrap();
    let mut item9 = v[9 * DIM..10 * DIM].to_vec();
    item9[0] += 1.0;
    idx.add_items(&s(&["item9"]), &item9, &[], MODEL, &NoProgress)
        .unwrap();
    let before = live(&idx);
    assert_eq!(before.len(), 408);
    let changed_row = {
        let cur = idx.open_current(None).unwrap();
        cur.vector(cur.row_of("item9").unwrap()).to_vec()
    };

    // The same model with nothing re-embedded: the live set, compacted, stored vectors kept.
    let r = idx.rebuild_live(&[], &[], DIM, None, MODEL, &NoProgress).unwrap();
    assert_eq!((r.rows, r.reembedded, r.kept), (408, 0, 408));
    assert!(r.not_live.is_empty());
    assert_eq!(live(&idx), before);
    let cur = idx.open_current(Some(MODEL)).unwrap();
    assert_eq!(cur.len(), 408, "tombstones are dropped");
    assert_eq!(cur.vector(cur.row_of("item9").unwrap()), &changed_row[..]);
    assert!(cur.row_of("new7").is_some() && cur.row_of("item3").is_none());

    // The same model, re-embedding its whole catalogue: the removed items stay out (and are
    // reported), the added ones stay in with their stored vectors.
    let r = idx.rebuild_live(&ids, &v, DIM, None, MODEL, &NoProgress).unwrap();
    assert_eq!((r.rows, r.reembedded, r.kept), (408, 398, 10));
    assert_eq!(r.not_live, s(&["item3", "item4"]));
    assert_eq!(live(&idx), before);

    // Another model that only knows our catalogue: the added items have no vector: an error
    // naming them, and nothing written.
    let current = idx.current().unwrap();
    let v2 = clustered_unit_vectors(400, DIM, 10, 0.5, 99);
    let err = idx
        .rebuild_live(&ids, &v2, DIM, None, "model-b", &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::MissingVectors { count: 10, .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("new0") && text.contains("new9") && text.contains("model-b"),
        "{text}"
    );
    assert_eq!(idx.current().unwrap(), current);

    // Given vectors for them too, the rebuild re-embeds everything and records the new model.
    let mut all_ids = ids.clone();
    all_ids.extend(extra.iter().cloned());
    let mut all_v = v2.clone();
    all_v.extend_from_slice(&extra_v);
    let r = idx
        .rebuild_live(&all_ids, &all_v, DIM, None, "model-b", &NoProgress)
        .unwrap();
    assert_eq!((r.rows, r.reembedded, r.kept), (408, 408, 0));
    assert_eq!(live(&idx), before);
    let cur = idx.open_current(Some("model-b")).unwrap();
    assert_eq!(cur.info().model_fingerprint, "model-b");
    assert_eq!(cur.info().parent, None);
}

fn ids_vec(prefix: &str, n: usize) -> Vec<String> {
    ids(n, prefix)
}

#[test]
fn writers_refuse_a_directory_that_is_not_an_index() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let v = clustered_unit_vectors(50, DIM, 2, 0.5, 4);
    let ids = ids(50, "i");
    // A dataset (or model) directory.
    let data = tmp.path().join("dataset");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("manifest.json"), "{}").unwrap();
    fs::write(data.join("train.parquet"), "x").unwrap();
    let err = IndexDir::new(&data)
        .build_version(&ids, &v, DIM, HnswParams::default(), MODEL, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::NotAnIndex { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("manifest.json") && text.contains("not an index"),
        "{text}"
    );
    let mut left: Vec<String> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, s(&["manifest.json", "train.parquet"]), "nothing written");
    // A file.
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let err = IndexDir::new(&file)
        .build_version(&ids, &v, DIM, HnswParams::default(), MODEL, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::NotAnIndex { .. }), "{err}");
    // A new directory, an empty one and an existing index are fine.
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    for dir in [tmp.path().join("new/index"), empty.clone(), empty] {
        IndexDir::new(&dir)
            .build_version(&ids, &v, DIM, HnswParams::default(), MODEL, &NoProgress)
            .unwrap();
    }
}

#[test]
fn search_batch_answers_each_query_as_search_with_ef() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, ids, v) = build(tmp.path(), 2000, 5);
    idx.add_items(&[], &[], &ids[..40], MODEL, &NoProgress).unwrap();
    let cur = idx.open_current(Some(MODEL)).unwrap();
    let queries = clustered_unit_vectors(150, DIM, 10, 0.7, 55);
    let keep = |r: u32| !r.is_multiple_of(3);
    for (k, ef, filter) in [
        (10, 32, None),
        (5, 64, Some(&keep as &(dyn Fn(u32) -> bool + Sync))),
        (1, 10, None),
    ] {
        let batch = cur.search_batch_with_ef(&queries, k, ef, filter).unwrap();
        assert_eq!(batch.len(), 150);
        for (i, q) in queries.chunks_exact(DIM).enumerate() {
            assert_eq!(
                batch[i],
                cur.search_with_ef(q, k, ef, filter).unwrap(),
                "query {i}"
            );
            assert!(batch[i].iter().all(|h| cur.is_live(h.row)));
        }
    }
    // Unnormalised queries too (each is normalised once, as a single search does).
    let scaled: Vec<f32> = v[..10 * DIM].iter().map(|x| x * 3.7).collect();
    let batch = cur.search_batch_with_ef(&scaled, 10, 48, None).unwrap();
    for (i, q) in scaled.chunks_exact(DIM).enumerate() {
        assert_eq!(batch[i], cur.search_with_ef(q, 10, 48, None).unwrap());
    }
    assert!(cur.search_batch_with_ef(&[], 10, 48, None).unwrap().is_empty());
    assert!(matches!(
        cur.search_batch_with_ef(&queries[..DIM + 1], 10, 48, None),
        Err(Error::Dimension { .. })
    ));
    let mut bad = queries[..3 * DIM].to_vec();
    bad[2 * DIM] = f32::NAN;
    assert!(matches!(
        cur.search_batch_with_ef(&bad, 10, 48, None),
        Err(Error::BadQuery { index: 2, .. })
    ));
}

#[test]
fn check_names_unreachable_items_plainly() {
    let (_tmp, cur, v) = index_with_30_duplicates();
    let report = check(&cur, &v[..20 * DIM], &CheckParams::default(), &NoProgress).unwrap();
    assert!(report.self_reach.checked - report.self_reach.in_top_k >= 20);
    let w = report
        .warnings
        .iter()
        .find(|w| w.contains("do not find themselves"))
        .expect("a self-reachability warning");
    assert!(
        w.contains(&format!("e.g. {}", report.self_reach.unreachable[0])),
        "{w}"
    );
    assert!(!w.contains("Some(") && !w.contains('"'), "{w}");
}

#[test]
fn unreachable_items_of_a_graph_the_backend_builds_are_a_note_not_damage() {
    let (_tmp, cur, v) = index_with_30_duplicates();
    let target = twotower_index::CheckTarget::new(&cur, &NoProgress).unwrap();
    let params = CheckParams {
        unreachable_is_damage: false,
        ..CheckParams::default()
    };
    let users = target.check(&v[..20 * DIM], &params, &NoProgress).unwrap();
    assert!(users.self_reach.checked - users.self_reach.in_top_k >= 20);
    assert!(
        users
            .warnings
            .iter()
            .all(|w| !w.contains("do not find themselves")),
        "{:?}",
        users.warnings
    );
    let note = users
        .notes
        .iter()
        .find(|n| n.contains("do not find themselves"))
        .expect("a note naming the unreachable items");
    assert!(
        note.contains(&format!("e.g. {}", users.self_reach.unreachable[0])),
        "{note}"
    );
    // The second query set reuses the same self-reachability; as damage it is a warning again.
    let items = target
        .check(&v[100 * DIM..120 * DIM], &CheckParams::default(), &NoProgress)
        .unwrap();
    assert_eq!(items.self_reach, users.self_reach);
    assert!(items.notes.is_empty());
    assert!(items
        .warnings
        .iter()
        .any(|w| w.contains("do not find themselves")));
}

/// An index of 300 rows whose first 30 are identical: identical queries walk the same way and share
/// one top 10, so at least 20 of them cannot find themselves. Built on one thread.
fn index_with_30_duplicates() -> (tempfile::TempDir, twotower_index::IndexVersion, Vec<f32>) {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let idx = IndexDir::new(tmp.path());
    let mut v = clustered_unit_vectors(300, DIM, 10, 0.5, 6);
    let dup = v[..DIM].to_vec();
    for r in 0..30 {
        v[r * DIM..(r + 1) * DIM].copy_from_slice(&dup);
    }
    let ids: Vec<String> = (0..300).map(|i| format!("i{i}")).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        idx.build_version(&ids, &v, DIM, HnswParams::default(), MODEL, &NoProgress)
            .unwrap()
    });
    let cur = idx.open_current(Some(MODEL)).unwrap();
    (tmp, cur, v)
}
