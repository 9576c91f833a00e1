//! Where an index lives, as the command line gives it, and the one place a location becomes a
//! backend ([`IndexLocation::open`]). A new backend adds a variant, its address parsing and one arm
//! here; every front end then works with it through [`VersionStore`] and [`crate::ItemSearch`].

use crate::backend::VersionStore;
use crate::error::Result;
use crate::store::IndexDir;
use std::path::PathBuf;

/// An index location: a directory, or `milvus://HOST:PORT/NAME[?…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLocation {
    /// An index directory.
    Dir(PathBuf),
    /// A Milvus address with its options (see `milvus::MilvusIndex::open`).
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
            crate::milvus::MilvusUri::parse(base).map_err(|e| e.to_string())?;
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

impl IndexLocation {
    /// The backend at this location. Nothing is read or written yet (a Milvus client connects on
    /// its first call).
    pub fn open(&self) -> Result<Box<dyn VersionStore>> {
        match self {
            IndexLocation::Dir(p) => Ok(Box::new(IndexDir::new(p))),
            #[cfg(feature = "milvus")]
            IndexLocation::Milvus(a) => Ok(Box::new(crate::milvus::MilvusIndex::open(a)?)),
            #[cfg(not(feature = "milvus"))]
            IndexLocation::Milvus(a) => Err(crate::Error::InvalidParam {
                name: "index",
                problem: format!("{a}: this twotower was built without the `milvus` feature"),
            }),
        }
    }
}
