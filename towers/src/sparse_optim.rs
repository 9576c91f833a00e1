//! Row-wise optimizers for the embedding tables: each step reads and writes only the rows whose
//! gradient is in [`RowGrads`], so its cost is independent of the table size.

use crate::config::SparseOptimizerKind;
use crate::embedding_bag::{EmbeddingTable, RowGrads};
use crate::mem::{huge_vec, prefetch};
use crate::simd::{adagrad_row, adam_row, AdamStep};

/// How many touched rows ahead [`SparseState::apply`] prefetches.
const PREFETCH_AHEAD: usize = 8;

/// Adagrad's starting accumulator (TensorFlow's default): keeps the first steps from being huge.
const ADAGRAD_INIT: f32 = 0.1;
const ADAM_BETA1: f32 = 0.9;
const ADAM_BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;

/// Optimizer state of one table (same shape as the table), saved in checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseState {
    /// Which rule applies.
    pub kind: SparseOptimizerKind,
    /// Adagrad: sum of squared gradients. Lazy Adam: first moment.
    pub a: Vec<f32>,
    /// Lazy Adam: second moment (empty for Adagrad).
    pub b: Vec<f32>,
}

impl SparseState {
    /// Fresh state for `table`.
    pub fn new(kind: SparseOptimizerKind, table: &EmbeddingTable) -> SparseState {
        let n = table.weights.len();
        let mut s = match kind {
            SparseOptimizerKind::Adagrad => SparseState {
                kind,
                a: huge_vec(n, ADAGRAD_INIT),
                b: Vec::new(),
            },
            SparseOptimizerKind::LazyAdam => SparseState {
                kind,
                a: huge_vec(n, 0.0),
                b: huge_vec(n, 0.0),
            },
        };
        prefault(&mut s.a);
        prefault(&mut s.b);
        s
    }

    /// Applies one step with learning rate `lr` at global step `step` (1-based; Adam's bias correction).
    ///
    /// Every touched row is updated independently of the others, so chunks of rows run in parallel;
    /// the result does not depend on the thread count.
    pub fn apply(&mut self, table: &mut EmbeddingTable, grads: &RowGrads, lr: f32, step: u64) {
        use rayon::prelude::*;
        let dim = table.dim;
        let rows = grads.touched_rows();
        let grad = grads.values();
        if dim == 0 || rows.is_empty() {
            return;
        }
        assert!(
            rows.iter()
                .all(|&r| (r as usize + 1) * dim <= table.weights.len()),
            "sparse update: row outside the table"
        );
        let adam = self.kind == SparseOptimizerKind::LazyAdam;
        assert!(self.a.len() == table.weights.len() && (!adam || self.b.len() == table.weights.len()));
        let t = step.max(1) as i32;
        let lr_t = lr * (1.0 - ADAM_BETA2.powi(t)).sqrt() / (1.0 - ADAM_BETA1.powi(t));
        let step_k = AdamStep {
            beta1: ADAM_BETA1,
            beta2: ADAM_BETA2,
            eps: ADAM_EPS,
            lr_t,
        };
        let (w_all, a_all, b_all) = (
            RowsPtr(table.weights.as_mut_ptr()),
            RowsPtr(self.a.as_mut_ptr()),
            RowsPtr(self.b.as_mut_ptr()),
        );
        let run = |c: usize, rows: &[u32]| {
            let base = c * APPLY_CHUNK;
            for (i, &r) in rows.iter().enumerate() {
                // The rows are scattered over tables of up to millions of rows: ask for a later
                // row's weights and state now so their cache misses overlap this row's work.
                if let Some(&next) = rows.get(i + PREFETCH_AHEAD) {
                    let o = next as usize * dim;
                    prefetch(w_all.at(o), dim * 4);
                    prefetch(a_all.at(o), dim * 4);
                    if adam {
                        prefetch(b_all.at(o), dim * 4);
                    }
                }
                let o = r as usize * dim;
                let g = &grad[(base + i) * dim..(base + i + 1) * dim];
                // SAFETY: `RowGrads` holds each row at most once, so no two iterations (on any thread)
                // touch the same `dim` floats; the asserts above keep every row inside the three
                // arrays, which outlive this call and are not otherwise accessed during it.
                let (w, acc) = unsafe { (w_all.row(o, dim), a_all.row(o, dim)) };
                if adam {
                    // SAFETY: as above.
                    let v = unsafe { b_all.row(o, dim) };
                    adam_row(w, acc, v, g, step_k);
                } else {
                    adagrad_row(w, acc, g, lr);
                }
            }
        };
        if rows.len() <= APPLY_CHUNK {
            run(0, rows);
        } else {
            rows.par_chunks(APPLY_CHUNK)
                .enumerate()
                .for_each(|(c, rs)| run(c, rs));
        }
    }
}

/// Touched rows per parallel work unit of [`SparseState::apply`].
const APPLY_CHUNK: usize = 256;

/// A table-sized array shared by the workers of [`SparseState::apply`], each writing its own rows.
#[derive(Clone, Copy)]
struct RowsPtr(*mut f32);

// SAFETY: the pointer is only dereferenced through `RowsPtr::row` on disjoint rows (see `apply`).
unsafe impl Send for RowsPtr {}
// SAFETY: as above.
unsafe impl Sync for RowsPtr {}

impl RowsPtr {
    /// The address of float `o` (for prefetching; never dereferenced).
    fn at(self, o: usize) -> *const f32 {
        self.0.wrapping_add(o)
    }

    /// # Safety
    /// `o..o + dim` must be in bounds and no other live reference may overlap it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row<'a>(self, o: usize, dim: usize) -> &'a mut [f32] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(o), dim) }
    }
}

/// Touches one float per 4 KiB page so a zeroed (lazily mapped) state is resident from the start:
/// otherwise the first visit of each row pays a page fault mid-training, which makes early steps on a
/// large catalogue look slower than on a small one and hides the true peak memory until late.
fn prefault(v: &mut [f32]) {
    for x in v.iter_mut().step_by(1024) {
        // SAFETY: `x` is a valid, exclusive reference; the volatile write only stops the compiler
        // from eliding a store of the value already there.
        unsafe { std::ptr::write_volatile(x, *x) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding_bag::Bags;

    fn table() -> EmbeddingTable {
        EmbeddingTable {
            name: "t".into(),
            rows: 4,
            dim: 2,
            weights: vec![1.0; 8],
        }
    }

    fn grads_for_row(r: u32, g: [f32; 2]) -> RowGrads {
        let mut bags = Bags::with_capacity(1);
        bags.push_one(r);
        let mut rg = RowGrads::new(4, 2);
        rg.accumulate(&bags, &g, 2, 0);
        rg
    }

    #[test]
    fn adagrad_touches_only_batch_rows() {
        let mut t = table();
        let mut s = SparseState::new(SparseOptimizerKind::Adagrad, &t);
        s.apply(&mut t, &grads_for_row(2, [0.5, -1.0]), 0.1, 1);
        let want0 = 1.0 - 0.1 * 0.5 / (0.1f32 + 0.25).sqrt();
        assert!((t.weights[4] - want0).abs() < 1e-6);
        assert!(t.weights[5] > 1.0);
        for i in [0, 1, 2, 3, 6, 7] {
            assert_eq!(t.weights[i], 1.0, "row untouched");
            assert_eq!(s.a[i], ADAGRAD_INIT);
        }
    }

    #[test]
    fn lazy_adam_first_step_moves_by_lr() {
        let mut t = table();
        let mut s = SparseState::new(SparseOptimizerKind::LazyAdam, &t);
        s.apply(&mut t, &grads_for_row(1, [0.3, -2.0]), 0.01, 1);
        // Bias-corrected first Adam step is lr * sign(g).
        assert!((t.weights[2] - 0.99).abs() < 1e-5);
        assert!((t.weights[3] - 1.01).abs() < 1e-5);
        assert_eq!(t.weights[0], 1.0);
        assert_eq!(s.a[0], 0.0);
    }
}
