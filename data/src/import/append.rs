//! `data import --append-to`: a new log (a day's Parquet partition, a CSV export) added to an
//! existing dataset, which is rewritten whole and swapped in atomically, as import writes one.
//!
//! - **Dense ids are kept.** The dataset's users and items keep their positions in users.parquet
//!   and items.parquet; ids new to it are appended after them, in the order the new log (or its side
//!   files) first names them. A model trained on the dataset before the append therefore agrees with
//!   it on every old id, which is what `train --init-from` and `eval --by-id` rely on.
//! - **Dedup** applies to the old and new rows together, as it would to an import of the
//!   concatenated log (`latest` keeps the newer row of a pair, `earliest` the older, `keep-all`
//!   both). **`--min-rating`** applies to the appended rows. **Minimum counts** are not applied: a
//!   user or item new today has few interactions by definition, and a daily job must learn it.
//! - **Side files** (`--items`, `--users`) add their rows for ids the dataset does not have yet;
//!   rows for ids it has are left as they are (counted in the report). Their columns must be ones
//!   the dataset has.
//! - **A split is dropped**: train.parquet and test.parquet describe the old log; run `data split`
//!   again (`--test-from last-append` holds out exactly the appended time range).
//! - **The manifest records each append** (`extra.appends`: path, rows read and added, new users
//!   and items, time range) beside the original import.
//!
//! Cost: the new log is parsed and cleaned, the old rows are read back from the canonical Parquet
//! (not re-imported from the raw log), and the dataset is written once, sequentially.

use std::path::Path;

use serde::Serialize;

use super::clean;
use super::{side, ImportFormat, ImportOptions, Parsed, SourceStamps};
use crate::artifact::{Manifest, StagingDir};
use crate::dataset::{Dataset, DATASET_FORMAT_VERSION, DATASET_KIND};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::progress::Progress;
use crate::schema::{
    read_items, read_users, write_interactions, write_items, write_users, ItemRows, UserRows,
    INTERACTIONS_FILE, ITEMS_FILE, USERS_FILE,
};
use crate::vocab::Vocabulary;

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendReport {
    /// Rows read from the new log.
    pub rows_read: u64,
    /// Rows of the new log in the dataset after the append.
    pub rows_added: u64,
    /// Rows dropped by dedup (new rows, or old rows a newer one replaced).
    pub duplicates: u64,
    /// New rows below `--min-rating`.
    pub below_min_rating: u64,
    /// Users the dataset did not have before.
    pub new_users: u64,
    /// Items the dataset did not have before.
    pub new_items: u64,
    /// Side-file rows for ids the dataset already had (left as they were).
    pub side_rows_kept_as_they_were: u64,
    /// Interactions in the dataset after the append.
    pub interactions: u64,
    /// Earliest and latest time of the rows added (epoch seconds).
    pub time_range: Option<(i64, i64)>,
    /// The dataset had a split, which the append dropped.
    pub split_dropped: bool,
}

/// Appends the log `src` (read as `opts` says, as `import` reads one) to the dataset at `dataset`.
/// On any error the dataset is left as it was; a process killed at any point leaves it intact (and
/// staging debris the next writer removes).
pub fn append(
    src: &Path,
    dataset: &Path,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<AppendReport> {
    if matches!(
        opts.format,
        ImportFormat::Movielens100k | ImportFormat::Movielens1m
    ) {
        return Err(Error::InvalidArgument(
            "--append-to takes a csv, tsv, json or parquet log: a MovieLens folder is a whole \
             dataset (import it with --out)"
                .into(),
        ));
    }
    if opts.min_user_interactions > 1 || opts.min_item_interactions > 1 {
        return Err(Error::InvalidArgument(
            "--min-user-interactions and --min-item-interactions apply at import only: an append \
             keeps every new user and item (leave them out)"
                .into(),
        ));
    }
    if opts.min_rating.is_some_and(|m| !m.is_finite()) {
        return Err(Error::InvalidArgument("--min-rating must be a number".into()));
    }
    if !src.exists() {
        return Err(Error::io(
            src,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    progress.start("loading dataset", None);
    let ds = Dataset::load(dataset)?;
    progress.finish();
    let stamps = SourceStamps::take(src, [opts.items.as_deref(), opts.users.as_deref()])?;
    let stage = StagingDir::new(dataset)?;

    let mut item_rows = read_items(&dataset.join(ITEMS_FILE), "item")?;
    let mut user_rows = read_users(&dataset.join(USERS_FILE), "user")?;
    let (old_users, old_items) = (ds.users.len(), ds.items.len());
    let mut users = ds.users.clone();
    let mut items = ds.items.clone();
    let mut side_kept = 0u64;
    // Side rows first (cold items exist in the catalogue before anyone touches them), then the log.
    let side_items = opts
        .items
        .as_ref()
        .map(|p| side::read_item_side(p, &opts.columns.item, opts.encoding).map(|r| (p.clone(), r)))
        .transpose()?;
    let side_users = opts
        .users
        .as_ref()
        .map(|p| side::read_user_side(p, &opts.columns.user, opts.encoding).map(|r| (p.clone(), r)))
        .transpose()?;
    // Ids of the dataset that its side tables lack (seen only in interactions) get bare rows, so
    // row k of each table is dense id k from here on.
    for k in item_rows.ids.len()..items.len() {
        item_rows.push_bare(items.id(k as u32));
    }
    for k in user_rows.ids.len()..users.len() {
        user_rows.push_bare(users.id(k as u32));
    }
    if let Some((p, side)) = side_items {
        side_kept += merge_items(&mut item_rows, &mut items, side, &p)?;
    }
    if let Some((p, side)) = side_users {
        side_kept += merge_users(&mut user_rows, &mut users, side, &p)?;
    }
    let seeded = Parsed {
        users,
        items,
        x: Interactions::default(),
        item_rows: None,
        user_rows: None,
        time_source: Vec::new(),
    };
    let parsed = match super::parse_with(src, opts, seeded, progress) {
        Ok(p) => p,
        Err(e) => {
            stamps.check()?;
            return Err(e);
        }
    };
    stamps.check()?;
    let Parsed {
        users,
        items,
        x: mut new,
        time_source,
        ..
    } = parsed;
    if new.is_empty() {
        return Err(Error::Empty {
            file: src.to_path_buf(),
            what: "no interactions in the input".into(),
        });
    }
    // Without a time column a row's time is its position: the new log continues after the old.
    if opts.columns.time.is_none() {
        let after = ds.interactions.ts.iter().copied().max().map_or(0, |t| t + 1);
        for t in &mut new.ts {
            *t += after;
        }
    }

    progress.start("merging", Some((ds.interactions.len() + new.len()) as u64));
    let n_old = ds.interactions.len();
    let rows_read = new.len() as u64;
    let mut all = ds.interactions;
    all.user.extend_from_slice(&new.user);
    all.item.extend_from_slice(&new.item);
    all.weight.extend_from_slice(&new.weight);
    all.ts.extend_from_slice(&new.ts);
    drop(new);
    let (mut keep, cleaned) = clean::clean(&all, users.len(), items.len(), opts.dedup, None, 0, 0);
    let mut below = 0u64;
    if let Some(m) = opts.min_rating {
        let before = keep.len();
        keep.retain(|&r| r < n_old || all.weight[r] >= m);
        below = (before - keep.len()) as u64;
    }
    let added: Vec<usize> = keep.iter().copied().filter(|&r| r >= n_old).collect();
    let time_range = added
        .iter()
        .map(|&r| all.ts[r])
        .fold(None, |acc: Option<(i64, i64)>, t| {
            Some(acc.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
        });
    {
        use rayon::prelude::*;
        keep.par_sort_unstable_by_key(|&r| (all.user[r], all.ts[r], all.item[r], r));
    }
    let x = all.select(&keep);
    drop(all);
    progress.inc(x.len() as u64);
    progress.finish();

    // Rows for ids new to the dataset that interacted (one dropped by dedup or the rating gets none,
    // as in an import).
    let user_counts = x.user_counts(users.len());
    let item_counts = x.item_counts(items.len());
    push_interacting(&item_counts, item_rows.ids.len(), &items, |id| {
        item_rows.push_bare(id)
    });
    push_interacting(&user_counts, user_rows.ids.len(), &users, |id| {
        user_rows.push_bare(id)
    });
    let new_items = (item_rows.ids.len() - old_items) as u64;
    let new_users = (user_rows.ids.len() - old_users) as u64;

    progress.start("writing dataset", Some(x.len() as u64));
    let dir = stage.path();
    write_interactions(&dir.join(INTERACTIONS_FILE), &users, &items, &x)?;
    write_items(&dir.join(ITEMS_FILE), &item_rows)?;
    write_users(&dir.join(USERS_FILE), &user_rows)?;
    progress.inc(x.len() as u64);

    let interacting_users = user_counts.iter().filter(|&&c| c > 0).count() as u64;
    let interacting_items = item_counts.iter().filter(|&&c| c > 0).count() as u64;
    let report = AppendReport {
        rows_read,
        rows_added: added.len() as u64,
        duplicates: cleaned.duplicates,
        below_min_rating: below,
        new_users,
        new_items,
        side_rows_kept_as_they_were: side_kept,
        interactions: x.len() as u64,
        time_range,
        split_dropped: ds.train.is_some(),
    };
    let mut m = Manifest::new(DATASET_KIND, DATASET_FORMAT_VERSION);
    for f in [INTERACTIONS_FILE, ITEMS_FILE, USERS_FILE] {
        m.add_file(dir, f)?;
    }
    m.counts.insert("interactions".into(), report.interactions);
    m.counts.insert("users".into(), user_rows.ids.len() as u64);
    m.counts.insert("items".into(), item_rows.ids.len() as u64);
    m.counts.insert("interacting_users".into(), interacting_users);
    m.counts.insert("interacting_items".into(), interacting_items);
    m.counts.insert("user_rows".into(), user_rows.ids.len() as u64);
    m.counts.insert("item_rows".into(), item_rows.ids.len() as u64);
    let mut extra = ds.manifest.extra.clone();
    if let serde_json::Value::Object(o) = &mut extra {
        o.remove("split");
        let entry = serde_json::json!({
            "path": src.display().to_string(),
            "format": opts.format,
            "import": opts,
            "report": report,
            "time_source": time_source,
            "appended_at": m.created_at,
        });
        match o.get_mut("appends").and_then(|a| a.as_array_mut()) {
            Some(a) => a.push(entry),
            None => {
                o.insert("appends".into(), serde_json::json!([entry]));
            }
        }
    }
    m.extra = extra;
    m.write(dir)?;
    stage.commit()?;
    progress.finish();
    Ok(report)
}

/// The earliest time of the newest append recorded in a dataset's manifest: where `data split
/// --test-from last-append` cuts.
pub fn last_append_start(dataset: &Path) -> Result<i64> {
    let m = Manifest::read(dataset, DATASET_KIND, DATASET_FORMAT_VERSION)?;
    m.extra
        .get("appends")
        .and_then(|a| a.as_array())
        .and_then(|a| a.last())
        .and_then(|e| e.pointer("/report/time_range/0"))
        .and_then(|t| t.as_i64())
        .ok_or_else(|| {
            Error::invalid(
                dataset,
                "records no append with rows (import a log with --append-to first, or give \
                 --test-from a time)",
            )
        })
}

/// Pushes a bare row for every id at or after `from` that has interactions.
fn push_interacting(counts: &[u32], from: usize, vocab: &Vocabulary, mut push: impl FnMut(&str)) {
    for (k, &c) in counts.iter().enumerate().skip(from) {
        if c > 0 {
            push(vocab.id(k as u32));
        }
    }
}

/// The column names of `side` must be the dataset's (`have`); a column it lacks is refused, since
/// the dataset's tables and every model trained on them have a fixed set of features.
fn check_columns(have: &[String], side: &[String], file: &Path) -> Result<()> {
    if let Some(extra) = side.iter().find(|c| !have.contains(c)) {
        return Err(Error::invalid(
            file,
            format!(
                "column {extra:?} is not a feature of the dataset (its columns: {}); an append \
                 cannot add a feature: import the whole log again",
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ),
        ));
    }
    Ok(())
}

/// Adds `side`'s rows for ids `rows` lacks (inserting them into `vocab`); returns how many rows
/// named an id it already had.
fn merge_items(rows: &mut ItemRows, vocab: &mut Vocabulary, side: ItemRows, file: &Path) -> Result<u64> {
    let have: Vec<String> = rows.categorical.iter().map(|(n, _)| n.clone()).collect();
    let names: Vec<String> = side.categorical.iter().map(|(n, _)| n.clone()).collect();
    check_columns(&have, &names, file)?;
    let mut kept = 0;
    for (r, id) in side.ids.iter().enumerate() {
        if vocab.get(id).is_some() {
            kept += 1;
            continue;
        }
        vocab.insert(id);
        rows.ids.push(id.clone());
        rows.titles.push(side.titles[r].clone());
        rows.genres.push(side.genres[r].clone());
        for (name, col) in &mut rows.categorical {
            let v = side
                .categorical
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, c)| c[r].clone());
            col.push(v);
        }
    }
    Ok(kept)
}

/// [`merge_items`] for user rows.
fn merge_users(rows: &mut UserRows, vocab: &mut Vocabulary, side: UserRows, file: &Path) -> Result<u64> {
    let have: Vec<String> = rows.categorical.iter().map(|(n, _)| n.clone()).collect();
    let names: Vec<String> = side.categorical.iter().map(|(n, _)| n.clone()).collect();
    check_columns(&have, &names, file)?;
    let mut kept = 0;
    for (r, id) in side.ids.iter().enumerate() {
        if vocab.get(id).is_some() {
            kept += 1;
            continue;
        }
        vocab.insert(id);
        rows.ids.push(id.clone());
        for (name, col) in &mut rows.categorical {
            let v = side
                .categorical
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, c)| c[r].clone());
            col.push(v);
        }
    }
    Ok(kept)
}
