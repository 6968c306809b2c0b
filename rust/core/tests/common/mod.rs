//! Fixtures shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Vocabulary of the tiny BERT-style test tokenizer, in id order.
pub const VOCAB: [&str; 19] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "cat", "sat", "on",
    "mat", "##s", "a", "!", "query", ":", "日", "本",
];

/// A BERT-style WordPiece `tokenizer.json` over [`VOCAB`] (lowercasing, `[CLS] A [SEP] B [SEP]`).
/// `truncation` and `padding` are inserted verbatim as the JSON sections of those names.
pub fn tokenizer_json_with(truncation: &str, padding: &str) -> String {
    let vocab: Vec<String> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| format!("\"{t}\": {i}"))
        .collect();
    let added: Vec<String> = VOCAB[..5]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                r#"{{"id": {i}, "content": "{t}", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}}"#
            )
        })
        .collect();
    format!(
        r###"{{
  "version": "1.0",
  "truncation": {truncation},
  "padding": {padding},
  "added_tokens": [{added}],
  "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}},
  "pre_tokenizer": {{"type": "BertPreTokenizer"}},
  "post_processor": {{
    "type": "TemplateProcessing",
    "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
    "pair": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}, {{"Sequence": {{"id": "B", "type_id": 1}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 1}}}}],
    "special_tokens": {{"[CLS]": {{"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}}, "[SEP]": {{"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}}}
  }},
  "decoder": {{"type": "WordPiece", "prefix": "##", "cleanup": true}},
  "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {{{vocab}}}}}
}}"###,
        added = added.join(", "),
        vocab = vocab.join(", "),
    )
}

/// [`tokenizer_json_with`] without truncation or padding sections.
pub fn tokenizer_json() -> String {
    tokenizer_json_with("null", "null")
}

/// `/work/shared/data` seen from this crate, if present on this machine.
pub fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    dir.is_dir().then_some(dir)
}
