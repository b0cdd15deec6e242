//! mcpgate's benchmark harness.
//!
//! - [`client`]: MCP sessions over Streamable HTTP (JSON or SSE answers), legacy HTTP+SSE and
//!   stdio, on a bare hyper HTTP/1.1 client with one keep-alive connection per session, so the
//!   load generator itself stays cheap.
//! - [`load`]: closed- and open-loop load with HDR histograms, session set-up rate, and
//!   idle sessions with open GET streams.
//! - [`procstat`]: CPU seconds and RSS of a process from `/proc`.
//! - [`suite`]: every scenario of the benchmark plan, direct to the upstream and through the
//!   gateway in the same run, alternating, with ratios, a JSON results file and a markdown
//!   summary (`docs/benchmarks.md` explains the method).
//!
//! - [`soak`]: the bounded load test with a target killed midway (asserts that every request
//!   is answered, errors stay with the killed target, and RSS and descriptors stay flat).
//!
//! It measures; it asserts nothing about timing.

pub mod client;
pub mod load;
pub mod otlp_sink;
pub mod procstat;
pub mod soak;
pub mod sse;
pub mod suite;

/// Parses `250ms`, `2s`, `1.5s`, `1m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration `{s}`"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "us" | "µs" => n / 1e6,
        _ => return Err(format!("bad duration unit in `{s}` (use us, ms, s or m)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration `{s}`"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(super::parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(super::parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(super::parse_duration("3h").is_err());
    }
}
