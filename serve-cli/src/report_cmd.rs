//! `twotower report`: one self-contained HTML page about a model — its data, its training (every run
//! of the plan), its evaluation beside popularity, beyond-accuracy figures, the index and a few
//! users' recommendations. Figures are plotters SVG inlined in the page; no script, no network.

#[path = "report/plots.rs"]
mod plots;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use twotower_data::progress::Progress;
use twotower_data::{Dataset, Stats, UserHistories};
use twotower_index::{check, CheckParams, CheckReport, IndexDir};
use twotower_towers::{
    top_k_exact, EpochMetrics, EvalReport, Model, PlanHistory, PlanRun, BEYOND_K, HEAD_SHARE,
};

use plots::{Series, XAxis};

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Split dataset (default: the one the model was trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Index directory of this model: adds recall against exact search and queries/s by ef.
    #[arg(long)]
    pub index: Option<PathBuf>,
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
pub const HEADLINE_KS: [usize; 3] = [10, 50, 100];
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
    let model = Model::load(&a.model).with_context(|| format!("loading model {}", a.model.display()))?;
    let data = a
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(&model.meta().dataset_dir));
    progress.start("loading dataset", None);
    let ds = Dataset::load(&data).with_context(|| format!("loading dataset {}", data.display()))?;
    progress.finish();
    if ds.test.is_none() {
        bail!(
            "{} has no test part: run `twotower data split` first",
            data.display()
        );
    }
    let ks: Vec<usize> = (1..=CURVE_K).collect();
    progress.start("evaluating", None);
    let eval = twotower_towers::evaluate(&model, &ds, &ks)?;
    let pop = twotower_towers::popularity_baseline(&ds, &ks)?;
    progress.finish();
    let index = match &a.index {
        Some(dir) => Some(index_check(&model, dir, a.seed, progress)?),
        None => None,
    };
    let examples = examples(&model, &ds, a)?;

    let mut page = Page::default();
    page.head(&model, &a.model);
    page.data_section(&ds)?;
    page.training_section(&model)?;
    page.evaluation_section(&eval, &pop)?;
    page.beyond_section(&eval, &pop, &ds);
    page.index_section(index.as_ref(), a.index.as_deref())?;
    page.examples_section(&examples);
    Ok(page.finish())
}

/// `index check`'s measurement on user and item queries (sampled as `index check` samples them).
fn index_check(
    model: &Model,
    dir: &Path,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Vec<(&'static str, CheckReport)>> {
    let version = IndexDir::new(dir)
        .open_current(Some(model.fingerprint()))
        .with_context(|| format!("opening index {}", dir.display()))?;
    let dim = model.dim();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let sample = |rows: &[f32], rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f32> {
        let mut pick: Vec<usize> = (0..rows.len() / dim).collect();
        pick.shuffle(rng);
        pick.truncate(INDEX_QUERIES);
        pick.iter()
            .flat_map(|&r| rows[r * dim..(r + 1) * dim].iter().copied())
            .collect()
    };
    let users = sample(&model.user_embeddings()?, &mut rng);
    let items = sample(&model.item_embeddings()?, &mut rng);
    let params = CheckParams::default();
    Ok(vec![
        ("user queries", check(&version, &users, &params, progress)?),
        ("item queries", check(&version, &items, &params, progress)?),
    ])
}

/// One example user: history, top 10 and test items.
struct Example {
    user: String,
    history: Vec<u32>,
    history_len: usize,
    top: Vec<(u32, f32)>,
    test: Vec<u32>,
    titles: Vec<(String, String, String)>,
}

fn examples(model: &Model, ds: &Dataset, a: &ReportArgs) -> Result<Vec<Example>> {
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
    let all_users = model.user_embeddings()?;
    let mut q = Vec::with_capacity(users.len() * d);
    for &u in &users {
        q.extend_from_slice(&all_users[u as usize * d..(u as usize + 1) * d]);
    }
    let items = model.item_embeddings()?;
    let top = top_k_exact(&q, &items, d, TOP_SHOWN, &|e| model.user_items(users[e]))?;
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
        let genres = match (g.offsets.get(i as usize), g.offsets.get(i as usize + 1)) {
            (Some(&s), Some(&e)) => g.values[s as usize..e as usize]
                .iter()
                .map(|&v| g.vocab.id(v).to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
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

/// The page being written.
#[derive(Default)]
struct Page {
    html: String,
    figures: usize,
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A metric as `eval` prints it.
pub fn metric(v: f64) -> String {
    format!("{v:.4}")
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".into())
}

fn fmt_ts(ts: i64) -> String {
    if ts >= 0 {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(ts as u64))
            .to_string()
    } else {
        ts.to_string()
    }
}

const CSS: &str =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1180px;\
padding:16px 28px;color:#1d1d1f;line-height:1.45}h1{margin-bottom:4px}h2{border-bottom:2px solid #0072b2;\
padding-bottom:4px;margin-top:36px}h3{margin-bottom:6px}table{border-collapse:collapse;margin:8px 0 16px}\
th,td{border:1px solid #d0d0d0;padding:3px 9px;text-align:right;font-variant-numeric:tabular-nums}\
th{background:#f2f5f8}td.l,th.l{text-align:left}.figs{display:flex;flex-wrap:wrap;gap:14px}\
figure{margin:0;border:1px solid #e2e2e2;padding:4px}figure svg{display:block}.note{color:#555;font-size:92%}\
tr.hit td{background:#e3f4ea;font-weight:600}nav a{margin-right:14px}.muted{color:#888}";

impl Page {
    fn head(&mut self, model: &Model, dir: &Path) {
        let m = model.meta();
        let _ = write!(
            self.html,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>twotower report: {}</title><style>{CSS}</style></head><body>\n\
             <h1>twotower report</h1><p class=\"note\">model <code>{}</code> ({} member(s) of dim {}, \
             {} users, {} items), trained on <code>{}</code>. Generated by <code>twotower report</code> \
             version {}.</p>\n<nav><a href=\"#data\">Data</a><a href=\"#training\">Training</a>\
             <a href=\"#evaluation\">Evaluation</a><a href=\"#beyond-accuracy\">Beyond accuracy</a>\
             <a href=\"#index\">Index</a><a href=\"#examples\">Examples</a></nav>",
            esc(&dir.display().to_string()),
            esc(&dir.display().to_string()),
            model.members(),
            m.config.model.dim,
            model.user_vocab().len(),
            model.item_vocab().len(),
            esc(&m.dataset_dir),
            env!("CARGO_PKG_VERSION"),
        );
    }

    fn section(&mut self, id: &str, title: &str) {
        let _ = write!(self.html, "<section id=\"{id}\"><h2>{title}</h2>");
    }

    fn end_section(&mut self) {
        self.html.push_str("</section>\n");
    }

    fn figure(&mut self, svg: String) {
        self.figures += 1;
        let _ = write!(self.html, "<figure>{svg}</figure>");
    }

    fn table(&mut self, header: &[&str], rows: &[Vec<String>], left_cols: usize) {
        self.html.push_str("<table><tr>");
        for (j, h) in header.iter().enumerate() {
            let c = if j < left_cols { " class=\"l\"" } else { "" };
            let _ = write!(self.html, "<th{c}>{}</th>", esc(h));
        }
        self.html.push_str("</tr>");
        for r in rows {
            self.html.push_str("<tr>");
            for (j, v) in r.iter().enumerate() {
                let c = if j < left_cols { " class=\"l\"" } else { "" };
                let _ = write!(self.html, "<td{c}>{}</td>", esc(v));
            }
            self.html.push_str("</tr>");
        }
        self.html.push_str("</table>\n");
    }

    fn data_section(&mut self, ds: &Dataset) -> Result<()> {
        let s = Stats::of(ds, 10);
        self.section("data", "Data");
        let mut rows = vec![
            vec!["interactions".into(), s.interactions.to_string()],
            vec![
                "users".into(),
                format!("{} ({} with interactions)", s.users, s.interacting_users),
            ],
            vec![
                "items".into(),
                format!("{} ({} with interactions)", s.items, s.interacting_items),
            ],
            vec!["density".into(), format!("{:.5}", s.density)],
        ];
        if let Some((a, b)) = s.time_range {
            rows.push(vec![
                "time range".into(),
                format!("{} – {}", fmt_ts(a), fmt_ts(b)),
            ]);
        }
        if let Some((train, test)) = s.split {
            rows.push(vec!["split".into(), format!("train {train}, test {test}")]);
        }
        rows.push(vec!["interactions per user".into(), s.per_user.to_string()]);
        rows.push(vec!["interactions per item".into(), s.per_item.to_string()]);
        self.table(&["", "value"], &rows, 2);
        self.html.push_str("<div class=\"figs\">");
        let uc = ds.interactions.user_counts(ds.users.len());
        let ic = ds.interactions.item_counts(ds.items.len());
        self.figure(plots::log_histogram("Interactions per user", "user", &uc)?);
        self.figure(plots::log_histogram("Interactions per item", "item", &ic)?);
        self.html.push_str("</div>");
        self.end_section();
        Ok(())
    }

    fn training_section(&mut self, model: &Model) -> Result<()> {
        self.section("training", "Training");
        let t = &model.meta().training;
        let _ = write!(
            self.html,
            "<p>kept epoch {} of {}{}, {} training examples, {:.1} s of training on {} threads, \
             temperature {}.</p>",
            t.best_epoch,
            t.epochs_run,
            if t.stopped_early { " (stopped early)" } else { "" },
            t.train_examples,
            t.seconds,
            t.threads,
            opt(t.temperature, |v| format!("{v:.3}")),
        );
        let runs = match PlanHistory::read(model.dir())? {
            Some(plan) => {
                if !plan.temperature_search.is_empty() {
                    self.html.push_str("<h3>Temperature search</h3>");
                    let rows: Vec<Vec<String>> = plan
                        .temperature_search
                        .iter()
                        .map(|tr| {
                            vec![
                                format!("{}", tr.temperature),
                                opt(tr.validation_recall, metric),
                                tr.best_epoch.to_string(),
                                format!("{:.1}", tr.seconds),
                                if tr.chosen { "chosen" } else { "" }.into(),
                            ]
                        })
                        .collect();
                    self.table(
                        &["temperature", "validation recall", "best epoch", "seconds", ""],
                        &rows,
                        0,
                    );
                }
                plan.runs
            }
            None => {
                self.html.push_str(
                    "<p class=\"note\">This model has no <code>plan.json</code> (trained before it was \
                     recorded): the runs below come from <code>metrics.jsonl</code>, the final runs only.</p>",
                );
                runs_from_metrics(model)?
            }
        };
        self.html.push_str("<h3>Runs</h3>");
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                let n = r.epochs.len().max(1) as f64;
                vec![
                    r.name.clone(),
                    r.member
                        .map(|m| format!("member {m}"))
                        .unwrap_or_else(|| "discarded".into()),
                    format!("{}", r.temperature),
                    if r.max_epochs == 0 {
                        "auto".into()
                    } else {
                        r.max_epochs.to_string()
                    },
                    r.seed.to_string(),
                    if r.validates { "yes" } else { "no (all rows)" }.into(),
                    format!("{}/{}", r.best_epoch, r.epochs.len()),
                    opt(
                        r.epochs.iter().filter_map(|e| e.val_recall).reduce(f64::max),
                        metric,
                    ),
                    format!(
                        "{:.0}",
                        r.epochs.iter().map(|e| e.examples_per_sec).sum::<f64>() / n
                    ),
                    format!("{:.1}", r.seconds),
                ]
            })
            .collect();
        self.table(
            &[
                "run",
                "in model",
                "temperature",
                "epoch limit",
                "seed",
                "validation",
                "kept / run epochs",
                "best val recall",
                "examples/s",
                "seconds",
            ],
            &rows,
            2,
        );
        let series = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<Series> {
            runs.iter()
                .map(|r| Series {
                    name: r.name.clone(),
                    points: r
                        .epochs
                        .iter()
                        .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
                        .collect(),
                })
                .filter(|s| !s.points.is_empty())
                .collect()
        };
        let loss = series(&|e| Some(e.loss));
        let recall = series(&|e| e.val_recall);
        let k = runs
            .iter()
            .flat_map(|r| &r.epochs)
            .map(|e| e.val_k)
            .next()
            .unwrap_or(10);
        self.html.push_str("<div class=\"figs\">");
        self.figure(plots::lines(
            "Training loss per epoch",
            "epoch",
            "loss",
            &loss,
            XAxis::Integer,
        )?);
        if !recall.is_empty() {
            self.figure(plots::lines(
                &format!("Validation Recall@{k} per epoch"),
                "epoch",
                &format!("Recall@{k}"),
                &recall,
                XAxis::Integer,
            )?);
        }
        self.html.push_str("</div>");
        self.end_section();
        Ok(())
    }

    fn evaluation_section(&mut self, eval: &EvalReport, pop: &EvalReport) -> Result<()> {
        self.section("evaluation", "Evaluation");
        let _ = write!(
            self.html,
            "<p>{} test users; every one ranks the whole catalogue exactly, training items excluded \
             (as <code>twotower eval</code>).</p>",
            eval.users
        );
        let mut header = vec!["method"];
        let names: Vec<String> = HEADLINE_KS
            .iter()
            .flat_map(|k| [format!("R@{k}"), format!("NDCG@{k}"), format!("HR@{k}")])
            .collect();
        header.extend(names.iter().map(String::as_str));
        let row = |name: &str, r: &EvalReport| {
            let mut v = vec![name.to_string()];
            for &k in &HEADLINE_KS {
                let j = r.ks.iter().position(|&x| x == k);
                let at = |m: &Vec<f64>| j.and_then(|j| m.get(j).copied());
                v.push(opt(at(&r.recall), metric));
                v.push(opt(at(&r.ndcg), metric));
                v.push(opt(at(&r.hit_rate), metric));
            }
            v
        };
        self.table(&header, &[row("model", eval), row("popularity", pop)], 1);
        let curve = |name: &str, r: &EvalReport| Series {
            name: name.into(),
            points: r.ks.iter().zip(&r.recall).map(|(&k, &v)| (k as f64, v)).collect(),
        };
        self.html.push_str("<div class=\"figs\">");
        self.figure(plots::lines(
            "Recall@K, K = 1..100",
            "K",
            "Recall@K",
            &[curve("model", eval), curve("popularity", pop)],
            XAxis::Integer,
        )?);
        self.html.push_str("</div>");
        self.end_section();
        Ok(())
    }

    fn beyond_section(&mut self, eval: &EvalReport, pop: &EvalReport, ds: &Dataset) {
        self.section("beyond-accuracy", "Beyond accuracy");
        let popularity = twotower_towers::training_popularity(ds);
        let _ = write!(
            self.html,
            "<p>Coverage@K: the share of the {} catalogue items in at least one test user's top K. \
             Popularity percentile: the mean training-popularity percentile (0 least, 100 most \
             interacted with) of the top {BEYOND_K}. Long tail: items outside the {} most popular, \
             which hold {:.0} % of the training interactions.</p>",
            popularity.items(),
            popularity.head_len(),
            HEAD_SHARE * 100.0
        );
        let mut header = vec!["method".to_string()];
        header.extend(HEADLINE_KS.iter().map(|k| format!("Cov@{k}")));
        header.push(format!("pop. percentile@{BEYOND_K}"));
        header.push(format!("long tail@{BEYOND_K}"));
        let row = |name: &str, r: &EvalReport| {
            let mut v = vec![name.to_string()];
            v.extend(HEADLINE_KS.iter().map(|&k| opt(r.coverage_at(k), metric)));
            v.push(opt(r.popularity_percentile, |p| format!("{p:.1}")));
            v.push(opt(r.long_tail_share, metric));
            v
        };
        let mut test = vec!["test items".to_string()];
        test.extend(HEADLINE_KS.iter().map(|_| String::new()));
        test.push(opt(eval.test_popularity_percentile, |p| format!("{p:.1}")));
        test.push(String::new());
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        self.table(&header, &[row("model", eval), row("popularity", pop), test], 1);
        self.end_section();
    }

    fn index_section(&mut self, checks: Option<&Vec<(&str, CheckReport)>>, dir: Option<&Path>) -> Result<()> {
        self.section("index", "Index");
        let (Some(checks), Some(dir)) = (checks, dir) else {
            self.html.push_str(
                "<p class=\"note\">No index given: <code>twotower report --index DIR</code> adds recall \
                 against exact search and queries/s by ef.</p>",
            );
            self.end_section();
            return Ok(());
        };
        let _ = write!(
            self.html,
            "<p>Index <code>{}</code>: recall@{} of the HNSW search against exact search, one thread \
             (as <code>twotower index check</code>).</p>",
            esc(&dir.display().to_string()),
            checks.first().map_or(10, |(_, r)| r.k)
        );
        let mut series = Vec::new();
        for (what, r) in checks {
            let _ = write!(self.html, "<h3>{what} ({})</h3>", r.queries);
            let mut rows: Vec<Vec<String>> = r
                .by_ef
                .iter()
                .map(|row| {
                    vec![
                        format!(
                            "{}{}",
                            row.ef,
                            if row.ef == r.default_ef { " (default)" } else { "" }
                        ),
                        metric(row.recall),
                        format!("{:.0}", row.queries_per_sec),
                    ]
                })
                .collect();
            rows.push(vec![
                "exact".into(),
                metric(1.0),
                format!("{:.0}", r.exact_queries_per_sec),
            ]);
            self.table(&["ef", "recall", "queries/s"], &rows, 0);
            series.push(Series {
                name: what.to_string(),
                points: r
                    .by_ef
                    .iter()
                    .map(|row| (row.queries_per_sec, row.recall))
                    .collect(),
            });
        }
        self.html.push_str("<div class=\"figs\">");
        self.figure(plots::lines(
            "Recall@10 against queries/s (one point per ef)",
            "queries/s, one thread (log)",
            "recall@10",
            &series,
            XAxis::Log,
        )?);
        self.html.push_str("</div>");
        self.end_section();
        Ok(())
    }

    fn examples_section(&mut self, examples: &[Example]) {
        self.section("examples", "Examples");
        self.html.push_str(
            "<p class=\"note\">Top 10 from the model's exact scorer, training items excluded; rows in \
             green are the user's test items.</p>",
        );
        for ex in examples {
            let _ = write!(
                self.html,
                "<h3>user {}</h3><p>last {} of {} training items (newest first):</p>",
                esc(&ex.user),
                ex.history.len(),
                ex.history_len
            );
            let rows: Vec<Vec<String>> = ex
                .titles
                .iter()
                .take(ex.history.len())
                .map(|(id, title, genres)| vec![id.clone(), title.clone(), genres.clone()])
                .collect();
            self.table(&["item", "title", "genres"], &rows, 3);
            let hits = ex
                .top
                .iter()
                .filter(|(i, _)| ex.test.binary_search(i).is_ok())
                .count();
            let _ = write!(
                self.html,
                "<p>top {}: {hits} of its {} test items</p><table><tr><th>rank</th><th class=\"l\">item\
                 </th><th class=\"l\">title</th><th class=\"l\">genres</th><th>score</th><th class=\"l\">\
                 test item</th></tr>",
                ex.top.len(),
                ex.test.len()
            );
            for (rank, ((item, score), (id, title, genres))) in
                ex.top.iter().zip(&ex.titles[ex.history.len()..]).enumerate()
            {
                let hit = ex.test.binary_search(item).is_ok();
                let _ = write!(
                    self.html,
                    "<tr{}><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}\
                     </td><td>{score:.4}</td><td class=\"l\">{}</td></tr>",
                    if hit { " class=\"hit\"" } else { "" },
                    rank + 1,
                    esc(id),
                    esc(title),
                    esc(genres),
                    if hit { "hit" } else { "" }
                );
            }
            self.html.push_str("</table>\n");
        }
        self.end_section();
    }

    fn finish(mut self) -> String {
        let _ = writeln!(
            self.html,
            "<p class=\"muted\">{} figures.</p></body></html>",
            self.figures
        );
        self.html
    }
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
