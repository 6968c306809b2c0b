//! Start-up errors: each names the flag, the file and what was expected.

use embedforge::ndarray::Array2;
use embedforge_serve::corpus::Corpus;
use embedforge_serve::model::ServedModel;

use crate::common::*;

fn assert_message(error: impl std::fmt::Display, fragments: &[&str]) {
    let message = error.to_string();
    for fragment in fragments {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
}

#[test]
fn models_with_other_modules_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let modules = r#"[
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.models.Dense"}
    ]"#;
    std::fs::write(dir.path().join("modules.json"), modules).unwrap();
    let error = ServedModel::load(dir.path()).unwrap_err();
    assert_message(
        error,
        &[
            "--model",
            "sentence_transformers.models.Dense",
            "expected a StaticEmbedding module followed only by",
        ],
    );
}

#[test]
fn missing_model_and_unknown_default_prompt_are_refused() {
    let error = ServedModel::load("/nonexistent/model").unwrap_err();
    assert_message(error, &["--model /nonexistent/model", "not found"]);

    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    std::fs::write(
        dir.path().join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "q: "}, "default_prompt_name": "passage"}"#,
    )
    .unwrap();
    let error = ServedModel::load(dir.path()).unwrap_err();
    assert_message(error, &["default_prompt_name is \"passage\"", "[query]"]);
}

#[test]
fn bad_corpus_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model();
    let text = dir.path().join("corpus.txt");
    std::fs::write(&text, "").unwrap();
    assert_message(
        Corpus::from_text_file(&text, &model).unwrap_err(),
        &["--corpus", "empty"],
    );
    std::fs::write(&text, b"fine\n\xff bad\n").unwrap();
    assert_message(
        Corpus::from_text_file(&text, &model).unwrap_err(),
        &["--corpus", "line 1", "UTF-8"],
    );
    let missing = dir.path().join("missing.txt");
    assert_message(
        Corpus::from_text_file(&missing, &model).unwrap_err(),
        &["--corpus", "missing.txt", "cannot read"],
    );

    let npy = dir.path().join("e.npy");
    let ids = dir.path().join("ids.txt");
    write_npy(&npy, &Array2::ones((3, 8)), 1);
    std::fs::write(&ids, "a\nb\n").unwrap();
    assert_message(
        Corpus::from_npy(&npy, &ids, 8).unwrap_err(),
        &["--ids", "got 2 ids, expected 3"],
    );
    std::fs::write(&ids, "a\nb\na\n").unwrap();
    assert_message(
        Corpus::from_npy(&npy, &ids, 8).unwrap_err(),
        &["--ids", "\"a\" on line 2", "repeats line 0"],
    );
    std::fs::write(&ids, "a\n\nc\n").unwrap();
    assert_message(
        Corpus::from_npy(&npy, &ids, 8).unwrap_err(),
        &["--ids", "line 1", "empty"],
    );
    std::fs::write(&ids, "a\nb\nc\n").unwrap();
    assert_message(
        Corpus::from_npy(&npy, &ids, 16).unwrap_err(),
        &["--embeddings", "8 wide, expected 16"],
    );
    assert!(Corpus::from_npy(&npy, &ids, 8).is_ok());

    let mut with_nan = Array2::<f32>::ones((3, 8));
    with_nan[[2, 4]] = f32::NAN;
    write_npy(&npy, &with_nan, 1);
    assert_message(
        Corpus::from_npy(&npy, &ids, 8).unwrap_err(),
        &["--embeddings", "row 2", "NaN"],
    );

    // float64 data: numpy's default dtype, an easy mistake.
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 8), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let padded = format!("{header:<117}\n");
    bytes.extend(u16::try_from(padded.len()).unwrap().to_le_bytes());
    bytes.extend(padded.as_bytes());
    bytes.extend(vec![0u8; 3 * 8 * 8]);
    std::fs::write(&npy, bytes).unwrap();
    assert_message(
        Corpus::from_npy(&npy, &ids, 8).unwrap_err(),
        &["--embeddings", "\"<f8\"", "not '<f4' (float32)"],
    );
    std::fs::write(&npy, b"not an npy file").unwrap();
    assert_message(
        Corpus::from_npy(&npy, &ids, 8).unwrap_err(),
        &["--embeddings", "magic string", "float32 C-order .npy"],
    );
}

#[test]
fn a_model2vec_folder_loads() {
    // model2vec's layout: weights, tokenizer and config.json, no modules.json.
    let dir = tempfile::tempdir().unwrap();
    for name in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_dir().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "model2vec", "normalize": true}"#,
    )
    .unwrap();
    let model = ServedModel::load(dir.path()).unwrap();
    assert!(model.normalizes());
    let (texts, want) = expected();
    assert_close(&model.embed(&texts, false).unwrap(), &want, 1e-5);
}
