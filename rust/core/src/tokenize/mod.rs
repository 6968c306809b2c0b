//! Batch tokenisation on top of a Hugging Face `tokenizer.json`.
//!
//! [`BatchTokenizer`] turns whole batches of texts into the arrays models consume: padded
//! `input_ids` / `attention_mask` / `token_type_ids` for transformers ([`PaddedBatch`]), or flat
//! ids plus offsets for static embedding bags ([`FlatBatch`]).

mod cache;
mod encode;
mod flat;
mod order;

use std::path::Path;
use std::sync::Arc;

use tokenizers::{
    PaddingDirection, PostProcessor, Tokenizer, TruncationDirection, TruncationParams,
};

use crate::error::{Error, Result};
use cache::WordCache;
use flat::FlatPlan;

pub use encode::{FlatBatch, PaddedBatch, PaddedOptions};
pub use order::length_order;

/// Tokens tried, in order, for the padding id when `tokenizer.json` has no `padding` section.
const PAD_TOKEN_CANDIDATES: [&str; 3] = ["[PAD]", "<pad>", "<|endoftext|>"];

/// How [`BatchTokenizer::encode_padded`] fills the rows of a batch up to its longest row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding {
    /// Id written into `input_ids` at padded positions.
    pub pad_id: u32,
    /// Id written into `token_type_ids` at padded positions.
    pub pad_type_id: u32,
    /// Pad on the left instead of the right.
    pub left: bool,
}

/// A `tokenizer.json` tokenizer that encodes whole batches in parallel.
///
/// The tokenizer's own `truncation` and `padding` sections are kept aside: truncation applies
/// only when a call gives no `max_length`, and padding only supplies the default [`Padding`].
#[derive(Debug, Clone)]
pub struct BatchTokenizer {
    /// The tokenizer with truncation and padding switched off, so each call controls both.
    tokenizer: Tokenizer,
    /// The `truncation` section of the loaded `tokenizer.json`.
    truncation: Option<TruncationParams>,
    /// The `padding` section of the loaded `tokenizer.json`, kept for [`Self::to_json`].
    json_padding: Option<tokenizers::PaddingParams>,
    padding: Padding,
    /// What [`Self::encode_flat`]'s fast path may do with this tokenizer.
    flat_plan: FlatPlan,
    /// Word -> ids memo of the model for [`Self::encode_flat`]. Clones share it: nothing can
    /// change a `BatchTokenizer`'s model after construction.
    word_cache: Arc<WordCache>,
}

impl BatchTokenizer {
    /// Loads a `tokenizer.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let json =
            std::fs::read_to_string(path).map_err(|e| Error::io(path, "tokenizer file", e))?;
        Self::from_json(&json).map_err(|e| match e {
            Error::Tokenizer(msg) => Error::Tokenizer(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Loads a tokenizer from the text of a `tokenizer.json` file.
    pub fn from_json(json: &str) -> Result<Self> {
        let tokenizer: Tokenizer = json
            .parse()
            .map_err(|e| Error::Tokenizer(format!("cannot parse tokenizer JSON: {e}")))?;
        Ok(Self::from_tokenizer(tokenizer))
    }

    /// Wraps an already built `tokenizers::Tokenizer`.
    pub fn from_tokenizer(mut tokenizer: Tokenizer) -> Self {
        let truncation = tokenizer.get_truncation().cloned();
        let json_padding = tokenizer.get_padding().cloned();
        let padding = match &json_padding {
            Some(p) => Padding {
                pad_id: p.pad_id,
                pad_type_id: p.pad_type_id,
                left: matches!(p.direction, PaddingDirection::Left),
            },
            None => Padding {
                pad_id: PAD_TOKEN_CANDIDATES
                    .iter()
                    .find_map(|t| tokenizer.token_to_id(t))
                    .unwrap_or(0),
                pad_type_id: 0,
                left: false,
            },
        };
        tokenizer.with_padding(None);
        // Switching truncation off cannot fail: only `Some` parameters are validated.
        let _ = tokenizer.with_truncation(None);
        Self {
            flat_plan: FlatPlan::new(&tokenizer),
            word_cache: Arc::default(),
            tokenizer,
            truncation,
            json_padding,
            padding,
        }
    }

    /// The tokenizer as `tokenizer.json` text, with the `truncation` and `padding` sections it
    /// was loaded with.
    pub fn to_json(&self, pretty: bool) -> Result<String> {
        let to_err = |e: serde_json::Error| Error::Tokenizer(format!("cannot serialise: {e}"));
        let mut value = serde_json::to_value(&self.tokenizer).map_err(to_err)?;
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "truncation".into(),
                serde_json::to_value(&self.truncation).map_err(to_err)?,
            );
            map.insert(
                "padding".into(),
                serde_json::to_value(&self.json_padding).map_err(to_err)?,
            );
        }
        if pretty {
            serde_json::to_string_pretty(&value).map_err(to_err)
        } else {
            serde_json::to_string(&value).map_err(to_err)
        }
    }

    /// The underlying `tokenizers::Tokenizer` (truncation and padding switched off).
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The padding used by [`Self::encode_padded`].
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// Sets the padding used by [`Self::encode_padded`].
    pub fn set_padding(&mut self, padding: Padding) {
        self.padding = padding;
    }

    /// The `truncation` section of the loaded `tokenizer.json`, used when no `max_length` is given.
    pub fn default_truncation(&self) -> Option<&TruncationParams> {
        self.truncation.as_ref()
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// All token strings indexed by id, added tokens included; ids without a token are empty.
    pub fn vocab(&self) -> Vec<String> {
        let vocab = self.tokenizer.get_vocab(true);
        let len = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut out = vec![String::new(); len];
        for (token, id) in vocab {
            out[id as usize] = token;
        }
        out
    }

    /// Number of special tokens the post-processor adds to a single text or a pair.
    pub fn num_special_tokens(&self, is_pair: bool) -> usize {
        self.tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(is_pair))
    }

    /// Truncation for a call: `max_length` if given (longest-first, as HF transformers'
    /// `truncation=True`), else the tokenizer's own setting; validated so that the special
    /// tokens still fit.
    fn truncation_for(
        &self,
        max_length: Option<usize>,
        is_pair: bool,
        add_special_tokens: bool,
    ) -> Result<Option<TruncationParams>> {
        let specials = if add_special_tokens {
            self.num_special_tokens(is_pair)
        } else {
            0
        };
        let params = match max_length {
            Some(max_length) => {
                if max_length == 0 || max_length < specials {
                    return Err(Error::invalid_argument(
                        "max_length",
                        max_length,
                        format!(
                            "at least {} (the special tokens this tokenizer adds{})",
                            specials.max(1),
                            if is_pair { " to a pair" } else { "" }
                        ),
                    ));
                }
                TruncationParams {
                    max_length,
                    stride: 0,
                    strategy: tokenizers::TruncationStrategy::LongestFirst,
                    direction: self
                        .truncation
                        .as_ref()
                        .map_or(TruncationDirection::Right, |t| t.direction),
                }
            }
            None => match &self.truncation {
                Some(t) if t.max_length < specials => {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.json truncates to {} tokens, fewer than the {specials} special tokens it adds",
                        t.max_length
                    )))
                }
                Some(t) => t.clone(),
                None => return Ok(None),
            },
        };
        // Overflowing windows are dropped, so the stride never changes the kept tokens; zero
        // also avoids the `stride < max_len` assertion inside `Encoding::truncate`.
        Ok(Some(TruncationParams {
            max_length: params.max_length - specials,
            stride: 0,
            ..params
        }))
    }
}

/// Converts a `tokenizers` error into ours.
fn tok_err(e: tokenizers::Error) -> Error {
    Error::Tokenizer(e.to_string())
}
