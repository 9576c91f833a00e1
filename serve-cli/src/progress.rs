//! Terminal progress for long work: the libraries report through `data::progress::Progress`
//! and this is the one implementation that draws (indicatif), so they never print themselves.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use twotower_data::progress::Progress;

/// A progress bar on stderr that is silent when stderr is not a terminal (pipes, CI, tests) or `--quiet`.
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    visible: bool,
}

impl Bar {
    /// A bar that draws only when stderr is a terminal and `quiet` is false.
    pub fn new(quiet: bool) -> Self {
        Bar {
            bar: Mutex::new(None),
            visible: !quiet && std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: Option<u64>) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.take() {
            old.finish();
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{prefix:>12.bold} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta} {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "{prefix:>12.bold} {spinner} {human_pos} {per_sec} {elapsed} {msg}",
                )
                .expect("static template"),
            ),
        };
        bar.set_prefix(what.to_string());
        if !self.visible {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else {
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        *slot = Some(bar);
    }

    fn inc(&self, n: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            b.inc(n);
        }
    }

    fn set_message(&self, msg: &str) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            b.set_message(msg.to_string());
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }

    /// Notes go to stderr, above a live bar, also with `--quiet` (they are few and say what a long
    /// job is about to do).
    fn note(&self, msg: &str) {
        match self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(b) if self.visible => b.suspend(|| eprintln!("{msg}")),
            _ => eprintln!("{msg}"),
        }
    }
}
