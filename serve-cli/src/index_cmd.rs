//! `twotower index build|rebuild|add|check|gc`: the item tower feeds the index crate. Every write is a
//! new version directory plus an atomic CURRENT swap, so readers (the shell, the server) keep answering
//! from the old version until the new one is complete.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::PathBuf;
use std::time::Instant;
use twotower_data::progress::Progress;
use twotower_data::Dataset;
use twotower_index::{check, CheckParams, HnswParams, IndexDir};
use twotower_towers::Model;

/// Index commands.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Embed every catalog item (cold items from their features) and write a new index version.
    Build(BuildArgs),
    /// The same as build, against an index that is being served: readers move over once CURRENT swaps.
    Rebuild(BuildArgs),
    /// Make new or changed items searchable without a full rebuild (changed and removed items are
    /// tombstoned; `rebuild` compacts).
    Add(AddArgs),
    /// Recall@10 of the HNSW graph against exact search on real user and item queries, by ef, with
    /// queries/s, plus the self-reachability check.
    Check(CheckArgs),
    /// Delete old versions, keeping the newest N and CURRENT.
    Gc(GcArgs),
}

/// Graph parameters (defaults tuned on MovieLens and 1M-item synthetic embeddings; see README).
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Links per node (more: better recall, slower build).
    #[arg(long)]
    pub m: Option<usize>,
    /// Candidate list while building.
    #[arg(long)]
    pub ef_construction: Option<usize>,
    /// Default candidate list while searching.
    #[arg(long)]
    pub ef_search: Option<usize>,
}

impl GraphArgs {
    fn resolve(&self, base: HnswParams) -> HnswParams {
        HnswParams {
            m: self.m.unwrap_or(base.m),
            ef_construction: self.ef_construction.unwrap_or(base.ef_construction),
            ef_search: self.ef_search.unwrap_or(base.ef_search),
        }
    }
}

/// Arguments of `index build` and `index rebuild`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Model directory (its item tower embeds the catalog).
    #[arg(long)]
    pub model: PathBuf,
    /// Index directory (created by build).
    #[arg(long)]
    pub index: PathBuf,
    /// Embed this dataset's catalog instead of the model's own (e.g. an updated items table).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// Arguments of `index add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Model directory (must be the one the index was built from).
    #[arg(long)]
    pub model: PathBuf,
    /// Index directory.
    #[arg(long)]
    pub index: PathBuf,
    /// A dataset whose items (new or changed) are added: e.g. `data import` of an updated catalog.
    #[arg(long, required_unless_present = "remove")]
    pub data: Option<PathBuf>,
    /// Only these item ids of `--data` (comma-separated); default: every item of it.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Item ids to remove (tombstone), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub remove: Vec<String>,
}

/// Arguments of `index check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Model directory (its user tower makes the user queries).
    #[arg(long)]
    pub model: PathBuf,
    /// Index directory.
    #[arg(long)]
    pub index: PathBuf,
    /// User queries to sample (plus as many item queries).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// ef values to try (the version's default is always added).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 20, 40, 64, 100, 200])]
    pub ef: Vec<usize>,
    /// Warn (and exit non-zero) when recall@10 at the default ef is below this.
    #[arg(long, default_value_t = 0.95)]
    pub min_recall: f64,
    /// Sample seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Arguments of `index gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Index directory.
    #[arg(long)]
    pub index: PathBuf,
    /// Versions to keep (CURRENT is always kept).
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
}

/// Runs an `index` subcommand.
pub fn run(cmd: IndexCommand, progress: &dyn Progress) -> Result<()> {
    match cmd {
        IndexCommand::Build(a) => build(a, false, progress),
        IndexCommand::Rebuild(a) => build(a, true, progress),
        IndexCommand::Add(a) => add(a, progress),
        IndexCommand::Check(a) => check_cmd(a, progress),
        IndexCommand::Gc(a) => {
            let r = IndexDir::new(&a.index).gc(a.keep)?;
            let names = |v: &[twotower_index::VersionId]| {
                v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" ")
            };
            println!("kept versions: {}", names(&r.kept));
            println!(
                "removed versions: {}",
                if r.removed.is_empty() {
                    "none".into()
                } else {
                    names(&r.removed)
                }
            );
            if !r.debris.is_empty() {
                println!(
                    "removed {} leftover staging dir(s) of crashed writers",
                    r.debris.len()
                );
            }
            Ok(())
        }
    }
}

fn load_model(dir: &std::path::Path) -> Result<Model> {
    Model::load(dir).with_context(|| format!("loading model {}", dir.display()))
}

fn build(a: BuildArgs, rebuild: bool, progress: &dyn Progress) -> Result<()> {
    let dir = IndexDir::new(&a.index);
    let base = if rebuild {
        // A rebuild keeps the served version's graph parameters unless told otherwise.
        let cur = dir.open_current(None).with_context(|| {
            format!(
                "{} has no index to rebuild (use `index build`)",
                a.index.display()
            )
        })?;
        cur.info().hnsw
    } else {
        HnswParams::default()
    };
    let params = a.graph.resolve(base);
    let model = load_model(&a.model)?;
    let t = Instant::now();
    progress.start("embedding items", None);
    let (ids, vectors) = match &a.data {
        Some(d) => {
            let ds = Dataset::load(d).with_context(|| format!("loading dataset {}", d.display()))?;
            (ds.items.ids().to_vec(), model.embed_items(&ds)?)
        }
        None => (model.item_vocab().ids().to_vec(), model.item_embeddings()?),
    };
    progress.finish();
    let embed_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = dir.build_version(&ids, &vectors, model.dim(), params, model.fingerprint(), progress)?;
    println!(
        "index version {v} of {} items (d={}, m={}, ef_construction={}, ef_search={}) in {}: embedding {embed_s:.2} s, graph {:.2} s",
        ids.len(),
        model.dim(),
        params.m,
        params.ef_construction,
        params.ef_search,
        a.index.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn add(a: AddArgs, progress: &dyn Progress) -> Result<()> {
    let model = load_model(&a.model)?;
    let (mut ids, mut vectors) = (Vec::new(), Vec::new());
    if let Some(d) = &a.data {
        let ds = Dataset::load(d).with_context(|| format!("loading dataset {}", d.display()))?;
        let all = model.embed_items(&ds)?;
        let dim = model.dim();
        if a.only.is_empty() {
            ids = ds.items.ids().to_vec();
            vectors = all;
        } else {
            for id in &a.only {
                let i = ds
                    .items
                    .get(id)
                    .with_context(|| format!("--only: no item {id:?} in {}", d.display()))?;
                ids.push(id.clone());
                vectors.extend_from_slice(&all[i as usize * dim..(i as usize + 1) * dim]);
            }
        }
    }
    if ids.is_empty() && a.remove.is_empty() {
        bail!("nothing to add or remove");
    }
    let r = IndexDir::new(&a.index).add_items(&ids, &vectors, &a.remove, model.fingerprint(), progress)?;
    println!(
        "index version {}: {} added, {} replaced, {} removed",
        r.version, r.added, r.replaced, r.removed
    );
    if !r.not_found.is_empty() {
        println!("not in the index (nothing removed): {}", r.not_found.join(", "));
    }
    Ok(())
}

fn check_cmd(a: CheckArgs, progress: &dyn Progress) -> Result<()> {
    let model = load_model(&a.model)?;
    let t = Instant::now();
    let version = IndexDir::new(&a.index).open_current(Some(model.fingerprint()))?;
    let open_secs = t.elapsed().as_secs_f64();
    let dim = model.dim();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let sample = |rows: &[f32], n: usize, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f32> {
        let total = rows.len() / dim;
        let mut pick: Vec<usize> = (0..total).collect();
        pick.shuffle(rng);
        pick.truncate(n);
        pick.iter()
            .flat_map(|&r| rows[r * dim..(r + 1) * dim].iter().copied())
            .collect()
    };
    let users = sample(&model.user_embeddings()?, a.queries, &mut rng);
    let items = sample(&model.item_embeddings()?, a.queries, &mut rng);
    let params = CheckParams {
        efs: a.ef.clone(),
        min_recall: a.min_recall,
        ..CheckParams::default()
    };
    let mut warnings = Vec::new();
    println!(
        "index version {} of {}: {} rows ({} live), m={}, ef_construction={}, default ef={}; \
         opened and verified in {open_secs:.2} s",
        version.version(),
        a.index.display(),
        version.ids().len(),
        version.live_len(),
        version.info().hnsw.m,
        version.info().hnsw.ef_construction,
        version.info().hnsw.ef_search
    );
    for (what, queries) in [("user queries", &users), ("item queries", &items)] {
        let report = check(&version, queries, &params, progress)?;
        println!(
            "\n{what}: {} (recall@{} against exact search)",
            report.queries, report.k
        );
        println!("{:>6}  {:>9}  {:>12}", "ef", "recall", "queries/s");
        for row in &report.by_ef {
            let mark = if row.ef == report.default_ef {
                " (default)"
            } else {
                ""
            };
            println!(
                "{:>6}  {:>9.4}  {:>12.0}{mark}",
                row.ef, row.recall, row.queries_per_sec
            );
        }
        println!(
            "{:>6}  {:>9.4}  {:>12.0}",
            "exact", 1.0, report.exact_queries_per_sec
        );
        let s = &report.self_reach;
        println!(
            "self-reachability: {}/{} items are their own nearest neighbour, {}/{} in their top {}",
            s.top1, s.checked, s.in_top_k, s.checked, report.k
        );
        warnings.extend(report.warnings.iter().map(|w| format!("{what}: {w}")));
    }
    if !warnings.is_empty() {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        bail!("index check found {} problem(s)", warnings.len());
    }
    Ok(())
}
