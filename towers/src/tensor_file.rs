//! Reading and writing tensors (weights, optimizer state, integer feature tables) as safetensors files
//! whose bytes depend only on their content (tensors sorted by name).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// A named tensor ready to be written: dtype, shape and little-endian bytes, borrowed from the
/// caller's buffer where the machine is little-endian (a checkpoint of a 1 M-item model is
/// gigabytes: copying it to bytes, then again into one serialised buffer, tripled its memory).
pub(crate) struct RawTensor<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Cow<'a, [u8]>,
}

/// The little-endian bytes of `v` (4-byte values), borrowed when the machine's order is already that.
fn le_bytes<T: Copy>(v: &[T], to_le: impl Fn(T) -> [u8; 4]) -> Cow<'_, [u8]> {
    debug_assert_eq!(std::mem::size_of::<T>(), 4);
    if cfg!(target_endian = "little") {
        // SAFETY: `T` is a plain 4-byte number (f32 or u32): every byte of `v` is initialised, u8 has
        // alignment 1, and the slice borrows `v` for its lifetime.
        Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v))
        })
    } else {
        Cow::Owned(v.iter().flat_map(|&x| to_le(x)).collect())
    }
}

/// Tensors to write, by name (sorted, so files are byte-identical for identical content).
#[derive(Default)]
pub(crate) struct TensorWriter<'a> {
    tensors: BTreeMap<String, RawTensor<'a>>,
}

impl<'a> TensorWriter<'a> {
    pub(crate) fn f32(&mut self, name: &str, shape: &[usize], v: &'a [f32]) {
        self.tensors.insert(
            name.to_string(),
            RawTensor {
                dtype: Dtype::F32,
                shape: shape.to_vec(),
                bytes: le_bytes(v, f32::to_le_bytes),
            },
        );
    }

    pub(crate) fn u32(&mut self, name: &str, v: &'a [u32]) {
        self.tensors.insert(
            name.to_string(),
            RawTensor {
                dtype: Dtype::U32,
                shape: vec![v.len()],
                bytes: le_bytes(v, u32::to_le_bytes),
            },
        );
    }

    /// Streams the tensors to a temporary beside `path`, syncs it and renames it into place: no
    /// copy of the tensors is made in memory.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(k, t)| {
                safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| Error::model(path, format!("cannot encode tensor {k}: {e}")))
            })
            .collect::<Result<_>>()?;
        let (out, file) = twotower_data::AtomicFile::create(path)?;
        let tmp = out.temp_path();
        // The mode the temporary was given (the replaced file's, or the default).
        let mode = file.metadata().map_err(|e| Error::io(tmp, e))?.permissions();
        drop(file);
        // safetensors streams into a temporary of its own (mode 600, unsynced) and renames it over
        // ours: the file at `tmp` is then that one, given our mode and synced before the commit.
        safetensors::serialize_to_file(views, None, tmp).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(io) => Error::io(path, io),
            e => Error::model(path, format!("cannot serialise tensors: {e}")),
        })?;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(tmp)
            .map_err(|e| Error::io(tmp, e))?;
        written.set_permissions(mode).map_err(|e| Error::io(tmp, e))?;
        written.sync_all().map_err(|e| Error::io(tmp, e))?;
        drop(written);
        out.commit()?;
        Ok(())
    }
}

/// A loaded safetensors file with typed, shape-checked accessors whose errors name the file. The
/// file is memory-mapped: a tensor is read once, straight into the vector it is returned in.
pub(crate) struct TensorReader {
    path: std::path::PathBuf,
    map: memmap2::Mmap,
}

impl TensorReader {
    pub(crate) fn open(path: &Path) -> Result<TensorReader> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: model and checkpoint files are written under a temporary name and renamed into
        // place, never modified in place, so the mapped bytes do not change under the reader.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        SafeTensors::deserialize(&map)
            .map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
        Ok(TensorReader {
            path: path.to_path_buf(),
            map,
        })
    }

    fn view(&self, name: &str, dtype: Dtype) -> Result<(Vec<usize>, &[u8])> {
        let st = SafeTensors::deserialize(&self.map)
            .map_err(|e| Error::model(&self.path, format!("not a valid safetensors file: {e}")))?;
        let t = st
            .tensor(name)
            .map_err(|_| Error::model(&self.path, format!("tensor {name} is missing")))?;
        if t.dtype() != dtype {
            return Err(Error::model(
                &self.path,
                format!("tensor {name} has dtype {:?}, expected {dtype:?}", t.dtype()),
            ));
        }
        let shape = t.shape().to_vec();
        // The tensor's bytes, as a slice of the map rather than of the short-lived view.
        let data = t.data();
        let start = data.as_ptr() as usize - self.map.as_ptr() as usize;
        Ok((shape, &self.map[start..start + data.len()]))
    }

    pub(crate) fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (got, bytes) = self.view(name, Dtype::F32)?;
        if got != shape {
            return Err(Error::model(
                &self.path,
                format!("tensor {name} has shape {got:?}, expected {shape:?}"),
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub(crate) fn u32(&self, name: &str) -> Result<Vec<u32>> {
        let (_, bytes) = self.view(name, Dtype::U32)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written tensors read back the same, the file has the usual mode (not the 600 of a temporary),
    /// and no temporary is left beside it.
    #[test]
    fn tensors_round_trip_with_a_normal_mode_and_no_debris() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let (a, b) = (vec![1.5f32, -2.0, 3.25], vec![7u32, 8, 9, 10]);
        let mut w = TensorWriter::default();
        w.f32("a", &[3], &a);
        w.u32("b", &b);
        w.write(&path).unwrap();
        let r = TensorReader::open(&path).unwrap();
        assert_eq!(r.f32("a", &[3]).unwrap(), a);
        assert_eq!(r.u32("b").unwrap(), b);
        assert!(r.f32("a", &[4]).is_err(), "a wrong shape is an error");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["t.safetensors".to_string()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            let umask_default = {
                let probe = dir.path().join("probe");
                std::fs::File::create(&probe).unwrap();
                std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777
            };
            assert_eq!(
                mode, umask_default,
                "the mode of any new file, not a temporary's 600"
            );
        }
    }
}
