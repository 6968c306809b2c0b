//! `POST /search`: the `top_k` nearest corpus documents of each query by cosine similarity,
//! as sentence-transformers' `util.semantic_search`, through the core's exact search.

use axum::extract::State;
use serde::Deserialize;

use crate::batcher::Work;
use crate::body::{ApiJson, RequestShape};
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::positive_integer;
use crate::state::AppState;

/// sentence-transformers' default for `util.semantic_search`.
const DEFAULT_TOP_K: usize = 10;

/// `{"queries": [...], "top_k": 10}`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with \"queries\" (a list of strings)"
)]
pub(crate) struct SearchRequest {
    queries: Vec<String>,
    #[serde(
        default = "default_top_k",
        deserialize_with = "positive_integer::deserialize"
    )]
    top_k: usize,
}

fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

impl RequestShape for SearchRequest {
    const SHAPE: &'static str =
        r#"{"queries": [string, ...], "top_k": positive integer (optional, default 10)}"#;
}

/// Answers `{"results": [[{"id": ..., "score": ...}, ...], ...]}`: per query, best hit first,
/// `min(top_k, corpus size)` hits.
pub(crate) async fn search(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SearchRequest>,
) -> Result<JsonBody, ApiError> {
    state.engine().corpus_or_404()?;
    let limits = state.limits();
    limits.check_texts("queries", request.queries.len())?;
    limits.check_top_k(request.top_k)?;
    if request.queries.is_empty() {
        return JsonBody::encode(&serde_json::json!({ "results": [] }));
    }
    let work = Work::Search {
        top_k: request.top_k,
    };
    state.batcher().submit(work, request.queries).await
}
