//! `embeddings.parquet`: the version's rows as (item: Utf8, vector: FixedSizeList<Float32, d>).
//! It is the index's own record of its vectors (the exact index and `check` read it) and the export
//! format for other engines.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// File name inside a version directory.
pub const EMBEDDINGS_FILE: &str = "embeddings.parquet";
const BATCH_ROWS: usize = 64 * 1024;

fn schema(dim: usize) -> Schema {
    Schema::new(vec![
        Field::new("item", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), dim as i32),
            false,
        ),
    ])
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

/// Writes `ids` and row-major `rows` (ids.len() × dim) to `path`. A failed write (a full disk, say)
/// is an [`Error::Io`] naming `path`.
pub fn write_embeddings(path: &Path, ids: &[String], rows: &[f32], dim: usize) -> Result<()> {
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
    let schema = Arc::new(schema(dim));
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
        let items = StringArray::from_iter_values(ids[start..end].iter());
        let values = Float32Array::from(rows[start * dim..end * dim].to_vec());
        let list =
            FixedSizeListArray::try_new(elem.clone(), dim as i32, Arc::new(values), None).map_err(ar)?;
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(items), Arc::new(list)]).map_err(ar)?;
        w.write(&batch).map_err(pq)?;
    }
    let file = w.into_inner().map_err(pq)?;
    file.file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// Reads a file written by [`write_embeddings`]: (ids, row-major vectors). Checks the schema and
/// that the dimension is `dim`; the error names the file and the problem.
pub fn read_embeddings(path: &Path, dim: usize) -> Result<(Vec<String>, Vec<f32>)> {
    let bad = |problem: String| Error::corrupt(path, problem);
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(format!("not a readable parquet file: {e}")))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(format!("cannot read batch: {e}")))?;
        let items = batch
            .column_by_name("item")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| bad("column `item` missing or not Utf8".into()))?;
        let vectors = batch
            .column_by_name("vector")
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
            .ok_or_else(|| bad("column `vector` missing or not FixedSizeList<Float32>".into()))?;
        if vectors.value_length() as usize != dim {
            return Err(bad(format!(
                "vectors have dimension {}, manifest says {dim}",
                vectors.value_length()
            )));
        }
        if items.null_count() > 0 || vectors.null_count() > 0 {
            return Err(bad("null item or vector".into()));
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
    Ok((ids, rows))
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
