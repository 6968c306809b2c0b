//! One debug-level log line per request: method, path, status and time taken.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Logs the request after it is answered (enable with `RUST_LOG=embedforge_serve=debug`).
pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    // Skip the clones and the clock when nobody listens: this runs on every request.
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}
