//! Reading and writing tensors (weights, optimizer state, integer feature tables) as safetensors files
//! whose bytes depend only on their content (tensors sorted by name).

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// A named tensor ready to be written: dtype, shape and little-endian bytes.
pub(crate) struct RawTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Tensors to write, by name (sorted, so files are byte-identical for identical content).
#[derive(Default)]
pub(crate) struct TensorWriter {
    tensors: BTreeMap<String, RawTensor>,
}

impl TensorWriter {
    pub(crate) fn f32(&mut self, name: &str, shape: &[usize], v: &[f32]) {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors.insert(
            name.to_string(),
            RawTensor {
                dtype: Dtype::F32,
                shape: shape.to_vec(),
                bytes,
            },
        );
    }

    pub(crate) fn u32(&mut self, name: &str, v: &[u32]) {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors.insert(
            name.to_string(),
            RawTensor {
                dtype: Dtype::U32,
                shape: vec![v.len()],
                bytes,
            },
        );
    }

    /// Serialises and writes atomically.
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
        let bytes = safetensors::serialize(views, None)
            .map_err(|e| Error::model(path, format!("cannot serialise tensors: {e}")))?;
        twotower_data::artifact::write_file_atomic(path, &bytes)?;
        Ok(())
    }
}

/// A loaded safetensors file with typed, shape-checked accessors whose errors name the file.
pub(crate) struct TensorReader {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
}

impl TensorReader {
    pub(crate) fn open(path: &Path) -> Result<TensorReader> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
        Ok(TensorReader {
            path: path.to_path_buf(),
            bytes,
        })
    }

    fn view(&self, name: &str, dtype: Dtype) -> Result<(Vec<usize>, Vec<u8>)> {
        let st = SafeTensors::deserialize(&self.bytes)
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
        Ok((t.shape().to_vec(), t.data().to_vec()))
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
