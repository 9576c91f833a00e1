//! Side files with item or user features for csv/tsv/json/parquet logs: a CSV/TSV with a header, or the
//! items.parquet/users.parquet of another twotower dataset (so real features can travel with a
//! custom log).

use std::path::Path;

use super::delimited::{csv_error, find, header, reader};
use super::text::{self, TextEncoding};
use crate::error::{Error, Result};
use crate::schema::{read_items, read_users, ItemRows, UserRows};

fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
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
        let id = if crate::schema::ParquetSource::open(path)?
            .require(item_col)
            .is_ok()
        {
            item_col
        } else {
            "item"
        };
        return read_items(path, id);
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
        let id = if crate::schema::ParquetSource::open(path)?
            .require(user_col)
            .is_ok()
        {
            user_col
        } else {
            "user"
        };
        return read_users(path, id);
    }
    let Table { ids, names, cols } = read_table(path, user_col, "user", enc)?;
    Ok(UserRows {
        ids,
        categorical: names.into_iter().zip(cols).collect(),
    })
}
