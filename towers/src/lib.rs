//! twotower-towers: a TFRS-style two-tower retrieval model trained on CPU with candle.
//!
//! The modules read as the model's table of contents: [`config`] (every feature a switch),
//! [`features`] (tables and tower inputs), [`embedding_bag`] and [`sparse_optim`] (embedding tables
//! updated row by row, outside candle), [`tower`] (MLPs and normalisation), [`loss`] (fused in-batch
//! sampled softmax with logQ), [`train`] (the job), [`metrics`] (Recall/NDCG/HitRate, exact scorer),
//! [`checkpoint`] and [`model`] (the saved directory and the inference API).
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod embedding_bag;
mod error;
pub mod features;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod sparse_optim;
pub mod tower;
pub mod train;

use twotower_data::mem;

pub use config::{Config, LrDecay, SparseOptimizerKind};
pub use error::{Error, Result};
pub use features::NewItem;
pub use loss::SampledSoftmax;
pub use metrics::{hit_rate_at_k, ndcg_at_k, recall_at_k, top_k_exact, EvalReport};
pub use model::{Model, ModelMeta, TrainingSummary, MODEL_FORMAT_VERSION, MODEL_KIND};
pub use train::{evaluate, popularity_baseline, train, EpochMetrics, TrainOptions, TrainReport};
