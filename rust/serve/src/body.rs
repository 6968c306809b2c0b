//! The JSON body extractor: reads the body within `--max-body-bytes` and turns every decoding
//! failure into a JSON error that names the field, the value and the expected shape.
//!
//! The `Content-Type` header is not checked: `curl -d` sends form encoding by default, and the
//! body is JSON whatever the header says.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;
use crate::state::AppState;

/// A request body decoded from JSON into `T`.
pub(crate) struct ApiJson<T>(pub T);

/// A request type's expected JSON, quoted by error messages.
pub(crate) trait RequestShape {
    /// The expected body, e.g. `{"inputs": [string, ...]}`.
    const SHAPE: &'static str;
}

impl<T: DeserializeOwned + RequestShape> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.limits().max_body_bytes;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(format!(
                        "the request body is larger than {limit} bytes, expected at most \
                         {limit} (the server's --max-body-bytes)"
                    ))
                } else {
                    ApiError::bad_request(format!(
                        "cannot read the request body: {}",
                        rejection.body_text()
                    ))
                }
            })?;
        decode(&bytes).map(ApiJson)
    }
}

/// Decodes `bytes` as one JSON value of type `T` (trailing data is an error).
pub(crate) fn decode<T: DeserializeOwned + RequestShape>(bytes: &[u8]) -> Result<T, ApiError> {
    let expected = T::SHAPE;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(format!(
            "the request body is empty, expected JSON {expected}"
        )));
    }
    // serde would read a struct from a JSON array of its fields in order; nobody means that.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::unprocessable(format!(
            "the request body is a JSON array, expected a JSON object {expected}"
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            Category::Data => {
                let field = if path == "." {
                    String::new()
                } else {
                    format!("`{path}`: ")
                };
                ApiError::unprocessable(format!("{field}{inner}; expected {expected}"))
            }
            Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(format!(
                "the request body is not valid JSON ({inner}), expected {expected}"
            )),
        }
    })?;
    deserializer.end().map_err(|inner| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON ({inner}), expected one value {expected}"
        ))
    })?;
    Ok(value)
}
