//! `twotower bench synth-ceiling`: the best any recommender can do on `data synth`'s data, judged
//! exactly as `eval` judges a model.
//!
//! The generator's next-item distribution is known ([`twotower_data::SynthTruth`]), so ranking each
//! test user's unseen items by it gives the ceiling of recall on that data, and shows where the
//! ideal recommendations sit in the popularity ranking: a model that recommends from the head of
//! the catalogue is doing the right thing when the ideal does too.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use twotower_data::{Dataset, Progress, SynthOptions, SynthTruth};
use twotower_towers::{evaluate_rankings, EvalSample, RankingQuery};

/// Arguments of `bench synth-ceiling`.
#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// A split dataset made from `data synth`'s output (directly, or exported and imported again).
    #[arg(long)]
    pub data: PathBuf,
    /// `data synth --users` of that data.
    #[arg(long)]
    pub users: u32,
    /// `data synth --items` of that data.
    #[arg(long)]
    pub items: u32,
    /// `data synth --interactions` of that data.
    #[arg(long)]
    pub interactions: u64,
    /// `data synth --clusters` of that data.
    #[arg(long)]
    pub clusters: u32,
    /// `data synth --seed` of that data.
    #[arg(long)]
    pub synth_seed: u64,
    /// `data synth --affinity` of that data.
    #[arg(long, default_value_t = 0.8)]
    pub affinity: f64,
    /// `data synth --drift` of that data.
    #[arg(long, default_value_t = 0.3)]
    pub drift: f64,
    /// Cut-offs.
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    pub k: Vec<usize>,
    /// Judge a seeded sample of this many test users, as `eval --sample-users` (0: all).
    #[arg(long, default_value_t = 5000)]
    pub sample_users: usize,
    /// Seed of the user sample (`eval --seed`).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs `bench synth-ceiling`.
pub fn ceiling(a: CeilingArgs, progress: &dyn Progress) -> Result<()> {
    if a.k.is_empty() || a.k.contains(&0) {
        bail!("--k needs positive cut-offs, e.g. 10,100");
    }
    let o = SynthOptions {
        users: a.users,
        items: a.items,
        interactions: a.interactions,
        clusters: a.clusters,
        seed: a.synth_seed,
        affinity: a.affinity,
        drift: a.drift,
        ..SynthOptions::default()
    };
    progress.start("loading dataset", None);
    let ds = Dataset::load(&a.data).with_context(|| format!("loading dataset {}", a.data.display()))?;
    progress.finish();
    progress.start("rebuilding the generator's world", None);
    let truth = SynthTruth::new(&o).context("the synth options")?;
    progress.finish();
    // Dense ids of the dataset against the generator's indices ("u17" is user 17, "i5" item 5).
    let index_of = |id: &str, prefix: char| id.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok());
    let user_index: Vec<Option<u32>> = ds.users.ids().iter().map(|id| index_of(id, 'u')).collect();
    let mut dense_item = vec![u32::MAX; a.items as usize];
    for (dense, id) in ds.items.ids().iter().enumerate() {
        if let Some(i) = index_of(id, 'i').filter(|&i| i < a.items) {
            dense_item[i as usize] = dense as u32;
        }
    }
    let matched = user_index
        .iter()
        .filter(|u| u.is_some_and(|u| u < a.users))
        .count();
    if matched == 0 {
        bail!(
            "{}: no user id has the form u<N> with N < {}: this is not data synth's output, or --users differs",
            a.data.display(),
            a.users
        );
    }
    let sample = EvalSample {
        max_users: a.sample_users,
        seed: a.seed,
    };
    let rank = |q: RankingQuery<'_>| -> Vec<u32> {
        let Some(u) = user_index.get(q.user as usize).copied().flatten() else {
            return Vec::new();
        };
        // Items the dataset lacks cannot be recommended; seen ones are skipped as for a model.
        let skip = |i: u32| {
            let d = dense_item[i as usize];
            d == u32::MAX || q.seen.binary_search(&d).is_ok()
        };
        truth
            .top_k(u, q.first_test_ts, q.k, &skip)
            .into_iter()
            .map(|i| dense_item[i as usize])
            .collect()
    };
    progress.start("ranking by the generator's distribution", None);
    let r = evaluate_rankings(&ds, &a.k, sample, &rank)?;
    let pop = twotower_towers::popularity_baseline_sample(&ds, &a.k, sample)?;
    progress.finish();
    match r.sampled_from {
        Some(all) => println!(
            "{} of {all} test users (a sample, seed {}), {} items",
            r.users,
            a.seed,
            ds.items.len()
        ),
        None => println!("{} test users, {} items", r.users, ds.items.len()),
    }
    crate::train_cmd::print_eval_table(&[("ceiling", &r), ("popularity", &pop)]);
    Ok(())
}
