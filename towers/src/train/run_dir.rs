//! The hidden directories a training plan's runs live in, beside `--out` (`.{name}.{run}`): their
//! names, what `--resume` finds and a fresh run clears, and the swap of a finished run into place.
//! A crash leaves them for `--resume`; `--out` keeps the previous model, byte for byte, until the
//! commit. `.{name}.lock` beside them keeps a second training of the same `--out` out.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use twotower_data::StagingDir;

use crate::error::{Error, Result};

/// A run of a plan, named as its hidden directory is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RunName {
    /// The one run of a plan with nothing to search and one member.
    Single,
    /// One candidate of the temperature search.
    Temperature(f32),
    /// The retraining on every training row with the chosen settings.
    Refit,
    /// Ensemble member `k` (0-based).
    Member(usize),
    /// The scaled plan's one full run, at the temperature its search chose.
    Final,
}

/// Prefix of runs renamed out of the way before they are deleted.
const TRASH: &str = "trash-";

impl RunName {
    pub(super) fn dir_name(self) -> String {
        match self {
            RunName::Single => "single".into(),
            RunName::Temperature(t) => format!("temperature-{t}"),
            RunName::Refit => "refit".into(),
            RunName::Member(k) => format!("member-{k}"),
            RunName::Final => "final".into(),
        }
    }

    /// The run whose directory suffix is exactly `what`, so that another model's hidden runs (of
    /// a model named `{name}.refit`, say: `.{name}.refit.member-1`) are never taken for ours.
    fn parse(what: &str) -> Option<RunName> {
        match what {
            "single" => return Some(RunName::Single),
            "refit" => return Some(RunName::Refit),
            "final" => return Some(RunName::Final),
            _ => {}
        }
        if let Some(k) = what.strip_prefix("member-") {
            if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
                return k.parse().ok().map(RunName::Member);
            }
            return None;
        }
        what.strip_prefix("temperature-")
            .and_then(|t| t.parse::<f32>().ok())
            .map(RunName::Temperature)
    }
}

/// The model directory `--out` and the hidden runs beside it.
pub(super) struct RunDir {
    out: PathBuf,
}

impl RunDir {
    pub(super) fn new(out: &Path) -> RunDir {
        RunDir {
            out: out.to_path_buf(),
        }
    }

    /// Where the finished model goes.
    pub(super) fn out(&self) -> &Path {
        &self.out
    }

    /// Where `run` trains until its result is committed.
    pub(super) fn path(&self, run: RunName) -> PathBuf {
        self.hidden(&run.dir_name())
    }

    /// `.{name of out}.{what}`, beside `out`.
    fn hidden(&self, what: &str) -> PathBuf {
        let name = self
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        self.out.with_file_name(format!(".{name}.{what}"))
    }

    /// The `what` of a [`Self::hidden`] directory of `out` (None for any other path).
    fn what(&self, dir: &Path) -> Option<String> {
        let prefix = self.hidden("");
        let prefix = prefix.file_name()?.to_string_lossy();
        let name = dir.file_name()?.to_string_lossy();
        name.strip_prefix(prefix.as_ref()).map(str::to_string)
    }

    /// Takes the output's writer lock for the life of the returned file: a second `train` into
    /// the same `--out` (in this or another process) is refused with the holder's pid, instead of
    /// both training and the last to commit winning. The lock is the OS's (`flock`): a crashed
    /// holder releases it, and the lock file is reused, never stale.
    pub(super) fn lock(&self) -> Result<File> {
        let path = self.hidden("lock");
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::model(
                    &self.out,
                    format!(
                        "is being trained by another process ({}; lock {}): wait for it to finish \
                         or stop it",
                        if holder.is_empty() {
                            "pid unknown".to_string()
                        } else {
                            format!("pid {holder}")
                        },
                        path.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }

    /// Readies the hidden runs of a search, refit or ensemble. `--resume` continues them; with none
    /// left and a model in `out` there is nothing to resume, and starting over silently would
    /// replace that model. A fresh run first removes every one left by an earlier, interrupted run
    /// (trained perhaps with other settings or another plan), so a later `--resume` finds only its own.
    pub(super) fn prepare(&self, runs: &[RunName], resume: bool) -> Result<()> {
        if resume {
            if self.out.join("model.json").exists() && !runs.iter().any(|&r| self.path(r).exists()) {
                return Err(Error::model(
                    &self.out,
                    "nothing to resume: it holds a finished model and no interrupted run of this plan \
                     (search, refit, ensemble member or single run) is left beside it; train without \
                     --resume to replace it",
                ));
            }
            return Ok(());
        }
        self.clear()
    }

    /// Removes every hidden run of `out` (temperature candidates, refit, members, and the trash
    /// left by [`Self::discard`]).
    pub(super) fn clear(&self) -> Result<()> {
        let probe = self.hidden("");
        let parent = match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let Ok(entries) = std::fs::read_dir(parent) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let ours = self
                .what(&e.path())
                .is_some_and(|what| RunName::parse(what.strip_prefix(TRASH).unwrap_or(&what)).is_some());
            if ours && e.path().is_dir() {
                std::fs::remove_dir_all(e.path()).map_err(|err| Error::io(e.path(), err))?;
            }
        }
        Ok(())
    }

    /// Moves the finished run `from` into place as `out` in one swap (the staging directory is
    /// empty, so the rename may replace it).
    pub(super) fn commit(&self, from: RunName) -> Result<()> {
        let from = self.path(from);
        let staging = StagingDir::new(&self.out)?;
        std::fs::rename(&from, staging.path()).map_err(|e| Error::io(&from, e))?;
        Ok(staging.commit()?)
    }

    /// Removes runs whose result is committed. Each is first renamed out of the way (to
    /// `.{name}.trash-…`), all before any is deleted, so a crash from the commit on leaves almost no
    /// window in which `--resume` would find them and train again what is already in place.
    /// Failures only leave debris for the next fresh run's [`Self::clear`]: the model is committed.
    pub(super) fn discard(&self, runs: &[RunName]) {
        let trash: Vec<_> = runs
            .iter()
            .filter_map(|&r| {
                let (from, to) = (self.path(r), self.hidden(&format!("{TRASH}{}", r.dir_name())));
                // Debris of an earlier discard would make the rename fail.
                let _ = std::fs::remove_dir_all(&to);
                std::fs::rename(from, &to).ok().map(|_| to)
            })
            .collect();
        for t in trash {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Committed runs are renamed out of the way, then deleted; a fresh run's cleanup takes every
    /// hidden run of its output (debris included, names with dots too) and nothing of another's.
    #[test]
    fn hidden_runs_are_discarded_and_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.v2");
        let dirs = RunDir::new(&out);
        let runs = [RunName::Refit, RunName::Temperature(0.15)];
        for &r in &runs {
            std::fs::create_dir_all(dirs.path(r).join("sub")).unwrap();
        }
        assert!(dirs
            .path(RunName::Temperature(0.15))
            .ends_with(".m.v2.temperature-0.15"));
        dirs.discard(&runs);
        let names = |dir: &std::path::Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
        let others = [".m.v2.refit.member-1", ".m.v2.x.temperature-0.1", ".other.refit"];
        let ours = [".m.v2.trash-refit", ".m.v2.member-3", ".m.v2.temperature-0.2"];
        for d in ours.iter().chain(&others) {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        dirs.clear().unwrap();
        assert_eq!(names(tmp.path()), others, "other models' runs stay");
    }

    /// A second writer of the same output is refused with the holder's pid; once the first lets go,
    /// the lock is free again (and `clear` never takes the lock file for a run).
    #[test]
    fn one_writer_per_output() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = RunDir::new(&tmp.path().join("m"));
        let held = dirs.lock().unwrap();
        let err = dirs.lock().unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("another process"),
            "{err}"
        );
        dirs.clear().unwrap();
        assert!(tmp.path().join(".m.lock").exists());
        drop(held);
        dirs.lock().unwrap();
    }

    #[test]
    fn run_names_round_trip_and_reject_lookalikes() {
        for r in [
            RunName::Single,
            RunName::Refit,
            RunName::Member(12),
            RunName::Temperature(0.15),
            RunName::Final,
        ] {
            assert_eq!(RunName::parse(&r.dir_name()), Some(r));
        }
        for bad in [
            "refit.member-1",
            "member-",
            "member-1a",
            "temperature-x",
            "x.temperature-0.1",
        ] {
            assert_eq!(RunName::parse(bad), None, "{bad}");
        }
    }
}
