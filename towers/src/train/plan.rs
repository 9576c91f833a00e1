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
use super::clock::human_secs;
use super::prepared::Prepared;
use super::rule::{decide, PlanDecision, PlanInputs, PlanMode, PlanShape};
use super::run::{resolve_epochs, run};
use super::run_dir::{RunDir, RunName};
use super::warm::WarmStartRecord;
use super::{EpochMetrics, RunCtx, TemperatureTrial, TrainReport};
use twotower_data::Dataset;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{read_member, ModelFiles, ModelMeta};

/// The model directory's record of the plan that trained it.
pub const PLAN_FILE: &str = "plan.json";

/// `plan.json`: every run of the plan that trained a model (candidates, refit, members) with its
/// settings and epochs, and the temperature search. Written with the model and listed in its
/// manifest; models trained before it existed have none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanHistory {
    /// The plan the rule chose and why (absent in models trained before the rule existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<PlanDecision>,
    /// The temperature search, one entry per candidate in order (empty without a search). In the
    /// scaled plan each candidate's validation recall is measured after its search steps
    /// (`decision.search_rows` examples), the point where the candidates are compared.
    pub temperature_search: Vec<TemperatureTrial>,
    /// Every run in the order it trained.
    pub runs: Vec<PlanRun>,
    /// Stages the plan left out because `--budget` would have run out, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The kept run ended before its last epoch because `--budget` ran out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_budget: bool,
    /// The model a warm start began from and what it copied (absent for a model trained from
    /// scratch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStartRecord>,
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
    /// An empty history of the plan `decision`.
    fn started(decision: &PlanDecision) -> PlanHistory {
        PlanHistory {
            decision: Some(decision.clone()),
            ..PlanHistory::default()
        }
    }

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

    /// What the plan rule decides for this dataset (see `rule.rs`).
    pub(super) fn decide(&self, prep: &Prepared<'_>, mode: PlanMode) -> PlanDecision {
        let fit = prep.fit(&self.base.train);
        let inputs = PlanInputs {
            fit_rows: fit.split.fit.len(),
            epochs: resolve_epochs(&self.base.train, &fit.split.fit),
            epochs_fixed: self.base.train.epochs > 0,
            candidates: self.candidates.len(),
            refit: self.refit,
            members: self.members,
        };
        decide(mode, &inputs)
    }

    /// Runs the plan: every run trains in its hidden directory, and the model lands in
    /// `dirs.out()` once, complete; until then `out` keeps what it held.
    pub(super) fn execute(
        &self,
        prep: &Prepared<'_>,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
    ) -> Result<TrainReport> {
        // A warm start is one run per member whatever the size: nothing is searched.
        let mode = if ctx.warm.is_some() {
            PlanMode::Full
        } else {
            ctx.opts.plan
        };
        let mut decision = self.decide(prep, mode);
        if let Some(w) = ctx.warm {
            decision.reason = format!(
                "warm start from {}: one run per member at temperature {}, rows copied by id{}",
                w.opts.from.display(),
                self.base.loss.temperature,
                match w.opts.train_from {
                    Some(_) if w.opts.replay > 0.0 => format!(
                        ", on the rows from --train-from on and {:.0} % of the older ones",
                        w.opts.replay * 100.0
                    ),
                    Some(_) => ", on the rows from --train-from on".into(),
                    None => ", on every training row".into(),
                }
            );
        }
        ctx.clock.plan(decision.planned_examples);
        ctx.progress.note(&describe(&decision, ctx.clock.budget()));
        let mut report = match decision.shape {
            PlanShape::Scaled => self.scaled(prep, dirs, ctx, &decision)?,
            PlanShape::Full => self.full(prep, dirs, ctx, &decision)?,
        };
        report.plan = Some(decision);
        Ok(report)
    }

    /// The full plan: every candidate to its end, the refit, every member.
    fn full(
        &self,
        prep: &Prepared<'_>,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
        decision: &PlanDecision,
    ) -> Result<TrainReport> {
        if self.searches() {
            return self.search(prep, dirs, ctx, decision);
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
                let mut history = PlanHistory::started(decision);
                history.warm_start = ctx.warm.and_then(|w| w.record());
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
        let mut history = PlanHistory::started(decision);
        history.warm_start = ctx.warm.and_then(|w| w.record());
        history.record(&first, &report, Some(1));
        self.finish_members(prep, &first.config, (first.name, report), &[], history, dirs, ctx)
    }

    /// The scaled plan (see `rule.rs`): every candidate trains the first `decision.search_rows`
    /// examples of its run and is validated there; the best trains its whole run (at most
    /// `decision.epochs`), with no refit and one member. Resumable: a candidate or a final run
    /// found finished in its checkpoint is not trained again.
    fn scaled(
        &self,
        prep: &Prepared<'_>,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
        decision: &PlanDecision,
    ) -> Result<TrainReport> {
        let temps = if decision.search_rows > 0 {
            self.search_candidates()
        } else {
            Vec::new()
        };
        // With nothing to search, the one run is a plain single run.
        let last = if temps.is_empty() {
            RunName::Single
        } else {
            RunName::Final
        };
        let mut names: Vec<RunName> = temps.iter().map(|&t| RunName::Temperature(t)).collect();
        names.push(last);
        dirs.prepare(&names, ctx.opts.resume)?;
        let mut history = PlanHistory::started(decision);
        let at = |t: f32| {
            let mut c = self.at_temperature(t);
            c.train.epochs = decision.epochs;
            c
        };
        let steps = decision.search_rows.div_ceil(self.base.train.batch_size.max(1)) as u64;
        let (specs, runs) = self.candidates(
            prep,
            dirs,
            ctx,
            &temps,
            (at, Some(steps)),
            (decision.search_rows as u64, "its search steps"),
            &mut history.skipped,
        )?;
        if let Some(r) = runs.iter().find(|r| !r.report.finished) {
            return Ok(r.report.clone());
        }
        let (chosen_t, trials) = if runs.is_empty() {
            (self.search_candidates()[0], Vec::new())
        } else {
            let (best, trials) = pick_best(&runs);
            (runs[best].temperature, trials)
        };
        let spec = RunSpec {
            config: at(chosen_t),
            name: last,
            label: if temps.is_empty() {
                String::new()
            } else {
                "final: ".into()
            },
        };
        let report = self.train(prep, &spec, dirs, ctx)?;
        if !report.finished {
            return Ok(report);
        }
        history.temperature_search = trials.clone();
        for (spec, r) in specs.iter().zip(&runs) {
            history.record(spec, &r.report, None);
        }
        history.record(&spec, &report, Some(1));
        history.stopped_by_budget = report.stopped_by_budget;
        let dir = dirs.path(spec.name);
        add_model_file(&dir, PLAN_FILE, &history.to_json(&dir)?)?;
        dirs.commit(spec.name)?;
        let others: Vec<RunName> = names.into_iter().filter(|&n| n != last).collect();
        dirs.discard(&others);
        Ok(TrainReport {
            temperature_search: trials,
            ..report
        })
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
        let member = match spec.name {
            RunName::Member(k) => k,
            _ => 0,
        };
        run(
            prep,
            &spec.config,
            &dirs.path(spec.name),
            &spec.label,
            ctx,
            None,
            member,
        )
    }

    /// Trains one run per temperature of `temps`, in order, with the settings `config(t)` (only
    /// their first `steps` steps when given). A candidate after the first whose `cost` example passes
    /// would end past `--budget` is left out, with a line in `skipped` naming `what` would not fit.
    #[allow(clippy::too_many_arguments)]
    fn candidates(
        &self,
        prep: &Prepared<'_>,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
        temps: &[f32],
        (config, steps): (impl Fn(f32) -> Config, Option<u64>),
        (cost, what): (u64, &str),
        skipped: &mut Vec<String>,
    ) -> Result<(Vec<RunSpec>, Vec<CandidateRun>)> {
        let (mut specs, mut runs) = (Vec::new(), Vec::new());
        for &t in temps {
            if !runs.is_empty() && !ctx.clock.fits(cost) {
                skipped.push(format!("temperature {t}: {what} would end past the budget"));
                continue;
            }
            let spec = RunSpec {
                config: config(t),
                name: RunName::Temperature(t),
                label: format!("T {t}: "),
            };
            let started = Instant::now();
            let report = run(
                prep,
                &spec.config,
                &dirs.path(spec.name),
                &spec.label,
                ctx,
                steps,
                0,
            )?;
            runs.push(CandidateRun {
                temperature: t,
                name: spec.name,
                report,
                seconds: started.elapsed().as_secs_f64(),
            });
            specs.push(spec);
        }
        Ok((specs, runs))
    }

    /// Trains one run per candidate temperature, keeps the one with the best validation recall
    /// (the first among equals), then refits with its settings when asked, then completes the
    /// members. Every stage is resumable.
    fn search(
        &self,
        prep: &Prepared<'_>,
        dirs: &RunDir,
        ctx: &RunCtx<'_>,
        decision: &PlanDecision,
    ) -> Result<TrainReport> {
        dirs.prepare(&self.hidden_runs(), ctx.opts.resume)?;
        let mut skipped = Vec::new();
        let (specs, runs) = self.candidates(
            prep,
            dirs,
            ctx,
            &self.search_candidates(),
            (|t| self.at_temperature(t), None),
            (decision.kept_run_examples, "its run"),
            &mut skipped,
        )?;
        let (best, trials) = pick_best(&runs);
        let chosen = &runs[best];
        if !runs.iter().all(|r| r.report.finished) {
            return Ok(TrainReport {
                temperature_search: trials,
                finished: false,
                ..chosen.report.clone()
            });
        }
        let mut history = PlanHistory::started(decision);
        history.temperature_search = trials.clone();
        history.skipped = skipped;
        let refit_examples =
            (decision.fit_rows as u64).saturating_mul(chosen.report.summary.best_epoch as u64);
        let refit = self.refit && ctx.clock.fits(refit_examples);
        if self.refit && !refit {
            history
                .skipped
                .push("the refit: it would end past the budget (the chosen candidate is kept)".into());
        }
        for (i, (spec, run)) in specs.iter().zip(&runs).enumerate() {
            let kept = i == best && !refit;
            history.record(spec, &run.report, kept.then_some(1));
        }
        let (first_config, first) = if refit {
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
            refit_validation_recall: if refit {
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
        let mut names = vec![first_name];
        let mut reports = vec![first];
        for k in 1..self.members {
            let examples = history.decision.as_ref().map_or(0, |d| d.kept_run_examples);
            if !ctx.clock.fits(examples) {
                history.skipped.push(format!(
                    "ensemble members {} to {}: they would end past the budget",
                    k + 1,
                    self.members
                ));
                break;
            }
            let spec = self.member(first_config, k);
            let report = self.train(prep, &spec, dirs, ctx)?;
            if !report.finished {
                return Ok(report);
            }
            history.record(&spec, &report, Some(k + 1));
            names.push(spec.name);
            reports.push(report);
        }
        if names.len() == 1 {
            let first = reports.remove(0);
            let dir = dirs.path(first_name);
            add_model_file(&dir, PLAN_FILE, &history.to_json(&dir)?)?;
            dirs.commit(first_name)?;
            dirs.discard(done);
            return Ok(first);
        }
        // The members differ only in their weights: those (and member 0's model.json) are read
        // back from the runs' directories, which hold each run's kept epoch (not always its last,
        // and a resumed plan trained some members in an earlier process); everything else is what
        // every run wrote from `prep`, written once more here from `prep` itself.
        let members = names.len();
        let mut nets = Vec::with_capacity(members);
        let mut first_meta = None;
        for &n in &names {
            let dir = dirs.path(n);
            let (m, net) = read_member(&dir)?;
            let same_layout = first_meta
                .as_ref()
                .is_none_or(|f: &ModelMeta| f.layout == m.layout);
            if !same_layout || m.dataset_fingerprint != prep.ds.fingerprint() {
                return Err(Error::model(
                    &dir,
                    "ensemble member has another layout or dataset than the first member",
                ));
            }
            nets.extend(net);
            first_meta.get_or_insert(m);
        }
        let mut meta = first_meta.expect("an ensemble has members");
        meta.config.model.members = members;
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
        let model = ModelFiles {
            meta: &meta,
            nets: &nets,
            users: &prep.ds.users,
            items: &prep.ds.items,
            item_feats: &prep.item_feats,
            user_feats: &prep.user_feats,
            user_items: &prep.user_items,
            keep_weights_from: None,
        };
        commit_model_dir(dirs.out(), &model, &epochs, |dir| {
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
            stopped_by_budget: false,
            plan: None,
        })
    }
}

/// The lines `train` prints before it starts: the plan, why, and what it will train.
fn describe(d: &PlanDecision, budget: Option<std::time::Duration>) -> String {
    let stages = match d.shape {
        PlanShape::Full => {
            let mut s = vec![];
            if d.candidates > 1 {
                s.push(format!(
                    "{} temperature candidates, each to its end",
                    d.candidates
                ));
            }
            if d.refit {
                s.push("a refit on every training row".to_string());
            }
            if d.members > 1 {
                s.push(format!("{} ensemble members", d.members));
            }
            if s.is_empty() {
                s.push("one run".to_string());
            }
            s.join(", ")
        }
        PlanShape::Scaled if d.search_rows > 0 => format!(
            "{} temperature candidates train their first {} examples each, the best on validation \
             trains in full; no refit; one member",
            d.candidates, d.search_rows
        ),
        PlanShape::Scaled => "one run; no refit; one member".to_string(),
    };
    let budget = budget.map_or(String::new(), |b| {
        format!(
            "\n  budget {}: work that would end past it is not started",
            human_secs(b.as_secs_f64())
        )
    });
    format!(
        "plan: {shape} ({reason})\n  {stages}\n  {epochs} epochs of {rows} rows per run; {passes:.1} M example \
         passes in all, {ratio:.2}× the run it keeps; the time estimate follows the first steps{budget}",
        shape = match d.shape {
            PlanShape::Full => "full",
            PlanShape::Scaled => "scaled",
        },
        reason = d.reason,
        epochs = d.epochs,
        rows = d.fit_rows,
        passes = d.planned_examples as f64 / 1e6,
        ratio = d.cost_in_runs(),
    )
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
