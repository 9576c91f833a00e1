//! Read-only memory maps of committed artifact files, and [`Slab`]: a typed array that is either
//! owned or a view into such a map. This is the one module of the workspace that maps files, and
//! its `unsafe` stays here.
//!
//! Why mapping is sound here: every artifact file is written under a temporary name, synced,
//! checksummed into its manifest and then renamed (or its directory swapped) into place, and no
//! writer ever opens a committed file for writing again. A replacement is a new file (a new inode);
//! the inode a reader mapped keeps its bytes until the last map of it goes away, even after the
//! name points elsewhere or is removed. So the bytes behind a map never change while it is alive,
//! which is what turning them into `&[T]` requires. A hand edit of a live artifact file in place
//! breaks that promise, as it breaks the checksums; `index check` and the commit-time verification
//! are what catch such damage.
//!
//! Views are only made at offsets aligned for their element type, and only on little-endian
//! targets (the files are little-endian); elsewhere [`Slab::from_file`] decodes into an owned copy.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A whole file mapped read-only.
pub struct MappedFile {
    path: PathBuf,
    map: Option<memmap2::Mmap>,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.path)
            .field("bytes", &self.bytes().len())
            .finish()
    }
}

impl MappedFile {
    /// Maps `path` read-only. An empty file maps to no bytes (mmap refuses length 0).
    pub fn open(path: &Path) -> Result<Arc<MappedFile>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the file is a committed artifact, never written in place (module comment),
            // so the mapped bytes do not change while the map lives.
            Some(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?)
        };
        Ok(Arc::new(MappedFile {
            path: path.to_path_buf(),
            map,
        }))
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Checks the header every twotower binary file starts with: at least `header` bytes, the
    /// 8-byte `magic`, then a little-endian `u32` format version equal to `version`. `kind` names the
    /// file in the problem returned ("serving", "vectors").
    pub fn check_header(
        &self,
        header: usize,
        magic: &[u8; 8],
        version: u32,
        kind: &str,
    ) -> std::result::Result<(), String> {
        let b = self.bytes();
        if b.len() < header.max(12) {
            return Err(format!(
                "truncated: {} bytes, the header alone is {header}",
                b.len()
            ));
        }
        if &b[..8] != magic {
            return Err(format!("not a twotower {kind} file (bad magic)"));
        }
        let found = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        if found != version {
            return Err(format!("{kind} file version {found}, this build reads {version}"));
        }
        Ok(())
    }

    /// The file that was mapped.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tells the kernel the pages are read at random (no read-ahead of neighbouring pages): what a
    /// graph walk or a lookup by row does.
    pub fn advise_random(&self) {
        if let Some(m) = &self.map {
            let _ = m.advise(memmap2::Advice::Random);
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Plain little-endian numbers a [`Slab`] may view in a file: every bit pattern is a valid value.
pub trait Element: sealed::Sealed + Copy + Send + Sync + 'static {
    /// Decodes one element from its little-endian bytes (`size_of::<Self>()` of them).
    fn from_le(b: &[u8]) -> Self;
}

macro_rules! element {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            fn from_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("caller passes size_of bytes"))
            }
        }
    )*};
}
element!(u8, u32, u64, i64, f32);

/// A read-only array of `T`: owned, or a view of part of a mapped file (which it keeps alive).
/// Dereferences to `&[T]`, so code that reads it does not care which.
pub enum Slab<T: Element> {
    /// In this process's memory.
    Owned(Vec<T>),
    /// `len` elements at byte `offset` of `file` (aligned for `T`, checked when made).
    Mapped {
        /// The map the view borrows from.
        file: Arc<MappedFile>,
        /// Byte offset of the first element.
        offset: usize,
        /// Number of elements.
        len: usize,
    },
}

impl<T: Element> Slab<T> {
    /// `len` elements at byte `offset` of `file`: a view where the platform allows (little-endian,
    /// aligned offset), an owned decoded copy otherwise. Bytes past the file's end are an error
    /// naming the file and what was wanted.
    pub fn from_file(file: &Arc<MappedFile>, offset: usize, len: usize, what: &str) -> Result<Slab<T>> {
        let size = std::mem::size_of::<T>();
        let bytes = file.bytes();
        let end = len
            .checked_mul(size)
            .and_then(|n| n.checked_add(offset))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                Error::invalid(
                    file.path(),
                    format!(
                        "truncated: {what} needs {len} × {size} bytes at offset {offset}, the file has {}",
                        bytes.len()
                    ),
                )
            })?;
        let raw = &bytes[offset..end];
        if cfg!(target_endian = "little") && (raw.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>())
        {
            return Ok(Slab::Mapped {
                file: file.clone(),
                offset,
                len,
            });
        }
        Ok(Slab::Owned(raw.chunks_exact(size).map(T::from_le).collect()))
    }

    /// True when the elements live in a mapped file rather than this process's heap.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Slab::Mapped { .. })
    }
}

impl<T: Element> Deref for Slab<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Slab::Owned(v) => v,
            Slab::Mapped { file, offset, len } => {
                let p = file.bytes()[*offset..].as_ptr();
                // SAFETY: `from_file` checked that `offset + len × size_of::<T>()` lies inside the
                // map and that `p` is aligned for `T`; `T` is a plain number for which every bit
                // pattern is valid; the map is immutable and lives as long as `file`, which `self`
                // holds (module comment).
                unsafe { std::slice::from_raw_parts(p.cast::<T>(), *len) }
            }
        }
    }
}

impl<T: Element + PartialEq> PartialEq for Slab<T> {
    /// Equal when the elements are, wherever they live.
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl<T: Element> Clone for Slab<T> {
    /// An owned copy stays owned; a view is another view of the same map.
    fn clone(&self) -> Self {
        match self {
            Slab::Owned(v) => Slab::Owned(v.clone()),
            Slab::Mapped { file, offset, len } => Slab::Mapped {
                file: file.clone(),
                offset: *offset,
                len: *len,
            },
        }
    }
}

impl<T: Element> From<Vec<T>> for Slab<T> {
    fn from(v: Vec<T>) -> Self {
        Slab::Owned(v)
    }
}

impl<T: Element> Default for Slab<T> {
    fn default() -> Self {
        Slab::Owned(Vec::new())
    }
}

impl<T: Element + std::fmt::Debug> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slab::Owned(v) => write!(f, "Slab::Owned({} elements)", v.len()),
            Slab::Mapped { file, offset, len } => {
                write!(
                    f,
                    "Slab::Mapped({len} elements at {offset} of {})",
                    file.path().display()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_mapped_and_read_back_and_truncation_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.bin");
        let vals: Vec<u32> = (0..1000).collect();
        let mut bytes = vec![0u8; 8];
        for v in &vals {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&p, &bytes).unwrap();
        let f = MappedFile::open(&p).unwrap();
        let s: Slab<u32> = Slab::from_file(&f, 8, 1000, "values").unwrap();
        assert!(s.is_mapped());
        assert_eq!(&s[..], &vals[..]);
        let err = Slab::<u32>::from_file(&f, 8, 1001, "values")
            .unwrap_err()
            .to_string();
        assert!(err.contains("v.bin") && err.contains("truncated"), "{err}");
        // A misaligned view is decoded into an owned copy instead.
        let odd: Slab<u32> = Slab::from_file(&f, 9, 10, "odd").unwrap();
        assert!(!odd.is_mapped());
        assert_eq!(odd.len(), 10);
    }
}
