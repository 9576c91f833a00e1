//! The native graph file (`graph.links`): the [`FlatGraph`]'s neighbour lists, little-endian.
//!
//! ```text
//! magic        8 bytes  "TTGRAPH\0"
//! version      u32      GRAPH_FILE_VERSION (1)
//! dim          u32      vector dimension (the vectors themselves live in embeddings.parquet)
//! rows         u64      n
//! stride       u32      layer-0 list stride: [count, id × (stride-1)]
//! max_level    u32      top layer
//! entry        u32      entry point (a row on the top layer)
//! reserved     u32      0
//! levels       n × u8   top layer of each row, then zero padding to a multiple of 4
//! links0       n × stride × u32
//! lists        u64      number of upper-layer lists (= sum of levels)
//! offsets      (lists + 1) × u32, from 0, non-decreasing
//! links        offsets[lists] × u32
//! ```
//! Nothing may follow. The file is mapped, not read: layer 0 (nearly all of it) is searched in place.
//! Every open checks the header, the size of each section, the levels and the upper layers (a few
//! percent of the file); [`Check::Full`] (commit time, `index check`, a version a writer derives
//! from) also checks every layer-0 list (every id < n, counts ≤ stride - 1). A damaged file is an
//! [`Error::Corrupt`] naming it, never a panic or a wild walk: layer-0 reads clamp counts and skip
//! ids outside the graph.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use twotower_data::mapped::{MappedFile, Slab};

use crate::error::{Error, Result};
use crate::flat::FlatGraph;
use crate::native::MAX_LEVEL;

const MAGIC: &[u8; 8] = b"TTGRAPH\0";
/// Version of the graph file layout.
pub(crate) const GRAPH_FILE_VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 4 + 8 + 4 + 4 + 4 + 4;

/// Writes `g`'s graph (not its vectors) to `path`.
pub(crate) fn write(g: &FlatGraph, path: &Path) -> Result<()> {
    let io = |e| Error::io(path, e);
    let f = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&GRAPH_FILE_VERSION.to_le_bytes());
    header.extend_from_slice(&(g.dim as u32).to_le_bytes());
    header.extend_from_slice(&(g.len as u64).to_le_bytes());
    header.extend_from_slice(&(g.stride as u32).to_le_bytes());
    header.extend_from_slice(&(g.max_level as u32).to_le_bytes());
    header.extend_from_slice(&g.entry.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    w.write_all(&header).map_err(io)?;
    w.write_all(&g.levels).map_err(io)?;
    w.write_all(&vec![0u8; pad4(g.len)]).map_err(io)?;
    write_u32s(&mut w, &g.links0).map_err(io)?;
    let lists = g.upper_offsets.len().saturating_sub(1) as u64;
    w.write_all(&lists.to_le_bytes()).map_err(io)?;
    write_u32s(&mut w, &g.upper_offsets).map_err(io)?;
    write_u32s(&mut w, &g.upper_links).map_err(io)?;
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn write_u32s(w: &mut impl Write, v: &[u32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in v.chunks(16 * 1024) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// A cursor that turns running off the end into an error.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {what} needs {n} bytes at offset {}, file has {}",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn u32s(&mut self, count: u64, what: &str) -> std::result::Result<Vec<u32>, String> {
        let bytes = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(4))
            .ok_or_else(|| format!("{what}: {count} entries is impossible"))?;
        let raw = self.take(bytes, what)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
}

/// How much of a graph file an open checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Header, section sizes, levels and upper layers: what every open does.
    Structure,
    /// Also every layer-0 list.
    Full,
}

/// Maps `path` and pairs it with `rows` (n × `dim` unit vectors, from the version's vectors).
pub(crate) fn read(path: &Path, dim: usize, rows: Slab<f32>, check: Check) -> Result<FlatGraph> {
    let file = MappedFile::open(path)?;
    parse(&file, dim, rows, check).map_err(|problem| Error::corrupt(path, problem))
}

fn parse(
    file: &Arc<MappedFile>,
    dim: usize,
    rows: Slab<f32>,
    check: Check,
) -> std::result::Result<FlatGraph, String> {
    let bytes = file.bytes();
    let mut r = Reader { bytes, pos: 0 };
    if r.take(8, "magic")? != MAGIC {
        return Err("not a twotower graph file (bad magic)".into());
    }
    let version = r.u32("version")?;
    if version != GRAPH_FILE_VERSION {
        return Err(format!(
            "graph file version {version}, this build reads {GRAPH_FILE_VERSION}"
        ));
    }
    let fdim = r.u32("dim")? as usize;
    let n = r.u64("rows")?;
    let stride = r.u32("stride")? as usize;
    let max_level = r.u32("max_level")? as usize;
    let entry = r.u32("entry")?;
    let _reserved = r.u32("reserved")?;
    if dim == 0 || !rows.len().is_multiple_of(dim) {
        return Err(format!("{} floats are not rows of dimension {dim}", rows.len()));
    }
    let expected = (rows.len() / dim) as u64;
    if fdim != dim || n != expected {
        return Err(format!(
            "graph of {n} rows of dimension {fdim}, the embeddings hold {expected} of dimension {dim}"
        ));
    }
    let n = n as usize;
    if n == 0 {
        if r.u64("upper list count")? != 0 || r.u32s(1, "upper offsets")? != [0] || r.pos != bytes.len() {
            return Err("an empty graph with lists".into());
        }
        return Ok(FlatGraph::empty(dim));
    }
    if n > u32::MAX as usize {
        return Err(format!("{n} rows do not fit u32 ids"));
    }
    if stride == 0 {
        return Err("layer-0 stride 0".into());
    }
    if max_level > MAX_LEVEL as usize {
        return Err(format!("top layer {max_level} above {MAX_LEVEL}"));
    }
    let levels = r.take(n, "levels")?.to_vec();
    r.take(pad4(n), "padding")?;
    if let Some((row, &l)) = levels.iter().enumerate().find(|(_, &l)| l as usize > max_level) {
        return Err(format!("row {row} on layer {l}, above the top layer {max_level}"));
    }
    if entry as usize >= n {
        return Err(format!("entry point {entry} outside 0..{n}"));
    }
    if levels[entry as usize] as usize != max_level {
        return Err(format!(
            "entry point {entry} is on layer {}, not the top layer {max_level}",
            levels[entry as usize]
        ));
    }
    let total0 = (n as u64)
        .checked_mul(stride as u64)
        .and_then(|t| usize::try_from(t).ok())
        .ok_or("layer-0 size overflows")?;
    let links0_at = r.pos;
    r.take(
        total0.checked_mul(4).ok_or("layer-0 size overflows")?,
        "layer-0 lists",
    )?;
    let links0: Slab<u32> =
        Slab::from_file(file, links0_at, total0, "layer-0 lists").map_err(|e| e.to_string())?;
    let n32 = n as u32;
    if check == Check::Full {
        for (row, list) in links0.chunks_exact(stride).enumerate() {
            let c = list[0] as usize;
            if c > stride - 1 {
                return Err(format!(
                    "row {row}: {c} layer-0 links, more than the stride allows ({})",
                    stride - 1
                ));
            }
            if let Some(&bad) = list[1..=c].iter().find(|&&id| id >= n32) {
                return Err(format!("row {row}: layer-0 neighbour {bad} outside 0..{n}"));
            }
        }
    }
    let lists = r.u64("upper list count")?;
    let want_lists: u64 = levels.iter().map(|&l| u64::from(l)).sum();
    if lists != want_lists {
        return Err(format!("{lists} upper-layer lists, the levels need {want_lists}"));
    }
    let upper_offsets = r.u32s(lists + 1, "upper offsets")?;
    if upper_offsets[0] != 0 || upper_offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err("upper offsets do not start at 0 and grow".into());
    }
    let upper_links = r.u32s(u64::from(*upper_offsets.last().unwrap()), "upper links")?;
    if r.pos != bytes.len() {
        return Err(format!(
            "{} unexpected bytes after the graph",
            bytes.len() - r.pos
        ));
    }
    let g = FlatGraph::assemble(
        dim,
        rows,
        stride,
        links0,
        levels,
        upper_offsets,
        upper_links,
        entry,
        max_level,
    );
    for row in 0..n32 {
        for layer in 1..=g.levels[row as usize] as usize {
            for &id in g.neighbours_upper(row, layer) {
                if id >= n32 {
                    return Err(format!("row {row}: layer-{layer} neighbour {id} outside 0..{n}"));
                }
                if (g.levels[id as usize] as usize) < layer {
                    return Err(format!(
                        "row {row}: layer-{layer} neighbour {id} only reaches layer {}",
                        g.levels[id as usize]
                    ));
                }
            }
        }
    }
    file.advise_random();
    Ok(g.on_huge_pages())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::clustered_unit_vectors;
    use twotower_data::progress::NoProgress;

    fn graph() -> (FlatGraph, Vec<f32>) {
        let v = clustered_unit_vectors(600, 8, 10, 0.5, 3);
        (crate::native::build(8, v.clone(), 4, 32, &NoProgress), v)
    }

    /// The test's view of [`super::parse`]: `bytes` as a mapped file, every list checked.
    fn parse(bytes: &[u8], dim: usize, v: Vec<f32>) -> std::result::Result<FlatGraph, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g");
        std::fs::write(&p, bytes).unwrap();
        let f = MappedFile::open(&p).unwrap();
        super::parse(&f, dim, v.into(), Check::Full)
    }

    fn bytes_of(g: &FlatGraph) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g");
        write(g, &p).unwrap();
        std::fs::read(&p).unwrap()
    }

    #[test]
    fn round_trip_keeps_every_list() {
        let (g, v) = graph();
        let back = parse(&bytes_of(&g), 8, v).unwrap();
        assert_eq!(back.links0[..], g.links0[..]);
        assert_eq!(back.levels, g.levels);
        assert_eq!(back.upper_slot, g.upper_slot);
        assert_eq!(back.upper_offsets, g.upper_offsets);
        assert_eq!(back.upper_links, g.upper_links);
        assert_eq!(
            (back.entry, back.max_level, back.stride),
            (g.entry, g.max_level, g.stride)
        );
    }

    #[test]
    fn every_truncation_and_bad_field_is_an_error() {
        let (g, v) = graph();
        let b = bytes_of(&g);
        for cut in (0..b.len()).step_by(97).chain([b.len() - 1]) {
            assert!(parse(&b[..cut], 8, v.clone()).is_err(), "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(parse(&extra, 8, v.clone())
            .unwrap_err()
            .contains("unexpected bytes"));
        // A layer-0 neighbour id out of range.
        let n = g.len;
        let links0_at = HEADER + n + pad4(n);
        let mut bad = b.clone();
        bad[links0_at + 4..links0_at + 8].copy_from_slice(&(n as u32).to_le_bytes());
        assert!(parse(&bad, 8, v.clone()).unwrap_err().contains("outside"));
        // A count above the stride.
        let mut bad = b.clone();
        bad[links0_at..links0_at + 4].copy_from_slice(&(g.stride as u32).to_le_bytes());
        assert!(parse(&bad, 8, v.clone()).unwrap_err().contains("stride"));
        // A level above the top layer, and an entry point off the top layer.
        let mut bad = b.clone();
        bad[HEADER] = (g.max_level + 1) as u8;
        assert!(parse(&bad, 8, v.clone()).is_err());
        let mut bad = b.clone();
        let low = g.levels.iter().position(|&l| (l as usize) < g.max_level).unwrap() as u32;
        bad[HEADER - 8..HEADER - 4].copy_from_slice(&low.to_le_bytes());
        assert!(parse(&bad, 8, v.clone()).unwrap_err().contains("entry point"));
        // Wrong magic, version, row count.
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(parse(&bad, 8, v.clone()).is_err());
        let mut bad = b.clone();
        bad[8] = 9;
        assert!(parse(&bad, 8, v.clone()).is_err());
        assert!(parse(&b, 8, v[..8 * (n - 1)].to_vec()).is_err());
        assert!(parse(&b, 8, v).is_ok());
    }
}
