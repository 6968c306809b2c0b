//! Reading tensors out of `.safetensors` files as `f32` / `i64`.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::error::{Error, Result};

/// The bytes of one `.safetensors` file, checked to parse.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl SafetensorsFile {
    /// Reads and validates a `.safetensors` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "weights file", e))?;
        let file = Self { path, bytes };
        file.parse()?;
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parse(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.bytes).map_err(|e| {
            Error::model_format(&self.path, format!("not a valid safetensors file: {e}"))
        })
    }

    /// Names of all tensors in the file, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .parse()?
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Whether the file holds a tensor called `name`.
    pub fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.parse()?.tensor(name).is_ok())
    }

    fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        let tensors = self.parse()?;
        tensors.tensor(name).map_err(|_| {
            Error::model_format(
                &self.path,
                format!(
                    "no tensor `{name}` (tensors: {})",
                    self.names().unwrap_or_default().join(", ")
                ),
            )
        })
    }

    /// A 2-D floating-point tensor (f32, f16, bf16 or f64) converted to `f32`.
    pub fn matrix_f32(&self, name: &str) -> Result<Array2<f32>> {
        let view = self.tensor(name)?;
        let &[rows, cols] = view.shape() else {
            return Err(Error::model_format(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}, expected 2 dimensions",
                    view.shape()
                ),
            ));
        };
        let values = self.floats(name, &view)?;
        Array2::from_shape_vec((rows, cols), values)
            .map_err(|e| Error::model_format(&self.path, format!("tensor `{name}`: {e}")))
    }

    /// A 1-D floating-point tensor converted to `f32`.
    pub fn vector_f32(&self, name: &str) -> Result<Array1<f32>> {
        let view = self.tensor(name)?;
        self.expect_1d(name, &view)?;
        Ok(Array1::from(self.floats(name, &view)?))
    }

    /// A 1-D integer tensor (i64, i32, u32, i16, u16, i8 or u8) converted to `i64`.
    pub fn vector_i64(&self, name: &str) -> Result<Array1<i64>> {
        let view = self.tensor(name)?;
        self.expect_1d(name, &view)?;
        let data = view.data();
        let values: Vec<i64> = match view.dtype() {
            Dtype::I64 => le_chunks(data, i64::from_le_bytes).collect(),
            Dtype::I32 => le_chunks(data, i32::from_le_bytes).map(i64::from).collect(),
            Dtype::U32 => le_chunks(data, u32::from_le_bytes).map(i64::from).collect(),
            Dtype::I16 => le_chunks(data, i16::from_le_bytes).map(i64::from).collect(),
            Dtype::U16 => le_chunks(data, u16::from_le_bytes).map(i64::from).collect(),
            Dtype::I8 => data.iter().map(|&b| i64::from(b as i8)).collect(),
            Dtype::U8 => data.iter().map(|&b| i64::from(b)).collect(),
            other => return Err(self.bad_dtype(name, other, "an integer type")),
        };
        Ok(Array1::from(values))
    }

    fn expect_1d(&self, name: &str, view: &TensorView<'_>) -> Result<()> {
        if view.shape().len() == 1 {
            Ok(())
        } else {
            Err(Error::model_format(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}, expected 1 dimension",
                    view.shape()
                ),
            ))
        }
    }

    fn floats(&self, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
        let data = view.data();
        Ok(match view.dtype() {
            Dtype::F32 => le_chunks(data, f32::from_le_bytes).collect(),
            Dtype::F16 => le_chunks(data, half::f16::from_le_bytes)
                .map(f32::from)
                .collect(),
            Dtype::BF16 => le_chunks(data, half::bf16::from_le_bytes)
                .map(f32::from)
                .collect(),
            Dtype::F64 => le_chunks(data, f64::from_le_bytes)
                .map(|x| x as f32)
                .collect(),
            other => return Err(self.bad_dtype(name, other, "F32, F16, BF16 or F64")),
        })
    }

    fn bad_dtype(&self, name: &str, dtype: Dtype, expected: &str) -> Error {
        Error::model_format(
            &self.path,
            format!("tensor `{name}` has dtype {dtype:?}, expected {expected}"),
        )
    }
}

/// Decodes little-endian `N`-byte values; safetensors data need not be aligned.
fn le_chunks<'a, const N: usize, T>(
    data: &'a [u8],
    decode: impl Fn([u8; N]) -> T + 'a,
) -> impl Iterator<Item = T> + 'a {
    data.chunks_exact(N).map(move |c| {
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(c);
        decode(bytes)
    })
}
