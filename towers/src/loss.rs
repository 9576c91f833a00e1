//! The retrieval loss: in-batch sampled softmax as one fused candle op with its own backward.
//!
//! Row `r` of the `[B, C]` logits scores user `r` against every candidate column; column `r` holds the
//! row's positive item, the other `B - 1` in-batch columns and any extra uniformly sampled columns are
//! negatives. The op applies temperature, the logQ correction and the accidental-hit mask, and computes
//! the mean cross-entropy and its gradient in one pass over the logits. The stock candle path
//! (`log_softmax` + mask + gather) allocates four `[B, C]` temporaries and is about twice as slow, and
//! `softmax_last_dim` has no backward at all.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::simd::{exp_sub_and_sum, scale_sub_max};

/// One batch's softmax problem: which item each row and column holds and how columns were sampled.
#[derive(Debug, Clone)]
pub struct SampledSoftmax {
    /// Logits are divided by this.
    pub temperature: f32,
    /// The positive item of each row (length `B`); row `r`'s positive sits in column `r`.
    pub row_items: Vec<u32>,
    /// The item of each column (length `C >= B`; the first `B` equal `row_items`).
    pub col_items: Vec<u32>,
    /// Per column, `log Q(item)` subtracted from the logit (empty: no correction).
    pub log_q: Vec<f32>,
    /// Mask columns `c != r` that hold row `r`'s positive item.
    pub remove_accidental_hits: bool,
    /// Further columns to mask, per row (empty: none): the items a row's user is already known to
    /// like (`loss.mask_seen_items`). Never a row's own column.
    pub row_masks: Vec<Vec<u32>>,
}

/// The log of the sampling probability of each candidate under mixed negative sampling.
///
/// A batch of `b` positives is drawn from the interaction distribution (`freq[i]` = item `i`'s share of
/// training interactions) and `m` extra negatives uniformly from `n_items`, so the expected number of
/// copies of item `i` among the candidates is `b * freq[i] + m / n_items`. Subtracting its log from every
/// logit (positives included) makes the sampled softmax an unbiased estimate of the full one.
pub fn mixed_log_q(freq: f32, b: usize, m: usize, n_items: usize) -> f32 {
    let q = b as f32 * freq
        + if n_items > 0 {
            m as f32 / n_items as f32
        } else {
            0.0
        };
    q.max(1e-12).ln()
}

impl SampledSoftmax {
    fn check(&self, b: usize, c: usize) -> Result<()> {
        if self.row_items.len() != b || self.col_items.len() != c || c < b {
            return Err(Error::Invalid(format!(
                "sampled softmax: logits are [{b}, {c}] but {} row items and {} column items",
                self.row_items.len(),
                self.col_items.len()
            )));
        }
        if !self.row_masks.is_empty()
            && (self.row_masks.len() != b
                || self
                    .row_masks
                    .iter()
                    .enumerate()
                    .any(|(r, m)| m.iter().any(|&j| j as usize >= c || j as usize == r)))
        {
            return Err(Error::Invalid(format!(
                "sampled softmax: row masks must list, for each of the {b} rows, columns below {c} other than the row's own"
            )));
        }
        if !self.log_q.is_empty() && self.log_q.len() != c {
            return Err(Error::Invalid(format!(
                "sampled softmax: {} log_q values for {c} columns",
                self.log_q.len()
            )));
        }
        Ok(())
    }

    /// For each row, the columns other than its own that hold its positive item (sort-based: no
    /// per-item allocation; rows without a duplicate get an empty, unallocated list).
    fn accidental_hits(&self) -> Vec<Vec<u32>> {
        let mut hits = self.same_item_hits();
        for (h, m) in hits.iter_mut().zip(&self.row_masks) {
            h.extend_from_slice(m);
        }
        hits
    }

    fn same_item_hits(&self) -> Vec<Vec<u32>> {
        let b = self.row_items.len();
        let mut hits = vec![Vec::new(); b];
        if !self.remove_accidental_hits {
            return hits;
        }
        let mut by_item: Vec<(u32, u32)> = self
            .col_items
            .iter()
            .enumerate()
            .map(|(c, &it)| (it, c as u32))
            .collect();
        by_item.sort_unstable();
        let mut s = 0;
        while s < by_item.len() {
            let mut e = s + 1;
            while e < by_item.len() && by_item[e].0 == by_item[s].0 {
                e += 1;
            }
            if e - s > 1 {
                for &(_, r) in &by_item[s..e] {
                    if (r as usize) < b {
                        hits[r as usize] = by_item[s..e]
                            .iter()
                            .map(|&(_, c)| c)
                            .filter(|&c| c != r)
                            .collect();
                    }
                }
            }
            s = e;
        }
        hits
    }

    /// Mean loss and `d loss / d logits` for row-major `logits` of shape `[B, C]`.
    pub fn loss_and_grad(&self, logits: &[f32], b: usize, c: usize) -> Result<(f32, Vec<f32>)> {
        let mut grad = logits.to_vec();
        let loss = self.loss_and_grad_in_place(&mut grad, b, c)?;
        Ok((loss, grad))
    }

    /// The fused kernel: reads the `[B, C]` logits from `buf` and overwrites them with
    /// `d loss / d logits`; returns the mean loss. One pass per row (scale, logQ, mask, max, exp, sum,
    /// normalise), vectorised in 16 lanes, rows in parallel; no allocation beyond the hit lists, so the
    /// training loop can reuse one buffer for every step.
    pub fn loss_and_grad_in_place(&self, buf: &mut [f32], b: usize, c: usize) -> Result<f32> {
        self.check(b, c)?;
        if buf.len() != b * c {
            return Err(Error::Invalid(format!(
                "sampled softmax: {} logits for shape [{b}, {c}]",
                buf.len()
            )));
        }
        let hits = self.accidental_hits();
        let mut row_loss = vec![0f32; b];
        buf.par_chunks_mut(c)
            .zip(row_loss.par_iter_mut())
            .enumerate()
            .with_min_len(16)
            .for_each(|(r, (g, loss))| *loss = self.row_in_place(&hits, g, r, b));
        let total: f64 = row_loss.iter().map(|&x| x as f64).sum();
        Ok((total / b as f64) as f32)
    }

    /// The per-row step of the fused kernel: row `r`'s logits `g` (length `C`) are overwritten with
    /// `d loss / d logits` of that row; returns the row's (unscaled) cross-entropy. `hits` comes from
    /// [`SampledSoftmax::hits`] and `b` is the batch size (the gradient is of the mean over `b` rows).
    #[inline]
    pub(crate) fn row_in_place(&self, hits: &[Vec<u32>], g: &mut [f32], r: usize, b: usize) -> f32 {
        let inv_t = 1.0 / self.temperature;
        let scale = inv_t / b as f32;
        // z = l / T - logQ in place (the hits masked first stay -inf), and its maximum, in one pass.
        for &h in &hits[r] {
            g[h as usize] = f32::NEG_INFINITY;
        }
        let m = scale_sub_max(g, inv_t, &self.log_q);
        let zr = g[r];
        let sum = exp_sub_and_sum(g, m);
        let loss = m + sum.ln() - zr;
        let k = scale / sum;
        crate::simd::scale(g, k);
        for &h in &hits[r] {
            g[h as usize] = 0.0;
        }
        g[r] -= scale;
        loss
    }

    /// Validates the shapes of a `[B, C]` problem and returns each row's accidental-hit columns (the
    /// `hits` argument of [`SampledSoftmax::row_in_place`]).
    pub(crate) fn hits(&self, b: usize, c: usize) -> Result<Vec<Vec<u32>>> {
        self.check(b, c)?;
        Ok(self.accidental_hits())
    }

    /// The fused loss over a `[B, C]` logits tensor: a scalar tensor that back-propagates into `logits`.
    pub fn loss(self, logits: &Tensor) -> Result<Tensor> {
        let (b, c) = logits.dims2()?;
        self.check(b, c)?;
        let op = FusedSoftmaxOp {
            spec: self,
            grad: Mutex::new(None),
        };
        Ok(logits.apply_op1(op)?)
    }

    /// The same loss built from stock candle ops (log-softmax, additive mask, gather by one-hot); kept
    /// as the reference the fused op is benchmarked and tested against.
    pub fn stock_loss(&self, logits: &Tensor) -> Result<Tensor> {
        let (b, c) = logits.dims2()?;
        self.check(b, c)?;
        let dev = logits.device();
        let mut bias = vec![0f32; b * c];
        for (r, hits) in self.accidental_hits().iter().enumerate() {
            for &h in hits {
                bias[r * c + h as usize] = -1e9;
            }
        }
        if !self.log_q.is_empty() {
            for row in bias.chunks_mut(c) {
                for (x, q) in row.iter_mut().zip(&self.log_q) {
                    *x -= q;
                }
            }
        }
        let bias = Tensor::from_vec(bias, (b, c), dev)?;
        let z = ((logits / self.temperature as f64)? + bias)?;
        let logp = candle_nn::ops::log_softmax(&z, 1)?;
        let mut eye = vec![0f32; b * c];
        for r in 0..b {
            eye[r * c + r] = 1.0;
        }
        let eye = Tensor::from_vec(eye, (b, c), dev)?;
        Ok(((logp * eye)?.sum_all()? / -(b as f64))?)
    }
}

struct FusedSoftmaxOp {
    spec: SampledSoftmax,
    /// `d loss / d logits`, computed in the forward pass (it needs the same softmax) and taken by `bwd`.
    grad: Mutex<Option<Vec<f32>>>,
}

impl CustomOp1 for FusedSoftmaxOp {
    fn name(&self) -> &'static str {
        "in-batch-sampled-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c) = layout.shape().dims2()?;
        let data = storage.as_slice::<f32>()?;
        let logits = match layout.contiguous_offsets() {
            Some((start, end)) => &data[start..end],
            None => candle_core::bail!("in-batch softmax needs contiguous logits"),
        };
        let (loss, grad) = self
            .spec
            .loss_and_grad(logits, b, c)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        *self.grad.lock().unwrap_or_else(|p| p.into_inner()) = Some(grad);
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let upstream = grad_res.to_scalar::<f32>()?;
        let cached = self.grad.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut grad = match cached {
            Some(g) => g,
            None => {
                // A second backward through the same graph: recompute.
                let (b, c) = arg.dims2()?;
                let logits = arg.flatten_all()?.to_vec1::<f32>()?;
                self.spec
                    .loss_and_grad(&logits, b, c)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?
                    .1
            }
        };
        if upstream != 1.0 {
            grad.iter_mut().for_each(|g| *g *= upstream);
        }
        Ok(Some(Tensor::from_vec(grad, arg.shape(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::fast_exp;
    use candle_core::{Device, Var};

    fn spec(b: usize, c: usize, items: &[u32], log_q: Vec<f32>, t: f32) -> SampledSoftmax {
        SampledSoftmax {
            temperature: t,
            row_items: items[..b].to_vec(),
            col_items: items[..c].to_vec(),
            log_q,
            remove_accidental_hits: true,
            row_masks: Vec::new(),
        }
    }

    /// Straightforward f64 reference: the definition, written out.
    fn reference(s: &SampledSoftmax, l: &[f32], b: usize, c: usize) -> f64 {
        let mut total = 0f64;
        for r in 0..b {
            let mut z = Vec::new();
            for j in 0..c {
                if s.remove_accidental_hits && j != r && s.col_items[j] == s.row_items[r] {
                    continue;
                }
                if s.row_masks.get(r).is_some_and(|m| m.contains(&(j as u32))) {
                    continue;
                }
                let q = if s.log_q.is_empty() {
                    0.0
                } else {
                    s.log_q[j] as f64
                };
                let zj = l[r * c + j] as f64 / s.temperature as f64 - q;
                z.push((j == r, zj));
            }
            let m = z.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
            let lse = m + z.iter().map(|x| (x.1 - m).exp()).sum::<f64>().ln();
            total += lse - z.iter().find(|x| x.0).unwrap().1;
        }
        total / b as f64
    }

    #[test]
    fn fast_exp_is_accurate() {
        for i in -8000..8000 {
            let x = i as f32 / 100.0;
            let want = (x as f64).exp();
            let got = fast_exp(x) as f64;
            assert!(
                ((got - want) / want).abs() < 1e-6,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert!(fast_exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn hand_computed_two_by_two() {
        // logits [[1, 0], [0, 1]], T = 1, no logQ: each row's loss is ln(1 + e^-1).
        let s = spec(2, 2, &[7, 9], vec![], 1.0);
        let (loss, grad) = s.loss_and_grad(&[1.0, 0.0, 0.0, 1.0], 2, 2).unwrap();
        let want = (1.0f32 + (-1.0f32).exp()).ln();
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        // d/dl_rr = (p_rr - 1) / B, p_rr = 1 / (1 + e^-1)
        let p = 1.0 / (1.0 + (-1.0f32).exp());
        assert!((grad[0] - (p - 1.0) / 2.0).abs() < 1e-6);
        assert!((grad[1] - (1.0 - p) / 2.0).abs() < 1e-6);
        assert!(
            (grad[0] + grad[1]).abs() < 1e-6,
            "each row's gradient sums to zero"
        );
    }

    #[test]
    fn logq_and_temperature_hand_case() {
        // One row, two columns: z = [2/0.5 - ln 0.5, 1/0.5 - ln 0.25] = [4.693, 3.386].
        let s = spec(1, 2, &[1, 2], vec![0.5f32.ln(), 0.25f32.ln()], 0.5);
        let (loss, _) = s.loss_and_grad(&[2.0, 1.0], 1, 2).unwrap();
        let z0 = 4.0 - 0.5f64.ln();
        let z1 = 2.0 - 0.25f64.ln();
        let want = ((z0.exp() + z1.exp()).ln() - z0) as f32;
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
    }

    #[test]
    fn accidental_hit_is_masked() {
        // Rows 0 and 2 share item 5: column 2 must not be a negative of row 0 (and vice versa).
        let items = [5, 6, 5, 8];
        let l: Vec<f32> = (0..16).map(|i| ((i * 7) % 5) as f32 * 0.3).collect();
        let s = spec(4, 4, &items, vec![], 0.2);
        let (loss, grad) = s.loss_and_grad(&l, 4, 4).unwrap();
        assert_eq!(grad[2], 0.0);
        assert_eq!(grad[2 * 4], 0.0);
        assert!((loss as f64 - reference(&s, &l, 4, 4)).abs() < 1e-5);
        let mut unmasked = s.clone();
        unmasked.remove_accidental_hits = false;
        let (loss2, _) = unmasked.loss_and_grad(&l, 4, 4).unwrap();
        assert!(loss2 > loss, "masking removes a term from the partition function");
    }

    #[test]
    fn row_masks_drop_columns_from_the_partition_function() {
        let (b, c) = (3, 5);
        let items = [1u32, 2, 3, 4, 5];
        let l: Vec<f32> = (0..b * c).map(|i| ((i * 11 % 7) as f32 / 7.0) - 0.4).collect();
        let mut s = spec(b, c, &items, vec![-1.0, -2.0, -1.5, -3.0, -0.5], 0.25);
        s.row_masks = vec![vec![1, 4], vec![], vec![0]];
        let (loss, grad) = s.loss_and_grad(&l, b, c).unwrap();
        assert!((loss as f64 - reference(&s, &l, b, c)).abs() < 1e-5);
        for (r, j) in [(0, 1), (0, 4), (2, 0)] {
            assert_eq!(grad[r * c + j], 0.0, "row {r} column {j} is masked");
        }
        assert!(grad[c + 1] != 0.0 && grad[c + 4] != 0.0, "row 1 is not masked");
        let unmasked = spec(b, c, &items, s.log_q.clone(), 0.25);
        let (loss2, _) = unmasked.loss_and_grad(&l, b, c).unwrap();
        assert!(loss2 > loss);
        // A row's own column can never be masked, nor a column past the end.
        s.row_masks = vec![vec![0], vec![], vec![]];
        assert!(s.loss_and_grad(&l, b, c).is_err());
        s.row_masks = vec![vec![], vec![5], vec![]];
        assert!(s.loss_and_grad(&l, b, c).is_err());
    }

    #[test]
    fn matches_reference_with_extra_negatives_and_finite_differences() {
        let (b, c) = (5, 8);
        let items = [1u32, 2, 3, 2, 4, 9, 1, 7];
        let log_q: Vec<f32> = (0..c).map(|j| -(1.0 + j as f32 * 0.37)).collect();
        let s = spec(b, c, &items, log_q, 0.3);
        let l: Vec<f32> = (0..b * c).map(|i| ((i * 37 % 17) as f32 / 17.0) - 0.5).collect();
        let (loss, grad) = s.loss_and_grad(&l, b, c).unwrap();
        assert!((loss as f64 - reference(&s, &l, b, c)).abs() < 1e-5);
        let eps = 1e-3f32;
        for i in 0..b * c {
            let mut lp = l.clone();
            lp[i] += eps;
            let mut lm = l.clone();
            lm[i] -= eps;
            let fd = (reference(&s, &lp, b, c) - reference(&s, &lm, b, c)) / (2.0 * eps as f64);
            assert!(
                (fd - grad[i] as f64).abs() < 2e-4,
                "entry {i}: fd {fd} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn candle_op_backward_matches_stock_path() {
        let dev = Device::Cpu;
        let (b, c) = (6, 9);
        let items = [3u32, 1, 4, 1, 5, 9, 2, 6, 5];
        let log_q: Vec<f32> = (0..c)
            .map(|j| mixed_log_q(0.01 * (j + 1) as f32, b, 3, 50))
            .collect();
        let s = spec(b, c, &items, log_q, 0.1);
        let l: Vec<f32> = (0..b * c).map(|i| ((i * 13 % 11) as f32 / 11.0) - 0.5).collect();
        let v1 = Var::from_slice(&l, (b, c), &dev).unwrap();
        let fused = s.clone().loss(v1.as_tensor()).unwrap();
        let g1 = fused.backward().unwrap();
        let v2 = Var::from_slice(&l, (b, c), &dev).unwrap();
        let stock = s.stock_loss(v2.as_tensor()).unwrap();
        let g2 = stock.backward().unwrap();
        let (a, bb) = (
            fused.to_scalar::<f32>().unwrap(),
            stock.to_scalar::<f32>().unwrap(),
        );
        assert!((a - bb).abs() < 1e-4, "fused {a} vs stock {bb}");
        let ga = g1
            .get(v1.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let gb = g2
            .get(v2.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (x, y) in ga.iter().zip(&gb) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let s = spec(2, 2, &[1, 2], vec![], 1.0);
        assert!(s.loss_and_grad(&[0.0; 6], 2, 3).is_err());
    }
}
