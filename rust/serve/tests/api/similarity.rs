//! `POST /similarity` against the cosine formula written out.

use axum::http::StatusCode;
use embedforge_serve::model::ServedModel;
use embedforge_serve::Limits;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn scores_are_the_cosine_matrix_queries_by_documents() {
    let dir = tempfile::tempdir().unwrap();
    // Unnormalised embeddings, so the endpoint has to normalise for itself.
    let state = state(
        ServedModel::load(unnormalized_copy(dir.path())).unwrap(),
        None,
        Limits::default(),
    );
    let (texts, _) = expected();
    let (queries, documents) = (&texts[2..5], &texts[5..12]);
    let body = json!({ "queries": queries, "documents": documents }).to_string();
    let (status, answer) = call(&state, "POST", "/similarity", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let scores = matrix(&answer["scores"]);
    assert_eq!(scores.dim(), (3, 7));

    let embed = |texts: &[String]| {
        let state = state.clone();
        let texts = texts.to_vec();
        async move {
            let (_, answer) = call(
                &state,
                "POST",
                "/embed",
                &json!({ "inputs": texts }).to_string(),
            )
            .await;
            matrix(&answer["embeddings"])
        }
    };
    let (q, d) = (embed(queries).await, embed(documents).await);
    for i in 0..3 {
        for j in 0..7 {
            let want = cosine(q.row(i), d.row(j)) as f32;
            assert!((scores[[i, j]] - want).abs() < 1e-5, "[{i}, {j}]");
        }
    }
}

#[tokio::test]
async fn empty_lists_keep_the_shape() {
    let state = state(fixture_model(), None, Limits::default());
    let body = r#"{"queries": ["a", "b"], "documents": []}"#;
    let (status, answer) = call(&state, "POST", "/similarity", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({ "scores": [[], []] }));
    let body = r#"{"queries": [], "documents": ["a"]}"#;
    let (_, answer) = call(&state, "POST", "/similarity", body).await;
    assert_eq!(answer, json!({ "scores": [] }));
    // An empty text embeds to zeros, whose cosine is 0 (not NaN).
    let body = r#"{"queries": [""], "documents": ["the cat"]}"#;
    let (_, answer) = call(&state, "POST", "/similarity", body).await;
    assert_eq!(answer, json!({ "scores": [[0.0]] }));
}

#[tokio::test]
async fn the_text_limit_counts_both_lists() {
    let limits = Limits {
        max_texts: 3,
        ..Limits::default()
    };
    let state = state(fixture_model(), None, limits);
    let body = r#"{"queries": ["a", "b"], "documents": ["c", "d"]}"#;
    let got = call(&state, "POST", "/similarity", body).await;
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        &["`documents`", "got 4 texts", "at most 3"],
    );
    let got = call(&state, "POST", "/similarity", r#"{"queries": ["a"]}"#).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        &["missing field `documents`"],
    );
}
