//! Exact top-k search of query embeddings against a corpus of embeddings.
//!
//! The corpus is scanned in blocks of rows; each block is scored against a chunk of queries
//! with one matrix multiply (or a direct distance loop for euclidean and manhattan), and every query keeps a bounded
//! heap of its best candidates. Worker threads take contiguous runs of blocks, so memory
//! stays at the inputs plus `O(threads * (block * query_chunk + queries * k))`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::str::FromStr;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, Axis, CowArray};

use crate::error::{Error, Result};
use crate::parallel;

/// Default number of corpus rows scored at a time.
pub const DEFAULT_SEARCH_BLOCK: usize = 4096;

/// Queries scored together against one corpus block; bounds the score buffer per thread.
const QUERY_CHUNK: usize = 512;

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

/// A scored corpus row; ordered so that "greater" means "ranks higher".
#[derive(Clone, Copy, Debug)]
struct Hit {
    score: f32,
    index: usize,
}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        // Higher score first; on equal scores the lower corpus index wins, so results do
        // not depend on block size or thread count.
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Hit {}

/// The `k` best hits seen so far; the worst of them sits on top of the heap.
struct Best {
    k: usize,
    heap: BinaryHeap<Reverse<Hit>>,
}

impl Best {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    #[inline]
    fn push(&mut self, hit: Hit) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(hit));
        } else if self.heap.peek().is_some_and(|worst| hit > worst.0) {
            // Most candidates lose to the current worst; only winners pay for a sift.
            if let Some(mut worst) = self.heap.peek_mut() {
                *worst = Reverse(hit);
            }
        }
    }

    /// The hits, best first.
    fn into_sorted(self) -> Vec<Hit> {
        // Ascending order of Reverse<Hit> is descending order of Hit.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}

/// Exact top-`k` corpus rows for every query row, scanning the corpus `block_size` rows at a time.
///
/// Returns `min(k, corpus rows)` hits per query, best first, ties broken towards the lower
/// corpus index. Errors name the argument when the widths differ, an input holds NaN, or
/// `block_size` is 0.
pub fn top_k(
    queries: ArrayView2<'_, f32>,
    corpus: ArrayView2<'_, f32>,
    k: usize,
    score: ScoreFunction,
    block_size: usize,
) -> Result<TopK> {
    if block_size == 0 {
        return Err(Error::invalid_argument(
            "block_size",
            0,
            "a positive number of corpus rows",
        ));
    }
    let (n_queries, dim) = queries.dim();
    let (n_corpus, corpus_dim) = corpus.dim();
    if dim != corpus_dim {
        return Err(Error::invalid_argument(
            "corpus",
            format!("rows of width {corpus_dim}"),
            format!("rows of width {dim}, the width of `queries`"),
        ));
    }
    check_finite_or_inf(queries, "queries")?;
    check_finite_or_inf(corpus, "corpus")?;

    let k = k.min(n_corpus);
    if n_queries == 0 || k == 0 {
        return Ok(TopK {
            indices: Array2::zeros((n_queries, k)),
            scores: Array2::zeros((n_queries, k)),
        });
    }

    // Queries are prepared once: unit length for cosine, squared norms for euclidean.
    let queries = match score {
        ScoreFunction::Cosine => normalized(queries),
        _ => queries.as_standard_layout().into_owned(),
    };

    let n_blocks = n_corpus.div_ceil(block_size);
    let groups = parallel::num_threads().clamp(1, n_blocks);
    let group_ranges: Vec<(usize, usize)> = (0..groups)
        .map(|g| {
            let start = n_blocks * g / groups;
            let end = n_blocks * (g + 1) / groups;
            (start * block_size, (end * block_size).min(n_corpus))
        })
        .collect();

    let per_group: Vec<Vec<Best>> = parallel::try_map(&group_ranges, |&(start, end)| {
        let mut best: Vec<Best> = (0..n_queries).map(|_| Best::new(k)).collect();
        let mut buffer = Array2::<f32>::zeros((0, 0));
        let mut block_start = start;
        while block_start < end {
            let block_end = (block_start + block_size).min(end);
            let block = corpus.slice(s![block_start..block_end, ..]);
            scan_block(
                queries.view(),
                block,
                block_start,
                score,
                &mut buffer,
                &mut best,
            );
            block_start = block_end;
        }
        Ok::<_, Error>(best)
    })?;

    let mut indices = Array2::<usize>::zeros((n_queries, k));
    let mut scores = Array2::<f32>::zeros((n_queries, k));
    let mut groups_iter = per_group.into_iter();
    let mut merged: Vec<Best> = groups_iter.next().unwrap_or_default();
    for group in groups_iter {
        for (into, from) in merged.iter_mut().zip(group) {
            for Reverse(hit) in from.heap {
                into.push(hit);
            }
        }
    }
    for (q, best) in merged.into_iter().enumerate() {
        for (j, hit) in best.into_sorted().into_iter().enumerate() {
            indices[[q, j]] = hit.index;
            scores[[q, j]] = hit.score;
        }
    }
    Ok(TopK { indices, scores })
}

/// Scores one corpus block against all queries (in chunks) and feeds every query's heap.
fn scan_block(
    queries: ArrayView2<'_, f32>,
    block: ArrayView2<'_, f32>,
    offset: usize,
    score: ScoreFunction,
    buffer: &mut Array2<f32>,
    best: &mut [Best],
) {
    let rows = block.nrows();
    // Cosine normalises the block once here and then reduces to a dot product.
    let prepared = match score {
        ScoreFunction::Cosine => CowArray::from(normalized(block)),
        ScoreFunction::Dot => CowArray::from(block),
        // The distance kernels walk rows as slices.
        ScoreFunction::Euclidean | ScoreFunction::Manhattan => block.as_standard_layout(),
    };
    let block = prepared.view();

    let mut q_start = 0;
    while q_start < queries.nrows() {
        let q_end = (q_start + QUERY_CHUNK).min(queries.nrows());
        let chunk = queries.slice(s![q_start..q_end, ..]);
        if buffer.dim() != (q_end - q_start, rows) {
            *buffer = Array2::zeros((q_end - q_start, rows));
        }
        match score {
            ScoreFunction::Cosine | ScoreFunction::Dot => {
                general_mat_mul(1.0, &chunk, &block.t(), 0.0, buffer);
            }
            ScoreFunction::Euclidean | ScoreFunction::Manhattan => {
                // Distances are summed from differences, not expanded as |q|^2 + |c|^2 - 2q.c:
                // the expansion cancels catastrophically for near-identical rows (a row
                // against itself would score about -1e-3 instead of 0).
                let l1 = score == ScoreFunction::Manhattan;
                for (query, mut out) in chunk.rows().into_iter().zip(buffer.rows_mut()) {
                    let query = query.as_slice().expect("queries are in standard layout");
                    for (row, o) in block.rows().into_iter().zip(out.iter_mut()) {
                        let row = row.as_slice().expect("blocks are in standard layout");
                        *o = if l1 {
                            -l1_distance(query, row)
                        } else {
                            -l2_squared(query, row).sqrt()
                        };
                    }
                }
            }
        }
        for (q, row) in buffer.axis_iter(Axis(0)).enumerate() {
            let heap = &mut best[q_start + q];
            for (j, &s) in row.iter().enumerate() {
                heap.push(Hit {
                    score: s,
                    index: offset + j,
                });
            }
        }
        q_start = q_end;
    }
}

/// Lanes summed independently so the compiler can vectorise the reductions.
const LANES: usize = 8;

fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn l1_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y).abs())
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += (x[i] - y[i]).abs();
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A copy of `m` with every row scaled to unit L2 length (all-zero rows stay zero).
fn normalized(m: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = m.to_owned();
    for mut row in out.rows_mut() {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(NORM_EPS);
        row.mapv_inplace(|x| x / norm);
    }
    out
}

/// NaN would make the ranking meaningless, so it is rejected up front with the row named.
fn check_finite_or_inf(m: ArrayView2<'_, f32>, name: &str) -> Result<()> {
    for (i, row) in m.rows().into_iter().enumerate() {
        if row.iter().any(|x| x.is_nan()) {
            return Err(Error::invalid_argument(
                name,
                format!("NaN in row {i}"),
                "embeddings without NaN",
            ));
        }
    }
    Ok(())
}
