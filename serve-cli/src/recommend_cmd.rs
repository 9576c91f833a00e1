//! `twotower recommend`: the offline batch job. Top-k for every user (or those listed in a file),
//! computed in batched blocks on one consistent snapshot of model and index, streamed to Parquet or
//! JSON lines.

use crate::engine_args::EngineArgs;
use crate::rec_writer::{RecWriter, UserRecs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use twotower_cli::recommender::{check_id, QueryOpts, Source};
use twotower_data::progress::Progress;

/// Arguments of `recommend`.
#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// A file of user ids, one per line (`#` starts a comment; a UTF-8 BOM and a header line such as
    /// `user_id` are skipped). Users unknown to the dataset get the popularity fallback and are
    /// counted in the summary.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub users: Option<PathBuf>,
    /// Every user of the dataset.
    #[arg(long)]
    pub all: bool,
    /// Items per user.
    #[arg(long, short, default_value_t = 10)]
    pub k: usize,
    /// HNSW search breadth.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Rank with the exact index (slower, no approximation).
    #[arg(long)]
    pub exact: bool,
    /// Keep items the user already interacted with in training (excluded by default).
    #[arg(long)]
    pub include_seen: bool,
    /// Output file: `.parquet` or `.jsonl` (rows: user, rank, item, score).
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Users per parallel block (one Parquet record batch each).
const BLOCK: usize = 2048;

/// Runs the batch job and prints a one-line summary.
pub fn run(a: RecommendArgs, progress: &dyn Progress) -> Result<()> {
    if a.k == 0 || a.k > 10_000 {
        bail!("--k must be between 1 and 10000, not {}", a.k);
    }
    let engine = a.engine.open()?;
    let state = engine.snapshot();
    let users: Vec<String> = if a.all {
        state.catalog.data().users.ids().to_vec()
    } else {
        let path = a.users.as_ref().expect("clap requires --users or --all");
        let known = |id: &str| state.catalog.data().users.get(id).is_some();
        let list = read_user_list(path, known)?;
        if let Some(h) = &list.header {
            eprintln!("{}: skipped the header line {h:?}", path.display());
        }
        list.users
    };
    let opts = QueryOpts {
        k: a.k,
        ef: a.ef,
        exact: a.exact,
        exclude_seen: !a.include_seen,
        genre: None,
        fallback: true,
        limits: Default::default(),
    };
    let started = Instant::now();
    let mut writer = RecWriter::create(&a.out)?;
    progress.start("recommend", Some(users.len() as u64));
    let mut fallback = 0usize;
    state.recommend_users_in_blocks(&users, &opts, BLOCK, |block, answers| -> Result<()> {
        fallback += answers
            .iter()
            .filter(|ans| ans.source == Source::Popularity)
            .count();
        let recs: Vec<UserRecs<'_>> = block
            .iter()
            .zip(&answers)
            .map(|(u, ans)| UserRecs {
                user: u,
                items: ans.results.iter().map(|r| (r.item.as_str(), r.score)).collect(),
            })
            .collect();
        writer.write(&recs)?;
        progress.inc(block.len() as u64);
        Ok(())
    })?;
    progress.finish();
    let rows = writer.finish()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {rows} rows for {} users to {} in {secs:.2} s ({:.0} users/s){}",
        users.len(),
        a.out.display(),
        users.len() as f64 / secs.max(1e-9),
        if fallback > 0 {
            format!("; {fallback} unknown user(s) got the popularity fallback")
        } else {
            String::new()
        }
    );
    // The process ends next: the OS frees the catalogue at once, where dropping it frees millions
    // of small allocations one by one (most of a second at 1 M items).
    std::mem::forget(state);
    std::mem::forget(engine);
    Ok(())
}

/// The ids of a `--users` file, and the header line it started with, if any.
struct UserList {
    users: Vec<String>,
    header: Option<String>,
}

/// Header words a first line may hold instead of a user id.
const HEADERS: &[&str] = &["user", "user_id", "userid", "id", "users"];

/// Reads one id per line: a UTF-8 BOM is stripped, `#` starts a comment, blank lines are skipped, a
/// first line that no user has and that looks like a header is skipped, and an id with a control
/// character (a tab: a second column?) is an error naming the line.
fn read_user_list(path: &std::path::Path, known: impl Fn(&str) -> bool) -> Result<UserList> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
    let mut users = Vec::new();
    let mut header = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        let id = line.trim_matches(|c| c == ' ' || c == '\r');
        if id.trim().is_empty() {
            continue;
        }
        if users.is_empty()
            && header.is_none()
            && !known(id)
            && HEADERS.contains(&id.to_ascii_lowercase().as_str())
        {
            header = Some(id.to_string());
            continue;
        }
        check_id("user", id).with_context(|| format!("{}: line {}", path.display(), n + 1))?;
        users.push(id.to_string());
    }
    if users.is_empty() {
        bail!("{}: no user ids (one per line expected)", path.display());
    }
    Ok(UserList { users, header })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_list_skips_bom_header_and_rejects_tabs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users.txt");
        std::fs::write(&p, b"\xEF\xBB\xBFuser_id\r\nu1\r\n# c\n\nu2 # note\n").unwrap();
        let l = read_user_list(&p, |id| id.starts_with('u') && id != "user_id").unwrap();
        assert_eq!(l.users, vec!["u1", "u2"]);
        assert_eq!(l.header.as_deref(), Some("user_id"));
        // A real user called `id` is kept.
        std::fs::write(&p, "id\nu1\n").unwrap();
        let l = read_user_list(&p, |_| true).unwrap();
        assert_eq!(l.users, vec!["id", "u1"]);
        std::fs::write(&p, "u1\tu2\n").unwrap();
        let e = format!("{:#}", read_user_list(&p, |_| true).err().unwrap());
        assert!(e.contains("line 1") && e.contains("control character"), "{e}");
    }
}
