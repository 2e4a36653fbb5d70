//! The listener while the database is migrated: bound at once, so a replica that is starting is
//! told apart from one that is gone. `/healthz` answers 200 (the process is up), `/readyz` 503
//! `{"status": "migrating"}`, and everything else 503 with `Retry-After`: nothing is served
//! before the schema is this binary's.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long requests already answered 503 may take to be written once migrated.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// The starting server, if one runs.
#[derive(Default)]
pub struct Starting(Option<(oneshot::Sender<()>, JoinHandle<()>)>);

/// Serves the starting answers on a second handle of `listener`'s socket; the listener itself
/// is given back, to serve the application on the same socket once [`Starting::stop`] returns.
pub fn serve(listener: TcpListener) -> std::io::Result<(TcpListener, Starting)> {
    let socket = listener.into_std()?;
    let starting = TcpListener::from_std(socket.try_clone()?)?;
    let listener = TcpListener::from_std(socket)?;
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let server = axum::serve(starting, router()).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "the starting listener failed");
        }
    });
    tracing::info!("listening; not ready until the database is migrated");
    Ok((listener, Starting(Some((stop, task)))))
}

impl Starting {
    /// Stops accepting; connections still open get [`STOP_GRACE`].
    pub async fn stop(self) {
        if let Some((stop, task)) = self.0 {
            let _ = stop.send(());
            let _ = tokio::time::timeout(STOP_GRACE, task).await;
        }
    }
}

fn router() -> Router {
    Router::new()
        .route("/healthz", get(crate::http::health::healthz))
        .route(
            "/readyz",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "status": "migrating" })),
                )
            }),
        )
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Json(shared::api::detail(shared::api::DETAIL_UNAVAILABLE)),
            )
                .into_response()
        })
}
