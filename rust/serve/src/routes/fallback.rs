//! JSON answers for unknown paths and wrong methods (axum's own are empty bodies).

use axum::http::{Method, Uri};

use super::ROUTES;
use crate::error::ApiError;

/// 404 for a path the service does not have.
pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {method} {}, expected one of: {ROUTES}",
        uri.path()
    ))
}

/// 405 for a known path asked with the wrong method.
pub(crate) async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {method} is not allowed for {}, expected one of: {ROUTES}",
            uri.path()
        ),
    )
}
