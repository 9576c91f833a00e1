//! Embedding tables kept outside candle: plain row-major `Vec<f32>`, read by hand-written gather/pool and
//! written back row by row. candle's embedding op has a dense gradient (the whole table) and its optimizers
//! update every row each step; at a million rows that dominates training. Here a step touches only the
//! rows its batch names, so it costs the same for 10 k or 10 M rows.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::mem::prefetch;
use crate::simd::axpy;

/// How many entries ahead the gathers and scatters prefetch their (randomly placed) rows.
const PREFETCH_AHEAD: usize = 8;
/// Below this many multiply-adds a scatter runs serially.
const PAR_MIN_WORK: usize = 1 << 16;

/// A batch of weighted bags of rows, in CSR form: example `e` pools
/// `rows[offsets[e]..offsets[e+1]]` with the matching `weights`. A single id is a bag of one; a mean
/// over a genre list or a recency-weighted history is a bag with weights summing to one; an empty bag
/// pools to zeros.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bags {
    offsets: Vec<u32>,
    rows: Vec<u32>,
    weights: Vec<f32>,
}

impl Bags {
    /// An empty batch with room for `n` bags.
    pub fn with_capacity(n: usize) -> Bags {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        Bags {
            offsets,
            rows: Vec::with_capacity(n),
            weights: Vec::with_capacity(n),
        }
    }

    /// Appends a bag of exactly one row (an id or a categorical value).
    pub fn push_one(&mut self, row: u32) {
        self.rows.push(row);
        self.weights.push(1.0);
        self.offsets.push(self.rows.len() as u32);
    }

    /// Appends a bag with the given weights.
    pub fn push_weighted(&mut self, rows: &[u32], weights: &[f32]) {
        debug_assert_eq!(rows.len(), weights.len());
        self.rows.extend_from_slice(rows);
        self.weights.extend_from_slice(weights);
        self.offsets.push(self.rows.len() as u32);
    }

    /// Appends the plain mean of `rows` (nothing when empty).
    pub fn push_mean(&mut self, rows: &[u32]) {
        if !rows.is_empty() {
            let w = 1.0 / rows.len() as f32;
            self.rows.extend_from_slice(rows);
            self.weights.extend(std::iter::repeat_n(w, rows.len()));
        }
        self.offsets.push(self.rows.len() as u32);
    }

    /// Appends a recency-weighted mean of `rows` ordered oldest first: the most recent row gets weight
    /// 1, the one before `decay`, then `decay^2`…, normalised to sum to one.
    pub fn push_recency(&mut self, rows: &[u32], decay: f32) {
        if !rows.is_empty() {
            let n = rows.len();
            let start = self.weights.len();
            let mut w = 1.0f32;
            let mut total = 0.0f32;
            self.weights.resize(start + n, 0.0);
            for k in 0..n {
                self.weights[start + n - 1 - k] = w;
                total += w;
                w *= decay;
            }
            for x in &mut self.weights[start..] {
                *x /= total;
            }
            self.rows.extend_from_slice(rows);
        }
        self.offsets.push(self.rows.len() as u32);
    }

    /// Number of bags.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there is no bag.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows and weights of bag `e`.
    pub fn bag(&self, e: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[e] as usize, self.offsets[e + 1] as usize);
        (&self.rows[a..b], &self.weights[a..b])
    }

    /// Calls `f(rows, weights)` for every bag, in parallel, letting it rewrite the weights
    /// (attention pooling replaces the recency weights this way).
    pub fn par_reweight(&mut self, f: impl Fn(&[u32], &mut [f32]) + Sync) {
        let mut slices: Vec<&mut [f32]> = Vec::with_capacity(self.len());
        let mut rest = self.weights.as_mut_slice();
        for w in self.offsets.windows(2) {
            let (a, r) = rest.split_at_mut((w[1] - w[0]) as usize);
            slices.push(a);
            rest = r;
        }
        let rows = &self.rows;
        let offsets = &self.offsets;
        slices
            .into_par_iter()
            .with_min_len(64)
            .enumerate()
            .for_each(|(e, ws)| {
                let a = offsets[e] as usize;
                f(&rows[a..a + ws.len()], ws)
            });
    }

    /// All row references (for bounds checks).
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// All weights, entry by entry as in [`Self::rows`].
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
}

/// One embedding table: `rows × dim` weights, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingTable {
    /// Name used in the weights file (`item.id`, `user.history`, …).
    pub name: String,
    /// Number of rows (including the OOV row where the feature has one).
    pub rows: usize,
    /// Width of a row.
    pub dim: usize,
    /// The weights, `rows * dim`.
    pub weights: Vec<f32>,
}

impl EmbeddingTable {
    /// A table initialised uniformly in `[-scale, scale]` (Keras' default embedding initialiser uses 0.05).
    pub fn random(name: &str, rows: usize, dim: usize, scale: f32, rng: &mut ChaCha8Rng) -> EmbeddingTable {
        let n = rows * dim;
        let weights = crate::mem::huge_vec_from(n, (0..n).map(|_| rng.gen_range(-scale..=scale)));
        EmbeddingTable {
            name: name.to_string(),
            rows,
            dim,
            weights,
        }
    }

    /// Row `r`.
    pub fn row(&self, r: u32) -> &[f32] {
        let r = r as usize;
        &self.weights[r * self.dim..(r + 1) * self.dim]
    }

    /// Writes the pooled vector of each bag into columns `col..col+dim` of the row-major `out`, whose
    /// rows are `stride` wide. Parallel over bags; each bag is summed in order, so the result does not
    /// depend on the thread count.
    pub fn pool_into(&self, bags: &Bags, out: &mut [f32], stride: usize, col: usize) {
        let dim = self.dim;
        out.par_chunks_mut(stride)
            .with_min_len(64)
            .enumerate()
            .for_each(|(e, dst)| {
                if e + PREFETCH_AHEAD < bags.len() {
                    for &r in bags.bag(e + PREFETCH_AHEAD).0.iter().take(4) {
                        let o = r as usize * dim;
                        if o + dim <= self.weights.len() {
                            prefetch(self.weights[o..].as_ptr(), dim * 4);
                        }
                    }
                }
                let dst = &mut dst[col..col + dim];
                dst.fill(0.0);
                let (rows, ws) = bags.bag(e);
                for (i, (&r, &w)) in rows.iter().zip(ws).enumerate() {
                    // Long bags (histories) reach past the rows prefetched for them above.
                    if let Some(&ahead) = rows.get(i + 4) {
                        let o = ahead as usize * dim;
                        if o + dim <= self.weights.len() {
                            prefetch(self.weights[o..].as_ptr(), dim * 4);
                        }
                    }
                    axpy(dst, w, self.row(r));
                }
            });
    }
}

/// The gradient of one table for one step, stored only for the rows the step touched (in order of first
/// touch, so accumulation order and hence the result are deterministic).
#[derive(Debug, Clone)]
pub struct RowGrads {
    dim: usize,
    slot_of_row: Vec<u32>,
    touched: Vec<u32>,
    grad: Vec<f32>,
}

impl RowGrads {
    /// Empty gradients for a `rows × dim` table. Costs 4 bytes per row once, nothing per step.
    pub fn new(rows: usize, dim: usize) -> RowGrads {
        RowGrads {
            dim,
            slot_of_row: crate::mem::huge_vec(rows, u32::MAX),
            touched: Vec::new(),
            grad: Vec::new(),
        }
    }

    /// Back-propagates a pooling: adds `w * grad_out[e, col..col+dim]` to every row of bag `e`.
    /// Entries of weight exactly 0 (an attention weight whose gradient vanished) do not touch their
    /// row, so the sparse optimizer leaves it alone rather than stepping it on momentum alone. A
    /// `stride` of 0 reads the same gradient row for every bag.
    ///
    /// Slots are assigned serially (in order of first touch); the sums then run in parallel over
    /// slots, each slot adding its contributions in bag order, so the result is the same as the plain
    /// serial loop's, bit for bit, whatever the thread count.
    pub fn accumulate(&mut self, bags: &Bags, grad_out: &[f32], stride: usize, col: usize) {
        self.accumulate_with(bags, grad_out, stride, col, None);
    }

    /// [`Self::accumulate`], plus a second gradient on the same entries: entry `j` of `bags` also adds
    /// `extra.weights[j] · extra.grad` to its row (attention's gradient on the history rows, which
    /// name the same rows as their pooling). One pass over the rows where two accumulations would
    /// take two; an entry is skipped only when both its weights are 0.
    pub fn accumulate_with(
        &mut self,
        bags: &Bags,
        grad_out: &[f32],
        stride: usize,
        col: usize,
        extra: Option<(&[f32], &[f32])>,
    ) {
        let dim = self.dim;
        let nnz = bags.rows.len();
        let (w2s, g2): (&[f32], &[f32]) = match extra {
            Some((w, g)) => {
                assert!(
                    w.len() == nnz && g.len() == dim,
                    "accumulate_with: extra gradient shape"
                );
                (w, g)
            }
            None => (&[], &[]),
        };
        let w2 = |k: usize| w2s.get(k).copied().unwrap_or(0.0);
        let mut entry_slot: Vec<u32> = Vec::with_capacity(nnz);
        for (k, (&r, &w)) in bags.rows.iter().zip(&bags.weights).enumerate() {
            if let Some(&ahead) = bags.rows.get(k + PREFETCH_AHEAD) {
                if let Some(p) = self.slot_of_row.get(ahead as usize) {
                    prefetch(p as *const u32, 4);
                }
            }
            if w == 0.0 && w2(k) == 0.0 {
                entry_slot.push(u32::MAX);
                continue;
            }
            let slot = self.slot_of_row[r as usize];
            let slot = if slot == u32::MAX {
                let s = self.touched.len() as u32;
                self.slot_of_row[r as usize] = s;
                self.touched.push(r);
                s
            } else {
                slot
            };
            entry_slot.push(slot);
        }
        self.grad.resize(self.touched.len() * dim, 0.0);
        let add = |dst: &mut [f32], e: usize, k: usize, w: f32| {
            axpy(dst, w, &grad_out[e * stride + col..e * stride + col + dim]);
            if !w2s.is_empty() {
                axpy(dst, w2s[k], g2);
            }
        };
        if nnz * dim < PAR_MIN_WORK {
            for e in 0..bags.len() {
                let (a, b) = (bags.offsets[e] as usize, bags.offsets[e + 1] as usize);
                for (k, &s) in entry_slot.iter().enumerate().take(b).skip(a) {
                    if s != u32::MAX {
                        let s = s as usize;
                        add(&mut self.grad[s * dim..(s + 1) * dim], e, k, bags.weights[k]);
                    }
                }
            }
            return;
        }
        // Contributions grouped by slot (a stable counting sort keeps each slot's bag order).
        let n_slots = self.touched.len();
        let mut start = vec![0u32; n_slots + 1];
        for &s in entry_slot.iter().filter(|&&s| s != u32::MAX) {
            start[s as usize + 1] += 1;
        }
        for i in 0..n_slots {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        // (bag, entry) of each contribution.
        let mut by_slot = vec![(0u32, 0u32); nnz];
        for e in 0..bags.len() {
            let (a, b) = (bags.offsets[e] as usize, bags.offsets[e + 1] as usize);
            for (k, &s) in entry_slot.iter().enumerate().take(b).skip(a) {
                if s != u32::MAX {
                    let s = s as usize;
                    by_slot[fill[s] as usize] = (e as u32, k as u32);
                    fill[s] += 1;
                }
            }
        }
        let weights = &bags.weights;
        self.grad
            .par_chunks_mut(dim.max(1))
            .enumerate()
            .with_min_len(64)
            .for_each(|(s, dst)| {
                for &(e, k) in &by_slot[start[s] as usize..start[s + 1] as usize] {
                    add(dst, e as usize, k as usize, weights[k as usize]);
                }
            });
    }

    /// The rows touched since the last [`RowGrads::clear`], with their gradients.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[f32])> {
        self.touched
            .iter()
            .zip(self.grad.chunks(self.dim.max(1)))
            .map(|(&r, g)| (r, g))
    }

    /// The touched rows, in the order of [`RowGrads::iter`].
    pub fn touched_rows(&self) -> &[u32] {
        &self.touched
    }

    /// The gradients of [`RowGrads::touched_rows`], `dim` floats each, in the same order.
    pub fn values(&self) -> &[f32] {
        &self.grad
    }

    /// Number of touched rows.
    pub fn touched(&self) -> usize {
        self.touched.len()
    }

    /// Forgets this step's rows (cost proportional to the rows touched, not the table).
    pub fn clear(&mut self) {
        for &r in &self.touched {
            self.slot_of_row[r as usize] = u32::MAX;
        }
        self.touched.clear();
        self.grad.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    /// Two gradients on the same entries in one pass equal the two accumulations one after the
    /// other, row for row (up to the order of the additions), and an entry whose two weights are 0
    /// touches nothing.
    #[test]
    fn accumulate_with_an_extra_gradient_is_two_accumulations() {
        let mut bags = Bags::with_capacity(3);
        bags.push_weighted(&[1, 3, 1], &[0.5, 0.25, 0.25]);
        bags.push_weighted(&[3, 7], &[0.0, 1.0]);
        bags.push_weighted(&[9], &[0.0]);
        let (dim, stride) = (4, 6);
        let g: Vec<f32> = (0..3 * stride).map(|i| i as f32 * 0.1 - 0.7).collect();
        let w2 = [0.3, -0.2, 0.1, 0.5, 0.0, 0.0];
        let q = [1.0, -2.0, 0.5, 0.25];
        let mut fused = RowGrads::new(10, dim);
        fused.accumulate_with(&bags, &g, stride, 1, Some((&w2, &q)));
        let mut extra = Bags::with_capacity(3);
        extra.push_weighted(&[1, 3, 1], &w2[..3]);
        extra.push_weighted(&[3, 7], &w2[3..5]);
        extra.push_weighted(&[9], &w2[5..]);
        let mut two = RowGrads::new(10, dim);
        two.accumulate(&bags, &g, stride, 1);
        two.accumulate(&extra, &q, 0, 0);
        let rows = |r: &RowGrads| {
            let mut v: Vec<(u32, Vec<f32>)> = r.iter().map(|(row, g)| (row, g.to_vec())).collect();
            v.sort_by_key(|x| x.0);
            v
        };
        let (a, b) = (rows(&fused), rows(&two));
        assert_eq!(a.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 3, 7]);
        assert_eq!(b.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 3, 7]);
        for ((_, x), (_, y)) in a.iter().zip(&b) {
            for (p, q) in x.iter().zip(y) {
                assert!((p - q).abs() < 1e-5, "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn recency_weights_favour_the_latest() {
        let mut b = Bags::with_capacity(1);
        b.push_recency(&[10, 11, 12], 0.5);
        let (rows, ws) = b.bag(0);
        assert_eq!(rows, &[10, 11, 12]);
        let total = 1.0 + 0.5 + 0.25;
        assert!((ws[2] - 1.0 / total).abs() < 1e-6);
        assert!((ws[0] - 0.25 / total).abs() < 1e-6);
    }

    #[test]
    fn pool_and_scatter_are_adjoint() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = EmbeddingTable::random("t", 6, 3, 1.0, &mut rng);
        let mut bags = Bags::with_capacity(3);
        bags.push_one(2);
        bags.push_mean(&[0, 2, 5]);
        bags.push_mean(&[]);
        let stride = 5;
        let mut out = vec![9.0; 3 * stride];
        t.pool_into(&bags, &mut out, stride, 1);
        assert_eq!(&out[1..4], t.row(2));
        assert_eq!(out[0], 9.0, "columns outside the block untouched");
        assert_eq!(&out[2 * stride + 1..2 * stride + 4], &[0.0; 3]);
        let want: Vec<f32> = (0..3)
            .map(|k| (t.row(0)[k] + t.row(2)[k] + t.row(5)[k]) / 3.0)
            .collect();
        for k in 0..3 {
            assert!((out[stride + 1 + k] - want[k]).abs() < 1e-6);
        }
        // <pool(T), G> = <T, scatter(G)> for any G.
        let g: Vec<f32> = (0..3 * stride).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut rg = RowGrads::new(6, 3);
        rg.accumulate(&bags, &g, stride, 1);
        let lhs: f32 = (0..3)
            .map(|e| {
                (0..3)
                    .map(|k| out[e * stride + 1 + k] * g[e * stride + 1 + k])
                    .sum::<f32>()
            })
            .sum();
        let rhs: f32 = rg
            .iter()
            .map(|(r, gr)| t.row(r).iter().zip(gr).map(|(a, b)| a * b).sum::<f32>())
            .sum();
        assert!((lhs - rhs).abs() < 1e-5, "{lhs} vs {rhs}");
        assert_eq!(rg.touched(), 3);
        rg.clear();
        assert_eq!(rg.touched(), 0);
        assert_eq!(rg.iter().count(), 0);
    }

    proptest! {
        #[test]
        fn repeated_rows_accumulate(rows in proptest::collection::vec(0u32..4, 1..20)) {
            let mut bags = Bags::with_capacity(rows.len());
            for &r in &rows { bags.push_one(r); }
            let g = vec![1.0f32; rows.len()];
            let mut rg = RowGrads::new(4, 1);
            rg.accumulate(&bags, &g, 1, 0);
            for (r, gr) in rg.iter() {
                let n = rows.iter().filter(|&&x| x == r).count() as f32;
                prop_assert_eq!(gr[0], n);
            }
        }
    }
}
