//! Side files with item or user features for csv/tsv/json/parquet logs: a CSV/TSV with a header, or the
//! items.parquet/users.parquet of another twotower dataset (so real features can travel with a
//! custom log).

use std::path::Path;

use super::delimited::{csv_error, find, header, reader};
use super::parts::{discover, Part};
use super::text::{self, TextEncoding};
use crate::error::{Error, Result};
use crate::schema::{read_items, read_users, ItemRows, UserRows};

/// A Parquet side file: a `.parquet` file, or a directory of part files (hive-partitioned or not).
fn is_parquet(path: &Path) -> bool {
    path.is_dir()
        || path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The id column of a Parquet side source: the log's column name if the first part has it (as a
/// column or a partition key), else the canonical name.
fn parquet_id_column<'a>(parts: &[Part], log_col: &'a str, canonical: &'a str) -> Result<&'a str> {
    let first = &parts[0];
    let has = crate::schema::ParquetSource::open(&first.path)?
        .require(log_col)
        .is_ok();
    Ok(if has { log_col } else { canonical })
}

/// Appends `more`'s categorical columns to `all` by name (a column absent in some parts is missing
/// for their rows), for `n_before` rows already in `all` and `n_more` new ones.
fn merge_categorical(
    all: &mut Vec<(String, Vec<Option<String>>)>,
    n_before: usize,
    more: Vec<(String, Vec<Option<String>>)>,
    n_more: usize,
) {
    let mut more = more;
    for (name, vals) in all.iter_mut() {
        match more.iter().position(|(n, _)| n == name) {
            Some(k) => vals.extend(more.remove(k).1),
            None => vals.resize(vals.len() + n_more, None),
        }
    }
    for (name, vals) in more {
        let mut v = vec![None; n_before];
        v.extend(vals);
        all.push((name, v));
    }
}

/// Partition keys of a part as categorical columns of `n` rows (skipping the id column).
fn partition_columns(part: &Part, n: usize, id: &str) -> Vec<(String, Vec<Option<String>>)> {
    part.partition
        .iter()
        .filter(|(k, _)| k != id)
        .map(|(k, v)| (k.clone(), vec![v.clone(); n]))
        .collect()
}

fn read_item_parts(src: &Path, item_col: &str) -> Result<ItemRows> {
    let parts = discover(src)?;
    let id = parquet_id_column(&parts, item_col, "item")?;
    let mut all = ItemRows::default();
    for part in &parts {
        let mut r = read_items(&part.path, id)?;
        let n = r.ids.len();
        r.categorical.extend(partition_columns(part, n, id));
        let before = all.ids.len();
        all.ids.extend(r.ids);
        all.titles.extend(r.titles);
        all.genres.extend(r.genres);
        merge_categorical(&mut all.categorical, before, r.categorical, n);
    }
    Ok(all)
}

fn read_user_parts(src: &Path, user_col: &str) -> Result<UserRows> {
    let parts = discover(src)?;
    let id = parquet_id_column(&parts, user_col, "user")?;
    let mut all = UserRows::default();
    for part in &parts {
        let mut r = read_users(&part.path, id)?;
        let n = r.ids.len();
        r.categorical.extend(partition_columns(part, n, id));
        let before = all.ids.len();
        all.ids.extend(r.ids);
        merge_categorical(&mut all.categorical, before, r.categorical, n);
    }
    Ok(all)
}

fn delimiter(path: &Path) -> u8 {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("tsv") || e.eq_ignore_ascii_case("tab") => b'\t',
        _ => b',',
    }
}

/// The id column: the log's column name if the side file has it, else the canonical name.
fn id_column(path: &Path, header: &[String], log_col: &str, canonical: &str) -> Result<usize> {
    find(path, header, log_col).or_else(|_| find(path, header, canonical))
}

/// A side CSV: ids, the other columns' names, and their values per row (empty → None).
struct Table {
    ids: Vec<String>,
    names: Vec<String>,
    cols: Vec<Vec<Option<String>>>,
}

/// Every row of a side CSV as optional strings (empty → None), with the id column required.
fn read_table(path: &Path, id_col: &str, canonical: &str, enc: TextEncoding) -> Result<Table> {
    let mut rdr = reader(path, delimiter(path))?;
    let header = header(path, &mut rdr, enc)?;
    let idc = id_column(path, &header, id_col, canonical)?;
    let mut ids = Vec::new();
    let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); header.len()];
    let mut rec = csv::ByteRecord::new();
    while rdr.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        let line = rec.position().map_or(0, |p| p.line());
        for (k, col) in cols.iter_mut().enumerate() {
            let s = text::decode(rec[k].trim_ascii(), enc).map_err(|m| Error::parse(path, line, m))?;
            if k == idc {
                if s.is_empty() {
                    return Err(Error::parse(path, line, format!("{} (id) is empty", header[k])));
                }
                if let Some(m) = crate::id_problem(&s) {
                    return Err(Error::parse(path, line, format!("{} (id): {m}", header[k])));
                }
                ids.push(s.into_owned());
            } else {
                col.push((!s.is_empty()).then(|| s.into_owned()));
            }
        }
    }
    if ids.is_empty() {
        return Err(Error::Empty {
            file: path.to_path_buf(),
            what: "header only, no data rows".into(),
        });
    }
    let named: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != idc)
        .map(|(_, h)| h.clone())
        .collect();
    let cols = cols
        .into_iter()
        .enumerate()
        .filter(|&(k, _)| k != idc)
        .map(|(_, c)| c)
        .collect();
    Ok(Table {
        ids,
        names: named,
        cols,
    })
}

/// Item features: `title` and `genres` (`A|B`) columns are recognised, the rest are categorical.
pub(crate) fn read_item_side(path: &Path, item_col: &str, enc: TextEncoding) -> Result<ItemRows> {
    if is_parquet(path) {
        return read_item_parts(path, item_col);
    }
    let Table { ids, names, cols } = read_table(path, item_col, "item", enc)?;
    let mut rows = ItemRows::bare(ids);
    for (name, col) in names.into_iter().zip(cols) {
        match name.as_str() {
            "title" => rows.titles = col,
            "genres" => {
                rows.genres = col
                    .into_iter()
                    .map(|g| {
                        g.map(|g| {
                            g.split('|')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default()
                    })
                    .collect()
            }
            _ => rows.categorical.push((name, col)),
        }
    }
    Ok(rows)
}

/// User features: every column but the id is categorical.
pub(crate) fn read_user_side(path: &Path, user_col: &str, enc: TextEncoding) -> Result<UserRows> {
    if is_parquet(path) {
        return read_user_parts(path, user_col);
    }
    let Table { ids, names, cols } = read_table(path, user_col, "user", enc)?;
    Ok(UserRows {
        ids,
        categorical: names.into_iter().zip(cols).collect(),
    })
}
