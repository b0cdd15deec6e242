use std::time::Duration;

use super::*;

fn call<'a>(target: &'a str, tool: &'a str, outcome: Outcome, ms: u64) -> Request<'a> {
    Request {
        transport: "streamable_http",
        method: "tools/call",
        target: Some(target),
        name: Some(tool),
        outcome,
        duration: Duration::from_millis(ms),
        upstream_duration: Some(Duration::from_millis(ms.saturating_sub(1))),
        bytes_in: 100,
        bytes_out: 200,
        ..Default::default()
    }
}

/// The value of the series `name{labels}` in an exposition.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The exposition with the series of each family in a fixed order (a family's series are
/// kept in a hash map, so their order varies from run to run).
fn sorted(text: &str) -> String {
    let mut out = Vec::new();
    let mut samples: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            samples.sort_unstable();
            out.append(&mut samples);
            out.push(line);
        } else {
            samples.push(line);
        }
    }
    samples.sort_unstable();
    out.append(&mut samples);
    (out.join("\n") + "\n").replace(env!("CARGO_PKG_VERSION"), "VERSION")
}

#[test]
fn tool_labels_are_capped_per_target() {
    let m = Metrics::new(&MetricsOptions {
        enabled: true,
        max_tools_per_target: 2,
    });
    for tool in ["a", "b", "c", "d", "a"] {
        m.request(&call("t1", tool, Outcome::Ok, 1));
    }
    m.request(&call("t2", "c", Outcome::Ok, 1));
    let text = m.encode();
    let calls = |target: &str, tool: &str| {
        value(
            &text,
            &format!("mcpgate_tool_calls_total{{target=\"{target}\",tool=\"{tool}\",outcome=\"ok\"}}"),
        )
    };
    assert_eq!(calls("t1", "a"), Some(2.0), "{text}");
    assert_eq!(calls("t1", "b"), Some(1.0));
    assert_eq!(calls("t1", "c"), None);
    assert_eq!(calls("t1", OTHER_LABEL), Some(2.0));
    // The cap is per target.
    assert_eq!(calls("t2", "c"), Some(1.0));
}

#[test]
fn unknown_methods_share_one_label() {
    let m = Metrics::new(&MetricsOptions::default());
    for method in ["x/one", "x/two", "ping"] {
        m.request(&Request {
            method,
            transport: "sse",
            ..Default::default()
        });
    }
    let text = m.encode();
    assert_eq!(
        value(&text, "mcpgate_mcp_requests_total{method=\"other\",outcome=\"ok\"}"),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("x/one"));
}

#[test]
fn disabled_metrics_record_nothing() {
    let m = Metrics::new(&MetricsOptions {
        enabled: false,
        ..Default::default()
    });
    m.request(&call("t", "a", Outcome::Ok, 1));
    m.session_started("sse");
    m.auth_failure("missing");
    let text = m.encode();
    assert!(!text.contains("mcpgate_mcp_requests_total{"), "{text}");
    assert!(!text.contains("mcpgate_downstream_sessions{"), "{text}");
}

/// The exposition after a fixed sequence of events, durations chosen so every bucket count
/// is deterministic. Pins names, help texts, types, units and label sets.
#[test]
fn exposition_snapshot() {
    let m = Metrics::new(&MetricsOptions::default());
    let t: Arc<str> = Arc::from("tools");
    m.session_started("streamable_http");
    m.session_started("sse");
    m.session_ended("sse");
    m.upstream_session_opened(&t);
    m.upstream_session_opened(&t);
    m.upstream_session_closed(&t);
    m.target_up(&t, true);
    m.target_up(&Arc::from("notes"), false);
    m.target_restarted(&t);
    m.auth_failure("missing");
    m.auth_failure("expired");
    m.auth_failure("missing");
    m.authorization_denied(&t, "tool");
    m.list_merge_failed("tools/list", &Arc::from("notes"));
    m.tools_rejected(&t, 2);
    m.tools_rejected(&Arc::from("notes"), 1);
    m.tools_rejected(&Arc::from("notes"), 0);
    m.rate_limited("identity");
    m.rate_limited("concurrency");
    m.upstream_retry(&t);
    m.retry_budget_exhausted(&t);
    m.circuit_open(&t, false);
    m.request(&Request {
        session: Some("s"),
        transport: "streamable_http",
        method: "initialize",
        duration: Duration::from_micros(300),
        bytes_in: 150,
        bytes_out: 400,
        ..Default::default()
    });
    m.request(&call("tools", "echo", Outcome::Ok, 3));
    m.request(&call("tools", "echo", Outcome::ToolError, 20));
    m.request(&Request {
        transport: "streamable_http",
        method: "tools/call",
        target: Some("tools"),
        name: Some("add"),
        outcome: Outcome::Timeout,
        error_code: Some(-32003),
        duration: Duration::from_secs(7),
        upstream_duration: Some(Duration::from_secs(7)),
        bytes_in: 90,
        bytes_out: 110,
        ..Default::default()
    });
    m.request(&Request {
        transport: "streamable_http",
        method: "tools/call",
        outcome: Outcome::Denied,
        error_code: Some(-32602),
        duration: Duration::from_micros(80),
        bytes_in: 90,
        bytes_out: 110,
        ..Default::default()
    });
    insta::assert_snapshot!(sorted(&m.encode()));
}
