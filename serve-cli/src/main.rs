//! `twotower`: the command line over the data, towers and index crates. Flags are parsed here, resolved
//! into validated arguments, and handed to the libraries; only this crate prints.

mod data_cmd;
mod progress;
mod train_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A two-tower retrieval recommender: import an interaction log, train user and item towers,
/// build an ANN index of the items and ask for recommendations.
///
/// New here? `twotower quickstart` runs the whole pipeline on synthetic data.
/// With real data: `data import` → `data split` → `train` → `eval` → `index build` → `query`.
#[derive(Debug, Parser)]
#[command(name = "twotower", version, propagate_version = true, max_term_width = 110)]
struct Cli {
    /// Worker threads for training, scoring and index builds (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import, split, inspect, synthesise or download interaction datasets.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Train user and item towers on a dataset (uses train.parquet when the dataset is split).
    Train(train_cmd::TrainArgs),
    /// Recall, NDCG and hit rate of a model on the test split, with the popularity baseline.
    Eval(train_cmd::EvalArgs),
    /// Write user or item embeddings to Parquet (id, vector) for other tools.
    Embed(train_cmd::EmbedArgs),
}

fn main() -> ExitCode {
    // `twotower recommend … | head` must end quietly, as Unix tools do, not panic on a closed pipe.
    reset_sigpipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(n) = cli.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        // candle's CPU kernels size their pools from RAYON_NUM_THREADS; rayon's global pool from the builder.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot size the thread pool: {e}"))?;
    }
    let bar = progress::Bar::new(cli.quiet);
    match cli.command {
        Command::Data(cmd) => data_cmd::run(cmd, &bar),
        Command::Train(a) => train_cmd::train(a, &bar),
        Command::Eval(a) => train_cmd::eval(a, &bar),
        Command::Embed(a) => train_cmd::embed(a, &bar),
    }
}

#[cfg(unix)]
fn reset_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn reset_sigpipe() {}
