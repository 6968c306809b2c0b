//! `POST /embed`: texts in, embeddings out, as `SentenceTransformer(folder).encode(texts)`.

use axum::extract::State;
use serde::Deserialize;

use crate::batcher::Work;
use crate::body::{ApiJson, RequestShape};
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::state::AppState;

/// `{"inputs": [...], "normalize": false}`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with \"inputs\" (a list of strings)"
)]
pub(crate) struct EmbedRequest {
    inputs: Vec<String>,
    /// Like `normalize_embeddings=True`; false keeps the model's own normalisation.
    #[serde(default)]
    normalize: bool,
}

impl RequestShape for EmbedRequest {
    const SHAPE: &'static str =
        r#"{"inputs": [string, ...], "normalize": bool (optional, default false)}"#;
}

/// Answers `{"embeddings": [[...], ...]}`, one row per input, in input order.
pub(crate) async fn embed(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<EmbedRequest>,
) -> Result<JsonBody, ApiError> {
    state.limits().check_texts("inputs", request.inputs.len())?;
    if request.inputs.is_empty() {
        return JsonBody::encode(&serde_json::json!({ "embeddings": [] }));
    }
    let work = Work::Embed {
        normalize: request.normalize,
    };
    state.batcher().submit(work, request.inputs).await
}
