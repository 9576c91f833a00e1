//! `twotower index build|rebuild|add|check|gc`: the item tower feeds the index crate. Every write is a
//! new version directory plus an atomic CURRENT swap, so readers (the shell, the server) keep answering
//! from the old version until the new one is complete.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::Instant;
use twotower_data::progress::Progress;
use twotower_data::Dataset;
use twotower_index::{
    list_ids, CheckParams, CheckReport, CheckTarget, HnswParams, IndexLocation, ItemRows, VersionStore,
};
use twotower_towers::Model;

/// Index commands.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Embed every catalog item (cold items from their features) and write a new index version.
    /// On an existing index this starts over from the catalog (like `rebuild --reset`).
    Build(BuildArgs),
    /// Rebuild the index's live set and compact it: exactly the items live in CURRENT (items added
    /// with `index add` stay, removed ones stay out), tombstones dropped; readers move over once
    /// CURRENT swaps.
    ///
    /// With the model the index was built from, live items keep their stored vectors (what that
    /// model gives them, or what `index add` gave them) and items of `--data` are re-embedded from
    /// it. With another model every live item is re-embedded: from `--data` when it has the item,
    /// else from the model's catalog; live items neither has are an error that names them.
    /// `--reset` ignores the live set and rebuilds from the model's (or `--data`'s) whole catalog
    /// instead, as `build` does.
    Rebuild(RebuildArgs),
    /// Make new or changed items searchable without a full rebuild (changed and removed items are
    /// tombstoned; `rebuild` compacts). Items whose vector is unchanged are skipped; `--remove` wins
    /// over `--data`; items the model cannot encode (an id it never saw and no genre, title word or
    /// categorical value it knows) are not added and are listed in a warning.
    Add(AddArgs),
    /// Recall@10 of the HNSW graph against exact search on real user and item queries, by ef, with
    /// queries/s, plus the self-reachability check.
    Check(CheckArgs),
    /// Delete old versions, keeping the newest N and CURRENT.
    Gc(GcArgs),
    /// Write CURRENT's version again in this build's layout, as a new version (same ids, vectors
    /// and graph, so every answer stays the same), after verifying every byte of it: a version
    /// written before `vectors.f32` existed then opens by mapping instead of decoding Parquet.
    Upgrade(UpgradeArgs),
}

/// Arguments of `index upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Index directory.
    #[arg(long)]
    pub index: PathBuf,
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
    pub(crate) fn resolve(&self, base: HnswParams) -> HnswParams {
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
    /// Index directory (created by build), or a Milvus index: `milvus://HOST:PORT/NAME`.
    #[arg(long, value_name = "DIR|milvus://HOST:PORT/NAME")]
    pub index: IndexLocation,
    /// Embed this dataset's catalog instead of the model's own (e.g. an updated items table).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// Arguments of `index rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Rebuild from the model's (or `--data`'s) whole catalog instead of the live set: items added
    /// with `index add` are dropped and removed ones come back.
    #[arg(long)]
    pub reset: bool,
}

/// Arguments of `index add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Model directory (must be the one the index was built from).
    #[arg(long)]
    pub model: PathBuf,
    /// Index directory, or `milvus://HOST:PORT/NAME`.
    #[arg(long, value_name = "DIR|milvus://HOST:PORT/NAME")]
    pub index: IndexLocation,
    /// A dataset whose items (new or changed) are added: e.g. `data import` of an updated catalog.
    #[arg(long, required_unless_present = "remove")]
    pub data: Option<PathBuf>,
    /// Only these item ids of `--data` (comma-separated); default: every item of it.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Item ids to remove (tombstone), comma-separated. They win over `--data`: an id in both is
    /// removed, not added.
    #[arg(long, value_delimiter = ',')]
    pub remove: Vec<String>,
}

/// Arguments of `index check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Model directory (its user tower makes the user queries).
    #[arg(long)]
    pub model: PathBuf,
    /// Index directory, or `milvus://HOST:PORT/NAME` (its rows are read back for exact search).
    #[arg(long, value_name = "DIR|milvus://HOST:PORT/NAME")]
    pub index: IndexLocation,
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
    /// Items to test for self-reachability (default: all of them; 1000 for a Milvus index, which is
    /// searched once per item over the network).
    #[arg(long, value_name = "N")]
    pub self_check: Option<usize>,
}

/// Arguments of `index gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Index directory, or `milvus://HOST:PORT/NAME` (drops old versions' collections).
    #[arg(long, value_name = "DIR|milvus://HOST:PORT/NAME")]
    pub index: IndexLocation,
    /// Versions to keep (CURRENT is always kept).
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
}

/// Runs an `index` subcommand on whatever backend `--index` names.
pub fn run(cmd: IndexCommand, progress: &dyn Progress) -> Result<()> {
    match cmd {
        IndexCommand::Build(a) => build(a, false, progress),
        IndexCommand::Rebuild(a) if a.reset => build(a.build, true, progress),
        IndexCommand::Rebuild(a) => rebuild(a.build, progress),
        IndexCommand::Add(a) => add(a, progress),
        IndexCommand::Check(a) => check_cmd(a, progress),
        IndexCommand::Gc(a) => print_gc(&a.index.open()?.gc(a.keep)?),
        IndexCommand::Upgrade(a) => {
            let dir = twotower_index::IndexDir::new(&a.index);
            match dir.upgrade(progress)? {
                Some(v) => println!(
                    "index version {v} written in {} (the layout of this build)",
                    a.index.display()
                ),
                None => println!(
                    "{}: CURRENT already has the layout of this build",
                    a.index.display()
                ),
            }
            Ok(())
        }
    }
}

pub(crate) fn print_gc(r: &twotower_index::GcReport) -> Result<()> {
    {
        {
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
                    "removed {} leftover(s) of crashed writers: {}",
                    r.debris.len(),
                    r.debris
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            Ok(())
        }
    }
}

pub(crate) fn load_model(dir: &std::path::Path) -> Result<Model> {
    Model::load(dir).with_context(|| format!("loading model {}", dir.display()))
}

/// Items of a dataset embedded by the model, less those it cannot encode.
pub(crate) struct Embedded {
    pub(crate) ids: Vec<String>,
    pub(crate) vectors: Vec<f32>,
    /// Ids the model never saw whose features it knows none of: every one of them would get the
    /// same vector (the out-of-vocabulary id with empty feature bags).
    pub(crate) unencodable: Vec<String>,
}

/// Embeds `ds`'s items (only those of `only`, when given) and sets aside those the model cannot
/// encode ([`Model::encodable_items`]).
pub(crate) fn embed_dataset(model: &Model, ds: &Dataset, path: &Path, only: &[String]) -> Result<Embedded> {
    let all = model.embed_items(ds)?;
    let encodable = model.encodable_items(ds);
    let dim = model.dim();
    let rows: Vec<u32> = if only.is_empty() {
        (0..ds.items.len() as u32).collect()
    } else {
        only.iter()
            .map(|id| {
                ds.items
                    .get(id)
                    .with_context(|| format!("--only: no item {id} in {}", path.display()))
            })
            .collect::<Result<_>>()?
    };
    let mut out = Embedded {
        ids: Vec::with_capacity(rows.len()),
        vectors: Vec::with_capacity(rows.len() * dim),
        unencodable: Vec::new(),
    };
    for r in rows {
        let id = ds.items.id(r);
        if encodable[r as usize] {
            out.ids.push(id.to_string());
            out.vectors
                .extend_from_slice(&all[r as usize * dim..(r as usize + 1) * dim]);
        } else {
            out.unencodable.push(id.to_string());
        }
    }
    Ok(out)
}

pub(crate) fn load_dataset(d: &Path) -> Result<Dataset> {
    Dataset::load(d).with_context(|| format!("loading dataset {}", d.display()))
}

/// Warns about the items of `data` the model cannot encode (they are left out).
pub(crate) fn warn_unencodable(e: &Embedded, data: &Path) {
    if !e.unencodable.is_empty() {
        eprintln!(
            "warning: {} item(s) of {} cannot be encoded by the model (ids it never saw, with no genre, \
             title word or categorical value it knows: they would all get one identical vector) and \
             were left out: {}",
            e.unencodable.len(),
            data.display(),
            list_ids(&e.unencodable, 10)
        );
    }
}

/// `ids` with their vectors as rows for `store`, with titles and genres from `ds` when the store
/// keeps them (none for ids `ds` does not have).
fn item_rows(
    store: &dyn VersionStore,
    ds: Option<&Dataset>,
    ids: Vec<String>,
    vectors: Vec<f32>,
) -> ItemRows {
    let mut rows = ItemRows::bare(ids, vectors);
    let Some(ds) = ds.filter(|_| store.stores_attributes()) else {
        return rows;
    };
    let t = &ds.item_table;
    for id in &rows.ids {
        match ds.items.get(id) {
            Some(r) => {
                rows.titles.push(t.titles[r as usize].clone().unwrap_or_default());
                rows.genres.push(
                    t.genres
                        .row(r as usize)
                        .iter()
                        .map(|&g| t.genres.vocab.id(g).to_string())
                        .collect(),
                );
            }
            None => {
                rows.titles.push(String::new());
                rows.genres.push(Vec::new());
            }
        }
    }
    rows
}

/// Every item of the model's catalogue; titles and genres, when the store keeps them, from the
/// dataset the model was trained on.
fn model_catalogue(store: &dyn VersionStore, model: &Model) -> Result<ItemRows> {
    let ds = if store.stores_attributes() {
        let dir = Path::new(&model.meta().dataset_dir);
        Some(Dataset::load(dir).with_context(|| {
            format!(
                "loading the model's dataset {} for item titles and genres (pass --data to use another copy)",
                dir.display()
            )
        })?)
    } else {
        None
    };
    Ok(item_rows(
        store,
        ds.as_ref(),
        model.item_vocab().ids().to_vec(),
        model.item_embeddings()?,
    ))
}

/// The encodable items of `--data` (those of `only`, when given) embedded as rows for `store`, and
/// how many were left out.
fn embed_data(
    store: &dyn VersionStore,
    model: &Model,
    d: &Path,
    only: &[String],
) -> Result<(ItemRows, Embedded)> {
    let ds = load_dataset(d)?;
    let mut e = embed_dataset(model, &ds, d, only)?;
    warn_unencodable(&e, d);
    let rows = item_rows(
        store,
        Some(&ds),
        std::mem::take(&mut e.ids),
        std::mem::take(&mut e.vectors),
    );
    Ok((rows, e))
}

fn build(a: BuildArgs, reset: bool, progress: &dyn Progress) -> Result<()> {
    let store = a.index.open()?;
    store.check_location()?;
    let base = if reset {
        // A rebuild keeps the served version's graph parameters unless told otherwise.
        let cur = store
            .open_current(None)
            .with_context(|| format!("{} has no index to rebuild (use `index build`)", a.index))?;
        cur.facts().hnsw
    } else {
        HnswParams::default()
    };
    let params = a.graph.resolve(base);
    let model = load_model(&a.model)?;
    let t = Instant::now();
    progress.start("embedding items", None);
    let (rows, left_out) = match &a.data {
        Some(d) => {
            let (rows, e) = embed_data(store.as_ref(), &model, d, &[])?;
            if rows.is_empty() {
                bail!(
                    "none of the {} items of {} can be encoded by the model {}",
                    e.unencodable.len(),
                    d.display(),
                    a.model.display()
                );
            }
            (rows, e.unencodable.len())
        }
        None => (model_catalogue(store.as_ref(), &model)?, 0),
    };
    progress.finish();
    let embed_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = store.build(&rows, model.dim(), params, model.fingerprint(), progress)?;
    println!(
        "index version {v} of {} items{} (d={}, {}) in {}{}: embedding {embed_s:.2} s, index {:.2} s",
        rows.len(),
        if left_out > 0 {
            format!(", {left_out} not encodable left out")
        } else {
            String::new()
        },
        model.dim(),
        params_line(params),
        a.index,
        note(store.as_ref(), v),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// ` (where version `v` lives)` when the backend says more than the location.
fn note(store: &dyn VersionStore, v: twotower_index::VersionId) -> String {
    let n = store.version_note(v);
    if n.is_empty() {
        n
    } else {
        format!(" ({n})")
    }
}

fn rebuild(a: BuildArgs, progress: &dyn Progress) -> Result<()> {
    let store = a.index.open()?;
    let cur = store
        .open_current(None)
        .with_context(|| format!("{} has no index to rebuild (use `index build`)", a.index))?
        .facts();
    let params = a.graph.resolve(cur.hnsw);
    let model = load_model(&a.model)?;
    let same_model = cur.model_fingerprint == model.fingerprint();
    let t = Instant::now();
    progress.start("embedding items", None);
    let mut rows = match &a.data {
        Some(d) => embed_data(store.as_ref(), &model, d, &[])?.0,
        None => ItemRows::default(),
    };
    if !same_model {
        // Another model: its own catalogue for every item --data does not have.
        rows.extend_missing(&model_catalogue(store.as_ref(), &model)?, model.dim());
    }
    progress.finish();
    let embed_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = store
        .rebuild_live(&rows, model.dim(), Some(params), model.fingerprint(), progress)
        .map_err(rebuild_hint)?;
    println!(
        "index version {} of {} items, the live set of version {} ({} re-embedded, {} kept their vectors; \
         tombstones dropped) (d={}, {}) in {}{}: embedding {embed_s:.2} s, index {:.2} s",
        r.version,
        r.rows,
        r.parent,
        r.reembedded,
        r.kept,
        model.dim(),
        params_line(params),
        a.index,
        note(store.as_ref(), r.version),
        t.elapsed().as_secs_f64()
    );
    print_not_live(&r);
    Ok(())
}

/// A rebuild that lacks vectors for live items says what to do about it.
pub(crate) fn rebuild_hint(e: twotower_index::Error) -> anyhow::Error {
    let missing = matches!(e, twotower_index::Error::MissingVectors { .. });
    let e = anyhow::Error::new(e);
    if missing {
        e.context(
            "rebuild keeps the index's live set: pass --data with a dataset that has these items, \
             remove them first (`index add --remove`), or start over from the catalog with --reset",
        )
    } else {
        e
    }
}

/// Graph parameters as the index commands print them.
pub(crate) fn params_line(p: HnswParams) -> String {
    format!(
        "m={}, ef_construction={}, ef_search={}",
        p.m, p.ef_construction, p.ef_search
    )
}

/// `index add`'s result: the counts after `committed` or `unchanged`, then the ids it could not remove.
pub(crate) fn print_add(r: &twotower_index::AddReport, left_out: usize, committed: &str, unchanged: &str) {
    let counts = add_counts(r, left_out);
    if r.committed {
        println!("index version {}{committed}: {counts}", r.version);
    } else {
        println!("index version {}{unchanged}: {counts}", r.version);
    }
    if !r.not_found.is_empty() {
        println!(
            "not in the index (nothing removed): {}",
            list_ids(&r.not_found, 20)
        );
    }
}

/// The items a rebuild of the live set was given but did not add.
pub(crate) fn print_not_live(r: &twotower_index::RebuildReport) {
    if !r.not_live.is_empty() {
        println!(
            "{} item(s) given are not in the index and were not added (removed earlier or never added; \
             `index add` adds them): {}",
            r.not_live.len(),
            list_ids(&r.not_live, 10)
        );
    }
}

/// `index add`'s counts, in one line.
fn add_counts(r: &twotower_index::AddReport, left_out: usize) -> String {
    let mut counts = format!(
        "{} added, {} replaced, {} unchanged, {} removed",
        r.added, r.replaced, r.unchanged, r.removed
    );
    if left_out > 0 {
        counts.push_str(&format!(", {left_out} not encodable (not added)"));
    }
    counts
}

fn add(a: AddArgs, progress: &dyn Progress) -> Result<()> {
    let store = a.index.open()?;
    let model = load_model(&a.model)?;
    let (mut rows, mut left_out) = (ItemRows::default(), 0);
    if let Some(d) = &a.data {
        let (r, e) = embed_data(store.as_ref(), &model, d, &a.only)?;
        if r.is_empty() && a.remove.is_empty() {
            bail!(
                "nothing to add: none of the {} item(s) of {} can be encoded by the model {}",
                e.unencodable.len(),
                d.display(),
                a.model.display()
            );
        }
        (rows, left_out) = (r, e.unencodable.len());
    }
    if rows.is_empty() && a.remove.is_empty() {
        bail!("nothing to add or remove");
    }
    let r = store.add(&rows, model.dim(), &a.remove, model.fingerprint(), progress)?;
    print_add(
        &r,
        left_out,
        &note(store.as_ref(), r.version),
        " unchanged (no new version)",
    );
    Ok(())
}

pub(crate) fn check_cmd(a: CheckArgs, progress: &dyn Progress) -> Result<()> {
    let model = load_model(&a.model)?;
    let t = Instant::now();
    let store = a.index.open()?;
    // An open checks sizes and headers; check verifies every byte (checksums, every graph list).
    store.verify_current()?;
    let verify_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let target = store.open_current(Some(model.fingerprint()))?;
    let f = target.facts();
    let header = format!(
        "index version {} of {}: {} rows ({} live), m={}, ef_construction={}, default ef={}; \
         verified in {verify_s:.2} s, opened in {:.2} s",
        f.version,
        f.path,
        f.rows,
        f.items,
        f.hnsw.m,
        f.hnsw.ef_construction,
        f.hnsw.ef_search,
        t.elapsed().as_secs_f64()
    );
    let (users, items) = sample_queries(&model, a.queries, a.seed)?;
    let params = CheckParams {
        efs: a.ef.clone(),
        min_recall: a.min_recall,
        // A backend searched over the network tests a sample unless told otherwise.
        self_check_sample: a.self_check.or(store.default_self_check()),
        unreachable_is_damage: store.builds_graph(),
        ..CheckParams::default()
    };
    let (mut warnings, mut notes) = (Vec::new(), Vec::new());
    println!("{header}");
    let measured = CheckTarget::new(target.as_ref(), progress)?;
    for (what, queries) in [("user queries", &users), ("item queries", &items)] {
        let report = measured.check(queries, &params, progress)?;
        print_check(what, &report);
        warnings.extend(report.warnings.iter().map(|w| format!("{what}: {w}")));
        notes.extend(report.notes.iter().map(|n| format!("{what}: {n}")));
    }
    for n in &notes {
        eprintln!("warning: {}", crate::term::text(n));
    }
    if !warnings.is_empty() {
        for w in &warnings {
            eprintln!("warning: {}", crate::term::text(w));
        }
        bail!("index check found {} problem(s)", warnings.len());
    }
    Ok(())
}

/// `n` user vectors and `n` item vectors of the model, sampled without repeats with `seed`: the
/// queries `index check` (and `report`) measure an index with.
pub(crate) fn sample_queries(model: &Model, n: usize, seed: u64) -> Result<(Vec<f32>, Vec<f32>)> {
    let users = model.user_embeddings()?;
    let items = model.item_embeddings()?;
    Ok(sample_vectors(&users, &items, model.dim(), n, seed))
}

/// [`sample_queries`] from the model's user and item vectors already computed.
pub(crate) fn sample_vectors(
    users: &[f32],
    items: &[f32],
    dim: usize,
    n: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut sample = |rows: &[f32]| -> Vec<f32> {
        let mut pick: Vec<usize> = (0..rows.len() / dim).collect();
        pick.shuffle(&mut rng);
        pick.truncate(n);
        pick.iter()
            .flat_map(|&r| rows[r * dim..(r + 1) * dim].iter().copied())
            .collect()
    };
    (sample(users), sample(items))
}

/// One query set's table: recall and queries/s by ef, then self-reachability.
fn print_check(what: &str, report: &CheckReport) {
    {
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
    }
}
