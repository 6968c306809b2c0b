//! `adamw_sparse_rows`: one AdamW step over a matrix with a row-sparse gradient, in place on
//! float32 arrays shared with torch tensors.

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

use crate::convert::{as_slice, detached, f32_matrix, f32_matrix_mut, i64_vector};
use crate::errors::invalid_argument;

/// One AdamW step (torch.optim.AdamW's arithmetic) of ``param`` with moments ``exp_avg`` and
/// ``exp_avg_sq``; the gradient is ``values[k]`` on row ``rows[k]`` (strictly increasing) and zero
/// elsewhere. ``step`` is the step number after this step. All matrices are updated in place.
#[pyfunction]
#[pyo3(signature = (param, exp_avg, exp_avg_sq, rows, values, *, lr, beta1, beta2, eps, weight_decay, step, maximize = false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn adamw_sparse_rows<'py>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    exp_avg: &Bound<'py, PyAny>,
    exp_avg_sq: &Bound<'py, PyAny>,
    rows: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    step: u64,
    maximize: bool,
) -> PyResult<()> {
    let mut param = f32_matrix_mut(param, "param")?;
    let mut exp_avg = f32_matrix_mut(exp_avg, "exp_avg")?;
    let mut exp_avg_sq = f32_matrix_mut(exp_avg_sq, "exp_avg_sq")?;
    let rows = i64_vector(rows, "rows")?;
    let values: PyReadonlyArray2<'py, f32> = f32_matrix(values, "values")?;
    let dim = param.as_array().ncols();
    let rows = as_slice(&rows);
    let values = values.as_slice().map_err(|_| {
        invalid_argument("values", "a non-contiguous array", "a C-contiguous array")
    })?;
    let contiguous = "a C-contiguous array";
    let state = embedforge::AdamWState {
        param: param
            .as_slice_mut()
            .map_err(|_| invalid_argument("param", "a non-contiguous array", contiguous))?,
        exp_avg: exp_avg
            .as_slice_mut()
            .map_err(|_| invalid_argument("exp_avg", "a non-contiguous array", contiguous))?,
        exp_avg_sq: exp_avg_sq
            .as_slice_mut()
            .map_err(|_| invalid_argument("exp_avg_sq", "a non-contiguous array", contiguous))?,
        dim,
    };
    let settings = embedforge::AdamWSettings {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        step,
        maximize,
    };
    detached(py, || {
        embedforge::adamw_sparse_rows(state, &rows, values, &settings)
    })
}
