//! Look-ups of customers this instance does not hold: forwarded to the member that holds
//! the customer's input partition (from the members table), with the caller's
//! `Authorization` header, and its answer passed back as it is. While a rebalance moves
//! the partition the answer is 503 with `Retry-After`, never a 404 that would be wrong a
//! second later. A forwarded request is never forwarded again (no loops on a stale table).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::api::json;
use super::App;
use crate::kafka::Route;

/// Marks a request one instance forwarded to another.
pub const FORWARDED: &str = "x-churnwatch-forwarded";
/// Names the instance that answered a forwarded look-up.
pub const SERVED_BY: &str = "x-churnwatch-served-by";

/// How long a forwarded request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

fn unavailable(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, "1"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        serde_json::json!({"error": format!("try again in a moment: {why}")}).to_string(),
    )
        .into_response()
}

/// The answer for `customer_id`, not found in this instance's state.
pub(super) async fn elsewhere(
    app: &App,
    customer_id: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Response {
    let forwarded = headers.contains_key(FORWARDED);
    let h = app.handle.clone();
    let id = customer_id.to_string();
    let route = tokio::task::spawn_blocking(move || h.route(&id, forwarded))
        .await
        .unwrap_or(Route::Unavailable("routing failed"));
    match route {
        Route::Absent => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "no such customer: never seen, or erased"}),
        ),
        Route::Local => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "customer not held by this instance: unknown, erased, or held by another instance of the group (routing is off: the members topic does not exist; see README \"Scaling out\")"}),
        ),
        Route::Unavailable(why) => unavailable(why),
        Route::Forward(url) => forward(&url, headers, uri).await,
    }
}

/// One request to another instance (marked forwarded, with the caller's authorization):
/// its status, headers and body, or why there is none.
pub(super) async fn call(
    method: Method,
    url: &str,
    auth: Option<&HeaderValue>,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header(FORWARDED, "1");
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|_| format!("{url} is not a valid URL"))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let answer = tokio::time::timeout(FORWARD_TIMEOUT, async {
        let r = client.request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((parts.status, parts.headers, bytes))
    })
    .await;
    answer.unwrap_or_else(|_| Err(format!("no answer within {FORWARD_TIMEOUT:?}")))
}

async fn forward(url: &str, headers: &HeaderMap, uri: &Uri) -> Response {
    let target = format!(
        "{url}{}",
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    );
    match call(
        Method::GET,
        &target,
        headers.get(header::AUTHORIZATION),
        None,
    )
    .await
    {
        Ok((status, h, bytes)) => {
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = status;
            for name in [
                header::CONTENT_TYPE,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ] {
                if let Some(v) = h.get(&name) {
                    resp.headers_mut().insert(name, v.clone());
                }
            }
            if let Ok(v) = HeaderValue::from_str(url) {
                resp.headers_mut().insert(SERVED_BY, v);
            }
            resp
        }
        Err(e) => {
            tracing::debug!(holder = %url, error = %e, "forwarded look-up failed");
            unavailable("the instance holding the customer did not answer in time")
        }
    }
}
