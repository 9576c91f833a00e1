//! The two towers: embedding tables (sparse, outside candle) feeding an MLP per side (candle autograd),
//! L2-normalised outputs. [`TwoTower`] is the network both training and inference run.

use candle_core::{Device, Tensor, Var};
use candle_nn::Module;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::embedding_bag::{Bags, EmbeddingTable};
use crate::error::{Error, Result};
use crate::features::{FeatureLayout, Source, TowerInput};
use rayon::prelude::*;

/// One dense weight with its AdamW moments. Plain vectors rather than candle's `AdamW`, whose moments
/// are private: a checkpoint must save them for `--resume` to reproduce an uninterrupted run.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseParam {
    /// Name in the weights file (`user.mlp.0.weight`).
    pub name: String,
    /// Shape (`[out, in]` for weights, `[out]` for biases).
    pub shape: Vec<usize>,
    /// Values.
    pub value: Vec<f32>,
    /// AdamW first moment.
    pub m: Vec<f32>,
    /// AdamW second moment.
    pub v: Vec<f32>,
}

/// AdamW hyper-parameters of the dense weights (TensorFlow/PyTorch defaults).
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-7;

/// A fully connected stack: `layers` name pairs (weight, bias) as indices into the dense parameter list.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    layers: Vec<(usize, usize)>,
}

impl Mlp {
    /// Forward with ReLU between layers and none after the last.
    fn forward(&self, x: &Tensor, vars: &[Tensor]) -> Result<Tensor> {
        let mut x = x.clone();
        for (k, &(w, b)) in self.layers.iter().enumerate() {
            let lin = candle_nn::Linear::new(vars[w].clone(), Some(vars[b].clone()));
            x = lin.forward(&x)?;
            if k + 1 < self.layers.len() {
                x = x.relu()?;
            }
        }
        Ok(x)
    }
}

/// Learned pooling of the user's history (`user.history_attention`): where its block and its two
/// dense weights are.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HistoryAttention {
    /// Index of the history block in `layout.user.blocks`.
    block: usize,
    /// Dense weight `user.history.attention.query`, `[history_dim]`.
    query: usize,
    /// Dense weight `user.history.attention.position`, `[history_len]`: the bias of the k-th most
    /// recent item.
    position: usize,
}

/// What the history rows get from the attention logits (see [`TwoTower::attention_backward`]).
pub(crate) struct AttentionGrad {
    /// The history's block in the user tower's input (its bags name the same rows as `bags`).
    pub(crate) block: usize,
    /// Per bag, the history rows weighted by `d loss / d logit_k`.
    pub(crate) bags: Bags,
    /// The query: every bag's gradient row (scattered with stride 0).
    pub(crate) grad: Vec<f32>,
}

/// Which tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The user (query) tower.
    User,
    /// The item (candidate) tower.
    Item,
}

/// The network: tables, dense weights, and the wiring from [`FeatureLayout`].
#[derive(Debug, Clone, PartialEq)]
pub struct TwoTower {
    /// Feature wiring.
    pub layout: FeatureLayout,
    /// Embedding tables, in `layout.tables` order.
    pub tables: Vec<EmbeddingTable>,
    /// Dense weights of both MLPs.
    pub dense: Vec<DenseParam>,
    user_mlp: Mlp,
    item_mlp: Mlp,
    attention: Option<HistoryAttention>,
    /// Output dimension.
    pub dim: usize,
    /// L2-normalise outputs.
    pub normalize: bool,
}

impl TwoTower {
    /// A freshly initialised network (embedding tables uniform ±0.05, dense layers Glorot-uniform),
    /// fully determined by `seed`.
    pub fn new(layout: FeatureLayout, config: &Config, seed: u64) -> Result<TwoTower> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7477_6f74_6f77_6572);
        let tables = layout
            .tables
            .iter()
            .map(|t| EmbeddingTable::random(&t.name, t.rows, t.dim, 0.05, &mut rng))
            .collect();
        Ok(TwoTower::wired(layout, config, tables, &mut rng))
    }

    /// The network around `tables`, its dense weights freshly initialised from `rng`.
    fn wired(
        layout: FeatureLayout,
        config: &Config,
        tables: Vec<EmbeddingTable>,
        rng: &mut ChaCha8Rng,
    ) -> TwoTower {
        let mut dense = Vec::new();
        let d = config.model.dim;
        let user_mlp = build_mlp("user", layout.user.width, &config.user.layers, d, &mut dense, rng);
        let item_mlp = build_mlp("item", layout.item.width, &config.item.layers, d, &mut dense, rng);
        let attention = build_attention(&layout, config.user.history_attention, &mut dense);
        TwoTower {
            layout,
            tables,
            dense,
            user_mlp,
            item_mlp,
            attention,
            dim: d,
            normalize: config.model.normalize,
        }
    }

    /// The names and shapes of the dense weights a network of this layout and config has (values
    /// freshly initialised; no embedding table is made): what a loader reads by name.
    pub fn dense_layout(layout: &FeatureLayout, config: &Config) -> Vec<DenseParam> {
        TwoTower::wired(
            layout.clone(),
            config,
            Vec::new(),
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .dense
    }

    /// Rebuilds the wiring around loaded tables and dense weights, checking every shape.
    pub fn from_parts(
        layout: FeatureLayout,
        config: &Config,
        tables: Vec<EmbeddingTable>,
        dense: Vec<DenseParam>,
    ) -> Result<TwoTower> {
        if tables.len() != layout.tables.len() {
            return Err(Error::Invalid(format!(
                "expected {} embedding tables, found {}",
                layout.tables.len(),
                tables.len()
            )));
        }
        for (want, got) in layout.tables.iter().zip(&tables) {
            if want.name != got.name || want.rows != got.rows || want.dim != got.dim {
                return Err(Error::Invalid(format!(
                    "table {}: expected {}×{}, found {} {}×{}",
                    want.name, want.rows, want.dim, got.name, got.rows, got.dim
                )));
            }
        }
        // The wiring only: building it with fresh tables would fill every table at random first.
        let mut net = TwoTower::wired(layout, config, tables, &mut ChaCha8Rng::seed_from_u64(0));
        if dense.len() != net.dense.len() {
            return Err(Error::Invalid(format!(
                "expected {} dense weights, found {}",
                net.dense.len(),
                dense.len()
            )));
        }
        for (want, got) in net.dense.iter().zip(&dense) {
            if want.name != got.name || want.shape != got.shape {
                return Err(Error::Invalid(format!(
                    "dense weight {}: expected shape {:?}, found {} {:?}",
                    want.name, want.shape, got.name, got.shape
                )));
            }
        }
        net.dense = dense;
        Ok(net)
    }

    /// The tower input layout of `side`.
    pub fn input(&self, side: Side) -> &TowerInput {
        match side {
            Side::User => &self.layout.user,
            Side::Item => &self.layout.item,
        }
    }

    /// Pools the bags into a tower input, `n × width` (the user's history with its attention weights
    /// when the model learns them).
    pub fn assemble(&self, side: Side, bags: &[Bags]) -> Vec<f32> {
        if side == Side::User && self.attention.is_some() {
            let mut bags = bags.to_vec();
            self.attend(&mut bags);
            return self.layout.assemble(&self.tables, self.input(side), &bags);
        }
        self.layout.assemble(&self.tables, self.input(side), bags)
    }

    /// Replaces the weights of the user history bags (in `layout.user.blocks` order, as
    /// [`FeatureLayout::user_bags`] builds them) by the attention weights: for the items of a bag,
    /// oldest first, `softmax_k(<query, e_k> + position[k])` with `k = 0` the most recent. Depends
    /// only on the rows, so calling it twice changes nothing. No-op without attention.
    ///
    /// The logit is not scaled by `1 / sqrt(dim)` as in a transformer: the query is one vector
    /// trained from zero by Adam, whose steps are bounded by the learning rate, and with the scale
    /// it could not grow far enough in a few epochs to matter (measured: it ended at its step
    /// limit, and the unscaled logit gave the better validation and test recall).
    pub fn attend(&self, bags: &mut [Bags]) {
        let Some(a) = self.attention else {
            return;
        };
        let Some(bag) = bags.get_mut(a.block) else {
            return;
        };
        let block = &self.layout.user.blocks[a.block];
        let table = &self.tables[block.table];
        let q = &self.dense[a.query].value;
        let pos = &self.dense[a.position].value;
        bag.par_reweight(|rows, ws| {
            let n = rows.len();
            let mut max = f32::NEG_INFINITY;
            prefetch_rows(table, &rows[..rows.len().min(ROW_PREFETCH)]);
            for (i, (&r, w)) in rows.iter().zip(ws.iter_mut()).enumerate() {
                if let Some(&ahead) = rows.get(i + ROW_PREFETCH) {
                    prefetch_rows(table, &[ahead]);
                }
                let k = (n - 1 - i).min(pos.len() - 1);
                let dot = crate::simd::dot(table.row(r), q);
                *w = dot + pos[k];
                max = max.max(*w);
            }
            let mut total = 0.0f32;
            for w in ws.iter_mut() {
                *w = (*w - max).exp();
                total += *w;
            }
            for w in ws.iter_mut() {
                *w /= total;
            }
        });
    }

    /// The backward pass of [`TwoTower::attend`]. `bags` are the attended user bags and `grad_in` is
    /// d loss / d user-tower input (`n × width`). Adds the query and position gradients into
    /// `dense_grads` and returns what the history rows get on top of their pooling gradient: bags
    /// whose weights are `d loss / d logit_k`, to scatter (with stride 0) against the query (the
    /// logit's gradient with respect to `e_k`), and the index of the history's table. None without
    /// attention.
    pub(crate) fn attention_backward(
        &self,
        bags: &[Bags],
        grad_in: &[f32],
        dense_grads: &mut [Vec<f32>],
    ) -> Option<AttentionGrad> {
        let a = self.attention?;
        let bag = bags.get(a.block)?;
        let block = &self.layout.user.blocks[a.block];
        let (dim, width, col) = (block.dim, self.layout.user.width, block.col);
        let table = &self.tables[block.table];
        let q = &self.dense[a.query].value;
        let n_pos = self.dense[a.position].value.len();
        let n = bag.len();
        // Per bag: d loss / d logit_k = w_k (<g, e_k> - <g, pooled>), and its share of d query.
        let per_bag: Vec<(Vec<f32>, Vec<f32>)> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(|e| {
                let (rows, ws) = bag.bag(e);
                let g = &grad_in[e * width + col..e * width + col + dim];
                // <g, e_k>, then in place d loss / d logit_k. The rows are scattered over a table of
                // up to millions of rows: each is asked for a few rows ahead of its use.
                prefetch_rows(table, &rows[..rows.len().min(ROW_PREFETCH)]);
                let mut ds: Vec<f32> = Vec::with_capacity(rows.len());
                for (i, &r) in rows.iter().enumerate() {
                    if let Some(&ahead) = rows.get(i + ROW_PREFETCH) {
                        prefetch_rows(table, &[ahead]);
                    }
                    ds.push(crate::simd::dot(table.row(r), g));
                }
                let gp: f32 = ds.iter().zip(ws).map(|(x, w)| x * w).sum();
                ds.iter_mut().zip(ws).for_each(|(x, w)| *x = w * (*x - gp));
                let mut dq = vec![0f32; if rows.is_empty() { 0 } else { dim }];
                for (&r, &d) in rows.iter().zip(&ds) {
                    crate::simd::axpy(&mut dq, d, table.row(r));
                }
                (ds, dq)
            })
            .collect();
        // Summed in bag order: the same result whatever the thread count.
        let mut out = Bags::with_capacity(n);
        for (e, (ds, dq)) in per_bag.iter().enumerate() {
            let rows = bag.bag(e).0;
            for (acc, x) in dense_grads[a.query].iter_mut().zip(dq) {
                *acc += x;
            }
            for (i, d) in ds.iter().enumerate() {
                dense_grads[a.position][(rows.len() - 1 - i).min(n_pos - 1)] += d;
            }
            out.push_weighted(rows, ds);
        }
        Some(AttentionGrad {
            block: a.block,
            bags: out,
            grad: q.clone(),
        })
    }

    /// The dense weights as trainable candle variables for one step.
    pub fn dense_vars(&self, dev: &Device) -> Result<Vec<Var>> {
        self.dense
            .iter()
            .map(|p| Ok(Var::from_slice(&p.value, p.shape.as_slice(), dev)?))
            .collect()
    }

    /// Runs a tower on its input: MLP, then L2 normalisation if enabled.
    pub fn forward(&self, side: Side, input: &Tensor, vars: &[Tensor]) -> Result<Tensor> {
        let mlp = match side {
            Side::User => &self.user_mlp,
            Side::Item => &self.item_mlp,
        };
        let x = mlp.forward(input, vars)?;
        if self.normalize {
            let norm = (x.sqr()?.sum_keepdim(1)? + 1e-12)?.sqrt()?;
            Ok(x.broadcast_div(&norm)?)
        } else {
            Ok(x)
        }
    }

    /// Embeds `n` examples given their bags (inference; no gradient), `n × dim` row-major.
    pub fn embed(&self, side: Side, bags: &[Bags]) -> Result<Vec<f32>> {
        self.embed_with(side, bags, &self.dense_tensors()?)
    }

    /// The dense weights as candle tensors, for [`Self::embed_with`].
    pub fn dense_tensors(&self) -> Result<Vec<Tensor>> {
        Ok(self
            .dense
            .iter()
            .map(|p| Tensor::from_slice(&p.value, p.shape.as_slice(), &Device::Cpu))
            .collect::<candle_core::Result<_>>()?)
    }

    /// [`Self::embed`] with the dense weights already made tensors (`dense_tensors` of this network,
    /// unchanged since): a served model embeds one user per request, and copying every weight into
    /// fresh tensors each time was most of that cost.
    pub fn embed_with(&self, side: Side, bags: &[Bags], vars: &[Tensor]) -> Result<Vec<f32>> {
        let n = bags.first().map_or(0, Bags::len);
        if n == 0 {
            return Ok(Vec::new());
        }
        let input = self.assemble(side, bags);
        let width = self.input(side).width;
        let x = Tensor::from_vec(input, (n, width), &Device::Cpu)?;
        let y = self.forward(side, &x, vars)?;
        Ok(y.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// What a training forward pass of one tower keeps for its backward pass.
#[derive(Debug, Default)]
pub(crate) struct TowerPass {
    n: usize,
    /// The input of each layer: the tower input, then each hidden layer's ReLU output.
    inputs: Vec<Vec<f32>>,
    /// Each hidden layer's pre-activation (for ReLU's gradient).
    pre: Vec<Vec<f32>>,
    /// The output (normalised when the tower normalises), `n × dim`.
    pub(crate) out: Vec<f32>,
    /// Per row, `sqrt(|y|² + 1e-12)` of the pre-normalisation output `y` (empty without normalisation).
    norms: Vec<f32>,
}

impl TwoTower {
    /// The training forward pass of a tower without a candle graph: MLP (single-threaded gemms over
    /// fixed row blocks, spread over the rayon threads), then L2 normalisation. Computes what
    /// [`TwoTower::forward`] computes, up to floating-point reassociation (the test
    /// `tower_backward_matches_candle_autograd` pins the two to the same output).
    pub(crate) fn forward_train(&self, side: Side, input: Vec<f32>, n: usize) -> TowerPass {
        let mlp = match side {
            Side::User => &self.user_mlp,
            Side::Item => &self.item_mlp,
        };
        let mut inputs = vec![input];
        let mut pre = Vec::new();
        let mut y = Vec::new();
        for (k, &(w, b)) in mlp.layers.iter().enumerate() {
            let (wp, bp) = (&self.dense[w], &self.dense[b]);
            let (out, inn) = (wp.shape[0], wp.shape[1]);
            let x = inputs.last().map(Vec::as_slice).unwrap_or_default();
            let mut z = vec![0f32; n * out];
            // z = x · Wᵀ + b
            par_matmul(n, out, inn, x, (inn, 1), &wp.value, (1, inn), &mut z);
            for row in z.chunks_mut(out.max(1)) {
                for (o, &bb) in row.iter_mut().zip(&bp.value) {
                    *o += bb;
                }
            }
            if k + 1 < mlp.layers.len() {
                let a: Vec<f32> = z.iter().map(|&v| v.max(0.0)).collect();
                pre.push(z);
                inputs.push(a);
            } else {
                y = z;
            }
        }
        if mlp.layers.is_empty() {
            y = inputs.pop().unwrap_or_default();
        }
        let mut norms = Vec::new();
        if self.normalize && n > 0 {
            let d = (y.len() / n).max(1);
            norms = y
                .chunks(d)
                .map(|r| (r.iter().map(|&v| v * v).sum::<f32>() + 1e-12).sqrt())
                .collect();
            for (row, &nr) in y.chunks_mut(d).zip(&norms) {
                row.iter_mut().for_each(|v| *v /= nr);
            }
        }
        TowerPass {
            n,
            inputs,
            pre,
            out: y,
            norms,
        }
    }

    /// The backward pass of [`TwoTower::forward_train`]: from `d loss / d output` (`n × dim`), adds
    /// each dense weight's gradient into `dense_grads` (indexed like `self.dense`) and returns
    /// `d loss / d input`.
    pub(crate) fn backward_train(
        &self,
        side: Side,
        pass: TowerPass,
        grad_out: Vec<f32>,
        dense_grads: &mut [Vec<f32>],
    ) -> Vec<f32> {
        let mlp = match side {
            Side::User => &self.user_mlp,
            Side::Item => &self.item_mlp,
        };
        let n = pass.n;
        let mut g = grad_out;
        if !pass.norms.is_empty() {
            // o = y / |y|: dL/dy = (dL/do - o <o, dL/do>) / |y|
            let d = (g.len() / n.max(1)).max(1);
            for ((gr, o), &nr) in g.chunks_mut(d).zip(pass.out.chunks(d)).zip(&pass.norms) {
                let dot: f32 = gr.iter().zip(o).map(|(a, b)| a * b).sum();
                for (x, &oo) in gr.iter_mut().zip(o) {
                    *x = (*x - oo * dot) / nr;
                }
            }
        }
        let mut inputs = pass.inputs;
        let mut pre = pass.pre;
        for (k, &(w, b)) in mlp.layers.iter().enumerate().rev() {
            let wp = &self.dense[w];
            let (out, inn) = (wp.shape[0], wp.shape[1]);
            let x = inputs.pop().unwrap_or_default();
            // dW = gᵀ · x, db = Σ_rows g, dx = g · W
            let mut gw = vec![0f32; out * inn];
            par_matmul(out, inn, n, &g, (1, out), &x, (inn, 1), &mut gw);
            for (acc, v) in dense_grads[w].iter_mut().zip(&gw) {
                *acc += v;
            }
            let gb = &mut dense_grads[b];
            for row in g.chunks(out.max(1)) {
                for (acc, &v) in gb.iter_mut().zip(row) {
                    *acc += v;
                }
            }
            if k == 0 {
                // The tower input's gradient.
                let mut gx = vec![0f32; n * inn];
                par_matmul(n, inn, out, &g, (out, 1), &wp.value, (inn, 1), &mut gx);
                return gx;
            }
            let mut gx = vec![0f32; n * inn];
            par_matmul(n, inn, out, &g, (out, 1), &wp.value, (inn, 1), &mut gx);
            // ReLU: the gradient passes where the pre-activation is >= 0 (candle's convention).
            let z = pre.pop().unwrap_or_default();
            for (gv, &zv) in gx.iter_mut().zip(&z) {
                if zv < 0.0 {
                    *gv = 0.0;
                }
            }
            g = gx;
        }
        g
    }

    /// One AdamW step on the dense weights from plain gradients (indexed like `self.dense`; `None`
    /// leaves a weight and its moments untouched). `step` is 1-based.
    pub(crate) fn adamw_step_plain(
        &mut self,
        grads: &[Option<Vec<f32>>],
        lr: f32,
        weight_decay: f32,
        step: u64,
    ) {
        let t = step.max(1) as i32;
        let bc1 = 1.0 - BETA1.powi(t);
        let bc2 = 1.0 - BETA2.powi(t);
        for (p, g) in self.dense.iter_mut().zip(grads) {
            let Some(g) = g else {
                continue;
            };
            adamw_update(p, g, lr, weight_decay, bc1, bc2);
        }
    }
}

/// How many rows ahead the attention passes ask for the history rows they will read.
const ROW_PREFETCH: usize = 4;

/// Prefetches the rows `rows` of `table` (a hint: rows outside the table are skipped).
fn prefetch_rows(table: &EmbeddingTable, rows: &[u32]) {
    for &r in rows {
        let o = r as usize * table.dim;
        if o + table.dim <= table.weights.len() {
            crate::mem::prefetch(table.weights[o..].as_ptr(), table.dim * 4);
        }
    }
}

fn adamw_update(p: &mut DenseParam, g: &[f32], lr: f32, weight_decay: f32, bc1: f32, bc2: f32) {
    for (((w, m), v), &g) in p.value.iter_mut().zip(p.m.iter_mut()).zip(p.v.iter_mut()).zip(g) {
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * g * g;
        *w *= 1.0 - lr * weight_decay;
        *w -= lr * (*m / bc1) / ((*v / bc2).sqrt() + EPS);
    }
}

/// Rows of one work unit of [`par_matmul`] for an `m`-row output: fixed by `m` alone (not by the
/// thread count), so results do not depend on how many threads ran them.
fn row_block(m: usize) -> usize {
    if m >= 512 {
        128
    } else {
        m.div_ceil(4).next_multiple_of(8).max(8)
    }
}

/// `out[m×n] = A[m×k] · B[k×n]` as single-threaded gemms over fixed blocks of output rows, the blocks
/// spread over the current rayon pool (cheaper than gemm's own threading on these small products).
#[allow(clippy::too_many_arguments)]
pub(crate) fn par_matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    out: &mut [f32],
) {
    use rayon::prelude::*;
    if m == 0 || n == 0 {
        return;
    }
    let blk = row_block(m);
    let out = &mut out[..m * n];
    out.par_chunks_mut(blk * n).enumerate().for_each(|(j, o)| {
        let r0 = j * blk;
        let rows = o.len() / n;
        let a_part = if k == 0 { a } else { &a[r0 * a_rs..] };
        crate::kernels::matmul(rows, n, k, a_part, (a_rs, a_cs), b, b_strides, o, 1);
    });
}

/// The attention weights of the history pooling, when asked for and the layout has a history: a
/// zero query and position biases `k · ln history_decay`, so an untrained model pools exactly like
/// the recency mean.
fn build_attention(
    layout: &FeatureLayout,
    on: bool,
    dense: &mut Vec<DenseParam>,
) -> Option<HistoryAttention> {
    if !on {
        return None;
    }
    let block = layout
        .user
        .blocks
        .iter()
        .position(|b| b.source == Source::History)?;
    let dim = layout.user.blocks[block].dim;
    let n_pos = layout.history_len.max(1);
    let ln_decay = layout.history_decay.max(f32::MIN_POSITIVE).ln();
    let mut param = |name: &str, value: Vec<f32>| {
        let n = value.len();
        dense.push(DenseParam {
            name: name.into(),
            shape: vec![n],
            value,
            m: vec![0.0; n],
            v: vec![0.0; n],
        });
        dense.len() - 1
    };
    let query = param("user.history.attention.query", vec![0.0; dim]);
    let position = param(
        "user.history.attention.position",
        (0..n_pos).map(|k| k as f32 * ln_decay).collect(),
    );
    Some(HistoryAttention {
        block,
        query,
        position,
    })
}

fn build_mlp(
    prefix: &str,
    in_dim: usize,
    hidden: &[usize],
    out: usize,
    dense: &mut Vec<DenseParam>,
    rng: &mut ChaCha8Rng,
) -> Mlp {
    let mut widths: Vec<usize> = hidden.to_vec();
    // Identity tower: no hidden layer and the input already has the output width (TFRS basic model).
    if !(hidden.is_empty() && in_dim == out) {
        widths.push(out);
    }
    let mut layers = Vec::new();
    let mut prev = in_dim;
    for (k, &w) in widths.iter().enumerate() {
        let limit = (6.0 / (prev + w) as f32).sqrt();
        let value: Vec<f32> = (0..w * prev).map(|_| rng.gen_range(-limit..=limit)).collect();
        let n = value.len();
        dense.push(DenseParam {
            name: format!("{prefix}.mlp.{k}.weight"),
            shape: vec![w, prev],
            value,
            m: vec![0.0; n],
            v: vec![0.0; n],
        });
        dense.push(DenseParam {
            name: format!("{prefix}.mlp.{k}.bias"),
            shape: vec![w],
            value: vec![0.0; w],
            m: vec![0.0; w],
            v: vec![0.0; w],
        });
        layers.push((dense.len() - 2, dense.len() - 1));
        prev = w;
    }
    Mlp { layers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding_bag::RowGrads;
    use crate::features::{ItemFeatures, UserFeatures};

    /// A network of id-only towers: the user tower `user_id_dim → user_layers → dim`, the item tower
    /// `item_id_dim → item_layers → dim`, with random (non-zero) biases.
    fn net(
        dim: usize,
        (user_id_dim, user_layers): (usize, &[usize]),
        (item_id_dim, item_layers): (usize, &[usize]),
        normalize: bool,
    ) -> TwoTower {
        let mut config = Config::id_only();
        config.model.dim = dim;
        config.model.normalize = normalize;
        config.user.id_dim = user_id_dim;
        config.user.layers = user_layers.to_vec();
        config.item.id_dim = item_id_dim;
        config.item.layers = item_layers.to_vec();
        let items = ItemFeatures::default();
        let users = UserFeatures::default();
        let layout = FeatureLayout::new(&config, 10, 10, &items, &users);
        let mut net = TwoTower::new(layout, &config, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for p in net.dense.iter_mut().filter(|p| p.shape.len() == 1) {
            p.value.iter_mut().for_each(|v| *v = rng.gen_range(-0.3..0.3));
        }
        net
    }

    /// Checks `backward_train` of one tower against candle autograd through [`TwoTower::forward`] on
    /// the same weights, for the loss `Σ out ⊙ R` (so `d loss / d out = R`): every dense weight and
    /// bias gradient of the tower and the input gradient. Returns how many hidden pre-activations
    /// were negative (the ReLU mask must have been exercised).
    fn check_tower(net: &TwoTower, side: Side, n: usize, seed: u64) -> usize {
        let dev = Device::Cpu;
        let width = net.input(side).width;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let input: Vec<f32> = (0..n * width).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let r: Vec<f32> = (0..n * net.dim).map(|_| rng.gen_range(-1.0..1.0)).collect();

        // Reference: candle autograd.
        let x = Var::from_slice(&input, (n, width), &dev).unwrap();
        let vars = net.dense_vars(&dev).unwrap();
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let out = net.forward(side, x.as_tensor(), &tensors).unwrap();
        let rt = Tensor::from_slice(&r, (n, net.dim), &dev).unwrap();
        let loss = (out.clone() * rt).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();

        // Hand-written pass.
        let pass = net.forward_train(side, input.clone(), n);
        let negatives = pass.pre.iter().flatten().filter(|&&z| z < 0.0).count();
        let want_out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        close("output", &pass.out, &want_out, 1e-5);
        let mut dense_grads: Vec<Vec<f32>> = net.dense.iter().map(|p| vec![0f32; p.value.len()]).collect();
        let gx = net.backward_train(side, pass, r, &mut dense_grads);

        let want_gx = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        close("input", &gx, &want_gx, 1e-4);
        let prefix = match side {
            Side::User => "user.",
            Side::Item => "item.",
        };
        let mut checked = 0;
        for ((p, var), got) in net.dense.iter().zip(&vars).zip(&dense_grads) {
            match grads.get(var.as_tensor()) {
                Some(g) => {
                    assert!(p.name.starts_with(prefix), "{} has a gradient", p.name);
                    let want = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    close(&p.name, got, &want, 1e-4);
                    checked += 1;
                }
                None => assert!(
                    got.iter().all(|&v| v == 0.0),
                    "{}: gradient outside the tower",
                    p.name
                ),
            }
        }
        let layers = match side {
            Side::User => &net.user_mlp,
            Side::Item => &net.item_mlp,
        };
        assert_eq!(checked, 2 * layers.layers.len(), "every weight and bias checked");
        negatives
    }

    fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * scale.max(1.0),
                "{what}[{k}]: hand-written {g} vs candle autograd {w}"
            );
        }
    }

    #[test]
    fn tower_backward_matches_candle_autograd() {
        for normalize in [true, false] {
            // User: 6 → 9 → ReLU → 7 → ReLU → 5; item: one linear layer 8 → 5.
            let two_hidden = net(5, (6, &[9, 7]), (8, &[]), normalize);
            let negatives = check_tower(&two_hidden, Side::User, 13, 1);
            assert!(
                negatives > 10,
                "the ReLU mask is exercised ({negatives} negatives)"
            );
            check_tower(&two_hidden, Side::Item, 11, 2);
            // User: one hidden layer; item: identity (no dense layer, normalisation only).
            let one_hidden = net(4, (3, &[6]), (4, &[]), normalize);
            assert!(one_hidden.item_mlp.layers.is_empty());
            let negatives = check_tower(&one_hidden, Side::User, 17, 3);
            assert!(
                negatives > 10,
                "the ReLU mask is exercised ({negatives} negatives)"
            );
            check_tower(&one_hidden, Side::Item, 9, 4);
        }
    }

    /// A user tower of history only (3-wide rows of 10 items, attention over the last 5, one hidden
    /// layer) and the bags of four users, one of them with no history.
    fn attention_net() -> (TwoTower, Vec<Bags>) {
        let mut config = Config::default();
        config.model.dim = 4;
        config.user.id = false;
        config.user.categorical = false;
        config.user.history_len = 5;
        config.user.history_decay = 0.7;
        config.user.history_dim = 3;
        config.user.share_item_embeddings = false;
        config.user.layers = vec![6];
        let (items, users) = (ItemFeatures::default(), UserFeatures::default());
        let layout = FeatureLayout::new(&config, 4, 10, &items, &users);
        let net = TwoTower::new(layout, &config, 5).unwrap();
        let hists: [&[u32]; 4] = [&[1, 2, 3, 4, 5, 6, 7], &[3], &[], &[9, 0, 2]];
        let bags = net.layout.user_bags(&users, 4, |_| 0, |_| None, |e| hists[e]);
        (net, bags)
    }

    #[test]
    fn untrained_attention_pools_like_the_recency_mean() {
        let (net, bags) = attention_net();
        let mut attended = bags.clone();
        net.attend(&mut attended);
        let a = net.attention.unwrap();
        for e in 0..4 {
            let (rows, want) = bags[a.block].bag(e);
            let (rows2, got) = attended[a.block].bag(e);
            assert_eq!(rows, rows2);
            close("weights", got, want, 1e-6);
        }
        assert_eq!(bags[a.block].bag(0).0, &[3, 4, 5, 6, 7], "the last 5 items");
    }

    #[test]
    fn attention_backward_matches_finite_differences() {
        let (mut net, bags) = attention_net();
        let a = net.attention.unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for w in [a.query, a.position] {
            net.dense[w]
                .value
                .iter_mut()
                .for_each(|v| *v = rng.gen_range(-1.0..1.0));
        }
        for v in net.tables[net.layout.user.blocks[a.block].table]
            .weights
            .iter_mut()
        {
            *v = rng.gen_range(-1.0..1.0);
        }
        let n = 4;
        let r: Vec<f32> = (0..n * 4).map(|_| rng.gen_range(-1.0..1.0)).collect();
        // loss = Σ out ⊙ R, in f64 for the differences.
        let loss = |net: &TwoTower| -> f64 {
            let mut b = bags.clone();
            net.attend(&mut b);
            let input = net.layout.assemble(&net.tables, &net.layout.user, &b);
            let pass = net.forward_train(Side::User, input, n);
            pass.out.iter().zip(&r).map(|(&x, &y)| x as f64 * y as f64).sum()
        };
        let mut attended = bags.clone();
        net.attend(&mut attended);
        let input = net.layout.assemble(&net.tables, &net.layout.user, &attended);
        let pass = net.forward_train(Side::User, input, n);
        let mut dense_grads: Vec<Vec<f32>> = net.dense.iter().map(|p| vec![0.0; p.value.len()]).collect();
        let gin = net.backward_train(Side::User, pass, r.clone(), &mut dense_grads);
        let ag = net.attention_backward(&attended, &gin, &mut dense_grads).unwrap();
        let mut row_grads: Vec<RowGrads> = net.tables.iter().map(|t| RowGrads::new(t.rows, t.dim)).collect();
        // As a training step does: the attention gradient joins the history's pooling gradient.
        net.layout.scatter_with(
            &net.layout.user,
            &attended,
            &gin,
            &mut row_grads,
            Some((ag.block, ag.bags.weights(), &ag.grad)),
        );
        let table = net.layout.user.blocks[ag.block].table;
        let dim = net.tables[table].dim;
        let eps = 1e-3f32;
        let numeric = |net: &mut TwoTower, get: &dyn Fn(&mut TwoTower) -> &mut f32| -> f32 {
            let x = *get(net);
            *get(net) = x + eps;
            let up = loss(net);
            *get(net) = x - eps;
            let down = loss(net);
            *get(net) = x;
            ((up - down) / (2.0 * eps as f64)) as f32
        };
        for w in [a.query, a.position] {
            let want: Vec<f32> = (0..net.dense[w].value.len())
                .map(|k| numeric(&mut net, &|m: &mut TwoTower| &mut m.dense[w].value[k]))
                .collect();
            assert!(
                want.iter().any(|v| v.abs() > 1e-3),
                "{}: a live gradient",
                net.dense[w].name
            );
            close(&net.dense[w].name, &dense_grads[w], &want, 2e-3);
        }
        let mut rows_checked = 0;
        for (row, got) in row_grads[table].iter() {
            let want: Vec<f32> = (0..dim)
                .map(|k| {
                    numeric(&mut net, &|m: &mut TwoTower| {
                        &mut m.tables[table].weights[row as usize * dim + k]
                    })
                })
                .collect();
            close(&format!("history row {row}"), got, &want, 2e-3);
            rows_checked += 1;
        }
        assert_eq!(rows_checked, 8, "rows 0, 2..7, 9");
    }
}
