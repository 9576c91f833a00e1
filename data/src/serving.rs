//! What a recommender reads of a dataset's training part, derived once and kept beside it: each
//! user's training history (items with their times, oldest first), each user's seen items (sorted,
//! without repeats, for "leave out what the user has seen"), each item's interaction count and the
//! items by popularity. [`ServingTables`] holds them either built in memory from the interactions
//! or mapped from the dataset's `serving/` artifact, which `data import`, `data split`, appends and
//! `data serving` write, so opening a server does not decode millions of Parquet rows.
//!
//! `serving/` is an artifact of its own (the dataset's manifest does not list it, so the dataset's
//! fingerprint, which models record, is unchanged by it): a `manifest.json` of kind
//! [`SERVING_KIND`] listing `serving.bin` with its size and sha256 and recording the fingerprint of
//! the dataset it was derived from. An open uses it only when that fingerprint is the dataset's
//! own, every listed size matches and the header agrees with the dataset's counts; otherwise the
//! tables are built from the training part as before. Checksums are verified when it is written
//! and by a full [`crate::Dataset::load`] (training, `data stats`), not on every open.
//!
//! `serving.bin`, little-endian, every section starting at a multiple of 8 bytes:
//! ```text
//! magic      8 bytes  "TTSERVE\0"
//! version    u32      SERVING_FILE_VERSION (1)
//! reserved   u32      0
//! users      u64      U
//! items      u64      I
//! rows       u64      R, training interactions
//! seen       u64      S, distinct (user, item) pairs
//! reserved   24 bytes zero (sections start at byte 64)
//! history offsets  (U + 1) × u64    user u's history is [off[u], off[u+1])
//! history times    R × i64          sorted by (time, item) within each user
//! history items    R × u32          (then zero padding to 8 bytes)
//! seen offsets     (U + 1) × u64
//! seen items       S × u32          sorted ascending within each user (then padding)
//! item counts      I × u64          training interactions per item
//! popular          I × u32          items by descending count, ties by the lower item
//! ```

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::artifact::{Manifest, StagingDir};
use crate::error::{Error, Result};
use crate::interactions::{Interactions, UserHistories};
use crate::mapped::{MappedFile, Slab};

/// Directory of the serving artifact inside a dataset directory.
pub const SERVING_DIR: &str = "serving";
/// Manifest kind of the serving artifact.
pub const SERVING_KIND: &str = "dataset-serving";
/// File name of the serving tables.
pub const SERVING_FILE: &str = "serving.bin";
const SERVING_FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"TTSERVE\0";
const SERVING_FILE_VERSION: u32 = 1;
const HEADER: usize = 64;

/// Per-user histories and seen sets, per-item counts and the popularity order of a training part.
#[derive(Debug)]
pub struct ServingTables {
    n_users: usize,
    n_items: usize,
    hist_offsets: Slab<u64>,
    hist_ts: Slab<i64>,
    hist_items: Slab<u32>,
    seen_offsets: Slab<u64>,
    seen_items: Slab<u32>,
    counts: Slab<u64>,
    popular: Slab<u32>,
}

/// `[off[i], off[i+1])` of `values`, empty when the offsets are out of order or out of range (only
/// a damaged mapped file has such offsets; its checksum, not an open, is what catches it).
fn csr_row<'a, T: crate::mapped::Element>(off: &[u64], values: &'a [T], i: usize) -> &'a [T] {
    match (off.get(i), off.get(i + 1)) {
        (Some(&a), Some(&b)) if a <= b && b as usize <= values.len() => &values[a as usize..b as usize],
        _ => &[],
    }
}

impl ServingTables {
    /// Builds the tables from `train` for `n_users` users and `n_items` items (rows with larger
    /// indices are skipped).
    pub fn build(train: &Interactions, n_users: usize, n_items: usize) -> ServingTables {
        let h = UserHistories::build(train, n_users);
        let (hist_offsets, hist_ts, hist_items) = h.into_parts();
        let mut seen_offsets = Vec::with_capacity(n_users + 1);
        seen_offsets.push(0u64);
        let mut seen_items = Vec::with_capacity(hist_items.len());
        let mut counts = vec![0u64; n_items];
        for u in 0..n_users {
            let start = seen_items.len();
            let row = csr_row(&hist_offsets, &hist_items, u);
            seen_items.extend_from_slice(row);
            seen_items[start..].sort_unstable();
            let mut w = start;
            for r in start..seen_items.len() {
                if r == start || seen_items[r] != seen_items[w - 1] {
                    seen_items[w] = seen_items[r];
                    w += 1;
                }
            }
            seen_items.truncate(w);
            seen_offsets.push(seen_items.len() as u64);
            for &i in row {
                if let Some(c) = counts.get_mut(i as usize) {
                    *c += 1;
                }
            }
        }
        let mut popular: Vec<u32> = (0..n_items as u32).collect();
        popular.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
        ServingTables {
            n_users,
            n_items,
            hist_offsets: hist_offsets.into(),
            hist_ts: hist_ts.into(),
            hist_items: hist_items.into(),
            seen_offsets: seen_offsets.into(),
            seen_items: seen_items.into(),
            counts: counts.into(),
            popular: popular.into(),
        }
    }

    /// Users the tables cover.
    pub fn users(&self) -> usize {
        self.n_users
    }

    /// Items the tables cover.
    pub fn items(&self) -> usize {
        self.n_items
    }

    /// A user's training history, oldest first: (times, items).
    pub fn history(&self, user: u32) -> (&[i64], &[u32]) {
        let u = user as usize;
        let items = csr_row(&self.hist_offsets, &self.hist_items, u);
        let ts = csr_row(&self.hist_offsets, &self.hist_ts, u);
        if ts.len() != items.len() {
            return (&[], &[]);
        }
        (ts, items)
    }

    /// A user's training items, sorted ascending without repeats: a borrowed slice, never copied.
    pub fn seen(&self, user: u32) -> &[u32] {
        csr_row(&self.seen_offsets, &self.seen_items, user as usize)
    }

    /// Training interactions of an item (0 outside the catalogue).
    pub fn count(&self, item: u32) -> u64 {
        self.counts.get(item as usize).copied().unwrap_or(0)
    }

    /// All training interactions.
    pub fn total(&self) -> u64 {
        self.hist_items.len() as u64
    }

    /// Items by descending training interactions, ties by the lower item.
    pub fn popular(&self) -> impl Iterator<Item = u32> + '_ {
        let n = self.n_items as u32;
        self.popular.iter().copied().filter(move |&i| i < n)
    }

    /// True when the tables are views of a mapped `serving.bin`.
    pub fn is_mapped(&self) -> bool {
        self.seen_items.is_mapped()
    }

    /// Writes `dataset_dir/serving/` (staged, then swapped in whole) for the dataset whose manifest
    /// fingerprint is `dataset_fingerprint`.
    pub fn write(&self, dataset_dir: &Path, dataset_fingerprint: &str) -> Result<()> {
        let stage = StagingDir::new(dataset_dir.join(SERVING_DIR))?;
        self.write_into(stage.path(), dataset_fingerprint)?;
        stage.commit()
    }

    /// Writes `serving.bin` and its manifest into the directory `dir` (one being staged).
    pub fn write_into(&self, dir: &Path, dataset_fingerprint: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(SERVING_FILE);
        let io = |e| Error::io(&path, e);
        let f = std::fs::File::create(&path).map_err(io)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&SERVING_FILE_VERSION.to_le_bytes());
        for (k, v) in [
            self.n_users as u64,
            self.n_items as u64,
            self.hist_items.len() as u64,
            self.seen_items.len() as u64,
        ]
        .into_iter()
        .enumerate()
        {
            header[16 + 8 * k..24 + 8 * k].copy_from_slice(&v.to_le_bytes());
        }
        w.write_all(&header).map_err(io)?;
        let mut at = HEADER;
        let mut section = |w: &mut dyn Write, bytes: Vec<u8>| -> std::io::Result<()> {
            w.write_all(&bytes)?;
            at += bytes.len();
            let pad = (8 - at % 8) % 8;
            w.write_all(&[0u8; 8][..pad])?;
            at += pad;
            Ok(())
        };
        let le64 = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let le32 = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        section(&mut w, le64(&self.hist_offsets)).map_err(io)?;
        section(
            &mut w,
            self.hist_ts.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
        .map_err(io)?;
        section(&mut w, le32(&self.hist_items)).map_err(io)?;
        section(&mut w, le64(&self.seen_offsets)).map_err(io)?;
        section(&mut w, le32(&self.seen_items)).map_err(io)?;
        section(&mut w, le64(&self.counts)).map_err(io)?;
        section(&mut w, le32(&self.popular)).map_err(io)?;
        let f = w.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        let mut m = Manifest::new(SERVING_KIND, SERVING_FORMAT_VERSION);
        m.add_file(dir, SERVING_FILE)?;
        m.counts.insert("users".into(), self.n_users as u64);
        m.counts.insert("items".into(), self.n_items as u64);
        m.counts.insert("rows".into(), self.hist_items.len() as u64);
        m.extra = json!({ "dataset_fingerprint": dataset_fingerprint });
        m.write(dir)
    }

    /// The mapped tables of `dataset_dir/serving/` when they belong to the dataset whose
    /// fingerprint is `dataset_fingerprint` and cover `n_users` and `n_items`: `Ok(None)` when
    /// there are none or they were derived from another version of the dataset (the caller builds
    /// them instead). A present, current artifact with a wrong size or header is an error naming
    /// the file. With `checksums`, every byte is verified first.
    pub fn open(
        dataset_dir: &Path,
        dataset_fingerprint: &str,
        n_users: usize,
        n_items: usize,
        checksums: bool,
    ) -> Result<Option<ServingTables>> {
        let dir = dataset_dir.join(SERVING_DIR);
        if !dir.join(crate::artifact::MANIFEST_FILE).is_file() {
            return Ok(None);
        }
        let m = Manifest::read(&dir, SERVING_KIND, SERVING_FORMAT_VERSION)?;
        let derived_from = m.extra.get("dataset_fingerprint").and_then(|v| v.as_str());
        if derived_from != Some(dataset_fingerprint) {
            return Ok(None);
        }
        if !m.files.contains_key(SERVING_FILE) {
            return Err(Error::FileMissing {
                file: dir.join(SERVING_FILE),
            });
        }
        if checksums {
            m.verify(&dir)?;
        } else {
            m.verify_sizes(&dir)?;
        }
        let path = dir.join(SERVING_FILE);
        let file = MappedFile::open(&path)?;
        Self::parse(&file, n_users, n_items)
            .map(Some)
            .map_err(|problem| Error::invalid(&path, problem))
    }

    fn parse(
        file: &Arc<MappedFile>,
        n_users: usize,
        n_items: usize,
    ) -> std::result::Result<ServingTables, String> {
        file.check_header(HEADER, MAGIC, SERVING_FILE_VERSION, "serving")?;
        let b = file.bytes();
        let field = |k: usize| u64::from_le_bytes(b[16 + 8 * k..24 + 8 * k].try_into().expect("8 bytes"));
        let (users, items, rows, seen) = (field(0), field(1), field(2), field(3));
        if users != n_users as u64 || items != n_items as u64 {
            return Err(format!(
                "tables of {users} users and {items} items, the dataset has {n_users} and {n_items}"
            ));
        }
        let (users, items) = (n_users, n_items);
        let too_big = || "section sizes overflow".to_string();
        let rows = usize::try_from(rows).map_err(|_| too_big())?;
        let seen = usize::try_from(seen).map_err(|_| too_big())?;
        let mut at = HEADER;
        let mut next = |count: usize, size: usize| -> std::result::Result<usize, String> {
            let start = at;
            let len = count.checked_mul(size).ok_or_else(too_big)?;
            at = start.checked_add(len).ok_or_else(too_big)?;
            at = at.checked_add((8 - at % 8) % 8).ok_or_else(too_big)?;
            Ok(start)
        };
        let offs = [
            next(users + 1, 8)?,
            next(rows, 8)?,
            next(rows, 4)?,
            next(users + 1, 8)?,
            next(seen, 4)?,
            next(items, 8)?,
            next(items, 4)?,
        ];
        if b.len() != at {
            return Err(format!(
                "truncated or padded: {} bytes, its header's counts make {at}",
                b.len()
            ));
        }
        let e = |e: Error| e.to_string();
        file.advise_random();
        Ok(ServingTables {
            n_users: users,
            n_items: items,
            hist_offsets: Slab::from_file(file, offs[0], users + 1, "history offsets").map_err(e)?,
            hist_ts: Slab::from_file(file, offs[1], rows, "history times").map_err(e)?,
            hist_items: Slab::from_file(file, offs[2], rows, "history items").map_err(e)?,
            seen_offsets: Slab::from_file(file, offs[3], users + 1, "seen offsets").map_err(e)?,
            seen_items: Slab::from_file(file, offs[4], seen, "seen items").map_err(e)?,
            counts: Slab::from_file(file, offs[5], items, "item counts").map_err(e)?,
            popular: Slab::from_file(file, offs[6], items, "popular items").map_err(e)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train() -> Interactions {
        let mut x = Interactions::default();
        for (u, i, t) in [(0, 3, 5), (0, 1, 2), (0, 3, 9), (2, 0, 1), (2, 4, 1), (1, 2, 7)] {
            x.push(u, i, 1.0, t);
        }
        x
    }

    #[test]
    fn written_tables_map_back_identical_and_damage_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let built = ServingTables::build(&train(), 4, 5);
        assert_eq!(built.seen(0), &[1, 3]);
        assert_eq!(built.history(0), (&[2, 5, 9][..], &[1, 3, 3][..]));
        assert_eq!(built.popular().collect::<Vec<_>>(), vec![3, 0, 1, 2, 4]);
        built.write(dir.path(), "fp").unwrap();
        assert!(ServingTables::open(dir.path(), "other", 4, 5, false)
            .unwrap()
            .is_none());
        let back = ServingTables::open(dir.path(), "fp", 4, 5, true)
            .unwrap()
            .unwrap();
        assert!(back.is_mapped());
        for u in 0..4 {
            assert_eq!(back.seen(u), built.seen(u));
            assert_eq!(back.history(u), built.history(u));
        }
        assert_eq!(
            back.popular().collect::<Vec<_>>(),
            built.popular().collect::<Vec<_>>()
        );
        assert_eq!(
            (0..5).map(|i| back.count(i)).collect::<Vec<_>>(),
            vec![1, 1, 1, 2, 1]
        );

        // A flipped byte: sizes still match, so an open maps it; the checksum catches it.
        let p = dir.path().join(SERVING_DIR).join(SERVING_FILE);
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x5a;
        std::fs::write(&p, &bytes).unwrap();
        assert!(ServingTables::open(dir.path(), "fp", 4, 5, false)
            .unwrap()
            .is_some());
        let e = ServingTables::open(dir.path(), "fp", 4, 5, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains(SERVING_FILE) && e.contains("sha256"), "{e}");
        // Truncated: the size check of every open names it.
        std::fs::write(&p, &bytes[..bytes.len() - 8]).unwrap();
        let e = ServingTables::open(dir.path(), "fp", 4, 5, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains(SERVING_FILE) && e.contains("size"), "{e}");
    }
}
