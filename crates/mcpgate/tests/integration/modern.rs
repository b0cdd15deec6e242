//! Stateless (2026-07-28) clients served by the gateway in front of session-based upstreams,
//! written from the 2026-07-28 specification: era detection beside session-based clients on
//! the same endpoint, the header checks (-32020), version errors (-32022), removed methods
//! (404, -32601), `server/discover`, result shapes and cache hints, per-request log levels,
//! progress, cancellation by closing the stream, and multi-round-trip requests bridged from
//! server→client requests (with forged, reused, rebound and expired `requestState` refused).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::common::*;

const V: &str = "2026-07-28";

/// A change to a request's headers.
type Edit = Box<dyn Fn(&mut HeaderMap)>;

/// A 2026-07-28 client: every request is a standalone POST with its `_meta` and headers.
pub(crate) struct Modern {
    http: reqwest::Client,
    url: String,
    caps: Value,
    next: std::sync::atomic::AtomicI64,
    /// `Authorization` header value, if any.
    auth: Option<String>,
}

/// What a stateless POST returned.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// Every message received, the response last.
    pub(crate) messages: Vec<Value>,
    pub(crate) sse: bool,
}

impl Answer {
    pub(crate) fn response(&self) -> &Value {
        self.messages.last().expect("a response")
    }
    pub(crate) fn result(&self) -> &Value {
        let r = self.response();
        assert!(r.get("error").is_none(), "unexpected error: {r}");
        &r["result"]
    }
    pub(crate) fn error_code(&self) -> i64 {
        self.response()["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error: {}", self.response()))
    }
}

impl Modern {
    pub(crate) fn new(gw: &Gateway, caps: Value) -> Modern {
        Modern {
            http: http_client(),
            url: gw.mcp_url(),
            caps,
            next: std::sync::atomic::AtomicI64::new(1),
            auth: None,
        }
    }

    fn with_key(mut self, key: &str) -> Modern {
        self.auth = Some(format!("Bearer {key}"));
        self
    }

    fn meta(&self) -> Value {
        json!({
            "io.modelcontextprotocol/protocolVersion": V,
            "io.modelcontextprotocol/clientCapabilities": self.caps,
            "io.modelcontextprotocol/clientInfo": { "name": "modern-test", "version": "1" },
        })
    }

    /// The spec's headers for a request with these params.
    pub(crate) fn headers(&self, method: &str, params: &Value) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("mcp-protocol-version", HeaderValue::from_static(V));
        h.insert("mcp-method", HeaderValue::from_str(method).unwrap());
        if let Some(a) = &self.auth {
            h.insert("authorization", HeaderValue::from_str(a).unwrap());
        }
        let name = match method {
            "tools/call" | "prompts/get" => params["name"].as_str(),
            "resources/read" => params["uri"].as_str(),
            _ => None,
        };
        if let Some(n) = name {
            h.insert("mcp-name", HeaderValue::from_str(n).unwrap());
        }
        h
    }

    /// `params` with this client's `_meta` merged in (keys already in `params._meta` win).
    pub(crate) fn with_meta(&self, mut params: Value) -> Value {
        let mut meta = self.meta();
        if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
            for (k, v) in extra {
                meta[k] = v.clone();
            }
        }
        params["_meta"] = meta;
        params
    }

    pub(crate) async fn send(&self, headers: HeaderMap, body: &Value) -> Answer {
        let resp = within(
            "a stateless POST",
            self.http.post(&self.url).headers(headers).json(body).send(),
        )
        .await
        .expect("sent");
        let status = resp.status();
        let ct = content_type(resp.headers());
        if ct == "text/event-stream" {
            let mut s = SseStream::new(resp);
            let id = body["id"].clone();
            let messages = s.collect_until("the response", |m| is_response_to(m, &id)).await;
            return Answer {
                status,
                messages,
                sse: true,
            };
        }
        let text = resp.text().await.expect("a body");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("HTTP {status}: not JSON: {text}"));
        Answer {
            status,
            messages: vec![v],
            sse: false,
        }
    }

    /// A request with the right headers and `_meta`.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Answer {
        let params = self.with_meta(params);
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send(self.headers(method, &params), &body).await
    }
}

async fn gateway_with_http_target() -> (Gateway, mcpgate_example_server::HttpFixture) {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    (gw, fx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_and_session_clients_share_the_endpoint_without_sessions() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("h", &fx.mcp_url(), ""),
            stdio_target("s", &[], "    session: per_client\n"),
        ],
    ))
    .await;
    let m = Modern::new(&gw, json!({}));
    let a = m.call("tools/list", json!({})).await;
    assert_eq!(a.status, StatusCode::OK);
    let r = a.result();
    assert_eq!(r["resultType"], "complete", "{r}");
    let names: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"h_echo") && names.contains(&"s_echo"), "{names:?}");
    assert!(r["ttlMs"].as_u64().is_some(), "list results carry ttlMs: {r}");
    assert_eq!(r["cacheScope"], "public", "unfiltered lists are public: {r}");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpgate",
        "{r}"
    );

    // A per_client target serves stateless calls from its main session: no session and no
    // upstream process per request.
    for target in ["h", "s"] {
        let a = m
            .call(
                "tools/call",
                json!({ "name": format!("{target}_echo"), "arguments": { "message": "hi" } }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.result()["content"][0]["text"], "hi", "{}", a.response());
        assert_eq!(a.result()["resultType"], "complete");
    }
    assert_eq!(
        gw.core.session_count(),
        0,
        "stateless requests create no downstream session"
    );

    // A session-based client on the same endpoint is unaffected.
    let c = gw.connect().await;
    let r = c
        .result(
            "tools/call",
            json!({ "name": "h_echo", "arguments": { "message": "old" } }),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "old");
    assert!(
        r.get("resultType").is_none(),
        "session-based results keep their shape: {r}"
    );
    assert_eq!(gw.core.session_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_must_match_the_body() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({}));
    let params = m.with_meta(json!({ "name": "echo", "arguments": { "message": "x" } }));
    let body = json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params });
    let ok = m.headers("tools/call", &params);

    let cases: Vec<(&str, Edit)> = vec![
        (
            "Mcp-Name differs from params.name",
            Box::new(|h| {
                h.insert("mcp-name", HeaderValue::from_static("add"));
            }),
        ),
        (
            "Mcp-Name missing",
            Box::new(|h| {
                h.remove("mcp-name");
            }),
        ),
        (
            "Mcp-Method differs from method",
            Box::new(|h| {
                h.insert("mcp-method", HeaderValue::from_static("tools/list"));
            }),
        ),
        (
            "Mcp-Method missing",
            Box::new(|h| {
                h.remove("mcp-method");
            }),
        ),
        (
            "MCP-Protocol-Version differs from _meta",
            Box::new(|h| {
                h.insert("mcp-protocol-version", HeaderValue::from_static("2099-01-01"));
            }),
        ),
    ];
    for (what, edit) in cases {
        let mut h = ok.clone();
        edit(&mut h);
        let a = m.send(h, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(a.error_code(), -32020, "{what}: {}", a.response());
        assert_eq!(a.response()["id"], 9, "{what}: errors carry the request id");
    }
    // The Base64 sentinel form of Mcp-Name is decoded before comparing.
    let mut h = ok.clone();
    h.insert("mcp-name", HeaderValue::from_static("=?base64?ZWNobw==?="));
    let a = m.send(h, &body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.response());
    assert_eq!(a.result()["content"][0]["text"], "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_meta_and_removed_methods() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({}));

    // A version the gateway does not serve: -32022 with what it does serve.
    let params = json!({ "_meta": {
        "io.modelcontextprotocol/protocolVersion": "1900-01-01",
        "io.modelcontextprotocol/clientCapabilities": {} } });
    let mut h = m.headers("server/discover", &params);
    h.insert("mcp-protocol-version", HeaderValue::from_static("1900-01-01"));
    let a = m
        .send(
            h,
            &json!({ "jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": params }),
        )
        .await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::BAD_REQUEST, -32022),
        "{}",
        a.response()
    );
    let data = &a.response()["error"]["data"];
    assert_eq!(data["requested"], "1900-01-01");
    assert!(data["supported"].as_array().unwrap().contains(&json!(V)), "{data}");

    // Required _meta fields: -32602, HTTP 400.
    for params in [
        json!({}),
        json!({ "_meta": { "io.modelcontextprotocol/clientCapabilities": {} } }),
        json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": V } }),
    ] {
        let h = m.headers("tools/list", &params);
        let a = m
            .send(
                h,
                &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": params }),
            )
            .await;
        assert_eq!(
            (a.status, a.error_code()),
            (StatusCode::BAD_REQUEST, -32602),
            "{params}: {}",
            a.response()
        );
    }
    // clientInfo is optional.
    let params = json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {} } });
    let a = m
        .send(
            m.headers("tools/list", &params),
            &json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": params }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.response());

    // Methods 2026-07-28 removed, and unknown ones: 404 with -32601.
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "no/such",
    ] {
        let a = m.call(method, json!({})).await;
        assert_eq!(
            (a.status, a.error_code()),
            (StatusCode::NOT_FOUND, -32601),
            "{method}: {}",
            a.response()
        );
    }
    // An unknown log level is invalid params.
    let a = m
        .call(
            "tools/list",
            json!({ "_meta": { "io.modelcontextprotocol/logLevel": "loud" } }),
        )
        .await;
    assert_eq!((a.status, a.error_code()), (StatusCode::BAD_REQUEST, -32602));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_merges_the_targets_capabilities() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({}));
    let a = m.call("server/discover", json!({})).await;
    let r = a.result();
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["supportedVersions"][0], V, "{r}");
    assert!(
        r["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25")),
        "dual-era: {r}"
    );
    for cap in ["tools", "prompts", "resources"] {
        assert!(r["capabilities"][cap].is_object(), "{cap} from the example server: {r}");
    }
    assert_eq!(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpgate");
    assert!(r["ttlMs"].as_u64().is_some() && r["cacheScope"].is_string(), "{r}");

    // A gateway with no target up advertises no tools.
    let dead = dead_url().await;
    let empty = Gateway::start_unsettled(&config("", &[http_target("d", &dead, "")])).await;
    let m = Modern::new(&empty, json!({}));
    let r = m.call("server/discover", json!({})).await.result().clone();
    assert!(r["capabilities"].get("tools").is_none(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_carry_cache_hints_and_the_2026_not_found_code() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({}));
    let list = m.call("resources/list", json!({})).await;
    let uri = list.result()["resources"][0]["uri"]
        .as_str()
        .expect("a resource")
        .to_owned();
    let r = m.call("resources/read", json!({ "uri": uri })).await;
    let r = r.result();
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["ttlMs"], 0, "session-based upstreams give no hint: immediately stale");
    assert_eq!(r["cacheScope"], "public");
    let a = m.call("resources/read", json!({ "uri": "nowhere://x" })).await;
    assert_eq!(
        a.error_code(),
        -32602,
        "2026-07-28 reports unknown resources as invalid params: {}",
        a.response()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_only_at_the_requested_level_and_progress_on_the_request_stream() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({}));
    let args = json!({ "level": "warning", "message": "careful" });
    let quiet = m.call("tools/call", json!({ "name": "log", "arguments": args })).await;
    assert!(
        !quiet
            .messages
            .iter()
            .any(|x| is_notification(x, "notifications/message")),
        "no logLevel, no log messages: {:?}",
        quiet.messages
    );
    let loud = m
        .call(
            "tools/call",
            json!({ "name": "log", "arguments": args, "_meta": { "io.modelcontextprotocol/logLevel": "debug" } }),
        )
        .await;
    assert!(loud.sse, "a log message before the response opens an SSE stream");
    let log = loud
        .messages
        .iter()
        .find(|x| is_notification(x, "notifications/message"))
        .expect("the log message");
    assert_eq!(log["params"]["data"], "careful", "{log}");
    let above = m
        .call(
            "tools/call",
            json!({ "name": "log", "arguments": args, "_meta": { "io.modelcontextprotocol/logLevel": "error" } }),
        )
        .await;
    assert!(
        !above
            .messages
            .iter()
            .any(|x| is_notification(x, "notifications/message")),
        "warning < error"
    );

    let a = m
        .call(
            "tools/call",
            json!({ "name": "long_operation", "arguments": { "steps": 3, "delay_ms": 10 }, "_meta": { "progressToken": "p-1" } }),
        )
        .await;
    let progress: Vec<&Value> = a
        .messages
        .iter()
        .filter(|x| is_notification(x, "notifications/progress"))
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", a.messages);
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "p-1"));
    assert_eq!(a.result()["resultType"], "complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_response_stream_cancels_upstream() {
    let (gw, fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({}));
    let params = m.with_meta(json!({
        "name": "long_operation", "arguments": { "steps": 100, "delay_ms": 100 }, "_meta": { "progressToken": 1 } }));
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params });
    let resp = m
        .http
        .post(&m.url)
        .headers(m.headers("tools/call", &params))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut s = SseStream::new(resp);
    s.expect("a progress notification", |x| {
        is_notification(x, "notifications/progress")
    })
    .await;
    drop(s);
    eventually("the upstream to get notifications/cancelled", || {
        fx.stats().snapshot().cancellations == 1
    })
    .await;
}

fn sampling_answer(text: &str) -> Value {
    json!({ "role": "assistant", "content": { "type": "text", "text": text }, "model": "m", "stopReason": "endTurn" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_requests_become_input_required_and_the_retry_resumes_the_call() {
    let (gw, fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, all_client_capabilities());
    let params = json!({ "name": "sample", "arguments": { "prompt": "2+2?" } });
    let first = m.call("tools/call", params.clone()).await;
    assert_eq!(first.status, StatusCode::OK);
    let r = first.result().clone();
    assert_eq!(r["resultType"], "input_required", "{r}");
    assert!(r.get("ttlMs").is_none(), "interim results carry no cache hints");
    let reqs = r["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(reqs.len(), 1, "{r}");
    let (key, req) = reqs.iter().next().unwrap();
    assert_eq!(req["method"], "sampling/createMessage");
    assert_eq!(req["params"]["messages"][0]["content"]["text"], "2+2?");
    let state = r["requestState"].as_str().expect("a requestState").to_owned();

    // A forged state and a state bound to another tool are refused; the held call survives.
    let mut forged = params.clone();
    forged["requestState"] = json!(format!("{state}-TAMPERED"));
    forged["inputResponses"] = json!({ key: sampling_answer("4") });
    let a = m.call("tools/call", forged).await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::BAD_REQUEST, -32602),
        "{}",
        a.response()
    );
    let a = m
        .call(
            "tools/call",
            json!({ "name": "echo", "arguments": { "message": "x" }, "requestState": state, "inputResponses": {} }),
        )
        .await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::BAD_REQUEST, -32602),
        "{}",
        a.response()
    );

    // Malformed inputResponses: a protocol error.
    let mut bad = params.clone();
    bad["requestState"] = json!(state);
    bad["inputResponses"] = json!({ key: 12345 });
    let a = m.call("tools/call", bad).await;
    assert_eq!(a.error_code(), -32602, "{}", a.response());

    // The real retry completes the upstream call with the client's answer.
    let mut retry = params.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({ key: sampling_answer("four") });
    let done = m.call("tools/call", retry.clone()).await;
    let r = done.result();
    assert_eq!(r["resultType"], "complete", "{r}");
    assert_eq!(r["content"][0]["text"], "four", "{r}");
    assert_eq!(fx.stats().snapshot().responses, 1, "one answer reached the upstream");

    // The state is single-use: the call it named is finished.
    let again = m.call("tools/call", retry).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::BAD_REQUEST, -32602));
    assert!(
        again.response()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not hold"),
        "{}",
        again.response()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_and_roots_round_trip_and_a_missing_answer_is_asked_again() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, all_client_capabilities());
    let params = json!({ "name": "elicit", "arguments": { "question": "Your name?" } });
    let r = m.call("tools/call", params.clone()).await.result().clone();
    let (key, req) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(req["method"], "elicitation/create");
    assert_eq!(req["params"]["message"], "Your name?");
    // A retry that answers nothing the gateway asked: asked again, with a new state.
    let mut retry = params.clone();
    retry["requestState"] = r["requestState"].clone();
    retry["inputResponses"] = json!({ "wrong_key": { "action": "decline" } });
    let again = m.call("tools/call", retry).await.result().clone();
    assert_eq!(again["resultType"], "input_required");
    assert!(again["inputRequests"].get(&key).is_some(), "{again}");
    assert_ne!(again["requestState"], r["requestState"]);
    let mut retry = params.clone();
    retry["requestState"] = again["requestState"].clone();
    retry["inputResponses"] = json!({ key: { "action": "accept", "content": { "answer": "Ada" } } });
    let done = m.call("tools/call", retry).await;
    assert_eq!(
        done.result()["structuredContent"]["content"]["answer"],
        "Ada",
        "{}",
        done.response()
    );

    let r = m
        .call("tools/call", json!({ "name": "list_roots", "arguments": {} }))
        .await
        .result()
        .clone();
    let (key, req) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(req["method"], "roots/list");
    let roots = json!([{ "uri": "file:///w", "name": "w" }]);
    let done = m
        .call(
            "tools/call",
            json!({ "name": "list_roots", "arguments": {}, "requestState": r["requestState"], "inputResponses": { key: { "roots": roots } } }),
        )
        .await;
    assert_eq!(
        done.result()["structuredContent"]["roots"],
        roots,
        "{}",
        done.response()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_capability_is_missing_required_client_capability() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({ "elicitation": {} }));
    let a = m
        .call(
            "tools/call",
            json!({ "name": "sample", "arguments": { "prompt": "?" } }),
        )
        .await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::BAD_REQUEST, -32021),
        "{}",
        a.response()
    );
    assert_eq!(
        a.response()["error"]["data"]["requiredCapabilities"],
        json!({ "sampling": {} })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_expires_and_its_state_is_refused() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "stateless:\n  input_wait: 200ms\n",
        &[http_target("h", &fx.mcp_url(), "")],
    ))
    .await;
    let m = Modern::new(&gw, all_client_capabilities());
    let params = json!({ "name": "sample", "arguments": { "prompt": "slow" } });
    let r = m.call("tools/call", params.clone()).await.result().clone();
    let key = r["inputRequests"].as_object().unwrap().keys().next().unwrap().clone();
    tokio::time::sleep(Duration::from_millis(400)).await;
    eventually("the held upstream call to be cancelled", || {
        fx.stats().snapshot().cancellations == 1
    })
    .await;
    let mut retry = params;
    retry["requestState"] = r["requestState"].clone();
    retry["inputResponses"] = json!({ key: sampling_answer("late") });
    let a = m.call("tools/call", retry).await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::BAD_REQUEST, -32602),
        "{}",
        a.response()
    );
    assert!(
        a.response()["error"]["message"].as_str().unwrap().contains("expired"),
        "{}",
        a.response()
    );
}

impl Modern {
    /// Opens `subscriptions/listen` with request id `id`; returns the response stream.
    pub(crate) async fn listen(&self, id: i64, notifications: Value) -> SseStream {
        let params = self.with_meta(json!({ "notifications": notifications }));
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": params });
        let resp = within(
            "subscriptions/listen",
            self.http
                .post(&self.url)
                .headers(self.headers("subscriptions/listen", &params))
                .json(&body)
                .send(),
        )
        .await
        .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        SseStream::new(resp)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_streams_carry_only_what_was_asked_tagged_and_unsubscribe_on_close() {
    let (gw, _fx) = gateway_with_http_target().await;
    let m = Modern::new(&gw, json!({}));
    let discover = m.call("server/discover", json!({})).await.result().clone();
    assert_eq!(discover["capabilities"]["tools"]["listChanged"], true, "{discover}");
    assert_eq!(discover["capabilities"]["resources"]["subscribe"], true, "{discover}");
    let list = m.call("resources/list", json!({})).await;
    let uri = list.result()["resources"][0]["uri"].as_str().unwrap().to_owned();

    let mut a = m
        .listen(
            41,
            json!({ "toolsListChanged": true, "resourceSubscriptions": [uri, "nowhere://x"] }),
        )
        .await;
    let ack = a.next_message().await.expect("the acknowledgment");
    assert!(
        is_notification(&ack, "notifications/subscriptions/acknowledged"),
        "first: {ack}"
    );
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 41);
    assert_eq!(
        ack["params"]["notifications"],
        json!({ "toolsListChanged": true, "resourceSubscriptions": [uri] }),
        "an unknown URI is not acknowledged"
    );
    let mut b = m.listen(42, json!({ "promptsListChanged": true })).await;
    let ack = b.next_message().await.expect("the acknowledgment");
    assert_eq!(ack["params"]["notifications"], json!({ "promptsListChanged": true }));
    assert_eq!(gw.core.session_count(), 2, "each open listen stream is tracked");

    // A tools change reaches the stream that asked for it, tagged; not the prompts-only one.
    m.call(
        "tools/call",
        json!({ "name": "add_tool", "arguments": { "name": "added" } }),
    )
    .await
    .result();
    let n = a
        .expect("tools/list_changed", |x| {
            is_notification(x, "notifications/tools/list_changed")
        })
        .await;
    assert_eq!(
        n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 41,
        "{n}"
    );
    let leaked = tokio::time::timeout(Duration::from_millis(300), b.next_message()).await;
    assert!(leaked.is_err(), "the prompts-only stream got {leaked:?}");

    // The gateway subscribed upstream on the client's behalf.
    let touched = m
        .call(
            "tools/call",
            json!({ "name": "touch_resource", "arguments": { "uri": uri } }),
        )
        .await;
    assert!(
        touched.result()["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Notified 1 "),
        "{}",
        touched.response()
    );
    let n = a
        .expect("resources/updated", |x| {
            is_notification(x, "notifications/resources/updated")
        })
        .await;
    assert_eq!(n["params"]["uri"], uri);
    assert_eq!(n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 41);

    // Closing the stream ends the subscription and unsubscribes upstream.
    drop(a);
    eventually("the closed listen stream to be forgotten", || {
        gw.core.session_count() == 1
    })
    .await;
    let mut text = String::new();
    for _ in 0..50 {
        let t = m
            .call(
                "tools/call",
                json!({ "name": "touch_resource", "arguments": { "uri": uri } }),
            )
            .await;
        text = t.result()["content"][0]["text"].as_str().unwrap().to_owned();
        if text.starts_with("Notified 0 ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        text.starts_with("Notified 0 "),
        "the upstream subscription was not removed: {text}"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_calls_are_bounded() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "stateless:\n  max_held_calls: 1\n",
        &[http_target("h", &fx.mcp_url(), "")],
    ))
    .await;
    let m = Modern::new(&gw, all_client_capabilities());
    let params = json!({ "name": "sample", "arguments": { "prompt": "one" } });
    let first = m.call("tools/call", params.clone()).await;
    assert_eq!(first.result()["resultType"], "input_required");
    let second = m.call("tools/call", params).await;
    assert_eq!(second.error_code(), -32603, "{}", second.response());
    eventually("the refused call to be cancelled upstream", || {
        fx.stats().snapshot().cancellations == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_the_key_recognise_the_state_but_only_the_holder_resumes() {
    let fx = named_fixture("h").await;
    let key = "stateless:\n  request_state_key: 0123456789abcdef0123456789abcdef\n";
    let targets = [http_target("h", &fx.mcp_url(), "")];
    let a = Gateway::start(&config(key, &targets)).await;
    let b = Gateway::start(&config(key, &targets)).await;
    let other = Gateway::start(&config("", &targets)).await;
    let params = json!({ "name": "sample", "arguments": { "prompt": "where?" } });
    let r = Modern::new(&a, all_client_capabilities())
        .call("tools/call", params.clone())
        .await
        .result()
        .clone();
    let k = r["inputRequests"].as_object().unwrap().keys().next().unwrap().clone();
    let mut retry = params;
    retry["requestState"] = r["requestState"].clone();
    retry["inputResponses"] = json!({ k: sampling_answer("here") });
    let on_b = Modern::new(&b, all_client_capabilities())
        .call("tools/call", retry.clone())
        .await;
    assert_eq!(on_b.error_code(), -32602);
    assert!(
        on_b.response()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another replica"),
        "{}",
        on_b.response()
    );
    let on_other = Modern::new(&other, all_client_capabilities())
        .call("tools/call", retry.clone())
        .await;
    assert!(
        on_other.response()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed verification"),
        "{}",
        on_other.response()
    );
    let on_a = Modern::new(&a, all_client_capabilities())
        .call("tools/call", retry)
        .await;
    assert_eq!(on_a.result()["content"][0]["text"], "here", "{}", on_a.response());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_filter_discover_and_lists_and_make_them_private() {
    // API keys "test-key-alice" (groups: dev) and "test-key-bob" (no groups), as in auth.rs.
    let head = "auth:\n  hide_denied: true\n  api_keys:\n    - {hash: ad77f83d5d5b9a3b738cfc75982ec0460450b94aa1bac0f16451a1142c89c4c8, subject: alice, claims: {groups: [dev]}}\n    - {hash: 9c854c32c3e1e4018e592ff35ce24355578613133dd3cf727cedd43fe7f89564, subject: bob}\npolicies:\n  - allow: { tools: [\"ex:echo\"] }\n    when: { claims: { groups: { contains: dev } } }\n";
    let gw = Gateway::start(&config(
        head,
        &[stdio_target("ex", &[], ""), stdio_target("other", &[], "")],
    ))
    .await;
    let alice = Modern::new(&gw, json!({})).with_key("test-key-alice");
    let bob = Modern::new(&gw, json!({})).with_key("test-key-bob");

    let r = alice.call("tools/list", json!({})).await.result().clone();
    let names: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["ex_echo"], "{r}");
    assert_eq!(
        r["cacheScope"], "private",
        "a list filtered per identity is private: {r}"
    );
    let d = alice.call("server/discover", json!({})).await.result().clone();
    assert!(
        d["capabilities"]["tools"].is_object(),
        "alice may use a target with tools: {d}"
    );
    assert_eq!(d["cacheScope"], "private");

    let r = bob.call("tools/list", json!({})).await.result().clone();
    assert_eq!(r["tools"], json!([]), "{r}");
    let d = bob.call("server/discover", json!({})).await.result().clone();
    assert!(d["capabilities"].get("tools").is_none(), "bob may use no target: {d}");
    let a = bob
        .call(
            "tools/call",
            json!({ "name": "ex_echo", "arguments": { "message": "x" } }),
        )
        .await;
    assert_eq!(
        a.error_code(),
        -32602,
        "a denial looks like an unknown tool: {}",
        a.response()
    );

    let anonymous = Modern::new(&gw, json!({}));
    let params = anonymous.with_meta(json!({}));
    let resp = anonymous
        .http
        .post(&anonymous.url)
        .headers(anonymous.headers("tools/list", &params))
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "stateless requests are authenticated at the edge"
    );
}
