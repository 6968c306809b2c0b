//! Runs CPU-bound work (embedding, search, JSON encoding) off the async runtime's threads.

use crate::error::ApiError;

/// Runs `work` on tokio's blocking pool, so that a long batch never stalls other connections.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker thread failed: {e}")))?
}
