//! `top_k`: exact nearest-neighbour search over float32 embeddings.

use embedforge::ScoreFunction;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;

use crate::convert::{count, detached, f32_matrix};
use crate::errors::to_py_err;

/// `(indices, scores)` as numpy arrays.
type TopKArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

// The block_size default is written out (stubtest compares it with the stub); it equals
// embedforge::DEFAULT_SEARCH_BLOCK, which a unit test below pins.

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

#[cfg(test)]
mod tests {
    #[test]
    fn default_block_matches_core() {
        assert_eq!(embedforge::DEFAULT_SEARCH_BLOCK, 4096);
    }
}
