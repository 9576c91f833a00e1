//! twotower-data: canonical interaction datasets for the two-tower recommender.
//!
//! Owns the on-disk dataset format (Parquet files plus a checksummed `manifest.json`), importers for
//! real logs, train/test splits, a synthetic generator with planted structure, and the in-memory view
//! training reads: vocabularies, feature tables, per-user histories and shuffled batches. It also owns
//! [`artifact`], the atomic-write and manifest machinery every other crate uses for its artifacts.
#![warn(missing_docs)]

pub mod artifact;
mod batches;
mod dataset;
#[cfg(feature = "download")]
mod download;
mod error;
mod export;
mod features;
mod ids;
mod import;
mod interactions;
pub mod mapped;
pub mod mem;
pub mod progress;
mod schema;
mod serving;
mod split;
mod stats;
mod synth;
pub mod topk;
mod vocab;

pub use artifact::{AtomicFile, FileEntry, Manifest, StagingDir};
pub use batches::ShuffledBatches;
pub use dataset::{write_serving, Dataset, DATASET_FORMAT_VERSION, DATASET_KIND};
#[cfg(feature = "download")]
pub use download::{download, DownloadSource, MovieLens};
pub use error::{Error, Result};
pub use export::{export, ExportReport, EXPORT_MARKER};
pub use features::{tokenize_title, Categorical, ItemTable, MultiCategorical, UserTable};
pub use ids::id_problem;
pub use import::{
    append, format_epoch_seconds, import, last_append_start, parse_time, AppendReport, CleanStats, ColumnMap,
    Dedup, ImportFormat, ImportOptions, ImportReport, TextEncoding, TimeUnit,
};
pub use interactions::{Interactions, UserHistories};
pub use progress::{NoProgress, Progress};
pub use schema::{interactions_schema, INTERACTIONS_FILE, ITEMS_FILE, TEST_FILE, TRAIN_FILE, USERS_FILE};
pub use serving::{ServingTables, SERVING_DIR, SERVING_FILE, SERVING_KIND};
pub use split::{split, split_rows, Holdout, SplitOptions, SplitReport, SplitStrategy};
pub use stats::{Quantiles, Stats, TopItem};
pub use synth::{synth, SynthOptions, SynthReport, SynthTruth};
pub use vocab::Vocabulary;
