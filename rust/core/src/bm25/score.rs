//! The BM25 formulas, in one place: parameters, inverse document frequency per method, and the
//! weight one term occurrence count contributes to a document's score.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Which BM25 variant scores the index. Both share the length normalisation
/// `norm(d) = k1 * (1 - b + b * |d| / avgdl)`; `N` is the number of documents, `df` the number
/// of documents that contain the term and `tf` its count in the document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Bm25Method {
    /// Lucene's BM25 (Lucene 8 and later; `bm25s` with `method="lucene"`):
    /// `idf = ln(1 + (N - df + 0.5) / (df + 0.5))`, always positive, and
    /// `weight = idf * tf / (tf + norm(d))` (no `k1 + 1` factor, which only scales all scores).
    #[default]
    Lucene,
    /// Okapi BM25 as `rank_bm25.BM25Okapi` computes it: `idf = ln((N - df + 0.5) / (df + 0.5))`,
    /// where every negative idf (a term in more than half of the documents) is replaced by
    /// `epsilon * mean idf` (mean over the corpus vocabulary, before replacement), and
    /// `weight = idf * tf * (k1 + 1) / (tf + norm(d))`.
    Okapi,
}

impl Bm25Method {
    /// The name [`FromStr`] accepts: `"lucene"` or `"okapi"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lucene => "lucene",
            Self::Okapi => "okapi",
        }
    }
}

impl fmt::Display for Bm25Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Bm25Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lucene" => Ok(Self::Lucene),
            "okapi" => Ok(Self::Okapi),
            other => Err(Error::invalid_argument(
                "method",
                format!("{other:?}"),
                "\"lucene\" or \"okapi\"",
            )),
        }
    }
}

/// The scoring parameters of a [`Bm25Index`](super::Bm25Index).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation: 0 counts a term once however often it occurs; larger values
    /// let repeated occurrences count for more. Finite and `>= 0`; default 1.5.
    pub k1: f64,
    /// Length normalisation, in `[0, 1]`: 0 ignores document length, 1 divides fully by
    /// `|d| / avgdl`. Default 0.75.
    pub b: f64,
    /// The idf and term-weight formulas. Default [`Bm25Method::Lucene`].
    pub method: Bm25Method,
    /// [`Bm25Method::Okapi`] only: negative idfs become `epsilon * mean idf`. Finite; default
    /// 0.25, as `rank_bm25`.
    pub epsilon: f64,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Self {
            k1: 1.5,
            b: 0.75,
            method: Bm25Method::Lucene,
            epsilon: 0.25,
        }
    }
}

impl Bm25Params {
    /// Errors naming the first parameter out of range.
    pub fn validate(&self) -> Result<()> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(Error::invalid_argument(
                "k1",
                self.k1,
                "a finite number >= 0",
            ));
        }
        if !(self.b.is_finite() && (0.0..=1.0).contains(&self.b)) {
            return Err(Error::invalid_argument("b", self.b, "a number in [0, 1]"));
        }
        if !self.epsilon.is_finite() {
            return Err(Error::invalid_argument(
                "epsilon",
                self.epsilon,
                "a finite number",
            ));
        }
        Ok(())
    }

    /// The idf of every term from its document frequency (`df == 0`: terms that occur nowhere,
    /// which only the tokenizer analyzer has; their idf is never used and is set to 0).
    pub(super) fn idfs(&self, doc_freqs: &[u32], num_docs: usize) -> Vec<f64> {
        let n = num_docs as f64;
        let raw = |df: u32| {
            let df = f64::from(df);
            match self.method {
                Bm25Method::Lucene => (1.0 + (n - df + 0.5) / (df + 0.5)).ln(),
                Bm25Method::Okapi => ((n - df + 0.5) / (df + 0.5)).ln(),
            }
        };
        let mut idfs: Vec<f64> = doc_freqs
            .iter()
            .map(|&df| if df == 0 { 0.0 } else { raw(df) })
            .collect();
        if self.method == Bm25Method::Okapi {
            let (sum, count) = doc_freqs
                .iter()
                .zip(&idfs)
                .filter(|(&df, _)| df > 0)
                .fold((0.0, 0usize), |(sum, count), (_, &idf)| {
                    (sum + idf, count + 1)
                });
            if count > 0 {
                let floor = self.epsilon * sum / count as f64;
                for (idf, &df) in idfs.iter_mut().zip(doc_freqs) {
                    if df > 0 && *idf < 0.0 {
                        *idf = floor;
                    }
                }
            }
        }
        idfs
    }

    /// `norm(d)` for a document of `doc_len` terms (see [`Bm25Method`]).
    #[inline]
    pub(super) fn length_norm(&self, doc_len: u32, avg_doc_len: f64) -> f64 {
        // avgdl is 0 only for a corpus without any term, which has no postings to weigh.
        let relative = if avg_doc_len > 0.0 {
            f64::from(doc_len) / avg_doc_len
        } else {
            0.0
        };
        self.k1 * (1.0 - self.b + self.b * relative)
    }

    /// What `tf` occurrences of a term with `idf` add to a document with length norm `norm`.
    #[inline]
    pub(super) fn weight(&self, idf: f64, tf: u32, norm: f64) -> f64 {
        let tf = f64::from(tf);
        match self.method {
            Bm25Method::Lucene => idf * tf / (tf + norm),
            Bm25Method::Okapi => idf * tf * (self.k1 + 1.0) / (tf + norm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_and_print() {
        assert_eq!("lucene".parse::<Bm25Method>().unwrap(), Bm25Method::Lucene);
        assert_eq!("okapi".parse::<Bm25Method>().unwrap(), Bm25Method::Okapi);
        assert_eq!(Bm25Method::Okapi.to_string(), "okapi");
        let e = "bm25+".parse::<Bm25Method>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for `method`: got \"bm25+\", expected \"lucene\" or \"okapi\""
        );
    }

    #[test]
    fn parameters_out_of_range_are_named() {
        let bad = |p: Bm25Params| p.validate().unwrap_err().to_string();
        let ok = Bm25Params::default();
        assert!(ok.validate().is_ok());
        assert!(bad(Bm25Params { k1: -0.1, ..ok }).contains("`k1`"));
        assert!(bad(Bm25Params { k1: f64::NAN, ..ok }).contains("`k1`"));
        assert!(bad(Bm25Params { b: 1.5, ..ok }).contains("`b`"));
        assert!(bad(Bm25Params {
            epsilon: f64::INFINITY,
            ..ok
        })
        .contains("`epsilon`"));
    }

    #[test]
    fn idf_by_hand() {
        // N = 4; df = 1, 2, 4.
        let lucene = Bm25Params::default().idfs(&[1, 2, 4, 0], 4);
        assert!((lucene[0] - (1.0f64 + 3.5 / 1.5).ln()).abs() < 1e-12);
        assert!((lucene[1] - (1.0f64 + 2.5 / 2.5).ln()).abs() < 1e-12);
        assert!((lucene[2] - (1.0f64 + 0.5 / 4.5).ln()).abs() < 1e-12);
        assert_eq!(lucene[3], 0.0);

        let okapi = Bm25Params {
            method: Bm25Method::Okapi,
            ..Bm25Params::default()
        };
        let idfs = okapi.idfs(&[1, 2, 4, 0], 4);
        let raw = [(3.5f64 / 1.5).ln(), 0.0, (0.5f64 / 4.5).ln()];
        let floor = 0.25 * raw.iter().sum::<f64>() / 3.0;
        assert!((idfs[0] - raw[0]).abs() < 1e-12);
        // ln(1) = 0 is not negative, so it is kept.
        assert_eq!(idfs[1], 0.0);
        assert!((idfs[2] - floor).abs() < 1e-12);
    }

    #[test]
    fn weights_by_hand() {
        let p = Bm25Params::default();
        // |d| = 2 with avgdl = 4: norm = 1.5 * (0.25 + 0.75 * 0.5) = 0.9375.
        let norm = p.length_norm(2, 4.0);
        assert!((norm - 0.9375).abs() < 1e-12);
        assert!((p.weight(2.0, 3, norm) - 2.0 * 3.0 / 3.9375).abs() < 1e-12);
        let okapi = Bm25Params {
            method: Bm25Method::Okapi,
            ..p
        };
        assert!((okapi.weight(2.0, 3, norm) - 2.0 * 3.0 * 2.5 / 3.9375).abs() < 1e-12);
    }
}
