//! `twotower`: the command line over the data, towers and index crates. Flags are parsed here, resolved
//! into validated arguments, and handed to the libraries; only this crate prints.

mod bench_cmd;
mod ceiling_cmd;
mod data_cmd;
mod engine_args;
mod index_cmd;
mod progress;
mod rec_writer;
mod recommend_cmd;
mod report_cmd;
mod serve_cmd;
mod shell;
mod term;
mod train_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// Synthetic data (or your MovieLens copy) → split → train → eval → index → query shell, in one go.
    Quickstart(QuickstartArgs),
    /// Import, split, inspect, synthesise or download interaction datasets.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Train user and item towers on a dataset (uses train.parquet when the dataset is split).
    Train(Box<train_cmd::TrainArgs>),
    /// Recall, NDCG and hit rate of a model on the test split, with the popularity baseline.
    Eval(train_cmd::EvalArgs),
    /// Write user or item embeddings to Parquet (id, vector) for other tools.
    Embed(train_cmd::EmbedArgs),
    /// Build, rebuild, extend, check or prune the ANN index of a model's item embeddings.
    #[command(subcommand)]
    Index(index_cmd::IndexCommand),
    /// Interactive recommendation shell (reads commands from stdin when it is not a terminal).
    Query(QueryArgs),
    /// Batch job: top-k for every user (or a list) to Parquet or JSON lines.
    Recommend(recommend_cmd::RecommendArgs),
    /// Serve recommendations over HTTP, following index rebuilds without downtime.
    Serve(serve_cmd::ServeArgs),
    /// One self-contained HTML page about a model: data, training runs, evaluation, index, examples.
    Report(report_cmd::ReportArgs),
    /// Benchmarks that print a table: query latency percentiles, ANN build/recall/queries per second.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

/// Arguments of `query`.
#[derive(Debug, clap::Args)]
struct QueryArgs {
    #[command(flatten)]
    engine: engine_args::EngineArgs,
    /// Output format (default: table on a terminal, jsonl on a pipe).
    #[arg(long, value_enum)]
    format: Option<shell::Format>,
    /// Results per answer.
    #[arg(long, short, default_value_t = 10)]
    k: usize,
    /// HNSW search breadth.
    #[arg(long, default_value_t = 64)]
    ef: usize,
}

/// Arguments of `quickstart`.
#[derive(Debug, clap::Args)]
struct QuickstartArgs {
    /// Use a MovieLens folder (ml-100k or ml-1m layout, detected) instead of synthetic data.
    #[arg(long, value_name = "DIR")]
    movielens: Option<PathBuf>,
    /// Where the dataset, model and index go.
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Synthetic users.
    #[arg(long, default_value_t = 2000)]
    users: u32,
    /// Synthetic items.
    #[arg(long, default_value_t = 1000)]
    items: u32,
    /// Synthetic interactions.
    #[arg(long, default_value_t = 100_000)]
    interactions: u64,
    /// Training epochs (default: the trainer's).
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed for data, split and training.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop after building the index instead of opening the shell.
    #[arg(long)]
    no_shell: bool,
}

fn main() -> ExitCode {
    // `twotower recommend … | head` must end quietly, as Unix tools do, not panic on a closed pipe.
    reset_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap echoes the offending value: redacted (a password in a milvus:// address) and with
        // control characters shown, like every other error.
        Err(e) if e.use_stderr() => {
            eprint!("{}", term::text(&e.render().to_string()));
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors echo data (ids, titles, addresses): no control character or secret reaches the terminal.
            eprintln!("error: {}", term::text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(n) = cli.threads {
        anyhow::ensure!(
            (1..=MAX_THREADS).contains(&n),
            "--threads must be between 1 and {MAX_THREADS}, not {n}"
        );
        // candle's CPU kernels size their pools from RAYON_NUM_THREADS; rayon's global pool from the builder.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot size the thread pool: {e}"))?;
    }
    let bar = progress::Bar::new(cli.quiet);
    dispatch(cli.command, &bar)
}

/// The most worker threads `--threads` (and `serve --workers`) may ask for: each has its own stack.
pub(crate) const MAX_THREADS: usize = 4096;

/// The largest `eval --k` cut-off.
const MAX_EVAL_K: usize = 1_000_000;

fn dispatch(command: Command, bar: &progress::Bar) -> anyhow::Result<()> {
    match command {
        Command::Quickstart(a) => quickstart(a, bar),
        Command::Data(cmd) => data_cmd::run(cmd, bar),
        Command::Train(a) => train_cmd::train(*a, bar),
        Command::Eval(a) => {
            // Each cut-off sizes per-user top-k buffers: refused before they are allocated.
            if let Some(k) = a.k.iter().find(|&&k| k > MAX_EVAL_K) {
                anyhow::bail!("--k {k} is over the largest cut-off eval ranks to ({MAX_EVAL_K})");
            }
            train_cmd::eval(a, bar)
        }
        Command::Embed(a) => train_cmd::embed(a, bar),
        Command::Index(cmd) => index_cmd::run(cmd, bar),
        Command::Query(a) => {
            let engine = a.engine.open()?;
            let opts = twotower_cli::recommender::QueryOpts {
                k: a.k,
                ef: a.ef,
                ..Default::default()
            };
            let result = shell::run(&engine, opts, a.format);
            // The process ends here: freeing a large catalogue's millions of small allocations one
            // by one takes most of a second at 1 M items, and the OS takes the pages back at once.
            std::mem::forget(engine);
            result
        }
        Command::Recommend(a) => recommend_cmd::run(a, bar),
        Command::Serve(a) => serve_cmd::run(a),
        Command::Bench(cmd) => bench_cmd::run(cmd, bar),
        Command::Report(a) => report_cmd::run(a, bar),
    }
}

/// Runs the documented pipeline through the same parser as the command line, printing each command
/// so a newcomer sees what to type next time.
fn quickstart(q: QuickstartArgs, bar: &progress::Bar) -> anyhow::Result<()> {
    let path = |sub: &str| q.out.join(sub).display().to_string();
    let (data, model, index) = (path("data"), path("model"), path("index"));
    let seed = q.seed.to_string();
    let mut steps: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match &q.movielens {
        Some(dir) => {
            let format = if dir.join("u.data").is_file() {
                "movielens-100k"
            } else if dir.join("ratings.dat").is_file() {
                "movielens-1m"
            } else {
                anyhow::bail!(
                    "{} holds neither u.data (MovieLens 100K) nor ratings.dat (MovieLens 1M)",
                    dir.display()
                );
            };
            steps.push(s(&[
                "data",
                "import",
                "--format",
                format,
                &dir.display().to_string(),
                "--out",
                &data,
            ]));
        }
        None => steps.push(s(&[
            "data",
            "synth",
            "--out",
            &data,
            "--users",
            &q.users.to_string(),
            "--items",
            &q.items.to_string(),
            "--interactions",
            &q.interactions.to_string(),
            "--seed",
            &seed,
        ])),
    }
    steps.push(s(&[
        "data",
        "split",
        "--data",
        &data,
        "--strategy",
        "temporal",
        "--test-fraction",
        "0.2",
    ]));
    let mut train = s(&["train", "--data", &data, "--out", &model, "--seed", &seed]);
    if let Some(e) = q.epochs {
        train.extend(s(&["--epochs", &e.to_string()]));
    }
    steps.push(train);
    steps.push(s(&["eval", "--model", &model, "--data", &data]));
    steps.push(s(&["index", "build", "--model", &model, "--index", &index]));
    let report = path("report.html");
    steps.push(s(&[
        "report", "--model", &model, "--data", &data, "--index", &index, "--out", &report,
    ]));
    if !q.no_shell {
        steps.push(s(&["query", "--model", &model, "--index", &index]));
    }
    for argv in steps {
        eprintln!("\n$ twotower {}", argv.join(" "));
        let cli = Cli::try_parse_from(std::iter::once("twotower".to_string()).chain(argv))
            .map_err(|e| anyhow::anyhow!("internal: quickstart built a bad command line: {e}"))?;
        dispatch(cli.command, bar)?;
    }
    Ok(())
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
