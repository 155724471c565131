//! HTTP endpoints and signal handling, on a small tokio runtime beside the service loop:
//! the routes, the token rule, and the runtime's start and stop. The probes and
//! `/metrics` are here; the `/v1/…` JSON endpoints are in [`api`], the console's pages
//! in [`console`], and what the console remembers of the alerts in [`live`]. When an API
//! token is configured, `/v1/…` requires `Authorization: Bearer <token>` (per-customer
//! look-ups are for authorized users only); probes, metrics and the console's static
//! pages (which hold no data) stay open.
//!
//! The service loop is synchronous (librdkafka's poll model, rebalance callbacks on the
//! polling thread); the endpoints reach its state through [`ServiceHandle`], whose lock is
//! only taken for a look-up, never across a poll.

pub mod api;
pub mod console;
pub mod live;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::kafka::{ServiceHandle, Status};
pub use live::Live;

/// What the handlers share: the service and the console's memory.
#[derive(Clone)]
pub struct App {
    /// The service's state.
    pub handle: ServiceHandle,
    /// Alerts, raise times and the time series.
    pub live: Arc<Live>,
}

/// Why the background runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The listen address is taken or invalid.
    #[error("cannot listen on {addr}: {source}; set http.listen (or `demo --listen`) to a free address, or \"\" to turn HTTP off")]
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

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<App>) -> Response {
    match app.handle.status.not_ready_reason() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    let h = app.handle.clone();
    let text = tokio::task::spawn_blocking(move || h.metrics_text())
        .await
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(
    State(token): State<Option<Arc<str>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(t) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same(g.as_bytes(), t.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "{\"error\":\"this API needs Authorization: Bearer <token> (the token is in the service's http.token_env variable)\"}",
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// The endpoints, for the answer to a path that is none of them.
const ENDPOINTS: [&str; 11] = [
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/status",
    "/v1/customers/{id}",
    "/v1/customers/{id}/history",
    "/v1/report",
    "/v1/warnings",
    "/v1/timeline",
    "/v1/alerts/stream",
];

/// Any other path: a 404 that says what exists (a typo such as `/v1/customer/C1` used to
/// get an empty body).
async fn not_found(uri: axum::http::Uri) -> Response {
    api::json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": format!("no endpoint at {}", uri.path()), "endpoints": ENDPOINTS}),
    )
}

/// The routes; `token` protects `/v1/…`.
pub fn router(app: App, token: Option<String>) -> Router {
    let token: Option<Arc<str>> = token.map(Into::into);
    let v1 = Router::new()
        .route("/v1/status", get(api::status))
        .route("/v1/customers/{id}", get(api::customer))
        .route("/v1/customers/{id}/history", get(api::history))
        .route("/v1/report", get(api::report))
        .route("/v1/warnings", get(api::warnings))
        .route("/v1/timeline", get(api::timeline))
        .route("/v1/alerts/stream", get(api::stream))
        .route_layer(axum::middleware::from_fn_with_state(token, require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(console::routes())
        .merge(v1)
        .fallback(not_found)
        .with_state(app)
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
            // Wait (briefly) for the server's tasks to be dropped: they hold the service's
            // handle, and with it the producer, whose librdkafka threads would otherwise
            // outlive the service and log connection errors once the brokers are gone
            // (the demo's embedded broker stops right after).
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// Starts the HTTP server on `listen` (empty = none) and turns SIGTERM/SIGINT into a
/// shutdown request on `status`. `live` is the console's memory: give the service its
/// [`Live::hook`] so that the console sees the alerts.
pub fn start(
    listen: &str,
    token: Option<String>,
    handle: Option<(ServiceHandle, Arc<Live>)>,
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
    if let (false, Some((handle, live))) = (listen.trim().is_empty(), handle) {
        let std_listener =
            std::net::TcpListener::bind(listen).map_err(|source| HttpError::Bind {
                addr: listen.to_string(),
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(HttpError::Runtime)?;
        addr = std_listener.local_addr().ok();
        let app = App { handle, live };
        rt.spawn(api::sampler(app.clone()));
        let app = router(app, token);
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
            tracing::info!(addr = %a, endpoints = %ENDPOINTS.join(" "), "HTTP listening");
        }
    }
    Ok(Background {
        addr,
        runtime: Some(rt),
    })
}
