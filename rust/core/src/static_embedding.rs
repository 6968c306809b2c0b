//! Static embedding models: a tokenizer plus one embedding row per token, mean-pooled.
//!
//! Two folder layouts load: a sentence-transformers model whose `modules.json` lists a
//! `StaticEmbedding` module, and a model2vec folder (`model.safetensors` + `tokenizer.json`
//! + `config.json`).

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2, Axis};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::pooling::embedding_bag_mean;
use crate::tokenize::BatchTokenizer;
use crate::weights::SafetensorsFile;

/// File holding the embedding matrix.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File holding the tokenizer.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// sentence-transformers' list of modules.
pub const MODULES_FILE: &str = "modules.json";
/// model2vec's configuration.
pub const CONFIG_FILE: &str = "config.json";
/// Embedding tensor names, in order of preference: sentence-transformers', then model2vec's.
pub const EMBEDDING_TENSORS: [&str; 2] = ["embedding.weight", "embeddings"];

/// Tokenises `texts` without special tokens and mean-pools their rows of `weights`.
pub fn embed_static<S: AsRef<str> + Sync>(
    tokenizer: &BatchTokenizer,
    weights: ArrayView2<'_, f32>,
    texts: &[S],
    normalize: bool,
    max_length: Option<usize>,
) -> Result<Array2<f32>> {
    let batch = tokenizer.encode_flat(texts, max_length, None)?;
    embedding_bag_mean(weights, &batch.ids, &batch.offsets, normalize)
}

/// A loaded static embedding model.
#[derive(Debug, Clone)]
pub struct StaticModel {
    tokenizer: BatchTokenizer,
    weights: Array2<f32>,
    normalize: bool,
}

/// One entry of `modules.json`.
#[derive(Debug, Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The part of model2vec's `config.json` that matters here.
#[derive(Debug, Deserialize)]
struct Model2VecConfig {
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    normalize: Option<bool>,
}

impl StaticModel {
    /// Loads a sentence-transformers StaticEmbedding folder or a model2vec folder.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.exists() {
            return Err(Error::NotFound {
                path: dir.to_path_buf(),
                what: "model folder".into(),
            });
        }
        if !dir.is_dir() {
            return Err(Error::model_format(
                dir,
                "expected a model folder, found a file",
            ));
        }
        let (module_dir, normalize) = locate(dir)?;
        let tokenizer = BatchTokenizer::from_file(module_dir.join(TOKENIZER_FILE))?;
        let weights = read_embeddings(&module_dir.join(WEIGHTS_FILE))?;
        Self::check_vocab(&tokenizer, &weights, &module_dir.join(WEIGHTS_FILE))?;
        Ok(Self {
            tokenizer,
            weights,
            normalize,
        })
    }

    /// Builds a model from its parts; fails if the tokenizer has more tokens than `weights` rows.
    pub fn new(tokenizer: BatchTokenizer, weights: Array2<f32>, normalize: bool) -> Result<Self> {
        Self::check_vocab(&tokenizer, &weights, Path::new("<weights>"))?;
        Ok(Self {
            tokenizer,
            weights,
            normalize,
        })
    }

    fn check_vocab(tokenizer: &BatchTokenizer, weights: &Array2<f32>, path: &Path) -> Result<()> {
        let vocab = tokenizer.vocab_size();
        let rows = weights.nrows();
        if vocab > rows {
            return Err(Error::model_format(
                path,
                format!("the tokenizer has {vocab} tokens but the embedding matrix has only {rows} rows"),
            ));
        }
        Ok(())
    }

    /// Embeds texts, L2-normalised if the model says so.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Array2<f32>> {
        self.embed_with(texts, None)
    }

    /// Embeds texts; `normalize` overrides the model's own setting when given.
    pub fn embed_with<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        normalize: Option<bool>,
    ) -> Result<Array2<f32>> {
        embed_static(
            &self.tokenizer,
            self.weights.view(),
            texts,
            normalize.unwrap_or(self.normalize),
            None,
        )
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.weights.ncols()
    }

    /// Whether [`Self::embed`] L2-normalises.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &BatchTokenizer {
        &self.tokenizer
    }

    /// The embedding matrix, one row per token id.
    pub fn weights(&self) -> ArrayView2<'_, f32> {
        self.weights.view()
    }
}

/// Finds the folder holding the weights and tokenizer, and whether to normalise.
fn locate(dir: &Path) -> Result<(PathBuf, bool)> {
    let modules_path = dir.join(MODULES_FILE);
    if modules_path.is_file() {
        let modules: Vec<ModuleEntry> = read_json(&modules_path)?;
        let is =
            |m: &ModuleEntry, name: &str| m.kind == name || m.kind.ends_with(&format!(".{name}"));
        if let Some(pos) = modules.iter().position(|m| is(m, "StaticEmbedding")) {
            let path = modules[pos].path.trim();
            let module_dir = if path.is_empty() || path == "." {
                dir.to_path_buf()
            } else {
                dir.join(path)
            };
            // Normalize has no files of its own, so its folder may legitimately be missing.
            let normalize = modules[pos + 1..].iter().any(|m| is(m, "Normalize"));
            return Ok((module_dir, normalize));
        }
        let config_path = dir.join(CONFIG_FILE);
        let is_model2vec = config_path.is_file()
            && read_json::<Model2VecConfig>(&config_path)?
                .model_type
                .as_deref()
                == Some("model2vec");
        if !is_model2vec {
            let kinds: Vec<&str> = modules.iter().map(|m| m.kind.as_str()).collect();
            return Err(Error::model_format(
                &modules_path,
                format!("no StaticEmbedding module (modules: {})", kinds.join(", ")),
            ));
        }
    }
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        return Err(Error::NotFound {
            path: config_path,
            what: format!("model2vec config (or a {MODULES_FILE} with a StaticEmbedding module)"),
        });
    }
    let config: Model2VecConfig = read_json(&config_path)?;
    Ok((dir.to_path_buf(), config.normalize.unwrap_or(false)))
}

/// The embedding matrix, with model2vec's optional token `mapping` and per-token `weights`
/// folded in the way sentence-transformers does: `row[t] = embeddings[mapping[t]] * weights[t]`.
fn read_embeddings(path: &Path) -> Result<Array2<f32>> {
    let file = SafetensorsFile::read(path)?;
    let mut name = None;
    for candidate in EMBEDDING_TENSORS {
        if file.contains(candidate)? {
            name = Some(candidate);
            break;
        }
    }
    let Some(name) = name else {
        return Err(Error::model_format(
            path,
            format!(
                "no embedding tensor: expected one of {} (tensors: {})",
                EMBEDDING_TENSORS.join(", "),
                file.names()?.join(", ")
            ),
        ));
    };
    let mut embeddings = file.matrix_f32(name)?;
    if name == "embeddings" && file.contains("mapping")? {
        let mapping = file.vector_i64("mapping")?;
        let rows = embeddings.nrows();
        let mut indices = Vec::with_capacity(mapping.len());
        for (t, &m) in mapping.iter().enumerate() {
            match usize::try_from(m) {
                Ok(i) if i < rows => indices.push(i),
                _ => {
                    return Err(Error::model_format(
                        path,
                        format!("mapping[{t}] = {m} is not a row of `embeddings` (0..{rows})"),
                    ))
                }
            }
        }
        embeddings = embeddings.select(Axis(0), &indices);
    }
    if name == "embeddings" && file.contains("weights")? {
        let token_weights = file.vector_f32("weights")?;
        if token_weights.len() != embeddings.nrows() {
            return Err(Error::model_format(
                path,
                format!(
                    "`weights` has {} entries but there are {} embedding rows",
                    token_weights.len(),
                    embeddings.nrows()
                ),
            ));
        }
        for (mut row, &w) in embeddings.axis_iter_mut(Axis(0)).zip(&token_weights) {
            row *= w;
        }
    }
    Ok(embeddings)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "file", e))?;
    serde_json::from_str(&text).map_err(|e| Error::model_format(path, format!("invalid JSON: {e}")))
}
