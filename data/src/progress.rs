//! Progress reporting: libraries never print, they tell a [`Progress`] what they are doing and the binary
//! decides how to show it (a bar, a log line, nothing).

/// Receives progress from long-running library calls. `Sync` so rayon workers can report.
pub trait Progress: Sync {
    /// Starts a new phase; `total` is in the phase's units (rows, bytes, steps) when known.
    fn start(&self, what: &str, total: Option<u64>);
    /// Advances the current phase by `n` units.
    fn inc(&self, n: u64);
    /// Replaces the status message (e.g. "loss 4.21").
    fn set_message(&self, msg: &str);
    /// Ends the current phase.
    fn finish(&self);
    /// A line for the person running the job, outside any phase (e.g. the training plan chosen and
    /// its expected duration). Ignored unless the binary shows it.
    fn note(&self, _msg: &str) {}
}

/// A [`Progress`] that ignores everything, for tests and library callers that do not care.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn inc(&self, _n: u64) {}
    fn set_message(&self, _msg: &str) {}
    fn finish(&self) {}
}
