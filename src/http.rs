//! HTTP endpoints and signal handling, on a small tokio runtime beside the service loop:
//! `/healthz`, `/readyz`, `/v1/status` and `/v1/customers/{id}`.
//!
//! The service loop is synchronous (librdkafka's poll model, rebalance callbacks on the
//! polling thread); the endpoints reach its state through [`ServiceHandle`], whose lock is
//! only taken for a look-up, never across a poll.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::kafka::{ServiceHandle, Status};

/// Why the background runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The listen address is taken or invalid.
    #[error("cannot listen on {addr}: {source}; set http.listen to a free address (or \"\" to turn HTTP off)")]
    Bind {
        /// The address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The runtime could not be built.
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(std::io::Error),
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(h): State<ServiceHandle>) -> Response {
    match h.status.not_ready_reason() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn status(State(h): State<ServiceHandle>) -> Response {
    let h2 = h.clone();
    let parts = tokio::task::spawn_blocking(move || h2.with_engine(|e| e.partitions()))
        .await
        .unwrap_or_default();
    let s = &h.status;
    json(
        StatusCode::OK,
        serde_json::json!({
            "ready": s.not_ready_reason().is_none(),
            "reason": s.not_ready_reason(),
            "events": s.events.load(Ordering::Relaxed),
            "commits": s.commits.load(Ordering::Relaxed),
            "partitions": parts,
        }),
    )
}

async fn customer(State(h): State<ServiceHandle>, Path(id): Path<String>) -> Response {
    if id.is_empty() || id.len() > 256 {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "customer id must be 1 to 256 bytes"}),
        );
    }
    let h2 = h.clone();
    let found = tokio::task::spawn_blocking(move || h2.lookup(&id)).await;
    match found {
        Ok(Some(p)) => match serde_json::to_value(&p) {
            Ok(v) => json(StatusCode::OK, v),
            Err(_) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "encoding failed"}),
            ),
        },
        Ok(None) => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "customer not held by this instance: unknown, erased, or owned by another instance of the group"}),
        ),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "look-up failed"}),
        ),
    }
}

/// The routes.
pub fn router(h: ServiceHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/status", get(status))
        .route("/v1/customers/{id}", get(customer))
        .with_state(h)
}

/// The background runtime: HTTP server (if any) and SIGTERM/SIGINT handling. Dropping it
/// stops both.
pub struct Background {
    /// Where HTTP listens, if it does.
    pub addr: Option<SocketAddr>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts the HTTP server on `listen` (empty = none) and turns SIGTERM/SIGINT into a
/// shutdown request on `status`.
pub fn start(
    listen: &str,
    handle: Option<ServiceHandle>,
    status: Arc<Status>,
) -> Result<Background, HttpError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("churnwatch-http")
        .enable_all()
        .build()
        .map_err(HttpError::Runtime)?;
    let signal_status = Arc::clone(&status);
    rt.spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the SIGTERM handler");
                    return;
                }
            };
        let mut first = true;
        loop {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            if first {
                tracing::info!("stop requested (signal); finishing the current interval");
                signal_status.request_shutdown();
                first = false;
            } else {
                tracing::warn!(
                    "second stop signal: exiting now; a restart resumes from the last checkpoint"
                );
                std::process::exit(130);
            }
        }
    });
    let mut addr = None;
    if let (false, Some(h)) = (listen.trim().is_empty(), handle) {
        let std_listener =
            std::net::TcpListener::bind(listen).map_err(|source| HttpError::Bind {
                addr: listen.to_string(),
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(HttpError::Runtime)?;
        addr = std_listener.local_addr().ok();
        let app = router(h);
        rt.spawn(async move {
            match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => {
                    if let Err(e) = axum::serve(l, app).await {
                        tracing::error!(error = %e, "HTTP server stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "HTTP listener failed"),
            }
        });
        if let Some(a) = addr {
            tracing::info!(addr = %a, "HTTP endpoints: /healthz /readyz /v1/status /v1/customers/{{id}}");
        }
    }
    Ok(Background {
        addr,
        runtime: Some(rt),
    })
}
