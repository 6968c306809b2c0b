//! Exact top-k search of query embeddings against a corpus of embeddings.
//!
//! Cosine and dot product run through a register-tiled SIMD kernel ([`panel`]): the corpus
//! is packed block by block into cache-sized panels (normalised on the fly for cosine) and
//! every tile of scores goes straight into per-query collectors ([`select`]) whose moving
//! threshold rejects almost every candidate with one comparison; no score matrix is ever
//! written. Euclidean and Manhattan distances take a direct loop ([`distance`]). Threads
//! take contiguous parts of the corpus (or of the queries, for small corpora), so memory
//! stays at the inputs plus `O(threads * (block + queries * k))`, and the corpus may be a
//! memory map larger than RAM: each row is read once, when its block is packed.
//!
//! Quantised corpora (int8, uint8, binary) are searched by [`quantized`].

mod distance;
mod panel;
mod quantized;
// `scan` and `select` are crate-visible so that other scorers (bm25) reuse the same top-k selection.
pub(crate) mod scan;
mod screened;
pub(crate) mod select;

use std::str::FromStr;

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};

pub use quantized::{
    rescore_quantized, top_k_quantized, Precision, QuantizedCorpus, QuantizedTopK,
};

/// Default number of corpus rows scored at a time.
pub const DEFAULT_SEARCH_BLOCK: usize = 4096;

/// Same floor as `torch.nn.functional.normalize`, so all-zero rows score 0 instead of NaN.
const NORM_EPS: f32 = 1e-12;

/// How a query and a corpus row are scored; higher is better for all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreFunction {
    /// Cosine similarity.
    Cosine,
    /// Dot product.
    Dot,
    /// Negative Euclidean (L2) distance.
    Euclidean,
    /// Negative Manhattan (L1) distance.
    Manhattan,
}

impl FromStr for ScoreFunction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cosine" | "cos" | "cos_sim" => Ok(Self::Cosine),
            "dot" | "dot_score" => Ok(Self::Dot),
            "euclidean" | "euclidean_sim" => Ok(Self::Euclidean),
            "manhattan" | "manhattan_sim" => Ok(Self::Manhattan),
            other => Err(Error::invalid_argument(
                "score",
                format!("{other:?}"),
                "one of \"cosine\", \"dot\", \"euclidean\", \"manhattan\"",
            )),
        }
    }
}

/// The result of [`top_k`]: row `i` holds query `i`'s best corpus rows, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    /// Corpus row indices, shape `[queries, min(k, corpus rows)]`.
    pub indices: Array2<usize>,
    /// Their scores, same shape.
    pub scores: Array2<f32>,
}

/// Exact top-`k` corpus rows for every query row, scanning the corpus at most `block_size`
/// rows at a time (smaller blocks are used when that keeps a block in cache).
///
/// Returns `min(k, corpus rows)` hits per query, best first, ties broken towards the lower
/// corpus index; scores do not depend on `block_size` or the thread count. Errors name the
/// argument when the widths differ, an input holds NaN (corpus rows are checked as they are
/// scanned), or `block_size` is 0.
pub fn top_k(
    queries: ArrayView2<'_, f32>,
    corpus: ArrayView2<'_, f32>,
    k: usize,
    score: ScoreFunction,
    block_size: usize,
) -> Result<TopK> {
    top_k_with(queries, corpus, k, score, block_size, Screening::Auto)
}

/// Whether cosine and dot searches try the int8 screen ([`screened`]) first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Screening {
    /// When the CPU has the byte kernel and the corpus is large enough.
    Auto,
    /// Never: the float kernel scores every pair.
    #[cfg_attr(not(test), allow(dead_code))]
    Off,
    /// Always when the corpus is large enough, with this kernel (tests run the portable one).
    #[cfg_attr(not(test), allow(dead_code))]
    With(panel::Isa),
}

fn top_k_with(
    queries: ArrayView2<'_, f32>,
    corpus: ArrayView2<'_, f32>,
    k: usize,
    score: ScoreFunction,
    block_size: usize,
    screening: Screening,
) -> Result<TopK> {
    check_block_size(block_size)?;
    let (n_queries, dim) = queries.dim();
    let n_corpus = corpus.nrows();
    check_width("corpus", corpus.ncols(), dim)?;
    check_rows(queries, 0, NanCheck::Queries)?;

    let k = k.min(n_corpus);
    if n_queries == 0 || k == 0 {
        return Ok(TopK {
            indices: Array2::zeros((n_queries, k)),
            scores: Array2::zeros((n_queries, k)),
        });
    }
    let block_rows = scan::block_rows(block_size, dim * 4);
    let hits = match score {
        ScoreFunction::Cosine | ScoreFunction::Dot => {
            let normalize = score == ScoreFunction::Cosine;
            let isa = panel::Isa::detect();
            let screen_isa = match screening {
                Screening::Auto => Some(isa).filter(|isa| isa.has_vnni()),
                Screening::Off => None,
                Screening::With(isa) => Some(isa),
            };
            if let Some(screen_isa) = screen_isa {
                let screened =
                    screened::top_k(screen_isa, queries, corpus, k, normalize, block_rows)?;
                if let Some(hits) = screened {
                    let (indices, scores) = scan::to_arrays(&hits, k, |s| s);
                    return Ok(TopK { indices, scores });
                }
            }
            let mut packed_queries = Vec::new();
            panel::pack_panels(n_queries, dim, isa.mr(), &mut packed_queries, |r, out| {
                copy_row(queries.row(r), normalize, out);
            });
            let kernel = scan::PanelScan {
                isa,
                depth: dim,
                packed_queries: &packed_queries,
                block_rows,
                pack_block: |rows: std::ops::Range<usize>, out: &mut Vec<f32>| {
                    let block = corpus.slice(ndarray::s![rows.clone(), ..]);
                    check_rows(block, rows.start, NanCheck::Corpus)?;
                    panel::pack_panels(rows.len(), dim, panel::NR, out, |r, row| {
                        copy_row(block.row(r), normalize, row);
                    });
                    Ok(())
                },
                tile: panel::tile_f32,
            };
            scan::search_parallel(n_queries, n_corpus, k, block_rows, isa.mr(), |q, c, col| {
                kernel.run(q, c, col)
            })?
        }
        ScoreFunction::Euclidean | ScoreFunction::Manhattan => {
            let queries = queries.as_standard_layout();
            let manhattan = score == ScoreFunction::Manhattan;
            scan::search_parallel(n_queries, n_corpus, k, block_rows, 1, |q, c, col| {
                distance::scan_distance(queries.view(), corpus, manhattan, block_rows, q, c, col)
            })?
        }
    };
    let (indices, scores) = scan::to_arrays(&hits, k, |s| s);
    Ok(TopK { indices, scores })
}

/// Copies `row` into `out`, scaled to unit L2 length when `normalize` (all-zero rows stay zero).
#[inline]
fn copy_row(row: ndarray::ArrayView1<'_, f32>, normalize: bool, out: &mut [f32]) {
    match row.as_slice() {
        Some(values) => out.copy_from_slice(values),
        None => out.iter_mut().zip(row.iter()).for_each(|(o, &x)| *o = x),
    }
    if normalize {
        let norm = squared_norm(out).sqrt().max(NORM_EPS);
        out.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Sum of squares in 16 interleaved partial sums: one dependent chain per lane instead of one
/// for the whole row, so it vectorises.
fn squared_norm(values: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut partial = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (acc, &x) in partial.iter_mut().zip(chunk) {
            // Not `mul_add`: without FMA in the build target that is a slow library call.
            *acc += x * x;
        }
    }
    let head: f32 = partial.iter().sum();
    tail.iter().fold(head, |acc, &x| acc + x * x)
}

fn check_block_size(block_size: usize) -> Result<()> {
    if block_size == 0 {
        return Err(Error::invalid_argument(
            "block_size",
            0,
            "a positive number of corpus rows",
        ));
    }
    Ok(())
}

/// Errors unless `name`'s rows are `expected` wide (the width of `queries`).
fn check_width(name: &str, width: usize, expected: usize) -> Result<()> {
    if width != expected {
        return Err(Error::invalid_argument(
            name,
            format!("rows of width {width}"),
            format!("rows of width {expected}, the width of `queries`"),
        ));
    }
    Ok(())
}

/// Which input a NaN check is about (for the error message).
#[derive(Clone, Copy)]
pub(crate) enum NanCheck {
    Queries,
    Corpus,
}

/// NaN would make the ranking meaningless, so it is rejected with the row named;
/// `first` is the index of `m`'s first row in the whole input.
pub(crate) fn check_rows(m: ArrayView2<'_, f32>, first: usize, what: NanCheck) -> Result<()> {
    let name = match what {
        NanCheck::Queries => "queries",
        NanCheck::Corpus => "corpus",
    };
    for (i, row) in m.rows().into_iter().enumerate() {
        // Branch-free per row, so it vectorises (NaN is rare; the scan of a row is not).
        let has_nan = match row.as_slice() {
            Some(values) => values.iter().fold(false, |nan, x| nan | x.is_nan()),
            None => row.iter().any(|x| x.is_nan()),
        };
        if has_nan {
            return Err(Error::invalid_argument(
                name,
                format!("NaN in row {}", first + i),
                "embeddings without NaN",
            ));
        }
    }
    Ok(())
}
