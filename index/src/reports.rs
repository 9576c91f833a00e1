//! What every backend reports: version ids, and what each write did (add, rebuild of the live set,
//! gc). The directory and Milvus fill the same values, so the front ends print them once.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A version number; shown and stored as four digits (`0007`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionId(pub u32);

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl FromStr for VersionId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.trim().parse().map(VersionId)
    }
}

/// What [`crate::VersionStore::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddReport {
    /// The new version (now `CURRENT`), or the unchanged `CURRENT` when nothing changed.
    pub version: VersionId,
    /// Whether a new version was committed (`false`: every item was unchanged and none removed).
    pub committed: bool,
    /// Ids that were not in the index before.
    pub added: usize,
    /// Ids whose old row was tombstoned and replaced by a new one.
    pub replaced: usize,
    /// Ids already live with a bit-identical (normalised) vector: skipped.
    pub unchanged: usize,
    /// Ids removed (tombstoned) without replacement.
    pub removed: usize,
    /// Ids asked to be removed that were not live in the index.
    pub not_found: Vec<String>,
}

impl AddReport {
    /// Nothing changed yet in `version`.
    pub(crate) fn none(version: VersionId) -> AddReport {
        AddReport {
            version,
            committed: false,
            added: 0,
            replaced: 0,
            unchanged: 0,
            removed: 0,
            not_found: Vec::new(),
        }
    }
}

/// What [`crate::VersionStore::rebuild_live`] (and [`crate::IndexDir::compact`]) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The new version (now `CURRENT`).
    pub version: VersionId,
    /// The version whose live set was rebuilt.
    pub parent: VersionId,
    /// Rows of the new version: the parent's live items, nothing else.
    pub rows: usize,
    /// Live items that got the vector the caller gave.
    pub reembedded: usize,
    /// Live items that kept their stored vector (same model, no new vector given).
    pub kept: usize,
    /// Ids the caller gave a vector for that are not live in the parent (not added: a rebuild
    /// never brings back a removed item nor adds a new one).
    pub not_live: Vec<String>,
}

/// What [`crate::VersionStore::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Versions deleted.
    pub removed: Vec<VersionId>,
    /// Versions kept (the newest ones and `CURRENT`).
    pub kept: Vec<VersionId>,
    /// Stale staging directories (debris of crashed writers) deleted.
    pub debris: Vec<PathBuf>,
}
