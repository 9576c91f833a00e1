//! The flat search path against hnsw_rs's own search and the exact index on one graph: recall at
//! least as good, every item reachable, filters that return only (and enough) kept rows, inserted
//! rows found, and the same answers after a dump and reload.

use twotower_data::progress::NoProgress;
use twotower_index::synthetic::clustered_unit_vectors;
use twotower_index::{ExactIndex, Hit, HnswIndex, HnswParams, IndexDir, RowFilter, VectorIndex};

/// Every test here builds its graphs on one thread: a parallel graph depends on how the threads
/// interleave, and these tests assert properties of particular graphs.
fn one_thread() {
    let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
}

const DIM: usize = 32;

fn overlap(truth: &[Hit], got: &[Hit]) -> usize {
    truth
        .iter()
        .filter(|t| got.iter().any(|g| g.row == t.row))
        .count()
}

/// (flat recall, hnsw_rs recall) of k=10 at `ef` over `queries`.
fn recalls(h: &HnswIndex, exact: &ExactIndex, queries: &[f32], ef: usize) -> (f64, f64) {
    let (mut flat, mut reference, mut total) = (0, 0, 0);
    for q in queries.chunks_exact(DIM) {
        let truth = exact.search(q, 10, None).unwrap();
        let a = h.search_with_ef(q, 10, ef, None).unwrap();
        let b = h.search_reference_with_ef(q, 10, ef, None).unwrap();
        assert_eq!(a.len(), 10);
        assert!(
            a.windows(2).all(|w| w[0].score >= w[1].score),
            "hits not best first"
        );
        flat += overlap(&truth, &a);
        reference += overlap(&truth, &b);
        total += truth.len();
    }
    (flat as f64 / total as f64, reference as f64 / total as f64)
}

#[test]
fn flat_search_matches_or_beats_hnsw_rs_and_reaches_every_item() {
    one_thread();
    let n = 8_000;
    let all = clustered_unit_vectors(n + 400, DIM, 150, 0.6, 11);
    let (v, queries) = all.split_at(n * DIM);
    // hnsw_rs's search needs hnsw_rs's graph: the comparison runs on a graph it built.
    let h = HnswIndex::build_with_hnsw_rs(DIM, v, HnswParams::default(), &NoProgress).unwrap();
    let exact = ExactIndex::from_rows(DIM, v, None).unwrap();
    // A native graph has no hnsw_rs reference search.
    let native = HnswIndex::build(DIM, &v[..100 * DIM], HnswParams::default(), &NoProgress).unwrap();
    assert!(native
        .search_reference_with_ef(&queries[..DIM], 10, 10, None)
        .is_err());

    for ef in [10, 24, 48, 128] {
        let (flat, reference) = recalls(&h, &exact, queries, ef);
        assert!(
            flat >= reference - 0.005,
            "ef {ef}: flat recall {flat} below hnsw_rs {reference}"
        );
        if ef >= 48 {
            assert!(flat >= 0.99, "ef {ef}: flat recall {flat}");
        }
    }

    // Scores are the exact cosines of the rows returned.
    let q = &queries[..DIM];
    for hit in h.search_with_ef(q, 10, 64, None).unwrap() {
        let want = exact.search(q, n, Some(&|r| r == hit.row)).unwrap()[0].score;
        assert!(
            (hit.score - want).abs() < 1e-5,
            "row {}: {} vs {want}",
            hit.row,
            hit.score
        );
    }

    // Every item is its own nearest neighbour.
    let unreachable: Vec<usize> = (0..n)
        .filter(|&i| {
            let hits = h.search_with_ef(&v[i * DIM..(i + 1) * DIM], 1, 48, None).unwrap();
            hits.first().map(|x| x.row as usize) != Some(i)
        })
        .collect();
    assert!(
        unreachable.is_empty(),
        "{} unreachable: {:?}",
        unreachable.len(),
        &unreachable[..unreachable.len().min(5)]
    );

    // Batched and single searches agree.
    let batch = h.search_batch_with_ef(queries, 10, 32, None).unwrap();
    for (q, b) in queries.chunks_exact(DIM).zip(&batch) {
        assert_eq!(&h.search_with_ef(q, 10, 32, None).unwrap(), b);
    }
}

#[test]
fn filters_return_only_kept_rows_and_enough_of_them() {
    one_thread();
    let n = 6_000;
    let all = clustered_unit_vectors(n + 100, DIM, 100, 0.6, 12);
    let (v, queries) = all.split_at(n * DIM);
    let h = HnswIndex::build(DIM, v, HnswParams::default(), &NoProgress).unwrap();
    let exact = ExactIndex::from_rows(DIM, v, None).unwrap();
    // From mild (3 in 4 kept) to very selective (1 in 100 kept: 60 rows).
    for modulus in [4u32, 100] {
        let keep = move |r: u32| r % modulus == 1;
        let keep_mild = move |r: u32| !r.is_multiple_of(modulus);
        let filters: [(&str, RowFilter<'_>); 2] = [("selective", &keep), ("mild", &keep_mild)];
        for (name, f) in filters {
            let (mut found, mut total) = (0, 0);
            for q in queries.chunks_exact(DIM) {
                let want = exact.search(q, 10, Some(f)).unwrap();
                let got = h.search_with_ef(q, 10, 48, Some(f)).unwrap();
                assert!(
                    got.iter().all(|x| f(x.row)),
                    "{name} %{modulus}: a filtered row came back"
                );
                assert_eq!(
                    got.len(),
                    want.len(),
                    "{name} %{modulus}: fewer than k kept rows returned"
                );
                found += overlap(&want, &got);
                total += want.len();
            }
            let r = found as f64 / total as f64;
            assert!(r >= 0.95, "{name} %{modulus}: filtered recall {r}");
        }
    }
    assert!(h
        .search(&queries[..DIM], 10, Some(&|_| false))
        .unwrap()
        .is_empty());
    // A filter keeping 3 rows yields exactly those 3 (the beam runs until exhausted).
    let three = |r: u32| r == 5 || r == 500 || r == 5000;
    let mut got: Vec<u32> = h
        .search(&queries[..DIM], 10, Some(&three))
        .unwrap()
        .iter()
        .map(|x| x.row)
        .collect();
    got.sort();
    assert_eq!(got, vec![5, 500, 5000]);
}

#[test]
fn inserted_rows_are_found_and_reload_gives_the_same_answers() {
    one_thread();
    let n = 3_000;
    let extra = 600;
    let all = clustered_unit_vectors(n + extra + 50, DIM, 60, 0.6, 13);
    let (v, rest) = all.split_at(n * DIM);
    let (more, queries) = rest.split_at(extra * DIM);
    let mut h = HnswIndex::build(DIM, v, HnswParams::default(), &NoProgress).unwrap();
    let first = h.insert(more, &NoProgress).unwrap();
    assert_eq!(first as usize, n);
    assert_eq!(h.len(), n + extra);
    for i in 0..extra {
        let row = (n + i) as u32;
        let hits = h.search(&more[i * DIM..(i + 1) * DIM], 1, None).unwrap();
        assert_eq!(
            hits.first().map(|x| x.row),
            Some(row),
            "inserted row {row} not found"
        );
    }

    // Through a version on disk: the loaded graph's flat copy answers like the built one.
    let tmp = tempfile::tempdir().unwrap();
    let dir = IndexDir::new(tmp.path());
    let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    let built = HnswIndex::build(DIM, v, HnswParams::default(), &NoProgress).unwrap();
    dir.build_version(&ids, v, DIM, HnswParams::default(), "m", &NoProgress)
        .unwrap();
    let loaded = dir.open_current(Some("m")).unwrap();
    let exact = ExactIndex::from_rows(DIM, v, None).unwrap();
    let (mut a, mut b, mut total) = (0, 0, 0);
    for q in queries.chunks_exact(DIM) {
        let truth = exact.search(q, 10, None).unwrap();
        a += overlap(&truth, &built.search(q, 10, None).unwrap());
        b += overlap(&truth, &loaded.search(q, 10, None).unwrap());
        total += truth.len();
    }
    assert!(b as f64 / total as f64 >= 0.99, "loaded recall {b}/{total}");
    assert!(a as f64 / total as f64 >= 0.99, "built recall {a}/{total}");
    for i in (0..n).step_by(7) {
        let hits = loaded.search(&v[i * DIM..(i + 1) * DIM], 1, None).unwrap();
        assert_eq!(hits[0].row as usize, i);
    }
}
