//! `data import`: raw interaction logs (MovieLens, CSV/TSV, JSON, Parquet) into a canonical dataset
//! directory. Every format parses into the same [`Parsed`] form; cleaning and writing are shared, and
//! the output appears only when complete (written in a [`StagingDir`], swapped in at the end).

mod append;
mod clean;
mod delimited;
mod json;
mod movielens;
mod parquet_log;
mod parts;
mod side;
pub(crate) mod text;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use append::{append, last_append_start, AppendReport};
pub use clean::{CleanStats, Dedup};
pub use text::{format_epoch_seconds, TextEncoding, TimeUnit};

use crate::artifact::{Manifest, StagingDir};
use crate::dataset::{DATASET_FORMAT_VERSION, DATASET_KIND};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::progress::Progress;
use crate::schema::{
    write_interactions, write_items, write_users, ItemRows, UserRows, INTERACTIONS_FILE, ITEMS_FILE,
    USERS_FILE,
};
use crate::vocab::Vocabulary;

/// Parses a time given on the command line (`--test-from`, `--train-from`): epoch seconds or a
/// date-time like `2001-02-03` or `2001-02-03T04:05:06Z` (UTC when no offset is given), as epoch
/// seconds. The error starts with the value shown.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    text::time_str(s.trim(), TimeUnit::S)
}

/// Input formats `data import` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportFormat {
    /// The MovieLens 100K folder (u.data, u.item, u.user).
    Movielens100k,
    /// The MovieLens 1M folder (ratings.dat, movies.dat, users.dat).
    Movielens1m,
    /// Comma-separated with a header row.
    Csv,
    /// Tab-separated with a header row.
    Tsv,
    /// A nested `{"user": {"item": rating, ...}, ...}` object.
    Json,
    /// A Parquet file with user/item (and optional weight/time) columns.
    Parquet,
}

impl std::str::FromStr for ImportFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "movielens-100k" | "ml-100k" => ImportFormat::Movielens100k,
            "movielens-1m" | "ml-1m" => ImportFormat::Movielens1m,
            "csv" => ImportFormat::Csv,
            "tsv" => ImportFormat::Tsv,
            "json" => ImportFormat::Json,
            "parquet" => ImportFormat::Parquet,
            _ => {
                return Err(format!(
                    "unknown format {s:?} (expected movielens-100k, movielens-1m, csv, tsv, json, parquet)"
                ))
            }
        })
    }
}

/// Which columns of a CSV/TSV/Parquet log hold what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnMap {
    /// User id column.
    pub user: String,
    /// Item id column.
    pub item: String,
    /// Weight/rating column; absent → every interaction weighs 1.0.
    pub weight: Option<String>,
    /// Time column (epoch seconds or date-time); absent → the record's position in the file.
    pub time: Option<String>,
}

impl Default for ColumnMap {
    fn default() -> Self {
        ColumnMap {
            user: "user".into(),
            item: "item".into(),
            weight: None,
            time: None,
        }
    }
}

/// Everything `data import` can be told.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportOptions {
    /// Input format.
    pub format: ImportFormat,
    /// Column names for csv/tsv/parquet logs.
    pub columns: ColumnMap,
    /// Item features: a CSV (header with the item column, optional `title`, `genres` as `A|B`, any
    /// further columns categorical) or another dataset's items.parquet.
    pub items: Option<PathBuf>,
    /// User features: a CSV (header with the user column, further columns categorical) or another
    /// dataset's users.parquet.
    pub users: Option<PathBuf>,
    /// Encoding of csv/tsv text.
    #[serde(skip)]
    pub encoding: TextEncoding,
    /// Unit of integer time values (csv/tsv/parquet); typed Parquet timestamps and dates carry their
    /// own. In seconds (the default), integers too large to be seconds are refused.
    pub time_unit: TimeUnit,
    /// Keep only interactions with weight ≥ this (applied after dedup).
    pub min_rating: Option<f32>,
    /// Drop users with fewer interactions (iterated with `min_item_interactions` until stable).
    pub min_user_interactions: u32,
    /// Drop items with fewer interactions (iterated with `min_user_interactions` until stable).
    pub min_item_interactions: u32,
    /// Policy for repeated (user, item) pairs.
    #[serde(serialize_with = "ser_dedup")]
    pub dedup: Dedup,
}

fn ser_dedup<S: serde::Serializer>(d: &Dedup, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(match d {
        Dedup::Latest => "latest",
        Dedup::Earliest => "earliest",
        Dedup::KeepAll => "keep-all",
    })
}

impl ImportOptions {
    /// Defaults for a format: canonical column names, keep-latest dedup, no filters.
    pub fn new(format: ImportFormat) -> ImportOptions {
        ImportOptions {
            format,
            columns: ColumnMap::default(),
            items: None,
            users: None,
            encoding: TextEncoding::Utf8,
            time_unit: TimeUnit::S,
            min_rating: None,
            min_user_interactions: 0,
            min_item_interactions: 0,
            dedup: Dedup::Latest,
        }
    }
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Interactions written.
    pub interactions: u64,
    /// Distinct users with at least one interaction.
    pub interacting_users: u64,
    /// Distinct items with at least one interaction.
    pub interacting_items: u64,
    /// Rows of users.parquet.
    pub user_rows: u64,
    /// Rows of items.parquet.
    pub item_rows: u64,
    /// Rows read from the source before cleaning.
    pub rows_read: u64,
    /// What cleaning removed.
    pub cleaned: CleanStats,
    /// Interacting items with no row in the item side table (no features).
    pub items_without_features: u64,
    /// Interacting users with no row in the user side table (no features).
    pub users_without_features: u64,
    /// Things the user should know: ids of the log missing from the side files, with counts and a
    /// few examples. Empty when all is well.
    pub warnings: Vec<String>,
}

/// A source parsed into dense form; the vocabularies are seeded with the side tables' ids (in their
/// order) so the written files and the loaded vocabularies agree on order.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub users: Vocabulary,
    pub items: Vocabulary,
    pub x: Interactions,
    pub item_rows: Option<ItemRows>,
    pub user_rows: Option<UserRows>,
    /// The time column's source types (e.g. "timestamp[ms, UTC]"), recorded in the manifest.
    pub time_source: Vec<String>,
}

impl Parsed {
    /// Starts from optional side tables, refusing duplicate ids in them.
    pub(crate) fn with_sides(
        item_rows: Option<(PathBuf, ItemRows)>,
        user_rows: Option<(PathBuf, UserRows)>,
    ) -> Result<Parsed> {
        let mut items = Vocabulary::new();
        let mut users = Vocabulary::new();
        if let Some((p, r)) = &item_rows {
            seed_unique(&mut items, &r.ids, p)?;
        }
        if let Some((p, r)) = &user_rows {
            seed_unique(&mut users, &r.ids, p)?;
        }
        Ok(Parsed {
            users,
            items,
            x: Interactions::default(),
            item_rows: item_rows.map(|x| x.1),
            user_rows: user_rows.map(|x| x.1),
            time_source: Vec::new(),
        })
    }
}

fn seed_unique(v: &mut Vocabulary, ids: &[String], file: &Path) -> Result<()> {
    for (r, id) in ids.iter().enumerate() {
        if v.get(id).is_some() {
            return Err(Error::invalid(
                file,
                format!("row {}: duplicate id {id:?}", r + 1),
            ));
        }
        v.insert(id);
    }
    Ok(())
}

/// Imports `src` (a file; a folder for MovieLens; a file, a folder of part files or a hive-partitioned
/// tree for Parquet) into the dataset directory `out`. On any error nothing is left at `out` (an
/// existing dataset there stays as it was). The staging directory is created first, so a process
/// killed at any point leaves only staging debris, which the next writer of `out` removes.
pub fn import(src: &Path, out: &Path, opts: &ImportOptions, progress: &dyn Progress) -> Result<ImportReport> {
    if opts.min_rating.is_some_and(|m| !m.is_finite()) {
        return Err(Error::InvalidArgument("--min-rating must be a number".into()));
    }
    crate::dataset::check_replaceable(out)?;
    if !src.exists() {
        return Err(Error::io(
            src,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    // Before anything is read (and before the staging directory appears): a source that changes
    // while it is read (a log still being written, rotated or truncated) is refused at the end.
    let stamps = SourceStamps::take(src, [opts.items.as_deref(), opts.users.as_deref()])?;
    let stage = StagingDir::new(out)?;
    // A source cut while it was read may also fail to parse (a last line cut short): the change,
    // not the symptom, is reported.
    let parse = || -> Result<Parsed> {
        Ok(match opts.format {
            ImportFormat::Movielens100k => movielens::parse_100k(src, progress)?,
            ImportFormat::Movielens1m => movielens::parse_1m(src, progress)?,
            _ => {
                let items = opts
                    .items
                    .as_ref()
                    .map(|p| {
                        side::read_item_side(p, &opts.columns.item, opts.encoding).map(|r| (p.clone(), r))
                    })
                    .transpose()?;
                let users = opts
                    .users
                    .as_ref()
                    .map(|p| {
                        side::read_user_side(p, &opts.columns.user, opts.encoding).map(|r| (p.clone(), r))
                    })
                    .transpose()?;
                parse_with(src, opts, Parsed::with_sides(items, users)?, progress)?
            }
        })
    };
    let parsed = match parse() {
        Ok(p) => p,
        Err(e) => {
            stamps.check()?;
            return Err(e);
        }
    };
    stamps.check()?;
    if parsed.x.is_empty() {
        return Err(Error::Empty {
            file: src.to_path_buf(),
            what: "no interactions in the input".into(),
        });
    }
    let report = write_dataset(src, stage, opts, parsed, progress)?;
    crate::dataset::write_serving(out)?;
    Ok(report)
}

/// Parses a csv, tsv, json or parquet log into `p` (its vocabularies seeded with the ids that come
/// first: the side tables' on import, the dataset's on append).
pub(crate) fn parse_with(
    src: &Path,
    opts: &ImportOptions,
    p: Parsed,
    progress: &dyn Progress,
) -> Result<Parsed> {
    match opts.format {
        ImportFormat::Csv | ImportFormat::Tsv => {
            let delim = if opts.format == ImportFormat::Csv {
                b','
            } else {
                b'\t'
            };
            delimited::parse(
                src,
                delim,
                &opts.columns,
                opts.encoding,
                opts.time_unit,
                p,
                progress,
            )
        }
        ImportFormat::Json => json::parse(src, p, progress),
        ImportFormat::Parquet => parquet_log::parse(src, &opts.columns, opts.time_unit, p, progress),
        ImportFormat::Movielens100k | ImportFormat::Movielens1m => Err(Error::InvalidArgument(
            "a MovieLens folder is parsed whole, not into a seeded vocabulary".into(),
        )),
    }
}

fn write_dataset(
    src: &Path,
    stage: StagingDir,
    opts: &ImportOptions,
    parsed: Parsed,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let Parsed {
        users,
        items,
        x,
        item_rows,
        user_rows,
        time_source,
    } = parsed;
    progress.start("cleaning", Some(x.len() as u64));
    let (keep, cleaned) = clean::clean(
        &x,
        users.len(),
        items.len(),
        opts.dedup,
        opts.min_rating,
        opts.min_user_interactions,
        opts.min_item_interactions,
    );
    progress.inc(x.len() as u64);
    progress.finish();
    if keep.is_empty() {
        return Err(Error::Empty {
            file: src.to_path_buf(),
            what: format!(
                "all {} interactions were removed by the filters ({} duplicates, {} below --min-rating, {} by the minimum interaction counts)",
                x.len(), cleaned.duplicates, cleaned.below_min_rating, cleaned.min_count
            ),
        });
    }
    // Canonical row order: by user (vocabulary order), then time, then item.
    let mut keep = keep;
    {
        use rayon::prelude::*;
        keep.par_sort_unstable_by_key(|&r| (x.user[r], x.ts[r], x.item[r], r));
    }
    let rows_read = x.len() as u64;
    let x = x.select(&keep);
    let user_counts = x.user_counts(users.len());
    let item_counts = x.item_counts(items.len());
    let interacting_users = user_counts.iter().filter(|&&c| c > 0).count() as u64;
    let interacting_items = item_counts.iter().filter(|&&c| c > 0).count() as u64;

    let n_item_side = item_rows.as_ref().map_or(0, |r| r.ids.len());
    let n_user_side = user_rows.as_ref().map_or(0, |r| r.ids.len());
    let items_without_features = count_beyond(&item_counts, n_item_side);
    let users_without_features = count_beyond(&user_counts, n_user_side);
    let mut warnings = Vec::new();
    if item_rows.is_some() {
        warnings.extend(missing_warning("item", &item_counts, n_item_side, &items));
    }
    if user_rows.is_some() {
        warnings.extend(missing_warning("user", &user_counts, n_user_side, &users));
    }

    // Side tables are written whole (cold items are part of the catalog), followed by bare rows for
    // interacting ids they lack, so items.parquet/users.parquet list every id of the dataset.
    let mut item_rows = item_rows.unwrap_or_default();
    for (i, &c) in item_counts.iter().enumerate().skip(n_item_side) {
        if c > 0 {
            item_rows.push_bare(items.id(i as u32));
        }
    }
    let mut user_rows = user_rows.unwrap_or_default();
    for (u, &c) in user_counts.iter().enumerate().skip(n_user_side) {
        if c > 0 {
            user_rows.push_bare(users.id(u as u32));
        }
    }

    progress.start("writing dataset", Some(x.len() as u64));
    let dir = stage.path();
    write_interactions(&dir.join(INTERACTIONS_FILE), &users, &items, &x)?;
    write_items(&dir.join(ITEMS_FILE), &item_rows)?;
    write_users(&dir.join(USERS_FILE), &user_rows)?;
    progress.inc(x.len() as u64);

    let report = ImportReport {
        interactions: x.len() as u64,
        interacting_users,
        interacting_items,
        user_rows: user_rows.ids.len() as u64,
        item_rows: item_rows.ids.len() as u64,
        rows_read,
        cleaned,
        items_without_features,
        users_without_features,
        warnings,
    };
    let mut m = Manifest::new(DATASET_KIND, DATASET_FORMAT_VERSION);
    for f in [INTERACTIONS_FILE, ITEMS_FILE, USERS_FILE] {
        m.add_file(dir, f)?;
    }
    // users/items: the sizes of the vocabularies `Dataset::load` builds (side tables ∪ interacting).
    let n_users = n_user_side as u64 + count_beyond(&user_counts, n_user_side);
    let n_items = n_item_side as u64 + count_beyond(&item_counts, n_item_side);
    m.counts.insert("interactions".into(), report.interactions);
    m.counts.insert("users".into(), n_users);
    m.counts.insert("items".into(), n_items);
    m.counts.insert("interacting_users".into(), interacting_users);
    m.counts.insert("interacting_items".into(), interacting_items);
    m.counts.insert("user_rows".into(), report.user_rows);
    m.counts.insert("item_rows".into(), report.item_rows);
    m.extra = serde_json::json!({
        "source": { "path": src.display().to_string(), "format": opts.format },
        "import": opts,
        "cleaned": cleaned,
        "time_source": time_source,
        "warnings": report.warnings,
    });
    m.write(dir)?;
    stage.commit()?;
    progress.finish();
    Ok(report)
}

/// "N of M interacting items have no row in the item side table (e.g. a, b, c)…", or nothing.
fn missing_warning(what: &str, counts: &[u32], n_side: usize, vocab: &Vocabulary) -> Option<String> {
    let missing: Vec<usize> = counts
        .iter()
        .enumerate()
        .skip(n_side)
        .filter(|&(_, &c)| c > 0)
        .map(|(k, _)| k)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let interacting = counts.iter().filter(|&&c| c > 0).count();
    let examples: Vec<String> = missing
        .iter()
        .take(5)
        .map(|&k| format!("{:?}", vocab.id(k as u32)))
        .collect();
    Some(format!(
        "{} of {interacting} interacting {what}s have no row in the {what} features (e.g. {}{}); they get no features beyond their id",
        missing.len(),
        examples.join(", "),
        if missing.len() > examples.len() { ", …" } else { "" }
    ))
}

fn count_beyond(counts: &[u32], n: usize) -> u64 {
    counts
        .get(n..)
        .map_or(0, |c| c.iter().filter(|&&c| c > 0).count() as u64)
}

/// What identifies a file's content without reading it: size, modification time, and (on Unix) the
/// device and inode, so a file replaced by a rename counts as changed too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    id: (u64, u64),
}

impl Stamp {
    fn of(path: &Path) -> Result<Stamp> {
        let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        Ok(Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            id,
        })
    }
}

/// The stamps of every file an import reads (the source file, or every file under the source
/// folder, and the side tables), taken before reading and checked after.
struct SourceStamps(Vec<(PathBuf, Stamp)>);

impl SourceStamps {
    fn take<'a>(src: &Path, sides: impl IntoIterator<Item = Option<&'a Path>>) -> Result<SourceStamps> {
        let mut files = Vec::new();
        collect_files(src, &mut files, 0);
        files.extend(sides.into_iter().flatten().map(Path::to_path_buf));
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            // A file that cannot be stat'ed here is reported by the reader that opens it.
            if let Ok(s) = Stamp::of(&f) {
                out.push((f, s));
            }
        }
        Ok(SourceStamps(out))
    }

    /// An error naming the first file whose size, modification time or identity changed since
    /// [`take`](Self::take): what was read may be a mix of two versions, or cut short.
    fn check(&self) -> Result<()> {
        for (path, before) in &self.0 {
            let now = match Stamp::of(path) {
                Ok(s) => s,
                Err(_) => {
                    return Err(Error::invalid(
                        path,
                        "was removed while it was being imported; nothing was written (import again once the source is complete)",
                    ))
                }
            };
            if &now != before {
                let what = if now.len != before.len {
                    format!("its size went from {} to {} bytes", before.len, now.len)
                } else if now.id != before.id {
                    "it was replaced by another file".to_string()
                } else {
                    "its modification time changed".to_string()
                };
                return Err(Error::invalid(
                    path,
                    format!(
                        "changed while it was being imported ({what}); nothing was written \
                         (import again once the source is complete and no longer being written)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Regular files at or under `path` (directory symlinks are not followed; the depth is bounded).
fn collect_files(path: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let m = if depth == 0 {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    let Ok(m) = m else {
        return;
    };
    if m.is_dir() && depth < 64 {
        if let Ok(entries) = std::fs::read_dir(path) {
            let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            names.sort();
            for p in names {
                collect_files(&p, out, depth + 1);
            }
        }
    } else if m.is_file() || (m.file_type().is_symlink() && path.is_file()) {
        out.push(path.to_path_buf());
    }
}

/// Reads a whole input file, with the path in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
