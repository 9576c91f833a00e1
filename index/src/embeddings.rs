//! The one (id, vector) Parquet format: `id: Utf8`, `vector: FixedSizeList<Float32, d>`, and an
//! optional `kind: Utf8` (`user` / `item`) when users and items share a file. It is an index
//! version's `embeddings.parquet` (its own record of its vectors, which the exact index and `check`
//! read), what `twotower embed` writes for pandas, polars and DuckDB, and what `bench ann` reads.
//! Readers also take the id column under its older name `item` (index versions written before the
//! rename).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// File name inside a version directory.
pub const EMBEDDINGS_FILE: &str = "embeddings.parquet";
const BATCH_ROWS: usize = 64 * 1024;

/// The id column, and the name older index versions gave it.
const ID_COLUMNS: [&str; 2] = ["id", "item"];

fn schema(dim: usize, with_kind: bool) -> Schema {
    let mut fields = vec![
        Field::new(ID_COLUMNS[0], DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), dim as i32),
            false,
        ),
    ];
    if with_kind {
        fields.push(Field::new("kind", DataType::Utf8, false));
    }
    Schema::new(fields)
}

/// The file under the parquet writer, keeping the first I/O error it hit, so a full disk is
/// reported as the I/O error it is rather than as whatever the parquet writer wraps it in.
struct Recording {
    file: File,
    error: Arc<Mutex<Option<std::io::Error>>>,
}

impl Recording {
    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.file.write(buf);
        self.note(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.file.flush();
        self.note(r)
    }
}

/// Writes `ids` and row-major `rows` (ids.len() × dim) to `path`, fsynced. A failed write (a full
/// disk, say) is an [`Error::Io`] naming `path`.
pub fn write_embeddings(path: &Path, ids: &[String], rows: &[f32], dim: usize) -> Result<()> {
    write_embeddings_with_kinds(path, ids, None, rows, dim)
}

/// [`write_embeddings`] with a `kind` per row (users and items in one file).
pub fn write_embeddings_with_kinds(
    path: &Path,
    ids: &[String],
    kinds: Option<&[&str]>,
    rows: &[f32],
    dim: usize,
) -> Result<()> {
    if ids.len() * dim != rows.len() || kinds.is_some_and(|k| k.len() != ids.len()) {
        return Err(Error::Write {
            path: path.to_path_buf(),
            problem: format!(
                "{} ids, {} kinds and {} values do not make rows of dimension {dim}",
                ids.len(),
                kinds.map_or(ids.len(), <[&str]>::len),
                rows.len()
            ),
        });
    }
    let io_error = Arc::new(Mutex::new(None::<std::io::Error>));
    let pq =
        |e: parquet::errors::ParquetError| match io_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(io) => Error::io(path, io),
            None => Error::Write {
                path: path.to_path_buf(),
                problem: format!("writing parquet: {e}"),
            },
        };
    let ar = |e: arrow::error::ArrowError| Error::Write {
        path: path.to_path_buf(),
        problem: format!("building arrow batch: {e}"),
    };
    let schema = Arc::new(schema(dim, kinds.is_some()));
    let file = Recording {
        file: File::create(path).map_err(|e| Error::io(path, e))?,
        error: io_error.clone(),
    };
    // Float vectors do not compress or dictionary-encode usefully; plain pages load fastest.
    let props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .build();
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(pq)?;
    let elem = Arc::new(Field::new("item", DataType::Float32, false));
    for start in (0..ids.len()).step_by(BATCH_ROWS) {
        let end = (start + BATCH_ROWS).min(ids.len());
        let values = Float32Array::from(rows[start * dim..end * dim].to_vec());
        let list =
            FixedSizeListArray::try_new(elem.clone(), dim as i32, Arc::new(values), None).map_err(ar)?;
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(ids[start..end].iter())),
            Arc::new(list),
        ];
        if let Some(k) = kinds {
            cols.push(Arc::new(StringArray::from_iter_values(k[start..end].iter())));
        }
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(ar)?;
        w.write(&batch).map_err(pq)?;
    }
    let file = w.into_inner().map_err(pq)?;
    file.file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// Reads a file written by [`write_embeddings`]: (ids, row-major vectors). Checks the schema and
/// that the dimension is `dim`; the error names the file and the problem.
pub fn read_embeddings(path: &Path, dim: usize) -> Result<(Vec<String>, Vec<f32>)> {
    let (ids, rows, got) = read_embeddings_any(path)?;
    if got != dim && !ids.is_empty() {
        return Err(Error::corrupt(
            path,
            format!("vectors have dimension {got}, manifest says {dim}"),
        ));
    }
    Ok((ids, rows))
}

/// Reads (id, vector) rows of any dimension (the file's): ids, row-major vectors and the dimension.
/// Every row must have the same dimension; a null id or vector is an error naming its row.
pub fn read_embeddings_any(path: &Path) -> Result<(Vec<String>, Vec<f32>, usize)> {
    let bad = |problem: String| Error::corrupt(path, problem);
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(format!("not a readable parquet file: {e}")))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    let mut dim = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| bad(format!("cannot read batch: {e}")))?;
        let seen = ids.len();
        let items = ID_COLUMNS
            .iter()
            .find_map(|c| batch.column_by_name(c))
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| bad("no Utf8 id column (`id`, or `item` in older files)".into()))?;
        let vectors = batch
            .column_by_name("vector")
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
            .ok_or_else(|| bad("column `vector` missing or not FixedSizeList<Float32>".into()))?;
        let d = vectors.value_length() as usize;
        if d == 0 {
            return Err(bad("vectors of dimension 0".into()));
        }
        if dim == 0 {
            dim = d;
        } else if d != dim {
            return Err(bad(format!("row {seen}: dimension {d}, earlier rows have {dim}")));
        }
        if let Some(r) = (0..batch.num_rows()).find(|&r| items.is_null(r) || vectors.is_null(r)) {
            return Err(bad(format!("row {}: null id or vector", seen + r)));
        }
        let values = vectors
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| bad("vector elements are not Float32".into()))?;
        let off = vectors.offset() * dim;
        rows.extend_from_slice(&values.values()[off..off + vectors.len() * dim]);
        ids.extend(items.iter().map(|s| s.unwrap_or_default().to_string()));
    }
    Ok((ids, rows, dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(EMBEDDINGS_FILE);
        let ids: Vec<String> = (0..70_000).map(|i| format!("item{i}")).collect();
        let rows: Vec<f32> = (0..70_000 * 3).map(|i| i as f32).collect();
        write_embeddings(&p, &ids, &rows, 3).unwrap();
        let (i2, r2) = read_embeddings(&p, 3).unwrap();
        assert_eq!(i2, ids);
        assert_eq!(r2, rows);
        assert!(read_embeddings(&p, 4)
            .unwrap_err()
            .to_string()
            .contains("dimension 3"));
    }

    /// Files with a kind column, and index versions that named the id column `item`, read back.
    #[test]
    fn kinds_and_the_older_column_name_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mixed.parquet");
        let ids: Vec<String> = ["i1", "u1"].iter().map(|s| s.to_string()).collect();
        write_embeddings_with_kinds(&p, &ids, Some(&["item", "user"]), &[1.0, 2.0, 3.0, 4.0], 2).unwrap();
        assert_eq!(
            read_embeddings_any(&p).unwrap(),
            (ids.clone(), vec![1.0, 2.0, 3.0, 4.0], 2)
        );
        // The older layout: `item` instead of `id`.
        let old = dir.path().join("old.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("item", DataType::Utf8, false),
            Field::new(
                "vector",
                DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), 2),
                false,
            ),
        ]));
        let list = FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::Float32, false)),
            2,
            Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0, 4.0])),
            None,
        )
        .unwrap();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(ids.iter())),
                Arc::new(list),
            ],
        )
        .unwrap();
        let mut w = ArrowWriter::try_new(File::create(&old).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        assert_eq!(read_embeddings(&old, 2).unwrap(), (ids, vec![1.0, 2.0, 3.0, 4.0]));
    }

    /// A full disk (`/dev/full` fails every write with ENOSPC) is an I/O error naming the file, not
    /// a "corrupt index file".
    #[test]
    #[cfg(target_os = "linux")]
    fn a_full_disk_is_an_io_error() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let ids: Vec<String> = (0..100_000).map(|i| format!("item{i}")).collect();
        let rows = vec![0.5f32; 100_000 * 8];
        let err = write_embeddings(full, &ids, &rows, 8).unwrap_err();
        match &err {
            Error::Io { path, source } => {
                assert_eq!(path, full);
                assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{err}");
            }
            other => panic!("not an I/O error: {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("/dev/full") && !text.contains("corrupt"), "{text}");
    }
}
