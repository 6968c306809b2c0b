//! A response body that is already encoded JSON, so encoding can run off the async threads.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// An already encoded JSON body, sent with status 200.
pub(crate) struct JsonBody(pub Vec<u8>);

impl JsonBody {
    /// Encodes `value`; encoding plain data cannot fail, but if it does the client gets a 500.
    pub(crate) fn encode(value: &impl Serialize) -> Result<Self, ApiError> {
        serde_json::to_vec(value)
            .map(Self)
            .map_err(|e| ApiError::internal(format!("cannot encode the answer: {e}")))
    }
}

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::OK, self.0).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
