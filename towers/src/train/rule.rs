//! The plan rule: which shape of training plan a dataset gets, decided from its size alone, so the
//! same data, config and seed always get the same plan (and the same model).
//!
//! The full plan (every temperature candidate trained to its end, a refit on every training row,
//! further ensemble members) costs about `candidates + 1 + (members − 1)` runs. On MovieLens that is
//! a minute or two and worth its price (see `plan.rs`). At ten million interactions one run is an
//! hour of epochs on two cores, and the full plan several hours. There the rule switches to the
//! *scaled* plan:
//! - **the temperature chosen on the first steps**: every candidate trains the first
//!   [`SEARCH_ROWS`] examples of the run it would be (same seed, same shuffled order, same
//!   learning-rate schedule) and is validated there; the candidate with the best validation recall
//!   is trained in full. A search costs `candidates × SEARCH_ROWS` examples, a small share of one
//!   run at this size, where successive halving on whole epochs cost two more epochs;
//! - **a bounded run**: at most [`SCALED_RUN_WORK`] example passes (3 epochs of 8 M rows), where
//!   the rows-based epoch sizing asks for 10 at this size (epochs set with `--epochs` are kept);
//! - **no refit**: at this size the validation slice (at most `validation_max_users` rows) is a
//!   negligible share of the training rows, so retraining to include it buys nothing for one more run;
//! - **one member**: a second member costs a whole run and doubles the index width and its memory.
//!
//! Its cost is `epochs × rows + candidates × SEARCH_ROWS`: 1.125 runs at 8 M rows.

use serde::{Deserialize, Serialize};

/// Example passes (training rows × epochs, summed over the plan's runs) up to which the full plan
/// runs: about 20 minutes at the two-core throughput of the default model. ML-100K's full plan is
/// about 2 M, ml-1m-partial's about 8 M; 10 M interactions ask for 400 M.
pub const FULL_PLAN_WORK: u64 = 30_000_000;

/// Example passes one run of the scaled plan trains at most (whole epochs; at least one).
pub const SCALED_RUN_WORK: u64 = 25_000_000;

/// Training examples each temperature candidate of the scaled plan trains before it is judged.
pub const SEARCH_ROWS: usize = 1_000_000;

/// Which plan shape to train (`train.plan`, `--plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    /// The rule decides from the data's size.
    #[default]
    Auto,
    /// The full plan whatever the size.
    Full,
    /// The scaled plan whatever the size.
    Scaled,
}

/// The shape a plan was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanShape {
    /// Every candidate to its end, the refit, every member.
    #[default]
    Full,
    /// Successive halving over the candidates, no refit, one member.
    Scaled,
}

/// What the rule sees: the size of one run and the configured stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanInputs {
    /// Training rows a run fits on (the validation slice held out).
    pub fit_rows: usize,
    /// Epochs one run trains (`train.epochs`, or sized from the data).
    pub epochs: usize,
    /// The epochs were set (`--epochs N`), not sized from the data: the scaled plan keeps them.
    pub epochs_fixed: bool,
    /// Temperature candidates searched (0 or 1: no search).
    pub candidates: usize,
    /// A refit is configured (and possible: a validation slice and a fixed temperature).
    pub refit: bool,
    /// Ensemble members configured.
    pub members: usize,
}

/// The rule's decision: the shape, the runs and epochs it implies, its cost, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanDecision {
    /// Full or scaled.
    pub shape: PlanShape,
    /// Epochs of each run (the scaled plan bounds them by [`SCALED_RUN_WORK`]).
    pub epochs: usize,
    /// Examples each candidate trains before the scaled plan compares them (0 in the full plan,
    /// whose candidates train whole runs).
    #[serde(default)]
    pub search_rows: usize,
    /// Candidates searched.
    pub candidates: usize,
    /// A refit follows the search.
    pub refit: bool,
    /// Ensemble members of the model.
    pub members: usize,
    /// Training rows of one run.
    pub fit_rows: usize,
    /// Example passes the whole plan trains at most (early stopping may end runs sooner).
    pub planned_examples: u64,
    /// Example passes of the one run the plan keeps (its last member), for the plan's cost ratio.
    pub kept_run_examples: u64,
    /// One sentence: why this shape.
    pub reason: String,
}

impl PlanDecision {
    /// The plan's cost in runs of the configuration it keeps (planned example passes over one run's).
    pub fn cost_in_runs(&self) -> f64 {
        self.planned_examples as f64 / self.kept_run_examples.max(1) as f64
    }

    /// Seconds the plan would take at `examples_per_sec`.
    pub fn eta_secs(&self, examples_per_sec: f64) -> f64 {
        self.planned_examples as f64 / examples_per_sec.max(1e-9)
    }
}

/// The example passes of the full plan for `inp`.
fn full_examples(inp: &PlanInputs) -> u64 {
    let runs = inp.candidates.max(1) + usize::from(inp.refit) + inp.members.max(1) - 1;
    inp.fit_rows as u64 * inp.epochs as u64 * runs as u64
}

/// Decides the plan for `inp` under `mode`.
pub fn decide(mode: PlanMode, inp: &PlanInputs) -> PlanDecision {
    let full = full_examples(inp);
    let scaled = match mode {
        PlanMode::Full => false,
        PlanMode::Scaled => true,
        PlanMode::Auto => full > FULL_PLAN_WORK,
    };
    let run = |epochs: usize| inp.fit_rows as u64 * epochs as u64;
    if !scaled {
        return PlanDecision {
            shape: PlanShape::Full,
            epochs: inp.epochs,
            search_rows: 0,
            candidates: inp.candidates,
            refit: inp.refit,
            members: inp.members.max(1),
            fit_rows: inp.fit_rows,
            planned_examples: full,
            kept_run_examples: run(inp.epochs),
            reason: match mode {
                PlanMode::Full => "asked for (--plan full)".into(),
                _ => format!(
                    "{} example passes fit the full plan's bound of {}",
                    millions(full),
                    millions(FULL_PLAN_WORK)
                ),
            },
        };
    }
    let fit = inp.fit_rows.max(1) as u64;
    let epochs = if inp.epochs_fixed {
        inp.epochs
    } else {
        inp.epochs.min((SCALED_RUN_WORK / fit).max(1) as usize)
    };
    let search_rows = if inp.candidates > 1 {
        SEARCH_ROWS.min(inp.fit_rows)
    } else {
        0
    };
    let planned = run(epochs) + (inp.candidates * search_rows) as u64;
    PlanDecision {
        shape: PlanShape::Scaled,
        epochs,
        search_rows,
        candidates: inp.candidates,
        refit: false,
        members: 1,
        fit_rows: inp.fit_rows,
        planned_examples: planned,
        kept_run_examples: run(epochs),
        reason: match mode {
            PlanMode::Scaled => "asked for (--plan scaled)".into(),
            _ => format!(
                "the full plan would train {} example passes, over its bound of {}",
                millions(full),
                millions(FULL_PLAN_WORK)
            ),
        },
    }
}

/// `12.3 M`.
fn millions(n: u64) -> String {
    format!("{:.1} M", n as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(fit_rows: usize, epochs: usize) -> PlanInputs {
        PlanInputs {
            fit_rows,
            epochs,
            epochs_fixed: false,
            candidates: 3,
            refit: true,
            members: 2,
        }
    }

    #[test]
    fn movielens_sizes_get_the_full_plan() {
        // ML-100K: ~79 k fit rows, 5 epochs; ml-1m-partial: ~385 k rows, 3 epochs.
        for (rows, epochs) in [(79_000, 5), (385_000, 3)] {
            let d = decide(PlanMode::Auto, &inputs(rows, epochs));
            assert_eq!(d.shape, PlanShape::Full, "{rows} rows");
            assert_eq!((d.candidates, d.refit, d.members, d.epochs), (3, true, 2, epochs));
            // 3 candidates + refit + 1 more member = 5 runs.
            assert_eq!(d.planned_examples, rows as u64 * epochs as u64 * 5);
            assert_eq!(d.cost_in_runs(), 5.0);
        }
    }

    #[test]
    fn ten_million_rows_get_the_scaled_plan() {
        let d = decide(PlanMode::Auto, &inputs(7_960_000, 10));
        assert_eq!(d.shape, PlanShape::Scaled);
        assert_eq!(d.epochs, 3, "25 M example passes of 7.96 M rows");
        assert!(!d.refit);
        assert_eq!(d.members, 1);
        assert_eq!(d.search_rows, SEARCH_ROWS);
        // The kept run's epochs plus each candidate's first SEARCH_ROWS examples.
        assert_eq!(d.planned_examples, 7_960_000 * 3 + 3 * SEARCH_ROWS as u64);
        assert!(d.cost_in_runs() <= 1.2, "{}", d.cost_in_runs());
        assert!(d.reason.contains("bound"), "{}", d.reason);
        // Larger still: one epoch, never none.
        let d = decide(PlanMode::Auto, &inputs(50_000_000, 10));
        assert_eq!(d.epochs, 1);
        // Epochs the user set are kept.
        let set = PlanInputs {
            epochs_fixed: true,
            ..inputs(7_960_000, 10)
        };
        assert_eq!(decide(PlanMode::Auto, &set).epochs, 10);
    }

    #[test]
    fn the_bound_is_on_the_full_plans_work() {
        // Exactly at the bound: full; one row more: scaled.
        let rows = (FULL_PLAN_WORK / 5 / 2) as usize;
        assert_eq!(decide(PlanMode::Auto, &inputs(rows, 2)).shape, PlanShape::Full);
        assert_eq!(
            decide(PlanMode::Auto, &inputs(rows + 1, 2)).shape,
            PlanShape::Scaled
        );
        // Fewer stages configured make the same data cheap enough for the full plan.
        let single = PlanInputs {
            candidates: 1,
            refit: false,
            members: 1,
            ..inputs(rows + 1, 2)
        };
        assert_eq!(decide(PlanMode::Auto, &single).shape, PlanShape::Full);
    }

    #[test]
    fn the_mode_overrides_the_rule() {
        assert_eq!(
            decide(PlanMode::Full, &inputs(10_000_000, 10)).shape,
            PlanShape::Full
        );
        let d = decide(PlanMode::Scaled, &inputs(1_000, 3));
        assert_eq!(d.shape, PlanShape::Scaled);
        assert_eq!(d.epochs, 3, "small data keeps its epochs");
        assert_eq!(
            d.search_rows, 1_000,
            "a search never asks for more rows than there are"
        );
        assert_eq!(d.planned_examples, 1_000 * 3 + 3 * 1_000);
        assert!(d.reason.contains("--plan scaled"));
        let one = PlanInputs {
            candidates: 1,
            ..inputs(1_000, 3)
        };
        assert_eq!(decide(PlanMode::Scaled, &one).search_rows, 0, "nothing to search");
    }

    #[test]
    fn the_scaled_plan_costs_little_more_than_its_run_at_scale() {
        for rows in [8_000_000, 12_000_000, 24_000_000, 100_000_000] {
            let d = decide(PlanMode::Auto, &inputs(rows, 10));
            assert!(d.cost_in_runs() <= 1.2, "{rows} rows: {}", d.cost_in_runs());
            assert!(d.planned_examples <= SCALED_RUN_WORK.max(rows as u64) + 3 * SEARCH_ROWS as u64);
        }
    }

    #[test]
    fn eta_is_planned_examples_over_throughput() {
        let d = decide(PlanMode::Auto, &inputs(8_000_000, 10));
        // 8 M × 3 epochs + 3 × 1 M = 27 M example passes at 20 k/s = 1,350 s.
        assert_eq!(d.planned_examples, 27_000_000);
        assert!((d.eta_secs(20_000.0) - 1_350.0).abs() < 1e-6);
    }
}
