//! `StaticModel`, `embedding_bag_mean` and `embed_static`.

use std::path::PathBuf;

use embedforge::StaticModel;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;

use crate::convert::{as_slice, detached, extract_texts, f32_matrix, i64_vector, opt_count};
use crate::tokenizer::PyTokenizer;

/// A saved static embedding model (sentence-transformers StaticEmbedding or model2vec folder).
#[pyclass(name = "StaticModel", module = "embedforge._core", frozen)]
pub(crate) struct PyStaticModel {
    inner: StaticModel,
}

#[pymethods]
impl PyStaticModel {
    /// Load a model folder.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        detached(py, || StaticModel::load(&path)).map(|inner| Self { inner })
    }

    /// Embedding width.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Whether ``encode`` L2-normalises by default.
    #[getter]
    fn normalize(&self) -> bool {
        self.inner.normalize()
    }

    /// Embed texts as float32 rows.
    #[pyo3(signature = (texts, normalize = None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        normalize: Option<bool>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let texts = extract_texts(texts, "texts")?;
        let model = &self.inner;
        let out = detached(py, || model.embed_with(&texts, normalize))?;
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "StaticModel(vocab_size={}, dim={}, normalize={})",
            self.inner.tokenizer().vocab_size(),
            self.inner.dim(),
            if self.inner.normalize() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// Mean of ``weights`` rows per bag (``torch.nn.EmbeddingBag(mode="mean")``).
#[pyfunction]
#[pyo3(signature = (weights, ids, offsets, normalize = false))]
pub(crate) fn embedding_bag_mean<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    normalize: bool,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let weights = f32_matrix(weights, "weights")?;
    let ids = i64_vector(ids, "ids")?;
    let offsets = i64_vector(offsets, "offsets")?;
    let (weights, ids, offsets) = (weights.as_array(), as_slice(&ids), as_slice(&offsets));
    let out = detached(py, || {
        embedforge::embedding_bag_mean(weights, &ids, &offsets, normalize)
    })?;
    Ok(out.into_pyarray(py))
}

/// Tokenise ``texts`` without special tokens and mean-pool their rows of ``weights``.
#[pyfunction]
#[pyo3(signature = (tokenizer, weights, texts, normalize = false, max_length = None))]
pub(crate) fn embed_static<'py>(
    py: Python<'py>,
    tokenizer: &Bound<'py, PyTokenizer>,
    weights: &Bound<'py, PyAny>,
    texts: &Bound<'py, PyAny>,
    normalize: bool,
    max_length: Option<i64>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let tokenizer = tokenizer.get().get();
    let weights = f32_matrix(weights, "weights")?;
    let texts = extract_texts(texts, "texts")?;
    let max_length = opt_count("max_length", max_length)?;
    let weights = weights.as_array();
    let out = detached(py, || {
        embedforge::embed_static(&tokenizer, weights, &texts, normalize, max_length)
    })?;
    Ok(out.into_pyarray(py))
}
