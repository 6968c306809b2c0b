//! `GET /health`: liveness, plus what is being served.

use axum::extract::State;
use serde::Serialize;

use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::state::AppState;

/// `{"status": "ok", "model": ..., "dim": ..., "normalized": ..., "corpus_size": ...}`.
#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    /// The model folder, as given on the command line.
    model: String,
    /// Embedding width.
    dim: usize,
    /// Whether `/embed` returns unit-length rows without `"normalize": true`.
    normalized: bool,
    /// Documents `/search` ranks; null without a corpus.
    corpus_size: Option<usize>,
    /// The default prompt prepended to every text, if the model has one.
    prompt: Option<&'a str>,
}

pub(crate) async fn health(State(state): State<AppState>) -> Result<JsonBody, ApiError> {
    let model = state.model();
    JsonBody::encode(&Health {
        status: "ok",
        model: model.path().display().to_string(),
        dim: model.dim(),
        normalized: model.normalizes(),
        corpus_size: state.corpus().map(|c| c.len()),
        prompt: model.prompt(),
    })
}
