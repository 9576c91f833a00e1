//! The training job. [`train`] turns a configuration into a [`plan`](TrainPlan) of runs (a
//! temperature search, a refit, ensemble members), derives what every run needs from the dataset
//! once ([`prepared`]), and trains each run ([`run`]: epochs of [`step`]s, [`validation`], the
//! [`checkpoint`] committed after every epoch) in its hidden directory ([`run_dir`]) beside `--out`.

mod bench;
mod checkpoint;
mod clock;
mod plan;
mod prepared;
mod rule;
mod run;
mod run_dir;
mod step;
mod validation;
mod warm;

use std::path::Path;

use serde::{Deserialize, Serialize};
use twotower_data::{Dataset, Progress};

pub use bench::StepBench;
pub use plan::{PlanHistory, PlanRun, PLAN_FILE};
pub use rule::{
    decide as decide_plan, PlanDecision, PlanInputs, PlanMode, PlanShape, FULL_PLAN_WORK, SCALED_RUN_WORK,
    SEARCH_ROWS,
};
pub use warm::{model_config, TableCopy, WarmStart, WarmStartRecord, WARM_START_EPOCHS};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{write_weights, TrainingSummary};
use crate::tower::TwoTower;
use plan::TrainPlan;
use prepared::Prepared;
use run_dir::RunDir;

/// Options of a training run that are not part of the model's configuration.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue an interrupted run (same config and dataset required): its checkpoint in the output
    /// directory, or the hidden run directories beside it (search, refit, ensemble members).
    pub resume: bool,
    /// Stop (as if interrupted) after this many epochs of this invocation, leaving the checkpoint
    /// behind; used to test that `--resume` reproduces an uninterrupted run.
    pub stop_after_epochs: Option<usize>,
    /// The plan's shape: decided from the data's size ([`PlanMode::Auto`]) or forced.
    pub plan: PlanMode,
    /// A deadline for the whole plan (see `clock.rs`): work that would end past it is not started.
    pub budget: Option<std::time::Duration>,
    /// Where the configuration came from (a file, "command line"), named by the error when it is
    /// invalid: [`train`] validates it, so its caller need not. None reads "model config".
    pub config_origin: Option<String>,
    /// Start from an earlier model (`--init-from`; see `warm.rs`): one run per member at that
    /// model's temperature, its rows copied by string id.
    pub warm: Option<WarmStart>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Validation Recall@k (None without a validation slice).
    pub val_recall: Option<f64>,
    /// The k of `val_recall`.
    pub val_k: usize,
    /// Training examples per second in this epoch (validation excluded).
    pub examples_per_sec: f64,
    /// Seconds spent in the epoch, validation included.
    pub seconds: f64,
    /// Learning-rate multiplier at the epoch's end.
    pub lr_scale: f64,
    /// Softmax temperature at the epoch's end (moves only with `loss.learn_temperature`).
    #[serde(default)]
    pub temperature: f64,
    /// Ensemble member (1-based) the epoch belongs to; absent for a single model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<usize>,
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Per-epoch metrics (resumed epochs included) of the kept model's run.
    pub epochs: Vec<EpochMetrics>,
    /// Summary stored in `model.json`.
    pub summary: TrainingSummary,
    /// The temperature search (`loss.temperature_candidates`), one entry per candidate in order;
    /// empty for a single run.
    pub temperature_search: Vec<TemperatureTrial>,
    /// Every run reached its last epoch (false after `stop_after_epochs`: resume to finish).
    pub finished: bool,
    /// With `train.refit`, the validation recall of the run that chose the settings (the refit run
    /// itself has no validation slice); None otherwise.
    pub refit_validation_recall: Option<f64>,
    /// The kept run ended before its last epoch because `--budget` ran out.
    pub stopped_by_budget: bool,
    /// The plan the rule chose (None for a single run's own report).
    pub plan: Option<PlanDecision>,
}

/// One candidate of the temperature search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureTrial {
    /// The candidate.
    pub temperature: f32,
    /// Validation Recall@k of its kept epoch.
    pub validation_recall: Option<f64>,
    /// Its kept epoch.
    pub best_epoch: usize,
    /// Wall-clock seconds of its run.
    pub seconds: f64,
    /// The model kept is this candidate's.
    pub chosen: bool,
}

/// What every run of a plan shares: progress, options, threads and the plan's clock.
struct RunCtx<'a> {
    progress: &'a dyn Progress,
    opts: &'a TrainOptions,
    threads: usize,
    clock: &'a clock::PlanClock,
    /// The model a warm start begins from.
    warm: Option<&'a warm::WarmSource>,
}

/// Trains a model on `ds.training()` (the train part of a split dataset: the test part is never read)
/// and writes the model directory `out`. Every run of the plan trains in a hidden directory beside
/// `out`, re-committed atomically after every epoch (an interrupted run leaves its last complete
/// epoch there, loadable and resumable with `--resume`), and `out` is replaced once, when the model
/// is complete: until then it keeps the previous model byte for byte, whatever happens (a crash, a
/// full disk). One training per `out` at a time: a second is refused while the first holds the lock.
pub fn train(
    ds: &Dataset,
    config: &Config,
    out: &Path,
    progress: &dyn Progress,
    opts: &TrainOptions,
) -> Result<TrainReport> {
    config.validate(opts.config_origin.as_deref().unwrap_or("model config"))?;
    let warm = opts.warm.as_ref().map(warm::WarmSource::load).transpose()?;
    // A warm start trains one run per member at the temperature given (the earlier model's,
    // unless set): no search, no refit.
    let warm_config = match &warm {
        Some(w) => {
            w.check(config)?;
            let mut c = config.clone();
            c.loss.temperature_candidates.clear();
            c.train.refit = false;
            Some(c)
        }
        None => None,
    };
    let config = warm_config.as_ref().unwrap_or(config);
    let threads = if config.train.threads == 0 {
        rayon::current_num_threads()
    } else {
        config.train.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start {threads} threads: {e}")))?;
    let dirs = RunDir::new(out);
    let _lock = dirs.lock()?;
    pool.install(|| {
        let plan = TrainPlan::new(config);
        plan.check_sizes(ds)?;
        let prep = Prepared::new(ds, config, opts.warm.as_ref())?;
        if let Some(t) = opts.warm.as_ref().and_then(|w| w.train_from) {
            if prep.fit(&config.train).split.fit.is_empty() {
                return Err(Error::Dataset {
                    path: ds.dir.clone(),
                    message: format!(
                        "no training rows at or after --train-from ({t}, epoch seconds) outside the \
                         validation slice: nothing new to train on"
                    ),
                });
            }
        }
        let clock = clock::PlanClock::new(opts.budget);
        let ctx = RunCtx {
            progress,
            opts,
            threads,
            clock: &clock,
            warm: warm.as_ref(),
        };
        plan.execute(&prep, &dirs, &ctx)
    })
}

/// Saves an untrained-or-trained network's weights only (benchmarks and tests).
#[doc(hidden)]
pub fn write_network_weights(net: &TwoTower, path: &Path) -> Result<()> {
    write_weights(std::slice::from_ref(net), path)
}
