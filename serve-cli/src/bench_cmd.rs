//! `twotower bench query`: latency of the answers people and services ask for, measured the way they
//! are served (one query at a time on one thread, embedding + search, no terminal I/O), as a table.

use crate::engine::{Answer, EngineArgs, QueryOpts, State};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// p50/p90/p99 latency of user, recent-items and similar-item queries over the live index.
    Query(QueryBenchArgs),
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
pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Query(a) => query(a),
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

fn time(n: usize, mut f: impl FnMut(usize) -> Result<Answer>) -> Result<(Vec<f64>, Vec<f64>)> {
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
    let st: std::sync::Arc<State> = engine.state();
    let data = st.catalog.data();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    // Users with training history: the ones a service answers for.
    let users: Vec<u32> = (0..data.users.len() as u32)
        .filter(|&u| !st.catalog.seen(u).is_empty())
        .collect();
    if users.is_empty() {
        bail!("the dataset has no user with training interactions");
    }
    let sample: Vec<u32> = (0..a.queries)
        .map(|_| users[rng.gen_range(0..users.len())])
        .collect();
    let ids: Vec<&str> = sample.iter().map(|&u| data.users.id(u)).collect();
    let recents: Vec<Vec<String>> = sample
        .iter()
        .map(|&u| {
            let h = st.catalog.history_items(u);
            h[h.len().saturating_sub(a.recent)..]
                .iter()
                .map(|&i| data.items.id(i).to_string())
                .collect()
        })
        .collect();
    let items: Vec<&str> = (0..a.queries)
        .map(|_| {
            let row = rng.gen_range(0..st.live.index.ids().len());
            st.live.index.id(row as u32)
        })
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
        st.live.index.live_len(),
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
