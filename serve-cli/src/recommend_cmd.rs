//! `twotower recommend`: the offline batch job. Top-k for every user (or those listed in a file),
//! computed in parallel blocks on one consistent snapshot of model and index, streamed to Parquet or
//! JSON lines.

use crate::engine::{EngineArgs, QueryOpts};
use crate::rec_writer::{RecWriter, UserRecs};
use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;
use twotower_data::progress::Progress;

/// Arguments of `recommend`.
#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// A file of user ids, one per line (`#` starts a comment). Users unknown to the dataset get the
    /// popularity fallback and are counted in the summary.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub users: Option<PathBuf>,
    /// Every user of the dataset.
    #[arg(long)]
    pub all: bool,
    /// Items per user.
    #[arg(long, short, default_value_t = 10)]
    pub k: usize,
    /// HNSW search breadth.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Rank with the exact index (slower, no approximation).
    #[arg(long)]
    pub exact: bool,
    /// Keep items the user already interacted with in training (excluded by default).
    #[arg(long)]
    pub include_seen: bool,
    /// Output file: `.parquet` or `.jsonl` (rows: user, rank, item, score).
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Users per parallel block (one Parquet record batch each).
const BLOCK: usize = 2048;

/// Runs the batch job and prints a one-line summary.
pub fn run(a: RecommendArgs, progress: &dyn Progress) -> Result<()> {
    if a.k == 0 || a.k > 10_000 {
        bail!("--k must be between 1 and 10000, not {}", a.k);
    }
    let engine = a.engine.open()?;
    let state = engine.state();
    let users: Vec<String> = if a.all {
        state.catalog.data().users.ids().to_vec()
    } else {
        let path = a.users.as_ref().expect("clap requires --users or --all");
        read_user_list(path)?
    };
    let opts = QueryOpts {
        k: a.k,
        ef: a.ef,
        exact: a.exact,
        exclude_seen: !a.include_seen,
        genre: None,
    };
    let started = Instant::now();
    let mut writer = RecWriter::create(&a.out)?;
    progress.start("recommend", Some(users.len() as u64));
    let mut fallback = 0usize;
    for block in users.chunks(BLOCK) {
        let answers: Vec<_> = block
            .par_iter()
            .map(|u| {
                state
                    .recommend_user(u, &opts)
                    .with_context(|| format!("user {u:?}"))
            })
            .collect::<Result<_>>()?;
        fallback += answers
            .iter()
            .filter(|ans| ans.source == crate::engine::Source::Popularity)
            .count();
        let recs: Vec<UserRecs<'_>> = block
            .iter()
            .zip(&answers)
            .map(|(u, ans)| UserRecs {
                user: u,
                items: ans
                    .results
                    .iter()
                    .map(|s| (s.info.id.as_str(), s.score))
                    .collect(),
            })
            .collect();
        writer.write(&recs)?;
        progress.inc(block.len() as u64);
    }
    progress.finish();
    let rows = writer.finish()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {rows} rows for {} users to {} in {secs:.2} s ({:.0} users/s){}",
        users.len(),
        a.out.display(),
        users.len() as f64 / secs.max(1e-9),
        if fallback > 0 {
            format!("; {fallback} unknown user(s) got the popularity fallback")
        } else {
            String::new()
        }
    );
    Ok(())
}

fn read_user_list(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let users: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if users.is_empty() {
        bail!("{}: no user ids (one per line expected)", path.display());
    }
    Ok(users)
}
