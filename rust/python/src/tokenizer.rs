//! `Tokenizer` and `length_order`.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use embedforge::{BatchTokenizer, PaddedOptions, Padding};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{detached, extract_texts, opt_count, token_id};
use crate::errors::to_py_err;

/// `__reduce__`'s result: the rebuilding function and its arguments (json, pad id, pad type id, left).
type Reduced<'py> = (Bound<'py, PyAny>, (String, u32, u32, bool));

/// `encode_flat`'s result: flat ids and per-text offsets.
type IdsAndOffsets<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// A Hugging Face ``tokenizer.json`` tokenizer that encodes whole batches in Rust.
#[pyclass(name = "Tokenizer", module = "embedforge._core", frozen)]
pub(crate) struct PyTokenizer {
    // Calls clone the Arc and run without the lock; `set_padding` copies the tokenizer only
    // if a call is still using the old one.
    inner: RwLock<Arc<BatchTokenizer>>,
}

impl PyTokenizer {
    fn new(tokenizer: BatchTokenizer) -> Self {
        Self {
            inner: RwLock::new(Arc::new(tokenizer)),
        }
    }

    /// The current tokenizer.
    pub(crate) fn get(&self) -> Arc<BatchTokenizer> {
        Arc::clone(&self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }
}

#[pymethods]
impl PyTokenizer {
    /// Load a ``tokenizer.json`` file.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        detached(py, || BatchTokenizer::from_file(&path)).map(Self::new)
    }

    /// Load a tokenizer from the text of a ``tokenizer.json`` file.
    #[staticmethod]
    fn from_str(py: Python<'_>, json: &str) -> PyResult<Self> {
        detached(py, || BatchTokenizer::from_json(json)).map(Self::new)
    }

    /// The tokenizer serialised as ``tokenizer.json`` text.
    fn to_str(&self, py: Python<'_>) -> PyResult<String> {
        let tokenizer = self.get();
        detached(py, || tokenizer.to_json(false))
    }

    /// Vocabulary size, added tokens included.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.get().vocab_size()
    }

    /// Id used to pad ``input_ids``.
    #[getter]
    fn pad_id(&self) -> u32 {
        self.get().padding().pad_id
    }

    /// Whether padding goes on the left.
    #[getter]
    fn padding_left(&self) -> bool {
        self.get().padding().left
    }

    /// Set the padding id, token type id and side used by ``encode_padded``.
    #[pyo3(signature = (pad_id, pad_type_id = 0, padding_left = false))]
    fn set_padding(&self, pad_id: i64, pad_type_id: i64, padding_left: bool) -> PyResult<()> {
        let padding = Padding {
            pad_id: token_id("pad_id", pad_id)?,
            pad_type_id: token_id("pad_type_id", pad_type_id)?,
            left: padding_left,
        };
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        Arc::make_mut(&mut guard).set_padding(padding);
        Ok(())
    }

    /// Encode a batch into padded int64 ``input_ids``, ``attention_mask``, ``token_type_ids``
    /// (and ``prompt_length`` with a prompt).
    #[pyo3(signature = (texts, pairs = None, max_length = None, prompt = None, add_special_tokens = true))]
    fn encode_padded<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        pairs: Option<&Bound<'py, PyAny>>,
        max_length: Option<i64>,
        prompt: Option<String>,
        add_special_tokens: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let texts = extract_texts(texts, "texts")?;
        let pairs = pairs.map(|p| extract_texts(p, "pairs")).transpose()?;
        let options = padded_options(max_length, prompt.as_deref(), add_special_tokens)?;
        let tokenizer = self.get();
        let batch = detached(py, || {
            tokenizer.encode_padded(&texts, pairs.as_deref(), &options)
        })?;
        let out = PyDict::new(py);
        out.set_item("input_ids", batch.input_ids.into_pyarray(py))?;
        out.set_item("attention_mask", batch.attention_mask.into_pyarray(py))?;
        out.set_item("token_type_ids", batch.token_type_ids.into_pyarray(py))?;
        if let Some(n) = batch.prompt_length {
            out.set_item("prompt_length", ndarray::arr0(n as i64).into_pyarray(py))?;
        }
        Ok(out)
    }

    /// Each text's token count in ``encode_padded`` with the same options (no padding).
    #[pyo3(signature = (texts, max_length = None, prompt = None, add_special_tokens = true))]
    fn token_counts<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        max_length: Option<i64>,
        prompt: Option<String>,
        add_special_tokens: bool,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let texts = extract_texts(texts, "texts")?;
        let options = padded_options(max_length, prompt.as_deref(), add_special_tokens)?;
        let tokenizer = self.get();
        let counts = detached(py, || tokenizer.token_counts(&texts, &options))?;
        Ok(counts
            .into_iter()
            .map(|n| n as i64)
            .collect::<Vec<_>>()
            .into_pyarray(py))
    }

    /// Encode without special tokens into flat ids and per-text start offsets.
    #[pyo3(signature = (texts, max_length = None, prompt = None))]
    fn encode_flat<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        max_length: Option<i64>,
        prompt: Option<String>,
    ) -> PyResult<IdsAndOffsets<'py>> {
        let texts = extract_texts(texts, "texts")?;
        let max_length = opt_count("max_length", max_length)?;
        let tokenizer = self.get();
        let batch = detached(py, || {
            tokenizer.encode_flat(&texts, max_length, prompt.as_deref())
        })?;
        Ok((batch.ids.into_pyarray(py), batch.offsets.into_pyarray(py)))
    }

    /// Token ids of one text, untruncated.
    #[pyo3(signature = (text, add_special_tokens = true))]
    fn encode_ids(&self, text: &str, add_special_tokens: bool) -> PyResult<Vec<u32>> {
        self.get()
            .encode_ids(text, add_special_tokens)
            .map_err(to_py_err)
    }

    /// The number of leading positions a prompt occupies (see ``encode_padded``).
    #[pyo3(signature = (prompt, max_length = None))]
    fn prompt_length(&self, prompt: &str, max_length: Option<i64>) -> PyResult<usize> {
        let max_length = opt_count("max_length", max_length)?;
        self.get()
            .prompt_length(prompt, max_length)
            .map_err(to_py_err)
    }

    /// The token string of an id.
    fn id_to_token(&self, id: i64) -> Option<String> {
        u32::try_from(id)
            .ok()
            .and_then(|id| self.get().id_to_token(id))
    }

    /// The id of a token string.
    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.get().token_to_id(token)
    }

    /// All token strings, indexed by id (ids without a token are empty strings).
    fn vocab(&self) -> Vec<String> {
        self.get().vocab()
    }

    /// Pickle support, so a model holding a tokenizer can be sent to worker processes: the
    /// ``tokenizer.json`` text plus the padding, which that text does not carry.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Reduced<'py>> {
        let tokenizer = self.get();
        let json = detached(py, || tokenizer.to_json(false))?;
        let padding = tokenizer.padding();
        let restore = py
            .import("embedforge._core")?
            .getattr("tokenizer_from_state")?;
        Ok((
            restore,
            (json, padding.pad_id, padding.pad_type_id, padding.left),
        ))
    }

    fn __repr__(&self) -> String {
        let tokenizer = self.get();
        format!(
            "Tokenizer(vocab_size={}, pad_id={}, padding_left={})",
            tokenizer.vocab_size(),
            tokenizer.padding().pad_id,
            if tokenizer.padding().left {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// Rebuild a pickled [`PyTokenizer`] from its ``__reduce__`` state.
#[pyfunction]
pub(crate) fn tokenizer_from_state(
    py: Python<'_>,
    json: &str,
    pad_id: i64,
    pad_type_id: i64,
    padding_left: bool,
) -> PyResult<PyTokenizer> {
    let tokenizer = PyTokenizer::from_str(py, json)?;
    tokenizer.set_padding(pad_id, pad_type_id, padding_left)?;
    Ok(tokenizer)
}

/// Indices that sort ``texts`` by decreasing character length (stable).
#[pyfunction]
pub(crate) fn length_order<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let texts = extract_texts(texts, "texts")?;
    let order = detached(py, || {
        Ok(embedforge::length_order(&texts)
            .into_iter()
            .map(|i| i as i64)
            .collect::<Vec<_>>())
    })?;
    Ok(order.into_pyarray(py))
}

/// The options of `encode_padded` and `token_counts`, with `max_length` checked.
fn padded_options(
    max_length: Option<i64>,
    prompt: Option<&str>,
    add_special_tokens: bool,
) -> PyResult<PaddedOptions<'_>> {
    Ok(PaddedOptions {
        max_length: opt_count("max_length", max_length)?,
        prompt,
        add_special_tokens,
    })
}
