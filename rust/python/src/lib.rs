//! `embedforge._core`: thin PyO3 wrappers around the `embedforge` crate.
//!
//! Every function here converts its arguments, releases the GIL through [`convert::detached`]
//! for the actual work, and converts the result back; the logic lives in `embedforge`.

mod adamw;
mod bm25;
mod contrastive;
mod convert;
mod errors;
mod metrics;
mod sampler;
mod search;
mod static_model;
mod threads;
mod tokenizer;

use pyo3::prelude::*;

// Tokenisation allocates many small strings and vectors per text; mimalloc makes batch
// encoding about 20% faster than the system allocator. It only serves Rust allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The native half of embedforge.
#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    threads::register_fork_handler()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<tokenizer::PyTokenizer>()?;
    m.add_class::<static_model::PyStaticModel>()?;
    m.add_class::<bm25::PyBm25Analyzer>()?;
    m.add_class::<bm25::PyBm25Index>()?;
    m.add_function(wrap_pyfunction!(tokenizer::length_order, m)?)?;
    m.add_function(wrap_pyfunction!(tokenizer::tokenizer_from_state, m)?)?;
    m.add_function(wrap_pyfunction!(static_model::embedding_bag_mean, m)?)?;
    m.add_function(wrap_pyfunction!(static_model::embed_static, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::retrieval_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(search::top_k, m)?)?;
    m.add_function(wrap_pyfunction!(sampler::intern_text_columns, m)?)?;
    m.add_function(wrap_pyfunction!(sampler::no_duplicates_pass, m)?)?;
    m.add_function(wrap_pyfunction!(search::top_k_quantized, m)?)?;
    m.add_function(wrap_pyfunction!(search::rescore_quantized, m)?)?;
    m.add_function(wrap_pyfunction!(contrastive::softmax_rows, m)?)?;
    m.add_function(wrap_pyfunction!(adamw::adamw_sparse_rows, m)?)?;
    m.add_function(wrap_pyfunction!(contrastive::accumulate_scaled_probs, m)?)?;
    m.add_function(wrap_pyfunction!(threads::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(threads::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(threads::use_openmp_team, m)?)?;
    m.add_function(wrap_pyfunction!(threads::uses_openmp_team, m)?)?;
    Ok(())
}
