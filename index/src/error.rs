//! The crate's one error type: every failure names the file, row or parameter at fault.

use std::path::PathBuf;

/// Everything that can go wrong while building, searching, writing or loading an index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vector (query or row) has the wrong number of components.
    #[error("{what}: expected dimension {expected}, got {got}")]
    Dimension {
        /// Which input was wrong ("query 3", "vectors", ...).
        what: String,
        /// The index dimension.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A row that cannot be indexed: NaN/inf components or zero norm.
    #[error("row {row} (item {item:?}): {problem}")]
    BadVector {
        /// Row number in the input.
        row: usize,
        /// Item id of that row, empty when unknown.
        item: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A query vector that cannot be scored (NaN or infinite components).
    #[error("query {index}: {problem}")]
    BadQuery {
        /// Position of the query in the batch (0 for a single query).
        index: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Ids and vectors disagree, ids repeat, or an id is unusable.
    #[error("bad item ids: {0}")]
    BadIds(String),
    /// A parameter outside its valid range.
    #[error("invalid parameter {name}: {problem}")]
    InvalidParam {
        /// Parameter name (e.g. "m").
        name: &'static str,
        /// Why it is rejected.
        problem: String,
    },
    /// The index directory has never had a version committed.
    #[error("no index in {dir}: {dir}/CURRENT is missing (run `twotower index build` first)")]
    NoCurrent {
        /// The index root directory.
        dir: PathBuf,
    },
    /// The index was built from another model's embeddings.
    #[error(
        "index version {version} in {dir} was built for model {found}, but model {expected} was given; rebuild the index"
    )]
    ModelMismatch {
        /// The index root directory.
        dir: PathBuf,
        /// Version directory name.
        version: String,
        /// Fingerprint recorded in the index manifest.
        found: String,
        /// Fingerprint of the model the caller holds.
        expected: String,
    },
    /// A file of a version is missing, truncated, inconsistent or unreadable.
    #[error("corrupt index file {path}: {problem}")]
    Corrupt {
        /// The file (or directory) at fault.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A directory given as an index that holds something else (a dataset, a model, other files).
    #[error("{dir} is not an index directory: {problem}; give a new or empty directory")]
    NotAnIndex {
        /// The directory.
        dir: PathBuf,
        /// What is there instead (the entries that do not belong to an index).
        problem: String,
    },
    /// A rebuild of the live set with a model other than the version's, where some live items got
    /// no new vector (the index cannot reuse vectors of another model).
    #[error(
        "{count} live item(s) of index version {version} in {dir} have no new vector, and the stored ones cannot be kept ({models}): {ids}"
    )]
    MissingVectors {
        /// The index root directory.
        dir: PathBuf,
        /// The version whose live set was being rebuilt.
        version: String,
        /// The model given and the model the version was built by, in words.
        models: String,
        /// How many live items lack a vector.
        count: usize,
        /// The first of them, comma-separated (", …" when there are more).
        ids: String,
    },
    /// Writing a file failed for a reason other than the operating system's (an encoder error).
    #[error("cannot write {path}: {problem}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// An operating system error on a path (a full disk, a permission, a missing file).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An artifact helper (manifest, checksum, atomic write, staging) failed.
    #[error(transparent)]
    Artifact(#[from] twotower_data::Error),
    /// A Milvus server failed or could not be reached.
    #[cfg(feature = "milvus")]
    #[error(transparent)]
    Milvus(#[from] crate::milvus::MilvusError),
    /// The backend cannot answer now (a server down, slow, or its collection released).
    #[error("{0}")]
    Unavailable(String),
    /// The backend does not do what was asked (exact search on a server-side index).
    #[error("{0}")]
    Unsupported(String),
    /// hnsw_rs returned an error or panicked while dumping or loading a graph.
    #[error("hnsw graph {path}: {problem}")]
    Graph {
        /// The graph file or directory.
        path: PathBuf,
        /// hnsw_rs's message.
        problem: String,
    },
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// At most `max` of `ids`, comma-separated, with ", …" when some are left out: how errors and
/// reports list item ids (plainly, not quoted; give the count beside it).
pub fn list_ids<S: AsRef<str>>(ids: &[S], max: usize) -> String {
    // Ids come from data: a control character in one (an escape sequence, a newline) is shown
    // escaped, never printed raw to a terminal or a log line.
    let mut out = ids
        .iter()
        .take(max)
        .map(|id| {
            let id = id.as_ref();
            if id.chars().any(char::is_control) {
                id.chars().flat_map(char::escape_debug).collect::<String>()
            } else {
                id.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > max {
        out.push_str(", …");
    }
    out
}

impl Error {
    /// Whether the index's backend is unreachable or not answering (a retry later may succeed).
    pub fn is_unavailable(&self) -> bool {
        if let Error::Unavailable(_) = self {
            return true;
        }
        #[cfg(feature = "milvus")]
        if let Error::Milvus(e) = self {
            return e.is_unavailable();
        }
        false
    }

    /// Whether the backend does not offer what was asked (a request to change, not a failure).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported(_))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
