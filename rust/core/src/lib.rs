//! embedforge's Rust core: the hot paths of a sentence-transformers-compatible stack.
//!
//! - [`BatchTokenizer`]: whole-batch tokenisation of `tokenizer.json` tokenizers into padded
//!   transformer inputs ([`PaddedBatch`]) or flat embedding-bag inputs ([`FlatBatch`]), plus
//!   [`length_order`] for length bucketing.
//! - [`embedding_bag_mean`], [`embed_static`] and [`StaticModel`]: static-embedding inference
//!   (sentence-transformers `StaticEmbedding` and model2vec folders).
//! - [`Bm25Index`]: Okapi BM25 lexical search (parallel indexing, top-k queries, save/load),
//!   with an [`Analyzer`] of words or of a `tokenizer.json`.
//! - [`set_num_threads`] / [`num_threads`] / [`mark_forked`]: one thread cap for all of it.
//!
//! The crate has no Python dependency; the `embedforge-python` crate wraps it.

mod bm25;
mod error;
mod metrics;
mod parallel;
mod pooling;
mod sampler;
mod search;
mod static_embedding;
mod tokenize;
mod weights;

pub use bm25::{Analyzer, Bm25Index, Bm25Method, Bm25Params, ENGLISH_STOP_WORDS};
pub use error::{Error, Result};
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
