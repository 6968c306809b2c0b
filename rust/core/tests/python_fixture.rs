//! A static model saved by the Python package embeds identically in Rust.
//!
//! `fixtures/python_static` was written by `tests/fixtures/make_python_static_fixture.py`
//! (embedforge's `SentenceTransformer.save`), and its `expected.json` holds the embeddings that
//! sentence-transformers computes for the same folder.

use std::path::PathBuf;

use embedforge::StaticModel;

#[test]
fn python_saved_static_model_embeds_like_sentence_transformers() {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_static");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("expected.json")).unwrap())
            .unwrap();
    let texts: Vec<String> = expected["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let rows = expected["embeddings"].as_array().unwrap();

    let model = StaticModel::load(&folder).unwrap();
    assert!(
        model.normalize(),
        "the folder's Normalize module must switch normalisation on"
    );
    let embeddings = model.embed(&texts).unwrap();
    assert_eq!(embeddings.nrows(), texts.len());
    for (row, expected_row) in rows.iter().enumerate() {
        let expected_row = expected_row.as_array().unwrap();
        assert_eq!(embeddings.ncols(), expected_row.len());
        for (column, value) in expected_row.iter().enumerate() {
            let want = value.as_f64().unwrap() as f32;
            let got = embeddings[[row, column]];
            assert!(
                (got - want).abs() <= 1e-6,
                "text {row} ({:?}), dim {column}: rust {got} vs sentence-transformers {want}",
                texts[row]
            );
        }
    }
}
