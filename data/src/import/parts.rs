//! What Spark, DuckDB, pandas and polars write: one Parquet file, a directory of part files, or a
//! hive-partitioned tree (`dt=2024-01-01/part-00000-….snappy.parquet`). [`discover`] lists the part
//! files in sorted path order with the `key=value` pairs of the directories above them; bookkeeping
//! files (`_SUCCESS`, `_committed_*`, `_started_*`, `*.crc`, anything starting with `_` or `.`) and
//! directories starting with `_` or `.` (`_temporary`, `.spark-staging`) are skipped.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Hive's name for a null partition value.
const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// One Parquet file of a source, with its partition values (outermost first; `None` for Hive's
/// null partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub path: PathBuf,
    pub partition: Vec<(String, Option<String>)>,
}

impl Part {
    /// The value of partition key `key` for this part, if the key is one of its directories.
    pub fn partition_value(&self, key: &str) -> Option<Option<&str>> {
        self.partition
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
}

/// True for names no reader should open: `_SUCCESS`, `_committed_*`, `_started_*`, `*.crc`, and every
/// name starting with `_` or `.` (checksums, markers, hidden and temporary files).
pub(crate) fn is_skipped_name(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.') || name.ends_with(".crc")
}

fn is_parquet_name(name: &str) -> bool {
    name.len() > ".parquet".len()
        && name
            .get(name.len() - ".parquet".len()..)
            .is_some_and(|e| e.eq_ignore_ascii_case(".parquet"))
}

/// `key=value` of a directory name (value percent-decoded as Hive and Spark escape it).
pub(crate) fn partition_pair(dir_name: &str) -> Option<(String, Option<String>)> {
    let (k, v) = dir_name.split_once('=')?;
    if k.is_empty() {
        return None;
    }
    let v = percent_decode(v);
    Some((percent_decode(k), (v != HIVE_NULL).then_some(v)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every part file of `src`: `src` itself when it is a file, else each `*.parquet` beneath it in
/// sorted path order. An empty directory is an error.
pub(crate) fn discover(src: &Path) -> Result<Vec<Part>> {
    let meta = std::fs::metadata(src).map_err(|e| Error::io(src, e))?;
    if !meta.is_dir() {
        return Ok(vec![Part {
            path: src.to_path_buf(),
            partition: Vec::new(),
        }]);
    }
    let mut parts = Vec::new();
    walk(src, &mut Vec::new(), &mut parts)?;
    if parts.is_empty() {
        return Err(Error::Empty {
            file: src.to_path_buf(),
            what:
                "no .parquet files in this directory or beneath it (names starting with _ or . are skipped)"
                    .into(),
        });
    }
    Ok(parts)
}

fn walk(dir: &Path, partition: &mut Vec<(String, Option<String>)>, out: &mut Vec<Part>) -> Result<()> {
    let mut entries: Vec<(String, PathBuf, bool)> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_skipped_name(&name) {
            continue;
        }
        let p = e.path();
        // Follows symlinks, as readers of such trees do.
        let is_dir = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.is_dir();
        entries.push((name, p, is_dir));
    }
    entries.sort();
    for (name, p, is_dir) in entries {
        if is_dir {
            let pair = partition_pair(&name);
            let pushed = pair.is_some();
            if let Some(kv) = pair {
                partition.push(kv);
            }
            walk(&p, partition, out)?;
            if pushed {
                partition.pop();
            }
        } else if is_parquet_name(&name) {
            out.push(Part {
                path: p,
                partition: partition.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn skipped_names() {
        for n in [
            "_SUCCESS",
            "_committed_123",
            "_started_123",
            ".part-00000.snappy.parquet.crc",
            "part-0.parquet.crc",
            "_metadata",
            "_common_metadata",
            ".hidden.parquet",
            "_temporary",
        ] {
            assert!(is_skipped_name(n), "{n}");
        }
        for n in [
            "part-00000-abc.c000.snappy.parquet",
            "data_0.parquet",
            "dt=2024-01-01",
        ] {
            assert!(!is_skipped_name(n), "{n}");
        }
        assert!(is_parquet_name("a.PARQUET"));
        assert!(!is_parquet_name(".parquet"));
        assert!(!is_parquet_name("a.parquet.crc"));
        assert!(!is_parquet_name("a.csv"));
    }

    #[test]
    fn partition_pairs_decode_and_null() {
        assert_eq!(
            partition_pair("dt=2024-01-01"),
            Some(("dt".into(), Some("2024-01-01".into())))
        );
        assert_eq!(
            partition_pair("ts=2024-01-01 10%3A00%3A00"),
            Some(("ts".into(), Some("2024-01-01 10:00:00".into())))
        );
        assert_eq!(
            partition_pair("country=__HIVE_DEFAULT_PARTITION__"),
            Some(("country".into(), None))
        );
        assert_eq!(partition_pair("a=b=c"), Some(("a".into(), Some("b=c".into()))));
        assert_eq!(partition_pair("plain"), None);
        assert_eq!(partition_pair("=x"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn discovers_sorted_parts_under_partitions_and_skips_bookkeeping() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for p in [
            "dt=2024-01-02/part-00000.snappy.parquet",
            "dt=2024-01-01/part-00001.snappy.parquet",
            "dt=2024-01-01/part-00000.snappy.parquet",
            "dt=2024-01-01/.part-00000.snappy.parquet.crc",
            "dt=2024-01-01/country=fr/part-0.parquet",
            "_SUCCESS",
            "_committed_1",
            "_started_1",
            "_temporary/0/part-9.parquet",
            ".spark-staging/part-9.parquet",
            "notes.txt",
        ] {
            let f = r.join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(&f, b"x").unwrap();
        }
        let parts = discover(r).unwrap();
        let names: Vec<String> = parts
            .iter()
            .map(|p| p.path.strip_prefix(r).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "dt=2024-01-01/country=fr/part-0.parquet",
                "dt=2024-01-01/part-00000.snappy.parquet",
                "dt=2024-01-01/part-00001.snappy.parquet",
                "dt=2024-01-02/part-00000.snappy.parquet",
            ]
        );
        assert_eq!(
            parts[0].partition,
            vec![
                ("dt".to_string(), Some("2024-01-01".to_string())),
                ("country".to_string(), Some("fr".to_string()))
            ]
        );
        assert_eq!(parts[3].partition_value("dt"), Some(Some("2024-01-02")));
        assert_eq!(parts[3].partition_value("country"), None);

        let single = discover(&r.join("dt=2024-01-01/part-00000.snappy.parquet")).unwrap();
        assert_eq!(single.len(), 1);
        assert!(single[0].partition.is_empty());

        let empty = tempfile::tempdir().unwrap();
        fs::write(empty.path().join("_SUCCESS"), b"").unwrap();
        let e = discover(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no .parquet files"), "{e}");
    }
}
