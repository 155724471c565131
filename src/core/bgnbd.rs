//! BG/NBD ("Counting your customers the easy way", Fader, Hardie & Lee 2005): probability
//! that a customer is still active and expected purchases in the next `t` time units.
//!
//! Definitions follow the `lifetimes` package (BetaGeoFitter): `x` = repeat purchase
//! periods (distinct purchase days − 1), `t_x` = last − first purchase, `T` = now − first
//! purchase, all in the model's time unit.

use super::settings::{BgNbdParams, GammaGammaParams};

/// Gamma-Gamma expected value of a customer's orders given `x` repeat purchases with mean
/// value `m` (Fader, Hardie & Lee 2005; lifetimes' `conditional_expected_average_profit`):
/// a weighted mean of the population mean p·v/(q − 1) and the customer's own `m`, with
/// weight p·x/(p·x + q − 1) on `m`.
pub fn expected_order_value(g: &GammaGammaParams, x: f64, m: f64) -> f64 {
    g.p * (g.v + x * m) / (g.p * x + g.q - 1.0)
}

/// P(alive | x, t_x, T). 1 for a customer with no repeat purchase, as in lifetimes.
pub fn p_alive(p: &BgNbdParams, x: f64, t_x: f64, t: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let log_div = (p.r + x) * ((p.alpha + t) / (p.alpha + t_x)).ln() + (p.a / (p.b + x - 1.0)).ln();
    // expit(-log_div), written to stay finite for large |log_div|.
    if log_div > 0.0 {
        let e = (-log_div).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + log_div.exp())
    }
}

/// Expected purchases in the next `t` time units given (x, t_x, T).
pub fn expected_purchases(p: &BgNbdParams, t: f64, x: f64, t_x: f64, big_t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let (r, alpha, a, b) = (p.r, p.alpha, p.a, p.b);
    let ha = r + x;
    let hb = b + x;
    let hc = a + b + x - 1.0;
    let z = t / (alpha + big_t + t);
    let ln_hyp = match hyp2f1(ha, hb, hc, z).filter(|v| v.is_finite() && *v > 0.0) {
        Some(v) => v.ln(),
        // Euler's transformation: 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a,c-b;c;z).
        None => match hyp2f1(hc - ha, hc - hb, hc, z) {
            Some(v) if v > 0.0 => v.ln() + (hc - ha - hb) * (1.0 - z).ln(),
            _ => return f64::NAN,
        },
    };
    // (a+b+x-1)/(a-1) is negative when a < 1, and so is the bracket: that is correct.
    let first = (a + b + x - 1.0) / (a - 1.0);
    let second = 1.0 - (ln_hyp + (r + x) * ((alpha + big_t) / (alpha + t + big_t)).ln()).exp();
    let numerator = first * second;
    let denominator = if x > 0.0 {
        1.0 + (a / (b + x - 1.0)) * ((alpha + big_t) / (alpha + t_x)).powf(r + x)
    } else {
        1.0
    };
    numerator / denominator
}

/// Gauss hypergeometric series 2F1(a, b; c; z) for 0 ≤ z < 1, summed until a term is
/// below a relative tolerance once the terms shrink (they may grow first for large a, b).
/// `None` when it does not converge to a finite value.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) {
        return None;
    }
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    for n in 0..200_000u32 {
        let n = n as f64;
        let denom = (c + n) * (n + 1.0);
        if denom == 0.0 {
            return None;
        }
        let ratio = (a + n) * (b + n) / denom * z;
        term *= ratio;
        sum += term;
        if !sum.is_finite() {
            return None;
        }
        if term.abs() <= 1e-17 * sum.abs() && ratio.abs() < 1.0 {
            return Some(sum);
        }
        if term == 0.0 {
            return Some(sum);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDNOW: BgNbdParams = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    fn close(got: f64, want: f64) {
        let rel = ((got - want) / want).abs();
        assert!(
            rel < 1e-9,
            "got {got:.15e}, want {want:.15e} (relative error {rel:e})"
        );
    }

    #[test]
    fn paper_example() {
        close(p_alive(&CDNOW, 2.0, 30.43, 38.86), 0.726578570081);
        close(
            expected_purchases(&CDNOW, 26.0, 2.0, 30.43, 38.86),
            0.861648660602,
        );
        close(
            expected_purchases(&CDNOW, 39.0, 2.0, 30.43, 38.86),
            1.22602817477,
        );
    }

    #[test]
    fn no_repeat_purchase() {
        assert_eq!(p_alive(&CDNOW, 0.0, 0.0, 38.86), 1.0);
        close(
            expected_purchases(&CDNOW, 39.0, 0.0, 0.0, 38.86),
            0.195098052011,
        );
    }

    #[test]
    fn frequent_recent_buyer() {
        close(p_alive(&CDNOW, 20.0, 38.0, 39.0), 0.944001612829);
        close(
            expected_purchases(&CDNOW, 39.0, 20.0, 38.0, 39.0),
            13.343550342,
        );
    }

    #[test]
    fn frequent_buyer_long_gone() {
        close(p_alive(&CDNOW, 10.0, 5.0, 39.0), 2.28426795976e-06);
        close(
            expected_purchases(&CDNOW, 26.0, 10.0, 5.0, 39.0),
            1.18266845549e-05,
        );
    }

    #[test]
    fn huge_frequencies_stay_finite() {
        let p = p_alive(&CDNOW, 5000.0, 100.0, 104.0);
        assert!(p.is_finite() && (0.0..=1.0).contains(&p));
        let e = expected_purchases(&CDNOW, 4.0, 5000.0, 100.0, 104.0);
        assert!(e.is_finite() && e > 0.0, "{e}");
    }
}
