//! `top_k`: exact nearest-neighbour search over float32 embeddings; `top_k_quantized` and
//! `rescore_quantized`: the same over int8/uint8/binary embeddings, and float re-ranking.

use embedforge::{Precision, QuantizedCorpus, ScoreFunction};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::convert::{count, detached, f32_matrix};
use crate::errors::{invalid_argument, to_py_err};

/// `(indices, scores)` as numpy arrays.
type TopKArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

// The block_size defaults below are written out as `4096` so that the generated text signature
// shows the number, which stubtest compares with the stub. This crate has no Rust tests
// (`test = false`), so the build itself checks that the literal still equals the core's default.
const _: () = assert!(embedforge::DEFAULT_SEARCH_BLOCK == 4096);

/// Exact top-``k`` corpus rows per query: ``(indices int64 [q, k'], scores float32 [q, k'])``.
#[pyfunction]
#[pyo3(signature = (queries, corpus, k, score = "cosine", block_size = 4096))]
pub(crate) fn top_k<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    corpus: &Bound<'py, PyAny>,
    k: i64,
    score: &str,
    block_size: i64,
) -> PyResult<TopKArrays<'py>> {
    let queries = f32_matrix(queries, "queries")?;
    let corpus = f32_matrix(corpus, "corpus")?;
    let k = count("k", k)?;
    let block_size = count("block_size", block_size)?;
    let score: ScoreFunction = score.parse().map_err(to_py_err)?;
    let (queries, corpus) = (queries.as_array(), corpus.as_array());
    let found = detached(py, || {
        embedforge::top_k(queries, corpus, k, score, block_size)
    })?;
    // Indices fit in i64: they index a corpus that is already in memory.
    let indices = found.indices.mapv(|i| i as i64);
    Ok((indices.into_pyarray(py), found.scores.into_pyarray(py)))
}

/// A borrowed 2-D int8 or uint8 numpy array.
enum ByteMatrix<'py> {
    I8(PyReadonlyArray2<'py, i8>),
    U8(PyReadonlyArray2<'py, u8>),
}

impl ByteMatrix<'_> {
    fn extract<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<ByteMatrix<'py>> {
        if let Ok(m) = obj.extract::<PyReadonlyArray2<'py, i8>>() {
            return Ok(ByteMatrix::I8(m));
        }
        if let Ok(m) = obj.extract::<PyReadonlyArray2<'py, u8>>() {
            return Ok(ByteMatrix::U8(m));
        }
        let dtype = obj.getattr("dtype").map_or_else(
            |_| "an object without a dtype".to_owned(),
            |d| format!("dtype {d}"),
        );
        Err(invalid_argument(
            name,
            dtype,
            "a 2-D int8 or uint8 numpy array (quantize_embeddings output)",
        ))
    }

    fn view(&self) -> QuantizedCorpus<'_> {
        match self {
            ByteMatrix::I8(m) => QuantizedCorpus::I8(m.as_array()),
            ByteMatrix::U8(m) => QuantizedCorpus::U8(m.as_array()),
        }
    }
}

/// `(indices, scores)` of a quantised search: int32 dot products or Hamming distances.
type QuantizedArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<i32>>);

/// Exact top-``k`` over quantised rows: ``(indices int64, scores int32)``; int8/uint8 by
/// integer dot product (highest first), binary/ubinary by Hamming distance (lowest first).
#[pyfunction]
#[pyo3(signature = (queries, corpus, k, precision, block_size = 4096))]
pub(crate) fn top_k_quantized<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    corpus: &Bound<'py, PyAny>,
    k: i64,
    precision: &str,
    block_size: i64,
) -> PyResult<QuantizedArrays<'py>> {
    let precision: Precision = precision.parse().map_err(to_py_err)?;
    let queries = ByteMatrix::extract(queries, "queries")?;
    let corpus = ByteMatrix::extract(corpus, "corpus")?;
    let k = count("k", k)?;
    let block_size = count("block_size", block_size)?;
    let (queries, corpus) = (queries.view(), corpus.view());
    let found = detached(py, || {
        embedforge::top_k_quantized(queries, corpus, precision, k, block_size)
    })?;
    let indices = found.indices.mapv(|i| i as i64);
    Ok((indices.into_pyarray(py), found.scores.into_pyarray(py)))
}

/// `(indices, scores)` of a rescoring: float64 scores.
type RescoredArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f64>>);

/// Re-ranks candidate rows by float queries against the dequantised corpus: ``(indices
/// int64, scores float64)``, best ``k`` per query.
#[pyfunction]
#[pyo3(signature = (queries, corpus, precision, candidates, k, ranges = None))]
pub(crate) fn rescore_quantized<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    corpus: &Bound<'py, PyAny>,
    precision: &str,
    candidates: &Bound<'py, PyAny>,
    k: i64,
    ranges: Option<&Bound<'py, PyAny>>,
) -> PyResult<RescoredArrays<'py>> {
    let precision: Precision = precision.parse().map_err(to_py_err)?;
    let queries = f32_matrix(queries, "queries")?;
    let corpus = ByteMatrix::extract(corpus, "corpus")?;
    let candidates: PyReadonlyArray2<'py, i64> = candidates.extract().map_err(|_| {
        invalid_argument("candidates", "a non-int64 array", "a 2-D int64 numpy array")
    })?;
    let ranges = ranges.map(|r| f32_matrix(r, "ranges")).transpose()?;
    let k = count("k", k)?;
    let candidates = candidates
        .as_array()
        .mapv(|c| usize::try_from(c).unwrap_or(usize::MAX));
    let (queries, corpus) = (queries.as_array(), corpus.view());
    let ranges = ranges.as_ref().map(|r| r.as_array());
    let (indices, scores) = detached(py, || {
        embedforge::rescore_quantized(queries, corpus, precision, ranges, candidates.view(), k)
    })?;
    let indices = indices.mapv(|i| i as i64);
    Ok((indices.into_pyarray(py), scores.into_pyarray(py)))
}
