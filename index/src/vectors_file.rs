//! A version's vectors as one flat file (`vectors.f32`), mapped on open instead of decoded from
//! `embeddings.parquet`: the search reads rows straight from the page cache, and opening a
//! 1 M-row version reads a 64-byte header.
//!
//! ```text
//! magic      8 bytes  "TTVECS\0\0"
//! version    u32      VECTORS_FILE_VERSION (1)
//! dim        u32      vector dimension
//! rows       u64      n
//! reserved   40 bytes zero (the vectors start at byte 64, aligned for any f32 view)
//! vectors    n × dim × f32, little-endian, row-major, unit length
//! ```
//! Nothing may follow. `embeddings.parquet` stays beside it, with the same rows in the same order:
//! it is the exchange format other tools read, and `index check` verifies that both agree.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use twotower_data::mapped::{MappedFile, Slab};

use crate::error::{Error, Result};

/// File name of a version's flat vectors.
pub(crate) const VECTORS_FILE: &str = "vectors.f32";
const MAGIC: &[u8; 8] = b"TTVECS\0\0";
const VECTORS_FILE_VERSION: u32 = 1;
const HEADER: usize = 64;

/// Writes `rows` (`rows.len() / dim` vectors of `dim`) to `path` and syncs it.
pub(crate) fn write(path: &Path, rows: &[f32], dim: usize) -> Result<()> {
    let io = |e| Error::io(path, e);
    let n = rows.len().checked_div(dim).unwrap_or(0);
    let f = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VECTORS_FILE_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(dim as u32).to_le_bytes());
    header[16..24].copy_from_slice(&(n as u64).to_le_bytes());
    w.write_all(&header).map_err(io)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in rows.chunks(16 * 1024) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf).map_err(io)?;
    }
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)
}

/// Maps `path` and checks its header and size against `dim` and `rows`: the vectors themselves
/// are not read (their checksum is verified at commit and by `index check`).
pub(crate) fn open(path: &Path, dim: usize, rows: usize) -> Result<Slab<f32>> {
    let file = MappedFile::open(path)?;
    parse(&file, dim, rows).map_err(|problem| Error::corrupt(path, problem))
}

fn parse(file: &Arc<MappedFile>, dim: usize, rows: usize) -> std::result::Result<Slab<f32>, String> {
    file.check_header(HEADER, MAGIC, VECTORS_FILE_VERSION, "vectors")?;
    let b = file.bytes();
    let le32 = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let fdim = le32(12) as usize;
    let n = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
    if fdim != dim || n != rows as u64 {
        return Err(format!(
            "{n} vectors of dimension {fdim}, the version holds {rows} of dimension {dim}"
        ));
    }
    let want = rows
        .checked_mul(dim)
        .and_then(|x| x.checked_mul(4))
        .and_then(|x| x.checked_add(HEADER))
        .ok_or("size overflows")?;
    if b.len() != want {
        return Err(format!(
            "truncated or padded: {} bytes, {rows} vectors of dimension {dim} take {want}",
            b.len()
        ));
    }
    file.advise_random();
    Slab::from_file(file, HEADER, rows * dim, "vectors").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_a_mapped_view_and_bad_files_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(VECTORS_FILE);
        let rows: Vec<f32> = (0..40).map(|i| i as f32 * 0.25 - 3.0).collect();
        write(&p, &rows, 8).unwrap();
        let s = open(&p, 8, 5).unwrap();
        assert!(s.is_mapped());
        assert_eq!(&s[..], &rows[..]);
        assert!(open(&p, 8, 4).unwrap_err().to_string().contains(VECTORS_FILE));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        let e = open(&p, 8, 5).unwrap_err().to_string();
        assert!(e.contains(VECTORS_FILE) && e.contains("truncated"), "{e}");
        std::fs::write(&p, b"TTVECS").unwrap();
        assert!(open(&p, 8, 5).unwrap_err().to_string().contains("truncated"));
    }
}
