//! Argument conversion and the one GIL-release helper.

use std::borrow::Cow;

use numpy::{PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::Python;

use crate::errors::{invalid_argument, to_py_err};

/// Runs `work` with the GIL released, mapping its error to a Python exception.
///
/// Every call into the core that loops over a batch goes through here, so other Python
/// threads (a DataLoader, a web server) keep running meanwhile.
pub(crate) fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> embedforge::Result<T> + Send,
    T: Send,
{
    py.detach(work).map_err(to_py_err)
}

/// Copies a Python sequence of `str` into Rust strings (with the GIL held).
pub(crate) fn extract_texts(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Err(invalid_argument(
            name,
            "a str",
            "a sequence of str (wrap a single text in a list)",
        ));
    }
    let items = obj.try_iter().map_err(|_| {
        invalid_argument(
            name,
            format!("an object of type {}", type_name(obj)),
            "a sequence of str",
        )
    })?;
    let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
    for (i, item) in items.enumerate() {
        let item = item?;
        let Ok(text) = item.cast::<PyString>() else {
            return Err(invalid_argument(
                format!("{name}[{i}]"),
                format!("an object of type {}", type_name(&item)),
                "a str",
            ));
        };
        let text = text.to_str().map_err(|e| {
            invalid_argument(
                format!("{name}[{i}]"),
                format!("a str that is not valid Unicode ({e})"),
                "a str",
            )
        })?;
        out.push(text.to_owned());
    }
    Ok(out)
}

/// A `max_length`-style optional count: non-negative, or `None`.
pub(crate) fn opt_count(name: &str, value: Option<i64>) -> PyResult<Option<usize>> {
    value.map(|v| count(name, v)).transpose()
}

/// A non-negative count.
pub(crate) fn count(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value).map_err(|_| invalid_argument(name, value, "a non-negative integer"))
}

/// A token id: fits in `u32`.
pub(crate) fn token_id(name: &str, value: i64) -> PyResult<u32> {
    u32::try_from(value)
        .map_err(|_| invalid_argument(name, value, format!("an id in 0..={}", u32::MAX)))
}

/// A 2-D float32 numpy array, borrowed without copying.
pub(crate) fn f32_matrix<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray2<'py, f32>> {
    obj.extract()
        .map_err(|_| invalid_argument(name, describe_array(obj), "a 2-D float32 numpy array"))
}

/// A 1-D int64 numpy array, borrowed without copying.
pub(crate) fn i64_vector<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray1<'py, i64>> {
    obj.extract()
        .map_err(|_| invalid_argument(name, describe_array(obj), "a 1-D int64 numpy array"))
}

/// A 1-D float32 numpy array, borrowed without copying.
pub(crate) fn f32_vector<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray1<'py, f32>> {
    obj.extract()
        .map_err(|_| invalid_argument(name, describe_array(obj), "a 1-D float32 numpy array"))
}

/// A writable 2-D float32 numpy array, borrowed without copying.
pub(crate) fn f32_matrix_mut<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadwriteArray2<'py, f32>> {
    let array = obj.cast::<numpy::PyArray2<f32>>().map_err(|_| {
        invalid_argument(
            name,
            describe_array(obj),
            "a writable 2-D float32 numpy array",
        )
    })?;
    array.try_readwrite().map_err(|e| {
        invalid_argument(
            name,
            format!("an array that cannot be borrowed for writing ({e})"),
            "a writable array that no other argument shares",
        )
    })
}

/// The array's data as a slice: borrowed when contiguous, copied otherwise.
pub(crate) fn as_slice<'a>(array: &'a PyReadonlyArray1<'_, i64>) -> Cow<'a, [i64]> {
    match array.as_slice() {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => Cow::Owned(array.as_array().to_vec()),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "<unknown>".to_owned(), |n| n.to_string())
}

/// "an array of dtype float64 with 1 dimension", or the type name for non-arrays.
pub(crate) fn describe_array(obj: &Bound<'_, PyAny>) -> String {
    let dtype = obj.getattr("dtype").map(|d| d.to_string());
    let ndim = obj.getattr("ndim").and_then(|n| n.extract::<usize>());
    match (dtype, ndim) {
        (Ok(dtype), Ok(ndim)) => format!("an array of dtype {dtype} with {ndim} dimension(s)"),
        _ => format!("an object of type {}", type_name(obj)),
    }
}
