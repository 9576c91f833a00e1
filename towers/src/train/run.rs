//! One training run: epochs of shuffled batches under the learning-rate schedule, validation after
//! each, early stopping, and the model directory re-committed with its checkpoint after every epoch
//! so an interrupted run resumes where it stopped.

use std::path::Path;
use std::time::Instant;

use twotower_data::{Interactions, ShuffledBatches};

use super::checkpoint::{load_resume_state, save_model_dir, TrainState};
use super::clock::{human_secs, CALIBRATION_STEPS};
use super::prepared::Prepared;
use super::step::Trainer;
use super::validation::validate;
use super::{EpochMetrics, RunCtx, TrainReport};
use crate::config::{Config, TrainConfig, AUTO_EPOCH_PASSES};
use crate::error::{Error, Result};
use crate::features::FeatureLayout;
use crate::model::{ModelFiles, ModelMeta, TrainingSummary};
use crate::tower::TwoTower;

/// `train.epochs`, or with 0 the epochs that give each user and item row about
/// [`AUTO_EPOCH_PASSES`] training examples over the run.
pub(super) fn resolve_epochs(tc: &TrainConfig, fit: &Interactions) -> usize {
    if tc.epochs > 0 {
        return tc.epochs;
    }
    let users: std::collections::HashSet<u32> = fit.user.iter().copied().collect();
    let items: std::collections::HashSet<u32> = fit.item.iter().copied().collect();
    let per_row = fit.len() as f64 / (users.len() + items.len()).max(1) as f64;
    ((AUTO_EPOCH_PASSES / per_row.max(1e-9)).round() as usize).clamp(2, 10)
}

/// Trains one model with `config` (one member, fixed temperature) into the model directory `out`,
/// continuing its checkpoint with `--resume`. With `first_steps`, the run is the first that many
/// steps of the run `config` describes (same order, same schedule), validated and ended there: a
/// search candidate of the scaled plan. `member` (0-based) is the ensemble member a warm start
/// copies the earlier model's weights from.
pub(super) fn run(
    prep: &Prepared<'_>,
    config: &Config,
    out: &Path,
    label: &str,
    ctx: &RunCtx<'_>,
    first_steps: Option<u64>,
    member: usize,
) -> Result<TrainReport> {
    let started = Instant::now();
    let (ds, progress, opts) = (prep.ds, ctx.progress, ctx.opts);
    let tc = &config.train;
    let (n_users, n_items) = (ds.users.len(), ds.items.len());
    let fit = prep.fit(tc);
    let (split, fit_hist) = (&fit.split, &fit.hist);
    let (item_feats, user_feats) = (&prep.item_feats, &prep.user_feats);
    let layout = FeatureLayout::new(config, n_users, n_items, item_feats, user_feats);
    let net = match ctx.warm {
        Some(w) => w.init(member, layout.clone(), config, tc.seed, prep)?,
        None => TwoTower::new(layout.clone(), config, tc.seed)?,
    };
    let steps_per_epoch = split.fit.len().div_ceil(tc.batch_size) as u64;
    let n_epochs = resolve_epochs(tc, &split.fit);
    let mut trainer = Trainer::new(
        config,
        net,
        item_feats,
        user_feats,
        &split.fit,
        fit_hist,
        steps_per_epoch * n_epochs as u64,
    );
    let mut meta = ModelMeta {
        config: config.clone(),
        layout,
        dataset_fingerprint: ds.fingerprint(),
        dataset_dir: ds.dir.display().to_string(),
        training: TrainingSummary {
            validation_k: tc.validation_k,
            train_examples: split.fit.len(),
            threads: ctx.threads,
            ..TrainingSummary::default()
        },
    };
    let mut state = TrainState {
        epochs_done: 0,
        step: 0,
        best_metric: None,
        best_epoch: 0,
        bad_epochs: 0,
        finished: false,
        seconds: 0.0,
    };
    let mut epochs: Vec<EpochMetrics> = Vec::new();
    let mut best_temperature = config.loss.temperature as f64;
    if opts.resume {
        if let Some(r) = load_resume_state(out, config, &meta.dataset_fingerprint, &mut trainer)? {
            state = r.state;
            trainer.step = state.step;
            best_temperature = r.training.temperature.unwrap_or(best_temperature);
            meta.training = r.training;
            epochs = r.epochs;
        }
    }
    let seconds_before = state.seconds;
    let mut epochs_this_run = 0usize;
    let mut budget_stop = false;
    while !state.finished && state.epochs_done < n_epochs {
        if opts.stop_after_epochs.is_some_and(|n| epochs_this_run >= n) {
            break;
        }
        // `--budget`: an epoch that would end past the deadline is not started, and the run ends
        // with its best epoch so far (a run with none yet trains its first).
        if state.epochs_done > 0 && !ctx.clock.fits(split.fit.len() as u64) {
            state.finished = true;
            budget_stop = true;
            break;
        }
        epochs_this_run += 1;
        let epoch = state.epochs_done;
        let t0 = Instant::now();
        let mut batches = ShuffledBatches::new(split.fit.len(), tc.batch_size, tc.seed, epoch as u64);
        match first_steps {
            Some(k) => progress.start(
                &format!("{label}first {} steps", k.min(batches.num_batches() as u64)),
                Some(k.min(batches.num_batches() as u64)),
            ),
            None => progress.start(
                &format!("{label}epoch {}/{n_epochs}", epoch + 1),
                Some(batches.num_batches() as u64),
            ),
        }
        let (mut loss_sum, mut n_steps, mut examples) = (0f64, 0usize, 0usize);
        while let Some(batch) = batches.next_batch() {
            if first_steps.is_some_and(|k| n_steps as u64 >= k) {
                break;
            }
            let loss = trainer.step(batch)?;
            if !loss.is_finite() {
                return Err(Error::Diverged {
                    epoch,
                    step: trainer.step,
                    loss,
                });
            }
            loss_sum += loss as f64;
            n_steps += 1;
            examples += batch.len();
            progress.inc(1);
            if ctx.clock.step(batch.len()) {
                if let (Some(rate), Some(left)) = (ctx.clock.rate(), ctx.clock.remaining_secs()) {
                    progress.note(&format!(
                        "plan: about {} at {rate:.0} examples/s (measured over the first {} steps)",
                        human_secs(left),
                        CALIBRATION_STEPS
                    ));
                }
            }
            if n_steps % 10 == 0 {
                let rate = examples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                let plan_left = ctx
                    .clock
                    .remaining_secs()
                    .map_or(String::new(), |s| format!("  plan {} left", human_secs(s)));
                progress.set_message(&format!(
                    "loss {:.4}  {:.0} ex/s{plan_left}",
                    loss_sum / n_steps as f64,
                    rate
                ));
            }
        }
        let train_secs = t0.elapsed().as_secs_f64();
        progress.finish();
        let val = if split.val_users.is_empty() {
            None
        } else {
            Some(validate(
                &trainer.net,
                split,
                fit_hist,
                item_feats,
                user_feats,
                tc.validation_k,
            )?)
        };
        state.epochs_done += 1;
        state.step = trainer.step;
        let improved = match (val, state.best_metric) {
            (Some(v), Some(b)) => v > b,
            (Some(_), None) => true,
            (None, _) => true,
        };
        if improved {
            state.best_metric = val;
            state.best_epoch = state.epochs_done;
            state.bad_epochs = 0;
            best_temperature = trainer.temperature() as f64;
        } else {
            state.bad_epochs += 1;
        }
        let stop_early = tc.patience > 0 && state.bad_epochs >= tc.patience;
        state.finished = stop_early || state.epochs_done >= n_epochs || first_steps.is_some();
        state.seconds = seconds_before + started.elapsed().as_secs_f64();
        epochs.push(EpochMetrics {
            epoch: state.epochs_done,
            loss: loss_sum / n_steps.max(1) as f64,
            val_recall: val,
            val_k: tc.validation_k,
            examples_per_sec: examples as f64 / train_secs.max(1e-9),
            seconds: t0.elapsed().as_secs_f64(),
            lr_scale: trainer.lr_scale() as f64,
            temperature: trainer.temperature() as f64,
            member: None,
        });
        meta.training = TrainingSummary {
            epochs_run: state.epochs_done,
            best_epoch: state.best_epoch,
            validation_recall: state.best_metric,
            seconds: state.seconds,
            stopped_early: stop_early,
            temperature: Some(best_temperature),
            ..meta.training.clone()
        };
        // The best epoch's weights: this epoch's, or (after an epoch that did not improve) the
        // ones the directory already holds.
        let model = ModelFiles {
            meta: &meta,
            nets: std::slice::from_ref(&trainer.net),
            users: &ds.users,
            items: &ds.items,
            item_feats,
            user_feats,
            user_items: &prep.user_items,
            keep_weights_from: (!improved).then_some(out),
        };
        save_model_dir(out, &model, &trainer, &state, &epochs)?;
    }
    // A budget stop is not written back: the checkpoint on disk already holds the best epoch's
    // model, and the plan commits it as it is (plan.json records the stop).
    Ok(TrainReport {
        epochs,
        summary: meta.training,
        temperature_search: Vec::new(),
        finished: state.finished,
        refit_validation_recall: None,
        stopped_by_budget: budget_stop,
        plan: None,
    })
}
