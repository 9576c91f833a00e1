//! `twotower data …`: flags for import, split, synth, stats and download, resolved into the data
//! crate's option structs; the work happens in `twotower_data`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use twotower_data as data;
use twotower_data::progress::Progress;

/// Dataset commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Import a raw interaction log (MovieLens, CSV/TSV, JSON, Parquet) into a dataset directory, or
    /// append one (a day's partition) to a dataset with --append-to.
    Import(ImportArgs),
    /// Split a dataset into train.parquet and test.parquet (per user, temporal or random).
    Split(SplitArgs),
    /// Generate a synthetic dataset with planted clusters (deterministic by --seed).
    Synth(SynthArgs),
    /// Print counts, density, per-user/item quantiles, top items and the time range of a dataset.
    Stats(StatsArgs),
    /// Write a dataset's tables as plain Parquet (interactions, items, users) for DuckDB, Spark,
    /// polars or pandas.
    Export(ExportArgs),
    /// Download an official MovieLens release, verify its checksum and unpack it.
    Download(DownloadArgs),
    /// Write a dataset's serving tables (`serving/`: each user's history and seen items, item
    /// counts, popularity) from its training part, so `query`, `serve` and `recommend` map them
    /// instead of reading the interactions. `import` and `split` write them already; this is for a
    /// dataset written by an older build, or an unsplit `synth` one. The dataset's files and fingerprint are unchanged.
    Serving(ServingArgs),
}

/// Arguments of `data serving`.
#[derive(Debug, Args)]
pub struct ServingArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: PathBuf,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// MovieLens 100K folder (u.data, u.item, u.user).
    #[value(name = "movielens-100k", alias = "ml-100k")]
    Movielens100k,
    /// MovieLens 1M folder (ratings.dat, movies.dat, users.dat).
    #[value(name = "movielens-1m", alias = "ml-1m")]
    Movielens1m,
    /// Comma-separated file with a header row.
    Csv,
    /// Tab-separated file with a header row.
    Tsv,
    /// Nested JSON object {"user": {"item": rating, ...}, ...}.
    Json,
    /// Parquet: a file, a directory of part files, or a hive-partitioned tree (key=value dirs).
    Parquet,
}

/// Units of integer time values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeUnitArg {
    /// Seconds since the epoch.
    S,
    /// Milliseconds since the epoch.
    Ms,
    /// Microseconds since the epoch.
    Us,
    /// Nanoseconds since the epoch.
    Ns,
}

/// Text encodings of CSV/TSV input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    /// UTF-8 (invalid bytes are an error).
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// Latin-1 / Windows-1252.
    #[value(name = "latin-1", alias = "latin1")]
    Latin1,
}

/// Policies for repeated (user, item) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DedupArg {
    /// Keep the latest occurrence by time (on equal times, the later record).
    Latest,
    /// Keep the earliest occurrence.
    Earliest,
    /// Keep every occurrence.
    KeepAll,
}

/// `data import` flags.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input format.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// The log file, the MovieLens folder, or for parquet a file, a directory of part files or a
    /// hive-partitioned tree (every *.parquet beneath it; _SUCCESS, *.crc and names starting with _
    /// or . are skipped; key=value directories are columns).
    pub src: PathBuf,
    /// Dataset directory to write (replaced atomically if it exists; nothing is written on error).
    #[arg(long, required_unless_present = "append_to", conflicts_with = "append_to")]
    pub out: Option<PathBuf>,
    /// Add this log (a day's partition, say) to an existing dataset instead: its users and items
    /// keep their dense ids, new ones are appended, dedup runs over old and new rows together,
    /// --min-rating applies to the new rows, minimum counts do not apply, a split is dropped (run
    /// `data split --test-from last-append`), and the dataset is swapped in atomically.
    #[arg(long, value_name = "DATASET")]
    pub append_to: Option<PathBuf>,
    /// Column holding the user id (csv/tsv/parquet).
    #[arg(long, default_value = "user")]
    pub user_col: String,
    /// Column holding the item id (csv/tsv/parquet).
    #[arg(long, default_value = "item")]
    pub item_col: String,
    /// Column holding a rating or weight (default: every interaction weighs 1).
    #[arg(long)]
    pub weight_col: Option<String>,
    /// Column holding the time: epoch seconds or a date-time like 2001-02-03T04:05:06Z
    /// (default: the row's position in the file, so "latest" means "last in the file").
    /// Parquet timestamps of any unit and dates are converted to epoch seconds.
    #[arg(long)]
    pub time_col: Option<String>,
    /// Unit of integer times (csv/tsv/parquet). In seconds, the default, integers too large to be
    /// seconds (like 1609459200000) are refused with a hint, never guessed.
    #[arg(long, value_enum, default_value = "s")]
    pub time_unit: TimeUnitArg,
    /// Item features: a CSV/TSV with the item column plus optional `title`, `genres` (A|B) and further
    /// categorical columns, or another dataset's items.parquet.
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// User features: a CSV/TSV with the user column plus categorical columns, or another dataset's
    /// users.parquet.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Text encoding of csv/tsv input (MovieLens files are always read as Latin-1).
    #[arg(long, value_enum, default_value = "utf-8")]
    pub encoding: EncodingArg,
    /// Keep only interactions whose rating/weight is at least this (applied after dedup).
    #[arg(long)]
    pub min_rating: Option<f32>,
    /// Drop users with fewer interactions; applied together with --min-item-interactions,
    /// repeatedly, until every remaining user and item qualifies.
    #[arg(long, default_value_t = 0)]
    pub min_user_interactions: u32,
    /// Drop items with fewer interactions (see --min-user-interactions).
    #[arg(long, default_value_t = 0)]
    pub min_item_interactions: u32,
    /// Repeated (user, item) pairs: keep the latest by time (the default), the earliest, or all.
    #[arg(long, value_enum, default_value = "latest")]
    pub dedup: DedupArg,
}

/// Split strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// Each user's latest interactions go to test (ties by item id).
    Temporal,
    /// A random subset of each user's interactions goes to test (--seed).
    Random,
}

/// `data split` flags.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Dataset directory (updated in place, atomically).
    #[arg(long)]
    pub data: PathBuf,
    /// How test interactions are chosen.
    #[arg(long, value_enum, default_value = "temporal")]
    pub strategy: StrategyArg,
    /// Fraction of each user's interactions held out (at least 1, at most all but 1).
    #[arg(long, default_value_t = 0.2, conflicts_with = "test_last")]
    pub test_fraction: f64,
    /// Hold out this many interactions per user instead of a fraction.
    #[arg(long)]
    pub test_last: Option<u32>,
    /// Hold out every interaction at or after this time instead (a date such as 2026-12-06, a
    /// date-time, epoch seconds, or `last-append`: the start of the newest `--append-to`), for any
    /// user: a daily job's protocol, trained on what came before and judged on the new day.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["test_fraction", "test_last", "strategy"])]
    pub test_from: Option<String>,
    /// Seed for --strategy random.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Users with fewer interactions stay wholly in train.
    #[arg(long, default_value_t = 2)]
    pub min_user_interactions: u32,
}

/// `data synth` flags.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Dataset directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of users.
    #[arg(long, default_value_t = 2_000)]
    pub users: u32,
    /// Number of items.
    #[arg(long, default_value_t = 1_000)]
    pub items: u32,
    /// Number of interactions (streamed to disk; tested up to 50 000 000).
    #[arg(long, default_value_t = 100_000)]
    pub interactions: u64,
    /// Number of latent clusters of users and items.
    #[arg(long, default_value_t = 16)]
    pub clusters: u32,
    /// Generator seed: the same seed gives the same dataset.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Probability that an interaction follows the user's cluster rather than global popularity.
    #[arg(long, default_value_t = 0.8)]
    pub affinity: f64,
    /// How far users drift towards their secondary cluster by the end of the time range (0..1).
    #[arg(long, default_value_t = 0.3)]
    pub drift: f64,
}

/// `data stats` flags.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: PathBuf,
    /// How many popular items to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `data export` flags.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: PathBuf,
    /// Directory to write (replaced atomically if it is an earlier export).
    #[arg(long)]
    pub out: PathBuf,
}

/// Downloadable datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DownloadWhich {
    /// MovieLens 100K.
    #[value(name = "movielens-100k", alias = "ml-100k")]
    Movielens100k,
    /// MovieLens 1M.
    #[value(name = "movielens-1m", alias = "ml-1m")]
    Movielens1m,
}

/// `data download` flags.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Which release.
    #[arg(value_enum)]
    pub which: DownloadWhich,
    /// Folder to unpack into (the release's own folder is created inside it).
    #[arg(long)]
    pub to: PathBuf,
    /// Fetch from this URL instead of files.grouplens.org (a mirror).
    #[arg(long)]
    pub url: Option<String>,
    /// Expected MD5 of the zip instead of the published one (with --url).
    #[arg(long)]
    pub md5: Option<String>,
}

/// Runs one `twotower data` command.
pub fn run(cmd: DataCommand, progress: &dyn Progress) -> Result<()> {
    match cmd {
        DataCommand::Import(a) => import(a, progress),
        DataCommand::Split(a) => split(a, progress),
        DataCommand::Synth(a) => synth(a, progress),
        DataCommand::Stats(a) => stats(a),
        DataCommand::Export(a) => export(a, progress),
        DataCommand::Download(a) => download(a, progress),
        DataCommand::Serving(a) => {
            let t = twotower_data::write_serving(&a.data)?;
            println!(
                "serving tables of {}: {} users, {} items, {} training interactions",
                a.data.display(),
                t.users(),
                t.items(),
                t.total()
            );
            Ok(())
        }
    }
}

fn import(a: ImportArgs, progress: &dyn Progress) -> Result<()> {
    let format = match a.format {
        FormatArg::Movielens100k => data::ImportFormat::Movielens100k,
        FormatArg::Movielens1m => data::ImportFormat::Movielens1m,
        FormatArg::Csv => data::ImportFormat::Csv,
        FormatArg::Tsv => data::ImportFormat::Tsv,
        FormatArg::Json => data::ImportFormat::Json,
        FormatArg::Parquet => data::ImportFormat::Parquet,
    };
    let mut o = data::ImportOptions::new(format);
    o.columns = data::ColumnMap {
        user: a.user_col,
        item: a.item_col,
        weight: a.weight_col,
        time: a.time_col,
    };
    o.items = a.items;
    o.users = a.users;
    o.encoding = match a.encoding {
        EncodingArg::Utf8 => data::TextEncoding::Utf8,
        EncodingArg::Latin1 => data::TextEncoding::Latin1,
    };
    o.time_unit = match a.time_unit {
        TimeUnitArg::S => data::TimeUnit::S,
        TimeUnitArg::Ms => data::TimeUnit::Ms,
        TimeUnitArg::Us => data::TimeUnit::Us,
        TimeUnitArg::Ns => data::TimeUnit::Ns,
    };
    o.min_rating = a.min_rating;
    o.min_user_interactions = a.min_user_interactions;
    o.min_item_interactions = a.min_item_interactions;
    o.dedup = match a.dedup {
        DedupArg::Latest => data::Dedup::Latest,
        DedupArg::Earliest => data::Dedup::Earliest,
        DedupArg::KeepAll => data::Dedup::KeepAll,
    };
    let t = std::time::Instant::now();
    let out = match (a.out, a.append_to) {
        (_, Some(ds)) => {
            let r = data::append(&a.src, &ds, &o, progress)
                .with_context(|| format!("appending {} to {}", a.src.display(), ds.display()))?;
            let range = r.time_range.map_or(String::new(), |(lo, hi)| {
                format!(
                    ", from {} to {}",
                    data::format_epoch_seconds(lo),
                    data::format_epoch_seconds(hi)
                )
            });
            println!(
                "appended {} of {} rows to {} ({} new users, {} new items{range}); it now holds {} interactions, in {:.2}s",
                r.rows_added,
                r.rows_read,
                ds.display(),
                r.new_users,
                r.new_items,
                r.interactions,
                t.elapsed().as_secs_f64()
            );
            if r.duplicates + r.below_min_rating > 0 {
                println!(
                    "removed: {} duplicate pairs (old or new rows), {} new rows below --min-rating",
                    r.duplicates, r.below_min_rating
                );
            }
            if r.side_rows_kept_as_they_were > 0 {
                println!(
                    "{} side-file rows name ids the dataset already has: their features were kept as they were",
                    r.side_rows_kept_as_they_were
                );
            }
            if r.split_dropped {
                println!(
                    "the split was dropped (it described the old log): twotower data split --data {} --test-from last-append",
                    ds.display()
                );
            }
            return Ok(());
        }
        (Some(out), None) => out,
        (None, None) => bail!("give --out DATASET, or --append-to DATASET"),
    };
    let r =
        data::import(&a.src, &out, &o, progress).with_context(|| format!("importing {}", a.src.display()))?;
    println!(
        "imported {} interactions ({} users, {} items with interactions; {} user rows, {} item rows) into {} in {:.2}s",
        r.interactions,
        r.interacting_users,
        r.interacting_items,
        r.user_rows,
        r.item_rows,
        out.display(),
        t.elapsed().as_secs_f64()
    );
    let c = r.cleaned;
    if c.duplicates + c.below_min_rating + c.min_count > 0 {
        println!(
            "removed: {} duplicate pairs, {} below --min-rating, {} by minimum counts ({} rounds)",
            c.duplicates, c.below_min_rating, c.min_count, c.min_count_rounds
        );
    }
    for w in &r.warnings {
        eprintln!("warning: {}", crate::term::text(w));
    }
    Ok(())
}

fn split(a: SplitArgs, progress: &dyn Progress) -> Result<()> {
    let strategy = match (&a.test_from, a.strategy) {
        (Some(t), _) if t == "last-append" => data::SplitStrategy::From {
            time: data::last_append_start(&a.data)?,
        },
        (Some(t), _) => data::SplitStrategy::From {
            time: data::parse_time(t).map_err(|m| anyhow::anyhow!("--test-from: {m}"))?,
        },
        (None, StrategyArg::Temporal) => data::SplitStrategy::Temporal,
        (None, StrategyArg::Random) => data::SplitStrategy::Random { seed: a.seed },
    };
    let o = data::SplitOptions {
        strategy,
        holdout: match a.test_last {
            Some(n) => data::Holdout::LastN(n),
            None => data::Holdout::Fraction(a.test_fraction),
        },
        min_user_interactions: a.min_user_interactions,
    };
    let r = data::split(&a.data, &o, progress).with_context(|| format!("splitting {}", a.data.display()))?;
    println!(
        "split {}: train {} / test {} interactions; {} users in test, {} users train-only",
        a.data.display(),
        r.train,
        r.test,
        r.test_users,
        r.train_only_users
    );
    Ok(())
}

fn synth(a: SynthArgs, progress: &dyn Progress) -> Result<()> {
    let o = data::SynthOptions {
        users: a.users,
        items: a.items,
        interactions: a.interactions,
        clusters: a.clusters,
        seed: a.seed,
        affinity: a.affinity,
        drift: a.drift,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let r = data::synth(&a.out, &o, progress).with_context(|| format!("generating {}", a.out.display()))?;
    println!(
        "synthesised {} interactions, {} users, {} items into {} in {:.2}s",
        r.interactions,
        r.users,
        r.items,
        a.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn stats(a: StatsArgs) -> Result<()> {
    let ds = data::Dataset::load(&a.data).with_context(|| format!("loading {}", a.data.display()))?;
    let s = data::Stats::of(&ds, a.top);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        // Top items' titles come from the catalogue: shown escaped, never raw.
        print!("{}", crate::term::text(&s.to_string()));
    }
    Ok(())
}

fn export(a: ExportArgs, progress: &dyn Progress) -> Result<()> {
    let r = data::export(&a.data, &a.out, progress)
        .with_context(|| format!("exporting {} to {}", a.data.display(), a.out.display()))?;
    println!(
        "exported {} ({} interactions) to {}",
        r.files.join(", "),
        r.interactions,
        a.out.display()
    );
    Ok(())
}

fn download(a: DownloadArgs, progress: &dyn Progress) -> Result<()> {
    let which = match a.which {
        DownloadWhich::Movielens100k => data::MovieLens::Ml100k,
        DownloadWhich::Movielens1m => data::MovieLens::Ml1m,
    };
    let mut src = which.official();
    if a.md5.is_some() && a.url.is_none() {
        bail!("--md5 only makes sense with --url");
    }
    if let Some(u) = a.url {
        src.url = u;
    }
    if let Some(m) = a.md5 {
        src.md5 = m;
    }
    let dir = data::download(&src, &a.to, progress).with_context(|| format!("downloading {}", src.url))?;
    println!(
        "downloaded and verified {} (md5 {}) into {}",
        src.url,
        src.md5,
        dir.display()
    );
    Ok(())
}
