//! The `/v1/…` JSON endpoints: status, customer look-up and day history, the population
//! report, the open warnings (the console's inbox), the overview's time series, and the
//! live alert stream. Every answer comes from the state of the partitions this instance
//! holds; nothing here writes.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::live::{Live, Raised};
use super::App;
use crate::core::output::Profile;
use crate::core::time::{day_of, format_date, format_rfc3339, Ts};

/// Runs `f` on the instance (every worker's engine) off the async workers (for the group report).
pub(super) async fn with_instance<R: Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut crate::kafka::runtime::Instance<'_>) -> R + Send + 'static,
) -> Option<R> {
    on_engine(app, f).await
}

/// A JSON answer.
pub(super) fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn failed(what: &str) -> Response {
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        serde_json::json!({ "error": format!("{what} failed") }),
    )
}

/// Runs `f` on the instance off the async workers (it takes every worker's engine lock).
async fn on_engine<R: Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut crate::kafka::runtime::Instance<'_>) -> R + Send + 'static,
) -> Option<R> {
    let h = app.handle.clone();
    tokio::task::spawn_blocking(move || h.with_instance(f))
        .await
        .ok()
}

/// An optional millisecond instant in RFC 3339, like every other time in the API.
fn instant(ms: Option<Ts>) -> serde_json::Value {
    ms.map_or(serde_json::Value::Null, |t| {
        serde_json::Value::from(format_rfc3339(t).as_str())
    })
}

pub(super) async fn status(State(app): State<App>) -> Response {
    let (parts, standbys, rules_version) = on_engine(&app, |e| {
        (
            e.partitions(),
            e.standbys(),
            e.settings().rules_version.clone(),
        )
    })
    .await
    .unwrap_or_default();
    let parts: Vec<serde_json::Value> = parts
        .iter()
        .map(|p| {
            serde_json::json!({
                "partition": p.partition,
                "next_offset": p.next_offset,
                "durable_offset": p.durable_offset,
                "customers": p.customers,
                "stream_time": instant(p.stream_time),
                "watermark": instant(p.watermark),
                "stream_time_ms": p.stream_time,
                "watermark_ms": p.watermark,
                "restored": p.restored,
                "worker": p.worker,
            })
        })
        .collect();
    let s = &app.handle.status;
    let h = app.handle.clone();
    let (routing, members) = tokio::task::spawn_blocking(move || h.routing())
        .await
        .unwrap_or_default();
    let members: Vec<serde_json::Value> = members
        .iter()
        .map(|c| serde_json::json!({"partition": c.partition, "url": c.url, "since": instant(Some(c.at))}))
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({
            "ready": s.not_ready_reason().is_none(),
            "reason": s.not_ready_reason(),
            "events": s.events.load(Ordering::Relaxed),
            "commits": s.commits.load(Ordering::Relaxed),
            "rules_version": rules_version,
            "partitions": parts,
            "standbys": standbys,
            "routing": routing,
            "members": members,
        }),
    )
}

/// `?scope=instance|group`.
#[derive(Debug, Deserialize)]
pub(super) struct Scope {
    #[serde(default)]
    scope: Option<String>,
}

pub(super) async fn report(
    State(app): State<App>,
    Query(q): Query<Scope>,
    headers: HeaderMap,
) -> Response {
    match q.scope.as_deref() {
        None | Some("instance") => {}
        Some("group") => return super::group::report(&app, &headers).await,
        Some(other) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": format!("scope={other}: use instance (this instance's partitions, the default) or group (every member's)")}),
            )
        }
    }
    let r = on_engine(&app, |e| (e.report(), e.held())).await;
    match r.and_then(|(r, held)| Some((serde_json::to_value(r).ok()?, held))) {
        Some((mut v, held)) => {
            v["scope"] = "instance".into();
            v["partitions"] = held.into();
            json(StatusCode::OK, v)
        }
        None => failed("report"),
    }
}

fn bad_id(id: &str) -> Option<Response> {
    (id.is_empty() || id.len() > 256).then(|| {
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "customer id must be 1 to 256 bytes"}),
        )
    })
}

pub(super) async fn customer(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(r) = bad_id(&id) {
        return r;
    }
    let id2 = id.clone();
    let found = on_engine(&app, move |e| {
        e.lookup(&id).map(|l| (l, e.input_topic().to_string()))
    })
    .await;
    match found {
        Some(Some((l, topic))) => match serde_json::to_value(&l.profile) {
            Ok(mut v) => {
                v["input"] = serde_json::json!({"topic": topic, "partition": l.partition, "offset": l.offset});
                v["standing"] = serde_json::to_value(&l.standing).unwrap_or_default();
                json(StatusCode::OK, v)
            }
            Err(_) => failed("encoding"),
        },
        Some(None) => super::route::elsewhere(&app, &id2, &headers, &uri).await,
        None => failed("look-up"),
    }
}

/// `/v1/customers/{id}/history`: orders and visits per day over the last 365 days of the
/// retained history (the console's chart), and when this instance saw the open warning
/// raised and when it is due.
pub(super) async fn history(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(r) = bad_id(&id) {
        return r;
    }
    let id2 = id.clone();
    let found = on_engine(&app, move |e| {
        let mut out = None;
        let mut now = None;
        e.for_each_processor(|_, p| {
            now = now.max(p.watermark());
            if out.is_none() {
                out = p.day_history(&id2);
            }
        });
        out.map(|d| (d, now))
    })
    .await;
    let Some(found) = found else {
        return failed("look-up");
    };
    let Some((days, now)) = found else {
        return super::route::elsewhere(&app, &id, &headers, &uri).await;
    };
    let last = now.map(day_of).or(days.last().map(|d| d.0)).unwrap_or(0);
    let days: Vec<serde_json::Value> = days
        .iter()
        .filter(|(d, _)| *d > last - 365 && *d <= last)
        .filter(|(_, c)| c.orders > 0 || c.visits > 0)
        .map(|(d, c)| serde_json::json!({"date": format_date(*d), "orders": c.orders, "visits": c.visits}))
        .collect();
    let raised = app.live.raised(&id);
    json(
        StatusCode::OK,
        serde_json::json!({
            "customer_id": id,
            "as_of": instant(now),
            "from": format_date(last - 364),
            "to": format_date(last),
            "days": days,
            "warning": raised.map(|r| raised_json(&r, now)),
        }),
    )
}

fn raised_json(r: &Raised, now: Option<Ts>) -> serde_json::Value {
    serde_json::json!({
        "raised_at": r.raised_at,
        "due": r.due,
        "overdue": now.is_some_and(|n| r.due_ms < n),
    })
}

/// Filters of `/v1/warnings`; empty or absent = any.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WarningFilter {
    owner: Option<String>,
    level: Option<String>,
    segment: Option<String>,
    rule: Option<String>,
}

/// One row of the inbox.
#[derive(Debug, Serialize)]
struct Row {
    customer_id: String,
    level: &'static str,
    tier: String,
    owner: Option<String>,
    segment: Option<String>,
    rules: Vec<String>,
    raised_at: Option<String>,
    due: Option<String>,
    overdue: bool,
    /// The task's status (`open`, `acknowledged`, `in_progress`, …).
    status: Option<&'static str>,
    /// The warning's id (the `event_id` of its churn_warning), for actions.
    warning_id: Option<String>,
    #[serde(skip)]
    due_ms: Ts,
}

/// An inbox row: the task's owner, times and status from the state (they survive restarts
/// and rebalances), else what this process saw of the alert.
fn row(p: &Profile, raised: Option<&Raised>, now: Option<Ts>) -> Row {
    let t = &p.warning.task;
    let task_due_ms = t.due.as_deref().and_then(crate::core::time::parse_rfc3339);
    let due_ms = task_due_ms.or(raised.map(|r| r.due_ms)).unwrap_or(Ts::MAX);
    Row {
        customer_id: p.customer_id.to_string(),
        level: p.warning.level,
        tier: p.tier.to_string(),
        owner: t
            .owner
            .as_ref()
            .or(p.facts.account_manager.as_ref())
            .map(|s| s.to_string()),
        segment: p.facts.segment.as_ref().map(|s| s.to_string()),
        rules: p
            .warning
            .reasons
            .iter()
            .map(|r| r.rule.to_string())
            .collect(),
        raised_at: t
            .raised_at
            .as_ref()
            .map(|s| s.to_string())
            .or(raised.map(|r| r.raised_at.clone())),
        due: t
            .due
            .as_ref()
            .map(|s| s.to_string())
            .or(raised.map(|r| r.due.clone())),
        overdue: !matches!(t.status, Some("done" | "dismissed"))
            && (t.overdue || (due_ms != Ts::MAX && now.is_some_and(|n| due_ms < n))),
        status: t.status,
        warning_id: t.warning_id.as_ref().map(|s| s.to_string()),
        due_ms,
    }
}

fn wanted(filter: &Option<String>, value: Option<&str>) -> bool {
    match filter.as_deref().map(str::trim) {
        None | Some("") => true,
        Some(f) => value == Some(f),
    }
}

/// `/v1/warnings`: the open (medium and high) warnings of the customers this instance
/// holds, filtered, sorted by due time (unknown due times last, then by level and id),
/// with the values each filter can take.
pub(super) async fn warnings(State(app): State<App>, Query(f): Query<WarningFilter>) -> Response {
    let found = on_engine(&app, |e| {
        let mut all = Vec::new();
        let mut now = None;
        e.for_each_processor(|_, p| {
            now = now.max(p.watermark());
            all.extend(p.open_warning_profiles());
        });
        (all, now)
    })
    .await;
    let Some((profiles, now)) = found else {
        return failed("listing warnings");
    };
    let ids: Vec<&str> = profiles.iter().map(|p| p.customer_id.as_str()).collect();
    let raised = app.live.raised_of_open(&ids);
    let rows: Vec<Row> = profiles
        .iter()
        .map(|p| row(p, raised.get(p.customer_id.as_str()), now))
        .collect();
    let facet = |get: &dyn Fn(&Row) -> Vec<String>| -> BTreeSet<String> {
        rows.iter().flat_map(get).collect()
    };
    let owners = facet(&|r| r.owner.iter().cloned().collect());
    let segments = facet(&|r| r.segment.iter().cloned().collect());
    let rules = facet(&|r| r.rules.clone());
    let mut rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| {
            wanted(&f.owner, r.owner.as_deref())
                && wanted(&f.level, Some(r.level))
                && wanted(&f.segment, r.segment.as_deref())
                && (f.rule.as_deref().is_none_or(|x| x.trim().is_empty())
                    || r.rules
                        .iter()
                        .any(|x| Some(x.as_str()) == f.rule.as_deref()))
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.due_ms, a.level, &a.customer_id).cmp(&(b.due_ms, b.level, &b.customer_id))
    });
    let overdue = rows.iter().filter(|r| r.overdue).count();
    json(
        StatusCode::OK,
        serde_json::json!({
            "as_of": instant(now),
            "count": rows.len(),
            "overdue": overdue,
            "warnings": rows,
            "owners": owners,
            "segments": segments,
            "rules": rules,
            "levels": ["high", "medium"],
        }),
    )
}

/// `/v1/timeline`: the overview's per-day series (customers per tier, open, overdue,
/// raised and cleared warnings, tier changes) since this process started.
pub(super) async fn timeline(State(app): State<App>) -> Response {
    let live = Arc::clone(&app.live);
    json(
        StatusCode::OK,
        serde_json::json!({
            "tiers": live.tier_names(),
            "days": live.series(),
            "totals": live.totals(),
        }),
    )
}

/// `/v1/alerts/stream`: server-sent events, one `alert` event per tier change, warning,
/// clearance or erasure as the service produces it. Readers that fall behind get a
/// `lagged` event with the number of alerts they missed.
pub(super) async fn stream(State(app): State<App>) -> impl IntoResponse {
    let rx = app.live.subscribe();
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        use tokio::sync::broadcast::error::RecvError;
        let ev = match rx.recv().await {
            Ok(msg) => Event::default().event("alert").data(&*msg),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(ev), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Keeps the overview's series: samples the engine a few times per second, so a
/// compressed demo clock (5 simulated days a second) still gets a point per day.
pub(super) async fn sampler(app: App) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tick.tick().await;
        let (live, h): (Arc<Live>, _) = (Arc::clone(&app.live), app.handle.clone());
        if tokio::task::spawn_blocking(move || live.sample_engine(&h))
            .await
            .is_err()
        {
            return;
        }
    }
}
