//! The fast path of [`BatchTokenizer::encode_flat`]: token ids without building `Encoding`s.
//!
//! `Tokenizer::encode_fast(text, false)` runs, for a raw single sequence (tokenizers 0.22,
//! `TokenizerImpl::encode_single_sequence`): `AddedVocabulary::extract_and_normalize` (split
//! off added tokens matched on the raw text, normalise the rest, split off added tokens matched
//! on the normalised text), the pre-tokenizer, then `Model::tokenize` on every split that is not
//! an added token, and collects the ids split by split. Two tiers reproduce it:
//!
//! - **library tier** (any tokenizer): the same three library calls, but `Model::tokenize` goes
//!   through the [`WordCache`] and only ids are collected (no token strings, offsets, masks).
//! - **ASCII BERT tier** (`BertNormalizer` or no normaliser, `BertPreTokenizer`, an ASCII text in
//!   which no added token can match): normalisation and pre-tokenisation reduce to byte rules,
//!   done on plain bytes without `NormalizedString`'s alignment bookkeeping.
//!
//! Texts the ASCII tier cannot take go to the library tier; tokenizers the cache cannot serve
//! exactly (BPE dropout is random) and truncation this module does not reproduce go to the
//! reference path in `encode.rs`.

use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{
    ModelWrapper, NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizer,
    Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use super::cache::WordCache;
use super::tok_err;
use crate::error::Result;

/// What the fast path may do for one tokenizer, worked out once when it is loaded.
#[derive(Debug, Clone)]
pub(super) struct FlatPlan {
    /// False when the model is not a pure function of its input (BPE dropout).
    enabled: bool,
    /// The byte rules of the ASCII BERT tier, when the pipeline allows it.
    ascii: Option<AsciiBert>,
    /// Added tokens matched on the raw text (`normalized: false`).
    raw_patterns: Patterns,
    /// Added tokens matched on the normalised text, in normalised form (`normalized: true`).
    normalized_patterns: Patterns,
    /// The model never fails (e.g. WordPiece with its unknown token in the vocabulary), so a
    /// truncated text can stop tokenising once it has enough ids: nothing after the cut could
    /// have turned the result into an error.
    infallible: bool,
}

/// `BertNormalizer` restricted to ASCII text (or no normaliser at all, with both flags off).
#[derive(Debug, Clone, Copy)]
struct AsciiBert {
    clean_text: bool,
    lowercase: bool,
}

/// A set of added-token strings, with a quick test for "none of them can occur".
#[derive(Debug, Clone)]
struct Patterns {
    /// First bytes of the patterns.
    first_bytes: [bool; 256],
    /// Some pattern is empty, so (for the purpose of [`Self::may_match`]) it occurs anywhere.
    has_empty: bool,
    all: Vec<String>,
}

impl Patterns {
    fn new(all: Vec<String>) -> Self {
        let mut first_bytes = [false; 256];
        for p in &all {
            if let Some(&b) = p.as_bytes().first() {
                first_bytes[usize::from(b)] = true;
            }
        }
        let has_empty = all.iter().any(String::is_empty);
        Self {
            first_bytes,
            has_empty,
            all,
        }
    }

    /// Whether any pattern occurs in `text` (as a plain substring: a superset of the matches
    /// the added vocabulary's automaton reports, which is all the caller needs to know).
    fn may_match(&self, text: &str) -> bool {
        if self.all.is_empty() {
            return false;
        }
        if self.has_empty {
            return true;
        }
        text.bytes().any(|b| self.first_bytes[usize::from(b)])
            && self.all.iter().any(|p| text.contains(p.as_str()))
    }
}

/// How a batch is truncated on the fast path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cut {
    /// Keep every id.
    None,
    /// Keep the first this many ids.
    Keep(usize),
}

impl FlatPlan {
    /// Inspects a tokenizer (truncation and padding already switched off).
    pub(super) fn new(tokenizer: &Tokenizer) -> Self {
        let model = tokenizer.get_model();
        // Dropout 0 never skips a merge (`rng() < 0.0` is never true): deterministic.
        let enabled =
            !matches!(model, ModelWrapper::BPE(bpe) if bpe.dropout.is_some_and(|p| p > 0.0));
        let infallible = match model {
            ModelWrapper::WordPiece(wp) => model_has(model, &wp.unk_token),
            ModelWrapper::WordLevel(wl) => model_has(model, &wl.unk_token),
            _ => false,
        };
        let ascii = match (tokenizer.get_normalizer(), tokenizer.get_pre_tokenizer()) {
            (None, Some(PreTokenizerWrapper::BertPreTokenizer(_))) => Some(AsciiBert {
                clean_text: false,
                lowercase: false,
            }),
            (
                Some(NormalizerWrapper::BertNormalizer(n)),
                Some(PreTokenizerWrapper::BertPreTokenizer(_)),
            ) => Some(AsciiBert {
                clean_text: n.clean_text,
                lowercase: n.lowercase,
            }),
            _ => None,
        };
        let (mut raw, mut normalized) = (Vec::new(), Vec::new());
        for token in tokenizer.get_added_tokens_decoder().into_values() {
            if token.normalized {
                // As `AddedVocabulary::refresh_added_tokens` builds its normalised automaton.
                let mut content = NormalizedString::from(token.content.as_str());
                if let Some(n) = tokenizer.get_normalizer() {
                    if n.normalize(&mut content).is_err() {
                        // Cannot happen for the library's normalisers; if it did, the library
                        // would have panicked while loading, so just never take a fast tier.
                        normalized.push(String::new());
                        continue;
                    }
                }
                normalized.push(content.get().to_owned());
            } else {
                raw.push(token.content);
            }
        }
        Self {
            enabled,
            ascii,
            raw_patterns: Patterns::new(raw),
            normalized_patterns: Patterns::new(normalized),
            infallible,
        }
    }

    /// The fast-path truncation for `params`, or `None` when the reference path must run:
    /// the model is random, or the truncation is one this module does not reproduce.
    pub(super) fn cut(&self, params: Option<&TruncationParams>) -> Option<Cut> {
        if !self.enabled {
            return None;
        }
        match params {
            None => Some(Cut::None),
            // A single sequence without special tokens: `truncate_encodings` keeps the first
            // `max_length` ids (stride is always 0 here: `truncation_for` drops overflow).
            Some(p)
                if p.direction == TruncationDirection::Right
                    && matches!(
                        p.strategy,
                        TruncationStrategy::LongestFirst | TruncationStrategy::OnlyFirst
                    ) =>
            {
                Some(Cut::Keep(p.max_length))
            }
            Some(_) => None,
        }
    }
}

/// Whether the model's vocabulary has `token`.
fn model_has(model: &ModelWrapper, token: &str) -> bool {
    use tokenizers::Model;
    model.token_to_id(token).is_some()
}

/// Per-thread scratch space and the shared state one chunk of texts is encoded with.
pub(super) struct FlatEncoder<'a> {
    pub(super) tokenizer: &'a Tokenizer,
    pub(super) plan: &'a FlatPlan,
    pub(super) cache: &'a WordCache,
    /// Normalised text of the ASCII tier, reused across texts.
    normalized: Vec<u8>,
}

impl<'a> FlatEncoder<'a> {
    /// An encoder with empty scratch space.
    pub(super) fn new(tokenizer: &'a Tokenizer, plan: &'a FlatPlan, cache: &'a WordCache) -> Self {
        Self {
            tokenizer,
            plan,
            cache,
            normalized: Vec::new(),
        }
    }

    /// Appends the ids of `text` (truncated by `cut`) to `out`: exactly the ids of
    /// `encode_fast(text, false)` followed by `truncate_encodings`.
    pub(super) fn encode(&mut self, text: &str, cut: Cut, out: &mut Vec<i64>) -> Result<()> {
        let start = out.len();
        let limit = match cut {
            Cut::Keep(n) if self.plan.infallible => Some(n),
            _ => None,
        };
        if !self.encode_ascii(text, limit, out)? {
            self.encode_library(text, limit, out)?;
        }
        if let Cut::Keep(n) = cut {
            out.truncate(start + n);
        }
        Ok(())
    }

    /// The ASCII BERT tier; `false` (with `out` untouched) when the text is not for it.
    fn encode_ascii(
        &mut self,
        text: &str,
        limit: Option<usize>,
        out: &mut Vec<i64>,
    ) -> Result<bool> {
        let Some(rules) = self.plan.ascii else {
            return Ok(false);
        };
        // Without any added-token match, `extract_and_normalize` leaves one split: the whole
        // normalised text (none at all for an empty text).
        if !text.is_ascii() || self.plan.raw_patterns.may_match(text) {
            return Ok(false);
        }
        normalize_ascii(text.as_bytes(), rules, &mut self.normalized);
        // ASCII in, ASCII out: the rules only drop bytes and map ASCII to ASCII.
        let normalized = std::str::from_utf8(&self.normalized).expect("ASCII is UTF-8");
        if self.plan.normalized_patterns.may_match(normalized) {
            return Ok(false);
        }
        let start = out.len();
        let model = self.tokenizer.get_model();
        for word in BertWords::new(normalized) {
            if limit.is_some_and(|n| out.len() - start >= n) {
                break;
            }
            self.cache.extend_ids(word, model, out)?;
        }
        Ok(true)
    }

    /// The library tier: the library's own added-token extraction, normalisation and
    /// pre-tokenisation, then the model through the cache.
    fn encode_library(
        &mut self,
        text: &str,
        limit: Option<usize>,
        out: &mut Vec<i64>,
    ) -> Result<()> {
        let tokenizer = self.tokenizer;
        let mut pretokenized = tokenizer
            .get_added_vocabulary()
            .extract_and_normalize(tokenizer.get_normalizer(), text);
        if let Some(pre_tokenizer) = tokenizer.get_pre_tokenizer() {
            pre_tokenizer
                .pre_tokenize(&mut pretokenized)
                .map_err(tok_err)?;
        }
        let start = out.len();
        let model = tokenizer.get_model();
        for (word, _, tokens) in
            pretokenized.get_splits(OffsetReferential::Original, OffsetType::None)
        {
            if limit.is_some_and(|n| out.len() - start >= n) {
                break;
            }
            match tokens {
                // Added tokens carry their id already.
                Some(tokens) => out.extend(tokens.iter().map(|t| i64::from(t.id))),
                None => self.cache.extend_ids(word, model, out)?,
            }
        }
        Ok(())
    }
}

/// `BertNormalizer::normalize` on ASCII bytes. On ASCII, NFD and accent stripping change
/// nothing and Chinese characters cannot occur, which leaves: `clean_text` drops control
/// characters (category Cc: 0x00-0x1F and 0x7F) except `\t`, `\n`, `\r`, and maps whitespace
/// to a space (which the pre-tokenizer then drops like any whitespace, so it is not mapped
/// here); `lowercase` is ASCII lowercasing.
fn normalize_ascii(text: &[u8], rules: AsciiBert, out: &mut Vec<u8>) {
    out.clear();
    out.extend(text.iter().filter_map(|&b| {
        let control = (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F;
        if rules.clean_text && control {
            None
        } else if rules.lowercase {
            Some(b.to_ascii_lowercase())
        } else {
            Some(b)
        }
    }));
}

/// `BertPreTokenizer` on an ASCII string: runs of bytes split at whitespace (removed) and at
/// punctuation (kept, one byte per word). For ASCII, `char::is_whitespace` is 0x09-0x0D and
/// space, and `is_bert_punc` is exactly `is_ascii_punctuation`.
struct BertWords<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> BertWords<'t> {
    fn new(text: &'t str) -> Self {
        Self { text, pos: 0 }
    }
}

/// `char::is_whitespace` for an ASCII byte (unlike `u8::is_ascii_whitespace`, it includes 0x0B).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

impl<'t> Iterator for BertWords<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && is_ascii_space(bytes[self.pos]) {
            self.pos += 1;
        }
        let start = self.pos;
        let first = *bytes.get(start)?;
        if first.is_ascii_punctuation() {
            self.pos += 1;
        } else {
            while self.pos < bytes.len()
                && !is_ascii_space(bytes[self.pos])
                && !bytes[self.pos].is_ascii_punctuation()
            {
                self.pos += 1;
            }
        }
        // Word boundaries fall on ASCII bytes, so they are char boundaries.
        Some(&self.text[start..self.pos])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lowercasing BERT WordPiece tokenizer with `[UNK]` and `[SEP]` as added tokens.
    fn bert_like() -> Tokenizer {
        let json = r###"{
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [
                {"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
                {"id": 1, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100,
                      "vocab": {"[UNK]": 0, "[SEP]": 1, "hello": 2, "world": 3, "!": 4, "##s": 5}}
        }"###;
        json.parse().expect("tokenizer JSON")
    }

    #[test]
    fn ascii_tier_takes_plain_ascii_only() {
        let tokenizer = bert_like();
        let plan = FlatPlan::new(&tokenizer);
        assert!(plan.enabled && plan.infallible && plan.ascii.is_some());
        let cache = WordCache::default();
        let mut encoder = FlatEncoder::new(&tokenizer, &plan, &cache);
        let mut ids = Vec::new();
        assert!(encoder
            .encode_ascii("Hello\u{7f}Worlds!", None, &mut ids)
            .unwrap());
        // The DEL byte is dropped by clean_text, joining the two words.
        assert_eq!(ids, [0, 4]);
        ids.clear();
        assert!(encoder
            .encode_ascii("hello worlds", Some(1), &mut ids)
            .unwrap());
        assert_eq!(ids, [2], "stops once the truncation length is reached");
        for declined in ["héllo", "hello [SEP] world"] {
            assert!(!encoder.encode_ascii(declined, None, &mut ids).unwrap());
        }
        let mut ids = Vec::new();
        encoder
            .encode("hello [SEP] worlds", Cut::Keep(3), &mut ids)
            .unwrap();
        assert_eq!(ids, [2, 1, 3]);
    }

    #[test]
    fn ascii_space_matches_char_is_whitespace() {
        for b in 0u8..128 {
            assert_eq!(
                is_ascii_space(b),
                char::from(b).is_whitespace(),
                "byte {b:#x}"
            );
        }
    }

    #[test]
    fn bert_words_split_at_spaces_and_punctuation() {
        let words: Vec<&str> = BertWords::new("  Hey friend!  How\tare you?!?x ").collect();
        assert_eq!(
            words,
            ["Hey", "friend", "!", "How", "are", "you", "?", "!", "?", "x"]
        );
        assert_eq!(BertWords::new("").count(), 0);
        assert_eq!(BertWords::new(" \n ").count(), 0);
    }

    #[test]
    fn patterns_detect_possible_matches() {
        let p = Patterns::new(vec!["[SEP]".into(), "[MASK]".into()]);
        assert!(!p.may_match("no brackets"));
        assert!(!p.may_match("a [bracket]"));
        assert!(p.may_match("a [SEP] b"));
        assert!(!Patterns::new(vec![]).may_match("[SEP]"));
        assert!(Patterns::new(vec![String::new()]).may_match("anything"));
    }
}
