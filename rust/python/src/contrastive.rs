//! `softmax_rows` and `accumulate_scaled_probs`: the elementwise passes of in-batch
//! contrastive losses, on float32 arrays shared with torch tensors (no copies).

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::convert::{detached, f32_matrix, f32_matrix_mut, f32_vector};
use crate::errors::invalid_argument;

/// `(log_prob_positive, row_sum, col_sum)` as float32 numpy arrays.
type SoftmaxArrays<'py> = (
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
);

fn contiguous<'a>(
    slice: Result<&'a [f32], numpy::AsSliceError>,
    name: &str,
) -> PyResult<&'a [f32]> {
    slice.map_err(|_| invalid_argument(name, "a non-contiguous array", "a C-contiguous array"))
}

fn contiguous_matrix<'a>(array: &'a PyReadonlyArray2<'_, f32>, name: &str) -> PyResult<&'a [f32]> {
    contiguous(array.as_slice(), name)
}

/// Row softmax of ``(row_scale[i] * col_scale[j]) * dots[i, j]``; column ``i`` is row ``i``'s
/// positive. Returns ``(log_prob_positive, row_sum, col_sum)``; writes the probabilities into
/// ``probs`` when given.
#[pyfunction]
#[pyo3(signature = (dots, row_scale, col_scale, probs = None))]
pub(crate) fn softmax_rows<'py>(
    py: Python<'py>,
    dots: &Bound<'py, PyAny>,
    row_scale: &Bound<'py, PyAny>,
    col_scale: &Bound<'py, PyAny>,
    probs: Option<&Bound<'py, PyAny>>,
) -> PyResult<SoftmaxArrays<'py>> {
    let dots = f32_matrix(dots, "dots")?;
    let row_scale = f32_vector(row_scale, "row_scale")?;
    let col_scale = f32_vector(col_scale, "col_scale")?;
    let mut probs = probs.map(|p| f32_matrix_mut(p, "probs")).transpose()?;
    let (rows, cols) = {
        let shape = dots.as_array().dim();
        shape
    };
    let scaled = embedforge::ScaledDots {
        dots: contiguous_matrix(&dots, "dots")?,
        rows,
        cols,
        row_scale: contiguous(row_scale.as_slice(), "row_scale")?,
        col_scale: contiguous(col_scale.as_slice(), "col_scale")?,
    };
    let probs = match probs.as_mut() {
        Some(p) => Some(p.as_slice_mut().map_err(|_| {
            invalid_argument("probs", "a non-contiguous array", "a C-contiguous array")
        })?),
        None => None,
    };
    let out = detached(py, || embedforge::softmax_rows(&scaled, probs))?;
    Ok((
        out.log_prob_positive.into_pyarray(py),
        out.row_sum.into_pyarray(py),
        out.col_sum.into_pyarray(py),
    ))
}

/// ``grad += (row_scale[i] * col_scale[j]) * probs`` (or, without ``probs``, ``grad *= ...``),
/// then ``grad[i, i] -= row_scale[i] * col_scale[i]``; in place.
#[pyfunction]
#[pyo3(signature = (grad, row_scale, col_scale, probs = None))]
pub(crate) fn accumulate_scaled_probs<'py>(
    py: Python<'py>,
    grad: &Bound<'py, PyAny>,
    row_scale: &Bound<'py, PyAny>,
    col_scale: &Bound<'py, PyAny>,
    probs: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    let mut grad = f32_matrix_mut(grad, "grad")?;
    let row_scale = f32_vector(row_scale, "row_scale")?;
    let col_scale = f32_vector(col_scale, "col_scale")?;
    let probs = probs.map(|p| f32_matrix(p, "probs")).transpose()?;
    let row_scale = contiguous(row_scale.as_slice(), "row_scale")?;
    let col_scale = contiguous(col_scale.as_slice(), "col_scale")?;
    let probs = match probs.as_ref() {
        Some(p) => Some(contiguous_matrix(p, "probs")?),
        None => None,
    };
    let grad = grad
        .as_slice_mut()
        .map_err(|_| invalid_argument("grad", "a non-contiguous array", "a C-contiguous array"))?;
    detached(py, || {
        embedforge::accumulate_scaled_probs(grad, probs, row_scale, col_scale)
    })
}
