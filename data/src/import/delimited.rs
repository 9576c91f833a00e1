//! CSV/TSV logs with a header row; flags name the user, item, weight and time columns.

use std::path::Path;

use super::text::{self, TextEncoding, TimeUnit};
use super::{ColumnMap, Parsed};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// A CSV/TSV reader over `path` (quotes honoured for CSV; TSV fields are taken literally).
pub(crate) fn reader(path: &Path, delim: u8) -> Result<csv::Reader<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(true)
        .flexible(false)
        .quoting(delim != b'\t')
        .from_reader(f))
}

/// Turns a csv error into one naming the file and line.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Error::parse(
            path,
            line,
            format!("expected {expected_len} fields like the header, found {len}"),
        ),
        csv::ErrorKind::Io(_) => Error::io(path, std::io::Error::other(e.to_string())),
        _ => Error::parse(path, line, e.to_string()),
    }
}

/// The header's column names (BOM stripped, trimmed), or an error for an empty file.
pub(crate) fn header(
    path: &Path,
    rdr: &mut csv::Reader<std::fs::File>,
    enc: TextEncoding,
) -> Result<Vec<String>> {
    let h = rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    if h.is_empty() || (h.len() == 1 && h[0].trim_ascii().is_empty()) {
        return Err(Error::Empty {
            file: path.to_path_buf(),
            what: "empty file (expected a header row naming the columns)".into(),
        });
    }
    let names: Vec<String> = h
        .iter()
        .map(|f| {
            text::decode(f, enc)
                .map(|s| s.trim_start_matches('\u{feff}').trim().to_string())
                .map_err(|m| Error::parse(path, 1, m))
        })
        .collect::<Result<_>>()?;
    // A name given twice is ambiguous (which `item` is the item?): refused, not resolved silently.
    for (j, n) in names.iter().enumerate() {
        if let Some(i) = names[..j].iter().position(|m| m == n && !m.is_empty()) {
            return Err(Error::parse(
                path,
                1,
                format!(
                    "columns {} and {} of the header are both named {n:?}; each column must have its own name",
                    i + 1,
                    j + 1
                ),
            ));
        }
    }
    Ok(names)
}

/// Position of `name` in `header`, or a MissingColumn error listing the header.
pub(crate) fn find(path: &Path, header: &[String], name: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| Error::MissingColumn {
            file: path.to_path_buf(),
            column: name.to_string(),
            present: header.join(", "),
        })
}

pub(crate) fn parse(
    path: &Path,
    delim: u8,
    cols: &ColumnMap,
    enc: TextEncoding,
    unit: TimeUnit,
    mut p: Parsed,
    progress: &dyn Progress,
) -> Result<Parsed> {
    let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    progress.start("parsing log", Some(size));
    let mut rdr = reader(path, delim)?;
    let header = header(path, &mut rdr, enc)?;
    let ui = find(path, &header, &cols.user)?;
    let ii = find(path, &header, &cols.item)?;
    let wi = cols
        .weight
        .as_deref()
        .map(|c| find(path, &header, c))
        .transpose()?;
    let ti = cols.time.as_deref().map(|c| find(path, &header, c)).transpose()?;
    let mut rec = csv::ByteRecord::new();
    let mut seq = 0i64;
    let mut last_pos = 0u64;
    while rdr.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))? {
        let line = rec.position().map_or(0, |p| p.line());
        let err = |m: String| Error::parse(path, line, m);
        let user = text::decode(rec[ui].trim_ascii(), enc).map_err(err)?;
        let item = text::decode(rec[ii].trim_ascii(), enc).map_err(err)?;
        if user.is_empty() {
            return Err(err(format!("{} (user id) is empty", cols.user)));
        }
        if item.is_empty() {
            return Err(err(format!("{} (item id) is empty", cols.item)));
        }
        for (id, col, what) in [(&user, &cols.user, "user id"), (&item, &cols.item, "item id")] {
            if let Some(m) = crate::id_problem(id) {
                return Err(err(format!("{col} ({what}): {m}")));
            }
        }
        let w = match wi {
            Some(k) => text::f32_field(&rec[k], cols.weight.as_deref().unwrap_or("weight")).map_err(err)?,
            None => 1.0,
        };
        let ts = match ti {
            Some(k) => {
                text::time_field_in(&rec[k], cols.time.as_deref().unwrap_or("time"), unit).map_err(err)?
            }
            None => seq,
        };
        seq += 1;
        let u = p.users.insert(&user);
        let i = p.items.insert(&item);
        p.x.push(u, i, w, ts);
        if let Some(pos) = rec.position() {
            if pos.byte() - last_pos > 1 << 20 {
                progress.inc(pos.byte() - last_pos);
                last_pos = pos.byte();
            }
        }
    }
    progress.finish();
    if p.x.is_empty() {
        return Err(Error::Empty {
            file: path.to_path_buf(),
            what: "header only, no data rows".into(),
        });
    }
    Ok(p)
}
