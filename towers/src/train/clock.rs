//! The plan's clock: examples trained against the plan's total, the measured rate, the whole-plan
//! ETA shown beside each epoch's progress, and `--budget`, a deadline for the whole plan.
//!
//! The budget is checked before work starts: before each epoch of a run, and before each run a
//! plan may drop (another temperature candidate, the refit, a further member). Work that would
//! end past the deadline at the rate measured so far is not started; the runs keep their best epoch.
//! The very first epoch always trains (there is no rate to judge by before it). A budget makes the
//! plan depend on the machine's speed, so it gives up the same-seed-same-model promise.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Steps after which the first measured rate is reported.
pub(super) const CALIBRATION_STEPS: u64 = 20;

/// Progress of a whole plan.
pub(super) struct PlanClock {
    started: Instant,
    budget: Option<Duration>,
    planned: Cell<u64>,
    done: Cell<u64>,
    steps: Cell<u64>,
    /// When the first step ended, and the examples done then: the rate is measured from there, so
    /// building the first run's tables (seconds at 1 M rows) does not count as training time.
    first: Cell<Option<(Instant, u64)>>,
}

impl PlanClock {
    pub(super) fn new(budget: Option<Duration>) -> PlanClock {
        PlanClock {
            started: Instant::now(),
            budget,
            planned: Cell::new(0),
            done: Cell::new(0),
            steps: Cell::new(0),
            first: Cell::new(None),
        }
    }

    /// Sets the example passes the whole plan trains.
    pub(super) fn plan(&self, examples: u64) {
        self.planned.set(examples);
    }

    /// Counts one step of `examples` examples; true on the step that completes the calibration.
    pub(super) fn step(&self, examples: usize) -> bool {
        self.done.set(self.done.get() + examples as u64);
        self.steps.set(self.steps.get() + 1);
        if self.first.get().is_none() {
            self.first.set(Some((Instant::now(), self.done.get())));
        }
        self.steps.get() == CALIBRATION_STEPS
    }

    /// Example passes per second of wall time so far (validation and saving included), once any
    /// were trained.
    pub(super) fn rate(&self) -> Option<f64> {
        let (at, before) = self.first.get()?;
        let secs = at.elapsed().as_secs_f64();
        let done = self.done.get() - before;
        (done > 0 && secs > 0.0).then(|| done as f64 / secs)
    }

    /// Seconds left for the plan at the measured rate.
    pub(super) fn remaining_secs(&self) -> Option<f64> {
        let left = self.planned.get().saturating_sub(self.done.get());
        self.rate().map(|r| left as f64 / r)
    }

    /// Whether `examples` more example passes end before the budget runs out, at the measured rate
    /// (always with no budget, or before anything was measured).
    pub(super) fn fits(&self, examples: u64) -> bool {
        let (Some(budget), Some(rate)) = (self.budget, self.rate()) else {
            return true;
        };
        self.started.elapsed().as_secs_f64() + examples as f64 / rate <= budget.as_secs_f64()
    }

    /// The budget, if one was given.
    pub(super) fn budget(&self) -> Option<Duration> {
        self.budget
    }
}

/// `1h 02m`, `12m 05s`, `40s`.
pub(super) fn human_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(0.4), "0s");
        assert_eq!(human_secs(59.0), "59s");
        assert_eq!(human_secs(725.0), "12m 05s");
        assert_eq!(human_secs(3720.0), "1h 02m");
    }

    #[test]
    fn without_a_rate_or_a_budget_everything_fits() {
        let c = PlanClock::new(Some(Duration::from_secs(1)));
        assert!(c.fits(u64::MAX), "nothing measured yet");
        let c = PlanClock::new(None);
        c.step(1000);
        assert!(c.fits(u64::MAX), "no budget");
    }

    #[test]
    fn a_spent_budget_fits_nothing() {
        let c = PlanClock::new(Some(Duration::ZERO));
        c.plan(10_000);
        for _ in 0..CALIBRATION_STEPS - 1 {
            assert!(!c.step(10));
        }
        // Some time has passed since the first step, whatever the machine: the rate is defined.
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.step(10), "the calibration ends on its last step");
        assert!(!c.fits(1));
        assert_eq!(c.done.get(), 10 * CALIBRATION_STEPS);
        let left = c.remaining_secs().unwrap();
        assert!(left > 0.0);
    }
}
