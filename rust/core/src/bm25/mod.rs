//! Okapi BM25 lexical search: an in-memory inverted index built in parallel, exact top-k
//! queries through the search engine's selection, and a folder format to save it in.
//!
//! The score formulas and the folder format are documented on [`Bm25Index`].

mod analyze;
mod atomic;
mod build;
mod hash;
mod intern;
mod persist;
mod query;
mod score;
mod stop_words;

use std::path::Path;

use crate::error::Result;
use crate::search::TopK;

pub use analyze::Analyzer;
pub use score::{Bm25Method, Bm25Params};
pub use stop_words::ENGLISH_STOP_WORDS;

use build::{Postings, Vocab};

/// An Okapi BM25 index over a corpus of texts.
///
/// # Scores
///
/// A document `d`'s score for a query is the sum, over the query's terms (a term the query
/// repeats counts again), of the term's weight in `d`; the weight formulas of each
/// [`Bm25Method`] are on its variants. Weights are computed in `f64` once, at indexing time,
/// and stored as `f32`; scores are their `f32` sums, so they match the textbook formulas to
/// about 1e-6 relative. Queries rank documents by score, ties to the lower document id; a
/// document without any query term scores exactly 0.
///
/// # Folder format (`format_version` 1)
///
/// [`Bm25Index::save`] writes a folder (atomically: into a staging folder beside it, then
/// renamed into place; other files already in the folder are kept):
///
/// - `bm25_config.json`: `format` (`"embedforge-bm25"`), `format_version`, `method`, `k1`, `b`,
///   `epsilon`, `analyzer` (`"words"` or `"tokenizer"`), `lowercase`, `stop_words`,
///   `num_docs`, `num_terms`, `num_postings`, `avg_doc_length`;
/// - `bm25.safetensors`: `doc_lengths` (u32 `[num_docs]`: terms per document),
///   `term_offsets` (i64 `[num_terms + 1]`: term `t`'s postings are
///   `term_offsets[t]..term_offsets[t + 1]`), `doc_ids` (u32 `[num_postings]`: ascending within
///   each term) and `weights` (f32 `[num_postings]`: the term's BM25 weight in that document);
/// - `vocab.json` (word analyzer): the words, a JSON array indexed by term id; or
///   `tokenizer.json` (tokenizer analyzer), whose token ids are the term ids.
///
/// # Example
///
/// ```
/// use embedforge::{Analyzer, Bm25Index, Bm25Params, ENGLISH_STOP_WORDS};
///
/// let corpus = [
///     "The quick brown fox jumps over the lazy dog",
///     "A fast brown fox",
///     "Lorem ipsum dolor sit amet",
/// ];
/// let analyzer = Analyzer::words().with_stop_words(ENGLISH_STOP_WORDS.iter().copied());
/// let index = Bm25Index::build(&corpus, Bm25Params::default(), analyzer)?;
///
/// let found = index.search(&["brown fox", "dolor"], 2)?;
/// assert_eq!(found.indices.row(0).to_vec(), [1, 0]); // the shorter document first
/// assert_eq!(found.indices[[1, 0]], 2);
/// assert!(found.scores[[1, 1]] == 0.0); // no other document has "dolor"
///
/// let dir = std::env::temp_dir().join(format!("bm25-doc-example-{}", std::process::id()));
/// index.save(&dir)?;
/// let loaded = Bm25Index::load(&dir)?;
/// assert_eq!(loaded.search(&["brown fox", "dolor"], 2)?, found);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), embedforge::Error>(())
/// ```
#[derive(Clone)]
pub struct Bm25Index {
    params: Bm25Params,
    analyzer: Analyzer,
    vocab: Vocab,
    doc_lengths: Vec<u32>,
    avg_doc_len: f64,
    postings: Postings,
}

impl std::fmt::Debug for Bm25Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25Index")
            .field("params", &self.params)
            .field("lowercase", &self.analyzer.lowercase())
            .field("stop_words", &self.analyzer.stop_words().len())
            .field("tokenizer", &self.analyzer.tokenizer().is_some())
            .field("num_docs", &self.num_docs())
            .field("num_terms", &self.num_terms())
            .field("num_postings", &self.postings.doc_ids.len())
            .finish()
    }
}

impl Bm25Index {
    /// Indexes `corpus`, one document per item, in parallel (see
    /// [`set_num_threads`](crate::set_num_threads)).
    ///
    /// Errors when `params` are out of range, the corpus is empty or has more than
    /// `u32::MAX` documents, or the tokenizer fails on a text.
    pub fn build<S: AsRef<str> + Sync>(
        corpus: &[S],
        params: Bm25Params,
        analyzer: Analyzer,
    ) -> Result<Self> {
        let built = build::build(corpus, &params, &analyzer)?;
        Ok(Self {
            params,
            analyzer,
            vocab: built.vocab,
            doc_lengths: built.doc_lengths,
            avg_doc_len: built.avg_doc_len,
            postings: built.postings,
        })
    }

    /// The best `min(k, num_docs)` documents for every query, in parallel: row `i` of the
    /// result holds query `i`'s document ids and scores, best first, ties to the lower id.
    pub fn search<S: AsRef<str> + Sync>(&self, queries: &[S], k: usize) -> Result<TopK> {
        query::search(
            &self.analyzer,
            &self.vocab,
            &self.postings,
            self.num_docs(),
            queries,
            k,
        )
    }

    /// Every document's score for `query`, indexed by document id.
    pub fn scores(&self, query: &str) -> Result<Vec<f32>> {
        let terms = query::query_terms(&self.analyzer, &self.vocab, &[query])?;
        let terms = terms.into_iter().next().unwrap_or_default();
        Ok(query::scores(&self.postings, self.num_docs(), &terms))
    }

    /// Writes the index into the folder `dir` (created if needed), atomically; see
    /// [`Bm25Index`] for the format.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        persist::save(self, dir.as_ref())
    }

    /// Reads a folder written by [`Bm25Index::save`].
    ///
    /// Errors: [`Error::NotFound`](crate::Error::NotFound) for a missing folder or file,
    /// [`Error::ModelFormat`](crate::Error::ModelFormat) for files that are corrupt or
    /// disagree with each other.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        persist::load(dir.as_ref())
    }

    /// The scoring parameters.
    pub fn params(&self) -> &Bm25Params {
        &self.params
    }

    /// The analyzer that turns documents and queries into terms.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Number of documents.
    pub fn num_docs(&self) -> usize {
        self.doc_lengths.len()
    }

    /// Number of term ids: distinct words, or the tokenizer's vocabulary size.
    pub fn num_terms(&self) -> usize {
        self.vocab.len()
    }

    /// Each document's length in terms (stop words excluded).
    pub fn doc_lengths(&self) -> &[u32] {
        &self.doc_lengths
    }

    /// The mean document length, `avgdl`.
    pub fn avg_doc_len(&self) -> f64 {
        self.avg_doc_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three documents scored by hand with k1 = 1.5, b = 0.75 (word analyzer, no stop words):
    /// lengths 3, 2, 1 so avgdl = 2; N = 3.
    const CORPUS: [&str; 3] = ["apple banana apple", "banana cherry", "cherry"];

    fn by_hand(method: Bm25Method, query: &[&str]) -> [f64; 3] {
        let (k1, b, n, avgdl) = (1.5, 0.75, 3.0, 2.0);
        let df = |t: &str| {
            CORPUS
                .iter()
                .filter(|d| d.split(' ').any(|w| w == t))
                .count() as f64
        };
        let raw_idf = |df: f64| match method {
            Bm25Method::Lucene => (1.0 + (n - df + 0.5) / (df + 0.5)).ln(),
            Bm25Method::Okapi => ((n - df + 0.5) / (df + 0.5)).ln(),
        };
        // Okapi: apple df 1 -> ln(2.5 / 1.5); banana, cherry df 2 -> ln(1.5 / 2.5) < 0, floored to
        // 0.25 * mean of the three raw idfs.
        let mean = ["apple", "banana", "cherry"]
            .iter()
            .map(|t| raw_idf(df(t)))
            .sum::<f64>()
            / 3.0;
        let idf = |t: &str| {
            let raw = raw_idf(df(t));
            if method == Bm25Method::Okapi && raw < 0.0 {
                0.25 * mean
            } else {
                raw
            }
        };
        let mut scores = [0.0; 3];
        for (d, doc) in CORPUS.iter().enumerate() {
            let words: Vec<&str> = doc.split(' ').collect();
            let dl = words.len() as f64;
            for t in query {
                let tf = words.iter().filter(|w| *w == t).count() as f64;
                if tf == 0.0 {
                    continue;
                }
                let norm = k1 * (1.0 - b + b * dl / avgdl);
                scores[d] += match method {
                    Bm25Method::Lucene => idf(t) * tf / (tf + norm),
                    Bm25Method::Okapi => idf(t) * tf * (k1 + 1.0) / (tf + norm),
                };
            }
        }
        scores
    }

    #[test]
    fn scores_match_hand_computation() {
        // One value worked out on paper, as an anchor for the closure above: Lucene, query
        // "apple", document 0: idf = ln(1 + 2.5 / 1.5) = 0.98083, tf = 2, dl = 3,
        // norm = 1.5 * (0.25 + 0.75 * 1.5) = 2.0625, weight = 0.98083 * 2 / 4.0625 = 0.48287.
        let index = Bm25Index::build(&CORPUS, Bm25Params::default(), Analyzer::words()).unwrap();
        assert!((f64::from(index.scores("apple").unwrap()[0]) - 0.482_870).abs() < 1e-5);

        for method in [Bm25Method::Lucene, Bm25Method::Okapi] {
            let params = Bm25Params {
                method,
                ..Bm25Params::default()
            };
            let index = Bm25Index::build(&CORPUS, params, Analyzer::words()).unwrap();
            assert_eq!(index.num_docs(), 3);
            assert_eq!(index.num_terms(), 3);
            assert_eq!(index.avg_doc_len(), 2.0);
            for query in [
                &["apple"][..],
                &["banana", "cherry"],
                &["cherry", "cherry"],
                &["apple", "banana", "durian"],
            ] {
                let expected = by_hand(method, query);
                let got = index.scores(&query.join(" ")).unwrap();
                for (g, e) in got.iter().zip(expected) {
                    assert!(
                        (f64::from(*g) - e).abs() < 1e-6,
                        "{method} {query:?}: {got:?} vs {expected:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn search_ranks_with_ties_to_the_lower_id() {
        let corpus = ["b", "a b", "a b", "c", "a"];
        let index = Bm25Index::build(&corpus, Bm25Params::default(), Analyzer::words()).unwrap();
        let found = index.search(&["a", "zzz", "A"], 10).unwrap();
        assert_eq!(found.indices.shape(), [3, 5]);
        // "a" alone (doc 4) is shortest; docs 1 and 2 tie and keep id order; then zeros by id.
        assert_eq!(found.indices.row(0).to_vec(), [4, 1, 2, 0, 3]);
        assert_eq!(found.scores[[0, 1]], found.scores[[0, 2]]);
        assert_eq!(found.scores[[0, 3]], 0.0);
        assert_eq!(found.indices.row(1).to_vec(), [0, 1, 2, 3, 4]);
        assert_eq!(found.indices.row(2), found.indices.row(0));
        let none = index.search(&[] as &[&str], 3).unwrap();
        assert_eq!(none.indices.shape(), [0, 3]);
    }

    #[test]
    fn save_and_load_round_trip() {
        let corpus: Vec<String> = (0..700)
            .map(|i| format!("doc {i} word{} shared word{}", i % 13, i % 5))
            .collect();
        let analyzer = Analyzer::words().with_stop_words(["shared"]);
        let params = Bm25Params {
            method: Bm25Method::Okapi,
            k1: 1.2,
            b: 0.5,
            epsilon: 0.1,
        };
        let index = Bm25Index::build(&corpus, params, analyzer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        index.save(dir.path().join("index")).unwrap();
        let loaded = Bm25Index::load(dir.path().join("index")).unwrap();
        assert_eq!(loaded.params(), index.params());
        assert_eq!(loaded.analyzer().stop_words(), ["shared"]);
        assert_eq!(loaded.doc_lengths(), index.doc_lengths());
        assert_eq!(loaded.postings, index.postings);
        let queries = ["word3 doc", "shared 17", "nothing"];
        assert_eq!(
            loaded.search(&queries, 7).unwrap(),
            index.search(&queries, 7).unwrap()
        );

        let missing = Bm25Index::load(dir.path().join("absent")).unwrap_err();
        assert!(missing.is_not_found());
        std::fs::write(
            dir.path().join("index").join(persist::VOCAB_FILE),
            "[\"a\"]",
        )
        .unwrap();
        let corrupt = Bm25Index::load(dir.path().join("index")).unwrap_err();
        assert!(
            matches!(corrupt, crate::Error::ModelFormat { .. }),
            "{corrupt}"
        );
    }
}
