//! embedforge's Rust core: the hot paths of a sentence-transformers-compatible stack.
//!
//! # Example
//!
//! Load a static model folder saved by sentence-transformers, model2vec or embedforge, embed a
//! corpus and two queries, and find the corpus texts closest to each query. (Hidden setup lines
//! write a tiny model2vec folder: a word-level `tokenizer.json`, one 3-dimensional row per word
//! in `model.safetensors`, and a `config.json` asking for normalised embeddings.)
//!
//! ```
//! use embedforge::{top_k, ScoreFunction, StaticModel, DEFAULT_SEARCH_BLOCK};
//!
//! # let dir = std::env::temp_dir().join(format!("embedforge-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # // Axes: animals, money, weather; words outside the vocabulary map to the zero row of [UNK].
//! # let words = ["[UNK]", "cat", "kitten", "stock", "prices", "market", "rain", "sunny"];
//! # let rows: [[f32; 3]; 8] = [
//! #     [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0],
//! #     [0.1, 0.9, 0.0], [0.0, 1.0, 0.1], [0.0, 0.0, 1.0], [0.0, 0.1, 0.9],
//! # ];
//! # let vocab: Vec<String> = words.iter().enumerate().map(|(i, w)| format!("\"{w}\": {i}")).collect();
//! # std::fs::write(dir.join("tokenizer.json"), format!(
//! #     r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
//! #         "normalizer": {{"type": "Lowercase"}}, "pre_tokenizer": {{"type": "Whitespace"}},
//! #         "post_processor": null, "decoder": null,
//! #         "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
//! #     vocab.join(", "),
//! # )).unwrap();
//! # // safetensors: 8-byte little-endian header length, JSON header, then the raw f32 data.
//! # let data: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
//! # let header = format!(
//! #     r#"{{"embeddings": {{"dtype": "F32", "shape": [{}, 3], "data_offsets": [0, {}]}}}}"#,
//! #     rows.len(),
//! #     data.len(),
//! # );
//! # let mut file = (header.len() as u64).to_le_bytes().to_vec();
//! # file.extend_from_slice(header.as_bytes());
//! # file.extend_from_slice(&data);
//! # std::fs::write(dir.join("model.safetensors"), file).unwrap();
//! # std::fs::write(dir.join("config.json"), r#"{"model_type": "model2vec", "normalize": true}"#).unwrap();
//! let model = StaticModel::load(&dir)?;
//!
//! let corpus = [
//!     "The cat sleeps in the sun",
//!     "Stock prices fell sharply",
//!     "Rain is expected tomorrow",
//! ];
//! let corpus_embeddings = model.embed(&corpus)?; // [3, dim], L2-normalised as the folder says
//! let queries = model.embed(&["where is my kitten", "is it sunny"])?;
//!
//! // The two best corpus rows for each query, best first.
//! let hits = top_k(
//!     queries.view(),
//!     corpus_embeddings.view(),
//!     2,
//!     ScoreFunction::Cosine,
//!     DEFAULT_SEARCH_BLOCK,
//! )?;
//! assert_eq!(hits.indices.row(0)[0], 0); // the kitten query finds the cat
//! assert_eq!(hits.indices.row(1)[0], 2); // the sunny query finds the rain
//! assert!(hits.scores[[0, 0]] > hits.scores[[0, 1]]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), embedforge::Error>(())
//! ```
//!
//! # What is here
//!
//! - [`StaticModel`], [`embed_static`], [`embedding_bag_mean`]: static-embedding inference
//!   (sentence-transformers `StaticEmbedding` and model2vec folders).
//! - [`BatchTokenizer`]: whole-batch tokenisation of `tokenizer.json` tokenizers into padded
//!   transformer inputs ([`PaddedBatch`]) or flat embedding-bag inputs ([`FlatBatch`]), plus
//!   [`length_order`] for length bucketing.
//! - [`top_k`] and [`top_k_quantized`] / [`rescore_quantized`]: exact top-k search of float or
//!   quantised (int8, uint8, binary) embeddings.
//! - [`Bm25Index`]: Okapi BM25 lexical search (parallel indexing, top-k queries, save/load),
//!   with an [`Analyzer`] of words or of a `tokenizer.json`.
//! - [`retrieval_metrics`]: accuracy, precision, recall, MRR, nDCG and MAP at cutoffs, as
//!   sentence-transformers' `InformationRetrievalEvaluator` computes them.
//! - [`intern_text_columns`] and [`no_duplicates_pass`]: the row loops of the no-duplicates
//!   batch sampler.
//! - [`set_num_threads`] / [`num_threads`] / [`mark_forked`]: one thread cap for all of it.
//! - [`Error`] / [`Result`]: the one error type.
//!
//! The crate has no Python dependency; the `embedforge-python` crate wraps it.

mod adamw;
mod bm25;
mod contrastive;
mod error;
mod host_threads;
mod metrics;
mod parallel;
mod pooling;
mod sampler;
mod search;
mod static_embedding;
mod tokenize;
mod weights;

pub use adamw::{adamw_sparse_rows, AdamWSettings, AdamWState};
pub use bm25::{Analyzer, Bm25Index, Bm25Method, Bm25Params, ENGLISH_STOP_WORDS};
pub use contrastive::{accumulate_scaled_probs, softmax_rows, ScaledDots, SoftmaxRows};
pub use error::{Error, Result};
pub use host_threads::{use_openmp_team, uses_openmp_team, GompParallel};
pub use metrics::{retrieval_metrics, RetrievalCutoffs, RetrievalMetrics};
pub use parallel::{is_forked, mark_forked, num_threads, set_num_threads, NUM_THREADS_ENV};
pub use pooling::{embedding_bag_mean, l2_normalize, TokenId, NORMALIZE_EPS};
pub use sampler::{intern_text_columns, no_duplicates_pass, Batches, TextChunk};
pub use search::{
    rescore_quantized, top_k, top_k_quantized, Precision, QuantizedCorpus, QuantizedTopK,
    ScoreFunction, TopK, DEFAULT_SEARCH_BLOCK,
};
pub use static_embedding::{
    embed_static, StaticModel, CONFIG_FILE, EMBEDDING_TENSORS, MODULES_FILE, TOKENIZER_FILE,
    WEIGHTS_FILE,
};
pub use tokenize::{length_order, BatchTokenizer, FlatBatch, PaddedBatch, PaddedOptions, Padding};
pub use weights::SafetensorsFile;

/// Re-export of the `ndarray` crate, whose arrays this API takes and returns.
pub use ndarray;
/// Re-export of the `tokenizers` crate, whose types appear in this API.
pub use tokenizers;
