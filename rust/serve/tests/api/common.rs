//! Shared helpers: the Python-written fixture model, requests through the router, and
//! reference formulas written out independently of the service.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use embedforge::ndarray::{Array2, ArrayView1};
use embedforge_serve::corpus::Corpus;
use embedforge_serve::model::ServedModel;
use embedforge_serve::{routes, AppState, Limits};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A StaticEmbedding + Normalize folder saved by embedforge's Python package; its
/// `expected.json` holds sentence-transformers' embeddings of some texts (the oracle).
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/python_static")
}

/// The oracle's texts and embeddings.
pub fn expected() -> (Vec<String>, Array2<f32>) {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let texts: Vec<String> = json["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    (texts, matrix(&json["embeddings"]))
}

/// Copies the fixture into `dir`, keeping only the StaticEmbedding module (so embeddings are not
/// unit length), and returns `dir`.
pub fn unnormalized_copy(dir: &Path) -> PathBuf {
    copy_fixture(dir);
    let modules = r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}]"#;
    std::fs::write(dir.join("modules.json"), modules).unwrap();
    dir.to_path_buf()
}

/// Copies the fixture's files (not `expected.json`) into `dir`.
pub fn copy_fixture(dir: &Path) {
    let source = fixture_dir();
    for name in [
        "modules.json",
        "config_sentence_transformers.json",
        "model.safetensors",
        "tokenizer.json",
    ] {
        std::fs::copy(source.join(name), dir.join(name)).unwrap();
    }
    std::fs::create_dir_all(dir.join("1_Normalize")).unwrap();
    std::fs::copy(
        source.join("1_Normalize/config.json"),
        dir.join("1_Normalize/config.json"),
    )
    .unwrap();
}

/// The fixture model.
pub fn fixture_model() -> ServedModel {
    ServedModel::load(fixture_dir()).unwrap()
}

/// A service over `model` and `corpus` with `limits`.
pub fn state(model: ServedModel, corpus: Option<Corpus>, limits: Limits) -> AppState {
    AppState::new(model, corpus, limits)
}

/// Sends one request through the router and returns the status and the JSON body.
pub async fn call(state: &AppState, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = routes::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{bytes:?}"
    );
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Asserts a 4xx error whose message contains every fragment.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, fragments: &[&str]) {
    assert_eq!(got.0, status, "{}", got.1);
    let message = got.1["error"].as_str().expect("an error message");
    for fragment in fragments {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
}

/// A JSON list of lists of numbers as a matrix.
pub fn matrix(value: &Value) -> Array2<f32> {
    let rows = value.as_array().unwrap();
    let width = rows.first().map_or(0, |r| r.as_array().unwrap().len());
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    Array2::from_shape_vec((rows.len(), width), flat).unwrap()
}

/// Asserts two matrices have the same shape and agree to `tolerance` everywhere.
pub fn assert_close(got: &Array2<f32>, want: &Array2<f32>, tolerance: f32) {
    assert_eq!(got.dim(), want.dim());
    for ((i, j), &w) in want.indexed_iter() {
        let g = got[[i, j]];
        assert!((g - w).abs() <= tolerance, "[{i}, {j}]: got {g}, want {w}");
    }
}

/// Cosine similarity written out: dot product over the product of the norms (0 for a zero row).
pub fn cosine(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let norm = |v: ArrayView1<'_, f32>| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let denominator = (norm(a) * norm(b)).max(1e-12);
    dot / denominator
}

/// The `k` best corpus rows of every query by cosine, best first, ties to the lower row.
pub fn reference_top_k(
    queries: &Array2<f32>,
    corpus: &Array2<f32>,
    k: usize,
) -> Vec<Vec<(usize, f64)>> {
    queries
        .rows()
        .into_iter()
        .map(|q| {
            let mut scored: Vec<(usize, f64)> = corpus
                .rows()
                .into_iter()
                .enumerate()
                .map(|(i, c)| (i, cosine(q, c)))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(k);
            scored
        })
        .collect()
}

/// A little-endian float32 .npy file (format `version` 1, 2 or 3) holding `matrix`, written
/// byte by byte from the format's specification.
pub fn write_npy(path: &Path, matrix: &Array2<f32>, version: u8) {
    let (rows, cols) = matrix.dim();
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let prefix = if version == 1 { 10 } else { 12 };
    // Magic + version + length + header + '\n' is padded to a multiple of 64 bytes.
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend([version, 0]);
    if version == 1 {
        bytes.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
    } else {
        bytes.extend(u32::try_from(header.len()).unwrap().to_le_bytes());
    }
    bytes.extend(header.as_bytes());
    for value in matrix.iter() {
        bytes.extend(value.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}
