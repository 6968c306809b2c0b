//! `POST /similarity`: the cosine similarity of every query with every document, as
//! sentence-transformers' `util.cos_sim(model.encode(queries), model.encode(documents))`.

use axum::extract::State;
use embedforge::ndarray::s;
use serde::{Deserialize, Serialize};

use crate::blocking::run_blocking;
use crate::body::{ApiJson, RequestShape};
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::matrix_json::MatrixJson;
use crate::state::AppState;

/// `{"queries": [...], "documents": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with \"queries\" and \"documents\" (lists of strings)"
)]
pub(crate) struct SimilarityRequest {
    queries: Vec<String>,
    documents: Vec<String>,
}

impl RequestShape for SimilarityRequest {
    const SHAPE: &'static str = r#"{"queries": [string, ...], "documents": [string, ...]}"#;
}

/// `{"scores": [[...], ...]}`: `scores[i][j]` is query `i` against document `j`, so the shape is
/// `[len(queries)][len(documents)]`.
#[derive(Serialize)]
struct SimilarityResponse<'a> {
    scores: MatrixJson<'a>,
}

pub(crate) async fn similarity(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SimilarityRequest>,
) -> Result<JsonBody, ApiError> {
    let SimilarityRequest {
        mut queries,
        documents,
    } = request;
    let n_queries = queries.len();
    state
        .limits()
        .check_texts("queries` and `documents", n_queries + documents.len())?;
    run_blocking(move || {
        // One call embeds both lists: one tokenizer pass and one trip to the thread pool.
        queries.extend(documents);
        // Unit rows, so the dot products below are the cosines.
        let embeddings = state
            .engine()
            .embed(&queries, true, "queries` and `documents")?;
        let scores = embeddings
            .slice(s![..n_queries, ..])
            .dot(&embeddings.slice(s![n_queries.., ..]).t());
        JsonBody::encode(&SimilarityResponse {
            scores: MatrixJson(scores.view()),
        })
    })
    .await
}
