//! Exact and HNSW vector indexes over (item id, vector) rows, persisted as immutable versions with
//! an atomically swapped `CURRENT` pointer.
//!
//! The crate knows nothing of the model: it indexes `&[f32]` rows, so any embedding source can feed
//! it. The metric is cosine similarity on L2-normalised vectors (see [`metric`]).
//!
//! - [`HnswIndex`]: the graph, built by the native parallel builder (hnswlib's algorithm) or, as the
//!   reference, by hnsw_rs ([`GraphBuilder`]); searched through a flat copy in both cases.
//! - [`VectorIndex`]: the one search interface, implemented by [`ExactIndex`], [`HnswIndex`] and a
//!   loaded [`IndexVersion`] (graph search without tombstoned rows).
//! - [`IndexDir`]: versions on disk (`build_version`, `add_items`, `rebuild_live`, `compact`, `gc`,
//!   `open_current`). A version's live set (its ids less its tombstones) is what `add_items`
//!   changes and `rebuild_live`/`compact` keep, exactly.
//! - [`milvus`] (feature `milvus`): the same versions as collections on a Milvus server.
//! - [`check()`]: recall of the graph against the exact index, queries/s, self-reachability.
#![warn(missing_docs)]

mod backend;
mod check;
mod embeddings;
mod error;
mod exact;
mod flat;
mod graph_file;
mod hnsw;
mod location;
pub mod metric;
#[cfg(feature = "milvus")]
pub mod milvus;
mod native;
mod reports;
mod rows;
mod search;
mod store;
pub mod synthetic;
mod vectors_file;

pub use backend::{
    Found, FoundKey, ItemFilter, ItemKey, ItemSearch, KeepItem, SearchSpec, StoreStamp, VersionFacts,
    VersionStore,
};
pub use check::{check, CheckParams, CheckReport, CheckTarget, EfRow, SelfReach};
pub use embeddings::{
    read_embeddings, read_embeddings_any, write_embeddings, write_embeddings_with_kinds, EMBEDDINGS_FILE,
};
pub use error::{list_ids, Error, Result};
pub use exact::ExactIndex;
pub use hnsw::{GraphBuilder, HnswIndex, HnswParams};
pub use location::IndexLocation;
pub use reports::{AddReport, GcReport, RebuildReport, VersionId};
pub use rows::ItemRows;
pub use search::{Hit, RowFilter, VectorIndex};
pub use store::{IndexDir, IndexInfo, IndexVersion, INDEX_FORMAT_VERSION, INDEX_KIND, METRIC};
