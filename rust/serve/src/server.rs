//! Binding the listening socket and running the router until shutdown.

use std::future::Future;

use tokio::net::TcpListener;

use crate::routes::router;
use crate::startup_error::StartupError;
use crate::state::AppState;

/// Opens the listening socket (`port` 0 picks a free port; see `local_addr`).
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, StartupError> {
    TcpListener::bind((host, port))
        .await
        .map_err(|source| StartupError::Bind {
            address: format!("{host}:{port}"),
            source,
        })
}

/// Serves `state` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartupError::Serve)
}
