//! Metrics, the access log and readiness through the whole gateway: every MCP request is
//! counted by method and outcome and every tool call by target, tool and outcome (a tool's
//! own failure, an unknown tool, a policy denial), sessions and targets are gauged,
//! authentication failures are counted by reason, `/metrics` needs no token and can be
//! turned off or moved to a listener of its own; the access log writes one line per request
//! with the documented fields, arguments only for targets that opt in; `/readyz` honours
//! `observability.readiness.min_targets_up`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// The value of one series (`name{labels}` exactly as exposed) in an exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(url: &str) -> (StatusCode, String, String) {
    let resp = within("GET /metrics", http_client().get(url).send())
        .await
        .expect("scraped");
    let status = resp.status();
    let ct = content_type(resp.headers());
    (status, ct, resp.text().await.unwrap_or_default())
}

fn two_targets() -> Vec<String> {
    vec![stdio_target("ex", &[], ""), stdio_target("ex-b", &[], "")]
}

#[tokio::test]
async fn every_request_and_tool_call_is_counted_by_outcome() {
    let gw = Gateway::start(&config("", &two_targets())).await;
    let c = gw.connect().await;
    for i in 0..3 {
        c.call("ex_echo", json!({ "message": format!("m{i}") })).await;
    }
    let failed = c.call("ex_fail", json!({ "message": "no" })).await;
    assert_eq!(failed["isError"], true, "{failed}");
    c.error("tools/call", json!({ "name": "ex_nope", "arguments": {} }))
        .await;
    c.result("tools/list", json!({})).await;
    c.result("ping", json!({})).await;

    let (status, ct, text) = scrape(&format!("{}/metrics", gw.base())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let v = |name: &str| series(&text, name);
    assert_eq!(
        v(r#"mcpgate_tool_calls_total{target="ex",tool="echo",outcome="ok"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        v(r#"mcpgate_tool_calls_total{target="ex",tool="fail",outcome="tool_error"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_tool_call_duration_seconds_count{target="ex",tool="echo"}"#),
        Some(3.0)
    );
    assert_eq!(
        v(r#"mcpgate_tool_call_duration_seconds_count{target="ex",tool="fail"}"#),
        Some(1.0)
    );
    // The unknown tool has no target: counted as a request, not as a tool call.
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="tools/call",outcome="invalid_request"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="tools/call",outcome="ok"}"#),
        Some(3.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="tools/call",outcome="tool_error"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="tools/list",outcome="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="ping",outcome="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="initialize",outcome="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_request_duration_seconds_count{method="tools/call"}"#),
        Some(5.0)
    );
    // Upstream time is measured for the four calls that reached the upstream.
    assert_eq!(
        v(r#"mcpgate_upstream_request_duration_seconds_count{target="ex",method="tools/call"}"#),
        Some(4.0)
    );
    assert!(v(r#"mcpgate_mcp_request_bytes_total{method="tools/call"}"#).unwrap() > 0.0);
    assert!(v(r#"mcpgate_mcp_response_bytes_total{method="tools/call"}"#).unwrap() > 0.0);
    assert_eq!(
        v(r#"mcpgate_downstream_sessions{transport="streamable_http"}"#),
        Some(1.0)
    );
    assert_eq!(v(r#"mcpgate_target_up{target="ex"}"#), Some(1.0));
    assert_eq!(v(r#"mcpgate_target_up{target="ex-b"}"#), Some(1.0));
    // The discovery session and this client's own session with `ex`.
    assert_eq!(v(r#"mcpgate_upstream_sessions{target="ex"}"#), Some(2.0));
    assert!(text.ends_with("# EOF\n"));
    // Never a session id or an argument in a label.
    assert!(!text.contains(c.session.as_deref().unwrap()));
    assert!(!text.contains("m1"));

    // The session ends: its gauge and its upstream session go down.
    assert_eq!(c.delete().await, StatusCode::OK);
    let url = format!("{}/metrics", gw.base());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, _, text) = scrape(&url).await;
        let sessions = series(&text, r#"mcpgate_downstream_sessions{transport="streamable_http"}"#);
        let upstream = series(&text, r#"mcpgate_upstream_sessions{target="ex"}"#);
        if sessions == Some(0.0) && upstream == Some(1.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sessions:?} {upstream:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn legacy_sse_requests_are_counted_on_their_transport() {
    let gw = Gateway::start(&config("", &[stdio_target("ex", &[], "")])).await;
    let c = gw.connect_legacy().await;
    let id = json!(7);
    c.post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}}}))
        .await;
    let url = format!("{}/metrics", gw.base());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, _, text) = scrape(&url).await;
        let calls = series(
            &text,
            r#"mcpgate_tool_calls_total{target="ex",tool="echo",outcome="ok"}"#,
        );
        if calls == Some(1.0) {
            assert_eq!(
                series(&text, r#"mcpgate_downstream_sessions{transport="sse"}"#),
                Some(1.0)
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const ALICE: &str = "test-key-alice";
const ALICE_HASH: &str = "ad77f83d5d5b9a3b738cfc75982ec0460450b94aa1bac0f16451a1142c89c4c8";

async fn post_as(gw: &Gateway, key: Option<&str>, session: Option<&str>, body: Value) -> reqwest::Response {
    let mut r = http_client()
        .post(gw.mcp_url())
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .json(&body);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(s) = session {
        r = r.header("mcp-session-id", s).header("mcp-protocol-version", LATEST);
    }
    within("a POST", r.send()).await.expect("sent")
}

#[tokio::test]
async fn denials_and_authentication_failures_are_counted_and_metrics_need_no_token() {
    let head = format!(
        "auth:\n  hide_denied: false\n  api_keys:\n    - {{hash: {ALICE_HASH}, subject: alice, claims: {{groups: [dev]}}}}\npolicies:\n  - name: echo-only\n    allow: {{tools: [\"ex:echo\"]}}\n    when: {{claims: {{groups: {{contains: dev}}}}}}\n"
    );
    let gw = Gateway::start(&config(&head, &[stdio_target("ex", &[], "")])).await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert_eq!(
        post_as(&gw, None, None, init.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_as(&gw, Some("wrong-key"), None, init.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = post_as(&gw, Some(ALICE), None, init).await;
    let sid = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let call = |name: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {"a": 1, "b": 2}}});
    let denied: Value = post_as(&gw, Some(ALICE), Some(&sid), call("add"))
        .await
        .json()
        .await
        .unwrap();
    let unknown: Value = post_as(&gw, Some(ALICE), Some(&sid), call("nope"))
        .await
        .json()
        .await
        .unwrap();
    // The client cannot tell a denial from an unknown tool; the metrics can.
    assert_eq!(denied["error"]["code"], unknown["error"]["code"]);
    assert_eq!(denied["error"]["message"], "Unknown tool: add");

    // No token needed for /metrics.
    let (status, _, text) = scrape(&format!("{}/metrics", gw.base())).await;
    assert_eq!(status, StatusCode::OK);
    let v = |name: &str| series(&text, name);
    assert_eq!(
        v(r#"mcpgate_auth_failures_total{reason="missing"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(v(r#"mcpgate_auth_failures_total{reason="unknown_api_key"}"#), Some(1.0));
    assert_eq!(
        v(r#"mcpgate_authorization_denials_total{target="ex",kind="tool"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_tool_calls_total{target="ex",tool="add",outcome="denied"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="tools/call",outcome="denied"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mcpgate_mcp_requests_total{method="tools/call",outcome="invalid_request"}"#),
        Some(1.0)
    );
    // A denied call never reached the upstream.
    assert_eq!(
        v(r#"mcpgate_upstream_request_duration_seconds_count{target="ex",method="tools/call"}"#),
        None
    );
}

#[tokio::test]
async fn metrics_can_be_turned_off_or_moved_to_their_own_listener() {
    let off = Gateway::start(&config(
        "observability:\n  metrics: {enabled: false}\n",
        &[stdio_target("ex", &[], "")],
    ))
    .await;
    let (status, _, _) = scrape(&format!("{}/metrics", off.base())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let moved = Gateway::start(&config(
        "observability:\n  metrics: {address: '127.0.0.1:1', path: /prom}\n",
        &[stdio_target("ex", &[], "")],
    ))
    .await;
    for path in ["/metrics", "/prom"] {
        let (status, _, _) = scrape(&format!("{}{path}", moved.base())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} on the main listener");
    }
    // What `mcpgate run` does with `observability.metrics.address`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(mcpgate_http::serve_metrics(
        listener,
        moved.core.clone(),
        std::future::pending(),
    ));
    moved.connect().await.call("echo", json!({"message": "x"})).await;
    let (status, _, text) = scrape(&format!("http://{at}/prom")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        series(
            &text,
            r#"mcpgate_tool_calls_total{target="ex",tool="echo",outcome="ok"}"#
        ),
        Some(1.0),
        "{text}"
    );
    let ready = within("GET /readyz", http_client().get(format!("http://{at}/readyz")).send())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let mcp = within("POST /mcp", http_client().post(format!("http://{at}/mcp")).send())
        .await
        .unwrap();
    assert_eq!(
        mcp.status(),
        StatusCode::NOT_FOUND,
        "the metrics listener serves no MCP"
    );
}

/// Reads the access log until it has `n` lines.
async fn log_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} lines: {text}",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn access_log_has_one_json_line_per_request_with_arguments_only_where_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let head = format!(
        "observability:\n  access_log: {{enabled: true, format: json, output: {}}}\n",
        q(path.to_str().unwrap())
    );
    let targets = [
        stdio_target("ex", &[], "    log_arguments: true\n    log_results: true\n"),
        stdio_target("ex-b", &[], ""),
    ];
    let gw = Gateway::start(&config(&head, &targets)).await;
    let c = gw.connect().await;
    c.call("ex_echo", json!({"message": "visible-argument"})).await;
    c.call("ex-b_echo", json!({"message": "hidden-argument"})).await;
    c.error(
        "tools/call",
        json!({"name": "ex_nope", "arguments": {"message": "never"}}),
    )
    .await;
    // initialize + three calls; notifications are not requests.
    let lines = log_lines(&path, 4).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let v: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let sid = c.session.clone().unwrap();

    assert_eq!(v[0]["method"], "initialize");
    assert_eq!(v[0]["session"], sid);
    assert_eq!(v[0]["client_name"], "mcpgate-integration-tests");
    assert_eq!(v[0]["client_version"], "1.0");

    let first = &v[1];
    for key in ["ts", "duration_ms", "upstream_ms", "bytes_in", "bytes_out"] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    assert!(first["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["session"], sid);
    assert_eq!(first["transport"], "streamable_http");
    assert_eq!(first["client_name"], "mcpgate-integration-tests");
    assert_eq!(first["method"], "tools/call");
    assert_eq!(first["target"], "ex");
    assert_eq!(first["tool"], "echo");
    assert_eq!(first["outcome"], "ok");
    assert!(first.get("error_code").is_none());
    assert_eq!(first["arguments"], json!({"message": "visible-argument"}));
    assert!(first["result"]["content"].is_array(), "{first}");
    assert!(first["bytes_in"].as_u64().unwrap() > 50);
    assert!(first["duration_ms"].as_f64().unwrap() >= first["upstream_ms"].as_f64().unwrap());

    let second = &v[2];
    assert_eq!(
        (second["target"].as_str(), second["tool"].as_str()),
        (Some("ex-b"), Some("echo"))
    );
    assert!(
        second.get("arguments").is_none() && second.get("result").is_none(),
        "{second}"
    );
    assert!(!lines[2].contains("hidden-argument"));

    let third = &v[3];
    assert_eq!(third["outcome"], "invalid_request");
    assert_eq!(third["error_code"], -32602);
    assert!(
        third.get("target").is_none() && third.get("upstream_ms").is_none(),
        "{third}"
    );
    assert!(!lines[3].contains("never"));
    // No subject without authentication.
    assert!(v.iter().all(|l| l.get("subject").is_none()));
}

#[tokio::test]
async fn access_log_text_format_is_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let head = format!(
        "observability:\n  access_log: {{enabled: true, format: text, output: {}}}\n",
        q(path.to_str().unwrap())
    );
    let gw = Gateway::start(&config(&head, &[stdio_target("ex", &[], "")])).await;
    let c = gw.connect().await;
    c.call("echo", json!({"message": "x"})).await;
    let lines = log_lines(&path, 2).await;
    let line = &lines[1];
    assert!(line.contains(" tools/call ok target=ex tool=echo duration="), "{line}");
    assert!(
        line.contains(&format!(" session={} ", c.session.as_deref().unwrap())),
        "{line}"
    );
    assert!(line.contains(" client=mcpgate-integration-tests/1.0"), "{line}");
    assert!(!line.contains("message"), "arguments are not logged by default: {line}");
}

#[tokio::test]
async fn readyz_requires_the_configured_minimum_of_targets_up() {
    let targets = |_: ()| {
        vec![
            stdio_target("ex", &[], ""),
            "  - name: dead\n    stdio: {command: /nonexistent/mcp-server}\n".to_string(),
        ]
    };
    let readyz = |gw: &Gateway| {
        let url = format!("{}/readyz", gw.base());
        async move {
            let r = within("GET /readyz", http_client().get(url).send()).await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let one = Gateway::start_unsettled(&config(
        "observability:\n  readiness: {min_targets_up: 1}\n",
        &targets(()),
    ))
    .await;
    one.wait_state("ex", "up").await;
    let (status, body) = readyz(&one).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["ready"].as_bool(), body["targets_up"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(body["min_targets_up"], 1);
    assert_eq!(body["config"]["loaded"], true);

    let two = Gateway::start_unsettled(&config(
        "observability:\n  readiness: {min_targets_up: 2}\n",
        &targets(()),
    ))
    .await;
    two.wait_state("ex", "up").await;
    let (status, body) = readyz(&two).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["targets_up"], 1);
}
