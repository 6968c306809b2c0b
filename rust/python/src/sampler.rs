//! Batch-sampler kernels: interning dataset texts into ids, and one no-duplicates pass.

use embedforge::TextChunk;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::convert::{count, detached};
use crate::errors::invalid_argument;

/// One column chunk as numpy arrays: (int64 offsets, uint8 data).
type ChunkArrays<'py> = (PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, u8>);

/// `(rows, bounds)` as numpy arrays.
type BatchArrays<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// Ids of every row's texts, ``uint32 [num_rows, len(columns)]``; equal texts get equal ids.
///
/// ``columns[c]`` is column ``c`` as Arrow-style chunks ``(offsets int64, data uint8)``.
#[pyfunction]
#[pyo3(signature = (columns, num_rows))]
pub(crate) fn intern_text_columns<'py>(
    py: Python<'py>,
    columns: Vec<Vec<ChunkArrays<'py>>>,
    num_rows: i64,
) -> PyResult<Bound<'py, PyArray2<u32>>> {
    let num_rows = count("num_rows", num_rows)?;
    let mut views: Vec<Vec<TextChunk<'_>>> = Vec::with_capacity(columns.len());
    for (c, chunks) in columns.iter().enumerate() {
        let mut column = Vec::with_capacity(chunks.len());
        for (k, (offsets, data)) in chunks.iter().enumerate() {
            let not_contiguous = || {
                invalid_argument(
                    format!("columns[{c}][{k}]"),
                    "a strided array",
                    "contiguous arrays",
                )
            };
            column.push(TextChunk {
                offsets: offsets.as_slice().map_err(|_| not_contiguous())?,
                data: data.as_slice().map_err(|_| not_contiguous())?,
            });
        }
        views.push(column);
    }
    let ids = detached(py, || embedforge::intern_text_columns(&views, num_rows))?;
    Ok(ids.into_pyarray(py))
}

/// One no-duplicates pass over ``order``: ``(rows int64, bounds int64)``, batch ``b`` being
/// ``rows[bounds[b]:bounds[b + 1]]``.
#[pyfunction]
#[pyo3(signature = (value_ids, order, batch_size, drop_last))]
pub(crate) fn no_duplicates_pass<'py>(
    py: Python<'py>,
    value_ids: PyReadonlyArray2<'py, u32>,
    order: PyReadonlyArray1<'py, i64>,
    batch_size: i64,
    drop_last: bool,
) -> PyResult<BatchArrays<'py>> {
    let batch_size = count("batch_size", batch_size)?;
    let value_ids = value_ids.as_array();
    let order = crate::convert::as_slice(&order);
    let batches = detached(py, || {
        embedforge::no_duplicates_pass(value_ids, &order, batch_size, drop_last)
    })?;
    Ok((
        batches.rows.into_pyarray(py),
        batches.bounds.into_pyarray(py),
    ))
}
