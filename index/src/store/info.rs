//! What a directory version's manifest records about the index (its `extra` field).

use serde::{Deserialize, Serialize};

use super::METRIC;
use crate::hnsw::HnswParams;
use crate::reports::VersionId;

/// What a version's manifest records about the index (its `extra` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// Fingerprint of the model whose item tower produced the vectors.
    pub model_fingerprint: String,
    /// Always [`METRIC`].
    pub metric: String,
    /// Vector dimension.
    pub dim: usize,
    /// Graph parameters.
    pub hnsw: HnswParams,
    /// Rows in the graph, tombstoned ones included.
    pub rows: usize,
    /// Rows visible in results.
    pub live: usize,
    /// The version this one was derived from by `add`; `None` for a full build.
    pub parent: Option<VersionId>,
}

impl IndexInfo {
    /// A full build's description: `rows` rows, all live, no parent.
    pub(super) fn fresh(model_fingerprint: &str, dim: usize, hnsw: HnswParams, rows: usize) -> Self {
        IndexInfo {
            model_fingerprint: model_fingerprint.to_string(),
            metric: METRIC.to_string(),
            dim,
            hnsw,
            rows,
            live: rows,
            parent: None,
        }
    }
}
