//! `ItemIndex`, what the recommender searches through: `search` and `search_batch` with `k`, `ef` and
//! a declarative [`Filter`] (dataset items to leave out, an optional genre), so another backend (a
//! vector database) can translate it into its own query. [`DirectoryIndex`] implements it over an
//! on-disk index version and its row ⇄ item maps, turning the filter into a row predicate.

use super::catalog::Catalog;
use super::error::Result;
use super::ids::{DataItem, Genre, RowMaps};
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use twotower_index::{IndexVersion, RowFilter, VersionId};

/// Which items a search may return.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Dataset items to leave out, sorted ascending, no repeats.
    pub exclude: Vec<DataItem>,
    /// Only items of this genre.
    pub genre: Option<Genre>,
}

impl Filter {
    /// A filter leaving out `exclude` (any order) and, with `genre`, items of other genres.
    pub fn new(mut exclude: Vec<DataItem>, genre: Option<Genre>) -> Filter {
        exclude.sort_unstable();
        exclude.dedup();
        Filter { exclude, genre }
    }

    /// Whether it keeps every item.
    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty() && self.genre.is_none()
    }

    /// Whether it keeps a dataset item.
    pub fn keeps(&self, catalog: &Catalog, item: DataItem) -> bool {
        self.exclude.binary_search(&item).is_err() && catalog.in_genre(item, self.genre)
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

/// What a backend says about itself (for `/readyz`, `/metrics` and `stats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendInfo {
    /// Backend kind: `directory` for an on-disk index directory, `milvus` for a Milvus collection.
    pub kind: &'static str,
    /// Where it lives (a directory, a URL).
    pub path: String,
    /// The version being searched.
    pub version: VersionId,
    /// Items a search can return.
    pub items: usize,
}

/// An index of item vectors the recommender searches. Implementations must be cheap to share.
pub trait ItemIndex: Send + Sync {
    /// Kind, location and version.
    fn info(&self) -> BackendInfo;
    /// The version being searched.
    fn version(&self) -> VersionId;
    /// Fingerprint of the model whose item tower built the vectors.
    fn model_fingerprint(&self) -> &str;
    /// The indexed vector of a dataset item, `None` when the index does not hold it.
    fn item_vector(&self, item: DataItem) -> Result<Option<Vec<f32>>>;
    /// The best `params.k` items for one query among those `filter` keeps, best first.
    fn search(&self, query: &[f32], params: SearchParams, filter: &Filter) -> Result<Vec<ItemHit>>;
    /// [`ItemIndex::search`] for each row-major query, each with its own filter.
    fn search_batch(
        &self,
        queries: &[f32],
        params: SearchParams,
        filters: &[Filter],
    ) -> Result<Vec<Vec<ItemHit>>>;
    /// Whether the backend can answer now ([`super::RecError::Unavailable`] when not), for `/readyz`.
    fn check_health(&self) -> Result<()> {
        Ok(())
    }
}

/// An on-disk index version (HNSW graph + exact rows) with its row ⇄ item maps.
pub struct DirectoryIndex {
    root: PathBuf,
    index: IndexVersion,
    rows: RowMaps,
    catalog: Arc<Catalog>,
}

impl DirectoryIndex {
    /// Wraps a loaded version for searching `catalog`'s items.
    pub fn new(root: PathBuf, index: IndexVersion, catalog: Arc<Catalog>) -> DirectoryIndex {
        let rows = RowMaps::new(&index, &catalog);
        DirectoryIndex {
            root,
            index,
            rows,
            catalog,
        }
    }

    fn hit(&self, row: u32, score: f32) -> ItemHit {
        let item = match self.rows.item_of(row) {
            Some(i) => HitItem::Data(i),
            None => HitItem::Foreign(self.index.id(row).to_string()),
        };
        ItemHit { item, score }
    }
}

impl ItemIndex for DirectoryIndex {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "directory",
            path: self.root.display().to_string(),
            version: self.index.version(),
            items: self.index.live_len(),
        }
    }

    fn version(&self) -> VersionId {
        self.index.version()
    }

    fn model_fingerprint(&self) -> &str {
        &self.index.info().model_fingerprint
    }

    fn item_vector(&self, item: DataItem) -> Result<Option<Vec<f32>>> {
        Ok(self.rows.row_of(item).map(|r| self.index.vector(r).to_vec()))
    }

    fn search(&self, query: &[f32], params: SearchParams, filter: &Filter) -> Result<Vec<ItemHit>> {
        let keep = |row: u32| match self.rows.item_of(row) {
            Some(i) => filter.keeps(&self.catalog, i),
            None => filter.genre.is_none(),
        };
        let predicate: Option<RowFilter<'_>> = if filter.is_empty() { None } else { Some(&keep) };
        let hits = if params.exact {
            self.index.search_exact(query, params.k, predicate)?
        } else {
            self.index
                .search_with_ef(query, params.k, params.ef.max(params.k), predicate)?
        };
        Ok(hits.iter().map(|h| self.hit(h.row, h.score)).collect())
    }

    fn search_batch(
        &self,
        queries: &[f32],
        params: SearchParams,
        filters: &[Filter],
    ) -> Result<Vec<Vec<ItemHit>>> {
        let dim = self.index.info().dim;
        queries
            .par_chunks(dim)
            .zip(filters.par_iter())
            .map(|(q, f)| self.search(q, params, f))
            .collect()
    }
}
