//! Parquet logs with the same column-mapping flags as CSV, from one file, a directory of part files
//! or a hive-partitioned tree (see [`super::parts`]). Parts are read one after another, record batch
//! by record batch (row group by row group), so only the dense columns grow with the input; raw
//! Arrow tables never accumulate.
//!
//! Rules, per column role:
//! - ids: any integer type (written as its decimal string, as CSV does) or any string type (Utf8,
//!   LargeUtf8, Utf8View, dictionary-encoded). Lists, structs, floats and binary are errors naming
//!   the column. Null and empty ids are errors naming file, row and column.
//! - weight: any integer, float or decimal type; null, NaN and infinite values are errors.
//! - time: Arrow timestamps of every unit (with or without a time zone: Arrow stores UTC), `Date32`,
//!   `Date64`, integers in `--time-unit` (seconds by default; values too large to be seconds are
//!   refused, never guessed), floats (seconds, floored), and strings (RFC 3339 date-times, dates or
//!   integers). Everything becomes epoch seconds (floored).
//! - a `key=value` partition directory is a column of every row beneath it, usable as any role.
//!
//! Parts may differ: a column may be missing in some parts (weight then defaults to 1.0; a missing
//! id or time column is an error naming the part), int32 and int64, utf8 and large_utf8, plain and
//! dictionary-encoded strings, and timestamp units mix freely. Columns of different kinds (an
//! integer id in one part and a string id in another, a timestamp and a string time) are an error
//! naming both files and the column.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int64Type, TimeUnit as ArrowUnit, UInt64Type,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::parts::{discover, Part};
use super::text::{self, TimeUnit};
use super::{ColumnMap, Parsed};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::progress::Progress;
use crate::schema::{Interner, ParquetSource};

/// What a column is used for; decides which types it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A user or item id.
    Id,
    /// A weight or rating.
    Weight,
    /// A time.
    Time,
}

/// Kinds of column types: parts whose column has the same kind are compatible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Integer,
    Text,
    Number,
    Temporal,
}

fn is_int(dt: &DataType) -> bool {
    dt.is_integer()
}

fn is_text(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The kind of a column of type `dt` used as `role`, or why that type cannot be used so.
pub(crate) fn kind_of(role: Role, dt: &DataType) -> std::result::Result<Kind, String> {
    let value = match dt {
        DataType::Dictionary(_, v) => v.as_ref(),
        other => other,
    };
    let kind = match role {
        Role::Id if is_int(value) => Some(Kind::Integer),
        Role::Id if is_text(value) => Some(Kind::Text),
        Role::Weight if is_int(value) || value.is_floating() || value.is_numeric() => Some(Kind::Number),
        Role::Time => match value {
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => Some(Kind::Temporal),
            v if is_int(v) => Some(Kind::Integer),
            v if v.is_floating() => Some(Kind::Number),
            v if is_text(v) => Some(Kind::Text),
            _ => None,
        },
        _ => None,
    };
    kind.ok_or_else(|| {
        let expected = match role {
            Role::Id => "an id column must hold integers or strings",
            Role::Weight => "a weight column must be numeric",
            Role::Time => "a time column must be a timestamp, a date, epoch integers or date-time strings",
        };
        format!("has type {dt}: {expected}")
    })
}

/// A short name of a time column's source type for the manifest.
fn time_source(dt: &DataType, unit: TimeUnit) -> String {
    match dt {
        DataType::Timestamp(u, tz) => {
            let u = match u {
                ArrowUnit::Second => "s",
                ArrowUnit::Millisecond => "ms",
                ArrowUnit::Microsecond => "us",
                ArrowUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("timestamp[{u}, {tz}]"),
                None => format!("timestamp[{u}]"),
            }
        }
        DataType::Date32 => "date32 (days)".into(),
        DataType::Date64 => "date64 (ms)".into(),
        DataType::Dictionary(_, v) => time_source(v, unit),
        d if is_int(d) => format!("{} epoch {}", d.to_string().to_lowercase(), unit.name()),
        d if d.is_floating() => format!("{} epoch {}", d.to_string().to_lowercase(), unit.name()),
        _ => format!(
            "{} (date-times, or epoch {})",
            dt.to_string().to_lowercase(),
            unit.name()
        ),
    }
}

/// Where a part's values of one role come from.
enum Source<'a> {
    /// A column of the file.
    Column(&'a str),
    /// The part's partition directory: one value for every row.
    Partition(Option<&'a str>),
    /// Neither.
    Absent,
}

fn source<'a>(name: &'a str, file_cols: &[String], part: &'a Part) -> Source<'a> {
    if file_cols.iter().any(|c| c == name) {
        Source::Column(name)
    } else if let Some(v) = part.partition_value(name) {
        Source::Partition(v)
    } else {
        Source::Absent
    }
}

/// The first kind seen for a column, and where.
struct Seen {
    kind: Kind,
    dt: DataType,
    file: PathBuf,
}

/// Checks the types of the named columns in every part before any data is read: each must suit its
/// role, and agree in kind with the same column in earlier parts. Returns the total row count.
fn check_schemas(parts: &[Part], cols: &[(&str, Role)]) -> Result<u64> {
    let mut seen: Vec<Option<Seen>> = cols.iter().map(|_| None).collect();
    let mut rows = 0u64;
    for part in parts {
        let f = File::open(&part.path).map_err(|e| Error::io(&part.path, e))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| Error::parquet(&part.path, e))?;
        rows += b.metadata().file_metadata().num_rows().max(0) as u64;
        for (k, &(name, role)) in cols.iter().enumerate() {
            let Ok(field) = b.schema().field_with_name(name) else {
                continue;
            };
            let dt = field.data_type();
            let kind =
                kind_of(role, dt).map_err(|m| Error::invalid(&part.path, format!("column {name:?} {m}")))?;
            match &seen[k] {
                None => {
                    seen[k] = Some(Seen {
                        kind,
                        dt: dt.clone(),
                        file: part.path.clone(),
                    })
                }
                Some(s) if s.kind != kind => {
                    return Err(Error::invalid(
                        &part.path,
                        format!(
                            "column {name:?} has type {dt} here but {} in {}: the parts' schemas are incompatible",
                            s.dt,
                            s.file.display()
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(rows)
}

fn missing(part: &Part, column: &str, file_cols: &[String]) -> Error {
    let mut present = file_cols.to_vec();
    present.extend(part.partition.iter().map(|(k, _)| format!("{k} (partition)")));
    Error::MissingColumn {
        file: part.path.clone(),
        column: column.to_string(),
        present: present.join(", "),
    }
}

/// The named column of a batch.
fn col<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::invalid(path, format!("column {name:?} vanished from a batch")))
}

fn cast(path: &Path, a: &ArrayRef, name: &str, to: &DataType) -> Result<ArrayRef> {
    arrow::compute::cast(a, to).map_err(|e| {
        Error::invalid(
            path,
            format!(
                "column {name:?} has type {} which cannot be read as {to}: {e}",
                a.data_type()
            ),
        )
    })
}

/// An error at 1-based `row` of `path` in column `name`.
fn at(path: &Path, row: usize, name: &str, problem: impl std::fmt::Display) -> Error {
    Error::invalid(path, format!("row {row}: column {name:?}: {problem}"))
}

fn first_null(a: &dyn Array) -> Option<usize> {
    (a.null_count() > 0)
        .then(|| (0..a.len()).find(|&r| a.is_null(r)))
        .flatten()
}

/// An id column as Utf8 or `Dictionary<Int32, Utf8>` (what [`Interner`] takes).
pub(crate) fn id_strings(path: &Path, a: &ArrayRef, name: &str) -> Result<ArrayRef> {
    kind_of(Role::Id, a.data_type()).map_err(|m| Error::invalid(path, format!("column {name:?} {m}")))?;
    match a.data_type() {
        DataType::Utf8 => Ok(a.clone()),
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => Ok(a.clone()),
        DataType::Dictionary(_, v) if is_text(v) => {
            let to = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            cast(path, a, name, &to).or_else(|_| cast(path, a, name, &DataType::Utf8))
        }
        _ => cast(path, a, name, &DataType::Utf8),
    }
}

/// The first row of an id column (Utf8 or dictionary) holding an empty string.
fn first_empty(a: &ArrayRef) -> Option<usize> {
    if let Some(s) = a.as_string_opt::<i32>() {
        return s.offsets().windows(2).position(|w| w[0] == w[1]);
    }
    let d = a.as_dictionary_opt::<arrow::datatypes::Int32Type>()?;
    let s = d.values().as_string_opt::<i32>()?;
    let empty: Vec<bool> = s.offsets().windows(2).map(|w| w[0] == w[1]).collect();
    if !empty.iter().any(|&e| e) {
        return None;
    }
    d.keys()
        .values()
        .iter()
        .position(|&k| empty.get(k as usize).copied().unwrap_or(false))
}

/// The first row of an id column (Utf8 or dictionary) whose id breaks [`crate::id_problem`]'s rule,
/// with the problem. Dictionary values are checked once each.
fn first_bad_id(a: &ArrayRef) -> Option<(usize, String)> {
    if let Some(s) = a.as_string_opt::<i32>() {
        return s
            .iter()
            .enumerate()
            .find_map(|(r, v)| v.and_then(crate::id_problem).map(|m| (r, m)));
    }
    let d = a.as_dictionary_opt::<arrow::datatypes::Int32Type>()?;
    let s = d.values().as_string_opt::<i32>()?;
    let bad: Vec<Option<String>> = s.iter().map(|v| v.and_then(crate::id_problem)).collect();
    if bad.iter().all(Option::is_none) {
        return None;
    }
    d.keys().iter().enumerate().find_map(|(r, k)| {
        let k = k? as usize;
        bad.get(k).cloned().flatten().map(|m| (r, m))
    })
}

/// Appends the epoch seconds of a time column to `out`; `Err((row, problem))` on a bad value
/// (0-based row within the batch).
pub(crate) fn time_values(
    a: &ArrayRef,
    unit: TimeUnit,
    out: &mut Vec<i64>,
) -> std::result::Result<(), (usize, String)> {
    let whole = |e: arrow::error::ArrowError| (0usize, e.to_string());
    match a.data_type() {
        DataType::Timestamp(u, _) => {
            let per = match u {
                ArrowUnit::Second => 1,
                ArrowUnit::Millisecond => 1_000,
                ArrowUnit::Microsecond => 1_000_000,
                ArrowUnit::Nanosecond => 1_000_000_000,
            };
            let v = arrow::compute::cast(a, &DataType::Int64).map_err(whole)?;
            out.extend(
                v.as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .map(|&t| t.div_euclid(per)),
            );
        }
        DataType::Date32 => {
            out.extend(
                a.as_primitive::<Date32Type>()
                    .values()
                    .iter()
                    .map(|&d| d as i64 * 86_400),
            );
        }
        DataType::Date64 => {
            let v = arrow::compute::cast(a, &DataType::Int64).map_err(whole)?;
            out.extend(
                v.as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .map(|&t| t.div_euclid(1_000)),
            );
        }
        DataType::UInt64 => {
            for (r, &v) in a.as_primitive::<UInt64Type>().values().iter().enumerate() {
                let v = i64::try_from(v).map_err(|_| (r, format!("{v} is out of range for a time")))?;
                out.push(text::int_epoch(v, unit).map_err(|m| (r, m))?);
            }
        }
        d if is_int(d) => {
            let v = arrow::compute::cast(a, &DataType::Int64).map_err(whole)?;
            for (r, &v) in v.as_primitive::<Int64Type>().values().iter().enumerate() {
                out.push(text::int_epoch(v, unit).map_err(|m| (r, m))?);
            }
        }
        d if d.is_floating() => {
            let v = arrow::compute::cast(a, &DataType::Float64).map_err(whole)?;
            for (r, &v) in v.as_primitive::<Float64Type>().values().iter().enumerate() {
                if !v.is_finite() || v.abs() >= 9.0e18 {
                    return Err((r, format!("{v} is not a finite time")));
                }
                let secs = (v / unit.per_second() as f64).floor() as i64;
                out.push(text::int_epoch(secs, TimeUnit::S).map_err(|m| (r, m))?);
            }
        }
        _ => {
            let v = arrow::compute::cast(a, &DataType::Utf8).map_err(whole)?;
            let s = v.as_string::<i32>();
            for r in 0..s.len() {
                out.push(text::time_str(s.value(r), unit).map_err(|m| (r, m))?);
            }
        }
    }
    Ok(())
}

/// Appends a weight column as finite f32 to `out`; `Err((row, problem))` on NaN or infinity.
fn weight_values(a: &ArrayRef, out: &mut Vec<f32>) -> std::result::Result<(), (usize, String)> {
    let v = arrow::compute::cast(a, &DataType::Float32).map_err(|e| (0usize, e.to_string()))?;
    let v = v.as_primitive::<Float32Type>().values();
    if let Some(r) = v.iter().position(|w| !w.is_finite()) {
        return Err((r, format!("{} is not a finite number", v[r])));
    }
    out.extend_from_slice(v);
    Ok(())
}

pub(crate) fn parse(
    src: &Path,
    cols: &ColumnMap,
    unit: TimeUnit,
    mut p: Parsed,
    progress: &dyn Progress,
) -> Result<Parsed> {
    let parts = discover(src)?;
    let mut roles = vec![(cols.user.as_str(), Role::Id), (cols.item.as_str(), Role::Id)];
    roles.extend(cols.weight.as_deref().map(|w| (w, Role::Weight)));
    roles.extend(cols.time.as_deref().map(|t| (t, Role::Time)));
    let total = check_schemas(&parts, &roles)?;
    // A named column must exist somewhere: in a file or as a partition key.
    for &(name, _) in &roles {
        let anywhere = parts.iter().any(|part| part.partition_value(name).is_some())
            || parts.iter().any(|part| {
                ParquetSource::open(&part.path).is_ok_and(|s| s.column_names().iter().any(|c| c == name))
            });
        if !anywhere {
            let first = &parts[0];
            let names = ParquetSource::open(&first.path)?.column_names();
            return Err(missing(first, name, &names));
        }
    }
    progress.start("reading parquet", Some(total));
    p.x = Interactions::with_capacity(total as usize);
    let Parsed { users, items, x, .. } = &mut p;
    let mut ui = Interner::new(users);
    let mut ii = Interner::new(items);
    let mut sources = BTreeSet::new();
    let mut seq = 0i64;
    for (k, part) in parts.iter().enumerate() {
        if parts.len() > 1 {
            progress.set_message(&format!("part {}/{}", k + 1, parts.len()));
        }
        read_part(
            part,
            cols,
            unit,
            x,
            &mut ui,
            &mut ii,
            &mut sources,
            &mut seq,
            progress,
        )?;
    }
    progress.finish();
    if p.x.is_empty() {
        return Err(Error::Empty {
            file: src.to_path_buf(),
            what: if parts.len() > 1 {
                format!("the {} Parquet parts have no rows", parts.len())
            } else {
                "the Parquet file has no rows".into()
            },
        });
    }
    if cols.time.is_some() {
        p.time_source = sources.into_iter().collect();
    }
    Ok(p)
}

#[allow(clippy::too_many_arguments)]
fn read_part(
    part: &Part,
    cols: &ColumnMap,
    unit: TimeUnit,
    x: &mut Interactions,
    ui: &mut Interner<'_>,
    ii: &mut Interner<'_>,
    sources: &mut BTreeSet<String>,
    seq: &mut i64,
    progress: &dyn Progress,
) -> Result<()> {
    let path = part.path.as_path();
    let file_cols = ParquetSource::open(path)?.column_names();
    // A partition directory `item=zzz/` over a file that has an `item` column: which one holds the
    // item is ambiguous, so it is refused rather than resolved silently.
    if let Some((key, value)) = part
        .partition
        .iter()
        .find(|(k, _)| file_cols.iter().any(|c| c == k))
    {
        return Err(Error::invalid(
            path,
            format!(
                "the partition key {key:?} (directory {key}={}) is also a column of the file: \
                 which one holds {key:?} is ambiguous; rename the partition directory or the column",
                value
                    .as_deref()
                    .unwrap_or("__HIVE_DEFAULT_PARTITION__")
                    .escape_debug()
            ),
        ));
    }
    let user = source(&cols.user, &file_cols, part);
    let item = source(&cols.item, &file_cols, part);
    let weight = cols.weight.as_deref().map(|w| source(w, &file_cols, part));
    let time = cols.time.as_deref().map(|t| source(t, &file_cols, part));
    for (name, s) in [(&cols.user, &user), (&cols.item, &item)] {
        if matches!(s, Source::Absent) {
            return Err(missing(part, name, &file_cols));
        }
    }
    if let (Some(t), Some(Source::Absent)) = (cols.time.as_deref(), &time) {
        return Err(missing(part, t, &file_cols));
    }
    let mut read: Vec<&str> = Vec::new();
    for s in [Some(&user), Some(&item), weight.as_ref(), time.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Source::Column(c) = s {
            if !read.contains(c) {
                read.push(c);
            }
        }
    }
    // Partition values are parsed once per part.
    let part_err = |name: &str, m: String| Error::invalid(path, format!("partition {name}: {m}"));
    let null_part = |name: &str| part_err(name, "is null (__HIVE_DEFAULT_PARTITION__)".into());
    let part_id = |s: &Source, name: &str, int: &mut Interner<'_>| -> Result<Option<u32>> {
        match s {
            Source::Partition(Some("")) => Err(part_err(name, "is empty".into())),
            Source::Partition(Some(v)) if crate::id_problem(v).is_some() => {
                Err(part_err(name, crate::id_problem(v).unwrap_or_default()))
            }
            Source::Partition(Some(v)) => Ok(Some(int.get(v))),
            Source::Partition(None) => Err(null_part(name)),
            _ => Ok(None),
        }
    };
    let part_user = part_id(&user, &cols.user, ui)?;
    let part_item = part_id(&item, &cols.item, ii)?;
    let part_weight = match (&weight, cols.weight.as_deref()) {
        (Some(Source::Partition(Some(v))), Some(w)) => {
            Some(text::f32_field(v.as_bytes(), w).map_err(|m| part_err(w, m))?)
        }
        (Some(Source::Partition(None)), Some(w)) => return Err(null_part(w)),
        (Some(Source::Absent), _) => Some(1.0),
        _ => None,
    };
    let part_time = match (&time, cols.time.as_deref()) {
        (Some(Source::Partition(Some(v))), Some(t)) => {
            sources.insert(format!(
                "partition key {t} (date-times, or epoch {})",
                unit.name()
            ));
            Some(text::time_str(v, unit).map_err(|m| part_err(t, m))?)
        }
        (Some(Source::Partition(None)), Some(t)) => return Err(null_part(t)),
        _ => None,
    };

    let src = ParquetSource::open(path)?;
    let dict: Vec<&str> = [&user, &item]
        .iter()
        .filter_map(|s| match s {
            Source::Column(c) => Some(*c),
            _ => None,
        })
        .collect();
    let src = src.with_dictionary(&dict)?;
    let rows_in_file = src.num_rows();
    if read.is_empty() {
        // Every column comes from the partition path: one row per row of the file.
        let n = rows_in_file as usize;
        push_constant_rows(x, n, part_user, part_item, part_weight, part_time, seq);
        progress.inc(n as u64);
        return Ok(());
    }
    let reader = src.read(&read)?;
    let mut row0 = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| Error::arrow(path, e))?;
        let n = batch.num_rows();
        read_ids(path, &batch, row0, &user, &cols.user, part_user, ui, &mut x.user)?;
        read_ids(path, &batch, row0, &item, &cols.item, part_item, ii, &mut x.item)?;
        match (&weight, part_weight) {
            (_, Some(w)) => x.weight.resize(x.weight.len() + n, w),
            (Some(Source::Column(c)), None) => {
                let a = col(path, &batch, c)?;
                if let Some(r) = first_null(a.as_ref()) {
                    return Err(at(path, row0 + r + 1, c, "the weight is null"));
                }
                weight_values(a, &mut x.weight).map_err(|(r, m)| at(path, row0 + r + 1, c, m))?;
            }
            _ => x.weight.resize(x.weight.len() + n, 1.0),
        }
        match (&time, part_time) {
            (_, Some(t)) => x.ts.resize(x.ts.len() + n, t),
            (Some(Source::Column(c)), None) => {
                let a = col(path, &batch, c)?;
                if let Some(r) = first_null(a.as_ref()) {
                    return Err(at(path, row0 + r + 1, c, "the time is null"));
                }
                if row0 == 0 {
                    sources.insert(time_source(a.data_type(), unit));
                }
                time_values(a, unit, &mut x.ts).map_err(|(r, m)| at(path, row0 + r + 1, c, m))?;
            }
            _ => x.ts.extend(*seq..*seq + n as i64),
        }
        *seq += n as i64;
        row0 += n;
        progress.inc(n as u64);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn read_ids(
    path: &Path,
    batch: &RecordBatch,
    row0: usize,
    s: &Source<'_>,
    name: &str,
    fixed: Option<u32>,
    int: &mut Interner<'_>,
    out: &mut Vec<u32>,
) -> Result<()> {
    let n = batch.num_rows();
    match (s, fixed) {
        (_, Some(i)) => out.resize(out.len() + n, i),
        (Source::Column(c), None) => {
            let a = id_strings(path, col(path, batch, c)?, name)?;
            if let Some(r) = first_null(&a) {
                return Err(at(path, row0 + r + 1, name, "the id is null"));
            }
            if let Some(r) = first_empty(&a) {
                return Err(at(path, row0 + r + 1, name, "the id is empty"));
            }
            if let Some((r, m)) = first_bad_id(&a) {
                return Err(at(path, row0 + r + 1, name, m));
            }
            int.extend(&a, out);
        }
        _ => return Err(Error::invalid(path, format!("no column {name:?}"))),
    }
    Ok(())
}

fn push_constant_rows(
    x: &mut Interactions,
    n: usize,
    user: Option<u32>,
    item: Option<u32>,
    weight: Option<f32>,
    time: Option<i64>,
    seq: &mut i64,
) {
    let (Some(u), Some(i)) = (user, item) else {
        return;
    };
    for _ in 0..n {
        x.push(u, i, weight.unwrap_or(1.0), time.unwrap_or(*seq));
        *seq += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Date32Array, Date64Array, DictionaryArray, Float32Array, Float64Array, Int16Array, Int64Array,
        LargeStringArray, ListArray, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray, TimestampSecondArray, UInt64Array, UInt8Array,
    };
    use arrow::datatypes::{Field, Int16Type, Int32Type};

    use super::*;

    fn secs(a: ArrayRef, unit: TimeUnit) -> std::result::Result<Vec<i64>, (usize, String)> {
        let mut out = Vec::new();
        time_values(&a, unit, &mut out).map(|_| out)
    }

    #[test]
    fn id_kinds() {
        let dict = |v: DataType| DataType::Dictionary(Box::new(DataType::Int8), Box::new(v));
        for dt in [
            DataType::Int8,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt64,
            dict(DataType::Int32),
        ] {
            assert_eq!(kind_of(Role::Id, &dt), Ok(Kind::Integer), "{dt}");
        }
        for dt in [
            DataType::Utf8,
            DataType::LargeUtf8,
            DataType::Utf8View,
            dict(DataType::Utf8),
        ] {
            assert_eq!(kind_of(Role::Id, &dt), Ok(Kind::Text), "{dt}");
        }
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        for dt in [list, DataType::Float64, DataType::Binary, DataType::Boolean] {
            let e = kind_of(Role::Id, &dt).unwrap_err();
            assert!(e.contains("an id column must hold integers or strings"), "{e}");
        }
    }

    #[test]
    fn weight_and_time_kinds() {
        for dt in [
            DataType::Int32,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(10, 2),
        ] {
            assert_eq!(kind_of(Role::Weight, &dt), Ok(Kind::Number), "{dt}");
        }
        assert!(kind_of(Role::Weight, &DataType::Utf8).is_err());
        let ts = |u| DataType::Timestamp(u, None);
        for dt in [
            ts(ArrowUnit::Second),
            ts(ArrowUnit::Nanosecond),
            DataType::Timestamp(ArrowUnit::Millisecond, Some("UTC".into())),
            DataType::Date32,
            DataType::Date64,
        ] {
            assert_eq!(kind_of(Role::Time, &dt), Ok(Kind::Temporal), "{dt}");
        }
        assert_eq!(kind_of(Role::Time, &DataType::Int32), Ok(Kind::Integer));
        assert_eq!(kind_of(Role::Time, &DataType::Float64), Ok(Kind::Number));
        assert_eq!(kind_of(Role::Time, &DataType::LargeUtf8), Ok(Kind::Text));
        assert!(kind_of(Role::Time, &DataType::Boolean).is_err());
    }

    #[test]
    fn ids_become_utf8_or_int32_dictionaries() {
        let p = Path::new("f.parquet");
        let a: ArrayRef = Arc::new(Int64Array::from(vec![-3, 42]));
        let s = id_strings(p, &a, "u").unwrap();
        assert_eq!(
            s.as_string::<i32>().iter().flatten().collect::<Vec<_>>(),
            ["-3", "42"]
        );
        let a: ArrayRef = Arc::new(UInt8Array::from(vec![255]));
        assert_eq!(id_strings(p, &a, "u").unwrap().as_string::<i32>().value(0), "255");
        let a: ArrayRef = Arc::new(LargeStringArray::from(vec!["x"]));
        assert_eq!(id_strings(p, &a, "u").unwrap().data_type(), &DataType::Utf8);
        let d: DictionaryArray<Int16Type> = vec!["a", "b", "a"].into_iter().collect();
        let s = id_strings(p, &(Arc::new(d) as ArrayRef), "u").unwrap();
        assert!(s.as_dictionary_opt::<Int32Type>().is_some());
        let d: DictionaryArray<Int32Type> = vec!["a", ""].into_iter().collect();
        assert_eq!(first_empty(&(Arc::new(d) as ArrayRef)), Some(1));
        let a: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", ""]));
        assert_eq!(first_empty(&a), Some(2));
        let l: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(
            vec![Some(1)],
        )]));
        let e = id_strings(p, &l, "item").unwrap_err().to_string();
        assert!(e.starts_with("f.parquet: column \"item\" has type List("), "{e}");
    }

    #[test]
    fn every_time_type_in_seconds() {
        let t = 1_609_459_200i64;
        let s = TimeUnit::S;
        assert_eq!(
            secs(Arc::new(TimestampSecondArray::from(vec![t, -1])), s).unwrap(),
            [t, -1]
        );
        assert_eq!(
            secs(
                Arc::new(TimestampMillisecondArray::from(vec![t * 1000 + 999, -1])),
                s
            )
            .unwrap(),
            [t, -1]
        );
        assert_eq!(
            secs(
                Arc::new(TimestampMicrosecondArray::from(vec![t * 1_000_000]).with_timezone("+05:00")),
                s
            )
            .unwrap(),
            [t]
        );
        assert_eq!(
            secs(
                Arc::new(TimestampNanosecondArray::from(vec![t * 1_000_000_000 + 1])),
                s
            )
            .unwrap(),
            [t]
        );
        assert_eq!(
            secs(Arc::new(Date32Array::from(vec![18_628, -1])), s).unwrap(),
            [t, -86_400]
        );
        assert_eq!(
            secs(Arc::new(Date64Array::from(vec![t * 1000 - 1])), s).unwrap(),
            [t - 1]
        );
        assert_eq!(secs(Arc::new(Int16Array::from(vec![7])), s).unwrap(), [7]);
        assert_eq!(
            secs(Arc::new(Int64Array::from(vec![t * 1000])), TimeUnit::Ms).unwrap(),
            [t]
        );
        assert_eq!(
            secs(Arc::new(Float64Array::from(vec![t as f64 + 0.9])), s).unwrap(),
            [t]
        );
        assert_eq!(
            secs(Arc::new(Float32Array::from(vec![1.5e3])), TimeUnit::Ms).unwrap(),
            [1]
        );
        assert_eq!(
            secs(
                Arc::new(StringArray::from(vec!["2021-01-01T00:00:00Z", "1609459200"])),
                s
            )
            .unwrap(),
            [t, t]
        );
        assert_eq!(
            secs(Arc::new(LargeStringArray::from(vec!["2021-01-01"])), s).unwrap(),
            [t]
        );
        // Errors carry the row and the cause; nothing panics.
        let (row, m) = secs(Arc::new(Int64Array::from(vec![1, t * 1000])), s).unwrap_err();
        assert_eq!(row, 1);
        assert!(m.contains("--time-unit ms"), "{m}");
        let (row, m) = secs(Arc::new(UInt64Array::from(vec![u64::MAX])), TimeUnit::Ns).unwrap_err();
        assert_eq!(row, 0);
        assert!(m.contains("out of range"), "{m}");
        let (_, m) = secs(Arc::new(Float64Array::from(vec![f64::NAN])), s).unwrap_err();
        assert!(m.contains("not a finite time"), "{m}");
        let (row, m) = secs(Arc::new(StringArray::from(vec!["2021-01-01", "soon"])), s).unwrap_err();
        assert_eq!(row, 1);
        assert!(
            m.contains("\"soon\" is neither epoch seconds nor a date-time"),
            "{m}"
        );
        for v in [i64::MIN, i64::MAX] {
            let _ = secs(Arc::new(TimestampNanosecondArray::from(vec![v])), s);
            let _ = secs(Arc::new(Date64Array::from(vec![v])), s);
            let _ = secs(Arc::new(Int64Array::from(vec![v])), TimeUnit::Us);
        }
    }
}
