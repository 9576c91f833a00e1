//! `twotower train|eval|embed`: flags → a validated [`Config`] → the towers library; results printed here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use twotower_data::progress::Progress;
use twotower_data::{AtomicFile, Dataset};
use twotower_towers::{
    Config, EvalReport, EvalSample, LrDecay, Model, PlanMode, PlanShape, SparseOptimizerKind, TrainOptions,
    WarmStart,
};

/// Arguments of `train`. Every model switch lives in the config file (`--print-config` shows the
/// defaults); the flags below override it.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset directory (`data import`, then `data split` so evaluation has a test part).
    #[arg(long)]
    pub data: PathBuf,
    /// Model directory to write (re-written atomically after every epoch).
    #[arg(long)]
    pub out: PathBuf,
    /// TOML config file; flags given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the resolved config as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Continue an interrupted run with the same flags: its checkpoint in --out, or the hidden
    /// directories beside --out of a temperature search, refit or ensemble member.
    #[arg(long)]
    pub resume: bool,
    /// Warm start: begin from this model (yesterday's) instead of a fresh one. Rows of users, items
    /// and feature values it knows are copied by string id, new ones start fresh, dense layers are
    /// copied; one run per member at its temperature, no search, no refit, one epoch over every
    /// training row unless --epochs (the policy the temporal replay benchmark chose). Its settings
    /// are the defaults here (flags still override training settings); a setting that changes the
    /// networks (dim, members, features, layers) is refused, naming it.
    #[arg(long, value_name = "MODEL")]
    pub init_from: Option<PathBuf>,
    /// With --init-from: train on the training rows at or after this time only (a date such as
    /// 2026-12-06, a date-time, or epoch seconds), e.g. the days added since the model was
    /// trained; histories still include older rows.
    #[arg(long, value_name = "TIME", requires = "init_from", value_parser = twotower_data::parse_time)]
    pub train_from: Option<i64>,
    /// With --train-from: also train on this share of the older rows (0 to 1), drawn with the seed.
    #[arg(long, value_name = "SHARE", requires = "train_from")]
    pub replay: Option<f32>,
    /// Start from the TFRS basic model: user id and item id embeddings only.
    #[arg(long)]
    pub id_only: bool,
    /// User features, comma separated: id, categorical, history (replaces the config's choice).
    #[arg(long, value_name = "LIST")]
    pub user_features: Option<String>,
    /// Item features, comma separated: id, genres, title, categorical.
    #[arg(long, value_name = "LIST")]
    pub item_features: Option<String>,
    /// Maximum epochs (0, the default: from the data, about 160 examples per user and item row
    /// over the run, 2 to 10 epochs).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Interactions per step (= in-batch negatives).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate of the dense layers (AdamW).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Peak learning rate of the embedding tables.
    #[arg(long)]
    pub embedding_lr: Option<f32>,
    /// Sparse optimizer of the embedding tables.
    #[arg(long, value_parser = ["adagrad", "lazy_adam"])]
    pub sparse_optimizer: Option<String>,
    /// Learning-rate decay after warm-up.
    #[arg(long, value_parser = ["constant", "linear", "cosine"])]
    pub lr_decay: Option<String>,
    /// Warm-up steps.
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Output dimension of both towers (of each ensemble member).
    #[arg(long)]
    pub dim: Option<usize>,
    /// Ensemble members: towers trained independently (other seeds) whose vectors are concatenated,
    /// so scores average theirs (default 2: +0.003 Recall@10 on ML-100K for one more training run;
    /// vectors and the index are `members × dim` wide). 1 = a single model.
    #[arg(long, value_name = "K")]
    pub members: Option<usize>,
    /// Softmax temperature (logits = cosine / T): one run at this value. Without it the default
    /// trains once per `--temperature-candidates` value and keeps the best on validation.
    #[arg(long, conflicts_with = "temperature_candidates")]
    pub temperature: Option<f32>,
    /// Temperatures to try, comma separated (default 0.12,0.15,0.2); each is a full run and the
    /// model with the best validation recall is kept.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub temperature_candidates: Option<Vec<f32>>,
    /// Learn the temperature during training (CLIP-style), starting from `--temperature`.
    #[arg(long)]
    pub learn_temperature: bool,
    /// Turn off the logQ correction.
    #[arg(long)]
    pub no_logq: bool,
    /// Extra uniformly sampled negatives per batch (mixed negative sampling).
    #[arg(long)]
    pub extra_negatives: Option<usize>,
    /// Do not use a user's other training items as that user's negatives (raises Recall@100,
    /// lowers Recall@10 on MovieLens; off by default).
    #[arg(long)]
    pub mask_seen_items: bool,
    /// Recent items pooled into the user vector.
    #[arg(long)]
    pub history_len: Option<usize>,
    /// Recency decay of the history pooling (1 = plain mean).
    #[arg(long)]
    pub history_decay: Option<f32>,
    /// Pool the history with the fixed recency weights instead of learned attention weights
    /// (history dropout still applies; add `--history-dropout 0` for the plain recency mean).
    #[arg(long)]
    pub no_history_attention: bool,
    /// Training pools a random subsequence of the history, each item dropped with this probability
    /// (0 = off; default 0.2).
    #[arg(long, value_name = "P")]
    pub history_dropout: Option<f32>,
    /// Training examples hide a random 0..N of their most recent history items, so the user tower
    /// learns to predict further ahead than the next item (0 or 1: off).
    #[arg(long, value_name = "N")]
    pub history_horizon: Option<usize>,
    /// Hidden layers of both towers' MLPs, comma separated (empty string: none).
    #[arg(long, value_name = "LIST")]
    pub layers: Option<String>,
    /// Seed of initialisation, shuffling and sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Early-stopping patience in epochs (0 = off).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Validation interactions held out per user from the training part (0 = no validation).
    #[arg(long)]
    pub validation_per_user: Option<usize>,
    /// Keep the model of the validation run instead of training it again on every training row
    /// (the validation slice included) with the temperature and epochs validation chose.
    #[arg(long)]
    pub no_refit: bool,
    /// The training plan's shape. auto: the full plan (every temperature candidate to its end, a
    /// refit, every member) while it costs at most 30 M example passes (MovieLens-sized data), the
    /// scaled plan above (candidates by successive halving on their first epoch, no refit, one
    /// member, at most 4 epochs). `train` prints the plan it chose and why before it starts.
    #[arg(long, value_enum, default_value_t = PlanArg::Auto)]
    pub plan: PlanArg,
    /// Bound the whole plan's wall time, e.g. 20m or 1h30m: an epoch or a run that would end past
    /// it at the measured speed is not started, and the model keeps the best epoch so far. Makes the
    /// result depend on the machine's speed (the same seed no longer fixes the model).
    #[arg(long, value_name = "DURATION", value_parser = parse_budget)]
    pub budget: Option<std::time::Duration>,
    /// Stop after this many epochs of this invocation, as if interrupted, leaving the checkpoint for
    /// `--resume` (the resumed run then matches an uninterrupted one). For tests and time-boxed jobs.
    #[arg(long, hide = true)]
    pub stop_after_epochs: Option<usize>,
}

/// `--plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanArg {
    /// Decided from the data's size.
    Auto,
    /// The full plan at any size.
    Full,
    /// The scaled plan at any size.
    Scaled,
}

impl From<PlanArg> for PlanMode {
    fn from(p: PlanArg) -> PlanMode {
        match p {
            PlanArg::Auto => PlanMode::Auto,
            PlanArg::Full => PlanMode::Full,
            PlanArg::Scaled => PlanMode::Scaled,
        }
    }
}

/// A `--budget` of at least a second, in humantime's syntax.
fn parse_budget(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 45m, 1h30m)"))?;
    if d < std::time::Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Split dataset directory (default: the one the model was trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Cut-offs, comma separated.
    #[arg(long, default_value = "10,50,100", value_delimiter = ',')]
    pub k: Vec<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Rank for at most this many test users, a seeded uniform sample, and print each mean with
    /// its standard error (0 = every test user). Exact scoring costs users × items: at 1 M items,
    /// 5,000 users take about 30 s of scoring where 200,000 take a quarter of an hour.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_EVAL_USERS)]
    pub sample_users: usize,
    /// Seed of the user sample.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Judge the model on a dataset it was not trained on (yesterday's model on today's dataset,
    /// grown by `data import --append-to`), matching users and items by string id: items new to
    /// the model are embedded from their features, users from their history in --data. The daily
    /// job compares two models this way, on the same footing.
    #[arg(long, requires = "data")]
    pub by_id: bool,
}

/// `eval --sample-users` by default.
pub const DEFAULT_EVAL_USERS: usize = 5_000;

/// Arguments of `embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Parquet file to write (columns: id Utf8, vector FixedSizeList<Float32, d>).
    #[arg(long)]
    pub out: PathBuf,
    /// Write user embeddings (from id, features and training history).
    #[arg(long)]
    pub users: bool,
    /// Write item embeddings (the default when neither is given). With both, a `kind` column says which.
    #[arg(long)]
    pub items: bool,
}

fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// Resolves config file + flags into a config, with the thread count of this process's pool (the
/// one the training runs with, recorded in the model and checked on `--resume`). Not validated:
/// training validates it (as "command line"), and `--print-config` before printing.
pub fn resolve_config(a: &TrainArgs) -> anyhow::Result<Config> {
    let mut c = match (&a.config, &a.init_from) {
        (Some(p), _) => Config::from_toml_file(p)?,
        (None, Some(m)) => {
            let mut c = twotower_towers::model_config(m)
                .with_context(|| format!("reading the configuration of --init-from {}", m.display()))?;
            c.train.epochs = twotower_towers::WARM_START_EPOCHS;
            c
        }
        (None, None) if a.id_only => Config::id_only(),
        (None, None) => Config::default(),
    };
    if a.id_only && a.config.is_some() {
        let id = Config::id_only();
        c.item = id.item;
        c.user = id.user;
    }
    if let Some(d) = a.dim {
        c.model.dim = d;
        if a.id_only {
            c.item.id_dim = d;
            c.user.id_dim = d;
        }
    }
    if let Some(list) = &a.user_features {
        let f = parse_list(list);
        for x in &f {
            if !["id", "categorical", "history"].contains(&x.as_str()) {
                bail!("--user-features: unknown feature {x:?} (known: id, categorical, history)");
            }
        }
        c.user.id = f.iter().any(|x| x == "id");
        c.user.categorical = f.iter().any(|x| x == "categorical");
        c.user.history = f.iter().any(|x| x == "history");
    }
    if let Some(list) = &a.item_features {
        let f = parse_list(list);
        for x in &f {
            if !["id", "genres", "title", "categorical"].contains(&x.as_str()) {
                bail!("--item-features: unknown feature {x:?} (known: id, genres, title, categorical)");
            }
        }
        c.item.id = f.iter().any(|x| x == "id");
        c.item.genres = f.iter().any(|x| x == "genres");
        c.item.title = f.iter().any(|x| x == "title");
        c.item.categorical = f.iter().any(|x| x == "categorical");
    }
    if let Some(l) = &a.layers {
        let layers = parse_list(l)
            .iter()
            .map(|x| {
                x.parse::<usize>()
                    .with_context(|| format!("--layers: {x:?} is not a width"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        c.user.layers = layers.clone();
        c.item.layers = layers;
    }
    macro_rules! set {
        ($flag:expr, $field:expr) => {
            if let Some(v) = $flag {
                $field = v;
            }
        };
    }
    set!(a.epochs, c.train.epochs);
    set!(a.batch_size, c.train.batch_size);
    set!(a.lr, c.train.lr);
    set!(a.embedding_lr, c.train.embedding_lr);
    set!(a.warmup_steps, c.train.warmup_steps);
    if let Some(t) = a.temperature {
        c.loss.temperature = t;
        c.loss.temperature_candidates.clear();
    }
    set!(a.temperature_candidates.clone(), c.loss.temperature_candidates);
    set!(a.extra_negatives, c.loss.extra_negatives);
    set!(a.history_len, c.user.history_len);
    set!(a.history_decay, c.user.history_decay);
    set!(a.history_horizon, c.user.history_horizon);
    set!(a.history_dropout, c.user.history_dropout);
    set!(a.seed, c.train.seed);
    set!(a.members, c.model.members);
    set!(a.patience, c.train.patience);
    set!(a.validation_per_user, c.train.validation_per_user);
    if a.no_logq {
        c.loss.logq = false;
    }
    if a.learn_temperature {
        c.loss.learn_temperature = true;
    }
    if a.mask_seen_items {
        c.loss.mask_seen_items = true;
    }
    if a.no_history_attention {
        c.user.history_attention = false;
    }
    if a.no_refit {
        c.train.refit = false;
    }
    if let Some(o) = &a.sparse_optimizer {
        c.train.sparse_optimizer = if o == "adagrad" {
            SparseOptimizerKind::Adagrad
        } else {
            SparseOptimizerKind::LazyAdam
        };
    }
    if let Some(d) = &a.lr_decay {
        c.train.lr_decay = match d.as_str() {
            "constant" => LrDecay::Constant,
            "linear" => LrDecay::Linear,
            _ => LrDecay::Cosine,
        };
    }
    c.train.threads = rayon::current_num_threads();
    Ok(c)
}

/// candle runs element-wise ops above 64 k elements on its own "barrier" pool, whose workers spin
/// between ops. Training already keeps every core busy through rayon (gemm, fused softmax, pooling), so
/// on a small or shared machine those spinning workers only steal cycles (measured: 2-thread training
/// 3–4× slower than 1-thread). Keeping that pool empty runs the small [B, d] ops inline instead. Must run
/// before the first candle op; an explicit `CANDLE_NUM_THREADS` wins.
pub fn quiet_candle_pool() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// How errors name the configuration `resolve_config` makes (a file's values with flags over them).
const CONFIG_ORIGIN: &str = "command line";

/// `twotower train`.
pub fn train(a: TrainArgs, progress: &dyn Progress) -> anyhow::Result<()> {
    quiet_candle_pool();
    let config = resolve_config(&a)?;
    if a.print_config {
        config.validate(CONFIG_ORIGIN)?;
        print!("{}", config.to_toml());
        return Ok(());
    }
    // Training never reads the test part (nor the whole log of a split dataset).
    let ds =
        Dataset::load_training(&a.data).with_context(|| format!("loading dataset {}", a.data.display()))?;
    let split = ds.is_split();
    if !split {
        eprintln!(
            "note: {} is not split; training on all interactions (run `twotower data split` to evaluate)",
            a.data.display()
        );
    }
    let t0 = Instant::now();
    let report = twotower_towers::train(
        &ds,
        &config,
        &a.out,
        progress,
        &TrainOptions {
            resume: a.resume,
            stop_after_epochs: a.stop_after_epochs,
            plan: a.plan.into(),
            budget: a.budget,
            config_origin: Some(CONFIG_ORIGIN.into()),
            warm: a.init_from.as_ref().map(|m| WarmStart {
                from: m.clone(),
                train_from: a.train_from,
                replay: a.replay.unwrap_or(0.0),
            }),
        },
    )
    .with_context(|| format!("training on {}", a.data.display()))?;
    for e in &report.epochs {
        let val = e.val_recall.map_or("-".to_string(), |v| format!("{v:.4}"));
        let t = if config.loss.learn_temperature {
            format!("  T {:.4}", e.temperature)
        } else {
            String::new()
        };
        let member = e.member.map_or(String::new(), |m| format!("member {m}  "));
        println!(
            "{member}epoch {:>2}  loss {:.4}  val R@{} {}{t}  {:.0} ex/s  {:.1}s",
            e.epoch, e.loss, e.val_k, val, e.examples_per_sec, e.seconds
        );
    }
    if !report.temperature_search.is_empty() {
        println!(
            "temperature search (validation R@{}):",
            report.summary.validation_k
        );
        for t in &report.temperature_search {
            let val = t.validation_recall.map_or("-".to_string(), |v| format!("{v:.4}"));
            println!(
                "  T {:<5}  val {val}  kept epoch {}  {:.1}s{}",
                t.temperature,
                t.best_epoch,
                t.seconds,
                if t.chosen { "  <- kept" } else { "" }
            );
        }
    }
    if let Some(p) = &report.plan {
        println!(
            "plan: {} ({}); {:.1} M example passes planned, {:.2}× the kept run",
            match p.shape {
                PlanShape::Full => "full",
                PlanShape::Scaled => "scaled",
            },
            p.reason,
            p.planned_examples as f64 / 1e6,
            p.cost_in_runs()
        );
    }
    if let Some(w) = twotower_towers::PlanHistory::read(&a.out)
        .ok()
        .flatten()
        .and_then(|h| h.warm_start)
        .filter(|_| report.finished)
    {
        let parts: Vec<String> = w
            .tables
            .iter()
            .map(|t| format!("{} {} copied, {} new", t.name, t.copied, t.new))
            .collect();
        println!("warm start from {}: {}", w.from, parts.join("; "));
    }
    if report.stopped_by_budget {
        println!("the budget ran out: the kept run stopped before its last epoch, with its best epoch");
    }
    if !report.finished {
        println!(
            "stopped before training finished: {} is unchanged; the run waits beside it for \
             `train --resume` with the same flags",
            a.out.display()
        );
        return Ok(());
    }
    if let Some(v) = report.refit_validation_recall {
        let s = &report.summary;
        println!(
            "refit: trained again on every training row (validation slice included) for the {} epochs \
             validation chose (validation R@{} was {v:.4})",
            s.epochs_run, config.train.validation_k
        );
    }
    let s = &report.summary;
    // The members the plan trained (the scaled plan trains one; a budget may stop an ensemble short).
    let trained = twotower_towers::PlanHistory::read(&a.out)
        .ok()
        .flatten()
        .map(|p| p.runs.iter().filter(|r| r.member.is_some()).count())
        .filter(|&n| n > 0)
        .unwrap_or(config.model.members);
    let members = match trained {
        1 => String::new(),
        k => format!("{k} members of dim {}, ", config.model.dim),
    };
    println!(
        "model written to {} ({members}kept epoch {} of {}{}, {:.1}s, {} threads)",
        a.out.display(),
        s.best_epoch,
        s.epochs_run,
        if s.stopped_early { ", stopped early" } else { "" },
        t0.elapsed().as_secs_f64(),
        config.train.threads
    );
    if report.finished && split {
        println!(
            "report: twotower report --model {m} --out {m}-report.html",
            m = a.out.display()
        );
    }
    Ok(())
}

fn print_report(name: &str, r: &EvalReport) {
    let cells: Vec<String> =
        r.ks.iter()
            .enumerate()
            .flat_map(|(j, _)| {
                [
                    format!("{:.4}", r.recall[j]),
                    format!("{:.4}", r.ndcg[j]),
                    format!("{:.4}", r.hit_rate[j]),
                ]
            })
            .collect();
    println!(
        "{name:<12} {}",
        cells.iter().map(|c| format!("{c:>9}")).collect::<String>()
    );
}

/// The standard error of every mean of a sampled evaluation, in the table's layout.
fn print_standard_errors(methods: &[(&str, &EvalReport)]) {
    println!("standard error (± one SE of each mean above, from the user sample)");
    for (name, m) in methods {
        let cells: String = (0..m.ks.len())
            .flat_map(|j| [m.recall_se.get(j), m.ndcg_se.get(j), m.hit_rate_se.get(j)])
            .map(|v| format!("{:>9}", v.map_or("-".to_string(), |v| format!("±{v:.4}"))))
            .collect();
        println!("{name:<12} {cells}");
    }
}

/// Coverage, popularity percentile and long-tail share of both methods, and the test items' percentile.
fn print_beyond(methods: &[(&str, &EvalReport)]) {
    let Some((_, r)) = methods.first() else {
        return;
    };
    let k = r.beyond_k;
    let header: String =
        r.ks.iter()
            .map(|k| format!("Cov@{k}"))
            .chain([format!("Pop%@{k}"), format!("Tail@{k}")])
            .map(|h| format!("{h:>9}"))
            .collect();
    println!("\nbeyond accuracy (popularity percentile 0-100 and long tail from the training interactions)");
    println!("{:<12} {header}", "method");
    for (name, m) in methods {
        let cells: String = m
            .coverage
            .iter()
            .map(|c| format!("{c:.4}"))
            .chain([
                m.popularity_percentile.map_or("-".into(), |p| format!("{p:.1}")),
                m.long_tail_share.map_or("-".into(), |t| format!("{t:.4}")),
            ])
            .map(|c| format!("{c:>9}"))
            .collect();
        println!("{name:<12} {cells}");
    }
    if let Some(p) = r.test_popularity_percentile {
        println!(
            "{:<12} {:>w$}",
            "test items",
            format!("{p:.1}"),
            w = 9 * (r.ks.len() + 1)
        );
    }
}

/// `twotower eval`.
/// A model and the dataset to judge it on: `data`, or the one it was trained on.
pub(crate) fn load_model_and_data(
    model_dir: &Path,
    data: Option<&Path>,
    progress: &dyn Progress,
) -> anyhow::Result<(Model, Dataset)> {
    let model = Model::load(model_dir).with_context(|| format!("loading model {}", model_dir.display()))?;
    let data = data.map_or_else(|| PathBuf::from(&model.meta().dataset_dir), Path::to_path_buf);
    progress.start("loading dataset", None);
    let ds = Dataset::load(&data).with_context(|| format!("loading dataset {}", data.display()))?;
    progress.finish();
    Ok((model, ds))
}

pub fn eval(a: EvalArgs, progress: &dyn Progress) -> anyhow::Result<()> {
    if a.k.is_empty() || a.k.contains(&0) {
        bail!("--k needs positive cut-offs, e.g. 10,50,100");
    }
    let (model, ds) = load_model_and_data(&a.model, a.data.as_deref(), progress)?;
    let t0 = Instant::now();
    let sample = EvalSample {
        max_users: a.sample_users,
        seed: a.seed,
    };
    let r = if a.by_id {
        twotower_towers::evaluate_by_id(&model, &ds, &a.k, sample)?
    } else {
        twotower_towers::evaluate_sample(&model, &ds, &a.k, sample)?
    };
    let secs = t0.elapsed().as_secs_f64();
    let pop = twotower_towers::popularity_baseline_sample(&ds, &a.k, sample)?;
    if a.json {
        let v = serde_json::json!({ "model": r, "popularity": pop, "seconds": secs });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let n_items = if a.by_id {
        ds.items.len()
    } else {
        model.item_vocab().len()
    };
    match r.sampled_from {
        Some(all) => println!(
            "{} of {all} test users (a sample, seed {}; --sample-users 0 ranks every one), {} items, \
             exact scoring in {:.2}s",
            r.users, a.seed, n_items, secs
        ),
        None => println!(
            "{} test users, {} items, exact scoring in {:.2}s",
            r.users, n_items, secs
        ),
    }
    print_eval_table(&[("model", &r), ("popularity", &pop)]);
    Ok(())
}

/// The evaluation table of `eval` for named reports over the same users and cut-offs: recall, NDCG
/// and hit rate, their standard errors when the users were a sample, then coverage, popularity
/// percentile and long-tail share beside the test items' own percentile.
pub(crate) fn print_eval_table(methods: &[(&str, &EvalReport)]) {
    let Some((_, first)) = methods.first() else {
        return;
    };
    let header: String = first
        .ks
        .iter()
        .flat_map(|k| [format!("R@{k}"), format!("NDCG@{k}"), format!("HR@{k}")])
        .map(|h| format!("{h:>9}"))
        .collect();
    println!("{:<12} {header}", "method");
    for (name, r) in methods {
        print_report(name, r);
    }
    if first.sampled_from.is_some() {
        print_standard_errors(methods);
    }
    print_beyond(methods);
}

/// `twotower embed`.
pub fn embed(a: EmbedArgs, progress: &dyn Progress) -> anyhow::Result<()> {
    let model = Model::load(&a.model).with_context(|| format!("loading model {}", a.model.display()))?;
    let (want_users, want_items) = (a.users, a.items || !a.users);
    let d = model.dim();
    let mut ids: Vec<String> = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    progress.start("embedding", None);
    if want_items {
        ids.extend(model.item_vocab().ids().iter().cloned());
        kinds.extend(std::iter::repeat_n("item", model.item_vocab().len()));
        values.extend(model.item_embeddings()?);
    }
    if want_users {
        ids.extend(model.user_vocab().ids().iter().cloned());
        kinds.extend(std::iter::repeat_n("user", model.user_vocab().len()));
        values.extend(model.user_embeddings()?);
    }
    progress.finish();
    // The one (id, vector) format, written under a temporary name and renamed into place.
    let write = || -> anyhow::Result<()> {
        let (out, file) = AtomicFile::create(&a.out)?;
        drop(file);
        let kinds = (want_users && want_items).then_some(&kinds[..]);
        twotower_index::write_embeddings_with_kinds(out.temp_path(), &ids, kinds, &values, d)?;
        out.commit()?;
        Ok(())
    };
    write().with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "wrote {} vectors of dimension {d} to {}",
        ids.len(),
        a.out.display()
    );
    Ok(())
}
