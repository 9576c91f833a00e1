//! Output of batch recommendations: rows (user, rank, item, score) streamed to Parquet or JSON lines,
//! written under a temporary name and renamed into place, so a crash or Ctrl-C never leaves a
//! half-written file where a finished one is expected. Every error names the output file and removes
//! the temporary; temporaries of writers that died (kill -9) are removed by the next writer.

use anyhow::{bail, Context, Result};
use arrow::array::{ArrayRef, Float32Array, StringBuilder, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twotower_data::AtomicFile;

/// One user's ranked list, ready to write.
pub struct UserRecs<'a> {
    /// The user id as it appears in the dataset.
    pub user: &'a str,
    /// (item id, score), best first.
    pub items: Vec<(&'a str, f32)>,
}

enum Sink {
    Parquet(Box<ArrowWriter<File>>),
    Jsonl(BufWriter<File>),
}

/// Streams recommendation rows to `path` (format from the extension: `.parquet` or `.jsonl`).
pub struct RecWriter {
    sink: Option<Sink>,
    /// The temporary the sink writes, renamed into place by `finish` (removed when dropped).
    out: Option<AtomicFile>,
    path: PathBuf,
    schema: Arc<Schema>,
    rows: u64,
}

impl RecWriter {
    /// Opens a temporary file beside `path`; nothing appears at `path` until [`RecWriter::finish`].
    pub fn create(path: &Path) -> Result<RecWriter> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let (out, file) = AtomicFile::create(path).with_context(|| format!("writing {}", path.display()))?;
        let schema = Arc::new(Schema::new(vec![
            Field::new("user", DataType::Utf8, false),
            Field::new("rank", DataType::UInt32, false),
            Field::new("item", DataType::Utf8, false),
            Field::new("score", DataType::Float32, false),
        ]));
        let sink = match ext {
            "parquet" => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                let w = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .with_context(|| format!("writing {}", path.display()))?;
                Sink::Parquet(Box::new(w))
            }
            "jsonl" | "json" | "ndjson" => Sink::Jsonl(BufWriter::new(file)),
            other => {
                bail!(
                    "{}: unknown output format {other:?}; use .parquet or .jsonl",
                    path.display()
                )
            }
        };
        Ok(RecWriter {
            sink: Some(sink),
            out: Some(out),
            path: path.to_path_buf(),
            schema,
            rows: 0,
        })
    }

    /// Appends a block of users' lists (one Parquet record batch). On error the temporary is removed.
    pub fn write(&mut self, block: &[UserRecs<'_>]) -> Result<()> {
        let r = self.write_block(block);
        if r.is_err() {
            self.discard();
        }
        r.with_context(|| format!("writing {}", self.path.display()))
    }

    fn write_block(&mut self, block: &[UserRecs<'_>]) -> Result<()> {
        match self.sink.as_mut().expect("writer used after finish") {
            Sink::Jsonl(w) => {
                for u in block {
                    for (rank, (item, score)) in u.items.iter().enumerate() {
                        let row = serde_json::json!({"user": u.user, "rank": rank + 1, "item": item, "score": score});
                        writeln!(w, "{row}")?;
                        self.rows += 1;
                    }
                }
            }
            Sink::Parquet(w) => {
                let n: usize = block.iter().map(|u| u.items.len()).sum();
                let mut users = StringBuilder::with_capacity(n, n * 8);
                let mut items = StringBuilder::with_capacity(n, n * 8);
                let mut ranks = Vec::with_capacity(n);
                let mut scores = Vec::with_capacity(n);
                for u in block {
                    for (rank, (item, score)) in u.items.iter().enumerate() {
                        users.append_value(u.user);
                        items.append_value(item);
                        ranks.push(rank as u32 + 1);
                        scores.push(*score);
                    }
                }
                let cols: Vec<ArrayRef> = vec![
                    Arc::new(users.finish()),
                    Arc::new(UInt32Array::from(ranks)),
                    Arc::new(items.finish()),
                    Arc::new(Float32Array::from(scores)),
                ];
                w.write(&RecordBatch::try_new(self.schema.clone(), cols)?)?;
                self.rows += n as u64;
            }
        }
        Ok(())
    }

    /// Flushes, fsyncs and renames the file into place; returns the number of rows written. On
    /// error (a full disk, say) the temporary is removed and the error names the output file.
    pub fn finish(mut self) -> Result<u64> {
        let r = self.finish_inner();
        if r.is_err() {
            self.discard();
        }
        r.with_context(|| format!("writing {}", self.path.display()))
    }

    fn finish_inner(&mut self) -> Result<u64> {
        let file = match self.sink.take().expect("finish called twice") {
            Sink::Parquet(w) => w.into_inner()?,
            Sink::Jsonl(w) => w.into_inner().map_err(|e| e.into_error())?,
        };
        file.sync_all()?;
        drop(file);
        self.out.take().expect("finish called twice").commit()?;
        Ok(self.rows)
    }

    /// Drops the sink and removes the temporary.
    fn discard(&mut self) {
        self.sink = None;
        self.out = None;
    }
}

impl Drop for RecWriter {
    fn drop(&mut self) {
        if self.sink.is_some() {
            // Not finished (an error or an interrupt): leave nothing behind.
            self.discard();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn block() -> Vec<UserRecs<'static>> {
        vec![
            UserRecs {
                user: "u1",
                items: vec![("a", 0.9), ("b", 0.5)],
            },
            UserRecs {
                user: "u2",
                items: vec![("c", 0.7)],
            },
        ]
    }

    #[test]
    fn parquet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        let mut w = RecWriter::create(&path).unwrap();
        w.write(&block()).unwrap();
        assert!(!path.exists(), "nothing at the final name before finish");
        assert_eq!(w.finish().unwrap(), 3);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        let b = &batches[0];
        assert_eq!(b.num_rows(), 3);
        let ranks = b.column(1).as_any().downcast_ref::<UInt32Array>().unwrap();
        assert_eq!(ranks.values().to_vec(), vec![1, 2, 1]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn jsonl_rows_and_unfinished_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut w = RecWriter::create(&path).unwrap();
        w.write(&block()).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["user"], "u1");
        assert_eq!(first["rank"], 1);
        assert_eq!(text.lines().count(), 3);

        let other = dir.path().join("dropped.jsonl");
        let mut w = RecWriter::create(&other).unwrap();
        w.write(&block()).unwrap();
        drop(w);
        assert!(!other.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporaries_of_dead_writers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        // Above the kernel's pid_max: no process can have it (a just-reaped pid could be reused).
        let dead = i32::MAX as u32;
        let stale = dir.path().join(format!(".out.jsonl.tmp-{dead}-1-2"));
        let other = dir.path().join(format!(".other.jsonl.tmp-{dead}-1-2"));
        for p in [&stale, &other] {
            std::fs::write(p, b"half").unwrap();
        }
        let w = RecWriter::create(&path).unwrap();
        assert!(!stale.exists(), "a dead writer's temporary is removed");
        assert!(other.exists(), "another output's temporary is left alone");
        let ours = |d: &Path| {
            std::fs::read_dir(d)
                .unwrap()
                .filter(|e| {
                    let n = e.as_ref().unwrap().file_name();
                    n.to_string_lossy()
                        .starts_with(&format!(".out.jsonl.tmp-{}-", std::process::id()))
                })
                .count()
        };
        assert_eq!(ours(dir.path()), 1, "our own temporary is the one being written");
        w.finish().unwrap();
        assert_eq!(ours(dir.path()), 0);
    }

    #[test]
    fn unknown_extension_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = RecWriter::create(&dir.path().join("x.csv"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown output format"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
