//! `churnwatch fit`: estimates the BG/NBD and Gamma-Gamma parameters from an event
//! history by maximum likelihood, and prints them with a config snippet to paste.
//!
//! The summaries follow `lifetimes`' definitions (DOMAIN §4): x = distinct purchase days
//! − 1, t_x = last − first purchase day, T = as-of day − first purchase day, in the chosen
//! unit; the spend of a customer is the mean order value of its repeat purchase days
//! (all orders of a day together, the first purchase day left out). Refunds and events
//! after the as-of day are ignored; rejected lines are counted and skipped.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::core::event::{decode, Payload};
use crate::core::fit::{fit_bgnbd, fit_gamma_gamma, Fit, Summary};
use crate::core::settings::Limits;
use crate::core::time::{day_of, Day};

/// What was fitted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitReport {
    /// Customers with at least one order by the as-of day.
    pub customers: usize,
    /// Order events used.
    pub orders: u64,
    /// Lines that were not valid events.
    pub rejected: u64,
    /// Days per model time unit.
    pub unit_days: f64,
    /// BG/NBD r, alpha, a, b.
    pub bgnbd: FitOut,
    /// Gamma-Gamma p, q, v.
    pub gamma_gamma: FitOut,
}

/// One model's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitOut {
    /// Parameter names.
    pub names: Vec<&'static str>,
    /// Estimates.
    pub params: Vec<f64>,
    /// Standard errors.
    pub std_errors: Option<Vec<f64>>,
    /// Log-likelihood at the estimate.
    pub log_likelihood: f64,
    /// Customers the fit used.
    pub customers: usize,
}

fn out(f: Fit, names: Vec<&'static str>) -> FitOut {
    FitOut {
        names,
        params: f.params,
        std_errors: f.std_errors,
        log_likelihood: f.log_likelihood,
        customers: f.customers,
    }
}

/// Why a fit could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// Reading failed.
    #[error("cannot read {0}: {1}")]
    Io(String, io::Error),
    /// Nothing to fit.
    #[error("no orders on or before the as-of day in {0}; check --input and --as-of")]
    NoOrders(String),
}

/// Reads the history and fits both models; `as_of` is the last day included.
pub fn fit_file(
    path: &Path,
    as_of: Day,
    unit_days: f64,
    limits: &Limits,
) -> Result<FitReport, FitError> {
    let name = path.display().to_string();
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(path).map_err(|e| FitError::Io(name.clone(), e))?,
        ))
    };
    // customer → day → spend (cents)
    let mut days: HashMap<String, HashMap<Day, i64>> = HashMap::new();
    let (mut orders, mut rejected) = (0u64, 0u64);
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| FitError::Io(name.clone(), e))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(ev) = decode(&line, limits, None) else {
            rejected += 1;
            continue;
        };
        if let Payload::Order { amount_cents, .. } = ev.payload {
            let d = day_of(ev.ts);
            if d > as_of {
                continue;
            }
            orders += 1;
            *days
                .entry(ev.customer_id.to_string())
                .or_default()
                .entry(d)
                .or_default() += amount_cents;
        }
    }
    if days.is_empty() {
        return Err(FitError::NoOrders(name));
    }
    let mut rows: Vec<Summary> = days
        .into_values()
        .map(|m| {
            let mut v: Vec<(Day, i64)> = m.into_iter().collect();
            v.sort_unstable();
            let (first, last) = (v[0].0, v[v.len() - 1].0);
            let x = (v.len() - 1) as f64;
            let repeat: i64 = v[1..].iter().map(|(_, c)| c).sum();
            Summary {
                x,
                t_x: (last - first) as f64 / unit_days,
                t: (as_of - first) as f64 / unit_days,
                m: if x > 0.0 {
                    repeat as f64 / 100.0 / x
                } else {
                    0.0
                },
            }
        })
        .collect();
    // A fixed order makes the floating-point sums, and so the fit, reproducible.
    rows.sort_by(|a, b| {
        (a.x, a.t_x, a.t, a.m)
            .partial_cmp(&(b.x, b.t_x, b.t, b.m))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(FitReport {
        customers: rows.len(),
        orders,
        rejected,
        unit_days,
        bgnbd: out(fit_bgnbd(&rows), vec!["r", "alpha", "a", "b"]),
        gamma_gamma: out(fit_gamma_gamma(&rows), vec!["p", "q", "v"]),
    })
}

/// The human-readable result with a config snippet.
pub fn describe(r: &FitReport, as_of: &str) -> String {
    let mut s = format!(
        "churnwatch fit: {} customers, {} orders through {as_of} (time unit: {} days){}\n",
        r.customers,
        r.orders,
        r.unit_days,
        if r.rejected > 0 {
            format!(
                "; {} lines were not valid events and were skipped",
                r.rejected
            )
        } else {
            String::new()
        }
    );
    for (title, f) in [
        ("BG/NBD (purchase rate and drop-out)", &r.bgnbd),
        ("Gamma-Gamma (spend per purchase)", &r.gamma_gamma),
    ] {
        s += &format!("\n{title}, {} customers\n", f.customers);
        for (i, n) in f.names.iter().enumerate() {
            let se = f
                .std_errors
                .as_ref()
                .map_or("n/a".to_string(), |e| format!("{:.4}", e[i]));
            s += &format!("  {n:<6} {:>12.6}   (standard error {se})\n", f.params[i]);
        }
        s += &format!("  log-likelihood {:.4}\n", f.log_likelihood);
    }
    let b = &r.bgnbd.params;
    let g = &r.gamma_gamma.params;
    s += &format!(
        "\nPaste into your configuration:\n\n[churn_probability]\nenabled = true\nr = {:.6}\nalpha = {:.6}\na = {:.6}\nb = {:.6}\nunit_days = {:.1}\n\n[clv]\nenabled = true\np = {:.6}\nq = {:.6}\nv = {:.6}\n",
        b[0], b[1], b[2], b[3], r.unit_days, g[0], g[1], g[2]
    );
    s
}
