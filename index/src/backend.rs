//! The seam between the front ends and the places an index lives. Two traits, implemented once per
//! backend (the index directory in `store/`, Milvus in `milvus/`):
//!
//! - [`VersionStore`]: the versions of one index and the pointer to the served one (`CURRENT`, an
//!   alias): build, add, rebuild of the live set, gc, open. As tantivy's `Directory` is for segments.
//! - [`ItemSearch`]: one opened version, searched by item: a batch of queries with `k`, `ef`, exact or
//!   approximate, and a filter per query. Serving, `recommend`, the shell, `index check` and `report`
//!   all search through it.
//!
//! A filter is a predicate the caller owns plus what a server-side backend can push down (a genre as
//! an expression, how many items the predicate may drop, to over-fetch): an in-process backend calls
//! the predicate during the graph walk, a remote one narrows the search with the hints and applies the
//! predicate to what comes back. Both give the caller the same contract: at most `k` hits, each kept
//! by the predicate, best first.

use crate::error::Result;
use crate::hnsw::HnswParams;
use crate::reports::{AddReport, GcReport, RebuildReport, VersionId};
use crate::rows::ItemRows;
use std::time::SystemTime;
use twotower_data::progress::Progress;

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchSpec {
    /// Results wanted per query.
    pub k: usize,
    /// Candidate list of the graph walk (`None`: the version's default; raised to `k` when smaller).
    pub ef: Option<usize>,
    /// Brute force over every live row instead of the graph (in-process backends only).
    pub exact: bool,
}

impl SearchSpec {
    /// `k` results at the version's default `ef`, from the graph.
    pub fn approx(k: usize) -> SearchSpec {
        SearchSpec {
            k,
            ef: None,
            exact: false,
        }
    }

    /// `k` results with candidate list `ef`, from the graph.
    pub fn with_ef(k: usize, ef: usize) -> SearchSpec {
        SearchSpec {
            k,
            ef: Some(ef),
            exact: false,
        }
    }
}

/// An item as a backend names it to a filter or in a hit: by its row, for backends that number their
/// rows in-process ([`ItemSearch::row_ids`] is `Some`), or by its id, for those that do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKey<'a> {
    /// A row of the version ([`ItemSearch::row_ids`] gives its id).
    Row(u32),
    /// An item id.
    Id(&'a str),
}

/// One hit of an [`ItemSearch`]: the item (as [`ItemKey`], owned) and its cosine score.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The item.
    pub key: FoundKey,
    /// Cosine similarity with the query, higher is closer.
    pub score: f32,
}

/// [`ItemKey`], owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FoundKey {
    /// A row of the version.
    Row(u32),
    /// An item id.
    Id(String),
}

impl FoundKey {
    /// Borrowed, as filters see it.
    pub fn as_key(&self) -> ItemKey<'_> {
        match self {
            FoundKey::Row(r) => ItemKey::Row(*r),
            FoundKey::Id(s) => ItemKey::Id(s),
        }
    }
}

/// The predicate of an [`ItemFilter`]: `true` keeps the item.
pub type KeepItem<'a> = &'a (dyn Fn(ItemKey<'_>) -> bool + Sync);

/// Which items one query may return. `keep` decides; `genre` and `excluded` are hints that a backend
/// searching elsewhere uses to narrow the search on its side and to fetch enough before `keep` runs.
#[derive(Clone, Copy, Default)]
pub struct ItemFilter<'a> {
    /// The predicate (`None`: every live item).
    pub keep: Option<KeepItem<'a>>,
    /// `keep` drops every item without this genre (pushed down as an attribute filter where stored).
    pub genre: Option<&'a str>,
    /// At most this many items of the genre are dropped by `keep` (a remote backend fetches `k +
    /// excluded` and drops them after the search).
    pub excluded: usize,
}

impl std::fmt::Debug for ItemFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemFilter")
            .field("keep", &self.keep.map(|_| "…"))
            .field("genre", &self.genre)
            .field("excluded", &self.excluded)
            .finish()
    }
}

impl ItemFilter<'_> {
    /// Keeps every live item.
    pub const NONE: ItemFilter<'static> = ItemFilter {
        keep: None,
        genre: None,
        excluded: 0,
    };

    /// Whether the filter keeps `key`.
    pub fn keeps(&self, key: ItemKey<'_>) -> bool {
        self.keep.is_none_or(|k| k(key))
    }
}

/// The filter of query `i` when a batch gives one filter for all queries or one per query.
pub(crate) fn filter_of<'f, 'a>(filters: &'f [ItemFilter<'a>], i: usize) -> &'f ItemFilter<'a> {
    if filters.len() == 1 {
        &filters[0]
    } else {
        filters.get(i).unwrap_or(&ItemFilter::NONE)
    }
}

/// Checks a batch's shape: queries are `dim`-wide and there is one filter, or one per query.
pub(crate) fn check_batch(queries: &[f32], dim: usize, filters: &[ItemFilter<'_>]) -> Result<usize> {
    if dim == 0 || !queries.len().is_multiple_of(dim) {
        return Err(crate::Error::Dimension {
            what: "queries".into(),
            expected: dim,
            got: if dim == 0 {
                queries.len()
            } else {
                queries.len() % dim
            },
        });
    }
    let nq = queries.len() / dim;
    if filters.len() > 1 && filters.len() != nq {
        return Err(crate::Error::InvalidParam {
            name: "filters",
            problem: format!(
                "{} filters for {nq} queries (give one, or one per query)",
                filters.len()
            ),
        });
    }
    Ok(nq)
}

/// What a backend says about an opened version (for `/readyz`, `stats`, `index check`'s header).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VersionFacts {
    /// Backend kind: `directory` or `milvus`.
    pub kind: &'static str,
    /// Where it lives, credentials redacted (a directory, a URL with the collection).
    pub path: String,
    /// The version.
    pub version: VersionId,
    /// Items a search can return.
    pub items: usize,
    /// Rows held, tombstoned ones included (equal to `items` where deletes are physical).
    #[serde(skip)]
    pub rows: usize,
    /// Fingerprint of the model whose item tower produced the vectors.
    #[serde(skip)]
    pub model_fingerprint: String,
    /// Vector dimension.
    #[serde(skip)]
    pub dim: usize,
    /// Graph parameters (`ef_search` is the default `ef`).
    #[serde(skip)]
    pub hnsw: HnswParams,
}

/// One opened index version, searched by item. Implementations are cheap to share across threads.
pub trait ItemSearch: Send + Sync {
    /// Kind, location, version, counts, model and parameters.
    fn facts(&self) -> VersionFacts;
    /// The version being searched.
    fn version(&self) -> VersionId;
    /// Fingerprint of the model whose item tower produced the vectors.
    fn model_fingerprint(&self) -> &str;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The `ef` a search uses when [`SearchSpec::ef`] is `None`.
    fn default_ef(&self) -> usize;
    /// Row → item id for backends that number their rows in-process (hits and filters then speak
    /// [`ItemKey::Row`]); `None` for those that name items by id.
    fn row_ids(&self) -> Option<&[String]> {
        None
    }
    /// Whether `row` is live (not tombstoned), for backends with [`ItemSearch::row_ids`].
    fn is_live_row(&self, _row: u32) -> bool {
        true
    }
    /// The stored (unit) vector of an item (by row where the backend numbers rows, else by id), `None`
    /// when the version does not hold it live.
    fn vector(&self, item: ItemKey<'_>) -> Result<Option<Vec<f32>>>;
    /// The best `spec.k` live items for each of the row-major `queries` among those its filter
    /// keeps, best first (ties by the lower row where rows exist). `filters` holds one filter for
    /// every query, or one per query. Queries need not be normalised.
    fn search_batch(
        &self,
        queries: &[f32],
        spec: SearchSpec,
        filters: &[ItemFilter<'_>],
    ) -> Result<Vec<Vec<Found>>>;
    /// [`ItemSearch::search_batch`] of one query.
    fn search(&self, query: &[f32], spec: SearchSpec, filter: &ItemFilter<'_>) -> Result<Vec<Found>> {
        Ok(self
            .search_batch(query, spec, std::slice::from_ref(filter))?
            .pop()
            .unwrap_or_default())
    }
    /// Every live item with its vector, in row order (no titles or genres): what `index check`
    /// compares the graph with.
    fn read_live(&self, progress: &dyn Progress) -> Result<ItemRows>;
    /// Whether the backend can answer now (an error that [`crate::Error::is_unavailable`] says so
    /// when not), for `/readyz`.
    fn check_health(&self) -> Result<()> {
        Ok(())
    }
}

/// What a reload would read, compared between polls to decide whether to retry a failed reload:
/// sizes and modification times of the served version's files, and the pointer's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStamp {
    /// The pointer (`CURRENT`'s bytes, an alias's collection), `None` while it cannot be read.
    pub current: Option<Vec<u8>>,
    /// (path, size, modified) of each file a reload reads.
    pub files: Vec<(String, u64, Option<SystemTime>)>,
}

/// The versions of one index and the pointer to the served one. Every write makes a new version (or,
/// where the backend updates in place, a change a reader sees whole) and moves the pointer last, so
/// readers keep answering from the previous version until the new one is complete.
pub trait VersionStore: Send + Sync {
    /// Backend kind: `directory` or `milvus`.
    fn kind(&self) -> &'static str;
    /// Where it is, credentials redacted, for messages.
    fn describe(&self) -> String;
    /// Whether `build`, `add` and `rebuild_live` store titles and genres (then give them, for
    /// server-side filters); a backend that does not ignores them.
    fn stores_attributes(&self) -> bool {
        false
    }
    /// A row-count limit or similar that makes `self_check` sampling advisable (searches over a
    /// network): how many items `index check` tests for self-reachability by default (`None`: all).
    fn default_self_check(&self) -> Option<usize> {
        None
    }
    /// Whether twotower builds (and so repairs) the version's graph: an item its own search misses is
    /// then damage; in a graph the backend builds itself it is a fact to report.
    fn builds_graph(&self) -> bool {
        true
    }
    /// Refuses a location that holds something else (before anything is written or embedded).
    fn check_location(&self) -> Result<()> {
        Ok(())
    }
    /// Committed versions, oldest first.
    fn versions(&self) -> Result<Vec<VersionId>>;
    /// The version the pointer names; `None` when nothing was ever built.
    fn current(&self) -> Result<Option<VersionId>>;
    /// The version the pointer names; an error saying to build one when there is none.
    fn current_required(&self) -> Result<VersionId>;
    /// Opens the served version; with `expected_model`, one built from another model is refused.
    fn open_current(&self, expected_model: Option<&str>) -> Result<Box<dyn ItemSearch>>;
    /// Verifies every byte of the served version where twotower wrote them (checksums, every graph
    /// list): what `index check` runs, since an open checks sizes and headers only. A backend whose
    /// server keeps its own data has nothing to verify here.
    fn verify_current(&self) -> Result<()> {
        Ok(())
    }
    /// Builds a new version from `rows` (vectors normalised here) and moves the pointer to it.
    fn build(
        &self,
        rows: &ItemRows,
        dim: usize,
        params: HnswParams,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<VersionId>;
    /// Adds new and changed items and removes `remove` (which wins), with the live-set rules of
    /// [`crate::IndexDir::add_items`].
    fn add(
        &self,
        rows: &ItemRows,
        dim: usize,
        remove: &[String],
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<AddReport>;
    /// Rebuilds the served version's live set, exactly (see [`crate::IndexDir::rebuild_live`]).
    fn rebuild_live(
        &self,
        rows: &ItemRows,
        dim: usize,
        params: Option<HnswParams>,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<RebuildReport>;
    /// Deletes all but the newest `keep_last` versions (never the served one) and crash debris.
    fn gc(&self, keep_last: usize) -> Result<GcReport>;
    /// What a reload would read now.
    fn stamp(&self) -> StoreStamp;
    /// A line on where a version lives, for messages after a write (e.g. its collection).
    fn version_note(&self, _version: VersionId) -> String {
        String::new()
    }
}
