//! The training plan: which runs a configuration asks for and with which settings, derived in one
//! place — a temperature search on validation, a refit on every training row with the chosen
//! temperature and epoch count, further ensemble members — and the order they run and commit in.
//!
//! Why a refit: the validation slice is each user's latest training interaction, the one nearest in
//! time to what the model will be asked about, and training on it is worth about 0.0025 Recall@10
//! on ML-100K (four seeds, every seed better) for one more run. Its learning-rate schedule spans
//! its own (chosen) epoch count, so it decays fully, where the validation run was still
//! mid-schedule at the epoch it kept.
//!
//! Why an ensemble rather than a wider model: independently trained towers make different errors,
//! and averaging their scores cancels part of them. On ML-100K two members gave +0.0028 Recall@10
//! over one (every pair of four seeds better), where doubling `dim` gave nothing.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::checkpoint::{add_model_file, commit_model_dir};
use super::prepared::Prepared;
use super::run::run;
use super::run_dir::{RunDir, RunName};
use super::{EpochMetrics, RunCtx, TemperatureTrial, TrainReport};
use twotower_data::Dataset;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Model;

/// The model directory's record of the plan that trained it.
pub const PLAN_FILE: &str = "plan.json";

/// `plan.json`: every run of the plan that trained a model (candidates, refit, members) with its
/// settings and epochs, and the temperature search. Written with the model and listed in its
/// manifest; models trained before it existed have none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanHistory {
    /// The temperature search, one entry per candidate in order (empty without a search).
    pub temperature_search: Vec<TemperatureTrial>,
    /// Every run in the order it trained.
    pub runs: Vec<PlanRun>,
}

/// One run of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRun {
    /// Its hidden directory's suffix: `single`, `temperature-T`, `refit` or `member-K`.
    pub name: String,
    /// Softmax temperature it trained at.
    pub temperature: f32,
    /// Its epoch limit (`train.epochs`; 0 = sized from the data).
    pub max_epochs: usize,
    /// Its seed.
    pub seed: u64,
    /// It validated on a slice of the training data (a refit trains on every row instead).
    pub validates: bool,
    /// Ensemble member (1-based) it became, None for a run kept out of the model (another
    /// candidate, or the candidate a refit replaced).
    pub member: Option<usize>,
    /// Its kept epoch.
    pub best_epoch: usize,
    /// Wall-clock training seconds.
    pub seconds: f64,
    /// Its epochs (resumed ones included).
    pub epochs: Vec<EpochMetrics>,
}

impl PlanHistory {
    /// Reads `dir`'s `plan.json` (None when the model has none).
    pub fn read(dir: &Path) -> Result<Option<PlanHistory>> {
        let p = dir.join(PLAN_FILE);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&p, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::model(&p, format!("cannot parse: {e}")))
    }

    fn record(&mut self, spec: &RunSpec, report: &TrainReport, member: Option<usize>) {
        self.runs.push(PlanRun {
            name: spec.name.dir_name(),
            temperature: spec.config.loss.temperature,
            max_epochs: spec.config.train.epochs,
            seed: spec.config.train.seed,
            validates: spec.config.train.validation_per_user > 0,
            member,
            best_epoch: report.summary.best_epoch,
            seconds: report.summary.seconds,
            epochs: report.epochs.clone(),
        });
    }

    fn to_json(&self, dir: &Path) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::model(dir, e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// The most one training step's `[B, C]` buffers may take, bytes.
const STEP_MEMORY_LIMIT: u64 = 4 << 30;

/// The runs a configuration trains and their settings.
pub(super) struct TrainPlan {
    /// The configuration with one member: every run trains one, an ensemble is assembled after.
    base: Config,
    /// Temperatures searched on validation, in order; none with the temperature learned or without
    /// a validation slice (nothing to choose by), where the configured one is used.
    candidates: Vec<f32>,
    /// Retrain on every training row once validation has chosen the settings: needs a validation
    /// slice to choose with, and a fixed temperature.
    refit: bool,
    /// Ensemble members of the final model.
    members: usize,
}

/// One run: its settings, the hidden directory it trains in, its progress label.
struct RunSpec {
    config: Config,
    name: RunName,
    label: String,
}

/// A finished or interrupted run of the search.
struct CandidateRun {
    temperature: f32,
    name: RunName,
    report: TrainReport,
    seconds: f64,
}

impl TrainPlan {
    pub(super) fn new(config: &Config) -> TrainPlan {
        let mut base = config.clone();
        base.model.members = 1;
        let validates = base.train.validation_per_user > 0;
        let fixed_t = !base.loss.learn_temperature;
        let candidates = if validates && fixed_t {
            let mut c = base.loss.temperature_candidates.clone();
            c.dedup();
            c
        } else {
            Vec::new()
        };
        TrainPlan {
            refit: base.train.refit && validates && fixed_t,
            members: config.model.members.max(1),
            candidates,
            base,
        }
    }

    /// Runs the plan: every run trains in its hidden directory, and the model lands in
    /// `dirs.out()` once, complete; until then `out` keeps what it held.
    pub(super) fn execute(
        &self,
        prep: &Prepared<'_>,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
    ) -> Result<TrainReport> {
        if self.searches() {
            return self.search(prep, dirs, ctx);
        }
        let fixed = self.at_temperature(
            self.candidates
                .first()
                .copied()
                .unwrap_or(self.base.loss.temperature),
        );
        if self.members == 1 {
            dirs.prepare(&[RunName::Single], ctx.opts.resume)?;
            let single = RunSpec {
                config: fixed,
                name: RunName::Single,
                label: String::new(),
            };
            let report = self.train(prep, &single, dirs, ctx)?;
            if report.finished {
                let mut history = PlanHistory::default();
                history.record(&single, &report, Some(1));
                let dir = dirs.path(single.name);
                add_model_file(&dir, PLAN_FILE, &history.to_json(&dir)?)?;
                dirs.commit(single.name)?;
            }
            return Ok(report);
        }
        dirs.prepare(&self.hidden_runs(), ctx.opts.resume)?;
        let first = RunSpec {
            config: fixed,
            name: RunName::Member(0),
            label: self.member_label(0),
        };
        let report = self.train(prep, &first, dirs, ctx)?;
        if !report.finished {
            return Ok(report);
        }
        let mut history = PlanHistory::default();
        history.record(&first, &report, Some(1));
        self.finish_members(prep, &first.config, (first.name, report), &[], history, dirs, ctx)
    }

    /// Refuses settings whose per-step buffers cannot fit in memory, before anything is built: each
    /// step allocates `[batch, batch + loss.extra_negatives]` logits and the item tower's
    /// activations for every column, so a mistyped `--extra-negatives 100000000` would otherwise
    /// abort on a 64 GB allocation.
    pub(super) fn check_sizes(&self, ds: &Dataset) -> Result<()> {
        let cfg = &self.base;
        let b = cfg.train.batch_size as u64;
        let m = cfg.loss.extra_negatives as u64;
        let widest = cfg
            .item
            .layers
            .iter()
            .copied()
            .chain([cfg.model.dim])
            .max()
            .unwrap_or(1) as u64;
        let per_column = (b + 8 * widest) * 4;
        let bytes = (b + m).saturating_mul(per_column);
        if bytes > STEP_MEMORY_LIMIT {
            let fits = (STEP_MEMORY_LIMIT / per_column).saturating_sub(b);
            return Err(Error::config(
                "model config",
                format!(
                    "loss.extra_negatives = {m} (--extra-negatives) with train.batch_size {b} needs \
                     about {:.1} GB per training step for the logits and the item tower; at most \
                     {fits} fit in {} GiB (the catalogue has {} items)",
                    bytes as f64 / 1e9,
                    STEP_MEMORY_LIMIT >> 30,
                    ds.items.len()
                ),
            ));
        }
        Ok(())
    }

    /// Whether validation runs choose anything (a temperature, or the refit's epoch count).
    fn searches(&self) -> bool {
        self.candidates.len() > 1 || self.refit
    }

    /// Every hidden run the plan may create: what `--resume` looks for.
    fn hidden_runs(&self) -> Vec<RunName> {
        if !self.searches() && self.members == 1 {
            return vec![RunName::Single];
        }
        if !self.searches() {
            return (0..self.members).map(RunName::Member).collect();
        }
        let mut runs: Vec<RunName> = self
            .search_candidates()
            .into_iter()
            .map(RunName::Temperature)
            .collect();
        if self.refit {
            runs.push(RunName::Refit);
        }
        runs.extend((1..self.members).map(RunName::Member));
        runs
    }

    /// The temperatures the search trains: a refit with none to search still validates the
    /// configured one, to choose its epoch count.
    fn search_candidates(&self) -> Vec<f32> {
        if self.candidates.is_empty() {
            vec![self.base.loss.temperature]
        } else {
            self.candidates.clone()
        }
    }

    /// The settings of one model trained at temperature `t`.
    fn at_temperature(&self, t: f32) -> Config {
        let mut c = self.base.clone();
        c.loss.temperature = t;
        c.loss.temperature_candidates.clear();
        c
    }

    fn candidate(&self, t: f32) -> RunSpec {
        RunSpec {
            config: self.at_temperature(t),
            name: RunName::Temperature(t),
            label: format!("T {t}: "),
        }
    }

    /// The refit: the chosen temperature and epoch count on every training row.
    fn refit_run(&self, t: f32, best_epoch: usize) -> RunSpec {
        let mut config = self.at_temperature(t);
        config.train.validation_per_user = 0;
        config.train.epochs = best_epoch.max(1);
        config.train.refit = false;
        let member = if self.members > 1 {
            self.member_label(0)
        } else {
            String::new()
        };
        RunSpec {
            config,
            name: RunName::Refit,
            label: format!("refit: {member}"),
        }
    }

    /// Member `k` ≥ 1: member 0's settings with a seed derived from its own, so a fixed `--seed`
    /// fixes the whole ensemble.
    fn member(&self, first: &Config, k: usize) -> RunSpec {
        let mut config = first.clone();
        config.train.seed = first.train.seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        RunSpec {
            config,
            name: RunName::Member(k),
            label: self.member_label(k),
        }
    }

    /// Progress-bar label of member `k` (0-based).
    fn member_label(&self, k: usize) -> String {
        format!("member {}/{}: ", k + 1, self.members)
    }

    fn train(
        &self,
        prep: &Prepared<'_>,
        spec: &RunSpec,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
    ) -> Result<TrainReport> {
        run(prep, &spec.config, &dirs.path(spec.name), &spec.label, ctx)
    }

    /// Trains one run per candidate temperature, keeps the one with the best validation recall
    /// (the first among equals), then refits with its settings when asked, then completes the
    /// members. Every stage is resumable.
    fn search(&self, prep: &Prepared<'_>, dirs: &RunDir, ctx: &RunCtx<'_>) -> Result<TrainReport> {
        dirs.prepare(&self.hidden_runs(), ctx.opts.resume)?;
        let mut runs = Vec::new();
        let mut specs = Vec::new();
        for t in self.search_candidates() {
            let spec = self.candidate(t);
            let started = Instant::now();
            let report = self.train(prep, &spec, dirs, ctx)?;
            runs.push(CandidateRun {
                temperature: t,
                name: spec.name,
                report,
                seconds: started.elapsed().as_secs_f64(),
            });
            specs.push(spec);
        }
        let (best, trials) = pick_best(&runs);
        let chosen = &runs[best];
        if !runs.iter().all(|r| r.report.finished) {
            return Ok(TrainReport {
                temperature_search: trials,
                finished: false,
                ..chosen.report.clone()
            });
        }
        let mut history = PlanHistory {
            temperature_search: trials.clone(),
            runs: Vec::new(),
        };
        for (i, (spec, run)) in specs.iter().zip(&runs).enumerate() {
            let kept = i == best && !self.refit;
            history.record(spec, &run.report, kept.then_some(1));
        }
        let (first_config, first) = if self.refit {
            let spec = self.refit_run(chosen.temperature, chosen.report.summary.best_epoch);
            let report = self.train(prep, &spec, dirs, ctx)?;
            history.record(&spec, &report, Some(1));
            (spec.config, (spec.name, report))
        } else {
            (
                self.at_temperature(chosen.temperature),
                (chosen.name, chosen.report.clone()),
            )
        };
        let report = if first.1.finished {
            let done: Vec<RunName> = runs.iter().map(|r| r.name).filter(|&n| n != first.0).collect();
            self.finish_members(prep, &first_config, first, &done, history, dirs, ctx)?
        } else {
            first.1
        };
        Ok(TrainReport {
            temperature_search: trials,
            refit_validation_recall: if self.refit {
                chosen.report.summary.validation_recall
            } else {
                None
            },
            ..report
        })
    }

    /// Completes the model from member 0 (trained with `first_config` as run `first`): alone, it is
    /// swapped in as `out`; otherwise the other members are trained, assembled into one ensemble
    /// model and committed as `out`. `done` are the other runs (the search's candidates) to discard
    /// once `out` is committed. `history` holds the runs so far; the model's `plan.json` records it
    /// with the members'.
    #[allow(clippy::too_many_arguments)]
    fn finish_members(
        &self,
        prep: &Prepared<'_>,
        first_config: &Config,
        first: (RunName, TrainReport),
        done: &[RunName],
        mut history: PlanHistory,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
    ) -> Result<TrainReport> {
        let (first_name, first) = first;
        if self.members <= 1 {
            let dir = dirs.path(first_name);
            add_model_file(&dir, PLAN_FILE, &history.to_json(&dir)?)?;
            dirs.commit(first_name)?;
            dirs.discard(done);
            return Ok(first);
        }
        let mut names = vec![first_name];
        let mut reports = vec![first];
        for k in 1..self.members {
            let spec = self.member(first_config, k);
            let report = self.train(prep, &spec, dirs, ctx)?;
            if !report.finished {
                return Ok(report);
            }
            history.record(&spec, &report, Some(k + 1));
            names.push(spec.name);
            reports.push(report);
        }
        let models = names
            .iter()
            .map(|&n| Model::load(dirs.path(n)))
            .collect::<Result<Vec<_>>>()?;
        let mut meta = models[0].meta().clone();
        meta.config.model.members = self.members;
        meta.training.seconds = reports.iter().map(|r| r.summary.seconds).sum();
        let epochs: Vec<EpochMetrics> = reports
            .iter()
            .enumerate()
            .flat_map(|(k, r)| {
                r.epochs.iter().map(move |e| EpochMetrics {
                    member: Some(k + 1),
                    ..e.clone()
                })
            })
            .collect();
        let model = Model::ensemble(meta.clone(), models)?;
        commit_model_dir(dirs.out(), &model.files(), &epochs, |dir| {
            add_plan(dir, &history)?;
            Ok(vec![PLAN_FILE])
        })?;
        names.extend_from_slice(done);
        dirs.discard(&names);
        Ok(TrainReport {
            epochs,
            summary: meta.training,
            temperature_search: Vec::new(),
            finished: true,
            refit_validation_recall: None,
        })
    }
}

/// Writes `plan.json` into a staging directory whose manifest is written after it.
fn add_plan(dir: &Path, history: &PlanHistory) -> Result<()> {
    twotower_data::artifact::write_file_atomic(&dir.join(PLAN_FILE), &history.to_json(dir)?)?;
    Ok(())
}

/// The run with the best validation recall (the first among equals) and the search's summary.
fn pick_best(runs: &[CandidateRun]) -> (usize, Vec<TemperatureTrial>) {
    let score = |r: &CandidateRun| r.report.summary.validation_recall.unwrap_or(f64::NEG_INFINITY);
    let best = (0..runs.len())
        .reduce(|a, b| if score(&runs[b]) > score(&runs[a]) { b } else { a })
        .unwrap_or(0);
    let trials = runs
        .iter()
        .enumerate()
        .map(|(i, r)| TemperatureTrial {
            temperature: r.temperature,
            validation_recall: r.report.summary.validation_recall,
            best_epoch: r.report.summary.best_epoch,
            seconds: r.seconds,
            chosen: i == best,
        })
        .collect();
    (best, trials)
}
