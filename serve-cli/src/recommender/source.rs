//! Where the live index comes from: an index directory (`CURRENT` names the version) or, with the
//! `milvus` feature, a Milvus server (the alias names the collection). The recommender asks a source
//! which version is current and opens it; everything after that goes through [`ItemIndex`].

use super::backend::{DirectoryIndex, ItemIndex};
use super::catalog::Catalog;
use super::error::Result;
use super::watch::Stamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twotower_index::{IndexDir, IndexVersion, VersionId};

/// An index location as the command line gives it: a directory, or `milvus://HOST:PORT/NAME[?…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLocation {
    /// An index directory.
    Dir(PathBuf),
    /// A Milvus address with its options (see `twotower_index::milvus::MilvusIndex::open`).
    Milvus(String),
}

impl std::str::FromStr for IndexLocation {
    type Err = String;

    /// `milvus://…` is a Milvus index (checked here, so a typo fails at parse time); anything else a
    /// directory.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if !s.starts_with("milvus://") {
            return Ok(IndexLocation::Dir(PathBuf::from(s)));
        }
        #[cfg(feature = "milvus")]
        {
            let base = s.split_once('?').map_or(s, |(b, _)| b);
            twotower_index::milvus::MilvusUri::parse(base).map_err(|e| e.to_string())?;
            Ok(IndexLocation::Milvus(s.to_string()))
        }
        #[cfg(not(feature = "milvus"))]
        Err(format!(
            "{s}: this twotower was built without the `milvus` feature"
        ))
    }
}

impl std::fmt::Display for IndexLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexLocation::Dir(p) => write!(f, "{}", p.display()),
            IndexLocation::Milvus(a) => f.write_str(a.split_once('?').map_or(a, |(b, _)| b)),
        }
    }
}

/// An opened index source.
pub(crate) enum IndexSource {
    Dir(IndexDir),
    #[cfg(feature = "milvus")]
    Milvus(Box<twotower_index::milvus::MilvusIndex>),
}

/// A version opened but not yet tied to a catalog (its model is checked first).
pub(crate) enum Opened {
    Dir(PathBuf, Box<IndexVersion>),
    #[cfg(feature = "milvus")]
    Milvus(Box<twotower_index::milvus::MilvusVersion>),
}

impl IndexSource {
    pub(crate) fn new(loc: &IndexLocation) -> Result<IndexSource> {
        match loc {
            IndexLocation::Dir(p) => Ok(IndexSource::Dir(IndexDir::new(p))),
            #[cfg(feature = "milvus")]
            IndexLocation::Milvus(a) => Ok(IndexSource::Milvus(Box::new(
                twotower_index::milvus::MilvusIndex::open(a)?,
            ))),
            #[cfg(not(feature = "milvus"))]
            IndexLocation::Milvus(a) => Err(super::error::RecError::BadParameter(format!(
                "{a}: this twotower was built without the `milvus` feature"
            ))),
        }
    }

    /// Where it is, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            IndexSource::Dir(d) => d.root().display().to_string(),
            #[cfg(feature = "milvus")]
            IndexSource::Milvus(m) => m.uri().to_string(),
        }
    }

    /// The version `CURRENT` (or the alias) names now.
    pub(crate) fn current(&self) -> Result<VersionId> {
        match self {
            IndexSource::Dir(d) => Ok(d.current()?),
            #[cfg(feature = "milvus")]
            IndexSource::Milvus(m) => Ok(m.current_required()?),
        }
    }

    /// Opens the current version; with `expected_model`, one built from another model is refused.
    pub(crate) fn open_current(&self, expected_model: Option<&str>) -> Result<Opened> {
        match self {
            IndexSource::Dir(d) => Ok(Opened::Dir(
                d.root().to_path_buf(),
                Box::new(d.open_current(expected_model)?),
            )),
            #[cfg(feature = "milvus")]
            IndexSource::Milvus(m) => Ok(Opened::Milvus(Box::new(m.open_current(expected_model)?))),
        }
    }

    /// What a reload would read, for the reload gate.
    pub(crate) fn stamp(&self, model_dir: &Path) -> Stamp {
        match self {
            IndexSource::Dir(d) => Stamp::of(d.root(), model_dir),
            #[cfg(feature = "milvus")]
            IndexSource::Milvus(m) => {
                let current = m.current().ok().flatten().map(|v| v.to_string());
                Stamp::of_pointer(current, model_dir)
            }
        }
    }
}

impl Opened {
    /// Fingerprint of the model that built it.
    pub(crate) fn model_fingerprint(&self) -> &str {
        match self {
            Opened::Dir(_, v) => &v.info().model_fingerprint,
            #[cfg(feature = "milvus")]
            Opened::Milvus(v) => &v.info().model_fingerprint,
        }
    }

    /// The backend that searches it for `catalog`'s items.
    pub(crate) fn into_backend(self, catalog: Arc<Catalog>) -> Arc<dyn ItemIndex> {
        match self {
            Opened::Dir(root, v) => Arc::new(DirectoryIndex::new(root, *v, catalog)),
            #[cfg(feature = "milvus")]
            Opened::Milvus(v) => Arc::new(super::milvus::MilvusBackend::new(*v, catalog)),
        }
    }
}
