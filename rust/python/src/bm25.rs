//! `BM25Analyzer` and `BM25Index`: the native half of `embedforge.util.BM25`.

use std::path::PathBuf;

use embedforge::{Analyzer, Bm25Index, Bm25Method, Bm25Params, ENGLISH_STOP_WORDS};
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;

use crate::convert::{count, detached, extract_texts};
use crate::errors::to_py_err;

/// `(ids, scores)` as numpy arrays.
type TopKArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// How texts become BM25 terms: lowercased words, or the token ids of a ``tokenizer.json``.
#[pyclass(name = "BM25Analyzer", module = "embedforge._core", frozen)]
pub(crate) struct PyBm25Analyzer {
    inner: Analyzer,
}

#[pymethods]
impl PyBm25Analyzer {
    #[new]
    #[pyo3(signature = (lowercase = true, stopwords = None, tokenizer = None))]
    fn new(
        py: Python<'_>,
        lowercase: bool,
        stopwords: Option<Vec<String>>,
        tokenizer: Option<PathBuf>,
    ) -> PyResult<Self> {
        let analyzer = match tokenizer {
            Some(path) => detached(py, || Analyzer::from_tokenizer_file(&path))?,
            None => Analyzer::words(),
        };
        let inner = analyzer
            .with_lowercase(lowercase)
            .with_stop_words(stopwords.unwrap_or_default());
        Ok(Self { inner })
    }

    /// The built-in English stop-word list.
    #[staticmethod]
    fn english_stopwords() -> Vec<&'static str> {
        ENGLISH_STOP_WORDS.to_vec()
    }

    /// Whether texts and stop words are lowercased first.
    #[getter]
    fn lowercase(&self) -> bool {
        self.inner.lowercase()
    }

    /// The stop words (sorted).
    #[getter]
    fn stopwords(&self) -> Vec<String> {
        self.inner.stop_words().to_vec()
    }

    /// Whether the terms are a tokenizer's token ids.
    #[getter]
    fn has_tokenizer(&self) -> bool {
        self.inner.tokenizer().is_some()
    }

    /// The terms of every text, stop words removed (words, or token strings).
    fn tokenize(&self, py: Python<'_>, texts: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<String>>> {
        let texts = extract_texts(texts, "texts")?;
        let analyzer = &self.inner;
        detached(py, || texts.iter().map(|t| analyzer.analyze(t)).collect())
    }
}

/// An Okapi BM25 index over a corpus of texts.
#[pyclass(name = "BM25Index", module = "embedforge._core", frozen)]
pub(crate) struct PyBm25Index {
    inner: Bm25Index,
}

#[pymethods]
impl PyBm25Index {
    /// Index ``corpus`` (one document per text) in parallel.
    #[staticmethod]
    #[pyo3(signature = (corpus, analyzer, k1 = 1.5, b = 0.75, method = "lucene"))]
    fn build(
        py: Python<'_>,
        corpus: &Bound<'_, PyAny>,
        analyzer: &Bound<'_, PyBm25Analyzer>,
        k1: f64,
        b: f64,
        method: &str,
    ) -> PyResult<Self> {
        let method: Bm25Method = method.parse().map_err(to_py_err)?;
        let params = Bm25Params {
            k1,
            b,
            method,
            ..Bm25Params::default()
        };
        // Checked before the corpus is copied out of Python.
        params.validate().map_err(to_py_err)?;
        let corpus = extract_texts(corpus, "corpus")?;
        let analyzer = analyzer.get().inner.clone();
        detached(py, || Bm25Index::build(&corpus, params, analyzer)).map(|inner| Self { inner })
    }

    /// Load an index folder written by ``save``.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        detached(py, || Bm25Index::load(&path)).map(|inner| Self { inner })
    }

    /// Write the index into the folder ``path``, atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let index = &self.inner;
        detached(py, || index.save(&path))
    }

    /// The best ``min(k, num_docs)`` documents per query: ``(ids int64 [q, k'], scores float32
    /// [q, k'])``, best first, ties to the lower id.
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: i64,
    ) -> PyResult<TopKArrays<'py>> {
        let queries = extract_texts(queries, "queries")?;
        let k = count("k", k)?;
        let index = &self.inner;
        let found = detached(py, || index.search(&queries, k))?;
        // Ids fit in i64: they index documents held in memory.
        let ids = found.indices.mapv(|i| i as i64);
        Ok((ids.into_pyarray(py), found.scores.into_pyarray(py)))
    }

    /// Every document's score for ``query``: float32 ``[num_docs]``.
    fn get_scores<'py>(&self, py: Python<'py>, query: &str) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let index = &self.inner;
        let scores = detached(py, || index.scores(query))?;
        Ok(scores.into_pyarray(py))
    }

    /// The analyzer documents and queries go through.
    #[getter]
    fn analyzer(&self) -> PyBm25Analyzer {
        PyBm25Analyzer {
            inner: self.inner.analyzer().clone(),
        }
    }

    /// Term-frequency saturation ``k1``.
    #[getter]
    fn k1(&self) -> f64 {
        self.inner.params().k1
    }

    /// Length normalisation ``b``.
    #[getter]
    fn b(&self) -> f64 {
        self.inner.params().b
    }

    /// ``"lucene"`` or ``"okapi"``.
    #[getter]
    fn method(&self) -> &'static str {
        self.inner.params().method.as_str()
    }

    /// Number of documents.
    #[getter]
    fn num_docs(&self) -> usize {
        self.inner.num_docs()
    }

    /// Number of term ids (distinct words, or the tokenizer's vocabulary size).
    #[getter]
    fn num_terms(&self) -> usize {
        self.inner.num_terms()
    }

    /// Mean document length in terms.
    #[getter]
    fn avg_doc_length(&self) -> f64 {
        self.inner.avg_doc_len()
    }

    fn __len__(&self) -> usize {
        self.inner.num_docs()
    }
}
