//! The search driver shared by every score kind: split the work over threads, scan corpus
//! blocks into per-query collectors, merge the collectors.

use std::cmp::Ordering;
use std::ops::Range;

use ndarray::Array2;

use super::panel::{Isa, Tile, NR};
use super::select::{Collector, Hit, Score};
use crate::error::Result;
use crate::parallel;

/// Bytes of packed corpus block a thread keeps hot; half of a typical 1 MiB L2.
const BLOCK_BYTES: usize = 512 * 1024;

/// Corpus parts per thread when threads split the corpus (see [`search_parallel`]).
const CORPUS_PARTS_PER_THREAD: usize = 4;

/// Corpus rows per block for rows of `row_bytes` bytes, at most `requested`, a multiple of
/// `2 * NR` (the widest tile) when possible.
pub(crate) fn block_rows(requested: usize, row_bytes: usize) -> usize {
    let fit = (BLOCK_BYTES / row_bytes.max(1)).max(2 * NR) / (2 * NR) * (2 * NR);
    requested.min(fit).max(1)
}

/// What a thread keeps per query for its part of the work, and how two parts combine.
pub(crate) trait PartCollector: Send + Sized {
    /// Adds everything `other` (the same query, another part of the corpus) kept.
    fn merge(&mut self, other: Self);
}

impl<S: Score> PartCollector for Collector<S> {
    fn merge(&mut self, other: Self) {
        Collector::merge(self, other);
    }
}

/// `scan(queries, corpus_rows, collectors)` over a grid of work items covering all pairs, in
/// parallel, merged into the best `k` hits per query (best first).
pub(crate) fn search_parallel<S: Score>(
    n_queries: usize,
    n_corpus: usize,
    k: usize,
    grain: usize,
    query_panel: usize,
    scan: impl Fn(Range<usize>, Range<usize>, &mut [Collector<S>]) -> Result<()> + Sync + Send,
) -> Result<Vec<Vec<Hit<S>>>> {
    let shape = SearchShape {
        n_queries,
        n_corpus,
        k,
        grain,
        query_panel,
    };
    let merged = collect_parallel(shape, || Collector::new(k), scan)?;
    Ok(merged.into_iter().map(Collector::into_sorted).collect())
}

/// The sizes [`collect_parallel`] splits work by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SearchShape {
    /// Query rows.
    pub n_queries: usize,
    /// Corpus rows.
    pub n_corpus: usize,
    /// Hits wanted per query.
    pub k: usize,
    /// Corpus rows per block (corpus parts are made of whole blocks).
    pub grain: usize,
    /// Query rows per packed panel (query parts are made of whole panels).
    pub query_panel: usize,
}

/// `scan(queries, corpus_rows, collectors)` over a grid of work items covering all pairs, in
/// parallel, with one collector per query merged over the parts.
///
/// Threads take parts of the queries (in multiples of `query_panel`, so packed query panels are
/// never split) when [`prefer_query_split`] says so or the corpus is too short to split, else
/// parts of the corpus (each part then keeps its own collectors).
pub(crate) fn collect_parallel<C: PartCollector>(
    shape: SearchShape,
    new_collector: impl Fn() -> C + Sync + Send,
    scan: impl Fn(Range<usize>, Range<usize>, &mut [C]) -> Result<()> + Sync + Send,
) -> Result<Vec<C>> {
    let SearchShape {
        n_queries,
        n_corpus,
        k,
        grain,
        query_panel,
    } = shape;
    let threads = parallel::num_threads().max(1);
    let grain = grain.max(1);
    let corpus_units = n_corpus.div_ceil(grain);
    let panels = n_queries.div_ceil(query_panel);
    let query_parts = |parts: usize| -> Vec<(Range<usize>, Range<usize>)> {
        split(panels, parts)
            .into_iter()
            .map(|r| {
                let queries = r.start * query_panel..(r.end * query_panel).min(n_queries);
                (queries, 0..n_corpus)
            })
            .collect()
    };
    let items = if prefer_query_split(n_queries, n_corpus, k, threads) && panels >= 2 * threads {
        query_parts(threads)
    } else if corpus_units >= 2 * threads {
        // A few more parts than threads, so a thread slowed down by other load does not hold
        // everyone up; each extra part costs one more set of collectors to merge.
        let parts = (threads * CORPUS_PARTS_PER_THREAD)
            .min(corpus_units / 2)
            .max(threads);
        split(corpus_units, parts)
            .into_iter()
            .map(|r| (0..n_queries, r.start * grain..(r.end * grain).min(n_corpus)))
            .collect()
    } else {
        query_parts(threads.min(panels).max(1))
    };

    let parts = parallel::try_map(&items, |(queries, corpus)| {
        let mut collectors: Vec<C> = queries.clone().map(|_| new_collector()).collect();
        scan(queries.clone(), corpus.clone(), &mut collectors)?;
        Ok((queries.start, collectors))
    })?;

    let mut merged: Vec<Option<C>> = (0..n_queries).map(|_| None).collect();
    for (start, collectors) in parts {
        for (slot, collector) in merged[start..].iter_mut().zip(collectors) {
            match slot {
                Some(into) => into.merge(collector),
                None => *slot = Some(collector),
            }
        }
    }
    // Every query lies in some part, so every slot is filled.
    Ok(merged
        .into_iter()
        .map(|c| c.unwrap_or_else(&new_collector))
        .collect())
}

/// Whether threads should take parts of the queries (each scanning the whole corpus) rather
/// than parts of the corpus (each with its own collectors for every query).
///
/// A corpus part of `m` rows makes a query's collector accept about `k * (1 + ln(m / k))`
/// candidates before its threshold settles, and every part adds collectors to merge; a query
/// part instead re-reads and re-packs the whole corpus. Measured on 2 cores with 384-dim rows:
/// 1,000 queries x 500,000 rows, k = 100 runs best split by corpus (parts of 62,500 rows);
/// 10,000 x 10,000 with k = 101 runs 2x faster split by queries. So the queries are split when
/// the corpus parts would be short for `k` (under 64 k rows) or the queries are many.
fn prefer_query_split(n_queries: usize, n_corpus: usize, k: usize, threads: usize) -> bool {
    const MANY_QUERIES: usize = 2048;
    n_queries >= MANY_QUERIES || n_corpus < 64 * k.max(1) * CORPUS_PARTS_PER_THREAD * threads
}

/// `0..n` cut into `parts` contiguous, nearly equal ranges.
fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|p| n * p / parts..n * (p + 1) / parts)
        .filter(|r| !r.is_empty())
        .collect()
}

/// Hits per query (each exactly `k` long) as `(indices, scores)` arrays, scores mapped by `f`.
pub(crate) fn to_arrays<S: Copy, T: Clone + Default>(
    hits: &[Vec<Hit<S>>],
    k: usize,
    f: impl Fn(S) -> T,
) -> (Array2<usize>, Array2<T>) {
    let mut indices = Array2::<usize>::zeros((hits.len(), k));
    let mut scores = Array2::<T>::default((hits.len(), k));
    for (q, row) in hits.iter().enumerate() {
        for (j, hit) in row.iter().enumerate().take(k) {
            indices[[q, j]] = hit.index;
            scores[[q, j]] = f(hit.score);
        }
    }
    (indices, scores)
}

/// A packed-panel scan: how to pack a corpus block and multiply panels into a tile.
pub(crate) struct PanelScan<'a, W, S, P> {
    /// The micro-kernel implementation.
    pub isa: Isa,
    /// Words per row.
    pub depth: usize,
    /// All queries, packed in panels of `isa.mr()` rows.
    pub packed_queries: &'a [W],
    /// Corpus rows per block.
    pub block_rows: usize,
    /// Packs corpus rows `range` into panels of [`NR`] rows.
    pub pack_block: P,
    /// The micro-kernel.
    pub tile: fn(Isa, usize, &[W], &[W], &mut Tile<S>),
}

impl<W, S, P> PanelScan<'_, W, S, P>
where
    W: Copy + Default,
    S: Score + Default,
    P: Fn(Range<usize>, &mut Vec<W>) -> Result<()>,
{
    /// Scores queries `queries` (starting on a panel boundary) against corpus rows `corpus`.
    pub fn run(
        &self,
        queries: Range<usize>,
        corpus: Range<usize>,
        collectors: &mut [Collector<S>],
    ) -> Result<()> {
        let (mr, panels) = (self.isa.mr(), self.isa.tile_panels());
        let width = panels * NR;
        debug_assert_eq!(queries.start % mr, 0);
        let depth = self.depth;
        let mut packed = Vec::new();
        let mut tile: Tile<S> = [S::default(); _];
        let mut block_start = corpus.start;
        while block_start < corpus.end {
            let block_end = (block_start + self.block_rows).min(corpus.end);
            (self.pack_block)(block_start..block_end, &mut packed)?;
            let rows = block_end - block_start;
            let corpus_panels = rows.div_ceil(NR);
            // Whole tiles only: zero panels pad the block to a multiple of the tile width.
            packed.resize(
                corpus_panels.next_multiple_of(panels) * depth * NR,
                W::default(),
            );
            for q0 in queries.clone().step_by(mr) {
                let a = &self.packed_queries[q0 * depth..(q0 + mr) * depth];
                let valid_i = mr.min(queries.end - q0);
                let row_collectors = &mut collectors[q0 - queries.start..][..valid_i];
                for cp in (0..corpus_panels).step_by(panels) {
                    let b = &packed[cp * depth * NR..(cp + panels) * depth * NR];
                    (self.tile)(self.isa, depth, a, b, &mut tile);
                    let first = block_start + cp * NR;
                    let valid_j = width.min(rows - cp * NR);
                    for (i, collector) in row_collectors.iter_mut().enumerate() {
                        offer_row(collector, &tile[i * width..i * width + valid_j], first);
                    }
                }
            }
            block_start = block_end;
        }
        Ok(())
    }
}

/// Offers one tile row, skipping everything below the collector's gate with one comparison.
#[inline]
pub(crate) fn offer_row<S: Score>(collector: &mut Collector<S>, scores: &[S], first: usize) {
    match collector.gate() {
        Some(gate) => {
            // Nearly every tile row loses entirely once the threshold has settled.
            if !S::any_reaches(scores, gate) {
                return;
            }
            for (j, s) in scores.iter().enumerate() {
                if s.total_cmp(&gate) != Ordering::Less {
                    collector.offer(*s, first + j);
                }
            }
        }
        None => {
            for (j, s) in scores.iter().enumerate() {
                collector.offer(*s, first + j);
            }
        }
    }
}
