//! The crate's error type: every failure names what it was working on (file, feature, dimension).

use std::path::PathBuf;

/// Everything that can go wrong while building, training, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle (shape mismatch, unsupported op).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The data layer refused (unreadable dataset, bad manifest).
    #[error(transparent)]
    Data(#[from] twotower_data::Error),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration file or option is invalid (unknown feature, bad value).
    #[error("config {origin}: {message}")]
    Config {
        /// Where the config came from (a file path or "command line").
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// A model directory is unusable (missing file, wrong shape, foreign dataset).
    #[error("model {}: {message}", path.display())]
    Model {
        /// The model directory or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The dataset cannot be trained on as asked (no interactions, missing split).
    #[error("dataset {}: {message}", path.display())]
    Dataset {
        /// The dataset directory.
        path: PathBuf,
        /// What is missing or inconsistent.
        message: String,
    },
    /// A caller passed something the model cannot embed or score.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The loss became NaN or infinite; the last checkpoint stays usable.
    #[error("training diverged at epoch {epoch}, step {step}: loss is {loss}")]
    Diverged {
        /// Epoch (0-based) in which it happened.
        epoch: usize,
        /// Global step.
        step: u64,
        /// The offending loss value.
        loss: f32,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A model-directory problem.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A config problem.
    pub fn config(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            origin: origin.into(),
            message: message.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
