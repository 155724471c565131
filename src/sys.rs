//! Facts about this process from the operating system (used by benchmarks and, later,
//! process metrics).

/// Resident set size in bytes (Linux `/proc/self/statm`); `None` where unavailable.
pub fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_a_plausible_rss() {
        let rss = super::resident_bytes().expect("linux has /proc");
        assert!(rss > 1 << 20, "{rss}");
    }
}
