//! Building the inverted index from a corpus, in parallel.
//!
//! 1. The corpus is cut into contiguous chunks; each thread analyses a chunk into its own small
//!    vocabulary, per-document term counts and per-term document counts (no shared state).
//! 2. The chunk vocabularies are merged in chunk order, so global term ids are in order of first
//!    appearance in the corpus whatever the thread count.
//! 3. Document frequencies give the idfs and, by prefix sum, where each term's postings start;
//!    walking the chunks in order gives each chunk its own write position in every term's run.
//! 4. The chunks then write their postings (document id and precomputed weight) in parallel,
//!    each into positions no other chunk writes, so every run comes out sorted by document.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use super::analyze::{Analyzer, Term};
use super::intern::Interner;
use super::score::Bm25Params;
use crate::error::{Error, Result};
use crate::parallel;

/// Fewest documents per chunk: below this, per-chunk vocabularies cost more than they save.
const MIN_CHUNK_DOCS: usize = 256;
/// Chunks per thread: more than one, so a thread slowed by other load does not hold up the rest.
const CHUNKS_PER_THREAD: usize = 4;

/// The term -> id table of an index.
#[derive(Clone, Debug)]
pub(super) enum Vocab {
    /// Word analyzer: each distinct word and its id (ids in order of first appearance).
    Words(Interner),
    /// Tokenizer analyzer: the term id is the token id, below this bound.
    Ids(usize),
}

impl Vocab {
    /// Number of term ids.
    pub fn len(&self) -> usize {
        match self {
            Self::Words(map) => map.len(),
            Self::Ids(n) => *n,
        }
    }

    /// The id of a term, if the corpus has it (or, for token ids, if it is in range).
    #[inline]
    pub fn get(&self, term: Term<'_>) -> Option<u32> {
        match (self, term) {
            (Self::Words(words), Term::Word(word)) => words.get(word),
            (Self::Ids(n), Term::Id(id)) => ((id as usize) < *n).then_some(id),
            _ => None,
        }
    }

    /// The words in id order (empty for token ids).
    pub fn words_by_id(&self) -> Vec<&str> {
        match self {
            Self::Words(words) => words.words().collect(),
            Self::Ids(_) => Vec::new(),
        }
    }
}

/// Every term's postings: the documents that contain it, ascending, with the term's weight in
/// each (its whole contribution to the document's score for one query occurrence).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Postings {
    /// `offsets[t]..offsets[t + 1]` indexes term `t`'s postings; `num_terms + 1` entries.
    pub offsets: Vec<usize>,
    /// Document ids.
    pub doc_ids: Vec<u32>,
    /// BM25 weights, parallel to `doc_ids`.
    pub weights: Vec<f32>,
}

impl Postings {
    /// Term `t`'s documents and weights.
    #[inline]
    pub fn term(&self, t: u32) -> (&[u32], &[f32]) {
        let range = self.offsets[t as usize]..self.offsets[t as usize + 1];
        (&self.doc_ids[range.clone()], &self.weights[range])
    }

    /// Number of documents that contain term `t`.
    #[inline]
    pub fn doc_freq(&self, t: u32) -> usize {
        self.offsets[t as usize + 1] - self.offsets[t as usize]
    }
}

/// What [`build`] produces.
pub(super) struct Built {
    pub vocab: Vocab,
    pub doc_lengths: Vec<u32>,
    pub avg_doc_len: f64,
    pub postings: Postings,
}

/// What one chunk of the corpus contains, in chunk-local term ids.
struct ChunkTerms {
    /// Local id -> word (word analyzer); empty for token ids, whose local id is the token id.
    words: Interner,
    /// Per local term: the chunk's documents that contain it.
    doc_freqs: Vec<u32>,
    /// Per document: number of terms (stop words excluded).
    doc_lengths: Vec<u32>,
    /// Per document: number of distinct terms, i.e. of its entries in `terms` / `tfs`.
    distinct: Vec<u32>,
    /// Each document's distinct terms, document after document.
    terms: Vec<u32>,
    /// How often each of `terms` occurs in its document.
    tfs: Vec<u32>,
}

/// Indexes `corpus` (one document per item).
pub(super) fn build<S: AsRef<str> + Sync>(
    corpus: &[S],
    params: &Bm25Params,
    analyzer: &Analyzer,
) -> Result<Built> {
    let parts = parallel::num_threads() * CHUNKS_PER_THREAD;
    build_in_parts(corpus, params, analyzer, parts)
}

/// [`build`] with the corpus cut into (at most) `parts` chunks; the result does not depend on it.
fn build_in_parts<S: AsRef<str> + Sync>(
    corpus: &[S],
    params: &Bm25Params,
    analyzer: &Analyzer,
    parts: usize,
) -> Result<Built> {
    params.validate()?;
    if corpus.is_empty() {
        return Err(Error::invalid_argument(
            "corpus",
            "an empty sequence",
            "at least one document",
        ));
    }
    if u32::try_from(corpus.len()).is_err() {
        return Err(Error::invalid_argument(
            "corpus",
            format!("{} documents", corpus.len()),
            format!("at most {} documents", u32::MAX),
        ));
    }
    let ranges = chunk_ranges(corpus.len(), parts);
    let mut chunks = parallel::try_map(&ranges, |range| {
        count_chunk(analyzer, &corpus[range.clone()])
    })?;

    let (vocab, mappings) = merge_vocabularies(&mut chunks, analyzer.id_space());
    let num_terms = vocab.len();
    let mut doc_freqs = vec![0u32; num_terms];
    for (chunk, mapping) in chunks.iter().zip(&mappings) {
        for (local, &df) in chunk.doc_freqs.iter().enumerate() {
            doc_freqs[mapping.global(local)] += df;
        }
    }
    let doc_lengths: Vec<u32> = chunks
        .iter()
        .flat_map(|c| c.doc_lengths.iter().copied())
        .collect();
    let total_terms: u64 = doc_lengths.iter().map(|&n| u64::from(n)).sum();
    let avg_doc_len = total_terms as f64 / doc_lengths.len() as f64;
    let idfs = params.idfs(&doc_freqs, doc_lengths.len());

    let mut offsets = Vec::with_capacity(num_terms + 1);
    offsets.push(0usize);
    for &df in &doc_freqs {
        offsets.push(offsets.last().copied().unwrap_or(0) + df as usize);
    }
    let num_postings = offsets[num_terms];

    // Where each chunk writes each of its terms: after the same term's postings of all earlier
    // chunks, so that runs stay sorted by document id.
    let mut next: Vec<usize> = offsets[..num_terms].to_vec();
    let starts: Vec<Vec<usize>> = chunks
        .iter()
        .zip(&mappings)
        .map(|(chunk, mapping)| {
            chunk
                .doc_freqs
                .iter()
                .enumerate()
                .map(|(local, &df)| {
                    let slot = &mut next[mapping.global(local)];
                    let start = *slot;
                    *slot += df as usize;
                    start
                })
                .collect()
        })
        .collect();

    // Each position is written by exactly one chunk; relaxed atomic stores are plain stores on
    // every target, and let the chunks share the arrays without locks or unsafe code.
    let doc_ids: Vec<AtomicU32> = (0..num_postings).map(|_| AtomicU32::new(0)).collect();
    let weights: Vec<AtomicU32> = (0..num_postings).map(|_| AtomicU32::new(0)).collect();
    let work: Vec<usize> = (0..chunks.len()).collect();
    parallel::try_map(&work, |&c| {
        let (chunk, mapping, first_doc) = (&chunks[c], &mappings[c], ranges[c].start);
        let mut cursor = starts[c].clone();
        let mut pair = 0;
        for (d, (&len, &distinct)) in chunk.doc_lengths.iter().zip(&chunk.distinct).enumerate() {
            let norm = params.length_norm(len, avg_doc_len);
            // Fits: the corpus length was checked against u32::MAX.
            let doc = (first_doc + d) as u32;
            for _ in 0..distinct {
                let local = chunk.terms[pair] as usize;
                let global = mapping.global(local);
                let pos = cursor[local];
                cursor[local] += 1;
                let weight = params.weight(idfs[global], chunk.tfs[pair], norm) as f32;
                doc_ids[pos].store(doc, Ordering::Relaxed);
                weights[pos].store(weight.to_bits(), Ordering::Relaxed);
                pair += 1;
            }
        }
        Ok::<_, Error>(())
    })?;
    drop(chunks);

    Ok(Built {
        vocab,
        doc_lengths,
        avg_doc_len,
        postings: Postings {
            offsets,
            doc_ids: doc_ids.into_iter().map(AtomicU32::into_inner).collect(),
            weights: weights
                .into_iter()
                .map(|w| f32::from_bits(w.into_inner()))
                .collect(),
        },
    })
}

/// `num_docs` cut into at most `parts` contiguous ranges, none shorter than [`MIN_CHUNK_DOCS`]
/// unless the corpus is.
fn chunk_ranges(num_docs: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.min(num_docs / MIN_CHUNK_DOCS).max(1);
    (0..parts)
        .map(|p| num_docs * p / parts..num_docs * (p + 1) / parts)
        .collect()
}

/// Analyses one chunk: local vocabulary, document lengths, distinct terms and their counts.
fn count_chunk<S: AsRef<str> + Sync>(analyzer: &Analyzer, texts: &[S]) -> Result<ChunkTerms> {
    /// Per local term, in one place so that a token costs one cache line: `1 +` the last
    /// document it was seen in, its entry in `terms` there, and its document count. Counting
    /// through these avoids sorting each document's terms.
    #[derive(Clone, Copy, Default)]
    struct Seen {
        last_doc: u32,
        doc_freq: u32,
        entry: usize,
    }

    let mut seen = vec![Seen::default(); analyzer.id_space().unwrap_or(0)];
    let mut words = Interner::default();
    let mut doc_lengths = vec![0u32; texts.len()];
    let mut distinct = vec![0u32; texts.len()];
    let (mut terms, mut tfs) = (Vec::new(), Vec::new());
    analyzer.for_each_term(texts, |d, term| {
        let id = match term {
            Term::Id(id) => id as usize,
            Term::Word(word) => words.get_or_insert(word) as usize,
        };
        if id >= seen.len() {
            seen.resize(id + 1, Seen::default());
        }
        doc_lengths[d] = doc_lengths[d].saturating_add(1);
        let marker = d as u32 + 1;
        let state = &mut seen[id];
        if state.last_doc == marker {
            tfs[state.entry] += 1;
        } else {
            *state = Seen {
                last_doc: marker,
                doc_freq: state.doc_freq + 1,
                entry: terms.len(),
            };
            terms.push(id as u32);
            tfs.push(1u32);
            distinct[d] += 1;
        }
    })?;
    Ok(ChunkTerms {
        words,
        doc_freqs: seen.iter().map(|s| s.doc_freq).collect(),
        doc_lengths,
        distinct,
        terms,
        tfs,
    })
}

/// How a chunk's local term ids map to global ones.
enum Mapping {
    /// Token ids are global already.
    Identity,
    /// `ids[local]` is the global id.
    Table(Vec<u32>),
}

impl Mapping {
    #[inline]
    fn global(&self, local: usize) -> usize {
        match self {
            Self::Identity => local,
            Self::Table(ids) => ids[local] as usize,
        }
    }
}

/// The corpus vocabulary and each chunk's local -> global mapping. Word ids follow the order of
/// first appearance in the corpus (chunks are merged in order, each in its own first-seen order).
fn merge_vocabularies(chunks: &mut [ChunkTerms], id_space: Option<usize>) -> (Vocab, Vec<Mapping>) {
    if let Some(id_space) = id_space {
        // Ids past the tokenizer's vocabulary size (there should be none) widen the range.
        let n = chunks
            .iter()
            .map(|c| c.doc_freqs.len())
            .max()
            .unwrap_or(0)
            .max(id_space);
        for chunk in chunks.iter_mut() {
            chunk.doc_freqs.resize(n, 0);
        }
        return (
            Vocab::Ids(n),
            chunks.iter().map(|_| Mapping::Identity).collect(),
        );
    }
    let largest = chunks.iter().map(|c| c.words.len()).max().unwrap_or(0);
    let mut global = Interner::with_capacity(largest);
    let mappings = chunks
        .iter_mut()
        .map(|chunk| {
            let words = std::mem::take(&mut chunk.words);
            Mapping::Table(words.words().map(|w| global.get_or_insert(w)).collect())
        })
        .collect();
    (Vocab::Words(global), mappings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_are_sorted_and_ids_follow_first_appearance() {
        // Enough documents for several chunks, so the merge and the chunk offsets are exercised.
        let corpus: Vec<String> = (0..3000)
            .map(|i| format!("w{} w{} common w{}", i % 7, i % 11, i % 7))
            .collect();
        let params = Bm25Params::default();
        let one = build_in_parts(&corpus, &params, &Analyzer::words(), 1).unwrap();
        for parts in [1, 5] {
            let built = build_in_parts(&corpus, &params, &Analyzer::words(), parts).unwrap();
            assert_eq!(chunk_ranges(corpus.len(), parts).len(), parts);
            let words = built.vocab.words_by_id();
            assert_eq!(&words[..4], ["w0", "common", "w1", "w2"]);
            assert_eq!(words, one.vocab.words_by_id());
            assert_eq!(built.postings, one.postings);
            let p = &built.postings;
            assert_eq!(p.offsets.len(), words.len() + 1);
            for t in 0..words.len() as u32 {
                let (docs, _) = p.term(t);
                assert!(docs.windows(2).all(|w| w[0] < w[1]), "term {t}");
            }
            let common = built.vocab.get(Term::Word("common")).unwrap();
            assert_eq!(p.doc_freq(common), 3000);
            // "w0 w0 common w0" has length 4 and tf(w0) = 3.
            assert_eq!(built.doc_lengths[0], 4);
            assert_eq!(built.avg_doc_len, 4.0);
        }
    }

    #[test]
    fn empty_corpus_is_rejected() {
        let none: [&str; 0] = [];
        let e = build(&none, &Bm25Params::default(), &Analyzer::words())
            .err()
            .unwrap();
        assert!(e.to_string().contains("`corpus`"), "{e}");
    }
}
