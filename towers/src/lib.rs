//! twotower-towers: a TFRS-style two-tower retrieval model trained on CPU with candle.
//!
//! The modules read as the model's table of contents: `config` (every feature a switch),
//! `features` (tables and tower inputs), `embedding_bag` and `sparse_optim` (embedding tables
//! updated row by row, outside candle), `tower` (MLPs and normalisation), `loss` (fused in-batch
//! sampled softmax with logQ), `kernels` (the gemm product and top-k selection they share),
//! `train` (the plan of runs and the job), `metrics` and `eval` (Recall/NDCG/HitRate on the test
//! part), `tensor_file` and `model` (the saved directory and the inference API). The modules are
//! private; what callers need is re-exported here.
#![warn(missing_docs)]

mod config;
mod embedding_bag;
mod error;
mod eval;
mod features;
mod kernels;
mod loss;
mod metrics;
mod model;
mod simd;
mod sparse_optim;
mod tensor_file;
mod tower;
mod train;

use twotower_data::mem;

pub use config::{
    Config, ItemTowerConfig, LossConfig, LrDecay, ModelConfig, SparseOptimizerKind, TrainConfig,
    UserTowerConfig, AUTO_EPOCH_PASSES, MAX_MEMBERS,
};
pub use error::{Error, Result};
pub use eval::{
    evaluate, evaluate_by_id, evaluate_rankings, evaluate_sample, evaluate_sample_with, popularity_baseline,
    popularity_baseline_sample, training_popularity, EvalSample, RankingQuery,
};
pub use features::{FeatureLayout, NewItem};
pub use kernels::{select_top, top_k_exact};
pub use metrics::{hit_rate_at_k, ndcg_at_k, recall_at_k, EvalReport, Popularity, BEYOND_K, HEAD_SHARE};
pub use model::{Model, ModelMeta, TrainingSummary, MODEL_FORMAT_VERSION, MODEL_KIND};
pub use train::{
    decide_plan, model_config, train, EpochMetrics, PlanDecision, PlanHistory, PlanInputs, PlanMode, PlanRun,
    PlanShape, TableCopy, TemperatureTrial, TrainOptions, TrainReport, WarmStart, WarmStartRecord,
    FULL_PLAN_WORK, PLAN_FILE, SCALED_RUN_WORK, SEARCH_ROWS, WARM_START_EPOCHS,
};

/// The fused loss's specification and a synthetic training step, for the step benchmarks only.
#[doc(hidden)]
pub use {loss::SampledSoftmax, train::write_network_weights, train::StepBench};
