//! Bad input: each gets the right HTTP status or JSON-RPC error, and the gateway keeps
//! serving the same session afterwards.

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::common::*;

async fn gateway(head: &str) -> (Gateway, mcpgate_example_server::HttpFixture) {
    let fx = named_fixture("ex").await;
    let gw = Gateway::start(&config(
        head,
        &[http_target("ex", &fx.mcp_url(), ""), stdio_target("st", &[], "")],
    ))
    .await;
    (gw, fx)
}

/// Posts raw bytes on the client's session; returns (status, JSON body if any).
async fn post_bytes(c: &Client, content_type: &str, body: Vec<u8>) -> (StatusCode, Option<Value>) {
    let mut h = c.headers();
    h.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    let resp = c.post_raw(h, body).await;
    let status = resp.status();
    let bytes = within("the body", resp.bytes()).await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).ok())
}

async fn still_serving(c: &Client) {
    assert_eq!(c.result("ping", json!({})).await, json!({}));
    assert_eq!(c.call_text("ex_echo", json!({ "message": "alive" })).await, "alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_parse_error_with_400() {
    let (gw, _fx) = gateway("").await;
    let c = gw.connect().await;
    for body in [
        &b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": "[..],
        b"not json at all",
        b"",
        b"\xff\xfe{}",
    ] {
        let (status, json) = post_bytes(&c, "application/json", body.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{:?}", String::from_utf8_lossy(body));
        let json = json.expect("a JSON-RPC error body");
        assert_eq!(json["error"]["code"], -32700, "{json}");
        assert_eq!(json["id"], Value::Null);
        still_serving(&c).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415() {
    let (gw, _fx) = gateway("").await;
    let c = gw.connect().await;
    let ping = serde_json::to_vec(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" })).unwrap();
    for ctype in ["text/plain", "application/x-www-form-urlencoded", "text/event-stream"] {
        let (status, _) = post_bytes(&c, ctype, ping.clone()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ctype}");
    }
    // Parameters on the media type are fine.
    let (status, json) = post_bytes(&c, "application/json; charset=utf-8", ping).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json.unwrap()["result"], json!({}));
    still_serving(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413() {
    let (gw, _fx) = gateway("listen:\n  max_body_bytes: 2048").await;
    let c = gw.connect().await;
    let big = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": { "name": "ex_echo", "arguments": { "message": "x".repeat(4096) } } });
    let (status, _) = post_bytes(&c, "application/json", serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is fine.
    assert_eq!(
        c.call_text("ex_echo", json!({ "message": "x".repeat(1500) }))
            .await
            .len(),
        1500
    );
    still_serving(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_json_rpc_envelope_is_an_invalid_request() {
    let (gw, _fx) = gateway("").await;
    let c = gw.connect().await;
    for body in [
        json!({ "jsonrpc": "1.0", "id": 1, "method": "ping" }),
        json!({ "id": 1, "method": "ping" }),
        json!({ "jsonrpc": "2.0", "id": 1, "method": 5 }),
        json!({ "jsonrpc": "2.0", "id": { "an": "object" }, "method": "ping" }),
        json!({ "jsonrpc": "2.0", "id": 1 }),
        json!("just a string"),
        json!(42),
    ] {
        let (status, json) = post_bytes(&c, "application/json", serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let json = json.expect("a JSON-RPC error body");
        assert_eq!(json["error"]["code"], -32600, "{body}: {json}");
        still_serving(&c).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_tools_and_resources_get_their_json_rpc_errors() {
    let (gw, fx) = gateway("").await;
    let c = gw.connect().await;

    let e = c.error("no/such/method", json!({})).await;
    assert_eq!(e["code"], -32601, "{e}");
    still_serving(&c).await;

    let calls_before = fx.stats().tool_calls();
    for name in ["no_such_tool", "ex_no_such_tool", "nosuchtarget_echo", "", "ex_"] {
        let e = c.error("tools/call", json!({ "name": name, "arguments": {} })).await;
        assert_eq!(e["code"], -32602, "{name:?}: {e}");
    }
    let e = c.error("tools/call", json!({ "arguments": {} })).await;
    assert_eq!(e["code"], -32602, "a call without a name: {e}");
    assert_eq!(fx.stats().tool_calls(), calls_before, "nothing reached the upstream");
    still_serving(&c).await;

    let e = c.error("resources/read", json!({ "uri": "nowhere://at/all" })).await;
    assert_eq!(e["code"], -32002, "{e}");
    let e = c.error("resources/read", json!({})).await;
    assert_eq!(e["code"], -32602, "a read without a uri: {e}");
    // Invalid arguments to a real tool: the upstream's own answer comes back.
    let r = c
        .request("tools/call", json!({ "name": "ex_add", "arguments": { "a": "x" } }))
        .await;
    assert!(
        r["result"]["isError"] == true || r["error"]["code"] == -32602,
        "invalid arguments are reported: {r}"
    );
    still_serving(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_and_hosts_are_refused_with_403() {
    let (gw, _fx) = gateway("").await;
    let c = gw.connect().await;
    let ping = serde_json::to_vec(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" })).unwrap();
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("origin", "https://attacker.test:8080"),
        ("origin", "null"),
        ("host", "evil.example"),
        ("host", format!("rebind.example:{}", gw.addr.port()).leak()),
    ] {
        let mut h = c.headers();
        h.insert(header, HeaderValue::from_str(value).unwrap());
        let resp = c.post_raw(h, ping.clone()).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        // The GET stream and the legacy endpoint are guarded the same way.
        let get = c.get_raw(&[(header, value)]).await;
        assert_eq!(get.status(), StatusCode::FORBIDDEN, "GET with {header}: {value}");
        let sse = within(
            "GET /sse",
            http_client()
                .get(format!("{}/sse", gw.base()))
                .header(header, value)
                .header("accept", "text/event-stream")
                .send(),
        )
        .await
        .unwrap();
        assert_eq!(sse.status(), StatusCode::FORBIDDEN, "/sse with {header}: {value}");
    }
    // A loopback origin (a local tool) is fine.
    let mut h = c.headers();
    h.insert("origin", HeaderValue::from_static("http://localhost:6274"));
    assert_eq!(c.post_raw(h, ping.clone()).await.status(), StatusCode::OK);
    still_serving(&c).await;

    // A configured origin is allowed.
    let (gw, _fx2) = gateway("listen:\n  allowed_origins: [\"https://app.example.com\"]").await;
    let c = gw.connect().await;
    let mut h = c.headers();
    h.insert("origin", HeaderValue::from_static("https://app.example.com"));
    assert_eq!(c.post_raw(h, ping).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initialize_without_a_protocol_version_is_refused_without_a_session() {
    let (gw, _fx) = gateway("").await;
    let c = gw.client();
    let before = gw.core.session_count();
    for params in [json!({ "capabilities": {} }), json!({ "protocolVersion": 2025 })] {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params });
        let resp = c.post_raw(c.headers(), serde_json::to_vec(&body).unwrap()).await;
        assert!(
            resp.headers().get("mcp-session-id").is_none(),
            "no session for a failed initialize"
        );
        let status = resp.status();
        let body: Value = serde_json::from_slice(&within("body", resp.bytes()).await.unwrap()).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], -32602, "{body}");
        assert_eq!(body["id"], 1);
    }
    assert_eq!(gw.core.session_count(), before);
    still_serving(&gw.connect().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_must_accept_json_or_event_streams() {
    let (gw, _fx) = gateway("").await;
    let c = gw.connect().await;
    let mut h = c.headers();
    h.insert("accept", HeaderValue::from_static("text/html"));
    let ping = serde_json::to_vec(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" })).unwrap();
    assert_eq!(c.post_raw(h, ping).await.status(), StatusCode::NOT_ACCEPTABLE);
    let mut h = c.headers();
    h.remove("content-type");
    h.insert("accept", HeaderValue::from_static("application/json"));
    let resp = within("GET", http_client().get(gw.mcp_url()).headers(h).send())
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_ACCEPTABLE,
        "a GET stream needs text/event-stream"
    );
    still_serving(&c).await;
}
