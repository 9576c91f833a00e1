//! One optimisation step: the batch's user and item bags, both towers forward and backward by hand,
//! the fused `[B, C]` softmax block, then the dense AdamW step and the sparse row updates.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use twotower_data::{Interactions, UserHistories};

use crate::config::{Config, LrDecay};
use crate::embedding_bag::RowGrads;
use crate::error::{Error, Result};
use crate::features::{FeatureLayout, ItemFeatures, UserFeatures};
use crate::kernels::matmul;
use crate::loss::{mixed_log_q, SampledSoftmax};
use crate::sparse_optim::SparseState;
use crate::tower::{Side, TwoTower};

/// Rows of the `[B, C]` logits handled as one unit of work by [`softmax_block`]: small enough that a
/// block's logits (128 × 1024 floats = 512 KiB at batch 1024) stay in L2 between its gemm, its softmax
/// and the two gradient products, large enough that each gemm is efficient.
const ROW_BLOCK: usize = 128;

/// Reused buffers of [`softmax_block`] (nothing `[B, C]`-sized is allocated per step).
#[derive(Debug, Default)]
pub(crate) struct BlockWorkspace {
    logits: Vec<f32>,
    gv_parts: Vec<f32>,
    row_loss: Vec<f32>,
}

/// The `[B, C]` part of a step: logits `U · Vᵀ`, the fused softmax and its gradient `G`, then
/// `dL/dU = G · V` (into `gu`, `b × d`) and `dL/dV = Gᵀ · U` (into `gv`, `c × d`); returns the mean loss.
///
/// The rows are cut into fixed blocks of [`ROW_BLOCK`]; each block runs its three products as
/// single-threaded gemms (no gemm-internal threading on these small matrices) while its logits are
/// still in cache, and rayon spreads the blocks over the threads. `dL/dV` is the sum of the blocks'
/// partial products, added in block order, so the result does not depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_block(
    spec: &SampledSoftmax,
    u: &[f32],
    v: &[f32],
    (b, c, d): (usize, usize, usize),
    ws: &mut BlockWorkspace,
    gu: &mut [f32],
    gv: &mut [f32],
) -> Result<f32> {
    let hits = spec.hits(b, c)?;
    if u.len() != b * d || v.len() != c * d || gu.len() != b * d || gv.len() != c * d {
        return Err(Error::Invalid(format!(
            "softmax block: shapes b={b} c={c} d={d} do not match buffers {} {} {} {}",
            u.len(),
            v.len(),
            gu.len(),
            gv.len()
        )));
    }
    if b == 0 {
        gv.fill(0.0);
        return Ok(0.0);
    }
    let n_blocks = b.div_ceil(ROW_BLOCK);
    ws.logits.resize(b * c, 0.0);
    ws.row_loss.resize(b, 0.0);
    // One block: its partial dL/dV goes straight to `gv`.
    let parts_len = if n_blocks > 1 { n_blocks * c * d } else { 0 };
    ws.gv_parts.resize(parts_len, 0.0);
    let run = |k: usize, lg: &mut [f32], gub: &mut [f32], gvp: &mut [f32], rl: &mut [f32]| {
        let r0 = k * ROW_BLOCK;
        let n = rl.len();
        let ub = &u[r0 * d..(r0 + n) * d];
        matmul(n, c, d, ub, (d, 1), v, (1, d), lg, 1);
        for (i, (g, loss)) in lg.chunks_mut(c).zip(rl.iter_mut()).enumerate() {
            *loss = spec.row_in_place(&hits, g, r0 + i, b);
        }
        matmul(n, d, c, lg, (c, 1), v, (d, 1), gub, 1);
        matmul(c, d, n, lg, (1, c), ub, (d, 1), gvp, 1);
    };
    if n_blocks == 1 {
        run(0, &mut ws.logits, gu, gv, &mut ws.row_loss);
    } else {
        ws.logits
            .par_chunks_mut(ROW_BLOCK * c)
            .zip(gu.par_chunks_mut(ROW_BLOCK * d))
            .zip(ws.gv_parts.par_chunks_mut(c * d))
            .zip(ws.row_loss.par_chunks_mut(ROW_BLOCK))
            .enumerate()
            .for_each(|(k, (((lg, gub), gvp), rl))| run(k, lg, gub, gvp, rl));
        let parts = &ws.gv_parts;
        const CHUNK: usize = 4096;
        gv.par_chunks_mut(CHUNK).enumerate().for_each(|(j, out)| {
            let o = j * CHUNK;
            out.copy_from_slice(&parts[o..o + out.len()]);
            for p in 1..n_blocks {
                let src = &parts[p * c * d + o..p * c * d + o + out.len()];
                for (x, &y) in out.iter_mut().zip(src) {
                    *x += y;
                }
            }
        });
    }
    let total: f64 = ws.row_loss.iter().map(|&x| x as f64).sum();
    Ok((total / b as f64) as f32)
}

/// The mutable state of a run: network, optimizer states and progress counters.
pub(crate) struct Trainer<'a> {
    pub(crate) config: &'a Config,
    pub(crate) net: TwoTower,
    pub(super) sparse: Vec<SparseState>,
    pub(super) grads: Vec<RowGrads>,
    pub(super) item_feats: &'a ItemFeatures,
    pub(super) user_feats: &'a UserFeatures,
    pub(super) fit: &'a Interactions,
    pub(super) hist: &'a UserHistories,
    /// Training share of each item (for logQ).
    pub(super) freq: Vec<f32>,
    pub(crate) step: u64,
    pub(super) total_steps: u64,
    /// The step's `[B, C]` logits, then their gradient, and the other buffers of the `[B, C]` part; kept
    /// across steps (no 4 MB allocation per step).
    pub(super) block_ws: BlockWorkspace,
    /// `ln(1 / temperature)` and its Adam moments (`loss.learn_temperature`).
    pub(super) log_inv_t: [f32; 3],
    /// Per item, the first batch column holding it (`u32::MAX`: none); reset after each step, so
    /// a step costs the same whatever the catalogue size (`loss.mask_seen_items`).
    pub(super) col_head: Vec<u32>,
}

/// Bounds of a learned temperature: the logits' scale stays between 1 and 100 (CLIP clips at 100).
pub(super) const LEARNED_T_RANGE: (f32, f32) = (0.01, 1.0);

impl<'a> Trainer<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &'a Config,
        net: TwoTower,
        item_feats: &'a ItemFeatures,
        user_feats: &'a UserFeatures,
        fit: &'a Interactions,
        hist: &'a UserHistories,
        total_steps: u64,
    ) -> Trainer<'a> {
        let sparse = net
            .tables
            .iter()
            .map(|t| SparseState::new(config.train.sparse_optimizer, t))
            .collect();
        let grads = net.tables.iter().map(|t| RowGrads::new(t.rows, t.dim)).collect();
        let n_items = net.layout.n_items;
        let mut freq = vec![0f32; n_items];
        for &i in &fit.item {
            if (i as usize) < n_items {
                freq[i as usize] += 1.0;
            }
        }
        let total = fit.len().max(1) as f32;
        freq.iter_mut().for_each(|f| *f /= total);
        Trainer {
            config,
            net,
            sparse,
            grads,
            item_feats,
            user_feats,
            fit,
            hist,
            freq,
            step: 0,
            total_steps,
            block_ws: BlockWorkspace::default(),
            log_inv_t: [(1.0 / config.loss.temperature).ln(), 0.0, 0.0],
            col_head: Vec::new(),
        }
    }

    /// The temperature of the next step: the configured one, or the learned one.
    pub(crate) fn temperature(&self) -> f32 {
        (-self.log_inv_t[0]).exp()
    }

    /// One Adam step on `θ = ln(1/T)`. `d loss / d θ = Σ_ij (d loss / d z_ij) · z_ij` over the scaled
    /// logits, which is `Σ_r <u_r, d loss / d u_r>` (the user gradient already carries the 1/T factor).
    fn learn_temperature(&mut self, g: f32, lr: f32) {
        let [theta, m, v] = &mut self.log_inv_t;
        *m = 0.9 * *m + 0.1 * g;
        *v = 0.999 * *v + 0.001 * g * g;
        let t = self.step.max(1) as i32;
        let mh = *m / (1.0 - 0.9f32.powi(t));
        let vh = *v / (1.0 - 0.999f32.powi(t));
        let (lo, hi) = LEARNED_T_RANGE;
        *theta = (*theta - lr * mh / (vh.sqrt() + 1e-8)).clamp((1.0 / hi).ln(), (1.0 / lo).ln());
    }

    /// Learning-rate multiplier at the current step.
    pub(crate) fn lr_scale(&self) -> f32 {
        let t = &self.config.train;
        let s = self.step as f32;
        let warm = t.warmup_steps as f32;
        if s < warm {
            return (s + 1.0) / warm;
        }
        let span = (self.total_steps as f32 - warm).max(1.0);
        let p = ((s - warm) / span).clamp(0.0, 1.0);
        let f = t.final_lr_fraction;
        match t.lr_decay {
            LrDecay::Constant => 1.0,
            LrDecay::Linear => 1.0 - (1.0 - f) * p,
            LrDecay::Cosine => f + (1.0 - f) * 0.5 * (1.0 + (std::f32::consts::PI * p).cos()),
        }
    }

    /// For each of the first `b` rows, the columns other than its own whose item the row's user
    /// interacted with anywhere in the fit rows (`loss.mask_seen_items`). Walks each user's items
    /// against a per-step item → columns list, so the cost is the users' history lengths, not `b × C`.
    fn seen_item_masks(&mut self, users: &[u32], cols: &[u32], b: usize) -> Vec<Vec<u32>> {
        if self.col_head.len() < self.net.layout.n_items + 1 {
            self.col_head = vec![u32::MAX; self.net.layout.n_items + 1];
        }
        let mut next = vec![u32::MAX; cols.len()];
        for (j, &it) in cols.iter().enumerate().rev() {
            let it = (it as usize).min(self.net.layout.n_items);
            next[j] = self.col_head[it];
            self.col_head[it] = j as u32;
        }
        let (head, hist) = (&self.col_head, self.hist);
        let masks = (0..b)
            .into_par_iter()
            .with_min_len(64)
            .map(|e| {
                let mut m = Vec::new();
                for &it in hist.history(users[e]).1 {
                    let mut j = head.get(it as usize).copied().unwrap_or(u32::MAX);
                    while j != u32::MAX {
                        if j as usize != e {
                            m.push(j);
                        }
                        j = next[j as usize];
                    }
                }
                m
            })
            .collect();
        for &it in cols {
            self.col_head[(it as usize).min(self.net.layout.n_items)] = u32::MAX;
        }
        masks
    }

    /// One optimisation step on the fit rows `batch`; returns the loss.
    pub(crate) fn step(&mut self, batch: &[u32]) -> Result<f32> {
        let cfg = self.config;
        let b = batch.len();
        let users: Vec<u32> = batch.iter().map(|&r| self.fit.user[r as usize]).collect();
        let ts: Vec<i64> = batch.iter().map(|&r| self.fit.ts[r as usize]).collect();
        let mut cols: Vec<u32> = batch.iter().map(|&r| self.fit.item[r as usize]).collect();
        let n_items = self.net.layout.n_items;
        let m = cfg.loss.extra_negatives;
        if m > 0 && n_items > 0 {
            let mut rng =
                ChaCha8Rng::seed_from_u64(cfg.train.seed ^ self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            cols.extend((0..m).map(|_| rng.gen_range(0..n_items as u32)));
        }
        let c = cols.len();
        let layout: &FeatureLayout = &self.net.layout;
        let hist = self.hist;
        // How many of the most recent history items each example hides (`user.history_horizon`).
        let horizon = cfg.user.history_horizon;
        let skip: Vec<usize> = if horizon > 1 {
            let mut rng = ChaCha8Rng::seed_from_u64(
                cfg.train.seed ^ 0x686f_7269 ^ self.step.wrapping_mul(0x2545_F491_4F6C_DD1D),
            );
            (0..b).map(|_| rng.gen_range(0..horizon)).collect()
        } else {
            vec![0; b]
        };
        let visible = |e: usize| {
            let h = hist.before(users[e], ts[e]);
            &h[..h.len() - skip[e].min(h.len())]
        };
        // `user.history_dropout`: a random subsequence of the pooled items (each dropped with
        // probability p, one always kept); the rest close ranks, so an item is pooled at a position
        // nearer the present than its own. Keeping every item at its own position (dropped ones at
        // weight 0) measured worse: ML-100K default R@10 0.1571 against 0.1595 (four seeds).
        let p_drop = cfg.user.history_dropout;
        // The kept items of every example in one buffer (`kept_at[e]..kept_at[e + 1]`).
        let (mut kept, mut kept_at) = (Vec::new(), vec![0usize]);
        if p_drop > 0.0 {
            let mut rng = ChaCha8Rng::seed_from_u64(
                cfg.train.seed ^ 0x6472_6f70 ^ self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let hl = layout.history_len;
            for e in 0..b {
                let h = visible(e);
                let h = &h[h.len().saturating_sub(hl)..];
                let start = kept.len();
                kept.extend(h.iter().copied().filter(|_| rng.gen::<f32>() >= p_drop));
                if kept.len() == start {
                    kept.extend(h.last());
                }
                kept_at.push(kept.len());
            }
        }
        let mut ubags = layout.user_bags(
            self.user_feats,
            b,
            |e| users[e],
            |e| Some(users[e]),
            |e| {
                if p_drop > 0.0 {
                    &kept[kept_at[e]..kept_at[e + 1]]
                } else {
                    visible(e)
                }
            },
        );
        self.net.attend(&mut ubags);
        let ibags = layout.item_bags(self.item_feats, &cols, &cols);
        // Both towers and the [B, C] part run by hand on plain buffers: candle's autograd over these
        // small [B, width] tensors cost more in per-op dispatch and allocation than the arithmetic.
        let uin = layout.assemble(&self.net.tables, &layout.user, &ubags);
        let upass = self.net.forward_train(Side::User, uin, b);
        let ipass = self
            .net
            .forward_train(Side::Item, self.net.assemble(Side::Item, &ibags), c);
        let d = self.net.dim;
        let log_q = if cfg.loss.logq {
            cols.iter()
                .map(|&i| mixed_log_q(self.freq.get(i as usize).copied().unwrap_or(0.0), b, m, n_items))
                .collect()
        } else {
            Vec::new()
        };
        let row_masks = if cfg.loss.mask_seen_items {
            self.seen_item_masks(&users, &cols, b)
        } else {
            Vec::new()
        };
        let spec = SampledSoftmax {
            temperature: self.temperature(),
            row_items: cols[..b].to_vec(),
            col_items: cols.clone(),
            log_q,
            remove_accidental_hits: cfg.loss.remove_accidental_hits,
            row_masks,
        };
        let mut gu = vec![0f32; b * d];
        let mut gv = vec![0f32; c * d];
        let loss_value = softmax_block(
            &spec,
            &upass.out,
            &ipass.out,
            (b, c, d),
            &mut self.block_ws,
            &mut gu,
            &mut gv,
        )?;
        let grad_log_inv_t = cfg
            .loss
            .learn_temperature
            .then(|| upass.out.iter().zip(&gu).map(|(a, b)| a * b).sum::<f32>());
        let mut dense_grads: Vec<Vec<f32>> =
            self.net.dense.iter().map(|p| vec![0f32; p.value.len()]).collect();
        let gin_u = self.net.backward_train(Side::User, upass, gu, &mut dense_grads);
        let gin_i = self.net.backward_train(Side::Item, ipass, gv, &mut dense_grads);
        let attention = self.net.attention_backward(&ubags, &gin_u, &mut dense_grads);
        self.step += 1;
        let scale = self.lr_scale();
        if let Some(g) = grad_log_inv_t {
            self.learn_temperature(g, cfg.train.lr * scale);
        }
        let dense_grads: Vec<Option<Vec<f32>>> = dense_grads.into_iter().map(Some).collect();
        self.net.adamw_step_plain(
            &dense_grads,
            cfg.train.lr * scale,
            cfg.train.weight_decay,
            self.step,
        );
        // The attention gradient on the history rows joins their pooling gradient in one pass.
        let extra = attention
            .as_ref()
            .map(|a| (a.block, a.bags.weights(), a.grad.as_slice()));
        for (side, bags, g) in [(Side::User, &ubags, &gin_u), (Side::Item, &ibags, &gin_i)] {
            let tower = self.net.input(side).clone();
            let extra = if side == Side::User { extra } else { None };
            self.net
                .layout
                .scatter_with(&tower, bags, g, &mut self.grads, extra);
        }
        let lr = cfg.train.embedding_lr * scale;
        for ((table, state), g) in self
            .net
            .tables
            .iter_mut()
            .zip(&mut self.sparse)
            .zip(&mut self.grads)
        {
            if g.touched() > 0 {
                state.apply(table, g, lr, self.step);
                g.clear();
            }
        }
        Ok(loss_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused `[B, C]` part of a step (logits, masked logQ softmax, `dL/dU = G·V`, `dL/dV = Gᵀ·U`,
    /// several row blocks whose partial `dL/dV` are summed) against candle autograd through
    /// `U·Vᵀ` and the stock-op loss; and the same bits on one thread as on three.
    #[test]
    fn softmax_block_matches_candle_autograd_across_blocks() {
        let (b, m, d) = (2 * ROW_BLOCK + 37, 23, 6);
        let c = b + m;
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        // Few distinct items: many accidental hits among in-batch and extra columns.
        let cols: Vec<u32> = (0..c).map(|_| rng.gen_range(0..40)).collect();
        let log_q = cols
            .iter()
            .map(|&i| mixed_log_q(0.002 + 0.001 * i as f32, b, m, 40))
            .collect();
        let spec = SampledSoftmax {
            temperature: 0.2,
            row_items: cols[..b].to_vec(),
            col_items: cols.clone(),
            log_q,
            remove_accidental_hits: true,
            row_masks: Vec::new(),
        };
        let unit = |rng: &mut ChaCha8Rng, n: usize| -> Vec<f32> {
            let mut x: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
            for row in x.chunks_mut(d) {
                let nr = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                row.iter_mut().for_each(|v| *v /= nr);
            }
            x
        };
        let u = unit(&mut rng, b);
        let v = unit(&mut rng, c);

        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut ws = BlockWorkspace::default();
                let mut gu = vec![f32::NAN; b * d];
                let mut gv = vec![f32::NAN; c * d];
                let loss = softmax_block(&spec, &u, &v, (b, c, d), &mut ws, &mut gu, &mut gv).unwrap();
                (loss, gu, gv)
            })
        };
        let (loss, gu, gv) = run(3);
        let one = run(1);
        assert_eq!(loss.to_bits(), one.0.to_bits());
        assert_eq!(gu, one.1);
        assert_eq!(gv, one.2);

        let dev = Device::Cpu;
        let ut = Var::from_slice(&u, (b, d), &dev).unwrap();
        let vt = Var::from_slice(&v, (c, d), &dev).unwrap();
        let logits = ut.as_tensor().matmul(&vt.as_tensor().t().unwrap()).unwrap();
        let want = spec.stock_loss(&logits).unwrap();
        let grads = want.backward().unwrap();
        let want = want.to_scalar::<f32>().unwrap();
        assert!(
            (loss - want).abs() < 1e-4 * want.abs().max(1.0),
            "loss {loss} vs {want}"
        );
        for (name, got, var) in [("dL/dU", &gu, &ut), ("dL/dV", &gv, &vt)] {
            let want = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let scale = want.iter().fold(0f32, |a, x| a.max(x.abs()));
            assert!(scale > 0.0);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * scale,
                    "{name}[{k}]: fused {g} vs candle autograd {w} (scale {scale})"
                );
            }
        }
    }

    /// `d loss / d ln(1/T) = Σ_r <u_r, d loss / d u_r>` (what the learned temperature steps on)
    /// against central differences of the fused loss in `ln(1/T)`.
    #[test]
    fn temperature_gradient_matches_finite_differences() {
        let (b, m, d) = (24, 8, 5);
        let c = b + m;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let cols: Vec<u32> = (0..c).map(|_| rng.gen_range(0..30)).collect();
        let unit = |rng: &mut ChaCha8Rng, n: usize| -> Vec<f32> {
            let mut x: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
            for row in x.chunks_mut(d) {
                let nr = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                row.iter_mut().for_each(|v| *v /= nr);
            }
            x
        };
        let (u, v) = (unit(&mut rng, b), unit(&mut rng, c));
        let loss_at = |theta: f64| {
            let spec = SampledSoftmax {
                temperature: (-theta).exp() as f32,
                row_items: cols[..b].to_vec(),
                col_items: cols.clone(),
                log_q: cols
                    .iter()
                    .map(|&i| mixed_log_q(0.01 + 0.001 * i as f32, b, m, 30))
                    .collect(),
                remove_accidental_hits: true,
                row_masks: Vec::new(),
            };
            let (mut gu, mut gv) = (vec![0f32; b * d], vec![0f32; c * d]);
            let mut ws = BlockWorkspace::default();
            let loss = softmax_block(&spec, &u, &v, (b, c, d), &mut ws, &mut gu, &mut gv).unwrap();
            let g: f32 = u.iter().zip(&gu).map(|(a, g)| a * g).sum();
            (loss as f64, g as f64)
        };
        for t in [0.08f64, 0.15, 0.5] {
            let theta = (1.0 / t).ln();
            let (_, g) = loss_at(theta);
            let eps = 1e-3;
            let fd = (loss_at(theta + eps).0 - loss_at(theta - eps).0) / (2.0 * eps);
            assert!(
                (g - fd).abs() <= 2e-3 * fd.abs().max(1.0),
                "T {t}: analytic {g} vs finite difference {fd}"
            );
        }
    }

    /// With `loss.learn_temperature` the temperature moves, stays in its bounds and is the same for
    /// the same seed; without it, it never moves.
    #[test]
    fn learned_temperature_moves_only_when_asked() {
        let run = |learn: bool| {
            let mut config = Config::id_only();
            config.model.dim = 8;
            config.item.id_dim = 8;
            config.user.id_dim = 8;
            config.loss.temperature = 0.5;
            config.loss.learn_temperature = learn;
            let mut fit = Interactions::default();
            for u in 0..16u32 {
                for k in 0..4u32 {
                    fit.push(u, (u % 4) * 4 + k, 1.0, k as i64);
                }
            }
            let hist = UserHistories::build(&fit, 16);
            let (item_feats, user_feats) = (ItemFeatures::default(), UserFeatures::default());
            let layout = FeatureLayout::new(&config, 16, 16, &item_feats, &user_feats);
            let net = TwoTower::new(layout, &config, 1).unwrap();
            let mut t = Trainer::new(&config, net, &item_feats, &user_feats, &fit, &hist, 200);
            let rows: Vec<u32> = (0..fit.len() as u32).collect();
            let mut temps = Vec::new();
            for _ in 0..200 {
                t.step(&rows).unwrap();
                temps.push(t.temperature());
            }
            temps
        };
        let fixed = run(false);
        assert!(fixed.iter().all(|&t| (t - 0.5).abs() < 1e-6), "{fixed:?}");
        let learned = run(true);
        let (lo, hi) = super::LEARNED_T_RANGE;
        assert!(learned.iter().all(|&t| (lo..=hi).contains(&t)), "{learned:?}");
        assert!(
            (learned.last().unwrap() - 0.5).abs() > 0.02,
            "the temperature did not move: {:?}",
            &learned[190..]
        );
        assert_eq!(run(true), learned);
    }

    /// Which of a user's 10 history items (times 0..10, one target at time 100) each of `steps`
    /// training steps pooled, read off which rows of a separate history table the step updated (the
    /// lazy sparse optimizers only move the rows a step pooled).
    fn pooled_per_step(horizon: usize, dropout: f32, seed: u64, steps: usize) -> Vec<Vec<bool>> {
        const H: usize = 10;
        let mut config = Config::id_only();
        config.model.dim = 8;
        config.item.id_dim = 8;
        config.user.id = false;
        config.user.history = true;
        config.user.share_item_embeddings = false;
        config.user.history_dim = 8;
        config.user.history_len = 50;
        config.user.history_decay = 1.0;
        config.user.history_horizon = horizon;
        config.user.history_dropout = dropout;
        config.loss.extra_negatives = 4;
        config.train.seed = seed;
        let mut fit = Interactions::default();
        for k in 0..H {
            fit.push(0, k as u32, 1.0, k as i64);
        }
        fit.push(0, 15, 1.0, 100);
        let hist = UserHistories::build(&fit, 1);
        let item_feats = ItemFeatures::default();
        let user_feats = UserFeatures::default();
        let layout = FeatureLayout::new(&config, 1, 20, &item_feats, &user_feats);
        let net = TwoTower::new(layout, &config, 1).unwrap();
        let table = net.tables.iter().position(|t| t.name == "user.history").unwrap();
        let mut t = Trainer::new(&config, net, &item_feats, &user_feats, &fit, &hist, 1000);
        let target_row = H as u32;
        (0..steps)
            .map(|_| {
                let before = t.net.tables[table].weights.clone();
                t.step(&[target_row]).unwrap();
                let after = &t.net.tables[table].weights;
                let changed: Vec<bool> = before
                    .chunks(8)
                    .zip(after.chunks(8))
                    .map(|(a, b)| a != b)
                    .collect();
                assert!(
                    changed.iter().any(|&c| c),
                    "a 10-item history never vanishes (horizon {horizon}, dropout {dropout})"
                );
                changed[..H].to_vec()
            })
            .collect()
    }

    /// How many of the user's latest history items each step hid (see [`pooled_per_step`]).
    fn hidden_per_step(horizon: usize, seed: u64, steps: usize) -> Vec<usize> {
        pooled_per_step(horizon, 0.0, seed, steps)
            .into_iter()
            .map(|changed| {
                let kept = changed.iter().filter(|&&c| c).count();
                assert!(
                    changed[..kept].iter().all(|&c| c),
                    "the pooled history is the oldest {kept} items: {changed:?}"
                );
                changed.len() - kept
            })
            .collect()
    }

    #[test]
    fn history_dropout_pools_a_random_subset() {
        let steps = 60;
        let runs = pooled_per_step(0, 0.5, 42, steps);
        let counts: Vec<usize> = runs.iter().map(|c| c.iter().filter(|&&x| x).count()).collect();
        let mean = counts.iter().sum::<usize>() as f64 / steps as f64;
        assert!(
            (3.5..6.5).contains(&mean),
            "about half of 10 items kept: {counts:?}"
        );
        assert!(counts.iter().any(|&c| c < 10) && counts.iter().all(|&c| c >= 1));
        for k in 0..10 {
            assert!(runs.iter().any(|c| !c[k]), "item {k} is never dropped");
        }
        assert_eq!(
            pooled_per_step(0, 0.5, 42, steps),
            runs,
            "a function of seed and step"
        );
        assert!(
            pooled_per_step(0, 0.0, 42, 5)
                .iter()
                .all(|c| c.iter().all(|&x| x)),
            "no dropout: every item pooled"
        );
    }

    #[test]
    fn history_horizon_hides_a_random_0_to_n_latest_items() {
        let steps = 40;
        for horizon in [0, 1] {
            assert_eq!(
                hidden_per_step(horizon, 42, steps),
                vec![0; steps],
                "horizon {horizon}"
            );
        }
        let hidden = hidden_per_step(4, 42, steps);
        assert!(hidden.iter().all(|&k| k < 4), "{hidden:?}");
        for k in 0..4 {
            assert!(hidden.contains(&k), "{k} hidden items never drawn: {hidden:?}");
        }
        // The draw is a function of the seed and the step: reproducible, and moved by the seed.
        assert_eq!(hidden_per_step(4, 42, steps), hidden);
        assert_ne!(hidden_per_step(4, 43, steps), hidden);
    }

    #[test]
    fn seen_item_masks_list_the_users_other_items() {
        let mut config = Config::id_only();
        config.model.dim = 8;
        config.item.id_dim = 8;
        config.user.id_dim = 8;
        let mut fit = Interactions::default();
        // User 0 saw items 1, 2, 3; user 1 saw 3 and 4.
        for (u, i, t) in [(0, 1, 0), (0, 2, 1), (0, 3, 2), (1, 3, 0), (1, 4, 1)] {
            fit.push(u, i, 1.0, t);
        }
        let hist = UserHistories::build(&fit, 2);
        let (item_feats, user_feats) = (ItemFeatures::default(), UserFeatures::default());
        let layout = FeatureLayout::new(&config, 2, 6, &item_feats, &user_feats);
        let net = TwoTower::new(layout, &config, 1).unwrap();
        let mut t = Trainer::new(&config, net, &item_feats, &user_feats, &fit, &hist, 10);
        // Rows (user 0, item 1), (user 1, item 4), (user 0, item 3); three extra columns.
        let (users, cols) = ([0, 1, 0], [1, 4, 3, 2, 3, 5]);
        let sorted = |mut m: Vec<Vec<u32>>| {
            m.iter_mut().for_each(|r| r.sort_unstable());
            m
        };
        let masks = sorted(t.seen_item_masks(&users, &cols, 3));
        assert_eq!(masks, vec![vec![2, 3, 4], vec![2, 4], vec![0, 3, 4]]);
        assert!(t.col_head.iter().all(|&h| h == u32::MAX), "the scratch is reset");
        assert_eq!(sorted(t.seen_item_masks(&users, &cols, 3)), masks);
    }
}
