//! Benchmarks that print a table (or JSON):
//! - `twotower bench query`: latency of the answers people and services ask for, measured the way they
//!   are served (one query at a time on one thread, embedding + search, no terminal I/O);
//! - `twotower bench ann`: the HNSW index alone on any vectors (e.g. `embed --items` output, or the
//!   peers script's synthetic catalogue), the ann-benchmarks way: build time, then recall@k against
//!   exact search and queries/s on one search thread per `ef`. The peers script runs hnswlib on the
//!   same file, so both engines are measured on the same vectors in the same run.

use crate::engine_args::EngineArgs;
use crate::progress::Bar;
use anyhow::{bail, ensure, Context, Result};
use clap::{Args, Subcommand};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use twotower_cli::recommender::{Answer, DataItem, DataUser, QueryOpts};
use twotower_index::{ExactIndex, GraphBuilder, HnswIndex, HnswParams, VectorIndex};

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// p50/p90/p99 latency of user, recent-items and similar-item queries over the live index.
    Query(QueryBenchArgs),
    /// Build time, recall@k against exact search and queries/s per ef, on vectors from Parquet.
    ///
    /// Reads `--items` (and `--queries`; default: a sample of the items themselves) in `twotower embed`'s
    /// format: an id column (`id` or `item`, Utf8) and `vector` (FixedSizeList<Float32, d>). Vectors
    /// are normalised (the index ranks by cosine). Recall counts a returned row when its score is at
    /// least the exact k-th best score minus 1e-5 (ann-benchmarks' rule: ties are not misses).
    Ann(AnnBenchArgs),
    /// Training steps per second of the default model (or `--config`) on a real dataset: the step
    /// `train` runs, timed after a warm-up, with the floating-point rate of its dense products.
    Train(TrainBenchArgs),
    /// The best any recommender can do on `data synth`'s data: each test user's unseen items ranked
    /// by the generator's own next-item distribution, judged exactly as `eval` judges a model
    /// (recall, coverage, popularity percentile, long-tail share), beside popularity.
    ///
    /// Pass the options the data was generated with, e.g. `--users 200000 --items 1000000
    /// --interactions 10000000 --clusters 256 --synth-seed 7`.
    SynthCeiling(crate::ceiling_cmd::CeilingArgs),
}

/// Arguments of `bench train`.
#[derive(Debug, Args)]
pub struct TrainBenchArgs {
    /// Dataset directory (its training part).
    #[arg(long)]
    pub data: PathBuf,
    /// TOML config (default: the default model).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Start from the id-only model instead (user and item id embeddings only).
    #[arg(long)]
    pub id_only: bool,
    /// Output dimension (and, with --id-only, the id embeddings' width).
    #[arg(long)]
    pub dim: Option<usize>,
    /// Timed steps.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Untimed steps first (page faults, caches).
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
}

/// Arguments of `bench ann`.
#[derive(Debug, Args)]
pub struct AnnBenchArgs {
    /// Item vectors to index (Parquet: id Utf8, vector FixedSizeList<Float32, d>).
    #[arg(long, value_name = "FILE")]
    pub items: PathBuf,
    /// Query vectors (same format). Default: `--sample` random items as queries.
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
    /// Queries drawn from the items when `--queries` is absent.
    #[arg(long, default_value_t = 1000)]
    pub sample: usize,
    /// Neighbours per query.
    #[arg(long, short, default_value_t = 10)]
    pub k: usize,
    /// Search breadths to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,20,40,80,160")]
    pub ef: Vec<usize>,
    /// HNSW links per node (layer 0 keeps 2·m).
    #[arg(long, default_value_t = HnswParams::default().m)]
    pub m: usize,
    /// HNSW candidate list size while building.
    #[arg(long, default_value_t = HnswParams::default().ef_construction)]
    pub ef_construction: usize,
    /// Threads searching queries (1: the ann-benchmarks convention). The build uses `--threads`.
    #[arg(long, default_value_t = 1)]
    pub search_threads: usize,
    /// Graph builder: the hand-written one (default) or hnsw_rs's (the reference, slower).
    #[arg(long, value_enum, default_value_t = Builder::Native)]
    pub builder: Builder,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seed of the query sample.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `--builder` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Builder {
    /// twotower's parallel builder (hnswlib's algorithm).
    Native,
    /// hnsw_rs's `parallel_insert`.
    HnswRs,
}

impl From<Builder> for GraphBuilder {
    fn from(b: Builder) -> Self {
        match b {
            Builder::Native => GraphBuilder::Native,
            Builder::HnswRs => GraphBuilder::HnswRs,
        }
    }
}

/// Arguments of `bench query`.
#[derive(Debug, Args)]
pub struct QueryBenchArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Queries per path.
    #[arg(long, default_value_t = 10_000)]
    pub queries: usize,
    /// Results per query.
    #[arg(long, short, default_value_t = 10)]
    pub k: usize,
    /// HNSW search breadth.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Items given to the recent-items path (a user's latest training items).
    #[arg(long, default_value_t = 10)]
    pub recent: usize,
    /// Seed of the query sample.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs a benchmark and prints its table.
pub fn run(cmd: BenchCommand, bar: &Bar) -> Result<()> {
    match cmd {
        BenchCommand::Query(a) => query(a),
        BenchCommand::Ann(a) => ann(a, bar),
        BenchCommand::Train(a) => train_steps(a, bar),
        BenchCommand::SynthCeiling(a) => crate::ceiling_cmd::ceiling(a, bar),
    }
}

struct Row {
    path: &'static str,
    /// Whole query (embedding + search), then the search part alone.
    ms: (Vec<f64>, Vec<f64>),
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn time(
    n: usize,
    mut f: impl FnMut(usize) -> Result<Answer, twotower_cli::recommender::RecError>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    // Warm caches and lazily built state first, so the figures are steady-state serving.
    for i in 0..n.min(200) {
        f(i)?;
    }
    let (mut total, mut search) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t = Instant::now();
        let ans = f(i)?;
        total.push(t.elapsed().as_secs_f64() * 1e3);
        search.push(ans.search_ms);
    }
    Ok((total, search))
}

fn query(a: QueryBenchArgs) -> Result<()> {
    if a.queries == 0 {
        bail!("--queries must be at least 1");
    }
    let engine = a.engine.open()?;
    let st = engine.snapshot();
    let data = st.catalog.data();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    // Users with training history: the ones a service answers for.
    let users: Vec<DataUser> = (0..data.users.len() as u32)
        .map(DataUser)
        .filter(|&u| st.catalog.has_history(u))
        .collect();
    if users.is_empty() {
        bail!("the dataset has no user with training interactions");
    }
    let sample: Vec<DataUser> = (0..a.queries)
        .map(|_| users[rng.gen_range(0..users.len())])
        .collect();
    let ids: Vec<&str> = sample.iter().map(|&u| data.users.id(u.0)).collect();
    let recents: Vec<Vec<String>> = sample
        .iter()
        .map(|&u| {
            let h = st.catalog.history_items(u);
            h[h.len().saturating_sub(a.recent)..]
                .iter()
                .map(|&i| st.catalog.item_id(i).to_string())
                .collect()
        })
        .collect();
    // Items the live index holds: the ones `similar` can be asked about.
    let mut indexed: Vec<DataItem> = Vec::new();
    for i in (0..data.items.len() as u32).map(DataItem) {
        if st.index.item_vector(i)?.is_some() {
            indexed.push(i);
        }
    }
    if indexed.is_empty() {
        bail!("the index holds none of the dataset's items");
    }
    let items: Vec<&str> = (0..a.queries)
        .map(|_| st.catalog.item_id(indexed[rng.gen_range(0..indexed.len())]))
        .collect();
    let opts = QueryOpts {
        k: a.k,
        ef: a.ef,
        ..QueryOpts::default()
    };
    let exact = QueryOpts {
        exact: true,
        ..opts.clone()
    };
    let mut exact_sample = a.queries.min(2000);
    exact_sample = exact_sample.max(1);
    let rows = vec![
        Row {
            path: "user (hnsw)",
            ms: time(a.queries, |i| st.recommend_user(ids[i], &opts))?,
        },
        Row {
            path: "recent items (hnsw)",
            ms: time(a.queries, |i| st.recommend_recent(&recents[i], &opts))?,
        },
        Row {
            path: "similar item (hnsw)",
            ms: time(a.queries, |i| st.similar(items[i], &opts))?,
        },
        Row {
            path: "user (exact + hnsw overlap)",
            ms: time(exact_sample, |i| st.recommend_user(ids[i], &exact))?,
        },
    ];
    println!(
        "{} users, {} indexed items, d={}, k={}, ef={}, one thread, embedding + search per query",
        data.users.len(),
        st.index.info().items,
        st.model.dim(),
        a.k,
        a.ef
    );
    println!(
        "{:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>13}",
        "path", "queries", "p50 ms", "p90 ms", "p99 ms", "mean ms", "queries/s", "search p99 ms"
    );
    for mut r in rows {
        r.ms.0.sort_by(f64::total_cmp);
        r.ms.1.sort_by(f64::total_cmp);
        let ms = &r.ms.0;
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        println!(
            "{:<28} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.0} {:>13.3}",
            r.path,
            ms.len(),
            pct(ms, 50.0),
            pct(ms, 90.0),
            pct(ms, 99.0),
            mean,
            1e3 / mean,
            pct(&r.ms.1, 99.0)
        );
    }
    Ok(())
}

/// Row-major vectors read from a Parquet file of (id, vector) rows.
struct Vectors {
    dim: usize,
    rows: Vec<f32>,
}

impl Vectors {
    fn len(&self) -> usize {
        self.rows.len() / self.dim
    }
}

/// Reads `twotower embed`'s format (also the index's `embeddings.parquet` and the peers script's
/// files) through the index crate's one (id, vector) reader.
fn read_vectors(path: &Path) -> Result<Vectors> {
    let (_, rows, dim) = twotower_index::read_embeddings_any(path)?;
    ensure!(!rows.is_empty(), "{}: no vectors", path.display());
    Ok(Vectors { dim, rows })
}

/// One measured search breadth.
#[derive(Debug, Serialize)]
struct AnnPoint {
    ef: usize,
    recall: f64,
    qps: f64,
}

/// What `bench ann --json` prints (the peers script reads `build_s` and `points`).
#[derive(Debug, Serialize)]
struct AnnReport {
    items: usize,
    queries: usize,
    dim: usize,
    k: usize,
    build_s: f64,
    builder: &'static str,
    build_threads: usize,
    search_threads: usize,
    exact_s: f64,
    params: HnswParams,
    points: Vec<AnnPoint>,
}

/// ann-benchmarks' recall of one answer: returned rows scoring at least the exact k-th score (minus
/// 1e-5) count, capped at `k`.
fn recall_of(found: &[twotower_index::Hit], kth: f32, k: usize) -> usize {
    found.iter().filter(|h| h.score >= kth - 1e-5).count().min(k)
}

fn ann(a: AnnBenchArgs, bar: &Bar) -> Result<()> {
    ensure!(a.k >= 1, "--k must be at least 1");
    ensure!(!a.ef.is_empty(), "--ef needs at least one value");
    ensure!(a.search_threads >= 1, "--search-threads must be at least 1");
    let items = read_vectors(&a.items)?;
    let queries = match &a.queries {
        Some(p) => {
            let q = read_vectors(p)?;
            ensure!(
                q.dim == items.dim,
                "{} has dimension {}, the items {} have {}",
                p.display(),
                q.dim,
                a.items.display(),
                items.dim
            );
            q
        }
        None => {
            ensure!(a.sample >= 1, "--sample must be at least 1");
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
            let mut rows: Vec<usize> = (0..items.len()).collect();
            rows.shuffle(&mut rng);
            rows.truncate(a.sample);
            let mut q = Vec::with_capacity(rows.len() * items.dim);
            for r in rows {
                q.extend_from_slice(&items.rows[r * items.dim..(r + 1) * items.dim]);
            }
            Vectors {
                dim: items.dim,
                rows: q,
            }
        }
    };
    let dim = items.dim;
    let params = HnswParams {
        m: a.m,
        ef_construction: a.ef_construction,
        ..HnswParams::default()
    };
    params.validate()?;

    let t = Instant::now();
    let hnsw = HnswIndex::build_with(dim, &items.rows, params, a.builder.into(), bar)
        .with_context(|| format!("building the graph over {}", a.items.display()))?;
    let build_s = t.elapsed().as_secs_f64();

    // Ground truth on all cores: the exact k-th best score of each query.
    let t = Instant::now();
    let exact = ExactIndex::from_rows(dim, &items.rows, None)?;
    let truth = exact.search_batch(&queries.rows, a.k, None)?;
    let exact_s = t.elapsed().as_secs_f64();
    let kth: Vec<f32> = truth
        .iter()
        .map(|hits| hits.last().map_or(f32::NEG_INFINITY, |h| h.score))
        .collect();
    let want: usize = truth.iter().map(|h| h.len().min(a.k)).sum();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.search_threads)
        .build()
        .context("cannot start the search threads")?;
    let qs: Vec<&[f32]> = queries.rows.chunks_exact(dim).collect();
    let mut points = Vec::new();
    for &ef in &a.ef {
        // Warm caches and per-thread scratch on a pass over (up to 1000) queries, then time them all.
        for q in qs.iter().take(1000) {
            hnsw.search_with_ef(q, a.k, ef, None)?;
        }
        let t = Instant::now();
        let found: Vec<Vec<twotower_index::Hit>> = if a.search_threads == 1 {
            qs.iter()
                .map(|q| hnsw.search_with_ef(q, a.k, ef, None))
                .collect::<twotower_index::Result<_>>()?
        } else {
            pool.install(|| {
                qs.par_iter()
                    .map(|q| hnsw.search_with_ef(q, a.k, ef, None))
                    .collect::<twotower_index::Result<_>>()
            })?
        };
        let secs = t.elapsed().as_secs_f64();
        let hits: usize = found
            .iter()
            .zip(&kth)
            .map(|(f, &kth)| recall_of(f, kth, a.k))
            .sum();
        points.push(AnnPoint {
            ef,
            recall: hits as f64 / want.max(1) as f64,
            qps: qs.len() as f64 / secs.max(1e-9),
        });
    }
    let report = AnnReport {
        items: items.len(),
        queries: qs.len(),
        dim,
        k: a.k,
        build_s,
        builder: match a.builder {
            Builder::Native => "native",
            Builder::HnswRs => "hnsw_rs",
        },
        build_threads: rayon::current_num_threads(),
        search_threads: a.search_threads,
        exact_s,
        params,
        points,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "{} items × d={}, {} queries, m={}, ef_construction={}: {} build {:.2} s on {} threads; exact truth {:.2} s",
        report.items,
        dim,
        report.queries,
        params.m,
        params.ef_construction,
        report.builder,
        build_s,
        report.build_threads,
        exact_s
    );
    println!(
        "{:>6} {:>10} {:>12}   ({} search thread{})",
        "ef",
        format!("recall@{}", a.k),
        "queries/s",
        a.search_threads,
        if a.search_threads == 1 { "" } else { "s" }
    );
    for p in &report.points {
        println!("{:>6} {:>10.4} {:>12.0}", p.ef, p.recall, p.qps);
    }
    Ok(())
}

/// `bench train`.
fn train_steps(a: TrainBenchArgs, bar: &Bar) -> Result<()> {
    use twotower_data::progress::Progress;
    crate::train_cmd::quiet_candle_pool();
    let mut config = match &a.config {
        Some(p) => twotower_towers::Config::from_toml_file(p)?,
        None if a.id_only => twotower_towers::Config::id_only(),
        None => twotower_towers::Config::default(),
    };
    if let Some(d) = a.dim {
        config.model.dim = d;
        if a.id_only {
            config.item.id_dim = d;
            config.user.id_dim = d;
        }
    }
    ensure!(a.steps > 0, "--steps must be at least 1");
    bar.start("loading dataset", None);
    let ds =
        twotower_data::Dataset::load(&a.data).with_context(|| format!("loading {}", a.data.display()))?;
    bar.finish();
    bar.start("building tables", None);
    let t0 = Instant::now();
    let mut bench = twotower_towers::StepBench::from_dataset(&ds, &config)?;
    let setup = t0.elapsed().as_secs_f64();
    bar.finish();
    bar.start("warm-up", Some(a.warmup as u64));
    for _ in 0..a.warmup {
        bench.step()?;
        bar.inc(1);
    }
    bar.finish();
    bar.start("timed steps", Some(a.steps as u64));
    let t = Instant::now();
    for _ in 0..a.steps {
        bench.step()?;
        bar.inc(1);
    }
    let secs = t.elapsed().as_secs_f64();
    bar.finish();
    let per_step = secs / a.steps as f64;
    let examples = (config.train.batch_size * a.steps) as f64;
    println!(
        "{} users × {} items, dim {}, batch {}, {} threads: {:.2} ms/step, {:.0} examples/s, \
         dense products {:.1} GFLOP/s; setup {setup:.1}s",
        ds.users.len(),
        ds.items.len(),
        config.model.dim,
        config.train.batch_size,
        rayon::current_num_threads(),
        per_step * 1e3,
        examples / secs,
        bench.step_flops() / per_step / 1e9,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use twotower_index::Hit;

    #[test]
    fn recall_counts_ties_at_the_kth_score_and_caps_at_k() {
        let hits = |s: &[f32]| {
            s.iter()
                .enumerate()
                .map(|(i, &score)| Hit { row: i as u32, score })
                .collect::<Vec<_>>()
        };
        assert_eq!(recall_of(&hits(&[0.9, 0.8, 0.7]), 0.8, 3), 2);
        // A different row with the same score as the k-th is a hit, not a miss.
        assert_eq!(recall_of(&hits(&[0.9, 0.8, 0.8]), 0.8, 3), 3);
        assert_eq!(recall_of(&hits(&[0.9, 0.9, 0.9, 0.9]), 0.5, 3), 3);
        assert_eq!(recall_of(&hits(&[]), 0.5, 3), 0);
    }
}
