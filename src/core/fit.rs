//! Maximum-likelihood fits of the BG/NBD purchase model (Fader, Hardie & Lee 2005,
//! "Counting your customers the easy way") and the Gamma-Gamma spend model (Fader, Hardie
//! & Lee 2005, "RFM and CLV: using iso-value curves"), from per-customer summaries.
//!
//! The optimiser is a plain Nelder–Mead simplex on the logarithms of the parameters, which
//! keeps them positive without constraints. Both likelihoods are smooth and have three or
//! four parameters, so a derivative-free simplex converges reliably, and it avoids a
//! dependency for about sixty lines. Standard errors come from a central-difference
//! Hessian of the negative log-likelihood at the optimum.

/// ln Γ(x) for x > 0 (libm's lgamma: the C library's algorithm, ~1 ulp).
fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// One customer's summary, in the model's time unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Repeat purchases: distinct purchase days − 1.
    pub x: f64,
    /// Time of the last purchase since the first (recency).
    pub t_x: f64,
    /// Time since the first purchase (age).
    pub t: f64,
    /// Mean spend of the repeat purchases (0 without any).
    pub m: f64,
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Parameters, in the model's order.
    pub params: Vec<f64>,
    /// Standard errors (`None` where the Hessian was not invertible).
    pub std_errors: Option<Vec<f64>>,
    /// Log-likelihood at the optimum.
    pub log_likelihood: f64,
    /// Customers the fit used.
    pub customers: usize,
}

/// Sum of log(e^a + e^b) without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// BG/NBD log-likelihood of `(r, alpha, a, b)` (eq. 6 of the paper).
pub fn bgnbd_log_likelihood(p: &[f64], rows: &[Summary]) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    if p.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return f64::NEG_INFINITY;
    }
    let (lg_r, lg_b, lg_ab, ln_alpha) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b), alpha.ln());
    rows.iter()
        .map(|c| {
            let x = c.x;
            let a1 = ln_gamma(r + x) - lg_r + r * ln_alpha;
            let a2 = lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x);
            let a3 = -(r + x) * (alpha + c.t).ln();
            let tail = if x > 0.0 {
                let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln();
                log_add(a3, a4)
            } else {
                a3
            };
            a1 + a2 + tail
        })
        .sum()
}

/// Gamma-Gamma log-likelihood of `(p, q, v)` over customers with repeat purchases.
pub fn gamma_gamma_log_likelihood(p: &[f64], rows: &[Summary]) -> f64 {
    let (pp, q, v) = (p[0], p[1], p[2]);
    if p.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return f64::NEG_INFINITY;
    }
    rows.iter()
        .filter(|c| c.x > 0.0 && c.m > 0.0)
        .map(|c| {
            let px = pp * c.x;
            ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
                + q * v.ln()
                + (px - 1.0) * c.m.ln()
                + px * c.x.ln()
                - (px + q) * (c.x * c.m + v).ln()
        })
        .sum()
}

/// Minimises `f` from `x0` with the Nelder–Mead simplex; returns the best point.
pub fn nelder_mead(
    f: &dyn Fn(&[f64]) -> f64,
    x0: &[f64],
    max_iter: usize,
    tol: f64,
) -> (Vec<f64>, f64) {
    let n = x0.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), f(x0)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += if x[i].abs() > 1e-3 {
            0.1 * x[i].abs().max(0.5)
        } else {
            0.5
        };
        let fx = f(&x);
        simplex.push((x, fx));
    }
    let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
    for _ in 0..max_iter {
        simplex.sort_by(|a, b| key(a.1).total_cmp(&key(b.1)));
        let (best, worst) = (key(simplex[0].1), key(simplex[n].1));
        if (worst - best).abs() <= tol * (best.abs() + tol) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / n as f64)
            .collect();
        let at = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (w - c))
                .collect()
        };
        let xr = at(-1.0);
        let fr = key(f(&xr));
        if fr < best {
            let xe = at(-2.0);
            let fe = key(f(&xe));
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < key(simplex[n - 1].1) {
            simplex[n] = (xr, fr);
        } else {
            let xc = if fr < worst { at(-0.5) } else { at(0.5) };
            let fc = key(f(&xc));
            if fc < worst.min(fr) {
                simplex[n] = (xc, fc);
            } else {
                let x_best = simplex[0].0.clone();
                for item in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> = x_best
                        .iter()
                        .zip(&item.0)
                        .map(|(b, v)| b + 0.5 * (v - b))
                        .collect();
                    let fx = key(f(&x));
                    *item = (x, fx);
                }
            }
        }
    }
    simplex.sort_by(|a, b| key(a.1).total_cmp(&key(b.1)));
    let (x, fx) = simplex.swap_remove(0);
    (x, fx)
}

/// Inverse of a small symmetric matrix by Gauss–Jordan elimination with pivoting.
fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    for col in 0..n {
        let piv = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        let d = a[col][col];
        for v in &mut a[col] {
            *v /= d;
        }
        for r in 0..n {
            if r != col {
                let factor = a[r][col];
                if factor != 0.0 {
                    let pivot_row = a[col].clone();
                    for (v, p) in a[r].iter_mut().zip(pivot_row) {
                        *v -= factor * p;
                    }
                }
            }
        }
    }
    Some(a.into_iter().map(|r| r[n..].to_vec()).collect())
}

/// Standard errors from the inverse Hessian of `negll` at `x`.
fn std_errors(negll: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Option<Vec<f64>> {
    let n = x.len();
    let h: Vec<f64> = x.iter().map(|v| 1e-4 * v.abs().max(1e-3)).collect();
    let f = |d: &[(usize, f64)]| {
        let mut y = x.to_vec();
        for (i, s) in d {
            y[*i] += s;
        }
        negll(&y)
    };
    let mut hess = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let v = if i == j {
                (f(&[(i, h[i])]) - 2.0 * f(&[]) + f(&[(i, -h[i])])) / (h[i] * h[i])
            } else {
                (f(&[(i, h[i]), (j, h[j])])
                    - f(&[(i, h[i]), (j, -h[j])])
                    - f(&[(i, -h[i]), (j, h[j])])
                    + f(&[(i, -h[i]), (j, -h[j])]))
                    / (4.0 * h[i] * h[j])
            };
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    let inv = invert(&hess)?;
    (0..n)
        .map(|i| {
            let v = inv[i][i];
            (v.is_finite() && v > 0.0).then(|| v.sqrt())
        })
        .collect()
}

fn fit(ll: fn(&[f64], &[Summary]) -> f64, rows: &[Summary], start: &[f64], used: usize) -> Fit {
    let neg_log = |z: &[f64]| {
        let p: Vec<f64> = z.iter().map(|v| v.exp()).collect();
        let v = -ll(&p, rows);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let z0: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    // Restarting from the optimum lets the simplex rebuild around it (standard practice).
    let (mut z, mut fz) = nelder_mead(&neg_log, &z0, 5000, 1e-14);
    for _ in 0..3 {
        let (z2, f2) = nelder_mead(&neg_log, &z, 5000, 1e-14);
        let done = (fz - f2).abs() < 1e-10;
        z = z2;
        fz = f2;
        if done {
            break;
        }
    }
    let params: Vec<f64> = z.iter().map(|v| v.exp()).collect();
    let negll = |p: &[f64]| -ll(p, rows);
    Fit {
        std_errors: std_errors(&negll, &params),
        log_likelihood: -fz,
        params,
        customers: used,
    }
}

/// Fits BG/NBD `(r, alpha, a, b)` to the summaries.
pub fn fit_bgnbd(rows: &[Summary]) -> Fit {
    fit(
        bgnbd_log_likelihood,
        rows,
        &[1.0, 1.0, 1.0, 1.0],
        rows.len(),
    )
}

/// Fits Gamma-Gamma `(p, q, v)` to the customers with repeat purchases.
pub fn fit_gamma_gamma(rows: &[Summary]) -> Fit {
    let used = rows.iter().filter(|c| c.x > 0.0 && c.m > 0.0).count();
    fit(gamma_gamma_log_likelihood, rows, &[1.0, 1.0, 1.0], used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_the_minimum_of_a_bowl() {
        let f = |x: &[f64]| (x[0] - 3.0).powi(2) + 10.0 * (x[1] + 1.0).powi(2);
        let (x, fx) = nelder_mead(&f, &[0.0, 0.0], 2000, 1e-14);
        assert!(
            (x[0] - 3.0).abs() < 1e-5 && (x[1] + 1.0).abs() < 1e-5 && fx < 1e-9,
            "{x:?}"
        );
    }

    #[test]
    fn inverse_of_a_known_matrix() {
        let inv = invert(&[vec![4.0, 7.0], vec![2.0, 6.0]]).unwrap();
        let want = [[0.6, -0.7], [-0.2, 0.4]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((inv[i][j] - want[i][j]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn bgnbd_likelihood_of_a_single_customer_matches_the_closed_form() {
        // x = 0: L = (alpha / (alpha + T))^r, because the B-terms cancel.
        let p = [0.243, 4.414, 0.793, 2.426];
        let ll = bgnbd_log_likelihood(
            &p,
            &[Summary {
                x: 0.0,
                t_x: 0.0,
                t: 38.86,
                m: 0.0,
            }],
        );
        let want = 0.243 * (4.414f64 / (4.414 + 38.86)).ln();
        assert!((ll - want).abs() < 1e-12, "{ll} vs {want}");
    }
}
