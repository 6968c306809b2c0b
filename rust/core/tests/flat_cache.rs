//! `encode_flat`'s fast path (word cache, ASCII BERT tier) against the reference path, which
//! builds a full `tokenizers::Encoding` per text: same ids, same offsets, for many tokenizers,
//! texts, truncations and prompts, cold and warm.

mod common;

use embedforge::{BatchTokenizer, FlatBatch};
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::{BertNormalizer, Lowercase, Sequence, NFD, NFKC};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::Metaspace;
use tokenizers::{AddedToken, NormalizerWrapper, PreTokenizerWrapper, Tokenizer};

/// Texts that stress normalisation, pre-tokenisation, added tokens and long inputs.
fn tricky_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        " ",
        "   \t\n\r  ",
        "Hello world",
        "hello [SEP] world",
        "[MASK]",
        "[mask] is lowercase, [MASK] is not",
        "x[SEP]y[CLS]z[PAD]",
        "[SEP][SEP] [SE [SEP",
        "[UNK] and an unknown wordxyzzy",
        "Héllo wörld, naïve café, Ångström, façade",
        "ÉCOLE ÉLÉMENTAIRE",
        "日本語のテキストです。中文字符也是。",
        "한국어 문장입니다",
        "emoji 👍🏽 ok 🎉🎉 family 👨‍👩‍👧",
        "مرحبا بالعالم! שלום עולם",
        "control a\u{0}b\u{7}c\u{fffd}d\u{200b}e\u{7f}f",
        "vertical\u{b}tab\u{c}formfeed\u{1c}fs",
        "non\u{a0}breaking\u{3000}ideographic\u{2028}line",
        "punctuation!!! ...??? (a) [b] {c} <d> \"e\" 'f' `g` ~h~ ^i^ |j| \\k\\ /l/ @m #n $o %p &q *r +s =t _u_ -v-",
        "unicode punctuation « guillemets » – dash — ‘quotes’ “double” … ellipsis ¿qué? ¡sí!",
        "numbers 3.14159 1,000,000 2024-01-01 10:30pm",
        "The the THE tHe the the the the the the",
        "a",
        "!",
        "ﬁne ligature ² superscript ℌ fraktur",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    // Every ASCII byte, control characters included.
    texts.push((0u8..128).map(char::from).collect());
    // Long texts: many repeated words, one huge word, a long non-ASCII text.
    texts.push("the quick brown fox jumps over the lazy dog. ".repeat(115));
    texts.push("x".repeat(5000));
    texts.push("日本語と English が混ざった文章。".repeat(60));
    texts.push("word ".repeat(200) + "[SEP] end");
    texts
}

/// STS-B sentences when the shared data is on this machine, else a small built-in corpus.
fn corpus(limit: usize) -> Vec<String> {
    if let Some(dir) = common::shared_data() {
        if let Ok(sts) = std::fs::read_to_string(dir.join("stsb/sts-train.csv")) {
            return sts
                .lines()
                .flat_map(|line| line.split('\t').skip(5).take(2))
                .take(limit)
                .map(str::to_owned)
                .collect();
        }
    }
    let base = "A man is playing a guitar. A woman is slicing an onion! Two dogs run across \
                the field; the children laugh. Is it raining in Zürich? The stock fell 3.5% \
                on Tuesday, analysts said. She didn't know what to do (again).";
    base.split_inclusive(['.', '!', '?', ';'])
        .cycle()
        .take(limit)
        .enumerate()
        .map(|(i, s)| format!("{s} {}", i % 7))
        .collect()
}

/// Asserts that the fast path equals the reference on `texts`, cold then warm, and one text
/// at a time for the tricky ones (each its own batch, so offsets start afresh).
fn assert_same(
    tokenizer: &BatchTokenizer,
    texts: &[String],
    max_length: Option<usize>,
    prompt: Option<&str>,
) {
    let reference = tokenizer
        .encode_flat_reference(texts, max_length, prompt)
        .expect("reference");
    for round in ["cold", "warm"] {
        let fast = tokenizer
            .encode_flat(texts, max_length, prompt)
            .expect("fast");
        assert_batches_eq(
            &fast,
            &reference,
            texts,
            &format!("{round}, max_length {max_length:?}, prompt {prompt:?}"),
        );
    }
}

/// [`assert_same`] on each text alone.
fn assert_same_one_by_one(tokenizer: &BatchTokenizer, texts: &[String], max_length: Option<usize>) {
    for text in texts {
        let one = std::slice::from_ref(text);
        assert_eq!(
            tokenizer.encode_flat(one, max_length, None).unwrap(),
            tokenizer
                .encode_flat_reference(one, max_length, None)
                .unwrap(),
            "single text {text:?}, max_length {max_length:?}"
        );
    }
}

/// Like `assert_eq!` on two batches, but names the first text that differs.
fn assert_batches_eq(fast: &FlatBatch, reference: &FlatBatch, texts: &[String], context: &str) {
    if fast == reference {
        return;
    }
    assert_eq!(
        fast.offsets.len(),
        reference.offsets.len(),
        "{context}: offsets length"
    );
    let row = |b: &FlatBatch, i: usize| {
        let start = b.offsets[i] as usize;
        let end = b.offsets.get(i + 1).map_or(b.ids.len(), |&e| e as usize);
        b.ids[start..end].to_vec()
    };
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(
            row(fast, i),
            row(reference, i),
            "{context}: text {i} {text:?}"
        );
    }
    assert_eq!(fast, reference, "{context}");
}

/// Runs [`assert_same`] on the corpus and the tricky texts with a spread of truncations and
/// prompts.
fn check_tokenizer(tokenizer: &BatchTokenizer, corpus_size: usize) {
    let mut texts = corpus(corpus_size);
    texts.extend(tricky_texts());
    for max_length in [None, Some(1), Some(16)] {
        assert_same(tokenizer, &texts, max_length, None);
    }
    for prompt in ["query: ", "[SEP] Ünïcode prompt: "] {
        assert_same(tokenizer, &texts, Some(5), Some(prompt));
    }
    assert_same(tokenizer, &texts, None, Some(""));
    assert_same_one_by_one(tokenizer, &tricky_texts(), None);
}

/// A JSON tokenizer built with the `tokenizers` API, round-tripped through `tokenizer.json`.
fn batch_tokenizer(tokenizer: &Tokenizer) -> BatchTokenizer {
    BatchTokenizer::from_json(&tokenizer.to_string(false).unwrap()).unwrap()
}

/// Special tokens every trained tokenizer below knows.
fn specials() -> Vec<AddedToken> {
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|t| AddedToken::from(*t, true))
        .collect()
}

/// Trains `trainer` on the corpus (and the tricky texts, so that their characters are known).
fn train(mut tokenizer: Tokenizer, mut trainer: TrainerWrapper) -> Tokenizer {
    let mut texts = corpus(1500);
    texts.extend(tricky_texts());
    tokenizer
        .train(&mut trainer, texts.iter())
        .expect("training");
    tokenizer
}

#[test]
fn shared_bert_base_uncased() {
    let Some(dir) = common::shared_data() else {
        eprintln!("skipping: ../shared/data is not on this machine");
        return;
    };
    let tokenizer =
        BatchTokenizer::from_file(dir.join("tokenizers/bert-base-uncased.json")).unwrap();
    check_tokenizer(&tokenizer, 1000);
    assert!(
        tokenizer.flat_cache_len() > 0,
        "the fast path memoised words"
    );
}

#[test]
fn shared_model2vec_fixture() {
    let Some(dir) = common::shared_data() else {
        eprintln!("skipping: ../shared/data is not on this machine");
        return;
    };
    let tokenizer =
        BatchTokenizer::from_file(dir.join("model2vec-fixture/tokenizer.json")).unwrap();
    check_tokenizer(&tokenizer, 1000);
}

#[test]
fn tiny_wordpiece_with_specials_in_text() {
    let tokenizer = BatchTokenizer::from_json(&common::tokenizer_json()).unwrap();
    check_tokenizer(&tokenizer, 200);
    // Hand-checked: added tokens keep their ids wherever they appear, unknown words are [UNK].
    let flat = tokenizer
        .encode_flat(&["hello [SEP] world", "[MASK]", "Cats sat!x"], None, None)
        .unwrap();
    assert_eq!(flat.ids, [5, 3, 6, 4, 8, 12, 9, 14, 1]);
    assert_eq!(flat.offsets, [0, 3, 4]);
}

#[test]
fn tokenizer_json_truncation_fast_and_fallback() {
    // Right: the fast path keeps the first ids. Left and only_second: the reference path.
    for (direction, strategy) in [
        ("Right", "LongestFirst"),
        ("Right", "OnlyFirst"),
        ("Left", "LongestFirst"),
        ("Right", "OnlySecond"),
    ] {
        let truncation = format!(
            r#"{{"direction": "{direction}", "max_length": 3, "strategy": "{strategy}", "stride": 1}}"#
        );
        let tokenizer =
            BatchTokenizer::from_json(&common::tokenizer_json_with(&truncation, "null")).unwrap();
        let texts = ["the cat sat on the mat", "hello", "", "a b c d e f"];
        let fast = tokenizer.encode_flat(&texts, None, None);
        let reference = tokenizer.encode_flat_reference(&texts, None, None);
        match (fast, reference) {
            (Ok(f), Ok(r)) => assert_eq!(f, r, "{direction} {strategy}"),
            (Err(f), Err(r)) => assert_eq!(f.to_string(), r.to_string()),
            (f, r) => panic!("{direction} {strategy}: fast {f:?} vs reference {r:?}"),
        }
    }
}

#[test]
fn bert_normalizer_variants_and_other_normalizers() {
    let base = common::tokenizer_json();
    let normalizers = [
        r#"{"type": "BertNormalizer", "clean_text": false, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}"#,
        r#"{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": false, "strip_accents": false, "lowercase": false}"#,
        r#"{"type": "BertNormalizer", "clean_text": false, "handle_chinese_chars": false, "strip_accents": true, "lowercase": false}"#,
        r#"null"#,
        r#"{"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}]}"#,
    ];
    let original = r#"{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}"#;
    assert!(base.contains(original));
    for normalizer in normalizers {
        let tokenizer = BatchTokenizer::from_json(&base.replace(original, normalizer)).unwrap();
        check_tokenizer(&tokenizer, 100);
    }
}

#[test]
fn trained_wordpiece_with_normalized_and_stripped_added_tokens() {
    let mut tokenizer = Tokenizer::new(WordPiece::default());
    tokenizer
        .with_normalizer(Some(BertNormalizer::default()))
        .with_pre_tokenizer(Some(BertPreTokenizer));
    let trainer = WordPieceTrainer::builder()
        .vocab_size(600)
        .special_tokens(specials())
        .show_progress(false)
        .build();
    let mut tokenizer = train(tokenizer, TrainerWrapper::WordPieceTrainer(trainer));
    tokenizer.add_tokens(&[
        // Matched on the normalised text ("Guitar" lowercases into it).
        AddedToken::from("guitar", false).normalized(true),
        AddedToken::from("<ent>", false)
            .normalized(false)
            .lstrip(true)
            .rstrip(true),
        AddedToken::from("dog", false)
            .normalized(true)
            .single_word(true),
        AddedToken::from("New York", false).normalized(false),
    ]);
    let tokenizer = batch_tokenizer(&tokenizer);
    check_tokenizer(&tokenizer, 400);
    let texts: Vec<String> = [
        "A GUITAR, a guitar and guitars",
        "hot dog, hotdog, dogs, dog!",
        "x <ent> y  <ent>z<ent>",
        "I love New York and new york",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    assert_same(&tokenizer, &texts, None, None);
}

#[test]
fn trained_byte_level_bpe() {
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::default()));
    let trainer = BpeTrainer::builder()
        .vocab_size(800)
        .special_tokens(specials())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build();
    let tokenizer = train(tokenizer, TrainerWrapper::BpeTrainer(trainer));
    check_tokenizer(&batch_tokenizer(&tokenizer), 400);
}

#[test]
fn trained_bpe_with_bert_pre_tokenizer_and_no_unknown_token() {
    // Characters outside the trained alphabet are dropped by BPE without an unknown token:
    // the ASCII tier must reproduce that too.
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer
        .with_normalizer(Some(NormalizerWrapper::from(Sequence::new(vec![
            NFKC.into(),
            Lowercase.into(),
        ]))))
        .with_pre_tokenizer(Some(BertPreTokenizer));
    let trainer = BpeTrainer::builder()
        .vocab_size(300)
        .show_progress(false)
        .build();
    let texts = corpus(300);
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    tokenizer.train(&mut trainer, texts.iter()).unwrap();
    check_tokenizer(&batch_tokenizer(&tokenizer), 300);
    // Same model, no normaliser: the ASCII tier with both rules off.
    tokenizer.with_normalizer(None::<NormalizerWrapper>);
    check_tokenizer(&batch_tokenizer(&tokenizer), 300);
}

#[test]
fn trained_unigram_with_metaspace() {
    let mut tokenizer = Tokenizer::new(Unigram::default());
    tokenizer
        .with_normalizer(Some(NFD))
        .with_pre_tokenizer(Some(PreTokenizerWrapper::from(Metaspace::default())));
    let trainer = UnigramTrainer::builder()
        .vocab_size(400)
        .special_tokens(specials())
        .unk_token(Some("[UNK]".into()))
        .show_progress(false)
        .build()
        .unwrap();
    let tokenizer = train(tokenizer, TrainerWrapper::UnigramTrainer(trainer));
    check_tokenizer(&batch_tokenizer(&tokenizer), 300);
}

#[test]
fn whitespace_pre_tokenizer_takes_the_library_tier() {
    let json = common::tokenizer_json().replace(
        r#""pre_tokenizer": {"type": "BertPreTokenizer"}"#,
        r#""pre_tokenizer": {"type": "Whitespace"}"#,
    );
    let tokenizer = BatchTokenizer::from_json(&json).unwrap();
    check_tokenizer(&tokenizer, 100);
}

#[test]
fn bpe_dropout_is_never_cached() {
    // Dropout 1.0 skips every merge, so the output is deterministic and comparable; the
    // fast path must still leave it to the reference (nothing memoised).
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::default()));
    let trainer = BpeTrainer::builder()
        .vocab_size(400)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build();
    let tokenizer = train(tokenizer, TrainerWrapper::BpeTrainer(trainer));
    let json = tokenizer.to_string(false).unwrap();
    let with_dropout = json.replacen(r#""dropout":null"#, r#""dropout":1.0"#, 1);
    assert_ne!(json, with_dropout, "the model section has a dropout field");
    let tokenizer = BatchTokenizer::from_json(&with_dropout).unwrap();
    let mut texts = corpus(100);
    texts.extend(tricky_texts());
    assert_same(&tokenizer, &texts, None, None);
    assert_eq!(tokenizer.flat_cache_len(), 0);
}

#[test]
fn model_errors_are_not_hidden_by_truncation() {
    // A WordPiece vocabulary without its unknown token fails on unknown words, even past the
    // truncation point: the fast path must not stop early and succeed where the reference fails.
    let json =
        common::tokenizer_json().replace(r#""unk_token": "[UNK]""#, r#""unk_token": "[NOPE]""#);
    let tokenizer = BatchTokenizer::from_json(&json).unwrap();
    for texts in [
        vec!["hello world qwerty"],
        vec!["hello world"],
        vec!["qwerty"],
    ] {
        for max_length in [None, Some(1)] {
            let fast = tokenizer.encode_flat(&texts, max_length, None);
            let reference = tokenizer.encode_flat_reference(&texts, max_length, None);
            match (fast, reference) {
                (Ok(f), Ok(r)) => assert_eq!(f, r),
                (Err(f), Err(r)) => assert_eq!(f.to_string(), r.to_string()),
                (f, r) => panic!("{texts:?} {max_length:?}: fast {f:?} vs reference {r:?}"),
            }
        }
    }
}

#[test]
fn clones_and_threads_share_a_consistent_cache() {
    let tokenizer = BatchTokenizer::from_json(&common::tokenizer_json()).unwrap();
    let mut texts = corpus(300);
    texts.extend(tricky_texts());
    let reference = tokenizer.encode_flat_reference(&texts, None, None).unwrap();
    let clone = tokenizer.clone();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (t, texts) = (if i % 2 == 0 { &tokenizer } else { &clone }, &texts);
                scope.spawn(move || t.encode_flat(texts, None, None).unwrap())
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), reference);
        }
    });
    assert_eq!(clone.flat_cache_len(), tokenizer.flat_cache_len());
}
