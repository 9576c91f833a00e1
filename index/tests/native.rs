//! The native builder: self-reachability and recall after builds and inserts, determinism
//! on one thread, the native graph file through the store (round trip, damage), and versions in the
//! old hnsw_rs format (format 1) that must keep loading, taking inserts and compacting.

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use twotower_data::artifact::Manifest;
use twotower_data::progress::NoProgress;
use twotower_index::synthetic::clustered_unit_vectors;

/// Every test here builds its graphs on one thread: a parallel graph depends on how the threads
/// interleave, and these tests assert properties of particular graphs.
fn one_thread() {
    let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
}
use twotower_index::{
    check, CheckParams, Error, ExactIndex, GraphBuilder, HnswIndex, HnswParams, IndexDir, VectorIndex,
    VersionId, INDEX_FORMAT_VERSION,
};

const DIM: usize = 24;

fn recall<R: AsRef<[f32]> + Send + Sync>(h: &dyn VectorIndex, exact: &ExactIndex<R>, queries: &[f32]) -> f64 {
    let (mut found, mut total) = (0, 0);
    for q in queries.chunks_exact(h.dim()) {
        let truth = exact.search(q, 10, None).unwrap();
        let got = h.search(q, 10, None).unwrap();
        found += truth
            .iter()
            .filter(|t| got.iter().any(|g| g.row == t.row))
            .count();
        total += truth.len();
    }
    found as f64 / total as f64
}

/// Rows that are not their own nearest neighbour at the default ef.
fn not_first(h: &HnswIndex, v: &[f32]) -> Vec<usize> {
    (0..v.len() / DIM)
        .filter(|&i| {
            let hits = h.search(&v[i * DIM..(i + 1) * DIM], 1, None).unwrap();
            hits.first().map(|x| x.row as usize) != Some(i)
        })
        .collect()
}

#[test]
fn builds_and_inserts_keep_every_item_first_and_recall_high() {
    one_thread();
    let (n, extra) = (8_000, 2_000);
    let all = clustered_unit_vectors(n + extra + 400, DIM, 160, 0.6, 21);
    let (v, rest) = all.split_at(n * DIM);
    let (more, queries) = rest.split_at(extra * DIM);
    let mut h = HnswIndex::build(DIM, v, HnswParams::default(), &NoProgress).unwrap();
    assert_eq!(h.builder(), GraphBuilder::Native);
    let miss = not_first(&h, v);
    assert!(miss.is_empty(), "after build: {miss:?}");
    let exact = ExactIndex::from_rows(DIM, v, None).unwrap();
    let r = recall(&h, &exact, queries);
    assert!(r >= 0.99, "recall@10 after build {r}");

    // Two inserts (the second into a graph that already had one).
    assert_eq!(
        h.insert(&more[..extra / 2 * DIM], &NoProgress).unwrap() as usize,
        n
    );
    assert_eq!(
        h.insert(&more[extra / 2 * DIM..], &NoProgress).unwrap() as usize,
        n + extra / 2
    );
    assert_eq!(h.len(), n + extra);
    let both = &all[..(n + extra) * DIM];
    let miss = not_first(&h, both);
    assert!(miss.is_empty(), "after inserts: {miss:?}");
    let exact = ExactIndex::from_rows(DIM, both, None).unwrap();
    let r = recall(&h, &exact, queries);
    assert!(r >= 0.99, "recall@10 after inserts {r}");
}

#[test]
fn one_thread_builds_are_identical_and_survive_the_store() {
    one_thread();
    let n = 3_000;
    let all = clustered_unit_vectors(n + 100, DIM, 60, 0.6, 22);
    let (v, queries) = all.split_at(n * DIM);
    let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = IndexDir::new(tmp.path());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (a, b) = pool.install(|| {
        dir.build_version(&ids, v, DIM, HnswParams::default(), "m", &NoProgress)
            .unwrap();
        (
            HnswIndex::build(DIM, v, HnswParams::default(), &NoProgress).unwrap(),
            HnswIndex::build(DIM, v, HnswParams::default(), &NoProgress).unwrap(),
        )
    });
    let loaded = dir.open_current(Some("m")).unwrap();
    assert_eq!(loaded.manifest().format_version, INDEX_FORMAT_VERSION);
    assert!(loaded.manifest().files.contains_key("graph.links"));
    assert!(!loaded.dir().join("graph.hnsw.graph").exists());
    assert_eq!(loaded.hnsw().builder(), GraphBuilder::Native);
    for ef in [10, 48, 200] {
        let x = a.search_batch_with_ef(queries, 10, ef, None).unwrap();
        assert_eq!(
            x,
            b.search_batch_with_ef(queries, 10, ef, None).unwrap(),
            "ef {ef}"
        );
        assert_eq!(
            x,
            loaded.hnsw().search_batch_with_ef(queries, 10, ef, None).unwrap(),
            "ef {ef}"
        );
    }
}

/// Rewrites `file` in version `v` and re-records its checksum, so only the graph reader stands
/// between the damage and a search.
fn tamper(dir: &IndexDir, v: VersionId, file: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let vdir = dir.version_path(v);
    let p = vdir.join(file);
    let mut bytes = fs::read(&p).unwrap();
    f(&mut bytes);
    fs::write(&p, &bytes).unwrap();
    let mut m = Manifest::read(&vdir, "index", INDEX_FORMAT_VERSION).unwrap();
    m.add_file(&vdir, file).unwrap();
    m.write(&vdir).unwrap();
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn damaged_graph_files_are_errors_even_with_matching_checksums() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let dir = IndexDir::new(tmp.path());
    let n = 700;
    let v = clustered_unit_vectors(n, DIM, 10, 0.5, 23);
    let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    dir.build_version(&ids, &v, DIM, HnswParams::default(), "m", &NoProgress)
        .unwrap();
    let vid = VersionId(1);
    let p = dir.version_path(vid).join("graph.links");
    let orig = fs::read(&p).unwrap();
    let header = 40;
    let links0 = header + n + (4 - n % 4) % 4;
    let stride = u32_at(&orig, 24) as usize;
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: Vec<(&str, Damage)> = vec![
        ("truncated", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 2))),
        (
            "one byte short",
            Box::new(|b: &mut Vec<u8>| {
                b.pop();
            }),
        ),
        ("empty", Box::new(|b: &mut Vec<u8>| b.clear())),
        (
            "trailing garbage",
            Box::new(|b: &mut Vec<u8>| b.extend_from_slice(b"junk")),
        ),
        ("bad magic", Box::new(|b: &mut Vec<u8>| b[1] = b'X')),
        (
            "neighbour id out of range",
            Box::new(move |b: &mut Vec<u8>| {
                b[links0 + 4..links0 + 8].copy_from_slice(&u32::MAX.to_le_bytes())
            }),
        ),
        (
            "count above stride",
            Box::new(move |b: &mut Vec<u8>| {
                b[links0..links0 + 4].copy_from_slice(&(stride as u32 + 5).to_le_bytes())
            }),
        ),
        (
            "level above the top layer",
            Box::new(move |b: &mut Vec<u8>| b[header + 3] = 200),
        ),
        ("row count", Box::new(|b: &mut Vec<u8>| b[16] ^= 1)),
        (
            "entry point out of range",
            Box::new(|b: &mut Vec<u8>| b[32..36].copy_from_slice(&9999u32.to_le_bytes())),
        ),
    ];
    for (what, damage) in damages {
        tamper(&dir, vid, "graph.links", |b| {
            *b = orig.clone();
            damage(b)
        });
        // Layer 0 is mapped, not read, by an open: damage inside its lists (with checksums that
        // match) opens, and a search skips what it cannot use rather than panicking; the full
        // verification (`index check`, writers) reads every list and refuses it.
        if what == "neighbour id out of range" || what == "count above stride" {
            let opened = dir.open_current(None).unwrap();
            opened.search(&v[..DIM], 5, None).unwrap();
            let err = dir.verify_version(vid).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{what}: {err}");
            assert!(err.to_string().contains("graph.links"), "{what}: {err}");
            continue;
        }
        let err = dir.open_current(None).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{what}: {err}");
        assert!(err.to_string().contains("graph.links"), "{what}: {err}");
        let err = dir.verify_version(vid).unwrap_err();
        assert!(err.to_string().contains("graph.links"), "{what}: {err}");
    }
    tamper(&dir, vid, "graph.links", |b| *b = orig.clone());
    let ok = dir.open_current(None).unwrap();
    assert_eq!(ok.search(&v[..DIM], 1, None).unwrap()[0].row, 0);
}

/// A graph file that loads (valid ids and counts, checksums re-recorded) but in which no layer-0
/// list links to one row any more: `index check` names that row as not found by its own search,
/// and only that one (the build left none).
#[test]
fn a_row_cut_out_of_the_graph_file_is_caught_by_check() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let dir = IndexDir::new(tmp.path());
    let n = 700;
    let v = clustered_unit_vectors(n, DIM, 10, 0.5, 23);
    let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    dir.build_version(&ids, &v, DIM, HnswParams::default(), "m", &NoProgress)
        .unwrap();
    let params = CheckParams {
        efs: Vec::new(),
        ..CheckParams::default()
    };
    let report = check(&dir.open_current(None).unwrap(), &v[..DIM], &params, &NoProgress).unwrap();
    assert_eq!(report.self_reach.in_top_k, n);

    let vid = VersionId(1);
    let orig = fs::read(dir.version_path(vid).join("graph.links")).unwrap();
    let header = 40;
    let links0 = header + n + (4 - n % 4) % 4;
    let stride = u32_at(&orig, 24) as usize;
    let entry = u32_at(&orig, 32) as usize;
    // A row on layer 0 only (no upper layer leads to it).
    let cut = (1..n).find(|&r| r != entry && orig[header + r] == 0).unwrap();
    tamper(&dir, vid, "graph.links", |b| {
        for r in 0..n {
            let at = links0 + r * stride * 4;
            let count = u32_at(b, at) as usize;
            let kept: Vec<u32> = (0..count)
                .map(|i| u32_at(b, at + 4 + 4 * i))
                .filter(|&x| x as usize != cut)
                .collect();
            b[at..at + 4].copy_from_slice(&(kept.len() as u32).to_le_bytes());
            for (i, x) in kept.iter().enumerate() {
                b[at + 4 + 4 * i..at + 8 + 4 * i].copy_from_slice(&x.to_le_bytes());
            }
        }
    });
    let damaged = dir.open_current(None).unwrap();
    let report = check(&damaged, &v[..DIM], &params, &NoProgress).unwrap();
    assert_eq!(report.self_reach.unreachable, vec![format!("i{cut}")]);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("do not find themselves")),
        "{:?}",
        report.warnings
    );
}

fn damage_old_files(dir: &IndexDir, v: VersionId) {
    let vdir = dir.version_path(v);
    for file in ["graph.hnsw.graph", "graph.hnsw.data"] {
        let p = vdir.join(file);
        let orig = fs::read(&p).unwrap();
        fs::write(&p, &orig[..orig.len() / 2]).unwrap();
        let err = dir.open_version(v, None).unwrap_err();
        assert!(err.to_string().contains(file), "{file}: {err}");
        let mut flipped = orig.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        fs::write(&p, &flipped).unwrap();
        let err = dir.open_version(v, None).unwrap_err();
        assert!(err.to_string().contains(file), "{file}: {err}");
        fs::write(&p, &orig).unwrap();
        dir.open_version(v, None).unwrap();
    }
}

fn format_of(dir: &IndexDir, v: VersionId) -> u32 {
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.version_path(v).join("manifest.json")).unwrap()).unwrap();
    m["format_version"].as_u64().unwrap() as u32
}

fn files(p: &Path) -> Vec<String> {
    let mut f: Vec<String> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    f.sort();
    f
}

#[test]
fn old_hnsw_rs_versions_load_take_inserts_and_compact_to_native() {
    one_thread();
    let tmp = tempfile::tempdir().unwrap();
    let dir = IndexDir::new(tmp.path());
    let n = 1_500;
    let v = clustered_unit_vectors(n + 50, DIM, 30, 0.5, 24);
    let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    // One thread: hnsw_rs's parallel insertion depends on how threads interleave, and under load
    // it once left row 0 out of its own search (the exact self-hit check below is the point).
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let v1 = one
        .install(|| {
            dir.build_version_with(
                &ids,
                &v[..n * DIM],
                DIM,
                HnswParams::default(),
                GraphBuilder::HnswRs,
                "m",
                &NoProgress,
            )
        })
        .unwrap();
    // Exactly what the code before the native builder wrote.
    assert_eq!(format_of(&dir, v1), 1);
    let listed = files(&dir.version_path(v1));
    assert!(listed.contains(&"graph.hnsw.graph".to_string()), "{listed:?}");
    assert!(!listed.contains(&"graph.links".to_string()), "{listed:?}");
    let old = dir.open_current(Some("m")).unwrap();
    assert_eq!(old.hnsw().builder(), GraphBuilder::HnswRs);
    for i in (0..n).step_by(11) {
        assert_eq!(
            old.search(&v[i * DIM..(i + 1) * DIM], 1, None).unwrap()[0].row as usize,
            i
        );
    }
    // hnsw_rs's own search works on it.
    assert!(!old
        .hnsw()
        .search_reference_with_ef(&v[..DIM], 5, 32, None)
        .unwrap()
        .is_empty());
    damage_old_files(&dir, v1);

    // add keeps the format; its rows are found.
    let new_ids: Vec<String> = (0..50).map(|i| format!("new{i}")).collect();
    let report = dir
        .add_items(&new_ids, &v[n * DIM..], &["i3".to_string()], "m", &NoProgress)
        .unwrap();
    assert_eq!(format_of(&dir, report.version), 1);
    let added = dir.open_current(Some("m")).unwrap();
    for (i, id) in new_ids.iter().enumerate() {
        let hits = added
            .search(&v[(n + i) * DIM..(n + i + 1) * DIM], 1, None)
            .unwrap();
        assert_eq!(added.id(hits[0].row), id);
    }

    // compact rebuilds natively.
    let c = dir.compact(None, &NoProgress).unwrap();
    assert_eq!(format_of(&dir, c), INDEX_FORMAT_VERSION);
    let compacted = dir.open_current(Some("m")).unwrap();
    assert_eq!(compacted.hnsw().builder(), GraphBuilder::Native);
    assert_eq!(compacted.len(), n + 50 - 1);
    assert!(compacted.row_of("i3").is_none());
    let exact = compacted.exact();
    let r = recall(&compacted, &exact, &clustered_unit_vectors(200, DIM, 30, 0.5, 99));
    assert!(r >= 0.95, "{r}");
    // And a native version takes inserts natively.
    let report = dir
        .add_items(&["late".to_string()], &v[..DIM], &[], "m", &NoProgress)
        .unwrap();
    assert_eq!(format_of(&dir, report.version), INDEX_FORMAT_VERSION);
    let late = dir.open_current(Some("m")).unwrap();
    assert_eq!(late.hnsw().builder(), GraphBuilder::Native);
    assert!(late
        .search(&v[..DIM], 2, None)
        .unwrap()
        .iter()
        .any(|h| late.id(h.row) == "late"));
}

proptest! {
    // A fixed seed: the same 24 sets every run. Graphs of tiny sets at m = 2 can leave a row that
    // the search from the descent's end does not reach, so new random sets in every run would make
    // a pass depend on the draw.
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7477_6f74),
        ..ProptestConfig::with_cases(24)
    })]
    /// Small random sets, small m: every row is found first, and with ef ≥ n recall against the
    /// exact index is high. Not 1: every row is reachable from the entry point (the builder repairs
    /// that), but layer 0 is a directed graph searched from where the descent through the upper
    /// layers ends, and from there fewer rows may be reachable (seen with n = 54, m = 2: 15 rows,
    /// one exact top-10 hit among the others). hnswlib's graphs have the same property.
    #[test]
    fn small_random_sets_are_connected_and_self_reachable(
        n in 1usize..300,
        dim in 2usize..12,
        m in 2usize..8,
        seed in any::<u64>(),
    ) {
        one_thread();
        let v = clustered_unit_vectors(n, dim, 1 + n / 20, 0.8, seed);
        let params = HnswParams { m, ef_construction: 16, ef_search: 16 };
        let h = HnswIndex::build(dim, &v, params, &NoProgress).unwrap();
        let exact = ExactIndex::from_rows(dim, &v, None).unwrap();
        let (mut hits, mut wanted) = (0usize, 0usize);
        for i in 0..n {
            let q = &v[i * dim..(i + 1) * dim];
            let got = h.search_with_ef(q, 10, n, None).unwrap();
            let want = exact.search(q, 10, None).unwrap();
            let got_rows: Vec<u32> = got.iter().map(|x| x.row).collect();
            prop_assert!(got_rows.contains(&(i as u32)), "row {} missing: {:?}", i, got_rows);
            for w in &want {
                // Rows tied in score may swap places; anything scoring above the k-th counts.
                if w.score > want.last().unwrap().score {
                    wanted += 1;
                    hits += usize::from(got_rows.contains(&w.row));
                }
            }
        }
        let recall = if wanted == 0 { 1.0 } else { hits as f64 / wanted as f64 };
        prop_assert!(recall >= 0.97, "recall {} ({} of {})", recall, hits, wanted);
    }
}
