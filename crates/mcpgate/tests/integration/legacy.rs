//! The legacy HTTP+SSE downstream transport (2024-11-05): `GET /sse`, the `endpoint`
//! event, `POST /message?sessionId=…`, everything the server says on the one stream.

use mcpgate_example_server::COUNTER_URI;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_clients_use_every_feature_end_to_end() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("s", &[], "")],
    ))
    .await;
    let mut c = LegacyClient::open(&gw.base()).await;
    assert!(c.post_url.contains("sessionId="), "{}", c.post_url);
    let init = c.initialize("2024-11-05").await;
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert!(init["result"]["capabilities"]["tools"].is_object());

    assert_eq!(c.result("ping", json!({})).await, json!({}));
    let tools = c.result("tools/list", json!({})).await;
    let names = names(tools["tools"].as_array().unwrap());
    assert!(
        names.contains(&"h_echo".to_owned()) && names.contains(&"s_echo".to_owned()),
        "{names:?}"
    );
    let r = c
        .result(
            "tools/call",
            json!({ "name": "s_add", "arguments": { "a": 20, "b": 22 } }),
        )
        .await;
    assert_eq!(r["structuredContent"]["sum"], 42);
    let r = c.result("resources/read", json!({ "uri": COUNTER_URI })).await;
    assert!(r["contents"][0]["text"].is_string());

    // Progress notifications arrive on the stream before the response, under the client's token.
    let id = c
        .send(
            "tools/call",
            json!({ "name": "h_long_operation", "arguments": { "steps": 3, "delay_ms": 5 },
                    "_meta": { "progressToken": "legacy" } }),
        )
        .await;
    let msgs = c
        .stream
        .collect_until("the long operation's response", |m| is_response_to(m, &id))
        .await;
    let progress: Vec<_> = msgs
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .map(|m| (m["params"]["progressToken"].clone(), m["params"]["progress"].clone()))
        .collect();
    assert_eq!(
        progress,
        vec![
            (json!("legacy"), json!(1)),
            (json!("legacy"), json!(2)),
            (json!("legacy"), json!(3))
        ]
    );

    // List changes are pushed on the stream.
    assert!(fx.server().add_tool("legacy_tool"));
    c.stream
        .expect("tools/list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    let tools = c.result("tools/list", json!({})).await;
    assert!(names_of(&tools).contains(&"h_legacy_tool".to_owned()));

    // Server→client requests: sampling answered with a POST.
    let id = c
        .send(
            "tools/call",
            json!({ "name": "s_sample", "arguments": { "prompt": "legacy?" } }),
        )
        .await;
    let req = c
        .stream
        .expect("a sampling request", |m| is_request(m, "sampling/createMessage"))
        .await;
    let status = c
        .post(&json!({ "jsonrpc": "2.0", "id": req["id"],
                       "result": { "role": "assistant", "content": { "type": "text", "text": "legacy!" }, "model": "m" } }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let resp = c.stream.response(&id).await;
    assert_eq!(resp["result"]["content"][0]["text"], "legacy!");

    // Errors come back on the stream too.
    let id = c.send("tools/call", json!({ "name": "nope", "arguments": {} })).await;
    let resp = c.stream.response(&id).await;
    assert_eq!(resp["error"]["code"], -32602, "{resp}");
}

fn names_of(list: &serde_json::Value) -> Vec<String> {
    names(list["tools"].as_array().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_legacy_stream_ends_the_session_and_unknown_sessions_get_404() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let mut c = gw.connect_legacy().await;
    assert_eq!(c.result("ping", json!({})).await, json!({}));
    let r = c
        .result("tools/call", json!({ "name": "echo", "arguments": { "message": "m" } }))
        .await;
    assert_eq!(r["content"][0]["text"], "m");
    assert_eq!(gw.core.session_count(), 1);
    let upstream_open = fx.stats().snapshot().active_sessions();
    let post_url = c.post_url.clone();
    drop(c);
    eventually("the session to end with its stream", || gw.core.session_count() == 0).await;
    eventually("its upstream session to end too", || {
        fx.stats().snapshot().active_sessions() == upstream_open - 1
    })
    .await;

    let http = http_client();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }).to_string();
    let resp = within(
        "a POST",
        http.post(&post_url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the closed session's endpoint");
    let bogus = format!("{}/message?sessionId=nope", gw.base());
    let resp = within(
        "a POST",
        http.post(&bogus)
            .header("content-type", "application/json")
            .body(body.clone())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let missing = format!("{}/message", gw.base());
    let resp = within(
        "a POST",
        http.post(&missing)
            .header("content-type", "application/json")
            .body(body)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "no sessionId at all");

    // A new legacy client still works.
    let mut again = gw.connect_legacy().await;
    assert_eq!(again.result("ping", json!({})).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_and_streamable_sessions_are_kept_apart() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let mut legacy = gw.connect_legacy().await;
    let modern = gw.connect().await;
    // The legacy session id is not a Streamable HTTP session.
    let sid = legacy.post_url.split("sessionId=").nth(1).unwrap().to_owned();
    let mut impostor = gw.client();
    impostor.session = Some(sid);
    let r = impostor
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .await;
    assert!(
        matches!(r, Reply::Json(s, _) | Reply::Other(s, _) if s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST)
    );
    // Both work side by side.
    assert_eq!(legacy.result("ping", json!({})).await, json!({}));
    assert_eq!(modern.result("ping", json!({})).await, json!({}));
}
