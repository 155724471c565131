//! The CDNOW sample (tests/data/CDNOW_sample.txt, from lifetimes; licence beside it) as
//! churnwatch order events, for the tests that check churnwatch against lifetimes.
#![allow(dead_code)]

/// The sample's text: master id, sample customer index, date (YYYYMMDD), CDs, dollars.
pub fn sample() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/CDNOW_sample.txt"
    ))
    .unwrap()
}

/// Writes the sample as order events (JSONL, in the file's order: by customer, then date)
/// to `dir/cdnow.jsonl` and returns the path. Customer id = the sample index ("0001"),
/// event time = noon UTC of the date, amount = the dollar value.
pub fn events(dir: &std::path::Path) -> std::path::PathBuf {
    let mut out = String::new();
    for (i, l) in sample().lines().enumerate() {
        let p: Vec<&str> = l.split_whitespace().collect();
        if p.len() < 5 {
            continue;
        }
        let d = p[2];
        out += &format!(
            "{{\"event_id\":\"l{i}\",\"customer_id\":\"{}\",\"type\":\"order\",\"ts\":\"{}-{}-{}T12:00:00Z\",\"amount\":{}}}\n",
            p[1],
            &d[..4],
            &d[4..6],
            &d[6..],
            p[4]
        );
    }
    let path = dir.join("cdnow.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}
