//! Scoring queries: term-at-a-time accumulation over the postings, then the search engine's
//! top-k selection ([`Collector`]) over the accumulated scores.

use std::ops::Range;

use ndarray::Array2;

use super::analyze::Analyzer;
use super::build::{Postings, Vocab};
use crate::error::Result;
use crate::parallel;
use crate::search::scan::{offer_row, to_arrays};
use crate::search::select::{Collector, Hit};
use crate::search::TopK;

/// A query touching fewer than `1 / SPARSE_SHARE` of the documents is selected from the
/// documents it touched; otherwise the whole score array is scanned (a vectorised pass that
/// beats bookkeeping once many documents are touched).
const SPARSE_SHARE: usize = 16;
/// Scores offered to the collector per call when scanning the whole array.
const SCAN_BLOCK: usize = 1024;
/// Query tasks per thread: more than one, so a thread slowed by other load does not hold up
/// the rest.
const TASKS_PER_THREAD: usize = 4;

/// A query as distinct term ids with their counts, sorted by term id (so scores are summed in
/// the same order on every run).
pub(super) type QueryTerms = Vec<(u32, u32)>;

/// The terms of each query that the corpus has; unknown terms score nothing and are dropped.
pub(super) fn query_terms<S: AsRef<str> + Sync>(
    analyzer: &Analyzer,
    vocab: &Vocab,
    queries: &[S],
) -> Result<Vec<QueryTerms>> {
    let mut ids: Vec<Vec<u32>> = vec![Vec::new(); queries.len()];
    analyzer.for_each_term(queries, |q, term| {
        if let Some(id) = vocab.get(term) {
            ids[q].push(id);
        }
    })?;
    Ok(ids
        .into_iter()
        .map(|mut ids| {
            ids.sort_unstable();
            let mut terms: QueryTerms = Vec::with_capacity(ids.len());
            for id in ids {
                match terms.last_mut() {
                    Some((last, count)) if *last == id => *count += 1,
                    _ => terms.push((id, 1)),
                }
            }
            terms
        })
        .collect())
}

/// The best `min(k, num_docs)` documents of every query, best first, ties to the lower id.
pub(super) fn search<S: AsRef<str> + Sync>(
    analyzer: &Analyzer,
    vocab: &Vocab,
    postings: &Postings,
    num_docs: usize,
    queries: &[S],
    k: usize,
) -> Result<TopK> {
    let k = k.min(num_docs);
    if queries.is_empty() || k == 0 {
        return Ok(TopK {
            indices: Array2::zeros((queries.len(), k)),
            scores: Array2::zeros((queries.len(), k)),
        });
    }
    let tasks = split(queries.len(), parallel::num_threads() * TASKS_PER_THREAD);
    let per_task = parallel::try_map(&tasks, |range| {
        let terms = query_terms(analyzer, vocab, &queries[range.clone()])?;
        let mut scores = Accumulator::new(num_docs);
        Ok(terms
            .iter()
            .map(|terms| scores.top_k(postings, terms, k))
            .collect::<Vec<_>>())
    })?;
    let hits: Vec<Vec<Hit<f32>>> = per_task.into_iter().flatten().collect();
    let (indices, scores) = to_arrays(&hits, k, |s| s);
    Ok(TopK { indices, scores })
}

/// Every document's score for one query (`terms` from [`query_terms`]).
pub(super) fn scores(postings: &Postings, num_docs: usize, terms: &QueryTerms) -> Vec<f32> {
    let mut scores = vec![0.0f32; num_docs];
    for &(term, count) in terms {
        add_term(&mut scores, postings, term, count);
    }
    scores
}

/// Adds `count` occurrences of `term` to the documents that contain it.
#[inline]
fn add_term(scores: &mut [f32], postings: &Postings, term: u32, count: u32) {
    let (docs, weights) = postings.term(term);
    if count == 1 {
        for (&d, &w) in docs.iter().zip(weights) {
            scores[d as usize] += w;
        }
    } else {
        // A query that repeats a term counts it again, as summing over query tokens does.
        let count = count as f32;
        for (&d, &w) in docs.iter().zip(weights) {
            scores[d as usize] += count * w;
        }
    }
}

/// One thread's score array, kept all-zero between queries, and the documents a query touched.
struct Accumulator {
    scores: Vec<f32>,
    /// One bit per document: touched by the current query.
    seen: Vec<u64>,
    touched: Vec<u32>,
}

impl Accumulator {
    fn new(num_docs: usize) -> Self {
        Self {
            scores: vec![0.0; num_docs],
            seen: vec![0; num_docs.div_ceil(64)],
            touched: Vec::new(),
        }
    }

    /// The best `k` documents (`1 <= k <= num_docs`) for `terms`, best first.
    fn top_k(&mut self, postings: &Postings, terms: &QueryTerms, k: usize) -> Vec<Hit<f32>> {
        let num_docs = self.scores.len();
        let mut collector = Collector::new(k);
        let reach: usize = terms.iter().map(|&(t, _)| postings.doc_freq(t)).sum();
        if reach.saturating_mul(SPARSE_SHARE) >= num_docs {
            for &(term, count) in terms {
                add_term(&mut self.scores, postings, term, count);
            }
            for (i, block) in self.scores.chunks(SCAN_BLOCK).enumerate() {
                offer_row(&mut collector, block, i * SCAN_BLOCK);
            }
            self.scores.fill(0.0);
            return collector.into_sorted();
        }

        for &(term, count) in terms {
            let (docs, weights) = postings.term(term);
            let count = count as f32;
            for (&d, &w) in docs.iter().zip(weights) {
                let (word, bit) = (d as usize / 64, 1u64 << (d % 64));
                if self.seen[word] & bit == 0 {
                    self.seen[word] |= bit;
                    self.touched.push(d);
                }
                self.scores[d as usize] += count * w;
            }
        }
        for &d in &self.touched {
            collector.offer(self.scores[d as usize], d as usize);
        }
        // Every other document scores exactly 0; among those only the k lowest ids can rank, and
        // none can once the k-th best score is positive.
        if collector.gate().is_none_or(|gate| gate <= 0.0) {
            let untouched = (0..num_docs).filter(|&d| self.seen[d / 64] & (1u64 << (d % 64)) == 0);
            for d in untouched.take(k) {
                collector.offer(0.0, d);
            }
        }
        for &d in &self.touched {
            self.scores[d as usize] = 0.0;
            self.seen[d as usize / 64] = 0;
        }
        self.touched.clear();
        collector.into_sorted()
    }
}

/// `0..n` cut into at most `parts` contiguous, nearly equal, non-empty ranges.
fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|p| n * p / parts..n * (p + 1) / parts)
        .filter(|r| !r.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Postings of two terms over 100 documents: term 0 in documents 10 (weight 1) and 20
    /// (weight -1); term 1 in document 30 (weight 0.5).
    fn postings() -> Postings {
        Postings {
            offsets: vec![0, 2, 3],
            doc_ids: vec![10, 20, 30],
            weights: vec![1.0, -1.0, 0.5],
        }
    }

    fn ranked(terms: &QueryTerms, k: usize) -> Vec<(usize, f32)> {
        let mut acc = Accumulator::new(100);
        let hits = acc.top_k(&postings(), terms, k);
        // The accumulator is left clean for the next query.
        assert!(acc.scores.iter().all(|&s| s == 0.0) && acc.seen.iter().all(|&w| w == 0));
        hits.into_iter().map(|h| (h.index, h.score)).collect()
    }

    #[test]
    fn untouched_documents_fill_in_at_zero_by_lowest_id() {
        let terms = vec![(0, 1), (1, 2)];
        assert_eq!(ranked(&terms, 1), [(10, 1.0)]);
        assert_eq!(
            ranked(&terms, 4),
            [(10, 1.0), (30, 1.0), (0, 0.0), (1, 0.0)]
        );
        // The negative score ranks below every zero.
        let all = ranked(&terms, 100);
        assert_eq!(all.len(), 100);
        assert_eq!(all[99], (20, -1.0));
        // No query terms: the first k documents, all at zero.
        assert_eq!(ranked(&Vec::new(), 2), [(0, 0.0), (1, 0.0)]);
    }

    #[test]
    fn dense_and_sparse_paths_agree() {
        // Over 10 documents, a term in two of them is past the sparse share.
        let terms = vec![(0, 1), (1, 1)];
        let mut acc = Accumulator::new(40);
        let p = postings();
        let small = Postings {
            doc_ids: p.doc_ids.iter().map(|d| d / 10).collect(),
            ..p
        };
        let dense = acc.top_k(&small, &terms, 5);
        let got: Vec<(usize, f32)> = dense.into_iter().map(|h| (h.index, h.score)).collect();
        assert_eq!(got, [(1, 1.0), (3, 0.5), (0, 0.0), (4, 0.0), (5, 0.0)]);
        assert!(acc.scores.iter().all(|&s| s == 0.0));
        let full = scores(&small, 40, &terms);
        assert_eq!((full[1], full[2], full[3]), (1.0, -1.0, 0.5));
    }

    #[test]
    fn split_covers_everything() {
        assert_eq!(split(5, 3), [0..1, 1..3, 3..5]);
        assert_eq!(split(2, 8), [0..1, 1..2]);
        assert_eq!(split(0, 4), Vec::<Range<usize>>::new());
    }
}
