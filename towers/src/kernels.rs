//! The numeric kernels the towers, training and evaluation share: a strided matrix product on
//! `gemm` (deterministic for a fixed thread count) and exact top-k selection over score rows.

use rayon::prelude::*;

use twotower_data::topk::{Hit, TopK};

use crate::error::Result;

/// `out[m×n] = A[m×k] · B[k×n]` with explicit (row, column) strides of `a` and `b`; `out` is row-major.
/// Deterministic for a fixed thread count (gemm splits the output, never the sum).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    out: &mut [f32],
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(out.len() >= m * n, "matmul: output too small");
    if k == 0 {
        out[..m * n].fill(0.0);
        return;
    }
    assert!(a.len() > last(a_rs, a_cs, m, k), "matmul: lhs too small");
    assert!(b.len() > last(b_rs, b_cs, k, n), "matmul: rhs too small");
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index gemm forms (i*rs + j*cs for i < rows, j < cols)
    // inside the three slices; `out` is exclusively borrowed and does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Exact top-`k` items for each query by inner product, excluding `exclude(q)` (sorted or not), ties
/// broken by lower item index. Scores are computed as a matrix product one block of queries at a time
/// (bounded memory at any catalogue size) and selection runs in parallel over queries.
pub fn top_k_exact<'a>(
    queries: &[f32],
    items: &[f32],
    dim: usize,
    k: usize,
    exclude: &(dyn Fn(usize) -> &'a [u32] + Sync),
) -> Result<Vec<Vec<u32>>> {
    let nq = queries.len().checked_div(dim).unwrap_or(0);
    let ni = items.len().checked_div(dim).unwrap_or(0);
    if nq == 0 || ni == 0 {
        return Ok(vec![Vec::new(); nq]);
    }
    // One score buffer reused for every block, written by gemm directly: allocating a fresh block
    // matrix per step through candle grew the process by ~128 MB per block at 1 M items.
    let block = (32_000_000 / ni).clamp(1, 1024);
    let threads = rayon::current_num_threads();
    let mut scores = vec![0f32; block.min(nq) * ni];
    let mut out = Vec::with_capacity(nq);
    for start in (0..nq).step_by(block) {
        let end = (start + block).min(nq);
        let m = end - start;
        let buf = &mut scores[..m * ni];
        // scores[q][i] = <query q, item i>: items (ni × dim, row-major) read as dim × ni.
        matmul(
            m,
            ni,
            dim,
            &queries[start * dim..end * dim],
            (dim, 1),
            items,
            (1, dim),
            buf,
            threads,
        );
        let part: Vec<Vec<u32>> = buf
            .par_chunks(ni)
            .enumerate()
            .map(|(j, row)| select_top(row, k, exclude(start + j)))
            .collect();
        out.extend(part);
    }
    Ok(out)
}

/// [`top_k_exact`] over a catalogue of `n_items` that `items(start, end)` makes a chunk of `chunk`
/// rows at a time (row-major vectors of rows `start..end`): the same lists, bit for bit (gemm never
/// splits a sum, and rows are offered in the same order), with one chunk of vectors in memory
/// instead of the whole catalogue's (512 MB at 1 M items × 128).
pub fn top_k_exact_chunked<'a>(
    queries: &[f32],
    n_items: usize,
    dim: usize,
    k: usize,
    chunk: usize,
    items: &mut dyn FnMut(usize, usize) -> Result<Vec<f32>>,
    exclude: &(dyn Fn(usize) -> &'a [u32] + Sync),
) -> Result<Vec<Vec<u32>>> {
    let nq = queries.len().checked_div(dim).unwrap_or(0);
    if nq == 0 || n_items == 0 {
        return Ok(vec![Vec::new(); nq]);
    }
    let chunk = chunk.max(1).min(n_items);
    // A 32 MB score buffer: this runs beside a training run's tables, where every buffer counts.
    let block = (8_000_000 / chunk).clamp(1, 1024);
    let threads = rayon::current_num_threads();
    let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
    // Each query's exclusions, sorted once.
    let excluded: Vec<Vec<u32>> = (0..nq)
        .into_par_iter()
        .map(|q| {
            let mut ex = exclude(q).to_vec();
            ex.sort_unstable();
            ex
        })
        .collect();
    let mut scores = vec![0f32; block.min(nq) * chunk];
    for s in (0..n_items).step_by(chunk) {
        let e = (s + chunk).min(n_items);
        let n = e - s;
        let vecs = items(s, e)?;
        for start in (0..nq).step_by(block) {
            let end = (start + block).min(nq);
            let m = end - start;
            let buf = &mut scores[..m * n];
            matmul(
                m,
                n,
                dim,
                &queries[start * dim..end * dim],
                (dim, 1),
                &vecs,
                (1, dim),
                buf,
                threads,
            );
            tops[start..end]
                .par_iter_mut()
                .zip(buf.par_chunks(n))
                .zip(&excluded[start..end])
                .for_each(|((top, row), ex)| {
                    for (i, &sc) in row.iter().enumerate() {
                        if sc.is_nan() || sc < top.threshold() {
                            continue;
                        }
                        let r = (s + i) as u32;
                        if !ex.is_empty() && ex.binary_search(&r).is_ok() {
                            continue;
                        }
                        top.push(Hit { row: r, score: sc });
                    }
                });
        }
    }
    Ok(tops
        .into_iter()
        .map(|t| t.into_sorted().iter().map(|h| h.row).collect())
        .collect())
}

/// The top `k` indices of `scores` outside `exclude`, best first (ties by the lower index; NaN
/// scores never ranked), through the top-k accumulator the index's exact search uses too.
pub fn select_top(scores: &[f32], k: usize, exclude: &[u32]) -> Vec<u32> {
    let mut ex = exclude.to_vec();
    ex.sort_unstable();
    let mut top = TopK::new(k);
    for (i, &s) in scores.iter().enumerate() {
        // Below the k-th best nothing enters (an equal score at this later index loses too).
        if s.is_nan() || s < top.threshold() {
            continue;
        }
        if !ex.is_empty() && ex.binary_search(&(i as u32)).is_ok() {
            continue;
        }
        top.push(Hit {
            row: i as u32,
            score: s,
        });
    }
    let hits = top.into_sorted();
    // A fresh, exact-size vector: every kept top-k list must not pin a larger buffer.
    let mut out = Vec::with_capacity(hits.len());
    out.extend(hits.iter().map(|h| h.row));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_lists_do_not_pin_the_candidate_buffer() {
        let scores: Vec<f32> = (0..100_000).map(|i| (i % 977) as f32).collect();
        let top = select_top(&scores, 10, &[]);
        assert_eq!(top.len(), 10);
        assert!(
            top.capacity() < 1000,
            "capacity {} keeps the scan buffer alive",
            top.capacity()
        );
    }

    #[test]
    fn exact_top_k_excludes_and_orders() {
        // 2-d: query (1, 0); items score 0.1, 0.9, 0.5, 0.9, -1.
        let items = [0.1, 0.0, 0.9, 0.0, 0.5, 0.0, 0.9, 1.0, -1.0, 0.0];
        let q = [1.0, 0.0, 0.0, 1.0];
        let ex: Vec<Vec<u32>> = vec![vec![1], vec![]];
        let top = top_k_exact(&q, &items, 2, 3, &|u| ex[u].as_slice()).unwrap();
        assert_eq!(top[0], vec![3, 2, 0], "item 1 excluded, ties by index");
        assert_eq!(top[1][0], 3);
    }

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut o = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                o[i * n + j] = (0..k).map(|t| a(i, t) * b(t, j)).sum();
            }
        }
        o
    }

    #[test]
    fn matmul_strides_match_naive() {
        let (m, n, k) = (7, 5, 3);
        let u: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.3).sin()).collect();
        let v: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.7).cos()).collect();
        for threads in [1, 2] {
            // U · Vᵀ
            let mut o = vec![9.0; m * n];
            matmul(m, n, k, &u, (k, 1), &v, (1, k), &mut o, threads);
            let want = naive(m, n, k, |i, t| u[i * k + t], |t, j| v[j * k + t]);
            assert!(
                o.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5),
                "{o:?} {want:?}"
            );
            // Gᵀ · U with G = o (m × n): result n × k
            let mut g = vec![0.0; n * k];
            matmul(n, k, m, &o, (1, n), &u, (k, 1), &mut g, threads);
            let want = naive(n, k, m, |j, i| o[i * n + j], |i, t| u[i * k + t]);
            assert!(g.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-4));
        }
    }

    #[test]
    fn chunked_top_k_is_the_whole_matrix_top_k() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (nq, ni, d, k) = (37, 1_000, 8, 25);
        // Coarse values: many exact ties, which both must break by the lower row.
        let q: Vec<f32> = (0..nq * d).map(|_| rng.gen_range(-2..=2) as f32).collect();
        let items: Vec<f32> = (0..ni * d).map(|_| rng.gen_range(-2..=2) as f32).collect();
        let ex: Vec<Vec<u32>> = (0..nq)
            .map(|i| vec![(i * 7) as u32, 3, (i * 13 % ni) as u32])
            .collect();
        let exclude = |i: usize| ex[i].as_slice();
        let want = top_k_exact(&q, &items, d, k, &exclude).unwrap();
        for chunk in [1, 7, 64, 333, 1_000, 5_000] {
            let mut calls = 0;
            let got = top_k_exact_chunked(
                &q,
                ni,
                d,
                k,
                chunk,
                &mut |s, e| {
                    calls += 1;
                    Ok(items[s * d..e * d].to_vec())
                },
                &exclude,
            )
            .unwrap();
            assert_eq!(got, want, "chunk {chunk}");
            assert_eq!(calls, ni.div_ceil(chunk.min(ni)));
        }
    }
}
