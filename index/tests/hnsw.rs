//! The graph against the exact index on clustered unit vectors: recall, self-reachability,
//! filters, inserts, and inputs that must be errors rather than panics.

use twotower_data::progress::NoProgress;
use twotower_index::synthetic::clustered_unit_vectors;
use twotower_index::{ExactIndex, HnswIndex, HnswParams, VectorIndex};

/// Every test here builds its graphs on one thread: a parallel graph depends on how the threads
/// interleave, and these tests assert properties of particular graphs.
fn one_thread() {
    let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
}

const DIM: usize = 32;

fn recall(hnsw: &HnswIndex, exact: &ExactIndex, queries: &[f32], k: usize, ef: usize) -> f64 {
    let truth = exact.search_batch(queries, k, None).unwrap();
    let got = hnsw.search_batch_with_ef(queries, k, ef, None).unwrap();
    let mut found = 0;
    let mut total = 0;
    for (t, g) in truth.iter().zip(&got) {
        total += t.len();
        found += t.iter().filter(|h| g.iter().any(|x| x.row == h.row)).count();
    }
    found as f64 / total as f64
}

#[test]
fn recall_and_self_reachability_on_clustered_vectors() {
    one_thread();
    let n = 10_000;
    // Queries are held-out draws from the same mixture (the generator is prefix-stable).
    let all = clustered_unit_vectors(n + 500, DIM, 200, 0.6, 1);
    let (v, queries) = all.split_at(n * DIM);
    let v = v.to_vec();
    let hnsw = HnswIndex::build(DIM, &v, HnswParams::default(), &NoProgress).unwrap();
    let exact = ExactIndex::from_rows(DIM, &v, None).unwrap();
    assert_eq!(hnsw.len(), n);
    let r = recall(&hnsw, &exact, queries, 10, HnswParams::default().ef_search);
    assert!(r >= 0.99, "recall@10 at default ef = {r}");
    // Lower ef must not be better than higher ef by much (sanity of the ef knob).
    let r_low = recall(&hnsw, &exact, queries, 10, 10);
    assert!(r_low <= r + 1e-9, "ef=10 recall {r_low} > default {r}");

    // Every item finds itself, with score 1.
    let unreachable = self_misses(&hnsw, &v);
    assert!(
        unreachable.is_empty(),
        "{} unreachable, e.g. {:?}",
        unreachable.len(),
        &unreachable[..unreachable.len().min(5)]
    );
    let top = hnsw.search(&v[..DIM], 1, None).unwrap();
    assert!((top[0].score - 1.0).abs() < 1e-5);
}

/// Rows whose self-search at the default ef misses them.
fn self_misses(hnsw: &HnswIndex, v: &[f32]) -> Vec<usize> {
    (0..v.len() / DIM)
        .filter(|&i| {
            let hits = hnsw.search(&v[i * DIM..(i + 1) * DIM], 10, None).unwrap();
            !hits.iter().any(|h| h.row as usize == i)
        })
        .collect()
}

/// An item whose own search misses it is rare (at most 5 in 10 k), never a pattern.
#[test]
fn a_build_finds_almost_every_item_itself() {
    one_thread();
    let n = 10_000;
    let v = clustered_unit_vectors(n, DIM, 200, 0.6, 1);
    let hnsw = HnswIndex::build(DIM, &v, HnswParams::default(), &NoProgress).unwrap();
    let misses = self_misses(&hnsw, &v);
    assert!(
        misses.len() <= 5,
        "{} of {n} items miss themselves: {misses:?}",
        misses.len()
    );
}

#[test]
fn filtered_search_returns_only_kept_rows_with_good_recall() {
    one_thread();
    let n = 10_000;
    let all = clustered_unit_vectors(n + 200, DIM, 100, 0.6, 3);
    let (v, queries) = all.split_at(n * DIM);
    let hnsw = HnswIndex::build(DIM, v, HnswParams::default(), &NoProgress).unwrap();
    let exact = ExactIndex::from_rows(DIM, v, None).unwrap();
    let keep = |r: u32| !r.is_multiple_of(4);
    let mut found = 0;
    let mut total = 0;
    for q in queries.chunks_exact(DIM) {
        let want = exact.search(q, 10, Some(&keep)).unwrap();
        let got = hnsw.search(q, 10, Some(&keep)).unwrap();
        assert!(got.iter().all(|h| keep(h.row)));
        total += want.len();
        found += want.iter().filter(|h| got.iter().any(|g| g.row == h.row)).count();
    }
    let r = found as f64 / total as f64;
    assert!(r >= 0.98, "filtered recall {r}");
    // A filter nothing passes: empty, not a panic.
    assert!(hnsw
        .search(&queries[..DIM], 10, Some(&|_| false))
        .unwrap()
        .is_empty());
}

#[test]
fn inserted_rows_are_searchable() {
    one_thread();
    let v = clustered_unit_vectors(3000, DIM, 30, 0.6, 5);
    let mut hnsw = HnswIndex::build(DIM, &v[..2000 * DIM], HnswParams::default(), &NoProgress).unwrap();
    let first = hnsw.insert(&v[2000 * DIM..], &NoProgress).unwrap();
    assert_eq!(first, 2000);
    assert_eq!(hnsw.len(), 3000);
    for i in 2000..3000 {
        let hits = hnsw.search(&v[i * DIM..(i + 1) * DIM], 5, None).unwrap();
        assert!(hits.iter().any(|h| h.row as usize == i), "row {i} not found");
    }
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    one_thread();
    let v = clustered_unit_vectors(500, DIM, 5, 0.6, 6);
    let hnsw = HnswIndex::build(DIM, &v, HnswParams::default(), &NoProgress).unwrap();
    assert!(hnsw.search(&[1.0; DIM - 1], 5, None).is_err());
    let mut nan = vec![0.1; DIM];
    nan[3] = f32::NAN;
    assert!(hnsw.search(&nan, 5, None).is_err());
    assert!(hnsw.search(&[0.0; DIM], 5, None).is_ok());
    // Denormal-scale and huge-but-finite queries normalise fine.
    assert_eq!(hnsw.search(&[1e-30; DIM], 3, None).unwrap().len(), 3);
    assert_eq!(hnsw.search(&[3e38; DIM], 3, None).unwrap().len(), 3);
    assert!(hnsw.search(&v[..DIM], 0, None).unwrap().is_empty());
    let mut bad = v.clone();
    bad[7 * DIM] = f32::INFINITY;
    let err = HnswIndex::build(DIM, &bad, HnswParams::default(), &NoProgress).unwrap_err();
    assert!(err.to_string().contains("row 7"), "{err}");
    let bad_params = HnswParams {
        m: 1000,
        ..HnswParams::default()
    };
    assert!(HnswIndex::build(DIM, &v, bad_params, &NoProgress).is_err());
    let empty = HnswIndex::build(DIM, &[], HnswParams::default(), &NoProgress).unwrap();
    assert!(empty.search(&v[..DIM], 5, None).unwrap().is_empty());
}
