//! The HTTP API: one file per endpoint, assembled here with the body limit and request logging.

mod embed;
mod fallback;
mod health;
mod search;
mod similarity;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::request_log::log_request;
use crate::state::AppState;

/// Every route the service answers, for error messages about the others.
pub(crate) const ROUTES: &str = "GET /health, POST /embed, POST /search, POST /similarity";

/// The service: `POST /embed`, `POST /search`, `POST /similarity`, `GET /health`; JSON errors
/// for everything else.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.limits().max_body_bytes;
    Router::new()
        .route("/embed", post(embed::embed))
        .route("/search", post(search::search))
        .route("/similarity", post(similarity::similarity))
        .route("/health", get(health::health))
        .fallback(fallback::no_route)
        .method_not_allowed_fallback(fallback::wrong_method)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}
