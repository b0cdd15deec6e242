//! Lifecycle and session management on Streamable HTTP: initialize and version negotiation,
//! merged capabilities and instructions, ping, `Mcp-Session-Id`, 400/404 rules, DELETE.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

async fn one_target_gateway() -> (Gateway, mcpgate_example_server::HttpFixture) {
    let fx = named_fixture("ex").await;
    let gw = Gateway::start(&config("", &[http_target("ex", &fx.mcp_url(), "")])).await;
    (gw, fx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_negotiates_every_supported_version_and_falls_back_to_latest() {
    let (gw, _fx) = one_target_gateway().await;
    for (asked, expected) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2099-01-01", LATEST),
        ("not-a-version", LATEST),
    ] {
        let mut c = gw.client();
        let init = c.initialize(asked, json!({})).await;
        assert_eq!(init["result"]["protocolVersion"], expected, "asked for {asked}");
        assert!(init["result"]["serverInfo"]["name"].is_string(), "{init}");
        assert!(init["result"]["serverInfo"]["version"].is_string(), "{init}");
        // Mcp-Session-Id: issued, only visible ASCII (spec: 0x21..=0x7E).
        let sid = c.session.clone().expect("an Mcp-Session-Id on the InitializeResult");
        assert!(
            !sid.is_empty() && sid.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{sid:?}"
        );
        // The session works under the negotiated version.
        assert_eq!(c.result("ping", json!({})).await, json!({}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_gets_its_own_id() {
    let (gw, _fx) = one_target_gateway().await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    assert_ne!(a.session, b.session);
    assert!(gw.core.session_count() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_merges_capabilities_and_instructions_of_all_targets() {
    let fx = named_fixture("ex").await;
    let (rec_url, _rec) = recording_server().await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("ex", &fx.mcp_url(), ""), http_target("rec", &rec_url, "")],
    ))
    .await;
    let mut c = gw.client();
    let init = c.initialize(LATEST, json!({})).await;
    let r = &init["result"];
    let caps = &r["capabilities"];
    // The example server offers tools, prompts, resources (with subscribe), logging and
    // completions; the gateway must offer their union.
    for cap in ["tools", "prompts", "resources", "logging", "completions"] {
        assert!(caps[cap].is_object(), "capability {cap} missing: {caps}");
    }
    assert_eq!(caps["resources"]["subscribe"], true, "{caps}");
    assert_eq!(caps["tools"]["listChanged"], true, "{caps}");
    let text = r["instructions"].as_str().expect("merged instructions");
    assert!(text.contains("This is the mcpgate example server."), "{text}");
    assert!(text.contains("The recorder."), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_with_an_empty_result() {
    let (gw, _fx) = one_target_gateway().await;
    let c = gw.connect().await;
    let m = c.request("ping", json!({})).await;
    assert_eq!(m["jsonrpc"], "2.0");
    assert_eq!(m["result"], json!({}));
    // `params` may be omitted on ping.
    let id = c.next_id();
    let m = c
        .post(&json!({ "jsonrpc": "2.0", "id": id, "method": "ping" }))
        .await
        .into_message(&id)
        .await;
    assert_eq!(m["result"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_session_id_are_400_and_unknown_sessions_404() {
    let (gw, _fx) = one_target_gateway().await;
    let real = gw.connect().await;

    // No Mcp-Session-Id after initialization: 400.
    let mut anon = gw.client();
    anon.version = Some(LATEST.into());
    match anon
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .await
    {
        Reply::Json(status, body) => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(body["error"].is_object(), "{body}");
        }
        Reply::Other(status, body) => assert_eq!(status, StatusCode::BAD_REQUEST, "{body}"),
        Reply::Sse(_) => panic!("no stream without a session"),
    }
    let get = anon.get_raw(&[]).await;
    assert_eq!(get.status(), StatusCode::BAD_REQUEST, "GET without a session");

    // An id the gateway never issued: 404, on POST, GET and DELETE.
    let mut bogus = gw.client();
    bogus.version = Some(LATEST.into());
    bogus.session = Some("0123456789abcdef0123456789abcdef".into());
    assert_eq!(
        status_of(
            bogus
                .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
                .await
        ),
        StatusCode::NOT_FOUND
    );
    assert_eq!(bogus.get_raw(&[]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(bogus.delete().await, StatusCode::NOT_FOUND);
    assert_eq!(
        bogus.notify("notifications/initialized", None).await,
        StatusCode::NOT_FOUND,
        "notifications to an unknown session are 404 too"
    );

    // The real session is unaffected.
    assert_eq!(real.result("ping", json!({})).await, json!({}));
}

fn status_of(r: Reply) -> StatusCode {
    match r {
        Reply::Json(s, _) | Reply::Other(s, _) => s,
        Reply::Sse(_) => StatusCode::OK,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session_and_later_requests_get_404() {
    let (gw, fx) = one_target_gateway().await;
    let c = gw.connect().await;
    let other = gw.connect().await;
    // Open an upstream session for it, so DELETE has something to tear down.
    assert_eq!(c.call_text("echo", json!({ "message": "hi" })).await, "hi");
    let mut stream = c.listen().await;
    let before = gw.core.session_count();

    let upstream_open = fx.stats().snapshot().active_sessions();
    assert!(c.delete().await.is_success(), "DELETE of a live session succeeds");
    assert_eq!(gw.core.session_count(), before - 1);
    // The client's own upstream session ends with it.
    eventually("the upstream session to be deleted", || {
        fx.stats().snapshot().active_sessions() == upstream_open - 1
    })
    .await;
    // Its GET stream ends.
    assert!(stream.ended().await, "the session's GET stream ends with the session");
    // Everything about it is gone now: 404.
    assert_eq!(
        status_of(c.post(&json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" })).await),
        StatusCode::NOT_FOUND
    );
    assert_eq!(c.get_raw(&[]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(c.delete().await, StatusCode::NOT_FOUND);
    // A client told 404 starts over with a new initialize.
    let mut again = gw.client();
    again.initialize(LATEST, json!({})).await;
    assert_ne!(again.session, c.session);
    assert_eq!(other.result("ping", json!({})).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_version_header_is_400() {
    let (gw, _fx) = one_target_gateway().await;
    let mut c = gw.connect().await;
    let good = c.version.clone();

    c.version = Some("1999-01-01".into());
    let r = c.post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" })).await;
    assert_eq!(status_of(r), StatusCode::BAD_REQUEST);
    assert_eq!(
        c.get_raw(&[]).await.status(),
        StatusCode::BAD_REQUEST,
        "GET checks the header too"
    );

    // Without the header the server assumes 2025-03-26 (a supported version), and with the
    // negotiated one everything works.
    c.version = None;
    assert_eq!(c.result("ping", json!({})).await, json!({}));
    c.version = good;
    assert_eq!(c.result("ping", json!({})).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_and_responses_are_accepted_with_202() {
    let (gw, _fx) = one_target_gateway().await;
    let c = gw.connect().await;
    assert_eq!(
        c.notify("notifications/roots/list_changed", None).await,
        StatusCode::ACCEPTED
    );
    // A response to a request the gateway never sent is still "accepted" input.
    assert_eq!(c.respond(&json!(424242), json!({})).await, StatusCode::ACCEPTED);
    assert_eq!(c.result("ping", json!({})).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_answered_in_2025_03_26_and_refused_later() {
    let (gw, _fx) = one_target_gateway().await;
    let mut old = gw.client();
    old.initialize("2025-03-26", json!({})).await;
    let batch = json!([
        { "jsonrpc": "2.0", "id": "p", "method": "ping" },
        { "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "echo", "arguments": { "message": "b" } } },
        { "jsonrpc": "2.0", "method": "notifications/roots/list_changed" }
    ]);
    let replies = match old.post(&batch).await {
        Reply::Json(status, v) => {
            assert_eq!(status, StatusCode::OK);
            v
        }
        Reply::Sse(mut s) => serde_json::Value::Array(s.drain().await),
        Reply::Other(s, b) => panic!("HTTP {s}: {b}"),
    };
    let replies = replies.as_array().expect("an array of responses").clone();
    assert_eq!(
        replies.len(),
        2,
        "one response per request, none for the notification: {replies:?}"
    );
    let by_id = |id: serde_json::Value| replies.iter().find(|r| r["id"] == id).cloned().unwrap();
    assert_eq!(by_id(json!("p"))["result"], json!({}));
    assert_eq!(by_id(json!(2))["result"]["content"][0]["text"], "b");

    // 2025-06-18 removed batching.
    let new = gw.connect().await;
    assert_eq!(status_of(new.post(&batch).await), StatusCode::BAD_REQUEST);
    assert_eq!(new.result("ping", json!({})).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sse_streams_get_keep_alive_comments() {
    let fx = named_fixture("ex").await;
    let gw = Gateway::start(&config(
        "listen:\n  keep_alive: 100ms",
        &[http_target("ex", &fx.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let mut general = c.listen().await;
    general.wait_for_comments(2).await;
    // The stream still carries messages afterwards.
    fx.server().notify_tools_list_changed();
    general
        .expect("list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
}
