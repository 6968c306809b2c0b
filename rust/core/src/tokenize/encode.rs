//! Encoding batches: padded transformer inputs, flat embedding-bag inputs, prompt lengths.

use std::borrow::Cow;

use ndarray::Array2;
use tokenizers::{truncate_encodings, Encoding, TruncationParams};

use super::flat::FlatEncoder;
use super::{tok_err, BatchTokenizer};
use crate::error::{Error, Result};
use crate::parallel;

/// Most texts one task of [`BatchTokenizer::encode_flat`] encodes.
const FLAT_CHUNK_MAX: usize = 512;

/// Options of [`BatchTokenizer::encode_padded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaddedOptions<'a> {
    /// Truncate every row (special tokens included) to this many tokens, longest-first for
    /// pairs; `None` applies the tokenizer's own `truncation` setting, if any.
    pub max_length: Option<usize>,
    /// Text prepended to every (first) text, by plain concatenation.
    pub prompt: Option<&'a str>,
    /// Add the special tokens of the tokenizer's post-processor (`[CLS]`, `[SEP]`, ...).
    pub add_special_tokens: bool,
}

impl Default for PaddedOptions<'_> {
    fn default() -> Self {
        Self {
            max_length: None,
            prompt: None,
            add_special_tokens: true,
        }
    }
}

/// A batch padded to its longest row: the inputs of a transformer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedBatch {
    /// Token ids, `[batch, longest]`.
    pub input_ids: Array2<i64>,
    /// 1 for real tokens, 0 for padding, `[batch, longest]`.
    pub attention_mask: Array2<i64>,
    /// Segment ids (0 for the first text, 1 for the pair in BERT-style tokenizers).
    pub token_type_ids: Array2<i64>,
    /// With a prompt: how many leading positions it occupies (see [`BatchTokenizer::prompt_length`]).
    pub prompt_length: Option<usize>,
}

/// A batch as one flat run of ids plus each text's start: the inputs of an embedding bag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlatBatch {
    /// All texts' token ids, one after the other.
    pub ids: Vec<i64>,
    /// Where each text starts in `ids` (one per text; the first is 0).
    pub offsets: Vec<i64>,
}

impl BatchTokenizer {
    /// Encodes a batch (optionally of pairs) into padded `input_ids`, `attention_mask` and
    /// `token_type_ids`, exactly as HF transformers' fast tokenizer called with
    /// `padding=True, truncation="longest_first", max_length=...`.
    pub fn encode_padded<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        pairs: Option<&[S]>,
        options: &PaddedOptions<'_>,
    ) -> Result<PaddedBatch> {
        if let Some(pairs) = pairs {
            if pairs.len() != texts.len() {
                return Err(Error::invalid_argument(
                    "pairs",
                    format!("{} pairs", pairs.len()),
                    format!("one pair per text ({})", texts.len()),
                ));
            }
        }
        let add_special = options.add_special_tokens;
        let truncation = self.truncation_for(options.max_length, pairs.is_some(), add_special)?;
        let prompt_length = options
            .prompt
            .map(|p| self.prompt_length(p, options.max_length))
            .transpose()?;

        let rows: Vec<usize> = (0..texts.len()).collect();
        let encodings = parallel::try_map(&rows, |&i| {
            let text = with_prompt(options.prompt, texts[i].as_ref());
            let pair = pairs.map(|p| p[i].as_ref());
            self.encode_one(&text, pair, truncation.as_ref(), add_special)
        })?;

        let (input_ids, attention_mask, token_type_ids) = self.pad(&encodings);
        Ok(PaddedBatch {
            input_ids,
            attention_mask,
            token_type_ids,
            prompt_length,
        })
    }

    /// How many tokens each text becomes in [`Self::encode_padded`] with the same `options`
    /// (prompt, truncation and special tokens included; padding not).
    ///
    /// A batching key: sorting texts by it puts texts of equal token length in one padded batch,
    /// which a character-length sort only approximates.
    pub fn token_counts<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        options: &PaddedOptions<'_>,
    ) -> Result<Vec<usize>> {
        let add_special = options.add_special_tokens;
        let truncation = self.truncation_for(options.max_length, false, add_special)?;
        let rows: Vec<usize> = (0..texts.len()).collect();
        parallel::try_map(&rows, |&i| {
            let text = with_prompt(options.prompt, texts[i].as_ref());
            Ok(self
                .encode_one(&text, None, truncation.as_ref(), add_special)?
                .len())
        })
    }

    /// Encodes texts without special tokens or padding into flat ids and per-text offsets,
    /// as sentence-transformers' `StaticEmbedding` does. Truncation: `max_length` if given,
    /// else the tokenizer's own setting.
    ///
    /// The ids are exactly those of `tokenizers`' `encode_batch(texts, add_special_tokens=false)`,
    /// computed without building `Encoding`s and with the model's output memoised per word in
    /// a bounded cache (at most ~1M words / 64 MiB) shared by clones of this tokenizer.
    pub fn encode_flat<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        max_length: Option<usize>,
        prompt: Option<&str>,
    ) -> Result<FlatBatch> {
        let truncation = self.truncation_for(max_length, false, false)?;
        let Some(cut) = self.flat_plan.cut(truncation.as_ref()) else {
            return self.encode_flat_slow(texts, truncation.as_ref(), prompt);
        };
        // Chunks rather than single texts, so that each task reuses its buffers and writes
        // one id vector; several chunks per thread keep the load balanced.
        let chunk_len = texts
            .len()
            .div_ceil(4 * parallel::num_threads())
            .clamp(1, FLAT_CHUNK_MAX);
        let chunks: Vec<&[S]> = texts.chunks(chunk_len).collect();
        let per_chunk = parallel::try_map(&chunks, |chunk| {
            let mut encoder = FlatEncoder::new(&self.tokenizer, &self.flat_plan, &self.word_cache);
            let mut ids = Vec::new();
            let mut ends = Vec::with_capacity(chunk.len());
            let mut prompted = String::new();
            for text in *chunk {
                let text = match prompt {
                    Some(p) => {
                        prompted.clear();
                        prompted.push_str(p);
                        prompted.push_str(text.as_ref());
                        prompted.as_str()
                    }
                    None => text.as_ref(),
                };
                encoder.encode(text, cut, &mut ids)?;
                ends.push(ids.len());
            }
            Ok::<_, Error>((ids, ends))
        })?;

        let total = per_chunk.iter().map(|(ids, _)| ids.len()).sum();
        let mut batch = FlatBatch {
            ids: Vec::with_capacity(total),
            offsets: Vec::with_capacity(texts.len()),
        };
        for (ids, ends) in per_chunk {
            let base = batch.ids.len();
            let mut start = 0;
            for end in ends {
                batch.offsets.push((base + start) as i64);
                start = end;
            }
            batch.ids.extend(ids);
        }
        Ok(batch)
    }

    /// [`Self::encode_flat`] through `tokenizers`' full `Encoding` pipeline, without the fast
    /// path: the reference the fast path is tested against.
    #[doc(hidden)]
    pub fn encode_flat_reference<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        max_length: Option<usize>,
        prompt: Option<&str>,
    ) -> Result<FlatBatch> {
        let truncation = self.truncation_for(max_length, false, false)?;
        self.encode_flat_slow(texts, truncation.as_ref(), prompt)
    }

    /// Number of words [`Self::encode_flat`] has memoised (for tests).
    #[doc(hidden)]
    pub fn flat_cache_len(&self) -> usize {
        self.word_cache.len()
    }

    /// The reference implementation of [`Self::encode_flat`], one `Encoding` per text.
    fn encode_flat_slow<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        truncation: Option<&TruncationParams>,
        prompt: Option<&str>,
    ) -> Result<FlatBatch> {
        let per_text = parallel::try_map(texts, |text| {
            let text = with_prompt(prompt, text.as_ref());
            let encoding = self.encode_one(&text, None, truncation, false)?;
            Ok::<_, Error>(
                encoding
                    .get_ids()
                    .iter()
                    .map(|&id| i64::from(id))
                    .collect::<Vec<_>>(),
            )
        })?;

        let total = per_text.iter().map(Vec::len).sum();
        let mut batch = FlatBatch {
            ids: Vec::with_capacity(total),
            offsets: Vec::with_capacity(per_text.len()),
        };
        for ids in per_text {
            batch.offsets.push(batch.ids.len() as i64);
            batch.ids.extend(ids);
        }
        Ok(batch)
    }

    /// Token ids of one text, never truncated.
    pub fn encode_ids(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self.encode_one(text, None, None, add_special_tokens)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// How many leading positions `prompt` occupies in a padded row, as sentence-transformers
    /// measures it for `Pooling(include_prompt=False)`: the prompt's token count with special
    /// tokens (truncated like the texts), minus one when it ends in a special token (the
    /// `[SEP]`/`</s>` that is not there once a text follows).
    pub fn prompt_length(&self, prompt: &str, max_length: Option<usize>) -> Result<usize> {
        let truncation = self.truncation_for(max_length, false, true)?;
        let encoding = self.encode_one(prompt, None, truncation.as_ref(), true)?;
        let ends_special = encoding.get_special_tokens_mask().last() == Some(&1)
            || encoding
                .get_tokens()
                .last()
                .is_some_and(|t| self.tokenizer.get_added_vocabulary().is_special_token(t));
        Ok(encoding.len() - usize::from(ends_special))
    }

    /// Encodes one text (and pair): tokenise without special tokens, truncate, then let the
    /// post-processor add the special tokens and type ids. This is the order in which
    /// `tokenizers` itself works, done by hand so that truncation is per call, not per tokenizer.
    fn encode_one(
        &self,
        text: &str,
        pair: Option<&str>,
        truncation: Option<&TruncationParams>,
        add_special_tokens: bool,
    ) -> Result<Encoding> {
        let mut first = self.tokenizer.encode_fast(text, false).map_err(tok_err)?;
        let mut second = pair
            .map(|p| {
                let mut e = self.tokenizer.encode_fast(p, false).map_err(tok_err)?;
                // `tokenizers` gives the second sequence type id 1; processors that do not set
                // type ids themselves keep it.
                e.set_type_ids(vec![1; e.len()]);
                Ok::<_, Error>(e)
            })
            .transpose()?;
        if let Some(params) = truncation {
            (first, second) = truncate_encodings(first, second, params).map_err(tok_err)?;
            // The cut-off windows are never used; dropping them saves copying them below.
            first.take_overflowing();
            if let Some(second) = second.as_mut() {
                second.take_overflowing();
            }
        }
        if second.is_none() && !add_special_tokens {
            return Ok(first);
        }
        self.tokenizer
            .post_process(first, second, add_special_tokens)
            .map_err(tok_err)
    }

    /// Pads encodings to the longest one, into `(input_ids, attention_mask, token_type_ids)`.
    fn pad(&self, encodings: &[Encoding]) -> (Array2<i64>, Array2<i64>, Array2<i64>) {
        let rows = encodings.len();
        let width = encodings.iter().map(Encoding::len).max().unwrap_or(0);
        let padding = self.padding;
        let mut ids = vec![i64::from(padding.pad_id); rows * width];
        let mut mask = vec![0i64; rows * width];
        let mut types = vec![i64::from(padding.pad_type_id); rows * width];
        for (row, encoding) in encodings.iter().enumerate() {
            let len = encoding.len();
            let start = row * width + if padding.left { width - len } else { 0 };
            let span = start..start + len;
            let widen = |dst: &mut [i64], src: &[u32]| {
                dst.iter_mut()
                    .zip(src)
                    .for_each(|(d, &s)| *d = i64::from(s));
            };
            widen(&mut ids[span.clone()], encoding.get_ids());
            widen(&mut mask[span.clone()], encoding.get_attention_mask());
            widen(&mut types[span], encoding.get_type_ids());
        }
        let shape = (rows, width);
        // The vectors hold exactly rows * width elements, so the shapes always match.
        let array = |v: Vec<i64>| Array2::from_shape_vec(shape, v).expect("rows * width elements");
        (array(ids), array(mask), array(types))
    }
}

/// `prompt + text`, without allocating when there is no prompt.
fn with_prompt<'a>(prompt: Option<&str>, text: &'a str) -> Cow<'a, str> {
    match prompt {
        Some(p) => Cow::Owned([p, text].concat()),
        None => Cow::Borrowed(text),
    }
}
