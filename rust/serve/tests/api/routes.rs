//! `GET /health` and JSON answers for unknown routes and wrong methods.

use axum::http::StatusCode;
use embedforge::ndarray::Array2;
use embedforge_serve::corpus::{Corpus, CorpusIds};
use embedforge_serve::Limits;

use crate::common::*;

#[tokio::test]
async fn health_describes_what_is_served() {
    let without = state(fixture_model(), None, Limits::default());
    let (status, health) = call(&without, "GET", "/health", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["dim"], 8);
    assert_eq!(health["normalized"], true);
    assert!(health["corpus_size"].is_null());

    let corpus = Corpus::new(Array2::ones((3, 8)), CorpusIds::LineNumbers).unwrap();
    let with = state(fixture_model(), Some(corpus), Limits::default());
    assert_eq!(call(&with, "GET", "/health", "").await.1["corpus_size"], 3);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let state = state(fixture_model(), None, Limits::default());
    let got = call(&state, "GET", "/embeddings", "").await;
    assert_error(
        &got,
        StatusCode::NOT_FOUND,
        &["no route for GET /embeddings", "POST /embed"],
    );
    let got = call(&state, "GET", "/embed", "").await;
    assert_error(
        &got,
        StatusCode::METHOD_NOT_ALLOWED,
        &["method GET", "/embed"],
    );
    let got = call(&state, "POST", "/health", "").await;
    assert_error(
        &got,
        StatusCode::METHOD_NOT_ALLOWED,
        &["method POST", "/health"],
    );
}
