//! Following an index without hammering it: [`ReloadGate`] retries a failed reload only after what a
//! reload reads (the pointer, the version it names, the model's manifest) has changed, and no sooner
//! than a doubling backoff, so a broken CURRENT costs a few `stat`s per tick, not a checksum of every file.

use super::error::RecError;
use super::Recommender;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use twotower_index::{StoreStamp, VersionId, VersionStore};

/// What a reload reads: the index's ([`VersionStore::stamp`]: the pointer and, for a directory,
/// the size and time of the files of the version it names) and the model's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    index: StoreStamp,
    model: Option<(u64, Option<SystemTime>)>,
}

impl Stamp {
    /// Reads the stamp of an index and a model directory.
    pub fn of(index: &dyn VersionStore, model_dir: &Path) -> Stamp {
        let model = std::fs::metadata(model_dir.join("manifest.json"))
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        Stamp {
            index: index.stamp(),
            model,
        }
    }
}

/// What one [`ReloadGate::poll`] did.
#[derive(Debug)]
pub enum Poll {
    /// CURRENT names the live version.
    Unchanged,
    /// A new version was loaded and swapped in.
    Reloaded(VersionId),
    /// A reload was tried and failed; the previous version is still live.
    Failed(RecError),
    /// An earlier reload failed and nothing it reads has changed since (or the backoff runs): not retried.
    Waiting,
}

/// Decides when to try a reload; see the module documentation.
#[derive(Debug)]
pub struct ReloadGate {
    failed: Option<Stamp>,
    next: Instant,
    backoff: Duration,
    min: Duration,
    max: Duration,
}

impl ReloadGate {
    /// A gate whose backoff after a failure starts at `min` and doubles up to `max`.
    pub fn new(min: Duration, max: Duration) -> ReloadGate {
        ReloadGate {
            failed: None,
            next: Instant::now(),
            backoff: min,
            min,
            max: max.max(min),
        }
    }

    /// Whether the last attempt failed (and nothing has succeeded since).
    pub fn is_failing(&self) -> bool {
        self.failed.is_some()
    }

    /// Follows CURRENT when it moved, unless the last failure's inputs are unchanged.
    pub fn poll(&mut self, rec: &Recommender) -> Poll {
        if let Some(stamp) = &self.failed {
            if Instant::now() < self.next || rec.watch_stamp() == *stamp {
                return Poll::Waiting;
            }
        }
        let stamp = rec.watch_stamp();
        match rec.reload_if_changed() {
            Ok(v) => {
                self.failed = None;
                self.backoff = self.min;
                match v {
                    Some(v) => Poll::Reloaded(v),
                    None => Poll::Unchanged,
                }
            }
            Err(e) => {
                self.failed = Some(stamp);
                self.next = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(self.max);
                Poll::Failed(e)
            }
        }
    }
}
