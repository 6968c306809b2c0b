//! Batch tokenisation: padded and flat encodings against hand-computed ids.

mod common;

use common::{shared_data, tokenizer_json, tokenizer_json_with};
use embedforge::ndarray::{array, Array2};
use embedforge::{length_order, BatchTokenizer, Error, PaddedOptions, Padding};

fn tokenizer() -> BatchTokenizer {
    BatchTokenizer::from_json(&tokenizer_json()).unwrap()
}

fn opts(max_length: Option<usize>) -> PaddedOptions<'static> {
    PaddedOptions {
        max_length,
        ..PaddedOptions::default()
    }
}

#[test]
fn padded_batch_pads_to_longest_on_the_right() {
    let batch = tokenizer()
        .encode_padded(
            &["Hello world", "", "The cat sat on the mat"],
            None,
            &opts(None),
        )
        .unwrap();
    let expected: Array2<i64> = array![
        [2, 5, 6, 3, 0, 0, 0, 0],
        [2, 3, 0, 0, 0, 0, 0, 0],
        [2, 7, 8, 9, 10, 7, 11, 3]
    ];
    assert_eq!(batch.input_ids, expected);
    assert_eq!(
        batch.attention_mask,
        array![
            [1, 1, 1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1]
        ]
    );
    assert_eq!(batch.token_type_ids, Array2::<i64>::zeros((3, 8)));
    assert_eq!(batch.prompt_length, None);
}

#[test]
fn whitespace_unknown_words_subwords_and_cjk() {
    let batch = tokenizer()
        .encode_padded(&["  \t\n ", "zebra cats!", "日本"], None, &opts(None))
        .unwrap();
    // "zebra" is unknown, "cats" splits into cat ##s, each CJK character is a word.
    assert_eq!(
        batch.input_ids,
        array![
            [2, 3, 0, 0, 0, 0],
            [2, 1, 8, 12, 14, 3],
            [2, 17, 18, 3, 0, 0]
        ]
    );
}

#[test]
fn truncation_keeps_special_tokens() {
    let long = "the cat sat on the mat ".repeat(500);
    let batch = tokenizer()
        .encode_padded(&[long.as_str(), "hello"], None, &opts(Some(4)))
        .unwrap();
    assert_eq!(batch.input_ids, array![[2, 7, 8, 3], [2, 5, 3, 0]]);
    assert_eq!(batch.attention_mask, array![[1, 1, 1, 1], [1, 1, 1, 0]]);
}

#[test]
fn pairs_get_type_ids_and_longest_first_truncation() {
    let t = tokenizer();
    let batch = t
        .encode_padded(&["hello world"], Some(&["the cat"]), &opts(None))
        .unwrap();
    assert_eq!(batch.input_ids, array![[2, 5, 6, 3, 7, 8, 3]]);
    assert_eq!(batch.token_type_ids, array![[0, 0, 0, 0, 1, 1, 1]]);

    // 6 + 2 tokens into a budget of 6 - 3 specials = 3: both halves shrink, the longer keeps more.
    let batch = t
        .encode_padded(
            &["the cat sat on the mat"],
            Some(&["hello world"]),
            &opts(Some(6)),
        )
        .unwrap();
    assert_eq!(batch.input_ids, array![[2, 7, 8, 3, 5, 3]]);
    assert_eq!(batch.token_type_ids, array![[0, 0, 0, 0, 1, 1]]);

    // Only the longer side is cut when the shorter one fits in half the budget.
    let batch = t
        .encode_padded(
            &["hello"],
            Some(&["the cat sat on the mat"]),
            &opts(Some(7)),
        )
        .unwrap();
    assert_eq!(batch.input_ids, array![[2, 5, 3, 7, 8, 9, 3]]);
}

#[test]
fn left_padding_and_custom_pad_ids() {
    let mut t = tokenizer();
    t.set_padding(Padding {
        pad_id: 4,
        pad_type_id: 1,
        left: true,
    });
    let batch = t
        .encode_padded(&["hello world", ""], None, &opts(None))
        .unwrap();
    assert_eq!(batch.input_ids, array![[2, 5, 6, 3], [4, 4, 2, 3]]);
    assert_eq!(batch.attention_mask, array![[1, 1, 1, 1], [0, 0, 1, 1]]);
    assert_eq!(batch.token_type_ids, array![[0, 0, 0, 0], [1, 1, 0, 0]]);
}

#[test]
fn without_special_tokens() {
    let options = PaddedOptions {
        max_length: Some(2),
        add_special_tokens: false,
        ..PaddedOptions::default()
    };
    let batch = tokenizer()
        .encode_padded(&["the cat sat", "", "hello"], None, &options)
        .unwrap();
    assert_eq!(batch.input_ids, array![[7, 8], [0, 0], [5, 0]]);
    assert_eq!(batch.attention_mask, array![[1, 1], [0, 0], [1, 0]]);
}

#[test]
fn prompt_is_prepended_and_measured() {
    let t = tokenizer();
    let options = PaddedOptions {
        prompt: Some("query: "),
        ..PaddedOptions::default()
    };
    let batch = t
        .encode_padded(&["hello", "the cat"], None, &options)
        .unwrap();
    assert_eq!(
        batch.input_ids,
        array![[2, 15, 16, 5, 3, 0], [2, 15, 16, 7, 8, 3]]
    );
    // [CLS] query : [SEP] is 4 tokens; the trailing [SEP] does not count.
    assert_eq!(batch.prompt_length, Some(3));
    assert_eq!(t.prompt_length("query: ", None).unwrap(), 3);
    // Truncated like the texts: [CLS] query [SEP].
    assert_eq!(t.prompt_length("query: ", Some(3)).unwrap(), 2);
}

#[test]
fn flat_batch_matches_cumulative_offsets() {
    let t = tokenizer();
    let flat = t
        .encode_flat(&["Hello world", "", "the cat", "  "], None, None)
        .unwrap();
    assert_eq!(flat.ids, [5, 6, 7, 8]);
    assert_eq!(flat.offsets, [0, 2, 2, 4]);

    let flat = t
        .encode_flat(&["hello world", "the cat"], Some(1), None)
        .unwrap();
    assert_eq!(flat.ids, [5, 7]);
    assert_eq!(flat.offsets, [0, 1]);

    let flat = t.encode_flat(&["hello"], None, Some("query: ")).unwrap();
    assert_eq!(flat.ids, [15, 16, 5]);

    let empty = t.encode_flat::<&str>(&[], None, None).unwrap();
    assert!(empty.ids.is_empty() && empty.offsets.is_empty());
}

#[test]
fn tokenizer_json_truncation_applies_without_max_length() {
    let json = tokenizer_json_with(
        r#"{"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0}"#,
        "null",
    );
    let t = BatchTokenizer::from_json(&json).unwrap();
    let batch = t
        .encode_padded(&["the cat sat on"], None, &opts(None))
        .unwrap();
    assert_eq!(batch.input_ids, array![[2, 7, 8, 3]]);
    // An explicit max_length wins.
    let batch = t
        .encode_padded(&["the cat sat on"], None, &opts(Some(5)))
        .unwrap();
    assert_eq!(batch.input_ids, array![[2, 7, 8, 9, 3]]);
    // Flat encoding has no special tokens, so all four positions hold text.
    assert_eq!(
        t.encode_flat(&["the cat sat on the mat"], None, None)
            .unwrap()
            .ids,
        [7, 8, 9, 10]
    );
    // encode_ids never truncates.
    assert_eq!(
        t.encode_ids("the cat sat on", false).unwrap(),
        [7, 8, 9, 10]
    );
}

#[test]
fn padding_defaults() {
    let json = tokenizer_json_with(
        "null",
        r#"{"strategy": "BatchLongest", "direction": "Left", "pad_to_multiple_of": null, "pad_id": 4, "pad_type_id": 1, "pad_token": "[MASK]"}"#,
    );
    let t = BatchTokenizer::from_json(&json).unwrap();
    assert_eq!(
        t.padding(),
        Padding {
            pad_id: 4,
            pad_type_id: 1,
            left: true
        }
    );
    assert_eq!(
        tokenizer().padding(),
        Padding {
            pad_id: 0,
            pad_type_id: 0,
            left: false
        }
    );
    // Without [PAD], "<pad>" then "<|endoftext|>" are tried, else id 0.
    let renamed = |mask_as: &str| {
        let json = tokenizer_json()
            .replace("\"[PAD]\"", "\"<s>\"")
            .replace("\"[MASK]\"", &format!("\"{mask_as}\""));
        BatchTokenizer::from_json(&json).unwrap().padding().pad_id
    };
    assert_eq!(renamed("<pad>"), 4);
    assert_eq!(renamed("<|endoftext|>"), 4);
    assert_eq!(renamed("<mask>"), 0);
}

#[test]
fn serialises_back_with_its_sections() {
    let json = tokenizer_json_with(
        r#"{"direction": "Left", "max_length": 3, "strategy": "LongestFirst", "stride": 0}"#,
        "null",
    );
    let t = BatchTokenizer::from_json(&json).unwrap();
    let again = BatchTokenizer::from_json(&t.to_json(false).unwrap()).unwrap();
    assert_eq!(again.default_truncation().map(|p| p.max_length), Some(3));
    let texts = ["hello world the cat", "a"];
    assert_eq!(
        t.encode_padded(&texts, None, &opts(None)).unwrap(),
        again.encode_padded(&texts, None, &opts(None)).unwrap()
    );
    // Left truncation keeps the end of the text.
    assert_eq!(
        again
            .encode_padded(&["hello world the cat"], None, &opts(None))
            .unwrap()
            .input_ids,
        array![[2, 8, 3]]
    );
    let pretty = t.to_json(true).unwrap();
    assert!(pretty.starts_with("{\n  \"version\""), "{}", &pretty[..40]);
}

#[test]
fn vocabulary_accessors() {
    let t = tokenizer();
    assert_eq!(t.vocab_size(), 19);
    assert_eq!(t.vocab(), common::VOCAB);
    assert_eq!(t.id_to_token(5).as_deref(), Some("hello"));
    assert_eq!(t.id_to_token(99), None);
    assert_eq!(t.token_to_id("[SEP]"), Some(3));
    assert_eq!(t.token_to_id("nope"), None);
    assert_eq!(t.num_special_tokens(false), 2);
    assert_eq!(t.num_special_tokens(true), 3);
    assert_eq!(t.encode_ids("Hello!", true).unwrap(), [2, 5, 14, 3]);
}

#[test]
fn bad_arguments_are_reported() {
    let t = tokenizer();
    let err = t.encode_padded(&["a"], None, &opts(Some(1))).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { ref name, .. } if name == "max_length"),
        "{err}"
    );
    assert!(
        err.to_string().contains("got 1, expected at least 2"),
        "{err}"
    );
    let err = t
        .encode_padded(&["a"], Some(&["b"]), &opts(Some(2)))
        .unwrap_err();
    assert!(err.to_string().contains("at least 3"), "{err}");
    let err = t
        .encode_padded(&["a", "b"], Some(&["c"]), &opts(None))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { ref name, .. } if name == "pairs"),
        "{err}"
    );
    let err = t.encode_flat(&["a"], Some(0), None).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");

    let err = BatchTokenizer::from_json("{not json").unwrap_err();
    assert!(matches!(err, Error::Tokenizer(_)), "{err}");
    let err = BatchTokenizer::from_file("/definitely/not/here/tokenizer.json").unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn length_order_is_longest_first() {
    assert_eq!(length_order(&["bb", "a", "ccc", "dd"]), [2, 0, 3, 1]);
}

#[test]
fn bert_base_uncased_from_shared_data() {
    let Some(data) = shared_data() else {
        eprintln!("skipping: ../shared/data is not on this machine");
        return;
    };
    let t = BatchTokenizer::from_file(data.join("tokenizers/bert-base-uncased.json")).unwrap();
    assert_eq!(t.vocab_size(), 30522);
    let batch = t
        .encode_padded(&["Hello world!", ""], None, &opts(Some(16)))
        .unwrap();
    assert_eq!(
        batch.input_ids,
        array![[101, 7592, 2088, 999, 102], [101, 102, 0, 0, 0]]
    );
}

#[test]
fn token_counts_match_the_padded_rows() {
    let tokenizer = tokenizer();
    let texts = ["Hello world", "", "The cat sat on the mat", "zebra cats!"];
    for options in [
        opts(None),
        opts(Some(4)),
        PaddedOptions {
            prompt: Some("the cat "),
            ..PaddedOptions::default()
        },
        PaddedOptions {
            add_special_tokens: false,
            ..PaddedOptions::default()
        },
    ] {
        let counts = tokenizer.token_counts(&texts, &options).unwrap();
        let padded = tokenizer.encode_padded(&texts, None, &options).unwrap();
        let real: Vec<usize> = padded
            .attention_mask
            .rows()
            .into_iter()
            .map(|row| row.sum() as usize)
            .collect();
        assert_eq!(counts, real, "{options:?}");
    }
    // "Hello world" is [CLS] hello world [SEP]; the empty text keeps its two special tokens.
    assert_eq!(
        tokenizer
            .token_counts(&["Hello world", ""], &opts(None))
            .unwrap(),
        [4, 2]
    );
}
