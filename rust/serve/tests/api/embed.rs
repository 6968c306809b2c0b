//! `POST /embed` against sentence-transformers' embeddings and against the normalisation formula.

use axum::http::StatusCode;
use embedforge::ndarray::Array2;
use embedforge_serve::model::ServedModel;
use embedforge_serve::Limits;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn embeddings_match_sentence_transformers() {
    let (texts, want) = expected();
    let state = state(fixture_model(), None, Limits::default());
    for normalize in [false, true] {
        let body = json!({ "inputs": texts, "normalize": normalize }).to_string();
        let (status, answer) = call(&state, "POST", "/embed", &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_close(&matrix(&answer["embeddings"]), &want, 1e-5);
    }
}

#[tokio::test]
async fn normalize_scales_rows_to_unit_length() {
    let dir = tempfile::tempdir().unwrap();
    let model = ServedModel::load(unnormalized_copy(dir.path())).unwrap();
    assert!(!model.normalizes());
    let state = state(model, None, Limits::default());
    let (texts, _) = expected();

    let body = json!({ "inputs": texts }).to_string();
    let (status, raw) = call(&state, "POST", "/embed", &body).await;
    assert_eq!(status, StatusCode::OK);
    let raw = matrix(&raw["embeddings"]);
    // Without Normalize the rows are plain means, not unit vectors.
    let norms: Vec<f32> = raw.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
    assert!(norms.iter().any(|n| (n - 1.0).abs() > 0.01), "{norms:?}");

    let body = json!({ "inputs": texts, "normalize": true }).to_string();
    let (status, unit) = call(&state, "POST", "/embed", &body).await;
    assert_eq!(status, StatusCode::OK);
    let mut want = raw.clone();
    for (mut row, norm) in want.rows_mut().into_iter().zip(&norms) {
        row /= norm.max(1e-12);
    }
    assert_close(&matrix(&unit["embeddings"]), &want, 1e-6);
    // ...and they are the oracle's (normalised) embeddings.
    assert_close(&matrix(&unit["embeddings"]), &expected().1, 1e-5);
}

#[tokio::test]
async fn default_prompt_is_prepended() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let config =
        json!({"prompts": {"query": "the cat ", "document": ""}, "default_prompt_name": "query"});
    std::fs::write(
        dir.path().join("config_sentence_transformers.json"),
        config.to_string(),
    )
    .unwrap();
    let prompted = state(
        ServedModel::load(dir.path()).unwrap(),
        None,
        Limits::default(),
    );
    let plain = state(fixture_model(), None, Limits::default());
    let (_, got) = call(
        &prompted,
        "POST",
        "/embed",
        r#"{"inputs": ["and the dog"]}"#,
    )
    .await;
    let (_, want) = call(
        &plain,
        "POST",
        "/embed",
        r#"{"inputs": ["the cat and the dog"]}"#,
    )
    .await;
    assert_close(
        &matrix(&got["embeddings"]),
        &matrix(&want["embeddings"]),
        1e-6,
    );
    let (_, health) = call(&prompted, "GET", "/health", "").await;
    assert_eq!(health["prompt"], "the cat ");
}

#[tokio::test]
async fn empty_inputs_give_no_rows_and_empty_texts_give_zero_rows() {
    let state = state(fixture_model(), None, Limits::default());
    let (status, answer) = call(&state, "POST", "/embed", r#"{"inputs": []}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({ "embeddings": [] }));

    let (status, answer) = call(&state, "POST", "/embed", r#"{"inputs": [""]}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(matrix(&answer["embeddings"]), Array2::<f32>::zeros((1, 8)));
}

#[tokio::test]
async fn limits_are_enforced_with_messages() {
    let limits = Limits {
        max_texts: 3,
        max_body_bytes: 200,
        max_top_k: 5,
    };
    let state = state(fixture_model(), None, limits);
    let body = json!({ "inputs": ["a", "b", "c", "d"] }).to_string();
    let got = call(&state, "POST", "/embed", &body).await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        &["`inputs`", "got 4 texts", "at most 3", "--max-texts"],
    );
    // Exactly at the limit is fine.
    let body = json!({ "inputs": ["a", "b", "c"] }).to_string();
    assert_eq!(
        call(&state, "POST", "/embed", &body).await.0,
        StatusCode::OK
    );

    let body = json!({ "inputs": ["x".repeat(300)] }).to_string();
    let got = call(&state, "POST", "/embed", &body).await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        &["larger than 200 bytes", "--max-body-bytes"],
    );
}

#[tokio::test]
async fn malformed_requests_are_rejected_with_the_field_named() {
    let state = state(fixture_model(), None, Limits::default());
    let cases: [(&str, StatusCode, &[&str]); 9] = [
        ("", StatusCode::BAD_REQUEST, &["empty", "\"inputs\""]),
        (
            "{\"inputs\": [",
            StatusCode::BAD_REQUEST,
            &["not valid JSON"],
        ),
        (
            "{\"inputs\": []} {}",
            StatusCode::BAD_REQUEST,
            &["trailing characters"],
        ),
        (
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
            &["missing field `inputs`"],
        ),
        (
            "{\"inputs\": [\"a\", 3]}",
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`inputs[1]`", "integer `3`", "expected a string"],
        ),
        (
            "{\"inputs\": \"a\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`inputs`", "string \"a\"", "expected a sequence"],
        ),
        (
            "{\"inputs\": [], \"normalize\": 1}",
            StatusCode::UNPROCESSABLE_ENTITY,
            &["`normalize`", "expected a boolean"],
        ),
        (
            "{\"input\": []}",
            StatusCode::UNPROCESSABLE_ENTITY,
            &["unknown field `input`", "expected `inputs` or `normalize`"],
        ),
        (
            "[[\"a\"], true]",
            StatusCode::UNPROCESSABLE_ENTITY,
            &["JSON array", "expected a JSON object"],
        ),
    ];
    for (body, status, fragments) in cases {
        let got = call(&state, "POST", "/embed", body).await;
        assert_error(&got, status, fragments);
    }
}
