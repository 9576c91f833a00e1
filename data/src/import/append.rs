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
//! Cost: with `--dedup keep-all` and a time column (a log of events, the usual daily partition) no
//! old row can go or move, so only the new rows are written, as the dataset's next part
//! (`interactions-NNNN.parquet`), beside its old parts (hard-linked, their checksums carried over);
//! users.parquet and items.parquet are rewritten when ids were added. The cost follows the new rows
//! and the size of those two tables, not the log. With `latest` or `earliest` (an old row may be
//! replaced) or without a time column, the old rows are read back from the dataset's Parquet (not
//! re-imported from the raw log) and the dataset is written whole, as one part.

use std::path::Path;

use serde::Serialize;

use super::clean::{self, Dedup};
use super::{side, ImportFormat, ImportOptions, Parsed, SourceStamps};
use crate::artifact::{Manifest, StagingDir};
use crate::dataset::{Dataset, DATASET_FORMAT_VERSION, DATASET_KIND};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::progress::Progress;
use crate::schema::{
    interaction_part_name, interaction_parts, read_items, read_users, write_interactions, write_items,
    write_users, ItemRows, UserRows, INTERACTIONS_FILE, ITEMS_FILE, TRAIN_FILE, USERS_FILE,
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
    // Only the new rows are written when no old row can go or move: every repeat is kept and
    // times come from the log. Otherwise the dataset is read back and written whole.
    let lean = opts.dedup == Dedup::KeepAll && opts.columns.time.is_some();
    progress.start("loading dataset", None);
    let base = Base::load(dataset, lean)?;
    progress.finish();
    let stamps = SourceStamps::take(src, [opts.items.as_deref(), opts.users.as_deref()])?;
    let stage = StagingDir::new(dataset)?;
    let Base {
        manifest: old_manifest,
        mut item_rows,
        mut user_rows,
        users,
        items,
        log: old_log,
        had_split,
    } = base;
    let (old_users, old_items) = (users.len(), items.len());
    let (mut users, mut items) = (users, items);
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
    let rows_read = new.len() as u64;

    progress.start("merging", Some(rows_read));
    let merged = match old_log {
        None => Merged::new_rows_only(new, opts),
        Some(old) => {
            // Without a time column a row's time is its position: the new log continues after the old.
            if opts.columns.time.is_none() {
                let after = old.ts.iter().copied().max().map_or(0, |t| t + 1);
                for t in &mut new.ts {
                    *t += after;
                }
            }
            Merged::whole(old, new, opts, users.len(), items.len())
        }
    };
    progress.inc(rows_read);
    progress.finish();

    // Rows for ids new to the dataset that interacted (one dropped by dedup or the rating gets none,
    // as in an import).
    let user_counts = merged.x.user_counts(users.len());
    let item_counts = merged.x.item_counts(items.len());
    push_interacting(&item_counts, item_rows.ids.len(), &items, |id| {
        item_rows.push_bare(id)
    });
    push_interacting(&user_counts, user_rows.ids.len(), &users, |id| {
        user_rows.push_bare(id)
    });
    let new_items = (item_rows.ids.len() - old_items) as u64;
    let new_users = (user_rows.ids.len() - old_users) as u64;
    let tables_grew = item_rows.ids.len() > old_items || user_rows.ids.len() > old_users;

    progress.start("writing dataset", Some(merged.x.len() as u64));
    let dir = stage.path();
    let mut m = Manifest::new(DATASET_KIND, DATASET_FORMAT_VERSION);
    let interactions = if merged.whole {
        write_interactions(&dir.join(INTERACTIONS_FILE), &users, &items, &merged.x)?;
        m.add_file(dir, INTERACTIONS_FILE)?;
        merged.x.len() as u64
    } else {
        // The old parts are linked as they are (their checksums carried over), the new rows become
        // the next part.
        let parts = interaction_parts(old_manifest.files.keys());
        for f in &parts {
            carry_over(dataset, dir, f, &old_manifest, &mut m)?;
        }
        let name = interaction_part_name(parts.len());
        write_interactions(&dir.join(&name), &users, &items, &merged.x)?;
        m.add_file(dir, &name)?;
        old_manifest.counts.get("interactions").copied().unwrap_or(0) + merged.x.len() as u64
    };
    if merged.whole || tables_grew {
        write_items(&dir.join(ITEMS_FILE), &item_rows)?;
        write_users(&dir.join(USERS_FILE), &user_rows)?;
        m.add_file(dir, ITEMS_FILE)?;
        m.add_file(dir, USERS_FILE)?;
    } else {
        for f in [ITEMS_FILE, USERS_FILE] {
            carry_over(dataset, dir, f, &old_manifest, &mut m)?;
        }
    }
    progress.inc(merged.x.len() as u64);

    let report = AppendReport {
        rows_read,
        rows_added: merged.added as u64,
        duplicates: merged.duplicates,
        below_min_rating: merged.below_min_rating,
        new_users,
        new_items,
        side_rows_kept_as_they_were: side_kept,
        interactions,
        time_range: merged.time_range,
        split_dropped: had_split,
    };
    m.counts.insert("interactions".into(), report.interactions);
    m.counts.insert("users".into(), user_rows.ids.len() as u64);
    m.counts.insert("items".into(), item_rows.ids.len() as u64);
    m.counts.insert("user_rows".into(), user_rows.ids.len() as u64);
    m.counts.insert("item_rows".into(), item_rows.ids.len() as u64);
    let interacting = |key: &str, counts: &[u32], old_n: usize| -> Option<u64> {
        let now = counts.iter().filter(|&&c| c > 0).count() as u64;
        if merged.whole {
            return Some(now);
        }
        // Only the new rows were counted: exact when the old dataset had no id without
        // interactions (then every old id is interacting, and the new rows add only new ids).
        let before = *old_manifest.counts.get(&format!("interacting_{key}"))?;
        let total = *old_manifest.counts.get(key)?;
        (before == total).then(|| before + counts[old_n..].iter().filter(|&&c| c > 0).count() as u64)
    };
    if let Some(n) = interacting("users", &user_counts, old_users) {
        m.counts.insert("interacting_users".into(), n);
    }
    if let Some(n) = interacting("items", &item_counts, old_items) {
        m.counts.insert("interacting_items".into(), n);
    }
    let mut extra = old_manifest.extra.clone();
    if let serde_json::Value::Object(o) = &mut extra {
        o.remove("split");
        let entry = serde_json::json!({
            "path": src.display().to_string(),
            "format": opts.format,
            "import": opts,
            "report": report,
            "rewritten": merged.whole,
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
    crate::dataset::write_serving(dataset)?;
    progress.finish();
    Ok(report)
}

/// What an append starts from.
struct Base {
    manifest: Manifest,
    /// `items.parquet`, padded with bare rows to the vocabulary: row k is dense id k.
    item_rows: ItemRows,
    /// `users.parquet`, padded the same way.
    user_rows: UserRows,
    users: Vocabulary,
    items: Vocabulary,
    /// Every old interaction when the dataset is rewritten; None when only the new rows are written.
    log: Option<Interactions>,
    had_split: bool,
}

impl Base {
    /// With `lean`, only the two tables are read (and their checksums verified): the interactions
    /// stay on disk. Falls back to reading everything when the tables do not list every id.
    fn load(dataset: &Path, lean: bool) -> Result<Base> {
        let manifest = Manifest::read(dataset, DATASET_KIND, DATASET_FORMAT_VERSION)?;
        let had_split = manifest.files.contains_key(TRAIN_FILE);
        if lean {
            let mut tables = manifest.clone();
            tables.files.retain(|f, _| f == ITEMS_FILE || f == USERS_FILE);
            if tables.files.len() == 2 {
                tables.verify(dataset)?;
                let item_rows = read_items(&dataset.join(ITEMS_FILE), "item")?;
                let user_rows = read_users(&dataset.join(USERS_FILE), "user")?;
                let listed = |key: &str, n: usize| manifest.counts.get(key) == Some(&(n as u64));
                if listed("items", item_rows.ids.len()) && listed("users", user_rows.ids.len()) {
                    return Ok(Base {
                        items: Vocabulary::from_ids(&item_rows.ids),
                        users: Vocabulary::from_ids(&user_rows.ids),
                        item_rows,
                        user_rows,
                        manifest,
                        log: None,
                        had_split,
                    });
                }
            }
        }
        let ds = Dataset::load(dataset)?;
        let mut item_rows = read_items(&dataset.join(ITEMS_FILE), "item")?;
        let mut user_rows = read_users(&dataset.join(USERS_FILE), "user")?;
        // Ids of the dataset that its tables lack (seen only in interactions) get bare rows.
        for k in item_rows.ids.len()..ds.items.len() {
            item_rows.push_bare(ds.items.id(k as u32));
        }
        for k in user_rows.ids.len()..ds.users.len() {
            user_rows.push_bare(ds.users.id(k as u32));
        }
        Ok(Base {
            manifest: ds.manifest,
            item_rows,
            user_rows,
            users: ds.users,
            items: ds.items,
            log: Some(ds.interactions),
            had_split,
        })
    }
}

/// The interactions an append writes and what cleaning did.
struct Merged {
    /// The rows to write: the new ones only, or the whole log.
    x: Interactions,
    /// `x` is the whole log (the dataset is rewritten).
    whole: bool,
    added: usize,
    duplicates: u64,
    below_min_rating: u64,
    time_range: Option<(i64, i64)>,
}

impl Merged {
    /// Keep-all: the new rows, rating-filtered and in canonical order; no old row changes.
    fn new_rows_only(new: Interactions, opts: &ImportOptions) -> Merged {
        let mut keep: Vec<usize> = (0..new.len()).collect();
        let mut below = 0;
        if let Some(m) = opts.min_rating {
            keep.retain(|&r| new.weight[r] >= m);
            below = (new.len() - keep.len()) as u64;
        }
        keep.sort_unstable_by_key(|&r| (new.user[r], new.ts[r], new.item[r], r));
        let x = new.select(&keep);
        Merged {
            time_range: time_range(&x.ts),
            added: x.len(),
            x,
            whole: false,
            duplicates: 0,
            below_min_rating: below,
        }
    }

    /// Old and new rows deduplicated together, as an import of the concatenated log would.
    fn whole(
        old: Interactions,
        new: Interactions,
        opts: &ImportOptions,
        n_users: usize,
        n_items: usize,
    ) -> Merged {
        let n_old = old.len();
        let mut all = old;
        all.extend(&new);
        drop(new);
        let (mut keep, cleaned) = clean::clean(&all, n_users, n_items, opts.dedup, None, 0, 0);
        let mut below = 0u64;
        if let Some(m) = opts.min_rating {
            let before = keep.len();
            keep.retain(|&r| r < n_old || all.weight[r] >= m);
            below = (before - keep.len()) as u64;
        }
        let added: Vec<i64> = keep.iter().filter(|&&r| r >= n_old).map(|&r| all.ts[r]).collect();
        {
            use rayon::prelude::*;
            keep.par_sort_unstable_by_key(|&r| (all.user[r], all.ts[r], all.item[r], r));
        }
        Merged {
            x: all.select(&keep),
            whole: true,
            added: added.len(),
            duplicates: cleaned.duplicates,
            below_min_rating: below,
            time_range: time_range(&added),
        }
    }
}

fn time_range(ts: &[i64]) -> Option<(i64, i64)> {
    Some((*ts.iter().min()?, *ts.iter().max()?))
}

/// Puts the dataset's file `name` into the staging directory (a hard link: files of a dataset are
/// never modified in place; a copy where links fail) and its manifest entry, checksum included, into
/// `m`. A file the old manifest does not list is an error naming it, not a guess.
fn carry_over(dataset: &Path, stage: &Path, name: &str, old: &Manifest, m: &mut Manifest) -> Result<()> {
    let entry = old.files.get(name).ok_or_else(|| Error::FileMissing {
        file: dataset.join(name),
    })?;
    let (from, to) = (dataset.join(name), stage.join(name));
    if std::fs::hard_link(&from, &to).is_err() {
        std::fs::copy(&from, &to).map_err(|e| Error::io(&to, e))?;
    }
    m.files.insert(name.to_string(), entry.clone());
    Ok(())
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
    let fresh = fresh_rows(&side.ids, vocab, &rows.categorical, &side.categorical, file)?;
    for &r in &fresh {
        rows.ids.push(side.ids[r].clone());
        rows.titles.push(side.titles[r].clone());
        rows.genres.push(side.genres[r].clone());
    }
    push_categorical(&mut rows.categorical, &side.categorical, &fresh);
    Ok((side.ids.len() - fresh.len()) as u64)
}

/// [`merge_items`] for user rows.
fn merge_users(rows: &mut UserRows, vocab: &mut Vocabulary, side: UserRows, file: &Path) -> Result<u64> {
    let fresh = fresh_rows(&side.ids, vocab, &rows.categorical, &side.categorical, file)?;
    for &r in &fresh {
        rows.ids.push(side.ids[r].clone());
    }
    push_categorical(&mut rows.categorical, &side.categorical, &fresh);
    Ok((side.ids.len() - fresh.len()) as u64)
}

type Columns = [(String, Vec<Option<String>>)];

/// The side rows whose ids `vocab` lacks (inserted into it, in side order), once the side file's
/// columns are checked against the dataset's.
fn fresh_rows(
    ids: &[String],
    vocab: &mut Vocabulary,
    have: &Columns,
    side: &Columns,
    file: &Path,
) -> Result<Vec<usize>> {
    let have: Vec<String> = have.iter().map(|(n, _)| n.clone()).collect();
    let names: Vec<String> = side.iter().map(|(n, _)| n.clone()).collect();
    check_columns(&have, &names, file)?;
    let mut fresh = Vec::new();
    for (r, id) in ids.iter().enumerate() {
        if vocab.get(id).is_none() {
            vocab.insert(id);
            fresh.push(r);
        }
    }
    Ok(fresh)
}

/// Appends side rows `rows` to each of the dataset's categorical columns (missing in the side file:
/// no value).
fn push_categorical(cols: &mut Columns, side: &Columns, rows: &[usize]) {
    for (name, col) in cols.iter_mut() {
        let from = side.iter().find(|(n, _)| n == name).map(|(_, c)| c);
        col.extend(rows.iter().map(|&r| from.and_then(|c| c[r].clone())));
    }
}
