//! Saving and loading an index folder (the format is documented on [`super`]).

use std::borrow::Cow;
use std::path::Path;

use safetensors::tensor::View;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::analyze::Analyzer;
use super::atomic::write_folder;
use super::build::{Postings, Vocab};
use super::intern::Interner;
use super::score::Bm25Params;
use super::Bm25Index;
use crate::error::{Error, Result};

/// The index's settings and sizes; written last, read first.
pub(super) const CONFIG_FILE: &str = "bm25_config.json";
/// The arrays.
pub(super) const ARRAYS_FILE: &str = "bm25.safetensors";
/// The words in term-id order (word analyzer).
pub(super) const VOCAB_FILE: &str = "vocab.json";
/// The tokenizer (tokenizer analyzer).
pub(super) const TOKENIZER_FILE: &str = "tokenizer.json";

/// The value of the config's `format` field.
const FORMAT: &str = "embedforge-bm25";
/// The newest `format_version` this code reads (and the one it writes).
const FORMAT_VERSION: u32 = 1;

/// `bm25_config.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Config {
    format: String,
    format_version: u32,
    method: String,
    k1: f64,
    b: f64,
    epsilon: f64,
    /// `"words"` or `"tokenizer"`.
    analyzer: String,
    lowercase: bool,
    stop_words: Vec<String>,
    num_docs: usize,
    num_terms: usize,
    num_postings: usize,
    avg_doc_length: f64,
}

/// A 1-D tensor to write.
enum Column<'a> {
    U32(&'a [u32]),
    F32(&'a [f32]),
    I64(Vec<i64>),
}

impl Column<'_> {
    fn len(&self) -> usize {
        match self {
            Self::U32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::I64(v) => v.len(),
        }
    }

    fn element_bytes(&self) -> usize {
        match self {
            Self::U32(_) | Self::F32(_) => 4,
            Self::I64(_) => 8,
        }
    }
}

/// [`Column`] with its shape, as `safetensors` wants it.
struct Tensor<'a> {
    column: Column<'a>,
    shape: [usize; 1],
}

impl<'a> Tensor<'a> {
    fn new(column: Column<'a>) -> Self {
        let shape = [column.len()];
        Self { column, shape }
    }
}

impl View for Tensor<'_> {
    fn dtype(&self) -> Dtype {
        match self.column {
            Column::U32(_) => Dtype::U32,
            Column::F32(_) => Dtype::F32,
            Column::I64(_) => Dtype::I64,
        }
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        // safetensors is little-endian; copying through to_le_bytes needs no unsafe cast.
        let bytes: Vec<u8> = match &self.column {
            Column::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Column::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Column::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.column.len() * self.column.element_bytes()
    }
}

/// Writes `index` into the folder `dir`, atomically.
pub(super) fn save(index: &Bm25Index, dir: &Path) -> Result<()> {
    let config = Config {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        method: index.params.method.to_string(),
        k1: index.params.k1,
        b: index.params.b,
        epsilon: index.params.epsilon,
        analyzer: if index.analyzer.tokenizer().is_some() {
            "tokenizer"
        } else {
            "words"
        }
        .to_owned(),
        lowercase: index.analyzer.lowercase(),
        stop_words: index.analyzer.stop_words().to_vec(),
        num_docs: index.num_docs(),
        num_terms: index.num_terms(),
        num_postings: index.postings.doc_ids.len(),
        avg_doc_length: index.avg_doc_len,
    };
    write_folder(dir, CONFIG_FILE, |staging| {
        let config_path = staging.join(CONFIG_FILE);
        let json =
            serde_json::to_string_pretty(&config).map_err(|e| format_error(&config_path, e))?;
        std::fs::write(&config_path, json)
            .map_err(|e| Error::io(&config_path, "BM25 config", e))?;

        match index.analyzer.tokenizer() {
            Some(tokenizer) => {
                let path = staging.join(TOKENIZER_FILE);
                std::fs::write(&path, tokenizer.to_json(false)?)
                    .map_err(|e| Error::io(&path, "tokenizer file", e))?;
            }
            None => {
                let path = staging.join(VOCAB_FILE);
                let json = serde_json::to_string(&index.vocab.words_by_id())
                    .map_err(|e| format_error(&path, e))?;
                std::fs::write(&path, json).map_err(|e| Error::io(&path, "BM25 vocabulary", e))?;
            }
        }

        let p = &index.postings;
        let offsets = p.offsets.iter().map(|&o| o as i64).collect();
        let tensors = [
            ("doc_lengths", Tensor::new(Column::U32(&index.doc_lengths))),
            ("term_offsets", Tensor::new(Column::I64(offsets))),
            ("doc_ids", Tensor::new(Column::U32(&p.doc_ids))),
            ("weights", Tensor::new(Column::F32(&p.weights))),
        ];
        let path = staging.join(ARRAYS_FILE);
        safetensors::serialize_to_file(tensors, None, &path)
            .map_err(|e| Error::io(&path, "BM25 arrays", std::io::Error::other(e)))?;
        // safetensors writes through a private temporary file (mode 0600); give the result the
        // permissions of an ordinary new file, like the config written above.
        let permissions = std::fs::metadata(&config_path)
            .map_err(|e| Error::io(&config_path, "BM25 config", e))?
            .permissions();
        std::fs::set_permissions(&path, permissions).map_err(|e| Error::io(&path, "BM25 arrays", e))
    })
}

/// Reads an index folder written by [`save`].
pub(super) fn load(dir: &Path) -> Result<Bm25Index> {
    if !dir.is_dir() {
        return Err(Error::NotFound {
            path: dir.to_path_buf(),
            what: "BM25 index folder".to_owned(),
        });
    }
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| Error::io(&config_path, "BM25 config", e))?;
    let config: Config = serde_json::from_str(&text).map_err(|e| format_error(&config_path, e))?;
    if config.format != FORMAT {
        return Err(Error::model_format(
            &config_path,
            format!("`format` is {:?}, expected {FORMAT:?}", config.format),
        ));
    }
    if config.format_version > FORMAT_VERSION {
        return Err(Error::model_format(
            &config_path,
            format!(
                "format_version {} is newer than this embedforge reads ({FORMAT_VERSION})",
                config.format_version
            ),
        ));
    }
    let params = Bm25Params {
        k1: config.k1,
        b: config.b,
        method: config
            .method
            .parse()
            .map_err(|e: Error| Error::model_format(&config_path, e.to_string()))?,
        epsilon: config.epsilon,
    };
    params
        .validate()
        .map_err(|e| Error::model_format(&config_path, e.to_string()))?;

    let analyzer = match config.analyzer.as_str() {
        "words" => Analyzer::words(),
        "tokenizer" => Analyzer::from_tokenizer_file(dir.join(TOKENIZER_FILE))?,
        other => {
            return Err(Error::model_format(
                &config_path,
                format!("`analyzer` is {other:?}, expected \"words\" or \"tokenizer\""),
            ))
        }
    }
    .with_lowercase(config.lowercase)
    .with_stop_words(config.stop_words.iter().cloned());

    let arrays_path = dir.join(ARRAYS_FILE);
    let bytes =
        std::fs::read(&arrays_path).map_err(|e| Error::io(&arrays_path, "BM25 arrays", e))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::model_format(&arrays_path, format!("not a valid safetensors file: {e}"))
    })?;
    let (n, t, p) = (config.num_docs, config.num_terms, config.num_postings);
    let column = |name, dtype, len| column(&tensors, &arrays_path, name, dtype, len);
    let doc_lengths = u32s(column("doc_lengths", Dtype::U32, n)?);
    let doc_ids = u32s(column("doc_ids", Dtype::U32, p)?);
    let weights: Vec<f32> = column("weights", Dtype::F32, p)?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let offsets: Vec<usize> = column("term_offsets", Dtype::I64, t + 1)?
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .map(|o| usize::try_from(o).unwrap_or(usize::MAX))
        .collect();
    drop(tensors);
    drop(bytes);
    // A corrupt file must not turn into out-of-bounds reads at query time.
    let consistent = n > 0
        && offsets.first() == Some(&0)
        && offsets.last() == Some(&p)
        && offsets.windows(2).all(|w| w[0] <= w[1])
        && doc_ids.iter().all(|&d| (d as usize) < n);
    if !consistent {
        return Err(Error::model_format(
            &arrays_path,
            "term offsets or document ids are out of range",
        ));
    }

    let vocab = if analyzer.tokenizer().is_some() {
        Vocab::Ids(t)
    } else {
        let vocab_path = dir.join(VOCAB_FILE);
        let text = std::fs::read_to_string(&vocab_path)
            .map_err(|e| Error::io(&vocab_path, "BM25 vocabulary", e))?;
        let words: Vec<String> =
            serde_json::from_str(&text).map_err(|e| format_error(&vocab_path, e))?;
        if words.len() != t {
            return Err(Error::model_format(
                &vocab_path,
                format!("{} words, expected num_terms = {t}", words.len()),
            ));
        }
        let mut interner = Interner::with_capacity(t);
        for (id, word) in words.iter().enumerate() {
            if interner.get_or_insert(word) as usize != id {
                return Err(Error::model_format(
                    &vocab_path,
                    format!("the word {word:?} occurs twice"),
                ));
            }
        }
        Vocab::Words(interner)
    };

    Ok(Bm25Index {
        params,
        analyzer,
        vocab,
        doc_lengths,
        avg_doc_len: config.avg_doc_length,
        postings: Postings {
            offsets,
            doc_ids,
            weights,
        },
    })
}

/// The bytes of the 1-D tensor `name`, checked to be `dtype` and `len` long.
fn column<'a>(
    tensors: &SafeTensors<'a>,
    path: &Path,
    name: &str,
    dtype: Dtype,
    len: usize,
) -> Result<&'a [u8]> {
    let view = tensors
        .tensor(name)
        .map_err(|_| Error::model_format(path, format!("no tensor `{name}`")))?;
    if view.dtype() != dtype || view.shape() != [len] {
        return Err(Error::model_format(
            path,
            format!(
                "tensor `{name}` is {:?} {:?}, expected {dtype:?} [{len}] (from {CONFIG_FILE})",
                view.dtype(),
                view.shape()
            ),
        ));
    }
    Ok(view.data())
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

fn format_error(path: &Path, e: serde_json::Error) -> Error {
    Error::model_format(path, e.to_string())
}
