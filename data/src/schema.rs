//! The canonical Parquet files of a dataset directory and their readers and writers:
//! `interactions.parquet` (and `train.parquet`/`test.parquet`): user Utf8, item Utf8, weight Float32,
//! ts Int64; `items.parquet`: item Utf8, title Utf8?, genres `List<Utf8>`, then categorical Utf8 columns;
//! `users.parquet`: user Utf8, then categorical Utf8 columns. Ids are strings here and only here become
//! dense indices (through [`Vocabulary`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::vocab::Vocabulary;

/// File names inside a dataset directory.
pub const INTERACTIONS_FILE: &str = "interactions.parquet";
/// Item features.
pub const ITEMS_FILE: &str = "items.parquet";
/// User features.
pub const USERS_FILE: &str = "users.parquet";
/// Training part after `data split`.
pub const TRAIN_FILE: &str = "train.parquet";
/// Held-out part after `data split`.
pub const TEST_FILE: &str = "test.parquet";

const ROWS_PER_BATCH: usize = 1 << 16;
const READ_BATCH: usize = 1 << 16;

/// The interaction files of a dataset listed in its manifest, in the order they are read:
/// `interactions.parquet`, then each append's `interactions-NNNN.parquet`.
pub(crate) fn interaction_parts<'a>(files: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut parts: Vec<String> = files
        .into_iter()
        .filter(|f| f.starts_with("interactions-") && f.ends_with(".parquet"))
        .cloned()
        .collect();
    parts.sort();
    parts.insert(0, INTERACTIONS_FILE.to_string());
    parts
}

/// The file name of an append's interactions: the `n`th part (1-based).
pub(crate) fn interaction_part_name(n: usize) -> String {
    format!("interactions-{n:04}.parquet")
}

/// Arrow schema of interaction files.
pub fn interactions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user", DataType::Utf8, false),
        Field::new("item", DataType::Utf8, false),
        Field::new("weight", DataType::Float32, false),
        Field::new("ts", DataType::Int64, false),
    ]))
}

fn genres_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

fn writer_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build()
}

/// Item rows as strings, as read from or written to `items.parquet`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ItemRows {
    pub ids: Vec<String>,
    pub titles: Vec<Option<String>>,
    pub genres: Vec<Vec<String>>,
    /// (column name, value per row)
    pub categorical: Vec<(String, Vec<Option<String>>)>,
}

impl ItemRows {
    /// Rows for bare ids: no title, no genres, no categorical columns.
    pub fn bare(ids: Vec<String>) -> ItemRows {
        let n = ids.len();
        ItemRows {
            ids,
            titles: vec![None; n],
            genres: vec![Vec::new(); n],
            categorical: Vec::new(),
        }
    }
}

impl ItemRows {
    /// Appends a row with an id only (no title, genres or categorical values).
    pub fn push_bare(&mut self, id: &str) {
        self.ids.push(id.to_string());
        self.titles.push(None);
        self.genres.push(Vec::new());
        for (_, c) in &mut self.categorical {
            c.push(None);
        }
    }
}

impl UserRows {
    /// Appends a row with an id only (missing categorical values).
    pub fn push_bare(&mut self, id: &str) {
        self.ids.push(id.to_string());
        for (_, c) in &mut self.categorical {
            c.push(None);
        }
    }
}

/// User rows as strings, as read from or written to `users.parquet`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UserRows {
    pub ids: Vec<String>,
    pub categorical: Vec<(String, Vec<Option<String>>)>,
}

/// Streams interactions into a Parquet file in row groups, so writers never hold all rows as strings.
pub(crate) struct InteractionWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    rows: u64,
}

impl InteractionWriter {
    pub fn create(path: &Path) -> Result<InteractionWriter> {
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        let schema = interactions_schema();
        let writer = ArrowWriter::try_new(f, schema.clone(), Some(writer_props()))
            .map_err(|e| Error::parquet(path, e))?;
        Ok(InteractionWriter {
            path: path.to_path_buf(),
            writer,
            schema,
            rows: 0,
        })
    }

    /// Appends the rows of `x`, turning dense indices back into string ids through the vocabularies.
    pub fn write(&mut self, users: &Vocabulary, items: &Vocabulary, x: &Interactions) -> Result<()> {
        let n = x.len();
        let mut start = 0;
        while start < n {
            let end = (start + ROWS_PER_BATCH).min(n);
            let mut ub = StringBuilder::with_capacity(end - start, (end - start) * 8);
            let mut ib = StringBuilder::with_capacity(end - start, (end - start) * 8);
            for r in start..end {
                ub.append_value(users.id(x.user[r]));
                ib.append_value(items.id(x.item[r]));
            }
            let cols: Vec<ArrayRef> = vec![
                Arc::new(ub.finish()),
                Arc::new(ib.finish()),
                Arc::new(Float32Array::from(x.weight[start..end].to_vec())),
                Arc::new(Int64Array::from(x.ts[start..end].to_vec())),
            ];
            let batch =
                RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| Error::arrow(&self.path, e))?;
            self.writer
                .write(&batch)
                .map_err(|e| Error::parquet(&self.path, e))?;
            start = end;
        }
        self.rows += n as u64;
        Ok(())
    }

    /// Closes the file (writes the footer) and returns the number of rows written.
    pub fn finish(self) -> Result<u64> {
        self.writer.close().map_err(|e| Error::parquet(&self.path, e))?;
        Ok(self.rows)
    }
}

/// Writes a whole interaction table.
pub(crate) fn write_interactions(
    path: &Path,
    users: &Vocabulary,
    items: &Vocabulary,
    x: &Interactions,
) -> Result<u64> {
    let mut w = InteractionWriter::create(path)?;
    w.write(users, items, x)?;
    w.finish()
}

fn write_batches(path: &Path, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = ArrowWriter::try_new(f, schema, Some(writer_props())).map_err(|e| Error::parquet(path, e))?;
    for b in &batches {
        w.write(b).map_err(|e| Error::parquet(path, e))?;
    }
    w.close().map_err(|e| Error::parquet(path, e))?;
    Ok(())
}

fn opt_strings(values: &[Option<String>]) -> ArrayRef {
    Arc::new(StringArray::from_iter(values.iter().map(|v| v.as_deref())))
}

pub(crate) fn write_items(path: &Path, rows: &ItemRows) -> Result<()> {
    let mut fields = vec![
        Field::new("item", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, true),
        Field::new("genres", genres_type(), false),
    ];
    for (name, _) in &rows.categorical {
        fields.push(Field::new(name, DataType::Utf8, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut genres = ListBuilder::new(StringBuilder::new());
    for g in &rows.genres {
        for v in g {
            genres.values().append_value(v);
        }
        genres.append(true);
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.ids.iter())),
        opt_strings(&rows.titles),
        Arc::new(genres.finish()),
    ];
    for (_, vals) in &rows.categorical {
        cols.push(opt_strings(vals));
    }
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::arrow(path, e))?;
    write_batches(path, schema, vec![batch])
}

pub(crate) fn write_users(path: &Path, rows: &UserRows) -> Result<()> {
    let mut fields = vec![Field::new("user", DataType::Utf8, false)];
    for (name, _) in &rows.categorical {
        fields.push(Field::new(name, DataType::Utf8, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(rows.ids.iter()))];
    for (_, vals) in &rows.categorical {
        cols.push(opt_strings(vals));
    }
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::arrow(path, e))?;
    write_batches(path, schema, vec![batch])
}

/// An open Parquet file with the arrow schema known, before choosing columns.
pub(crate) struct ParquetSource {
    path: PathBuf,
    builder: ParquetRecordBatchReaderBuilder<File>,
}

impl ParquetSource {
    pub fn open(path: &Path) -> Result<ParquetSource> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| Error::parquet(path, e))?;
        Ok(ParquetSource {
            path: path.to_path_buf(),
            builder,
        })
    }

    pub fn column_names(&self) -> Vec<String> {
        self.builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    pub fn num_rows(&self) -> u64 {
        self.builder.metadata().file_metadata().num_rows().max(0) as u64
    }

    fn missing(&self, column: &str) -> Error {
        Error::MissingColumn {
            file: self.path.clone(),
            column: column.to_string(),
            present: self.column_names().join(", "),
        }
    }

    /// Index of a top-level column, or a `MissingColumn` error listing what is there.
    pub fn require(&self, column: &str) -> Result<usize> {
        self.builder
            .schema()
            .index_of(column)
            .map_err(|_| self.missing(column))
    }

    /// Asks the decoder to return the named Utf8 columns as dictionary arrays, so repeated ids are
    /// interned once per dictionary instead of once per row (most of `Dataset::load`'s time
    /// otherwise). Columns of other types are left alone.
    pub fn with_dictionary(self, columns: &[&str]) -> Result<ParquetSource> {
        let schema = self.builder.schema().clone();
        let mut changed = false;
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                if columns.contains(&f.name().as_str()) && f.data_type() == &DataType::Utf8 {
                    changed = true;
                    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                    f.as_ref().clone().with_data_type(dict)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        if !changed {
            return Ok(self);
        }
        let hint = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let meta = self.builder.metadata().clone();
        let opts = ArrowReaderOptions::new().with_schema(hint);
        let arrow_meta =
            ArrowReaderMetadata::try_new(meta, opts).map_err(|e| Error::parquet(&self.path, e))?;
        let f = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(ParquetSource {
            builder: ParquetRecordBatchReaderBuilder::new_with_metadata(f, arrow_meta),
            path: self.path,
        })
    }

    /// A reader over the named columns (all must exist).
    pub fn read(self, columns: &[&str]) -> Result<ParquetRecordBatchReader> {
        let mut idx = Vec::with_capacity(columns.len());
        for c in columns {
            idx.push(self.require(c)?);
        }
        let mask = ProjectionMask::roots(self.builder.parquet_schema(), idx);
        let path = self.path;
        self.builder
            .with_projection(mask)
            .with_batch_size(READ_BATCH)
            .build()
            .map_err(|e| Error::parquet(&path, e))
    }
}

/// The named column of `batch` converted to `to` (casting e.g. integer ids to strings).
fn column_as(path: &Path, batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::invalid(path, format!("column {name:?} vanished from a batch")))?;
    if col.data_type() == to {
        return Ok(col.clone());
    }
    arrow::compute::cast(col, to).map_err(|e| {
        Error::invalid(
            path,
            format!(
                "column {name:?} has type {} which cannot be read as {to}: {e}",
                col.data_type()
            ),
        )
    })
}

/// An id column as Utf8, or as `Dictionary<Int32, Utf8>` when the reader produced one.
fn id_column(path: &Path, batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::invalid(path, format!("column {name:?} vanished from a batch")))?;
    match col.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => Ok(col.clone()),
        _ => column_as(path, batch, name, &DataType::Utf8),
    }
}

/// Interns string ids, skipping the hash lookup when the same id repeats (rows are grouped by user),
/// and interning a dictionary column's values once per dictionary.
pub(crate) struct Interner<'v> {
    vocab: &'v mut Vocabulary,
    last: Option<(String, u32)>,
    dict: Option<(ArrayRef, Vec<u32>)>,
}

impl<'v> Interner<'v> {
    pub(crate) fn new(vocab: &'v mut Vocabulary) -> Self {
        Interner {
            vocab,
            last: None,
            dict: None,
        }
    }

    /// Appends the dense index of every row of an id column (Utf8 or `Dictionary<Int32, Utf8>`, no
    /// nulls) to `out`.
    pub(crate) fn extend(&mut self, col: &ArrayRef, out: &mut Vec<u32>) {
        if let Some(d) = col.as_dictionary_opt::<Int32Type>() {
            let values = d.values();
            let reuse = matches!(&self.dict, Some((v, _)) if Arc::ptr_eq(v, values));
            if !reuse {
                let s = values.as_string::<i32>();
                let map = (0..s.len())
                    .map(|k| {
                        if s.is_null(k) {
                            0
                        } else {
                            self.vocab.insert(s.value(k))
                        }
                    })
                    .collect();
                self.dict = Some((values.clone(), map));
            }
            let map = &self.dict.as_ref().expect("set above").1;
            out.extend(d.keys().values().iter().map(|&k| map[k as usize]));
        } else {
            let s = col.as_string::<i32>();
            for r in 0..s.len() {
                let i = self.get(s.value(r));
                out.push(i);
            }
        }
    }
    #[inline]
    pub(crate) fn get(&mut self, s: &str) -> u32 {
        if let Some((ls, li)) = &self.last {
            if ls == s {
                return *li;
            }
        }
        let i = self.vocab.insert(s);
        match &mut self.last {
            Some((ls, li)) => {
                ls.clear();
                ls.push_str(s);
                *li = i;
            }
            None => self.last = Some((s.to_string(), i)),
        }
        i
    }
}

/// Column names of an interaction source: which columns hold user, item, weight and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InteractionColumns<'a> {
    pub user: &'a str,
    pub item: &'a str,
    pub weight: Option<&'a str>,
    pub ts: Option<&'a str>,
}

impl InteractionColumns<'static> {
    pub const CANONICAL: InteractionColumns<'static> = InteractionColumns {
        user: "user",
        item: "item",
        weight: Some("weight"),
        ts: Some("ts"),
    };
}

/// Reads interactions, interning ids into `users`/`items`. Missing weight column → 1.0; missing time
/// column → the row's position. Null ids, weights or times are errors naming the row.
pub(crate) fn read_interactions_with(
    path: &Path,
    cols: &InteractionColumns<'_>,
    users: &mut Vocabulary,
    items: &mut Vocabulary,
) -> Result<Interactions> {
    let src = ParquetSource::open(path)?.with_dictionary(&[cols.user, cols.item])?;
    let n = src.num_rows() as usize;
    let mut names = vec![cols.user, cols.item];
    names.extend(cols.weight);
    names.extend(cols.ts);
    let reader = src.read(&names)?;
    let mut out = Interactions::with_capacity(n);
    let mut ui = Interner::new(users);
    let mut ii = Interner::new(items);
    let mut row0 = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| Error::arrow(path, e))?;
        let u = id_column(path, &batch, cols.user)?;
        let i = id_column(path, &batch, cols.item)?;
        let null_row = |a: &dyn Array, what: &str| -> Result<()> {
            if a.null_count() > 0 {
                let r = (0..a.len()).find(|&r| a.is_null(r)).unwrap_or(0);
                return Err(Error::invalid(
                    path,
                    format!("row {}: {what} is null", row0 + r + 1),
                ));
            }
            Ok(())
        };
        null_row(&u, cols.user)?;
        null_row(&i, cols.item)?;
        ui.extend(&u, &mut out.user);
        ii.extend(&i, &mut out.item);
        match cols.weight {
            Some(w) => {
                let a = column_as(path, &batch, w, &DataType::Float32)?;
                null_row(&a, w)?;
                out.weight
                    .extend_from_slice(a.as_primitive::<Float32Type>().values());
            }
            None => out.weight.resize(out.weight.len() + batch.num_rows(), 1.0),
        }
        match cols.ts {
            Some(t) => {
                let a = column_as(path, &batch, t, &DataType::Int64)?;
                null_row(&a, t)?;
                out.ts.extend_from_slice(a.as_primitive::<Int64Type>().values());
            }
            None => out.ts.extend((row0..row0 + batch.num_rows()).map(|r| r as i64)),
        }
        row0 += batch.num_rows();
    }
    Ok(out)
}

/// Reads a canonical interaction file (interactions/train/test.parquet).
pub(crate) fn read_interactions(
    path: &Path,
    users: &mut Vocabulary,
    items: &mut Vocabulary,
) -> Result<Interactions> {
    read_interactions_with(path, &InteractionColumns::CANONICAL, users, items)
}

fn strings_opt(a: &ArrayRef) -> impl Iterator<Item = Option<String>> + '_ {
    let s = a.as_string::<i32>();
    (0..s.len()).map(move |r| (!s.is_null(r)).then(|| s.value(r).to_string()))
}

/// True for types an id column may have: integers and strings (plain or dictionary-encoded).
pub(crate) fn is_id_type(dt: &DataType) -> bool {
    match dt {
        DataType::Dictionary(_, v) => is_id_type(v),
        d => d.is_integer() || matches!(d, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
    }
}

fn read_ids(path: &Path, batch: &RecordBatch, col: &str, row0: usize) -> Result<Vec<String>> {
    if let Some(c) = batch.column_by_name(col) {
        if !is_id_type(c.data_type()) {
            return Err(Error::invalid(
                path,
                format!(
                    "column {col:?} has type {}: an id column must hold integers or strings",
                    c.data_type()
                ),
            ));
        }
    }
    let a = column_as(path, batch, col, &DataType::Utf8)?;
    let s = a.as_string::<i32>();
    let mut out = Vec::with_capacity(s.len());
    for r in 0..s.len() {
        if s.is_null(r) {
            return Err(Error::invalid(
                path,
                format!("row {}: {col} is null", row0 + r + 1),
            ));
        }
        out.push(s.value(r).to_string());
    }
    Ok(out)
}

/// Reads an items file: `id_col` (required), `title` and `genres` (optional), every other column as a
/// categorical string column.
pub(crate) fn read_items(path: &Path, id_col: &str) -> Result<ItemRows> {
    let src = ParquetSource::open(path)?;
    src.require(id_col)?;
    let names = src.column_names();
    let cat_names: Vec<String> = names
        .iter()
        .filter(|n| *n != id_col && *n != "title" && *n != "genres")
        .cloned()
        .collect();
    let has_title = names.iter().any(|n| n == "title");
    let has_genres = names.iter().any(|n| n == "genres");
    let all: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let reader = src.read(&all)?;
    let mut rows = ItemRows {
        categorical: cat_names.iter().map(|n| (n.clone(), Vec::new())).collect(),
        ..Default::default()
    };
    for batch in reader {
        let batch = batch.map_err(|e| Error::arrow(path, e))?;
        let row0 = rows.ids.len();
        rows.ids.extend(read_ids(path, &batch, id_col, row0)?);
        if has_title {
            let t = column_as(path, &batch, "title", &DataType::Utf8)?;
            rows.titles.extend(strings_opt(&t));
        } else {
            rows.titles.resize(rows.ids.len(), None);
        }
        if has_genres {
            let g = column_as(path, &batch, "genres", &genres_type())?;
            let l = g.as_list::<i32>();
            for r in 0..l.len() {
                if l.is_null(r) {
                    rows.genres.push(Vec::new());
                    continue;
                }
                let v = l.value(r);
                let s = v.as_string::<i32>();
                rows.genres.push(
                    (0..s.len())
                        .filter(|&k| !s.is_null(k))
                        .map(|k| s.value(k).to_string())
                        .collect(),
                );
            }
        } else {
            rows.genres.resize(rows.ids.len(), Vec::new());
        }
        for (name, vals) in rows.categorical.iter_mut() {
            let c = column_as(path, &batch, name, &DataType::Utf8)?;
            vals.extend(strings_opt(&c));
        }
    }
    Ok(rows)
}

/// Reads a users file: `id_col` (required), every other column as a categorical string column.
pub(crate) fn read_users(path: &Path, id_col: &str) -> Result<UserRows> {
    let src = ParquetSource::open(path)?;
    src.require(id_col)?;
    let names = src.column_names();
    let all: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let reader = src.read(&all)?;
    let mut rows = UserRows {
        categorical: names
            .iter()
            .filter(|n| *n != id_col)
            .map(|n| (n.clone(), Vec::new()))
            .collect(),
        ..Default::default()
    };
    for batch in reader {
        let batch = batch.map_err(|e| Error::arrow(path, e))?;
        let row0 = rows.ids.len();
        rows.ids.extend(read_ids(path, &batch, id_col, row0)?);
        for (name, vals) in rows.categorical.iter_mut() {
            let c = column_as(path, &batch, name, &DataType::Utf8)?;
            vals.extend(strings_opt(&c));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactions_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("i.parquet");
        let users = Vocabulary::from_ids(["u1", "u2"]);
        let items = Vocabulary::from_ids(["a", "b", "c"]);
        let mut x = Interactions::default();
        x.push(0, 2, 4.0, 100);
        x.push(1, 0, 1.0, 50);
        x.push(1, 1, 2.5, -3);
        assert_eq!(write_interactions(&p, &users, &items, &x).unwrap(), 3);
        let (mut u2, mut i2) = (Vocabulary::new(), Vocabulary::from_ids(["b"]));
        let y = read_interactions(&p, &mut u2, &mut i2).unwrap();
        assert_eq!(u2.ids(), &["u1", "u2"]);
        assert_eq!(i2.ids(), &["b", "c", "a"]);
        assert_eq!(y.user, vec![0, 1, 1]);
        assert_eq!(y.item, vec![1, 2, 0]);
        assert_eq!(y.weight, x.weight);
        assert_eq!(y.ts, x.ts);
    }

    #[test]
    fn items_and_users_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let items = ItemRows {
            ids: vec!["1".into(), "2".into()],
            titles: vec![Some("Amélie (2001)".into()), None],
            genres: vec![vec!["Comedy".into(), "Romance".into()], vec![]],
            categorical: vec![("year".into(), vec![Some("2001".into()), None])],
        };
        let p = d.path().join("items.parquet");
        write_items(&p, &items).unwrap();
        assert_eq!(read_items(&p, "item").unwrap(), items);
        let users = UserRows {
            ids: vec!["x".into()],
            categorical: vec![("gender".into(), vec![Some("F".into())])],
        };
        let p = d.path().join("users.parquet");
        write_users(&p, &users).unwrap();
        assert_eq!(read_users(&p, "user").unwrap(), users);
        let e = read_users(&p, "uid").unwrap_err();
        assert!(e.to_string().contains("no column named \"uid\""), "{e}");
        assert!(e.to_string().contains("user, gender"), "{e}");
    }
}
