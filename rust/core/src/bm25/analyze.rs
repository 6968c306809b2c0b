//! How texts become terms: the word analyzer (lowercase, split into words, drop stop words) or
//! a Hugging Face `tokenizer.json` (its token ids are the terms).

use std::path::Path;
use std::sync::Arc;

use super::intern::Interner;
use crate::error::{Error, Result};
use crate::tokenize::BatchTokenizer;

/// Turns texts into the terms a [`Bm25Index`](super::Bm25Index) counts.
///
/// - [`Analyzer::words`] (the default): the text is lowercased (Unicode full case mapping, as
///   Python's `str.lower`), then every maximal run of word characters is a term. A word
///   character is a Unicode letter or digit (`char::is_alphanumeric`: the Alphabetic and
///   Numeric properties) or `_`, so terms are what Python's `re.findall(r"\w+", text)` finds
///   (the two differ only on combining marks that Unicode counts as Alphabetic, e.g. some
///   Indic vowel signs, which stay inside the word here).
/// - [`Analyzer::with_tokenizer`]: the terms are the ids the tokenizer gives the text without
///   special tokens and without truncation (the tokenizer's own normalisation applies; with
///   `lowercase` the text is also lowercased first).
///
/// Stop words are dropped before counting, so they count neither towards document frequencies
/// nor towards document lengths. With a tokenizer, a token is dropped when its vocabulary
/// string is one of the stop words (so `the` goes, but not a `##the` continuation piece).
/// With `lowercase` the stop words are lowercased too.
#[derive(Clone, Debug)]
pub struct Analyzer {
    lowercase: bool,
    /// As given, sorted and without duplicates.
    stop_words: Vec<String>,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Words {
        /// The stop words, as compared with the terms (lowercased with `lowercase`).
        stop: Interner,
    },
    Tokenizer {
        tokenizer: Arc<BatchTokenizer>,
        /// `stop_ids[id]`: the token is a stop word.
        stop_ids: Vec<bool>,
    },
}

/// One term of a text: a word (word analyzer) or a token id (tokenizer analyzer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Term<'a> {
    Word(&'a str),
    Id(u32),
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::words()
    }
}

impl Analyzer {
    /// The word analyzer: lowercase, split into words, no stop words.
    pub fn words() -> Self {
        Self {
            lowercase: true,
            stop_words: Vec::new(),
            kind: Kind::Words {
                stop: Interner::default(),
            },
        }
    }

    /// Terms are `tokenizer`'s token ids (lowercasing on, no stop words). Its `truncation`
    /// setting is ignored: documents are always indexed whole.
    pub fn with_tokenizer(tokenizer: &BatchTokenizer) -> Self {
        // `inner()` has truncation and padding switched off, so the copy never truncates.
        let tokenizer = BatchTokenizer::from_tokenizer(tokenizer.inner().clone());
        let mut analyzer = Self {
            lowercase: true,
            stop_words: Vec::new(),
            kind: Kind::Tokenizer {
                stop_ids: vec![false; tokenizer.vocab_size()],
                tokenizer: Arc::new(tokenizer),
            },
        };
        analyzer.compile_stop_words();
        analyzer
    }

    /// [`Analyzer::with_tokenizer`] with a `tokenizer.json` file, or a folder holding one.
    pub fn from_tokenizer_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        Ok(Self::with_tokenizer(&BatchTokenizer::from_file(file)?))
    }

    /// Whether texts (and stop words) are lowercased before analysis.
    pub fn with_lowercase(mut self, lowercase: bool) -> Self {
        self.lowercase = lowercase;
        self.compile_stop_words();
        self
    }

    /// Replaces the stop words (see [`ENGLISH_STOP_WORDS`](super::ENGLISH_STOP_WORDS) for a
    /// built-in list).
    pub fn with_stop_words<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut words: Vec<String> = words.into_iter().map(Into::into).collect();
        words.sort_unstable();
        words.dedup();
        self.stop_words = words;
        self.compile_stop_words();
        self
    }

    /// Whether texts are lowercased first.
    pub fn lowercase(&self) -> bool {
        self.lowercase
    }

    /// The stop words as given (sorted, without duplicates); with `lowercase` they are compared
    /// with the terms lowercased.
    pub fn stop_words(&self) -> &[String] {
        &self.stop_words
    }

    /// The tokenizer, for a tokenizer analyzer.
    pub fn tokenizer(&self) -> Option<&BatchTokenizer> {
        match &self.kind {
            Kind::Words { .. } => None,
            Kind::Tokenizer { tokenizer, .. } => Some(tokenizer),
        }
    }

    /// The terms of `text`, in order, stop words removed: words, or token strings.
    pub fn analyze(&self, text: &str) -> Result<Vec<String>> {
        let mut terms = Vec::new();
        self.for_each_term(&[text], |_, term| {
            terms.push(match term {
                Term::Word(word) => word.to_owned(),
                Term::Id(id) => self
                    .tokenizer()
                    .and_then(|t| t.id_to_token(id))
                    .unwrap_or_default(),
            });
        })?;
        Ok(terms)
    }

    /// Number of distinct term ids of a tokenizer analyzer (its vocabulary size).
    pub(super) fn id_space(&self) -> Option<usize> {
        self.tokenizer().map(BatchTokenizer::vocab_size)
    }

    /// Calls `f(i, term)` for every term of every `texts[i]`, in order.
    pub(super) fn for_each_term<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        mut f: impl FnMut(usize, Term<'_>),
    ) -> Result<()> {
        match &self.kind {
            Kind::Words { stop } => {
                let mut scratch = String::new();
                for (i, text) in texts.iter().enumerate() {
                    let text = lowered(text.as_ref(), self.lowercase, &mut scratch);
                    split_words(text, |word| {
                        if stop.is_empty() || stop.get(word).is_none() {
                            f(i, Term::Word(word));
                        }
                    });
                }
            }
            Kind::Tokenizer {
                tokenizer,
                stop_ids,
            } => {
                let batch = if self.lowercase {
                    let lowered: Vec<String> =
                        texts.iter().map(|t| t.as_ref().to_lowercase()).collect();
                    tokenizer.encode_flat(&lowered, None, None)?
                } else {
                    tokenizer.encode_flat(texts, None, None)?
                };
                let ends = batch
                    .offsets
                    .iter()
                    .skip(1)
                    .map(|&o| o as usize)
                    .chain(std::iter::once(batch.ids.len()));
                let mut start = 0;
                for (i, end) in ends.enumerate() {
                    for &id in &batch.ids[start..end] {
                        let id = u32::try_from(id).map_err(|_| {
                            Error::Tokenizer(format!("token id {id} does not fit in 32 bits"))
                        })?;
                        if !stop_ids.get(id as usize).copied().unwrap_or(false) {
                            f(i, Term::Id(id));
                        }
                    }
                    start = end;
                }
            }
        }
        Ok(())
    }

    /// Rebuilds the lookup form of the stop words after `stop_words` or `lowercase` changed.
    fn compile_stop_words(&mut self) {
        let lowercase = self.lowercase;
        let normalized = self.stop_words.iter().map(|w| {
            if lowercase {
                w.to_lowercase()
            } else {
                w.clone()
            }
        });
        match &mut self.kind {
            Kind::Words { stop } => {
                *stop = Interner::default();
                for word in normalized {
                    stop.get_or_insert(&word);
                }
            }
            Kind::Tokenizer {
                tokenizer,
                stop_ids,
            } => {
                stop_ids.iter_mut().for_each(|s| *s = false);
                for word in normalized {
                    if let Some(id) = tokenizer.token_to_id(&word) {
                        if let Some(slot) = stop_ids.get_mut(id as usize) {
                            *slot = true;
                        }
                    }
                }
            }
        }
    }
}

/// `text` lowercased (into `scratch` when that changes anything).
fn lowered<'a>(text: &'a str, lowercase: bool, scratch: &'a mut String) -> &'a str {
    if !lowercase {
        return text;
    }
    if text.is_ascii() {
        if !text.bytes().any(|b| b.is_ascii_uppercase()) {
            return text;
        }
        scratch.clear();
        scratch.push_str(text);
        scratch.make_ascii_lowercase();
    } else {
        // `str::to_lowercase`, not per-char mapping: it handles the final sigma as Python does.
        *scratch = text.to_lowercase();
    }
    scratch
}

/// Calls `f` with every maximal run of word characters (letters, digits, `_`) of `text`.
fn split_words<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let n = text.len();
    let mut i = 0;
    loop {
        while i < n {
            let (word, width) = classify(text, i);
            if word {
                break;
            }
            i += width;
        }
        if i == n {
            return;
        }
        let start = i;
        while i < n {
            let (word, width) = classify(text, i);
            if !word {
                break;
            }
            i += width;
        }
        f(&text[start..i]);
    }
}

/// Whether the character starting at byte `i` of `text` is a word character, and its length
/// in bytes. ASCII, nearly every byte of most corpora, takes a table lookup; anything else is
/// decoded.
#[inline]
fn classify(text: &str, i: usize) -> (bool, usize) {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        return (ASCII_WORD[usize::from(b)], 1);
    }
    match text[i..].chars().next() {
        Some(c) => (c.is_alphanumeric(), c.len_utf8()),
        // `i` is always a character boundary, so there is a character here.
        None => (false, 1),
    }
}

/// `ASCII_WORD[b]`: ASCII byte `b` is a letter, a digit or `_`.
const ASCII_WORD: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        Analyzer::words().analyze(text).unwrap()
    }

    #[test]
    fn splits_on_non_word_characters_and_lowercases() {
        assert_eq!(
            words("Hello, World! snake_case x2 -- 3.14"),
            ["hello", "world", "snake_case", "x2", "3", "14"]
        );
        assert_eq!(words("  "), Vec::<String>::new());
        assert_eq!(words("don't"), ["don", "t"]);
    }

    #[test]
    fn unicode_letters_and_digits_are_word_characters() {
        assert_eq!(
            words("Café ÜBER naïve—École 東京 ٣٤"),
            ["café", "über", "naïve", "école", "東京", "٣٤"]
        );
        // Final sigma, as Python's str.lower.
        assert_eq!(words("ΟΔΟΣ"), ["οδος"]);
    }

    #[test]
    fn stop_words_follow_lowercasing() {
        let a = Analyzer::words().with_stop_words(["of", "The", "of"]);
        assert_eq!(a.stop_words(), ["The", "of"]);
        assert_eq!(
            a.analyze("The Lord of the Rings").unwrap(),
            ["lord", "rings"]
        );
        let cased = Analyzer::words()
            .with_lowercase(false)
            .with_stop_words(["The"]);
        assert_eq!(
            cased.analyze("The Lord of the Rings").unwrap(),
            ["Lord", "of", "the", "Rings"]
        );
        // The order of the builder calls does not matter.
        let relowered = cased.with_lowercase(true);
        assert_eq!(relowered.analyze("The Lord").unwrap(), ["lord"]);
    }

    #[test]
    fn built_in_english_list_drops_function_words() {
        let a = Analyzer::words().with_stop_words(super::super::ENGLISH_STOP_WORDS.iter().copied());
        assert_eq!(
            a.analyze("What is the capital of France?").unwrap(),
            ["capital", "france"]
        );
    }

    /// A word-level tokenizer that truncates to 2 tokens, which the analyzer must ignore.
    fn word_level_tokenizer() -> BatchTokenizer {
        BatchTokenizer::from_json(
            r#"{
              "version": "1.0",
              "truncation": {"direction": "Right", "max_length": 2, "strategy": "LongestFirst", "stride": 0},
              "padding": null,
              "added_tokens": [],
              "normalizer": null,
              "pre_tokenizer": {"type": "Whitespace"},
              "post_processor": null,
              "decoder": null,
              "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "the": 1, "cat": 2, "sat": 3, "The": 4}, "unk_token": "[UNK]"}
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn tokenizer_terms_are_untruncated_token_ids() {
        let analyzer = Analyzer::with_tokenizer(&word_level_tokenizer());
        assert_eq!(analyzer.id_space(), Some(5));
        assert_eq!(
            analyzer.analyze("The cat sat dog").unwrap(),
            ["the", "cat", "sat", "[UNK]"]
        );
        let cased = analyzer.clone().with_lowercase(false);
        assert_eq!(cased.analyze("The cat").unwrap(), ["The", "cat"]);
        let stopped = analyzer.with_stop_words(["THE"]);
        assert_eq!(stopped.analyze("The cat, the").unwrap(), ["cat", "[UNK]"]);
        let mut ids = Vec::new();
        stopped
            .for_each_term(&["the cat", "", "sat"], |i, t| {
                if let Term::Id(id) = t {
                    ids.push((i, id));
                }
            })
            .unwrap();
        assert_eq!(ids, [(0, 2), (2, 3)]);
        let none: [&str; 0] = [];
        stopped.for_each_term(&none, |_, _| unreachable!()).unwrap();
    }
}
