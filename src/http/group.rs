//! The whole group's population report (`/v1/report?scope=group`): scatter-gather over
//! the members the members topic names, in two rounds so that the figures equal one
//! instance holding every partition. Round one collects each member's population
//! sketches (`GET /v1/report/population`) and merges them; round two asks each member for
//! its report sums with customers ranked among that merged population
//! (`POST /v1/report/sums`), and the merged sums make the report. A member that does not
//! answer is named in the response, and so are partitions no answering member holds:
//! never a silently partial report.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::api::{json, with_instance};
use super::route::call;
use super::App;
use crate::core::analytics::{Population, PopulationWire};
use crate::core::report::ReportSums;
use crate::core::settings::AnalyticsSettings;
use crate::core::time::Ts;

/// A member's population (round one).
#[derive(Debug, Serialize, Deserialize)]
pub struct PopulationPart {
    /// Partitions it covers.
    pub partitions: Vec<i32>,
    /// Its sketches (`None` with analytics off or no partition).
    pub population: Option<PopulationWire>,
}

/// What round two asks.
#[derive(Debug, Serialize, Deserialize)]
pub struct SumsRequest {
    /// The instant the report is for.
    pub as_of_ms: Ts,
    /// The group's population to rank customers among.
    pub population: Option<PopulationWire>,
}

/// A member's sums (round two).
#[derive(Debug, Serialize, Deserialize)]
pub struct SumsPart {
    /// Partitions it covers.
    pub partitions: Vec<i32>,
    /// Its sums.
    pub sums: ReportSums,
    /// The rule set it runs (members of one group should run the same file; the report
    /// says when they do not).
    #[serde(default)]
    pub rules_version: String,
}

/// `GET /v1/report/population`.
pub(super) async fn population(State(app): State<App>) -> Response {
    match with_instance(&app, |e| PopulationPart {
        partitions: e.held(),
        population: e.population_wire(),
    })
    .await
    {
        Some(p) => json(StatusCode::OK, serde_json::to_value(p).unwrap_or_default()),
        None => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "population failed"}),
        ),
    }
}

fn group_population(
    analytics: Option<AnalyticsSettings>,
    parts: &[Option<PopulationWire>],
) -> Result<Option<Population>, String> {
    let Some(a) = analytics else {
        return Ok(None);
    };
    let mut pop = Population::with_cuts(a.relative_accuracy, a.cuts);
    for w in parts.iter().flatten() {
        pop.add_wire(w).map_err(|e| e.to_string())?;
    }
    Ok(Some(pop))
}

/// `POST /v1/report/sums`.
pub(super) async fn sums(State(app): State<App>, body: Bytes) -> Response {
    let req: SumsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": format!("body: {e}")}),
            )
        }
    };
    let r = with_instance(&app, move |e| {
        let pop = group_population(e.settings().analytics, &[req.population])?;
        Ok::<_, String>(SumsPart {
            partitions: e.held(),
            sums: e.report_sums(req.as_of_ms, pop.as_ref()),
            rules_version: e.settings().rules_version.clone(),
        })
    })
    .await;
    match r {
        Some(Ok(p)) => json(StatusCode::OK, serde_json::to_value(p).unwrap_or_default()),
        Some(Err(e)) => json(StatusCode::CONFLICT, serde_json::json!({"error": e})),
        None => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "sums failed"}),
        ),
    }
}

async fn ask<T: for<'de> Deserialize<'de>>(
    method: Method,
    url: String,
    auth: Option<&axum::http::HeaderValue>,
    body: Option<Vec<u8>>,
) -> Result<T, String> {
    match call(method, &url, auth, body).await {
        Ok((StatusCode::OK, _, bytes)) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
        Ok((status, _, bytes)) => Err(format!("{status}: {}", String::from_utf8_lossy(&bytes))),
        Err(e) => Err(e),
    }
}

/// `GET /v1/report?scope=group`.
pub(super) async fn report(app: &App, headers: &HeaderMap) -> Response {
    let h = app.handle.clone();
    let (routing, claims) = tokio::task::spawn_blocking(move || h.routing())
        .await
        .unwrap_or_default();
    if routing != "on" {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": format!("scope=group needs the members topic (routing is {routing}); see README \"Scaling out\"")}),
        );
    }
    let Some((me, input_partitions, alpha, as_of, own_part, own_rules)) = with_instance(app, |e| {
        (
            e.advertised_url(),
            e.input_partitions(),
            e.settings().analytics,
            e.report_as_of(),
            PopulationPart {
                partitions: e.held(),
                population: e.population_wire(),
            },
            e.settings().rules_version.clone(),
        )
    })
    .await
    else {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "report failed"}),
        );
    };
    let others: BTreeSet<String> = claims
        .iter()
        .map(|c| c.url.clone())
        .filter(|u| *u != me && !u.is_empty())
        .collect();
    let auth = headers.get(header::AUTHORIZATION);
    // Round one: every member's population.
    let mut answered: Vec<(String, Vec<i32>, String)> =
        vec![(me.clone(), own_part.partitions.clone(), own_rules.clone())];
    let mut missing: Vec<serde_json::Value> = Vec::new();
    let mut pops = vec![own_part.population];
    let mut reached: Vec<String> = Vec::new();
    for url in &others {
        match ask::<PopulationPart>(
            Method::GET,
            format!("{url}/v1/report/population"),
            auth,
            None,
        )
        .await
        {
            Ok(p) => {
                pops.push(p.population);
                reached.push(url.clone());
            }
            Err(e) => missing.push(serde_json::json!({"url": url, "error": e})),
        }
    }
    let pop = match group_population(alpha, &pops) {
        Ok(p) => p,
        Err(e) => return json(StatusCode::CONFLICT, serde_json::json!({"error": e})),
    };
    // Round two: every member's sums, ranked among the group.
    let request = SumsRequest {
        as_of_ms: as_of,
        population: pop.as_ref().map(|p| p.wire()),
    };
    let body = serde_json::to_vec(&request).unwrap_or_default();
    let pop_for_me = pop.clone();
    let Some(mut total) =
        with_instance(app, move |e| e.report_sums(as_of, pop_for_me.as_ref())).await
    else {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "report failed"}),
        );
    };
    for url in reached {
        match ask::<SumsPart>(
            Method::POST,
            format!("{url}/v1/report/sums"),
            auth,
            Some(body.clone()),
        )
        .await
        {
            Ok(p) => {
                total.merge(&p.sums);
                answered.push((url, p.partitions, p.rules_version));
            }
            Err(e) => missing.push(serde_json::json!({"url": url, "error": e})),
        }
    }
    let covered: BTreeSet<i32> = answered
        .iter()
        .flat_map(|(_, p, _)| p.iter().copied())
        .collect();
    let uncovered: Vec<i32> = (0..input_partitions)
        .filter(|p| !covered.contains(p))
        .collect();
    let Some(settings) = with_instance(app, |e| std::sync::Arc::clone(e.settings())).await else {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "report failed"}),
        );
    };
    let mut v = serde_json::to_value(total.finish(&settings)).unwrap_or_default();
    v["scope"] = "group".into();
    v["as_of_ms"] = as_of.into();
    v["members"] = answered
        .iter()
        .map(|(u, p, r)| serde_json::json!({"url": u, "partitions": p, "rules_version": r}))
        .collect::<Vec<_>>()
        .into();
    // Sums under different rule sets do not add up to one population's report: say so.
    v["rules_versions_agree"] = answered.iter().all(|(_, _, r)| *r == own_rules).into();
    v["missing_members"] = missing.into();
    v["missing_partitions"] = uncovered.clone().into();
    v["complete"] = (v["missing_members"]
        .as_array()
        .is_some_and(|m| m.is_empty())
        && uncovered.is_empty())
    .into();
    json(StatusCode::OK, v)
}
