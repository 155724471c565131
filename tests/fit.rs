//! `churnwatch fit` on the CDNOW sample (2,357 customers; tests/data, MIT licence notice
//! beside it), converted to order events, against the published estimates.

use std::process::Command;

#[path = "support/cdnow.rs"]
mod cdnow;

fn close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        ((got - want) / want).abs() <= rel,
        "{what}: {got} vs {want} (relative tolerance {rel})"
    );
}

#[test]
fn fit_reproduces_the_published_cdnow_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let events = cdnow::events(dir.path());
    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args([
            "fit",
            "--as-of",
            "1997-09-30",
            "--unit",
            "weeks",
            "--json",
            "--input",
        ])
        .arg(&events)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["customers"], 2357);
    // BG/NBD: Fader, Hardie & Lee (2005), as reproduced by lifetimes' BetaGeoFitter on
    // CDNOW_sample with days/7 and data through 1997-09-30.
    let b = &v["bgnbd"]["params"];
    for (i, (name, want)) in [
        ("r", 0.2426),
        ("alpha", 4.4135),
        ("a", 0.7929),
        ("b", 2.4258),
    ]
    .iter()
    .enumerate()
    {
        close(b[i].as_f64().unwrap(), *want, 1e-3, name);
    }
    close(
        v["bgnbd"]["log_likelihood"].as_f64().unwrap(),
        -9582.43,
        1e-3,
        "BG/NBD log-likelihood",
    );
    // Gamma-Gamma on the 946 customers with repeat purchases: lifetimes'
    // tests/test_estimation.py, TestGammaGammaFitter.test_params_out_is_close_to_Hardie_paper,
    // expects (p, q, v) = (6.25, 3.74, 15.44) to 2 decimals (|error| < 0.015).
    assert_eq!(v["gamma_gamma"]["customers"], 946);
    let g = &v["gamma_gamma"]["params"];
    for (i, want) in [6.25, 3.74, 15.44].iter().enumerate() {
        let got = g[i].as_f64().unwrap();
        assert!(
            (got - want).abs() < 0.015,
            "gamma-gamma param {i}: {got} vs {want}"
        );
    }
    // CLV's spend half with the fitted parameters: a customer without repeat purchases is
    // expected to spend the population mean p·v/(q − 1) per order. lifetimes' quickstart
    // ("Estimating customer lifetime value using the Gamma-Gamma model") lists 35.170981
    // for those customers of the same data.
    let gg = churnwatch::core::settings::GammaGammaParams {
        p: g[0].as_f64().unwrap(),
        q: g[1].as_f64().unwrap(),
        v: g[2].as_f64().unwrap(),
    };
    close(
        churnwatch::core::bgnbd::expected_order_value(&gg, 0.0, 0.0),
        35.170981,
        1e-3,
        "population mean order value",
    );
    assert!(v["bgnbd"]["std_errors"]
        .as_array()
        .is_some_and(|a| a.len() == 4));

    // The human form ends with a snippet that is a valid configuration.
    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(["fit", "--as-of", "1997-09-30", "--input"])
        .arg(&events)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let snippet = &text[text.find("[churn_probability]").expect("snippet")..];
    let f = dir.path().join("fitted.toml");
    std::fs::write(&f, snippet).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn fit_explains_bad_arguments() {
    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(["fit", "--input", "-", "--as-of", "30/09/1997"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("write it like 1997-09-30"));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("e.jsonl");
    std::fs::write(&empty, "{\"not\":\"an event\"}\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(["fit", "--as-of", "1997-09-30", "--input"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no orders"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
