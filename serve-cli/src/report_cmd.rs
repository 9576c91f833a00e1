//! `twotower report`: one self-contained HTML page about a model — its data, its training (every run
//! of the plan), its evaluation beside popularity, beyond-accuracy figures, the index and a few
//! users' recommendations. Figures are plotters SVG inlined in the page; no script, no network.

#[path = "report/page.rs"]
mod page;
#[path = "report/plots.rs"]
mod plots;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use twotower_data::progress::Progress;
use twotower_data::{Dataset, UserHistories};
use twotower_index::{CheckParams, CheckReport, CheckTarget, IndexLocation};
use twotower_towers::{top_k_exact, EpochMetrics, Model, PlanRun};

use page::Page;

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Split dataset (default: the one the model was trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Index of this model (a directory or `milvus://HOST:PORT/NAME`): adds recall against exact
    /// search and queries/s by ef.
    #[arg(long, value_name = "DIR|milvus://HOST:PORT/NAME")]
    pub index: Option<IndexLocation>,
    /// Users to show as examples, comma separated (default: a few test users drawn with --seed).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub users: Option<Vec<String>>,
    /// Seed of the example users and of the index check's query sample.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Example users drawn when `--users` is not given.
const EXAMPLE_USERS: usize = 3;
/// History items shown per example user.
const HISTORY_SHOWN: usize = 8;
/// Recommendations shown per example user.
const TOP_SHOWN: usize = 10;
/// The recall curve runs K = 1..=CURVE_K.
const CURVE_K: usize = 100;
/// Cut-offs of the headline table (the same as `eval`'s default).
const HEADLINE_KS: [usize; 3] = [10, 50, 100];
/// User (and item) queries the index check samples, as `index check` does by default.
const INDEX_QUERIES: usize = 1000;

/// `twotower report`.
pub fn run(a: ReportArgs, progress: &dyn Progress) -> Result<()> {
    let t0 = Instant::now();
    let bytes = build(&a, progress)?;
    twotower_data::artifact::write_file_atomic(&a.out, bytes.as_bytes())
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "report written to {} ({:.0} KB in {:.1}s); open it in a browser",
        a.out.display(),
        bytes.len() as f64 / 1024.0,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The page as a string.
fn build(a: &ReportArgs, progress: &dyn Progress) -> Result<String> {
    let (model, ds) = crate::train_cmd::load_model_and_data(&a.model, a.data.as_deref(), progress)?;
    // Refused before any work, with the same rule and advice as every command pairing the two.
    model.check_dataset(&ds, "--data")?;
    if ds.test.is_none() {
        bail!(
            "{} has no test part: run `twotower data split` first",
            ds.dir.display()
        );
    }
    let ks: Vec<usize> = (1..=CURVE_K).collect();
    progress.start("evaluating", None);
    // The same user sample as `eval` by default, so a 1 M-item catalogue reports in a minute.
    let sample = twotower_towers::EvalSample {
        max_users: crate::train_cmd::DEFAULT_EVAL_USERS,
        seed: a.seed,
    };
    // Every vector once: evaluation, the index check and the examples all read these.
    let items = model.item_embeddings()?;
    let users = model.user_embeddings()?;
    let eval = twotower_towers::evaluate_sample_with(&model, &ds, &ks, sample, &items)?;
    let pop = twotower_towers::popularity_baseline_sample(&ds, &ks, sample)?;
    progress.finish();
    let index = match &a.index {
        Some(dir) => Some(index_check(&model, (&users, &items), dir, a.seed, progress)?),
        None => None,
    };
    let examples = examples(&model, &ds, a, &users, &items)?;

    let mut page = Page::default();
    page.head(&model, &a.model);
    page.data_section(&ds)?;
    page.training_section(&model)?;
    page.evaluation_section(&eval, &pop)?;
    page.beyond_section(&eval, &pop, &ds);
    let where_ = a.index.as_ref().map(|l| l.to_string());
    page.index_section(index.as_ref(), where_.as_deref())?;
    page.examples_section(&examples);
    Ok(page.finish())
}

/// `index check`'s measurement on user and item queries (sampled as `index check` samples them).
fn index_check(
    model: &Model,
    (user_vectors, item_vectors): (&[f32], &[f32]),
    at: &IndexLocation,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Vec<(&'static str, CheckReport)>> {
    let store = at.open()?;
    let version = store
        .open_current(Some(model.fingerprint()))
        .with_context(|| format!("opening index {at}"))?;
    let (users, items) =
        crate::index_cmd::sample_vectors(user_vectors, item_vectors, model.dim(), INDEX_QUERIES, seed);
    let params = CheckParams {
        // A backend searched over the network: a sample says enough.
        self_check_sample: store.default_self_check().map(|n| n.min(500)),
        unreachable_is_damage: store.builds_graph(),
        ..CheckParams::default()
    };
    let target = CheckTarget::new(version.as_ref(), progress)?;
    Ok(vec![
        ("user queries", target.check(&users, &params, progress)?),
        ("item queries", target.check(&items, &params, progress)?),
    ])
}

/// One example user: history, top 10 and test items.
struct Example {
    user: String,
    /// The last training items shown, newest first.
    history: Vec<u32>,
    /// All its training items.
    history_len: usize,
    /// Top 10 (item, score).
    top: Vec<(u32, f32)>,
    /// Its distinct test items, ascending.
    test: Vec<u32>,
    /// (id, title, genres) of `history`, then of `top`.
    titles: Vec<(String, String, String)>,
}

fn examples(
    model: &Model,
    ds: &Dataset,
    a: &ReportArgs,
    all_users: &[f32],
    items: &[f32],
) -> Result<Vec<Example>> {
    let test = ds.test.as_ref().expect("checked");
    let mut test_items: Vec<Vec<u32>> = vec![Vec::new(); ds.users.len()];
    for (&u, &i) in test.user.iter().zip(&test.item) {
        if let Some(v) = test_items.get_mut(u as usize) {
            v.push(i);
        }
    }
    let users: Vec<u32> = match &a.users {
        Some(ids) => ids
            .iter()
            .map(|id| {
                ds.users
                    .get(id)
                    .with_context(|| format!("--users: {id} is not a user of {}", ds.dir.display()))
            })
            .collect::<Result<_>>()?,
        None => {
            let mut with_test: Vec<u32> = (0..ds.users.len() as u32)
                .filter(|&u| !test_items[u as usize].is_empty())
                .collect();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
            with_test.shuffle(&mut rng);
            with_test.truncate(EXAMPLE_USERS);
            with_test.sort_unstable();
            with_test
        }
    };
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let hist = UserHistories::build(ds.training(), ds.users.len());
    let d = model.dim();
    let mut q = Vec::with_capacity(users.len() * d);
    for &u in &users {
        q.extend_from_slice(&all_users[u as usize * d..(u as usize + 1) * d]);
    }
    let top = top_k_exact(&q, items, d, TOP_SHOWN, &|e| model.user_items(users[e]))?;
    let describe = |i: u32| {
        let id = ds.items.id(i).to_string();
        let title = ds
            .item_table
            .titles
            .get(i as usize)
            .cloned()
            .flatten()
            .unwrap_or_default();
        let g = &ds.item_table.genres;
        let genres = if (i as usize) < g.rows() {
            g.row(i as usize)
                .iter()
                .map(|&v| g.vocab.id(v).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            String::new()
        };
        (id, title, genres)
    };
    let mut out = Vec::new();
    for (e, &u) in users.iter().enumerate() {
        let (_, h) = hist.history(u);
        let shown = &h[h.len().saturating_sub(HISTORY_SHOWN)..];
        let qv = &q[e * d..(e + 1) * d];
        let ranked: Vec<(u32, f32)> = top[e]
            .iter()
            .map(|&i| {
                let row = &items[i as usize * d..(i as usize + 1) * d];
                (i, qv.iter().zip(row).map(|(a, b)| a * b).sum::<f32>())
            })
            .collect();
        let mut test = test_items[u as usize].clone();
        test.sort_unstable();
        test.dedup();
        let mut titles = Vec::new();
        for &i in shown.iter().rev().chain(ranked.iter().map(|(i, _)| i)) {
            titles.push(describe(i));
        }
        out.push(Example {
            user: ds.users.id(u).to_string(),
            history: shown.iter().rev().copied().collect(),
            history_len: h.len(),
            top: ranked,
            test,
            titles,
        });
    }
    Ok(out)
}

/// The runs of a model without `plan.json`: its `metrics.jsonl`, one run per ensemble member.
fn runs_from_metrics(model: &Model) -> Result<Vec<PlanRun>> {
    let p = model.dir().join("metrics.jsonl");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let mut runs: Vec<PlanRun> = Vec::new();
    let cfg = model.config();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let e: EpochMetrics =
            serde_json::from_str(line).with_context(|| format!("{}: bad line {line}", p.display()))?;
        let member = e.member.unwrap_or(1);
        if runs.last().is_none_or(|r| r.member != Some(member)) {
            runs.push(PlanRun {
                name: format!("member {member}"),
                temperature: cfg.loss.temperature,
                max_epochs: cfg.train.epochs,
                seed: cfg.train.seed,
                validates: e.val_recall.is_some(),
                member: Some(member),
                best_epoch: model.meta().training.best_epoch,
                seconds: 0.0,
                epochs: Vec::new(),
            });
        }
        let run = runs.last_mut().expect("pushed");
        run.seconds += e.seconds;
        run.epochs.push(e);
    }
    Ok(runs)
}
