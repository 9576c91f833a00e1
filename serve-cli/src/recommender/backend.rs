//! [`CatalogIndex`]: the live index version, whatever backend holds it, searched for a catalogue's
//! items. It turns the recommender's [`Filter`] (dataset items to leave out, an optional genre) into
//! the index crate's [`ItemFilter`] (a predicate, with the genre and the number of left-out items as
//! hints a server-side backend pushes down), and hits back into dataset items. Nothing here depends on
//! which backend answers.

use super::catalog::Catalog;
use super::error::{RecError, Result};
use super::ids::{DataItem, DataUser, Genre, RowMaps};
use std::sync::Arc;
use twotower_index::{Found, FoundKey, ItemFilter, ItemKey, ItemSearch, SearchSpec, VersionId};

/// What a backend says about itself (for `/readyz`, `/metrics` and `stats`).
pub use twotower_index::VersionFacts as BackendInfo;

/// Which items a search may return.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Dataset items to leave out.
    pub exclude: Exclude,
    /// Only items of this genre.
    pub genre: Option<Genre>,
}

/// The items a [`Filter`] leaves out.
#[derive(Debug, Clone, PartialEq)]
pub enum Exclude {
    /// These items, sorted ascending, no repeats.
    Items(Vec<DataItem>),
    /// The user's seen items (never empty), read in place from the catalogue's seen set: a
    /// user's list is neither copied nor sorted per request.
    Seen {
        /// Whose.
        user: DataUser,
        /// How many.
        len: usize,
    },
}

impl Default for Exclude {
    fn default() -> Self {
        Exclude::Items(Vec::new())
    }
}

impl Filter {
    /// A filter leaving out `exclude` (any order) and, with `genre`, items of other genres.
    pub fn new(mut exclude: Vec<DataItem>, genre: Option<Genre>) -> Filter {
        exclude.sort_unstable();
        exclude.dedup();
        Filter {
            exclude: Exclude::Items(exclude),
            genre,
        }
    }

    /// A filter leaving out what `user` has seen in training (as the catalogue holds it).
    pub fn seen(catalog: &Catalog, user: DataUser, genre: Option<Genre>) -> Filter {
        let len = catalog.seen(user).len();
        let exclude = if len == 0 {
            Exclude::Items(Vec::new())
        } else {
            Exclude::Seen { user, len }
        };
        Filter { exclude, genre }
    }

    /// How many items it leaves out (besides the genre).
    pub fn excluded(&self) -> usize {
        match &self.exclude {
            Exclude::Items(v) => v.len(),
            Exclude::Seen { len, .. } => *len,
        }
    }

    /// Whether it keeps every item.
    pub fn is_empty(&self) -> bool {
        self.excluded() == 0 && self.genre.is_none()
    }

    /// Whether it keeps a dataset item.
    pub fn keeps(&self, catalog: &Catalog, item: DataItem) -> bool {
        let out = match &self.exclude {
            Exclude::Items(v) => v.binary_search(&item).is_ok(),
            Exclude::Seen { user, .. } => catalog.seen(*user).binary_search(&item.0).is_ok(),
        };
        !out && catalog.in_genre(item, self.genre)
    }
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParams {
    /// Results wanted.
    pub k: usize,
    /// Search breadth (at least `k` is used).
    pub ef: usize,
    /// Brute force instead of the approximate graph.
    pub exact: bool,
}

impl SearchParams {
    fn spec(self) -> SearchSpec {
        SearchSpec {
            k: self.k,
            ef: Some(self.ef.max(self.k)),
            exact: self.exact,
        }
    }
}

/// A returned item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HitItem {
    /// An item of the dataset.
    Data(DataItem),
    /// An indexed item the dataset does not know (added to the index from another catalog).
    Foreign(String),
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemHit {
    /// The item.
    pub item: HitItem,
    /// Cosine score, higher is closer.
    pub score: f32,
}

/// An index error as the recommender reports it: a backend that cannot answer now is
/// [`RecError::Unavailable`] (503), whatever the backend.
fn rec_error(e: twotower_index::Error) -> RecError {
    if e.is_unavailable() {
        RecError::Unavailable(e.to_string())
    } else {
        RecError::Index(e)
    }
}

/// An opened index version with the maps between its items and the catalogue's.
pub struct CatalogIndex {
    index: Box<dyn ItemSearch>,
    /// Row ⇄ dataset item, for backends that number rows (`None` for those that name items by id).
    rows: Option<RowMaps>,
    catalog: Arc<Catalog>,
}

impl CatalogIndex {
    /// Wraps an opened version for searching `catalog`'s items.
    pub fn new(index: Box<dyn ItemSearch>, catalog: Arc<Catalog>) -> CatalogIndex {
        let rows = RowMaps::new(index.as_ref(), &catalog);
        CatalogIndex { index, rows, catalog }
    }

    /// Kind, location and version.
    pub fn info(&self) -> BackendInfo {
        self.index.facts()
    }

    /// The version being searched.
    pub fn version(&self) -> VersionId {
        self.index.version()
    }

    /// Fingerprint of the model whose item tower built the vectors.
    pub fn model_fingerprint(&self) -> &str {
        self.index.model_fingerprint()
    }

    /// Whether the backend can answer now, for `/readyz`.
    pub fn check_health(&self) -> Result<()> {
        self.index.check_health().map_err(rec_error)
    }

    /// The indexed vector of a dataset item, `None` when the index does not hold it.
    pub fn item_vector(&self, item: DataItem) -> Result<Option<Vec<f32>>> {
        let key = match &self.rows {
            // The row is known here: no id lookup in the index.
            Some(rows) => match rows.row_of(item) {
                Some(row) => ItemKey::Row(row),
                None => return Ok(None),
            },
            None => ItemKey::Id(self.catalog.item_id(item)),
        };
        self.index.vector(key).map_err(rec_error)
    }

    /// Whether `filter` keeps the item a backend names. Items the dataset does not know pass
    /// unless a genre is asked (they have none here).
    fn keeps(&self, filter: &Filter, key: ItemKey<'_>) -> bool {
        let item = match key {
            ItemKey::Row(r) => self.rows.as_ref().and_then(|m| m.item_of(r)),
            ItemKey::Id(id) => self.catalog.data().items.get(id).map(DataItem),
        };
        match (item, key) {
            (Some(i), _) => filter.keeps(&self.catalog, i),
            // A backend that names items by id filtered the genre on its own stored genres.
            (None, ItemKey::Id(_)) => true,
            (None, ItemKey::Row(_)) => filter.genre.is_none(),
        }
    }

    fn hit(&self, f: Found) -> ItemHit {
        let item = match f.key {
            FoundKey::Row(r) => match self.rows.as_ref().and_then(|m| m.item_of(r)) {
                Some(i) => HitItem::Data(i),
                None => HitItem::Foreign(
                    self.index
                        .row_ids()
                        .and_then(|ids| ids.get(r as usize))
                        .map_or_else(|| format!("row {r}"), Clone::clone),
                ),
            },
            FoundKey::Id(id) => match self.catalog.data().items.get(&id) {
                Some(i) => HitItem::Data(DataItem(i)),
                None => HitItem::Foreign(id),
            },
        };
        ItemHit { item, score: f.score }
    }

    /// The best `params.k` items for one query among those `filter` keeps, best first.
    pub fn search(&self, query: &[f32], params: SearchParams, filter: &Filter) -> Result<Vec<ItemHit>> {
        Ok(self
            .search_batch(query, params, std::slice::from_ref(filter))?
            .pop()
            .unwrap_or_default())
    }

    /// [`CatalogIndex::search`] for each row-major query, each with its own filter.
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: SearchParams,
        filters: &[Filter],
    ) -> Result<Vec<Vec<ItemHit>>> {
        let preds: Vec<_> = filters
            .iter()
            .map(|f| move |key: ItemKey<'_>| self.keeps(f, key))
            .collect();
        let vocab = &self.catalog.data().item_table.genres.vocab;
        let item_filters: Vec<ItemFilter<'_>> = filters
            .iter()
            .zip(&preds)
            .map(|(f, p)| ItemFilter {
                keep: if f.is_empty() { None } else { Some(p) },
                genre: f.genre.map(|g| vocab.id(g.0)),
                excluded: f.excluded(),
            })
            .collect();
        let found = self.index.search_batch(queries, params.spec(), &item_filters)?;
        Ok(found
            .into_iter()
            .map(|hits| hits.into_iter().map(|f| self.hit(f)).collect())
            .collect())
    }
}
