//! The recommendation engine behind the shell, batch jobs and the server: a loaded model, the dataset's
//! catalog (titles, genres, what each user has seen) and the live index version, which a rebuild can
//! replace underneath without a reader ever seeing half of one (an `ArcSwap` of a fully loaded version).

use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use twotower_data::{Dataset, UserHistories};
use twotower_index::{Hit, IndexDir, IndexVersion, VersionId};
use twotower_towers::Model;

/// Where an engine's parts live: the flags every serving command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Model directory (from `twotower train`).
    #[arg(long)]
    pub model: PathBuf,
    /// Index directory (from `twotower index build`); rebuilds are followed while running.
    #[arg(long)]
    pub index: PathBuf,
    /// Dataset directory for titles, genres and histories, when not the one the model was trained on.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl EngineArgs {
    /// Loads the engine these flags name.
    pub fn open(&self) -> Result<Engine> {
        Engine::open(&self.model, &self.index, self.data.as_deref())
    }
}

/// Per-query settings.
#[derive(Debug, Clone)]
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
}

impl Default for QueryOpts {
    fn default() -> Self {
        QueryOpts {
            k: 10,
            ef: 64,
            exact: false,
            exclude_seen: true,
            genre: None,
        }
    }
}

/// Where a user's vector came from, so answers can say how much to trust them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A user seen in training: id, features and history.
    Known,
    /// A user with features but no training interactions.
    Features,
    /// Unknown user: most popular items.
    Popularity,
    /// An anonymous user described by items (the real-time path) or an item-to-item query.
    Items,
}

impl Source {
    /// Stable name for machine output.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Known => "known",
            Source::Features => "features",
            Source::Popularity => "popularity",
            Source::Items => "items",
        }
    }
}

/// What a person needs to recognise an item.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemInfo {
    /// Item id.
    pub id: String,
    /// Title, when the catalog has one.
    pub title: Option<String>,
    /// Genre names.
    pub genres: Vec<String>,
    /// Training interactions of the item.
    pub interactions: u64,
}

/// One recommended item.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The item.
    pub info: ItemInfo,
    /// Cosine score (popularity fallback: share of interactions).
    pub score: f32,
}

/// A ranked answer with its timings.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Where the query vector came from.
    pub source: Source,
    /// Best first.
    pub results: Vec<Scored>,
    /// Time to embed the query, ms.
    pub embed_ms: f64,
    /// Time to search, ms.
    pub search_ms: f64,
    /// The index version that answered.
    pub index_version: VersionId,
    /// With `exact`: the fraction of the exact top-k that HNSW also returns.
    pub exact_overlap: Option<f64>,
}

impl Answer {
    /// Embedding plus search time, ms.
    pub fn elapsed_ms(&self) -> f64 {
        self.embed_ms + self.search_ms
    }
}

/// A loaded index version with its row ⇄ catalog maps.
pub struct Live {
    /// The index version (HNSW, exact, ids, tombstones).
    pub index: IndexVersion,
    /// Index row → dataset item (u32::MAX: an item the dataset does not know, added by `index add`).
    pub row_item: Vec<u32>,
    /// Dataset item → index row (u32::MAX: not in the index).
    pub item_row: Vec<u32>,
}

/// The dataset's side of answers: titles and genres, what each user has seen, popularity.
pub struct Catalog {
    data: Dataset,
    histories: UserHistories,
    /// Per user, training items sorted ascending (for "exclude seen").
    seen: Vec<Vec<u32>>,
    /// Training interactions per item.
    counts: Vec<u64>,
    /// Items by descending count (popularity fallback).
    popular: Vec<u32>,
}

impl Catalog {
    /// Indexes a dataset's training interactions for answering.
    pub fn new(data: Dataset) -> Catalog {
        let train = data.training();
        let (n_users, n_items) = (data.users.len(), data.items.len());
        let histories = UserHistories::build(train, n_users);
        let mut seen = vec![Vec::new(); n_users];
        let mut counts = vec![0u64; n_items];
        for (&u, &i) in train.user.iter().zip(&train.item) {
            seen[u as usize].push(i);
            counts[i as usize] += 1;
        }
        for s in &mut seen {
            s.sort_unstable();
            s.dedup();
        }
        let mut popular: Vec<u32> = (0..n_items as u32).collect();
        popular.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
        Catalog {
            data,
            histories,
            seen,
            counts,
            popular,
        }
    }
}

/// Everything one answer reads, swapped as a whole: a new index version built from a retrained
/// model brings that model along, so no request mixes a model with another model's index.
pub struct State {
    /// The model the live index was built from.
    pub model: Arc<Model>,
    /// The dataset side.
    pub catalog: Arc<Catalog>,
    /// The live index version.
    pub live: Live,
}

/// Model, catalog and live index behind an atomic pointer: readers take a snapshot per request.
pub struct Engine {
    state: ArcSwap<State>,
    index_dir: IndexDir,
    model_dir: PathBuf,
    data_override: Option<PathBuf>,
}

impl Engine {
    /// Loads the model, its dataset (from `data` or the path the model recorded) and the index
    /// version CURRENT names, checking that the index was built from this model.
    pub fn open(model_dir: &Path, index_dir: &Path, data: Option<&Path>) -> Result<Engine> {
        let index_dir = IndexDir::new(index_dir);
        let model = Arc::new(load_model(model_dir)?);
        let catalog = Arc::new(load_catalog(&model, data)?);
        let live = load_live(&index_dir, &model, &catalog.data)?;
        Ok(Engine {
            state: ArcSwap::from_pointee(State { model, catalog, live }),
            index_dir,
            model_dir: model_dir.to_path_buf(),
            data_override: data.map(Path::to_path_buf),
        })
    }

    /// A consistent snapshot of model, catalog and index for one request.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// Loads the version CURRENT names now and swaps it in; returns that version. When the new
    /// version was built from another model, the model directory is reloaded too and must match.
    pub fn reload(&self) -> Result<VersionId> {
        let old = self.state.load_full();
        // Loaded beside the live version; only a complete, verified version is ever swapped in.
        let index = self.index_dir.open_current(None)?;
        let wanted = index.info().model_fingerprint.clone();
        let (model, catalog) = if wanted == old.model.fingerprint() {
            (old.model.clone(), old.catalog.clone())
        } else {
            let model = Arc::new(load_model(&self.model_dir)?);
            if model.fingerprint() != wanted {
                bail!(
                    "index version in {} was built from model {wanted}, but {} holds model {}; \
                     keeping the current version",
                    self.index_dir.root().display(),
                    self.model_dir.display(),
                    model.fingerprint()
                );
            }
            let catalog = Arc::new(load_catalog(&model, self.data_override.as_deref())?);
            (model, catalog)
        };
        let live = live_maps(index, &catalog.data);
        let v = live.index.version();
        self.state.store(Arc::new(State { model, catalog, live }));
        Ok(v)
    }

    /// Follows CURRENT when a rebuild moved it; `Some(version)` when it did.
    pub fn reload_if_changed(&self) -> Result<Option<VersionId>> {
        let current = self.index_dir.current()?;
        if current == self.state.load().live.index.version() {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    /// One line for the shell's greeting.
    pub fn banner(&self) -> String {
        let st = self.state();
        format!(
            "twotower: model {} (d={}), {} items, {} users, index version {} ({} rows)",
            self.model_dir.display(),
            st.model.dim(),
            st.catalog.data.items.len(),
            st.catalog.data.users.len(),
            st.live.index.version(),
            st.live.index.live_len(),
        )
    }

    /// Model, dataset and index facts for `stats`.
    pub fn describe(&self) -> serde_json::Value {
        let st = self.state();
        json!({
            "model": self.model_dir.display().to_string(),
            "model_fingerprint": st.model.fingerprint(),
            "dim": st.model.dim(),
            "dataset": st.catalog.data.dir.display().to_string(),
            "items": st.catalog.data.items.len(),
            "users": st.catalog.data.users.len(),
            "index": self.index_dir.root().display().to_string(),
            "index_version": st.live.index.version().to_string(),
            "index_rows": st.live.index.live_len(),
        })
    }

    /// Item facts by id.
    pub fn item(&self, id: &str) -> Option<ItemInfo> {
        let st = self.state();
        st.catalog.data.items.get(id).map(|i| st.catalog.info(i))
    }

    /// Items whose title contains every word (case-insensitive), most interacted first.
    pub fn find(&self, words: &str, limit: usize) -> Vec<ItemInfo> {
        self.state().catalog.find(words, limit)
    }

    /// All genre names.
    pub fn genres(&self) -> Vec<String> {
        self.state().catalog.data.item_table.genres.vocab.ids().to_vec()
    }

    /// Whether a genre exists.
    pub fn has_genre(&self, g: &str) -> bool {
        self.state().catalog.data.item_table.genres.vocab.get(g).is_some()
    }

    /// The user's latest `n` training interactions, newest first.
    pub fn history(&self, user: &str, n: usize) -> Result<Vec<(ItemInfo, i64)>> {
        self.state().catalog.history(user, n)
    }

    /// See [`State::recommend_user`].
    pub fn recommend_user(&self, user: &str, opts: &QueryOpts) -> Result<Answer> {
        self.state().recommend_user(user, opts)
    }

    /// See [`State::recommend_recent`].
    pub fn recommend_recent(&self, items: &[String], opts: &QueryOpts) -> Result<Answer> {
        self.state().recommend_recent(items, opts)
    }

    /// See [`State::similar`].
    pub fn similar(&self, item: &str, opts: &QueryOpts) -> Result<Answer> {
        self.state().similar(item, opts)
    }
}

impl Catalog {
    /// The dataset answers are drawn from.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Training items of a user, sorted (empty for an unknown index).
    pub fn seen(&self, user: u32) -> &[u32] {
        self.seen.get(user as usize).map_or(&[], Vec::as_slice)
    }

    /// A user's training items, oldest first.
    pub fn history_items(&self, user: u32) -> &[u32] {
        self.histories.history(user).1
    }

    /// What a person needs to recognise item `i`.
    pub fn info(&self, i: u32) -> ItemInfo {
        let t = &self.data.item_table;
        let g = &t.genres;
        let (a, b) = (g.offsets[i as usize] as usize, g.offsets[i as usize + 1] as usize);
        ItemInfo {
            id: self.data.items.id(i).to_string(),
            title: t.titles[i as usize].clone(),
            genres: g.values[a..b]
                .iter()
                .map(|&v| g.vocab.id(v).to_string())
                .collect(),
            interactions: self.counts[i as usize],
        }
    }

    fn find(&self, words: &str, limit: usize) -> Vec<ItemInfo> {
        let words: Vec<String> = words.split_whitespace().map(|w| w.to_lowercase()).collect();
        let mut found: Vec<u32> = (0..self.data.items.len() as u32)
            .filter(|&i| {
                let title = self.data.item_table.titles[i as usize]
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase();
                let id = self.data.items.id(i).to_lowercase();
                words.iter().all(|w| title.contains(w.as_str()) || id == *w)
            })
            .collect();
        found.sort_by_key(|&i| (std::cmp::Reverse(self.counts[i as usize]), i));
        found.truncate(limit);
        found.into_iter().map(|i| self.info(i)).collect()
    }

    fn history(&self, user: &str, n: usize) -> Result<Vec<(ItemInfo, i64)>> {
        let u = self
            .data
            .users
            .get(user)
            .with_context(|| format!("no user {user:?} in the dataset"))?;
        let (ts, items) = self.histories.history(u);
        Ok(ts
            .iter()
            .zip(items)
            .rev()
            .take(n)
            .map(|(&t, &i)| (self.info(i), t))
            .collect())
    }

    fn genre(&self, g: Option<&str>) -> Result<Option<u32>> {
        g.map(|g| {
            self.data
                .item_table
                .genres
                .vocab
                .get(g)
                .with_context(|| format!("no genre {g:?}"))
        })
        .transpose()
    }

    fn in_genre(&self, item: u32, genre: Option<u32>) -> bool {
        let Some(g) = genre else { return true };
        let gs = &self.data.item_table.genres;
        gs.values[gs.offsets[item as usize] as usize..gs.offsets[item as usize + 1] as usize].contains(&g)
    }
}

impl State {
    /// The ids in `items` that this snapshot's catalog does not know (a vocabulary lookup each).
    pub fn unknown_items<'a>(&self, items: &'a [String]) -> Vec<&'a str> {
        let vocab = &self.catalog.data.items;
        items
            .iter()
            .filter(|id| vocab.get(id).is_none())
            .map(String::as_str)
            .collect()
    }

    fn info_for_row(&self, row: u32) -> ItemInfo {
        match self.live.row_item[row as usize] {
            u32::MAX => ItemInfo {
                id: self.live.index.id(row).to_string(),
                title: None,
                genres: vec![],
                interactions: 0,
            },
            i => self.catalog.info(i),
        }
    }

    /// Top-k for a user id: the user tower on id, features and full training history; a user with
    /// no history is embedded from features; an unknown id gets popular items.
    pub fn recommend_user(&self, user: &str, opts: &QueryOpts) -> Result<Answer> {
        let c = &self.catalog;
        let Some(u) = c.data.users.get(user) else {
            return self.popular_answer(opts, &[]);
        };
        let t = Instant::now();
        let (_, items) = c.histories.history(u);
        let source = if items.is_empty() {
            Source::Features
        } else {
            Source::Known
        };
        let q = self.model.embed_user(user, &[])?;
        let embed_ms = ms(t);
        let exclude: &[u32] = if opts.exclude_seen { c.seen(u) } else { &[] };
        self.search(&q, opts, exclude, source, embed_ms)
    }

    /// Top-k for an anonymous user who just touched `items` (oldest first): the real-time path, the
    /// user tower with an out-of-vocabulary id, no retraining. Unknown ids are an error that lists them.
    pub fn recommend_recent(&self, items: &[String], opts: &QueryOpts) -> Result<Answer> {
        let vocab = &self.catalog.data.items;
        let unknown = self.unknown_items(items);
        if !unknown.is_empty() {
            bail!("unknown item(s): {}", unknown.join(", "));
        }
        if items.is_empty() {
            bail!("give at least one item");
        }
        let idx: Vec<u32> = items.iter().filter_map(|id| vocab.get(id)).collect();
        let t = Instant::now();
        // The model's item rows need not be the dataset's (a model can serve an updated catalog).
        let model_items = self.model.item_vocab();
        let rows: Vec<u32> = items.iter().map(|id| model_items.get_or_oov(id)).collect();
        let q = self.model.embed_recent(&rows)?;
        let embed_ms = ms(t);
        let mut exclude = if opts.exclude_seen { idx } else { vec![] };
        exclude.sort_unstable();
        exclude.dedup();
        self.search(&q, opts, &exclude, Source::Items, embed_ms)
    }

    /// Items closest to an item (its indexed vector), the item itself left out.
    pub fn similar(&self, item: &str, opts: &QueryOpts) -> Result<Answer> {
        let i = self
            .catalog
            .data
            .items
            .get(item)
            .with_context(|| format!("no item {item:?} in the catalog (try `find <words>`)"))?;
        let row = self.live.item_row[i as usize];
        if row == u32::MAX {
            bail!(
                "item {item:?} is not in index version {}",
                self.live.index.version()
            );
        }
        let q = self.live.index.vector(row).to_vec();
        self.search(&q, opts, &[i], Source::Items, 0.0)
    }

    /// The most popular items (training interactions), for users the model cannot place.
    pub fn popular_answer(&self, opts: &QueryOpts, exclude: &[u32]) -> Result<Answer> {
        let t = Instant::now();
        let c = &self.catalog;
        let total: u64 = c.counts.iter().sum::<u64>().max(1);
        let genre = c.genre(opts.genre.as_deref())?;
        let results = c
            .popular
            .iter()
            .filter(|i| exclude.binary_search(i).is_err() && c.in_genre(**i, genre))
            .take(opts.k)
            .map(|&i| Scored {
                info: c.info(i),
                score: c.counts[i as usize] as f32 / total as f32,
            })
            .collect();
        Ok(Answer {
            source: Source::Popularity,
            results,
            embed_ms: 0.0,
            search_ms: ms(t),
            index_version: self.live.index.version(),
            exact_overlap: None,
        })
    }

    /// Searches the live index for `q`, leaving out `exclude` (sorted dataset items) and, with
    /// `opts.genre`, items of other genres.
    pub fn search(
        &self,
        q: &[f32],
        opts: &QueryOpts,
        exclude: &[u32],
        source: Source,
        embed_ms: f64,
    ) -> Result<Answer> {
        let t = Instant::now();
        let c = &self.catalog;
        let genre = c.genre(opts.genre.as_deref())?;
        let row_item = &self.live.row_item;
        let keep = |row: u32| {
            let i = row_item[row as usize];
            if i == u32::MAX {
                return genre.is_none();
            }
            exclude.binary_search(&i).is_err() && c.in_genre(i, genre)
        };
        let filter: Option<&(dyn Fn(u32) -> bool + Sync)> = if exclude.is_empty() && genre.is_none() {
            None
        } else {
            Some(&keep)
        };
        let ef = opts.ef.max(opts.k);
        let index = &self.live.index;
        let (hits, overlap) = if opts.exact {
            let exact = index.search_exact(q, opts.k, filter)?;
            let approx = index.search_with_ef(q, opts.k, ef, filter)?;
            let found = approx
                .iter()
                .filter(|h| exact.iter().any(|e| e.row == h.row))
                .count();
            let overlap = found as f64 / exact.len().max(1) as f64;
            (exact, Some(overlap))
        } else {
            (index.search_with_ef(q, opts.k, ef, filter)?, None)
        };
        let search_ms = ms(t);
        Ok(Answer {
            source,
            results: hits
                .iter()
                .map(|h: &Hit| Scored {
                    info: self.info_for_row(h.row),
                    score: h.score,
                })
                .collect(),
            embed_ms,
            search_ms,
            index_version: index.version(),
            exact_overlap: overlap,
        })
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn load_model(dir: &Path) -> Result<Model> {
    Model::load(dir).with_context(|| format!("loading model {}", dir.display()))
}

fn load_catalog(model: &Model, data: Option<&Path>) -> Result<Catalog> {
    let dir = data.map_or_else(|| PathBuf::from(&model.meta().dataset_dir), Path::to_path_buf);
    let data = Dataset::load(&dir).with_context(|| {
        format!(
            "loading dataset {} (the model's; pass --data to use another copy)",
            dir.display()
        )
    })?;
    Ok(Catalog::new(data))
}

fn load_live(dir: &IndexDir, model: &Model, data: &Dataset) -> Result<Live> {
    let index = dir.open_current(Some(model.fingerprint()))?;
    Ok(live_maps(index, data))
}

/// Maps index rows to dataset items and back (tombstoned rows map to no item's live row).
fn live_maps(index: IndexVersion, data: &Dataset) -> Live {
    let mut item_row = vec![u32::MAX; data.items.len()];
    let row_item: Vec<u32> = (0..index.ids().len() as u32)
        .map(|row| {
            let i = data.items.get(index.id(row)).unwrap_or(u32::MAX);
            if i != u32::MAX && index.is_live(row) {
                item_row[i as usize] = row;
            }
            i
        })
        .collect();
    Live {
        index,
        row_item,
        item_row,
    }
}
