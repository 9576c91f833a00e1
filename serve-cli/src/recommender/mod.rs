//! The recommender behind the shell, batch jobs, the server and the benchmarks: a loaded model, the
//! dataset's catalog and the live index behind an `ArcSwap`, which a rebuild can replace underneath
//! without a reader ever seeing half of it. Front ends only parse and render.

mod answer;
mod backend;
mod catalog;
mod error;
mod ids;
mod spaces;
mod watch;

pub use answer::{Answer, Query, Ranked, Source};
pub use backend::{BackendInfo, CatalogIndex, Exclude, Filter, HitItem, ItemHit, SearchParams};
pub use catalog::{Catalog, ItemInfo};
pub use error::{RecError, Result};
pub use ids::{check_id, DataItem, DataUser, Genre, ModelItem, ModelRows, Resolver, RowMaps};
pub use twotower_index::IndexLocation;
pub use watch::{Poll, ReloadGate};

use arc_swap::ArcSwap;
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use twotower_data::Dataset;
use twotower_index::{VersionId, VersionStore};
use twotower_towers::Model;

/// Where a recommender's parts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommenderConfig {
    /// Model directory (from `twotower train`).
    pub model: PathBuf,
    /// Index directory (from `twotower index build`) or Milvus address.
    pub index: IndexLocation,
    /// Dataset for titles, genres and histories, when not the one the model was trained on.
    pub data: Option<PathBuf>,
}

/// Per-query settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOpts {
    /// Results wanted.
    pub k: usize,
    /// HNSW search breadth (at least `k` is used).
    pub ef: usize,
    /// Search the exact index instead, and report how much of its top-k HNSW finds.
    pub exact: bool,
    /// Leave out items the user interacted with in training.
    pub exclude_seen: bool,
    /// Only items of this genre.
    pub genre: Option<String>,
    /// Answer an unknown user with popular items (otherwise [`RecError::UnknownUser`]).
    pub fallback: bool,
    /// The largest `k` and `ef` this front end accepts (the server's `--max-k`), checked once, with
    /// the rest of the options, when a query runs.
    pub limits: Limits,
}

/// Bounds on `k` and `ef`: both size per-query buffers, so they are bounded before anything is
/// allocated. At most [`MAX_K`] whatever the front end asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `k`.
    pub max_k: usize,
    /// Largest `ef`.
    pub max_ef: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_k: MAX_K,
            max_ef: MAX_K,
        }
    }
}

impl Default for QueryOpts {
    fn default() -> Self {
        QueryOpts {
            k: 10,
            ef: 64,
            exact: false,
            exclude_seen: true,
            genre: None,
            fallback: true,
            limits: Limits::default(),
        }
    }
}

/// The largest k (and search breadth) a query may ask for, whatever the front end's own limit.
pub const MAX_K: usize = 100_000;

impl QueryOpts {
    fn params(&self) -> SearchParams {
        SearchParams {
            k: self.k,
            ef: self.ef.max(self.k),
            exact: self.exact,
        }
    }

    fn check(&self) -> Result<()> {
        for (name, v, max) in [
            ("k", self.k, self.limits.max_k.min(MAX_K)),
            ("ef", self.ef, self.limits.max_ef.min(MAX_K)),
        ] {
            if v == 0 || v > max {
                return Err(RecError::BadParameter(format!(
                    "{name} must be at least 1 and at most {max}, not {v}"
                )));
            }
        }
        Ok(())
    }
}

/// Everything one answer reads, swapped as a whole: a new index version built from a retrained
/// model brings that model along, so no request mixes a model with another model's index.
pub struct Snapshot {
    /// The model the live index was built from.
    pub model: Arc<Model>,
    /// The dataset side.
    pub catalog: Arc<Catalog>,
    /// The live index.
    pub index: Arc<CatalogIndex>,
    model_rows: ModelRows,
}

/// Model, catalog and live index behind an atomic pointer: readers take a snapshot per request.
pub struct Recommender {
    state: ArcSwap<Snapshot>,
    store: Box<dyn VersionStore>,
    config: RecommenderConfig,
}

impl Recommender {
    /// Loads the model, its dataset (from `config.data` or the path the model recorded) and the
    /// index version CURRENT names, checking that the index was built from this model. What each
    /// part's open checks (sizes, headers, the checksums of the small files it parses) and what it
    /// maps instead of reading is described at [`Model::load_for_serving`],
    /// [`Dataset::load_for_serving`] and [`twotower_index::IndexDir::open_version`].
    pub fn open(config: RecommenderConfig) -> Result<Recommender> {
        let store = config.index.open()?;
        let model = Arc::new(load_model(&config.model)?);
        let catalog = Arc::new(load_catalog(&model, config.data.as_deref())?);
        let index = store.open_current(Some(model.fingerprint()))?;
        let index = CatalogIndex::new(index, catalog.clone());
        Ok(Recommender {
            state: ArcSwap::from_pointee(Snapshot::new(model, catalog, Arc::new(index))),
            store,
            config,
        })
    }

    /// A consistent snapshot of model, catalog and index for one request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.state.load_full()
    }

    /// Where the parts were loaded from.
    pub fn config(&self) -> &RecommenderConfig {
        &self.config
    }

    /// The backend being searched.
    pub fn backend(&self) -> BackendInfo {
        self.snapshot().index.info()
    }

    /// Loads the version CURRENT names now and swaps it in; returns that version. When the new
    /// version was built from another model, the model directory is reloaded too and must match.
    pub fn reload(&self) -> Result<VersionId> {
        let old = self.snapshot();
        // Loaded beside the live version; only a complete, verified version is ever swapped in.
        let index = self.store.open_current(None)?;
        let wanted = index.model_fingerprint().to_string();
        let (model, catalog) = if wanted == old.model.fingerprint() {
            (old.model.clone(), old.catalog.clone())
        } else {
            let model = Arc::new(load_model(&self.config.model)?);
            if model.fingerprint() != wanted {
                return Err(RecError::Internal(format!(
                    "index version in {} was built from model {wanted}, but {} holds model {}; \
                     keeping the current version",
                    self.store.describe(),
                    self.config.model.display(),
                    model.fingerprint()
                )));
            }
            let catalog = Arc::new(load_catalog(&model, self.config.data.as_deref())?);
            (model, catalog)
        };
        let index = Arc::new(CatalogIndex::new(index, catalog.clone()));
        let v = index.version();
        self.state.store(Arc::new(Snapshot::new(model, catalog, index)));
        Ok(v)
    }

    /// Follows CURRENT when a rebuild moved it; `Some(version)` when it did.
    pub fn reload_if_changed(&self) -> Result<Option<VersionId>> {
        let current = self.store.current_required()?;
        if current == self.snapshot().index.version() {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    /// What a reload would read (CURRENT, the version it names, the model's manifest), for
    /// [`ReloadGate`]: a failed reload is retried only once this changes.
    pub fn watch_stamp(&self) -> watch::Stamp {
        watch::Stamp::of(self.store.as_ref(), &self.config.model)
    }

    /// One line for the shell's greeting.
    pub fn banner(&self) -> String {
        let st = self.snapshot();
        let b = st.index.info();
        format!(
            "twotower: model {} (d={}), {} items, {} users, index version {} ({} rows)",
            self.config.model.display(),
            st.model.dim(),
            st.catalog.data().items.len(),
            st.catalog.data().users.len(),
            b.version,
            b.items,
        )
    }

    /// Model, dataset and index facts for `stats`.
    pub fn describe(&self) -> serde_json::Value {
        let st = self.snapshot();
        let b = st.index.info();
        json!({
            "model": self.config.model.display().to_string(),
            "model_fingerprint": st.model.fingerprint(),
            "dim": st.model.dim(),
            "dataset": st.catalog.data().dir.display().to_string(),
            "items": st.catalog.data().items.len(),
            "users": st.catalog.data().users.len(),
            "index": b.path,
            "index_version": b.version.to_string(),
            "index_rows": b.items,
            "backend": b,
        })
    }

    /// Item facts by id.
    pub fn item(&self, id: &str) -> Result<ItemInfo> {
        let st = self.snapshot();
        let i = Resolver::new(&st.catalog).item(id)?;
        Ok(st.catalog.info(i))
    }

    /// Items whose title contains every word (case-insensitive), most interacted first.
    pub fn find(&self, words: &str, limit: usize) -> Vec<ItemInfo> {
        self.snapshot().catalog.find(words, limit)
    }

    /// All genre names.
    pub fn genres(&self) -> Vec<String> {
        self.snapshot().catalog.genres()
    }

    /// Checks a genre name (for a filter set once and used later).
    pub fn check_genre(&self, g: &str) -> Result<()> {
        let st = self.snapshot();
        Resolver::new(&st.catalog).genre(Some(g)).map(|_| ())
    }

    /// The user's latest `n` training interactions, newest first.
    pub fn history(&self, user: &str, n: usize) -> Result<Vec<(ItemInfo, i64)>> {
        self.snapshot().catalog.history(user, n)
    }

    /// See [`Snapshot::recommend_user`].
    pub fn recommend_user(&self, user: &str, opts: &QueryOpts) -> Result<Answer> {
        self.snapshot().recommend_user(user, opts)
    }

    /// See [`Snapshot::recommend_users`].
    pub fn recommend_users(&self, users: &[String], opts: &QueryOpts) -> Result<Vec<Answer>> {
        self.snapshot().recommend_users(users, opts)
    }

    /// See [`Snapshot::recommend_users_in_blocks`].
    pub fn recommend_users_in_blocks<E: From<RecError>>(
        &self,
        users: &[String],
        opts: &QueryOpts,
        block: usize,
        sink: impl FnMut(&[String], Vec<Answer>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.snapshot()
            .recommend_users_in_blocks(users, opts, block, sink)
    }

    /// See [`Snapshot::recommend_recent`].
    pub fn recommend_recent(&self, items: &[String], opts: &QueryOpts) -> Result<Answer> {
        self.snapshot().recommend_recent(items, opts)
    }

    /// See [`Snapshot::similar`].
    pub fn similar(&self, item: &str, opts: &QueryOpts) -> Result<Answer> {
        self.snapshot().similar(item, opts)
    }
}

/// A user request resolved once: who, where the vector comes from, what to leave out.
struct UserPlan {
    user: DataUser,
    source: Source,
    filter: Filter,
}

impl Snapshot {
    fn new(model: Arc<Model>, catalog: Arc<Catalog>, index: Arc<CatalogIndex>) -> Snapshot {
        let model_rows = ModelRows::new(&model, &catalog);
        Snapshot {
            model,
            catalog,
            index,
            model_rows,
        }
    }

    fn resolver(&self) -> Resolver<'_> {
        Resolver::new(&self.catalog)
    }

    /// Resolves a user id; `None` for an unknown user (popularity fallback).
    fn plan_user(&self, user: &str, opts: &QueryOpts, genre: Option<Genre>) -> Result<Option<UserPlan>> {
        check_id("user", user)?;
        let Some(u) = self.resolver().user(user) else {
            if opts.fallback {
                return Ok(None);
            }
            return Err(RecError::UnknownUser(user.to_string()));
        };
        let source = if self.catalog.has_history(u) {
            Source::Known
        } else {
            Source::Features
        };
        let filter = if opts.exclude_seen {
            // Read in place: the seen set is stored sorted without repeats.
            Filter::seen(&self.catalog, u, genre)
        } else {
            Filter::new(vec![], genre)
        };
        Ok(Some(UserPlan {
            user: u,
            source,
            filter,
        }))
    }

    /// Top-k for a user id: the user tower on id, features and full training history; a user with
    /// no history is embedded from features; an unknown id gets popular items (with `opts.fallback`).
    pub fn recommend_user(&self, user: &str, opts: &QueryOpts) -> Result<Answer> {
        opts.check()?;
        let genre = self.resolver().genre(opts.genre.as_deref())?;
        let query = Query::User(user.to_string());
        let Some(plan) = self.plan_user(user, opts, genre)? else {
            return Ok(self.popular_answer(query, opts, genre));
        };
        let t = Instant::now();
        let q = self.user_vector(plan.user, None)?;
        let embed_ms = ms(t);
        self.search(query, &q, opts, &plan.filter, plan.source, embed_ms)
    }

    /// Top-k for many users at once: every user is resolved and embedded first, then all are searched
    /// in one [`CatalogIndex::search_batch`]. Answers come in the order of `users`.
    pub fn recommend_users(&self, users: &[String], opts: &QueryOpts) -> Result<Vec<Answer>> {
        self.recommend_users_with(users, opts, None)
    }

    /// [`Snapshot::recommend_users`] over a long list, handed to `sink` `block` users at a time (the
    /// batch job streams them to disk). When the list covers a large share of the model's users,
    /// user vectors come from the model's batched pass, computed one chunk of model rows at a time
    /// as the blocks reach them ([`UserChunks`]): the same vectors [`Model::user_embeddings`] gives,
    /// bit for bit, without holding the whole table or waiting for it before the first answer.
    /// Otherwise each block embeds its own users.
    pub fn recommend_users_in_blocks<E: From<RecError>>(
        &self,
        users: &[String],
        opts: &QueryOpts,
        block: usize,
        mut sink: impl FnMut(&[String], Vec<Answer>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let model_users = self.model.user_vocab().len();
        let mut table = (model_users > 0 && users.len().saturating_mul(4) >= model_users)
            .then(|| UserChunks::new(&self.model));
        for chunk in users.chunks(block.max(1)) {
            if let Some(t) = table.as_mut() {
                let rows = chunk
                    .iter()
                    .filter_map(|id| self.resolver().user(id))
                    .filter_map(|u| self.model_rows.user(u));
                t.prepare(rows)?;
            }
            let answers = self.recommend_users_with(chunk, opts, table.as_ref())?;
            sink(chunk, answers)?;
        }
        Ok(())
    }

    /// The vector of a known user: from `table` (the model's batched pass) when given and the
    /// model knows the user, otherwise embedded now (by model row; a user the model does not know
    /// from features alone).
    fn user_vector(&self, user: DataUser, table: Option<&UserChunks<'_>>) -> Result<Vec<f32>> {
        match (self.model_rows.user(user), table) {
            (Some(row), Some(t)) => match t.vector(row) {
                Some(v) => Ok(v.to_vec()),
                None => Ok(self.model.embed_user_rows(&[row])?),
            },
            (Some(row), None) => Ok(self.model.embed_user_rows(&[row])?),
            (None, _) => Ok(self.model.embed_user(self.catalog.data().users.id(user.0), &[])?),
        }
    }

    fn recommend_users_with(
        &self,
        users: &[String],
        opts: &QueryOpts,
        table: Option<&UserChunks<'_>>,
    ) -> Result<Vec<Answer>> {
        opts.check()?;
        let genre = self.resolver().genre(opts.genre.as_deref())?;
        let plans: Vec<Option<UserPlan>> = users
            .iter()
            .map(|u| self.plan_user(u, opts, genre))
            .collect::<Result<_>>()?;
        let known: Vec<&UserPlan> = plans.iter().flatten().collect();
        let t = Instant::now();
        // Each user's vector straight into its place in the batch's query buffer.
        let d = self.model.dim();
        let mut queries = vec![0f32; known.len() * d];
        queries
            .par_chunks_mut(d.max(1))
            .zip(known.par_iter())
            .try_for_each(|(out, p)| -> Result<()> {
                out.copy_from_slice(&self.user_vector(p.user, table)?);
                Ok(())
            })?;
        let embed_ms = ms(t);
        let t = Instant::now();
        let filters: Vec<Filter> = known.iter().map(|p| p.filter.clone()).collect();
        let params = opts.params();
        let mut hits = self.index.search_batch(&queries, params, &filters)?.into_iter();
        let mut exact_hits = if opts.exact {
            let approx = SearchParams {
                exact: false,
                ..params
            };
            Some(self.index.search_batch(&queries, approx, &filters)?.into_iter())
        } else {
            None
        };
        let search_ms = ms(t);
        let n = known.len().max(1) as f64;
        let version = self.index.version();
        let mut out = Vec::with_capacity(users.len());
        for (id, plan) in users.iter().zip(&plans) {
            let query = Query::User(id.clone());
            let Some(plan) = plan else {
                out.push(self.popular_answer(query, opts, genre));
                continue;
            };
            let h = hits.next().unwrap_or_default();
            let overlap = exact_hits
                .as_mut()
                .map(|a| overlap(&h, &a.next().unwrap_or_default()));
            out.push(self.answer(
                query,
                plan.source,
                h,
                overlap,
                version,
                embed_ms / n,
                search_ms / n,
            ));
        }
        Ok(out)
    }

    /// Top-k for an anonymous user who just touched `items` (oldest first): the real-time path, the
    /// user tower with an out-of-vocabulary id, no retraining. Unknown ids are an error that lists them.
    pub fn recommend_recent(&self, items: &[String], opts: &QueryOpts) -> Result<Answer> {
        opts.check()?;
        if items.is_empty() {
            return Err(RecError::BadParameter(
                "recent_items is empty: give at least one item".into(),
            ));
        }
        let resolver = self.resolver();
        let idx = resolver.items(items)?;
        let genre = resolver.genre(opts.genre.as_deref())?;
        let t = Instant::now();
        let rows: Vec<u32> = idx.iter().map(|&i| self.model_rows.of(i).0).collect();
        let q = self.model.embed_recent(&rows)?;
        let embed_ms = ms(t);
        let exclude = if opts.exclude_seen { idx } else { vec![] };
        let filter = Filter::new(exclude, genre);
        self.search(
            Query::RecentItems(items.to_vec()),
            &q,
            opts,
            &filter,
            Source::Items,
            embed_ms,
        )
    }

    /// Items closest to an item (its indexed vector), the item itself left out.
    pub fn similar(&self, item: &str, opts: &QueryOpts) -> Result<Answer> {
        opts.check()?;
        let resolver = self.resolver();
        let i = resolver.item(item)?;
        let genre = resolver.genre(opts.genre.as_deref())?;
        let q = self.index.item_vector(i)?.ok_or_else(|| RecError::NotIndexed {
            item: item.to_string(),
            version: self.index.version().to_string(),
        })?;
        let filter = Filter::new(vec![i], genre);
        self.search(
            Query::Item(item.to_string()),
            &q,
            opts,
            &filter,
            Source::Items,
            0.0,
        )
    }

    /// The most popular items (training interactions), for users the model cannot place.
    fn popular_answer(&self, query: Query, opts: &QueryOpts, genre: Option<Genre>) -> Answer {
        let t = Instant::now();
        let c = &self.catalog;
        let results = c
            .popular()
            .filter(|&(i, _)| c.in_genre(i, genre))
            .take(opts.k)
            .enumerate()
            .map(|(r, (i, score))| ranked(c, r, c.info(i), score))
            .collect();
        let search_ms = ms(t);
        Answer {
            query,
            source: Source::Popularity,
            index_version: self.index.version(),
            took_ms: search_ms,
            results,
            exact_overlap: None,
            embed_ms: 0.0,
            search_ms,
        }
    }

    fn search(
        &self,
        query: Query,
        q: &[f32],
        opts: &QueryOpts,
        filter: &Filter,
        source: Source,
        embed_ms: f64,
    ) -> Result<Answer> {
        let t = Instant::now();
        let params = opts.params();
        let hits = self.index.search(q, params, filter)?;
        let overlap = if opts.exact {
            let approx = self.index.search(
                q,
                SearchParams {
                    exact: false,
                    ..params
                },
                filter,
            )?;
            Some(overlap(&hits, &approx))
        } else {
            None
        };
        let search_ms = ms(t);
        Ok(self.answer(
            query,
            source,
            hits,
            overlap,
            self.index.version(),
            embed_ms,
            search_ms,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        query: Query,
        source: Source,
        hits: Vec<ItemHit>,
        exact_overlap: Option<f64>,
        index_version: VersionId,
        embed_ms: f64,
        search_ms: f64,
    ) -> Answer {
        let c = &self.catalog;
        let results = hits
            .into_iter()
            .enumerate()
            .map(|(r, h)| {
                let info = match h.item {
                    HitItem::Data(i) => c.info(i),
                    HitItem::Foreign(id) => ItemInfo {
                        id,
                        title: None,
                        genres: vec![],
                        interactions: 0,
                    },
                };
                ranked(c, r, info, h.score)
            })
            .collect();
        Answer {
            query,
            source,
            index_version,
            took_ms: embed_ms + search_ms,
            results,
            exact_overlap,
            embed_ms,
            search_ms,
        }
    }
}

/// The model's user vectors in chunks of [`Model::USER_CHUNK`] model rows, each embedded by one
/// [`Model::embed_user_rows`] call over exactly the rows [`Model::user_embeddings`] embeds together,
/// so every vector is bit-identical to that table's. At most [`UserChunks::KEEP`] chunks are held
/// (a few MB each), the oldest dropped first: memory stays bounded however many users are asked.
struct UserChunks<'m> {
    model: &'m Model,
    /// (chunk number, its vectors), oldest first.
    chunks: Vec<(usize, Vec<f32>)>,
}

impl<'m> UserChunks<'m> {
    const KEEP: usize = 2;

    fn new(model: &'m Model) -> Self {
        UserChunks {
            model,
            chunks: Vec::new(),
        }
    }

    /// Embeds the chunks holding `rows` that are not held yet.
    fn prepare(&mut self, rows: impl Iterator<Item = u32>) -> Result<()> {
        let size = Model::USER_CHUNK;
        let n = self.model.user_vocab().len();
        let mut wanted: Vec<usize> = rows.map(|r| r as usize / size).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let keep = Self::KEEP.max(wanted.len());
        for c in wanted {
            if self.chunks.iter().any(|&(k, _)| k == c) {
                continue;
            }
            let rows: Vec<u32> = (c * size..((c + 1) * size).min(n)).map(|r| r as u32).collect();
            let v = self.model.embed_user_rows(&rows)?;
            self.chunks.push((c, v));
        }
        let extra = self.chunks.len().saturating_sub(keep);
        self.chunks.drain(..extra);
        Ok(())
    }

    /// The vector of model row `row`, when its chunk is held.
    fn vector(&self, row: u32) -> Option<&[f32]> {
        let size = Model::USER_CHUNK;
        let d = self.model.dim();
        let (c, at) = (row as usize / size, row as usize % size);
        let (_, v) = self.chunks.iter().find(|&&(k, _)| k == c)?;
        v.get(at * d..(at + 1) * d)
    }
}

fn ranked(_: &Catalog, r: usize, info: ItemInfo, score: f32) -> Ranked {
    Ranked {
        rank: r + 1,
        item: info.id,
        title: info.title,
        genres: info.genres,
        score,
    }
}

/// The fraction of the exact hits that the approximate search also found.
fn overlap(exact: &[ItemHit], approx: &[ItemHit]) -> f64 {
    let found = approx
        .iter()
        .filter(|h| exact.iter().any(|e| e.item == h.item))
        .count();
    found as f64 / exact.len().max(1) as f64
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn load_model(dir: &Path) -> Result<Model> {
    // Checksums were verified when the model was committed; an open checks sizes (`Model::load_for_serving`).
    Model::load_for_serving(dir).map_err(|e| RecError::load(format!("loading model {}", dir.display()), e))
}

fn load_catalog(model: &Model, data: Option<&Path>) -> Result<Catalog> {
    let dir = data.map_or_else(|| PathBuf::from(&model.meta().dataset_dir), Path::to_path_buf);
    let (data, tables) = load_dataset(&dir)?;
    // Users, histories and titles must be the model's own: another dataset would answer its users
    // from the wrong rows without an error.
    model.check_dataset(&data, "--data")?;
    Ok(Catalog::new(data, tables))
}

/// The dataset's tables and the serving tables of its training part: mapped from its `serving/`
/// artifact when it has a current one, otherwise built from the training part, read and verified
/// (`Dataset::load_for_serving`).
fn load_dataset(dir: &Path) -> Result<(Dataset, twotower_data::ServingTables)> {
    Dataset::load_for_serving(dir).map_err(|e| {
        RecError::load(
            format!(
                "loading dataset {} (the model's; pass --data to use another copy)",
                dir.display()
            ),
            e,
        )
    })
}
