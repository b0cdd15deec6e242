//! Failure isolation: a target that is down, hangs, answers garbage or crashes is left out
//! of lists and its tools fail with a clear JSON-RPC error while the other targets keep
//! working; a crashed stdio server is restarted; an expired upstream session is
//! re-established.

use std::time::Duration;

use mcpgate_example_server::{Fault, Options};
use serde_json::{Value, json};

use crate::common::*;

/// The gateway's errors about a target name it in `data.target` or in the message.
fn assert_names_target(e: &Value, target: &str) {
    let msg = e["message"].as_str().unwrap_or("");
    assert!(
        e["data"]["target"] == target || msg.contains(target),
        "the error does not say which target failed: {e}"
    );
}

async fn healthy_call(c: &Client) {
    assert_eq!(c.call_text("ok_echo", json!({ "message": "fine" })).await, "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_is_left_out_and_its_tools_fail_clearly() {
    let ok = named_fixture("ok").await;
    let down = dead_url().await;
    let gw = Gateway::start_unsettled(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("down", &down, "    connect_timeout: 2s\n"),
            sse_target("gone", &down.replace("/mcp", "/sse"), "    connect_timeout: 2s\n"),
        ],
    ))
    .await;
    gw.wait_state("ok", "up").await;
    gw.wait_state("down", "down").await;
    gw.wait_state("gone", "down").await;
    let c = gw.connect().await;
    let names = c.tool_names().await;
    assert!(names.iter().all(|n| n.starts_with("ok_")), "{names:?}");
    assert_eq!(names.len(), 12);
    healthy_call(&c).await;

    let e = c
        .error(
            "tools/call",
            json!({ "name": "down_echo", "arguments": { "message": "x" } }),
        )
        .await;
    assert_eq!(e["code"], -32001, "a down target's tool fails as unavailable: {e}");
    assert_names_target(&e, "down");
    healthy_call(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_hangs_times_out_while_others_answer() {
    let ok = named_fixture("ok").await;
    let hang = fixture(Options {
        name: "hang".into(),
        faults: vec![Fault::Hang],
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("hang", &hang.mcp_url(), "    request_timeout: 700ms\n"),
            stdio_target("stuck", &["--fault", "hang"], "    request_timeout: 700ms\n"),
        ],
    ))
    .await;
    let c = gw.connect().await;
    // Lists still work (only tools/call hangs).
    assert_eq!(c.tool_names().await.len(), 36);
    for t in ["hang", "stuck"] {
        let call = async {
            let resp = c
                .request(
                    "tools/call",
                    json!({ "name": format!("{t}_echo"), "arguments": { "message": "x" } }),
                )
                .await;
            (resp, tokio::time::Instant::now())
        };
        // While it hangs, the other target answers.
        let other = async {
            healthy_call(&c).await;
            tokio::time::Instant::now()
        };
        let started = tokio::time::Instant::now();
        let ((resp, failed_at), healthy_at) = tokio::join!(call, other);
        let e = &resp["error"];
        assert_eq!(e["code"], -32003, "{t}: a timeout error: {resp}");
        assert_names_target(e, t);
        assert!(
            failed_at - started >= Duration::from_millis(650),
            "the request timeout was honoured"
        );
        assert!(
            healthy_at < failed_at,
            "the healthy target answered while the other one hung"
        );
    }
    // The hung request was cancelled upstream.
    eventually("the upstream to be told", || hang.stats().snapshot().cancellations == 1).await;
    healthy_call(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_starts_too_slowly_is_left_out_of_lists() {
    let ok = named_fixture("ok").await;
    let slow = fixture(Options {
        name: "slow".into(),
        faults: vec![Fault::SlowStart(Duration::from_secs(20))],
        ..Default::default()
    })
    .await;
    let gw = Gateway::start_unsettled(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("slow", &slow.mcp_url(), "    connect_timeout: 300ms\n"),
        ],
    ))
    .await;
    gw.wait_state("ok", "up").await;
    gw.wait_state("slow", "down").await;
    let c = gw.connect().await;
    let names = c.tool_names().await;
    assert!(
        names.iter().all(|n| n.starts_with("ok_")) && names.len() == 12,
        "{names:?}"
    );
    let e = c
        .error("tools/call", json!({ "name": "slow_echo", "arguments": {} }))
        .await;
    assert_eq!(e["code"], -32001, "{e}");
    healthy_call(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_answers_garbage_is_left_out_or_fails_its_calls_clearly() {
    let ok = named_fixture("ok").await;
    // Garbage from the first byte: the target never comes up.
    let junk_url = garbage_server().await;
    // Garbage only for tools/call.
    let bad_calls = fixture(Options {
        name: "bad".into(),
        faults: vec![Fault::Garbage],
        ..Default::default()
    })
    .await;
    let gw = Gateway::start_unsettled(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("junk", &junk_url, ""),
            http_target("bad", &bad_calls.mcp_url(), ""),
        ],
    ))
    .await;
    gw.wait_state("ok", "up").await;
    gw.wait_state("bad", "up").await;
    gw.wait_state("junk", "down").await;
    let c = gw.connect().await;
    let names = c.tool_names().await;
    assert!(!names.iter().any(|n| n.starts_with("junk_")), "{names:?}");
    assert_eq!(names.len(), 24);

    let e = c
        .error(
            "tools/call",
            json!({ "name": "bad_echo", "arguments": { "message": "x" } }),
        )
        .await;
    assert_eq!(e["code"], -32004, "an invalid upstream response: {e}");
    assert_names_target(&e, "bad");
    let e = c
        .error("tools/call", json!({ "name": "junk_echo", "arguments": {} }))
        .await;
    assert_eq!(e["code"], -32001, "{e}");
    healthy_call(&c).await;
    // The bad target's other methods still work.
    assert!(c.result("prompts/get", json!({ "name": "bad_greeting" })).await["messages"].is_array());
}

/// Calls `tool` until a call fails (at most five times); returns the error.
async fn call_until_error(c: &Client, tool: &str) -> Value {
    for i in 0..5 {
        let m = c
            .request(
                "tools/call",
                json!({ "name": tool, "arguments": { "message": i.to_string() } }),
            )
            .await;
        if let Some(e) = m.get("error") {
            return e.clone();
        }
        assert_eq!(m["result"]["content"][0]["text"], i.to_string(), "{m}");
    }
    panic!("{tool} never failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_shared_stdio_server_is_restarted() {
    let ok = named_fixture("ok").await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            // Answers initialize, tools/list and one call; the next request crashes it.
            stdio_target("crashy", &["--fault", "crash-after:3"], SHARED),
        ],
    ))
    .await;
    let c = gw.connect().await;
    let mut events = c.listen().await;
    assert_eq!(c.tool_names().await.len(), 24);
    assert_eq!(gw.restarts("crashy"), 0);

    let e = call_until_error(&c, "crashy_echo").await;
    assert_eq!(e["code"], -32001, "the crash is an unavailable target: {e}");
    assert_names_target(&e, "crashy");
    healthy_call(&c).await;

    // It is restarted and serves again, with its tools listed.
    eventually("the stdio server to be restarted", || {
        gw.restarts("crashy") >= 1 && gw.target_state("crashy") == "up"
    })
    .await;
    // Clients are told that the lists changed (the target left, then came back).
    events
        .expect("tools/list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    assert_eq!(c.call_text("crashy_echo", json!({ "message": "back" })).await, "back");
    assert!(c.tool_names().await.iter().any(|n| n == "crashy_add"));
    healthy_call(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_per_client_stdio_server_is_replaced_on_next_use() {
    let ok = named_fixture("ok").await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            // Each client's own process answers initialize and one call, then crashes.
            // `generation: session`: the fault counts requests, and a probe would be one more.
            stdio_target("solo", &["--fault", "crash-after:2"], "    generation: session\n"),
        ],
    ))
    .await;
    let c = gw.connect().await;
    let other = gw.connect().await;
    assert_eq!(other.call_text("solo_echo", json!({ "message": "mine" })).await, "mine");

    let e = call_until_error(&c, "solo_echo").await;
    assert_eq!(e["code"], -32001, "{e}");
    assert_names_target(&e, "solo");
    healthy_call(&c).await;
    // The next call gets a fresh process.
    assert_eq!(c.call_text("solo_echo", json!({ "message": "again" })).await, "again");
    // The other client's process crashes on its own schedule, not with c's.
    let e = call_until_error(&other, "solo_echo").await;
    assert_eq!(e["code"], -32001, "{e}");
    assert_eq!(
        other.call_text("solo_echo", json!({ "message": "fresh" })).await,
        "fresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_that_crashes_fails_its_calls_and_the_others_keep_working() {
    let ok = named_fixture("ok").await;
    let web = fixture(Options {
        name: "web".into(),
        faults: vec![Fault::CrashAfter(3)],
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("web", &web.mcp_url(), SHARED),
        ],
    ))
    .await;
    let c = gw.connect().await;
    assert_eq!(c.tool_names().await.len(), 24);
    let e = call_until_error(&c, "web_echo").await;
    assert!(e["code"] == -32001 || e["code"] == -32004, "{e}");
    assert_names_target(&e, "web");
    healthy_call(&c).await;
    // Later calls fail the same clear way, quickly.
    let e = c
        .error(
            "tools/call",
            json!({ "name": "web_echo", "arguments": { "message": "x" } }),
        )
        .await;
    assert!(e["code"] == -32001 || e["code"] == -32004, "{e}");
    healthy_call(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_upstream_session_is_re_established_transparently() {
    let upstream = RestartableFixture::start(Options {
        name: "r".into(),
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config("", &[http_target("r", &upstream.mcp_url(), "")])).await;
    let c = gw.connect().await;
    assert_eq!(c.call_text("echo", json!({ "message": "before" })).await, "before");
    c.result("logging/setLevel", json!({ "level": "error" })).await;

    // The upstream restarts: every session it knew is gone (it answers 404 to them).
    let upstream = upstream.restart().await;
    assert_eq!(upstream.server.stats().snapshot().sessions_opened, 0);
    assert_eq!(c.call_text("echo", json!({ "message": "after" })).await, "after");
    assert!(
        upstream.server.stats().snapshot().sessions_opened >= 1,
        "a new upstream session was opened"
    );
    // The session's state (its log level) was carried over to the new upstream session.
    let text = c
        .call_text("log", json!({ "level": "warning", "message": "quiet" }))
        .await;
    assert!(text.starts_with("Not sent"), "{text}");
    // And lists recover too.
    eventually("the main session to come back", || gw.target_state("r") == "up").await;
    assert_eq!(c.tool_names().await.len(), 12);
}

/// An HTTP upstream that crashes for good (every connection dropped) is, like a crashed stdio
/// server, noticed and left out of the lists: a request that cannot reach it ends the upstream
/// session, and reconnecting fails until the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_target_that_dies_is_left_out_of_lists() {
    let ok = named_fixture("ok").await;
    let web = fixture(Options {
        name: "web".into(),
        faults: vec![Fault::CrashAfter(3)],
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("web", &web.mcp_url(), SHARED),
        ],
    ))
    .await;
    let c = gw.connect().await;
    assert_eq!(c.tool_names().await.len(), 24);
    call_until_error(&c, "web_echo").await;
    gw.wait_state("web", "down").await;
    let names = c.tool_names().await;
    assert!(names.iter().all(|n| n.starts_with("ok_")), "{names:?}");
}
