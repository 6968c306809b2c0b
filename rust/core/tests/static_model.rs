//! Static embedding models: folder layouts, dtypes, folding, errors, and the shared fixture.

mod common;

use std::fs;
use std::path::Path;

use common::{shared_data, tokenizer_json, VOCAB};
use embedforge::ndarray::{array, Array2};
use embedforge::{embedding_bag_mean, BatchTokenizer, Error, StaticModel};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// One row per test-tokenizer token: row `i` is `[i, 1]`.
fn rows() -> Array2<f32> {
    Array2::from_shape_fn(
        (VOCAB.len(), 2),
        |(i, j)| if j == 0 { i as f32 } else { 1.0 },
    )
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes `model.safetensors` with the given `(name, dtype, shape, bytes)` tensors.
fn write_tensors(dir: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            (
                name.to_string(),
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
}

fn write_matrix(dir: &Path, name: &str, matrix: &Array2<f32>) {
    let (r, c) = matrix.dim();
    write_tensors(
        dir,
        &[(
            name,
            Dtype::F32,
            vec![r, c],
            f32_bytes(matrix.as_slice().unwrap()),
        )],
    );
}

/// A sentence-transformers folder: StaticEmbedding in `0_StaticEmbedding`, optionally Normalize.
fn st_folder(normalize: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("0_StaticEmbedding");
    fs::create_dir(&module).unwrap();
    fs::write(module.join("tokenizer.json"), tokenizer_json()).unwrap();
    write_matrix(&module, "embedding.weight", &rows());
    let mut modules = vec![
        r#"{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}"#,
    ];
    if normalize {
        modules.push(r#"{"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"}"#);
    }
    fs::write(
        dir.path().join("modules.json"),
        format!("[{}]", modules.join(",")),
    )
    .unwrap();
    dir
}

/// A model2vec folder: `embeddings` tensor, tokenizer and config at the root.
fn model2vec_folder(normalize: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("tokenizer.json"), tokenizer_json()).unwrap();
    write_matrix(dir.path(), "embeddings", &rows());
    fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"model_type": "model2vec", "normalize": {normalize}, "hidden_dim": 2}}"#),
    )
    .unwrap();
    dir
}

#[test]
fn sentence_transformers_folder_embeds_means() {
    let dir = st_folder(false);
    let model = StaticModel::load(dir.path()).unwrap();
    assert_eq!(model.dim(), 2);
    assert!(!model.normalize());
    // hello=5 world=6 -> mean 5.5; "" -> zero row; the cat = 7, 8 -> 7.5; "zebra" -> [UNK] = 1.
    let out = model
        .embed(&["Hello world", "", "the cat", "zebra"])
        .unwrap();
    assert_eq!(out, array![[5.5, 1.0], [0.0, 0.0], [7.5, 1.0], [1.0, 1.0]]);
}

#[test]
fn normalize_module_and_override() {
    let dir = st_folder(true);
    let model = StaticModel::load(dir.path()).unwrap();
    assert!(model.normalize());
    let out = model.embed(&["on", ""]).unwrap(); // on = 10 -> [10, 1]
    let norm = (101f32).sqrt();
    assert_eq!(out, array![[10.0 / norm, 1.0 / norm], [0.0, 0.0]]);
    let raw = model.embed_with(&["on"], Some(false)).unwrap();
    assert_eq!(raw, array![[10.0, 1.0]]);
}

#[test]
fn model2vec_folder_uses_config_normalize() {
    let model = StaticModel::load(model2vec_folder(true).path()).unwrap();
    assert!(model.normalize());
    let model = StaticModel::load(model2vec_folder(false).path()).unwrap();
    assert!(!model.normalize());
    assert_eq!(model.embed(&["sat mat"]).unwrap(), array![[10.0, 1.0]]);
}

#[test]
fn modules_json_with_root_path_and_missing_normalize_folder() {
    let dir = model2vec_folder(false);
    fs::write(
        dir.path().join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"},
            {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"}]"#,
    )
    .unwrap();
    let model = StaticModel::load(dir.path()).unwrap();
    assert!(model.normalize(), "modules.json decides over config.json");
}

#[test]
fn half_and_double_precision_weights_are_converted() {
    let values = rows();
    let (r, c) = values.dim();
    let cases: [(Dtype, Vec<u8>); 3] = [
        (
            Dtype::F16,
            values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        ),
        (
            Dtype::BF16,
            values
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
        ),
        (
            Dtype::F64,
            values
                .iter()
                .flat_map(|&v| f64::from(v).to_le_bytes())
                .collect(),
        ),
    ];
    for (dtype, bytes) in cases {
        let dir = model2vec_folder(false);
        write_tensors(dir.path(), &[("embeddings", dtype, vec![r, c], bytes)]);
        let model = StaticModel::load(dir.path()).unwrap();
        assert_eq!(model.weights(), values.view(), "{dtype:?}");
    }
}

#[test]
fn model2vec_mapping_and_weights_are_folded() {
    let dir = model2vec_folder(false);
    // Two stored rows; every token maps to row (id % 2) and is scaled by its id.
    let stored = array![[1.0f32, 0.0], [0.0, 1.0]];
    let mapping: Vec<u8> = (0..VOCAB.len() as i64)
        .flat_map(|i| (i % 2).to_le_bytes())
        .collect();
    let scales: Vec<f32> = (0..VOCAB.len()).map(|i| i as f32).collect();
    write_tensors(
        dir.path(),
        &[
            (
                "embeddings",
                Dtype::F32,
                vec![2, 2],
                f32_bytes(stored.as_slice().unwrap()),
            ),
            ("mapping", Dtype::I64, vec![VOCAB.len()], mapping),
            ("weights", Dtype::F32, vec![VOCAB.len()], f32_bytes(&scales)),
        ],
    );
    let model = StaticModel::load(dir.path()).unwrap();
    assert_eq!(model.weights().row(5).to_vec(), [0.0, 5.0]);
    assert_eq!(model.weights().row(6).to_vec(), [6.0, 0.0]);
}

fn load_err(dir: &Path) -> Error {
    StaticModel::load(dir).unwrap_err()
}

#[test]
fn missing_and_corrupt_files_are_reported() {
    let err = load_err(Path::new("/definitely/not/a/model"));
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    let dir = model2vec_folder(false);
    fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.is_not_found() && err.to_string().contains("tokenizer.json"),
        "{err}"
    );

    let dir = model2vec_folder(false);
    fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.is_not_found() && err.to_string().contains("model.safetensors"),
        "{err}"
    );

    let dir = model2vec_folder(false);
    fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(load_err(dir.path()).is_not_found());

    let dir = model2vec_folder(false);
    fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, Error::ModelFormat { .. }), "{err}");

    let dir = model2vec_folder(false);
    fs::write(dir.path().join("config.json"), "{oops").unwrap();
    let err = load_err(dir.path());
    assert!(
        matches!(err, Error::ModelFormat { .. }) && err.to_string().contains("invalid JSON"),
        "{err}"
    );

    let dir = model2vec_folder(false);
    fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
    assert!(matches!(load_err(dir.path()), Error::Tokenizer(_)));
}

#[test]
fn mismatched_weights_are_reported() {
    let dir = model2vec_folder(false);
    write_tensors(
        dir.path(),
        &[("embeddings", Dtype::F32, vec![4], f32_bytes(&[1.0; 4]))],
    );
    let err = load_err(dir.path());
    assert!(err.to_string().contains("expected 2 dimensions"), "{err}");

    let dir = model2vec_folder(false);
    write_matrix(dir.path(), "embeddings", &Array2::zeros((10, 2)));
    let err = load_err(dir.path());
    assert!(matches!(err, Error::ModelFormat { .. }), "{err}");
    assert!(
        err.to_string().contains("19 tokens") && err.to_string().contains("only 10 rows"),
        "{err}"
    );

    let dir = model2vec_folder(false);
    write_matrix(dir.path(), "something_else", &rows());
    let err = load_err(dir.path());
    assert!(err.to_string().contains("something_else"), "{err}");

    let dir = model2vec_folder(false);
    let ints: Vec<u8> = (0..VOCAB.len() * 2)
        .flat_map(|i| (i as i32).to_le_bytes())
        .collect();
    write_tensors(
        dir.path(),
        &[("embeddings", Dtype::I32, vec![VOCAB.len(), 2], ints)],
    );
    let err = load_err(dir.path());
    assert!(err.to_string().contains("dtype I32"), "{err}");
}

#[test]
fn transformer_folder_is_not_a_static_model() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#,
    )
    .unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, Error::ModelFormat { .. }), "{err}");
    assert!(
        err.to_string().contains("no StaticEmbedding module"),
        "{err}"
    );
}

#[test]
fn new_checks_vocabulary_against_rows() {
    let tokenizer = BatchTokenizer::from_json(&tokenizer_json()).unwrap();
    let err = StaticModel::new(tokenizer.clone(), Array2::zeros((3, 4)), false).unwrap_err();
    assert!(err.to_string().contains("19 tokens"), "{err}");
    let model = StaticModel::new(tokenizer, rows(), false).unwrap();
    assert_eq!(model.embed(&["hello"]).unwrap(), array![[5.0, 1.0]]);
}

#[test]
fn shared_model2vec_fixture_loads_and_embeds() {
    let Some(data) = shared_data() else {
        eprintln!("skipping: ../shared/data is not on this machine");
        return;
    };
    let model = StaticModel::load(data.join("model2vec-fixture")).unwrap();
    assert_eq!(model.dim(), 2);
    assert!(model.normalize());
    assert_eq!(model.weights().nrows(), 29_528);

    let texts = ["A man is playing a guitar.", "", "Ünïcödé 😀 日本語", "the"];
    let out = model.embed(&texts).unwrap();
    assert_eq!(out.dim(), (4, 2));
    // Independent reference: average the rows of each text's ids, then L2-normalise.
    for (text, row) in texts.iter().zip(out.rows()) {
        let ids = model.tokenizer().encode_ids(text, false).unwrap();
        let mut mean = [0f32; 2];
        for &id in &ids {
            for (m, w) in mean.iter_mut().zip(model.weights().row(id as usize)) {
                *m += w;
            }
        }
        let n = ids.len().max(1) as f32;
        let mean = mean.map(|m| m / n);
        let norm = (mean[0] * mean[0] + mean[1] * mean[1]).sqrt().max(1e-12);
        for (got, want) in row.iter().zip(mean.map(|m| m / norm)) {
            assert!((got - want).abs() < 1e-6, "{text:?}: {got} vs {want}");
        }
    }
    // Same as pooling the flat encoding by hand.
    let flat = model.tokenizer().encode_flat(&texts, None, None).unwrap();
    let pooled = embedding_bag_mean(model.weights(), &flat.ids, &flat.offsets, true).unwrap();
    assert_eq!(pooled, out);
}
