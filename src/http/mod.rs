//! HTTP endpoints and signal handling, on a small tokio runtime beside the service loop:
//! the routes, the token rule, and the runtime's start and stop. The probes and
//! `/metrics` are here; the `/v1/…` JSON endpoints are in [`api`], the console's pages
//! in [`console`], what the console remembers of the alerts in [`live`], and who may call
//! `/v1/…` in [`auth`]. When API tokens are configured, `/v1/…` requires
//! `Authorization: Bearer <token>` (per-customer look-ups are for authorized users only,
//! and each is logged with the token's name); probes, metrics and the console's static
//! pages (which hold no data) stay open.
//!
//! The service loop is synchronous (librdkafka's poll model, rebalance callbacks on the
//! polling thread); the endpoints reach its state through [`ServiceHandle`], whose lock is
//! only taken for a look-up, never across a poll.

pub mod actions;
pub mod api;
pub mod auth;
pub mod console;
pub mod group;
pub mod live;
pub mod route;
pub mod rules;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::kafka::{ServiceHandle, Status};
pub use auth::{Access, AccessConfig, AuthError};
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
    /// The access settings are unsafe or unreadable.
    #[error(transparent)]
    Access(#[from] AuthError),
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

/// The authenticated caller of a `/v1/…` request: the token's name (or
/// [`auth::ANONYMOUS`]), for the audit log and as the default actor of interventions.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Endpoints that answer with per-customer data: each call is logged for audit.
fn customer_data(path: &str) -> bool {
    path.starts_with("/v1/customers/")
        || path == "/v1/warnings"
        || path == "/v1/alerts/stream"
        || path == "/v1/interventions"
        || path.starts_with("/v1/rules/")
}

async fn require_token(
    State(access): State<Arc<Access>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(name) = access.caller(given) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "{\"error\":\"this API needs Authorization: Bearer <token> with a token the service knows (from its http.token_env variable or http.tokens_file); a revoked token gets this answer too\"}",
        )
            .into_response();
    };
    let path = req.uri().path();
    if customer_data(path) {
        // The audit trail: who read which customer's data. Ids only (the path carries the
        // customer id, an identifier of the input contract), never profile contents.
        tracing::info!(target: "churnwatch::audit", caller = %name, method = %req.method(), path = %path, "customer data access");
    }
    req.extensions_mut().insert(Caller(name));
    next.run(req).await
}

/// The endpoints, for the answer to a path that is none of them.
pub const ENDPOINTS: [&str; 16] = [
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/status",
    "/v1/customers/{id}",
    "/v1/customers/{id}/history",
    "/v1/report",
    "/v1/report/population",
    "/v1/report/sums (POST)",
    "/v1/warnings",
    "/v1/timeline",
    "/v1/alerts/stream",
    "/v1/interventions (POST)",
    "/v1/rules/reload (POST)",
    "/v1/rules/diff (POST)",
];

/// Any other path: a 404 that says what exists (a typo such as `/v1/customer/C1` used to
/// get an empty body).
async fn not_found(uri: axum::http::Uri) -> Response {
    api::json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": format!("no endpoint at {}", uri.path()), "endpoints": ENDPOINTS}),
    )
}

/// The routes; `access` guards `/v1/…`.
pub fn router(app: App, access: Arc<Access>) -> Router {
    let v1 = Router::new()
        .route("/v1/status", get(api::status))
        .route("/v1/customers/{id}", get(api::customer))
        .route("/v1/customers/{id}/history", get(api::history))
        .route("/v1/report", get(api::report))
        .route("/v1/report/population", get(group::population))
        .route("/v1/report/sums", post(group::sums))
        .route("/v1/warnings", get(api::warnings))
        .route("/v1/timeline", get(api::timeline))
        .route("/v1/alerts/stream", get(api::stream))
        .route("/v1/interventions", post(actions::intervention))
        .route("/v1/rules/reload", post(rules::reload))
        .route("/v1/rules/diff", post(rules::diff))
        .route_layer(axum::middleware::from_fn_with_state(access, require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(console::routes())
        .merge(v1)
        .fallback(not_found)
        .with_state(app)
}

/// SIGHUP reloads the rules (as `POST /v1/rules/reload` does; the log says what came of
/// it).
async fn reload_on_sighup(h: ServiceHandle) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install the SIGHUP handler; reload with POST /v1/rules/reload");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let h = h.clone();
        // The outcome is logged (and counted) by the handle.
        let _ = tokio::task::spawn_blocking(move || h.reload_rules("SIGHUP")).await;
    }
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
/// [`Live::hook`] so that the console sees the alerts. Refuses to serve customer data
/// beyond loopback without a token (see [`auth`]).
pub fn start(
    listen: &str,
    access: &AccessConfig,
    handle: Option<(ServiceHandle, Arc<Live>)>,
    status: Arc<Status>,
) -> Result<Background, HttpError> {
    let access = Arc::new(Access::new(listen, access)?);
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
    if let Some((h, _)) = &handle {
        rt.spawn(reload_on_sighup(h.clone()));
    }
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
        let app = router(app, access);
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
