//! The training job: validation slice, batches, the step (sparse tables + candle dense part + fused
//! loss), schedule, per-epoch validation and early stopping, checkpoints and `--resume`.

use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use twotower_data::{Dataset, Interactions, Manifest, Progress, ShuffledBatches, StagingDir, UserHistories};

use crate::checkpoint::{TensorReader, TensorWriter, TrainState};
use crate::config::{Config, LrDecay, AUTO_EPOCH_PASSES};
use crate::embedding_bag::RowGrads;
use crate::error::{Error, Result};
use crate::features::{Csr, FeatureLayout, ItemFeatures, UserFeatures};
use crate::loss::{mixed_log_q, SampledSoftmax};
use crate::mem::huge_copy;
use crate::metrics::{top_k_exact, EvalReport};
use crate::model::{write_weights, Model, ModelMeta, TrainingSummary, MODEL_FORMAT_VERSION, MODEL_KIND};
use crate::sparse_optim::SparseState;
use crate::tower::{Side, TwoTower};

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
    use rayon::prelude::*;
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

/// Options of a training run that are not part of the model's configuration.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue an interrupted run (same config and dataset required): its checkpoint in the output
    /// directory, or the hidden run directories beside it (search, refit, ensemble members).
    pub resume: bool,
    /// Stop (as if interrupted) after this many epochs of this invocation, leaving the checkpoint
    /// behind; used to test that `--resume` reproduces an uninterrupted run.
    pub stop_after_epochs: Option<usize>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Validation Recall@k (None without a validation slice).
    pub val_recall: Option<f64>,
    /// The k of `val_recall`.
    pub val_k: usize,
    /// Training examples per second in this epoch (validation excluded).
    pub examples_per_sec: f64,
    /// Seconds spent in the epoch, validation included.
    pub seconds: f64,
    /// Learning-rate multiplier at the epoch's end.
    pub lr_scale: f64,
    /// Softmax temperature at the epoch's end (moves only with `loss.learn_temperature`).
    #[serde(default)]
    pub temperature: f64,
    /// Ensemble member (1-based) the epoch belongs to; absent for a single model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<usize>,
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Per-epoch metrics (resumed epochs included) of the kept model's run.
    pub epochs: Vec<EpochMetrics>,
    /// Summary stored in `model.json`.
    pub summary: TrainingSummary,
    /// The temperature search (`loss.temperature_candidates`), one entry per candidate in order;
    /// empty for a single run.
    pub temperature_search: Vec<TemperatureTrial>,
    /// Every run reached its last epoch (false after `stop_after_epochs`: resume to finish).
    pub finished: bool,
    /// With `train.refit`, the validation recall of the run that chose the settings (the refit run
    /// itself has no validation slice); None otherwise.
    pub refit_validation_recall: Option<f64>,
}

/// One candidate of the temperature search.
#[derive(Debug, Clone, PartialEq)]
pub struct TemperatureTrial {
    /// The candidate.
    pub temperature: f32,
    /// Validation Recall@k of its kept epoch.
    pub validation_recall: Option<f64>,
    /// Its kept epoch.
    pub best_epoch: usize,
    /// Wall-clock seconds of its run.
    pub seconds: f64,
    /// The model kept is this candidate's.
    pub chosen: bool,
}

/// The training data view: fit rows (validation slice removed) and the held-out validation rows.
struct Split {
    fit: Interactions,
    val_users: Vec<u32>,
    val_ts: Vec<i64>,
    val_items: Vec<Vec<u32>>,
}

/// Holds out each user's last `per_user` training interactions (by (ts, item)) when the user keeps at
/// least one other; samples at most `max_users` validation users deterministically.
fn split_validation(
    train: &Interactions,
    n_users: usize,
    per_user: usize,
    max_users: usize,
    seed: u64,
) -> Split {
    let hist = UserHistories::build(train, n_users);
    let mut held = vec![false; train.len()];
    let mut val_users = Vec::new();
    let mut val_ts = Vec::new();
    let mut val_items = Vec::new();
    if per_user > 0 {
        let mut cands: Vec<u32> = (0..n_users as u32)
            .filter(|&u| hist.history(u).1.len() > per_user)
            .collect();
        if cands.len() > max_users {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x76616c);
            for i in 0..max_users {
                let j = rng.gen_range(i..cands.len());
                cands.swap(i, j);
            }
            cands.truncate(max_users);
            cands.sort_unstable();
        }
        let mut is_val = vec![false; n_users];
        for &u in &cands {
            is_val[u as usize] = true;
            let (ts, items) = hist.history(u);
            let n = items.len();
            val_users.push(u);
            val_ts.push(ts[n - per_user]);
            val_items.push(items[n - per_user..].to_vec());
        }
        // Mark the held-out rows in the original interaction order: per user, the rows whose (ts, item)
        // is among the last `per_user`.
        let mut cut: Vec<Option<(i64, u32)>> = vec![None; n_users];
        for &u in &cands {
            let (ts, items) = hist.history(u);
            let n = items.len();
            cut[u as usize] = Some((ts[n - per_user], items[n - per_user]));
        }
        for (r, h) in held.iter_mut().enumerate() {
            let u = train.user[r] as usize;
            if u < n_users && is_val[u] {
                if let Some(c) = cut[u] {
                    *h = (train.ts[r], train.item[r]) >= c;
                }
            }
        }
    }
    let keep: Vec<usize> = (0..train.len()).filter(|&r| !held[r]).collect();
    Split {
        fit: train.select(&keep),
        val_users,
        val_ts,
        val_items,
    }
}

/// The mutable state of a run: network, optimizer states and progress counters.
pub(crate) struct Trainer<'a> {
    pub(crate) config: &'a Config,
    pub(crate) net: TwoTower,
    sparse: Vec<SparseState>,
    grads: Vec<RowGrads>,
    item_feats: &'a ItemFeatures,
    user_feats: &'a UserFeatures,
    fit: &'a Interactions,
    hist: &'a UserHistories,
    /// Training share of each item (for logQ).
    freq: Vec<f32>,
    pub(crate) step: u64,
    total_steps: u64,
    /// The step's `[B, C]` logits, then their gradient, and the other buffers of the `[B, C]` part; kept
    /// across steps (no 4 MB allocation per step).
    block_ws: BlockWorkspace,
    /// `ln(1 / temperature)` and its Adam moments (`loss.learn_temperature`).
    log_inv_t: [f32; 3],
    /// Per item, the first batch column holding it (`u32::MAX`: none); reset after each step, so
    /// a step costs the same whatever the catalogue size (`loss.mask_seen_items`).
    col_head: Vec<u32>,
}

/// Bounds of a learned temperature: the logits' scale stays between 1 and 100 (CLIP clips at 100).
const LEARNED_T_RANGE: (f32, f32) = (0.01, 1.0);

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
        for (side, bags, g) in [(Side::User, &ubags, &gin_u), (Side::Item, &ibags, &gin_i)] {
            let tower = self.net.input(side).clone();
            self.net.layout.scatter(&tower, bags, g, &mut self.grads);
        }
        if let Some(a) = attention {
            self.grads[a.table].accumulate(&a.bags, &a.grad, 0, 0);
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

    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let mut w = TensorWriter::default();
        for ((t, s), spec) in self
            .net
            .tables
            .iter()
            .zip(&self.sparse)
            .zip(&self.net.layout.tables)
        {
            w.f32(&format!("table.{}", t.name), &[t.rows, t.dim], &t.weights);
            w.f32(&format!("opt.{}.a", spec.name), &[s.a.len()], &s.a);
            w.f32(&format!("opt.{}.b", spec.name), &[s.b.len()], &s.b);
        }
        for p in &self.net.dense {
            w.f32(&format!("dense.{}", p.name), &p.shape, &p.value);
            w.f32(&format!("dense_m.{}", p.name), &p.shape, &p.m);
            w.f32(&format!("dense_v.{}", p.name), &p.shape, &p.v);
        }
        if self.config.loss.learn_temperature {
            w.f32("log_inv_temperature", &[3], &self.log_inv_t);
        }
        w.write(&dir.join("checkpoint.safetensors"))
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let r = TensorReader::open(path)?;
        for ((t, s), spec) in self
            .net
            .tables
            .iter_mut()
            .zip(&mut self.sparse)
            .zip(&self.net.layout.tables)
        {
            // Back on huge pages, like freshly built tables (see `mem`).
            t.weights = huge_copy(&r.f32(&format!("table.{}", t.name), &[t.rows, t.dim])?);
            s.a = huge_copy(&r.f32(&format!("opt.{}.a", spec.name), &[s.a.len()])?);
            s.b = huge_copy(&r.f32(&format!("opt.{}.b", spec.name), &[s.b.len()])?);
        }
        for p in &mut self.net.dense {
            p.value = r.f32(&format!("dense.{}", p.name), &p.shape)?;
            p.m = r.f32(&format!("dense_m.{}", p.name), &p.shape)?;
            p.v = r.f32(&format!("dense_v.{}", p.name), &p.shape)?;
        }
        if self.config.loss.learn_temperature {
            let t = r.f32("log_inv_temperature", &[3])?;
            self.log_inv_t.copy_from_slice(&t);
        }
        Ok(())
    }
}

/// Trains a model on `ds.training()` (the train part of a split dataset: the test part is never read)
/// and writes the model directory `out`. A single run re-commits `out` atomically after every epoch,
/// so an interrupted run leaves the last complete epoch loadable and resumable; a search, refit or
/// ensemble trains in hidden directories beside `out` (each resumable the same way) and replaces
/// `out` once, when it is complete, so until then `out` keeps the previous model.
pub fn train(
    ds: &Dataset,
    config: &Config,
    out: &Path,
    progress: &dyn Progress,
    opts: &TrainOptions,
) -> Result<TrainReport> {
    config.validate("model config")?;
    let threads = if config.train.threads == 0 {
        rayon::current_num_threads()
    } else {
        config.train.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start {threads} threads: {e}")))?;
    pool.install(|| {
        // Every run below trains one member; an ensemble is assembled from them at the end.
        let members = config.model.members.max(1);
        let mut single = config.clone();
        single.model.members = 1;
        let config = &single;
        let ctx = (out, progress, opts, threads);
        let mut candidates = temperature_candidates(config);
        let refit = refits(config);
        if candidates.len() <= 1 && !refit {
            let mut c = config.clone();
            if let Some(&t) = candidates.first() {
                c.loss.temperature = t;
            }
            c.loss.temperature_candidates.clear();
            if members == 1 {
                if !opts.resume {
                    clear_hidden(out)?;
                }
                return train_inner(ds, &c, out, progress, opts, threads, "");
            }
            let hidden: Vec<_> = (0..members).map(|k| member_dir(out, k)).collect();
            prepare_hidden(out, &hidden, opts)?;
            let first = train_inner(
                ds,
                &c,
                &hidden[0],
                progress,
                opts,
                threads,
                &member_label(0, members),
            )?;
            if !first.finished {
                return Ok(first);
            }
            return finish_members(ds, &c, members, (hidden[0].clone(), first), &[], ctx);
        }
        if candidates.is_empty() {
            // The refit still needs a validation run to choose the epoch count.
            candidates.push(config.loss.temperature);
        }
        search_temperature(ds, config, members, &candidates, refit, ctx)
    })
}

/// The candidates a run searches: none with the temperature learned or without a validation slice
/// (nothing to choose by), where the configured `temperature` is used.
fn temperature_candidates(config: &Config) -> Vec<f32> {
    if config.loss.learn_temperature || config.train.validation_per_user == 0 {
        return Vec::new();
    }
    let mut c = config.loss.temperature_candidates.clone();
    c.dedup();
    c
}

/// Where the run for candidate `t` lives until one is chosen: hidden, beside `out` (a crash leaves
/// them for `--resume`).
fn candidate_dir(out: &Path, t: f32) -> std::path::PathBuf {
    hidden_dir(out, &format!("temperature-{t}"))
}

/// `.{name of out}.{what}`, beside `out`.
fn hidden_dir(out: &Path, what: &str) -> std::path::PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    out.with_file_name(format!(".{name}.{what}"))
}

/// The final model is retrained on every training row once the validation runs have chosen its
/// settings (`train.refit`): needs a validation slice to choose with, and a fixed temperature.
fn refits(config: &Config) -> bool {
    config.train.refit && config.train.validation_per_user > 0 && !config.loss.learn_temperature
}

/// One candidate's run: its temperature, directory, report and wall-clock seconds.
type CandidateRun = (f32, std::path::PathBuf, TrainReport, f64);

/// Trains one model per candidate temperature, each in its hidden directory beside `out`.
fn run_candidates(
    ds: &Dataset,
    config: &Config,
    candidates: &[f32],
    (out, progress, opts, threads): (&Path, &dyn Progress, &TrainOptions, usize),
) -> Result<Vec<CandidateRun>> {
    let mut runs = Vec::with_capacity(candidates.len());
    for &t in candidates {
        let mut c = config.clone();
        c.loss.temperature = t;
        c.loss.temperature_candidates.clear();
        let dir = candidate_dir(out, t);
        let started = Instant::now();
        let report = train_inner(ds, &c, &dir, progress, opts, threads, &format!("T {t}: "))?;
        runs.push((t, dir, report, started.elapsed().as_secs_f64()));
    }
    Ok(runs)
}

/// The run with the best validation recall (the first among equals) and the search's summary.
fn pick_best(runs: &[CandidateRun]) -> (usize, Vec<TemperatureTrial>) {
    let score = |r: &TrainReport| r.summary.validation_recall.unwrap_or(f64::NEG_INFINITY);
    let best = (0..runs.len())
        .reduce(|a, b| {
            if score(&runs[b].2) > score(&runs[a].2) {
                b
            } else {
                a
            }
        })
        .unwrap_or(0);
    let trials = runs
        .iter()
        .enumerate()
        .map(|(i, (t, _, r, secs))| TemperatureTrial {
            temperature: *t,
            validation_recall: r.summary.validation_recall,
            best_epoch: r.summary.best_epoch,
            seconds: *secs,
            chosen: i == best,
        })
        .collect();
    (best, trials)
}

/// Moves `from` into place as `out` in one swap (the staging directory is empty, so the rename may
/// replace it).
fn swap_into(from: &Path, out: &Path) -> Result<()> {
    let staging = StagingDir::new(out)?;
    std::fs::rename(from, staging.path()).map_err(|e| Error::io(from, e))?;
    Ok(staging.commit()?)
}

/// Readies the hidden run directories of a search, refit or ensemble. `--resume` continues them;
/// with none left and a model in `out` there is nothing to resume, and starting over silently would
/// replace that model. A fresh run first removes every one left by an earlier, interrupted run
/// (trained perhaps with other settings or another plan), so a later `--resume` finds only its own.
fn prepare_hidden(out: &Path, hidden: &[std::path::PathBuf], opts: &TrainOptions) -> Result<()> {
    if opts.resume {
        if out.join("model.json").exists() && !hidden.iter().any(|d| d.exists()) {
            return Err(Error::model(
                out,
                "nothing to resume: no interrupted search, refit or ensemble member is left beside \
                 it (a single run, started with --no-refit, one --temperature and --members 1, \
                 resumes with those flags; train without --resume to start over)",
            ));
        }
        return Ok(());
    }
    clear_hidden(out)
}

/// Removes every hidden run directory of `out` (`.{name}.temperature-*`, `.refit`, `.member-*`,
/// and `.trash-*` left by [`discard_runs`]).
fn clear_hidden(out: &Path) -> Result<()> {
    let probe = hidden_dir(out, "");
    let parent = match probe.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let ours = hidden_what(out, &e.path())
            .is_some_and(|what| is_run_name(what.strip_prefix("trash-").unwrap_or(&what)));
        if ours && e.path().is_dir() {
            std::fs::remove_dir_all(e.path()).map_err(|err| Error::io(e.path(), err))?;
        }
    }
    Ok(())
}

/// Where the refit run lives until it is complete.
fn refit_dir(out: &Path) -> std::path::PathBuf {
    hidden_dir(out, "refit")
}

/// Where ensemble member `k` (0-based) is trained until the ensemble is assembled (member 0 is the
/// refit or the chosen candidate's run when there is a search).
fn member_dir(out: &Path, k: usize) -> std::path::PathBuf {
    hidden_dir(out, &format!("member-{k}"))
}

/// Progress-bar label of member `k` (0-based).
fn member_label(k: usize, members: usize) -> String {
    format!("member {}/{members}: ", k + 1)
}

/// Seed of ensemble member `k`: the run's own for the first, well-spread others after it, so a
/// fixed `--seed` fixes the whole ensemble.
fn member_seed(seed: u64, k: usize) -> u64 {
    seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `out`, its run context: where the model goes, progress, options and threads.
type RunCtx<'a> = (&'a Path, &'a dyn Progress, &'a TrainOptions, usize);

/// Completes the model from member 0 (trained with `c` in `first`'s directory): alone, it is swapped
/// in as `out`; with `members` > 1 the others are trained with the same settings and derived seeds
/// (`member_seed`), each in its hidden directory (resumable), then assembled into one ensemble
/// model that is committed as `out`, and the member directories are removed.
///
/// Why an ensemble rather than a wider model: independently trained towers make different errors,
/// and averaging their scores cancels part of them. On ML-100K two members gave +0.0028 Recall@10
/// over one (every pair of four seeds better), where doubling `dim` gave nothing.
///
/// `done` are the other hidden runs (the search's candidates) to discard once `out` is committed.
fn finish_members(
    ds: &Dataset,
    c: &Config,
    members: usize,
    first: (std::path::PathBuf, TrainReport),
    done: &[std::path::PathBuf],
    (out, progress, opts, threads): RunCtx<'_>,
) -> Result<TrainReport> {
    let (first_dir, first) = first;
    if members <= 1 {
        swap_into(&first_dir, out)?;
        discard_runs(out, done);
        return Ok(first);
    }
    let mut dirs = vec![first_dir];
    let mut reports = vec![first];
    for k in 1..members {
        let mut ck = c.clone();
        ck.train.seed = member_seed(c.train.seed, k);
        let dir = member_dir(out, k);
        let report = train_inner(ds, &ck, &dir, progress, opts, threads, &member_label(k, members))?;
        if !report.finished {
            return Ok(report);
        }
        dirs.push(dir);
        reports.push(report);
    }
    let models = dirs.iter().map(Model::load).collect::<Result<Vec<_>>>()?;
    let mut meta = models[0].meta().clone();
    meta.config.model.members = members;
    meta.training.seconds = reports.iter().map(|r| r.summary.seconds).sum();
    let epochs: Vec<EpochMetrics> = reports
        .iter()
        .enumerate()
        .flat_map(|(k, r)| {
            r.epochs.iter().map(move |e| EpochMetrics {
                member: Some(k + 1),
                ..e.clone()
            })
        })
        .collect();
    let model = Model::ensemble(meta.clone(), models)?;
    commit_model_dir(out, &model, &epochs, |_| Ok(Vec::new()))?;
    dirs.extend_from_slice(done);
    discard_runs(out, &dirs);
    Ok(TrainReport {
        epochs,
        summary: meta.training,
        temperature_search: Vec::new(),
        finished: true,
        refit_validation_recall: None,
    })
}

/// Trains one model per candidate temperature and keeps the one with the best validation recall
/// as `out` (swapped in atomically), removing the others.
///
/// With `refit` (`train.refit`), the chosen run only settles the temperature and the number of
/// epochs: the model is then trained once more with them on every training row, the validation
/// slice included, and that model becomes `out`. The slice is each user's latest training
/// interaction, the one nearest in time to what the model will be asked about, and training on it
/// is worth about 0.0025 Recall@10 on ML-100K (four seeds, every seed better). Costs one more run.
/// The refit's learning-rate schedule spans its own (chosen) epoch count, so it decays fully, where
/// the validation run was still mid-schedule at the epoch it kept. Every stage is resumable.
///
/// With `members` > 1, the model swapped in is the ensemble of that run (refit or chosen) and of
/// further members trained the same way ([`finish_members`]).
fn search_temperature(
    ds: &Dataset,
    config: &Config,
    members: usize,
    candidates: &[f32],
    refit: bool,
    ctx: RunCtx<'_>,
) -> Result<TrainReport> {
    let (out, progress, opts, threads) = ctx;
    let mut hidden: Vec<_> = candidates.iter().map(|&t| candidate_dir(out, t)).collect();
    if refit {
        hidden.push(refit_dir(out));
    }
    hidden.extend((1..members).map(|k| member_dir(out, k)));
    prepare_hidden(out, &hidden, opts)?;
    let runs = run_candidates(ds, config, candidates, (out, progress, opts, threads))?;
    let (best, trials) = pick_best(&runs);
    let (t, best_dir, chosen, _) = &runs[best];
    if !runs.iter().all(|r| r.2.finished) {
        return Ok(TrainReport {
            temperature_search: trials,
            finished: false,
            ..chosen.clone()
        });
    }
    let mut c = config.clone();
    c.loss.temperature = *t;
    c.loss.temperature_candidates.clear();
    let first = if refit {
        c.train.validation_per_user = 0;
        c.train.epochs = chosen.summary.best_epoch.max(1);
        c.train.refit = false;
        let dir = refit_dir(out);
        let label = if members > 1 {
            member_label(0, members)
        } else {
            String::new()
        };
        let report = train_inner(ds, &c, &dir, progress, opts, threads, &format!("refit: {label}"))?;
        (dir, report)
    } else {
        (best_dir.clone(), chosen.clone())
    };
    let report = if first.1.finished {
        let done: Vec<_> = runs
            .iter()
            .map(|r| r.1.clone())
            .filter(|d| *d != first.0)
            .collect();
        finish_members(ds, &c, members, first, &done, ctx)?
    } else {
        first.1
    };
    let report = TrainReport {
        temperature_search: trials,
        refit_validation_recall: if refit {
            chosen.summary.validation_recall
        } else {
            None
        },
        ..report
    };
    Ok(report)
}

/// The `what` of a [`hidden_dir`] of `out` (None for any other path).
fn hidden_what(out: &Path, dir: &Path) -> Option<String> {
    let prefix = hidden_dir(out, "");
    let prefix = prefix.file_name()?.to_string_lossy();
    let name = dir.file_name()?.to_string_lossy();
    name.strip_prefix(prefix.as_ref()).map(str::to_string)
}

/// Whether `what` (after `.{name}.`) names one of this module's run directories exactly, so that
/// another model's hidden runs (of `{name}.refit`, say: `.{name}.refit.member-1`) are never taken.
fn is_run_name(what: &str) -> bool {
    what == "refit"
        || what
            .strip_prefix("member-")
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
        || what
            .strip_prefix("temperature-")
            .is_some_and(|t| t.parse::<f32>().is_ok())
}

/// Removes hidden runs whose result is committed. Each is first renamed out of the way (to
/// `.{name}.trash-…`), all before any is deleted, so a crash from the commit on leaves almost no
/// window in which `--resume` would find them and train again what is already in place. Failures
/// only leave debris for the next fresh run's [`clear_hidden`]: the model is committed.
fn discard_runs(out: &Path, dirs: &[std::path::PathBuf]) {
    let trash: Vec<_> = dirs
        .iter()
        .filter_map(|d| {
            let to = hidden_dir(out, &format!("trash-{}", hidden_what(out, d)?));
            // Debris of an earlier discard would make the rename fail.
            let _ = std::fs::remove_dir_all(&to);
            std::fs::rename(d, &to).ok().map(|_| to)
        })
        .collect();
    for t in trash {
        let _ = std::fs::remove_dir_all(t);
    }
}

/// `train.epochs`, or with 0 the epochs that give each user and item row about
/// [`AUTO_EPOCH_PASSES`] training examples over the run.
fn resolve_epochs(tc: &crate::config::TrainConfig, fit: &Interactions) -> usize {
    if tc.epochs > 0 {
        return tc.epochs;
    }
    let users: std::collections::HashSet<u32> = fit.user.iter().copied().collect();
    let items: std::collections::HashSet<u32> = fit.item.iter().copied().collect();
    let per_row = fit.len() as f64 / (users.len() + items.len()).max(1) as f64;
    ((AUTO_EPOCH_PASSES / per_row.max(1e-9)).round() as usize).clamp(2, 10)
}

fn train_inner(
    ds: &Dataset,
    config: &Config,
    out: &Path,
    progress: &dyn Progress,
    opts: &TrainOptions,
    threads: usize,
    label: &str,
) -> Result<TrainReport> {
    let started = Instant::now();
    let train = ds.training();
    if train.is_empty() {
        return Err(Error::Dataset {
            path: ds.dir.clone(),
            message: "no training interactions".into(),
        });
    }
    let tc = &config.train;
    let (n_users, n_items) = (ds.users.len(), ds.items.len());
    let split = split_validation(
        train,
        n_users,
        tc.validation_per_user,
        tc.validation_max_users,
        tc.seed,
    );
    let fit_hist = UserHistories::build(&split.fit, n_users);
    let item_feats = ItemFeatures::from_dataset(ds, config)?;
    let user_feats = UserFeatures::from_dataset(ds, config)?;
    let layout = FeatureLayout::new(config, n_users, n_items, &item_feats, &user_feats);
    let net = TwoTower::new(layout.clone(), config, tc.seed)?;
    let steps_per_epoch = split.fit.len().div_ceil(tc.batch_size) as u64;
    let n_epochs = resolve_epochs(tc, &split.fit);
    let mut trainer = Trainer::new(
        config,
        net,
        &item_feats,
        &user_feats,
        &split.fit,
        &fit_hist,
        steps_per_epoch * n_epochs as u64,
    );
    // The saved model's user histories are the whole training part (validation slice included): at
    // serving and test time a user's history is everything before now.
    let full_hist = UserHistories::build(train, n_users);
    let mut user_items = Csr::default();
    for u in 0..n_users as u32 {
        user_items.push_row(full_hist.history(u).1);
    }
    let mut meta = ModelMeta {
        config: config.clone(),
        layout,
        dataset_fingerprint: ds.fingerprint(),
        dataset_dir: ds.dir.display().to_string(),
        training: TrainingSummary {
            validation_k: tc.validation_k,
            train_examples: split.fit.len(),
            threads,
            ..TrainingSummary::default()
        },
    };
    let mut state = TrainState {
        epochs_done: 0,
        step: 0,
        best_metric: None,
        best_epoch: 0,
        bad_epochs: 0,
        finished: false,
        seconds: 0.0,
    };
    let mut epochs: Vec<EpochMetrics> = Vec::new();
    let mut best_net = trainer.net.clone();
    let mut best_temperature = config.loss.temperature as f64;
    if opts.resume && !out.join("checkpoint.json").exists() && out.join("model.json").exists() {
        return Err(Error::model(
            out,
            "nothing to resume: it holds a finished model without a checkpoint (an ensemble, \
             assembled from its members; train without --resume to start over)",
        ));
    }
    if opts.resume && out.join("checkpoint.json").exists() {
        let prev = Model::load(out)?;
        if prev.meta().config != *config {
            return Err(Error::model(
                out,
                "cannot resume: the configuration differs from the checkpoint's",
            ));
        }
        if prev.dataset_fingerprint() != meta.dataset_fingerprint {
            return Err(Error::model(
                out,
                "cannot resume: the checkpoint was trained on another dataset",
            ));
        }
        let sp = out.join("checkpoint.json");
        let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
        state = serde_json::from_str(&text).map_err(|e| Error::model(&sp, format!("cannot parse: {e}")))?;
        trainer.load_checkpoint(&out.join("checkpoint.safetensors"))?;
        trainer.step = state.step;
        best_net = prev.nets[0].clone();
        meta.training = prev.meta().training.clone();
        best_temperature = prev.meta().training.temperature.unwrap_or(best_temperature);
        let mp = out.join("metrics.jsonl");
        let text = std::fs::read_to_string(&mp).map_err(|e| Error::io(&mp, e))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            epochs.push(serde_json::from_str(line).map_err(|e| Error::model(&mp, format!("bad line: {e}")))?);
        }
    }
    let seconds_before = state.seconds;
    let mut epochs_this_run = 0usize;
    while !state.finished && state.epochs_done < n_epochs {
        if opts.stop_after_epochs.is_some_and(|n| epochs_this_run >= n) {
            break;
        }
        epochs_this_run += 1;
        let epoch = state.epochs_done;
        let t0 = Instant::now();
        let mut batches = ShuffledBatches::new(split.fit.len(), tc.batch_size, tc.seed, epoch as u64);
        progress.start(
            &format!("{label}epoch {}/{n_epochs}", epoch + 1),
            Some(batches.num_batches() as u64),
        );
        let (mut loss_sum, mut n_steps, mut examples) = (0f64, 0usize, 0usize);
        while let Some(batch) = batches.next_batch() {
            let loss = trainer.step(batch)?;
            if !loss.is_finite() {
                return Err(Error::Diverged {
                    epoch,
                    step: trainer.step,
                    loss,
                });
            }
            loss_sum += loss as f64;
            n_steps += 1;
            examples += batch.len();
            progress.inc(1);
            if n_steps % 10 == 0 {
                let rate = examples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                progress.set_message(&format!(
                    "loss {:.4}  {:.0} ex/s",
                    loss_sum / n_steps as f64,
                    rate
                ));
            }
        }
        let train_secs = t0.elapsed().as_secs_f64();
        progress.finish();
        let val = if split.val_users.is_empty() {
            None
        } else {
            Some(validate(
                &trainer.net,
                &split,
                &fit_hist,
                &item_feats,
                &user_feats,
                tc.validation_k,
            )?)
        };
        state.epochs_done += 1;
        state.step = trainer.step;
        let improved = match (val, state.best_metric) {
            (Some(v), Some(b)) => v > b,
            (Some(_), None) => true,
            (None, _) => true,
        };
        if improved {
            state.best_metric = val;
            state.best_epoch = state.epochs_done;
            state.bad_epochs = 0;
            best_net = trainer.net.clone();
            best_temperature = trainer.temperature() as f64;
        } else {
            state.bad_epochs += 1;
        }
        let stop_early = tc.patience > 0 && state.bad_epochs >= tc.patience;
        state.finished = stop_early || state.epochs_done >= n_epochs;
        state.seconds = seconds_before + started.elapsed().as_secs_f64();
        epochs.push(EpochMetrics {
            epoch: state.epochs_done,
            loss: loss_sum / n_steps.max(1) as f64,
            val_recall: val,
            val_k: tc.validation_k,
            examples_per_sec: examples as f64 / train_secs.max(1e-9),
            seconds: t0.elapsed().as_secs_f64(),
            lr_scale: trainer.lr_scale() as f64,
            temperature: trainer.temperature() as f64,
            member: None,
        });
        meta.training = TrainingSummary {
            epochs_run: state.epochs_done,
            best_epoch: state.best_epoch,
            validation_recall: state.best_metric,
            seconds: state.seconds,
            stopped_early: stop_early,
            temperature: Some(best_temperature),
            ..meta.training.clone()
        };
        let model = Model::from_training(
            meta.clone(),
            best_net.clone(),
            ds.users.clone(),
            ds.items.clone(),
            item_feats.clone(),
            user_feats.clone(),
            user_items.clone(),
        );
        save_model_dir(out, &model, &trainer, &state, &epochs)?;
    }
    Ok(TrainReport {
        epochs,
        summary: meta.training,
        temperature_search: Vec::new(),
        finished: state.finished,
        refit_validation_recall: None,
    })
}

fn save_model_dir(
    out: &Path,
    model: &Model,
    trainer: &Trainer<'_>,
    state: &TrainState,
    epochs: &[EpochMetrics],
) -> Result<()> {
    commit_model_dir(out, model, epochs, |dir| {
        trainer.save_checkpoint(dir)?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::model(dir, e.to_string()))?;
        twotower_data::artifact::write_file_atomic(&dir.join("checkpoint.json"), &json)?;
        Ok(vec!["checkpoint.json", "checkpoint.safetensors"])
    })
}

/// Writes `model`, `metrics.jsonl`, whatever `extra` adds (returning the names it wrote) and the
/// manifest over all of them into a staging directory, then swaps it in as `out`.
fn commit_model_dir(
    out: &Path,
    model: &Model,
    epochs: &[EpochMetrics],
    extra: impl FnOnce(&Path) -> Result<Vec<&'static str>>,
) -> Result<()> {
    let staging = StagingDir::new(out)?;
    let dir = staging.path();
    model.write_files(dir)?;
    let extra_files = extra(dir)?;
    let mut lines = String::new();
    for e in epochs {
        lines.push_str(&serde_json::to_string(e).map_err(|e| Error::model(dir, e.to_string()))?);
        lines.push('\n');
    }
    twotower_data::artifact::write_file_atomic(&dir.join("metrics.jsonl"), lines.as_bytes())?;
    let mut manifest = Manifest::new(MODEL_KIND, MODEL_FORMAT_VERSION);
    let files = [
        "model.json",
        "vocab.json",
        "catalog.safetensors",
        "weights.safetensors",
        "metrics.jsonl",
    ];
    for f in files.into_iter().chain(extra_files) {
        manifest.add_file(dir, f)?;
    }
    manifest
        .counts
        .insert("users".into(), model.user_vocab().len() as u64);
    manifest
        .counts
        .insert("items".into(), model.item_vocab().len() as u64);
    manifest.counts.insert("dim".into(), model.dim() as u64);
    manifest.extra = serde_json::json!({ "dataset_fingerprint": model.dataset_fingerprint() });
    manifest.write(dir)?;
    staging.commit()?;
    Ok(())
}

/// Validation Recall@k: each validation user embedded from what preceded the held-out interactions,
/// ranked against the whole catalogue, their fit items excluded.
fn validate(
    net: &TwoTower,
    split: &Split,
    fit_hist: &UserHistories,
    item_feats: &ItemFeatures,
    user_feats: &UserFeatures,
    k: usize,
) -> Result<f64> {
    let layout = &net.layout;
    let rows: Vec<u32> = (0..layout.n_items as u32).collect();
    let mut items = Vec::with_capacity(rows.len() * net.dim);
    for chunk in rows.chunks(16_384) {
        items.extend(net.embed(Side::Item, &layout.item_bags(item_feats, chunk, chunk))?);
    }
    let vu = &split.val_users;
    let bags = layout.user_bags(
        user_feats,
        vu.len(),
        |e| vu[e],
        |e| Some(vu[e]),
        |e| fit_hist.before(vu[e], split.val_ts[e]),
    );
    let users = net.embed(Side::User, &bags)?;
    let top = top_k_exact(&users, &items, net.dim, k, &|e| fit_hist.history(vu[e]).1)?;
    let report = EvalReport::from_rankings(&top, &split.val_items, &[k]);
    Ok(report.recall[0])
}

/// Evaluates a model on `ds`'s test part: every test user ranks the whole catalogue with their training
/// items excluded; the user vector comes from id, features and the whole training history.
pub fn evaluate(model: &Model, ds: &Dataset, ks: &[usize]) -> Result<EvalReport> {
    let test = test_part(ds)?;
    if model.dataset_fingerprint() != ds.fingerprint() {
        return Err(Error::model(
            model.dir(),
            format!(
                "was trained on dataset {} but {} has fingerprint {}; evaluate on the dataset it was trained on",
                model.meta().dataset_dir,
                ds.dir.display(),
                ds.fingerprint()
            ),
        ));
    }
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let (users, relevant) = test_users(test, ds.users.len());
    let all_users = model.user_embeddings()?;
    let d = model.dim();
    let mut q = Vec::with_capacity(users.len() * d);
    for &u in &users {
        q.extend_from_slice(&all_users[u as usize * d..(u as usize + 1) * d]);
    }
    let items = model.item_embeddings()?;
    let top = top_k_exact(&q, &items, d, kmax, &|e| model.user_items(users[e]))?;
    Ok(EvalReport::from_rankings(&top, &relevant, ks))
}

/// The most-popular-items baseline on the same protocol (popularity = training interaction count).
pub fn popularity_baseline(ds: &Dataset, ks: &[usize]) -> Result<EvalReport> {
    let test = test_part(ds)?;
    let train = ds.training();
    let n_items = ds.items.len();
    let mut count = vec![0f32; n_items];
    for &i in &train.item {
        if (i as usize) < n_items {
            count[i as usize] += 1.0;
        }
    }
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let hist = UserHistories::build(train, ds.users.len());
    let (users, relevant) = test_users(test, ds.users.len());
    let top: Vec<Vec<u32>> = users
        .iter()
        .map(|&u| crate::metrics::select_top(&count, kmax, hist.history(u).1))
        .collect();
    Ok(EvalReport::from_rankings(&top, &relevant, ks))
}

fn test_part(ds: &Dataset) -> Result<&Interactions> {
    ds.test.as_ref().ok_or_else(|| Error::Dataset {
        path: ds.dir.clone(),
        message: "has no test part: run `twotower data split` first".into(),
    })
}

/// Users with test interactions, ascending, and their distinct test items.
fn test_users(test: &Interactions, n_users: usize) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut per: Vec<Vec<u32>> = vec![Vec::new(); n_users];
    for (&u, &i) in test.user.iter().zip(&test.item) {
        if (u as usize) < n_users {
            per[u as usize].push(i);
        }
    }
    let mut users = Vec::new();
    let mut rel = Vec::new();
    for (u, mut items) in per.into_iter().enumerate() {
        if !items.is_empty() {
            items.sort_unstable();
            items.dedup();
            users.push(u as u32);
            rel.push(items);
        }
    }
    (users, rel)
}

/// Saves an untrained-or-trained network's weights only (benchmarks and tests).
#[doc(hidden)]
pub fn write_network_weights(net: &TwoTower, path: &Path) -> Result<()> {
    write_weights(std::slice::from_ref(net), path)
}

/// A training step on synthetic ids, for the step-time and memory benchmarks: `n_users × n_items`
/// id-only tables of width `dim`, batches of `batch` random (user, item) pairs. Not part of the API.
#[doc(hidden)]
pub struct StepBench {
    config: Config,
    item_feats: ItemFeatures,
    user_feats: UserFeatures,
    fit: Interactions,
    hist: UserHistories,
    net: Option<TwoTower>,
    #[allow(clippy::type_complexity)]
    sparse: Option<(Vec<SparseState>, Vec<RowGrads>, Vec<f32>, u64, BlockWorkspace)>,
    batch: usize,
    rng: ChaCha8Rng,
}

impl StepBench {
    /// Builds the tables (this is where the memory goes).
    pub fn new(
        n_users: usize,
        n_items: usize,
        dim: usize,
        batch: usize,
        config: Option<Config>,
    ) -> Result<StepBench> {
        let mut config = config.unwrap_or_else(Config::id_only);
        config.model.dim = dim;
        config.item.id_dim = dim;
        config.user.id_dim = dim;
        config.user.history_dim = dim;
        config.train.batch_size = batch;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut fit = Interactions::default();
        for k in 0..batch * 64 {
            fit.push(
                rng.gen_range(0..n_users as u32),
                rng.gen_range(0..n_items as u32),
                1.0,
                k as i64,
            );
        }
        let hist = UserHistories::build(&fit, n_users);
        let item_feats = ItemFeatures::default();
        let user_feats = UserFeatures::default();
        let layout = FeatureLayout::new(&config, n_users, n_items, &item_feats, &user_feats);
        let net = TwoTower::new(layout, &config, 1)?;
        Ok(StepBench {
            config,
            item_feats,
            user_feats,
            fit,
            hist,
            net: Some(net),
            sparse: None,
            batch,
            rng,
        })
    }

    /// Runs one step on a random batch; returns the loss. The optimizer state, row gradients and item
    /// frequencies persist across steps (as in a real run), so nothing table-sized is allocated here.
    pub fn step(&mut self) -> Result<f32> {
        let n = self.fit.len() as u32;
        let batch: Vec<u32> = (0..self.batch).map(|_| self.rng.gen_range(0..n)).collect();
        let net = self
            .net
            .take()
            .ok_or_else(|| Error::Invalid("bench state lost".into()))?;
        let mut t = match self.sparse.take() {
            Some((sparse, grads, freq, step, block_ws)) => Trainer {
                config: &self.config,
                net,
                sparse,
                grads,
                item_feats: &self.item_feats,
                user_feats: &self.user_feats,
                fit: &self.fit,
                hist: &self.hist,
                freq,
                step,
                total_steps: 1_000_000,
                block_ws,
                log_inv_t: [(1.0 / self.config.loss.temperature).ln(), 0.0, 0.0],
                col_head: Vec::new(),
            },
            None => Trainer::new(
                &self.config,
                net,
                &self.item_feats,
                &self.user_feats,
                &self.fit,
                &self.hist,
                1_000_000,
            ),
        };
        let loss = t.step(&batch);
        self.sparse = Some((t.sparse, t.grads, t.freq, t.step, t.block_ws));
        self.net = Some(t.net);
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::{
        clear_hidden, discard_runs, hidden_dir, matmul, softmax_block, BlockWorkspace, Trainer, ROW_BLOCK,
    };
    use crate::config::Config;
    use crate::features::{FeatureLayout, ItemFeatures, UserFeatures};
    use crate::loss::{mixed_log_q, SampledSoftmax};
    use crate::tower::TwoTower;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use twotower_data::{Interactions, UserHistories};

    /// Committed runs are renamed out of the way, then deleted; a fresh run's cleanup takes every
    /// hidden run of its output (debris included, names with dots too) and nothing of another's.
    #[test]
    fn hidden_runs_are_discarded_and_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.v2");
        let runs = [hidden_dir(&out, "refit"), hidden_dir(&out, "temperature-0.15")];
        for d in &runs {
            std::fs::create_dir_all(d.join("sub")).unwrap();
        }
        discard_runs(&out, &runs);
        let names = |dir: &std::path::Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
        let others = [".m.v2.refit.member-1", ".m.v2.x.temperature-0.1", ".other.refit"];
        let ours = [".m.v2.trash-refit", ".m.v2.member-3", ".m.v2.temperature-0.2"];
        for d in ours.iter().chain(&others) {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        clear_hidden(&out).unwrap();
        assert_eq!(names(tmp.path()), others, "other models' runs stay");
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
