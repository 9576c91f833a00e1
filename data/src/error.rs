//! The crate's one error type: every failure names the file (and line or row) it came from, so a user
//! can fix their input without reading our source.

use std::path::PathBuf;

/// Everything that can go wrong while importing, writing or reading a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O failure on a specific path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A malformed line in a text input.
    #[error("{}:{line}: {problem}", file.display())]
    Parse {
        /// The input file.
        file: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with the line.
        problem: String,
    },
    /// A malformed row or value in a Parquet or JSON input (no meaningful line number).
    #[error("{}: {problem}", file.display())]
    Invalid {
        /// The input file.
        file: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A column the caller asked for (or the canonical schema requires) is absent.
    #[error("{}: no column named {column:?} (columns present: {present})", file.display())]
    MissingColumn {
        /// The file searched.
        file: PathBuf,
        /// The column that was asked for.
        column: String,
        /// The columns that do exist, comma-separated, to spot typos.
        present: String,
    },
    /// The input holds no usable interactions.
    #[error("{}: {what}", file.display())]
    Empty {
        /// The input file or directory.
        file: PathBuf,
        /// Why nothing could be read (e.g. "header only, no data rows").
        what: String,
    },
    /// The Parquet library failed on a file.
    #[error("{}: parquet: {source}", file.display())]
    Parquet {
        /// The Parquet file.
        file: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// The Arrow library failed while building or decoding columns of a file.
    #[error("{}: arrow: {source}", file.display())]
    Arrow {
        /// The file being read or written.
        file: PathBuf,
        /// The underlying error.
        source: arrow::error::ArrowError,
    },
    /// A directory has no `manifest.json`, so it is not a finished artifact.
    #[error("{}: no manifest.json (not a twotower artifact, or it was never completed)", dir.display())]
    ManifestMissing {
        /// The artifact directory.
        dir: PathBuf,
    },
    /// `manifest.json` exists but cannot be parsed.
    #[error("{}: invalid manifest: {problem}", file.display())]
    ManifestInvalid {
        /// The manifest file.
        file: PathBuf,
        /// The parse error.
        problem: String,
    },
    /// The artifact is of a different kind than expected (e.g. a model where a dataset was wanted).
    #[error("{}: is a {found:?} artifact, expected a {expected:?}", dir.display())]
    WrongKind {
        /// The artifact directory.
        dir: PathBuf,
        /// The kind asked for.
        expected: String,
        /// The kind the manifest declares.
        found: String,
    },
    /// The artifact was written by a newer twotower with a format this build cannot read.
    #[error("{}: format version {found} is newer than the supported {supported}; upgrade twotower", dir.display())]
    NewerVersion {
        /// The artifact directory.
        dir: PathBuf,
        /// The version in the manifest.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A file listed in the manifest is gone.
    #[error("{}: listed in manifest.json but missing", file.display())]
    FileMissing {
        /// The missing file.
        file: PathBuf,
    },
    /// A file's size or checksum differs from the manifest: the artifact was modified or truncated.
    #[error("{}: {what} mismatch (manifest says {expected}, file has {found}); the artifact is corrupt or was modified", file.display())]
    Corrupt {
        /// The file that differs.
        file: PathBuf,
        /// "size" or "sha256" (or "md5" for downloads).
        what: &'static str,
        /// The recorded value.
        expected: String,
        /// The observed value.
        found: String,
    },
    /// A download failed (network, HTTP status).
    #[error("download {url}: {problem}")]
    Download {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// A zip archive could not be read.
    #[error("{}: zip: {problem}", file.display())]
    Zip {
        /// The archive.
        file: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// A caller-supplied option is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(file: impl Into<PathBuf>, line: u64, problem: impl Into<String>) -> Self {
        Error::Parse {
            file: file.into(),
            line,
            problem: problem.into(),
        }
    }

    pub(crate) fn invalid(file: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Invalid {
            file: file.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn parquet(file: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            file: file.into(),
            source,
        }
    }

    pub(crate) fn arrow(file: impl Into<PathBuf>, source: arrow::error::ArrowError) -> Self {
        Error::Arrow {
            file: file.into(),
            source,
        }
    }
}
