//! `--era modern|dual`: the 2026-07-28 (stateless) revision over Streamable HTTP and stdio,
//! written from the specification pages of that revision (versioning, transports, patterns,
//! server/discover, schema).

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use mcpgate_example_server::{COUNTER_URI, Era, ExampleServer, HttpFixture, Options, spawn_http};
use serde_json::{Value, json};

use crate::common::{HttpClient, LineClient, Reply, SseStream, text};

const V: &str = "2026-07-28";
const SUB: &str = "io.modelcontextprotocol/subscriptionId";

fn meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "modern-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": caps,
    })
}

fn opts(era: Era) -> Options {
    Options {
        era,
        ..Options::default()
    }
}

/// A 2026-07-28 HTTP client: every POST carries `_meta` (unless given) and the request
/// metadata headers derived from the body, as a conforming client sends them.
struct Modern {
    http: HttpClient,
    next_id: i64,
}

impl Modern {
    async fn start(era: Era) -> (HttpFixture, Modern) {
        Modern::with(opts(era)).await
    }

    async fn with(o: Options) -> (HttpFixture, Modern) {
        let f = spawn_http(o).await.unwrap();
        let m = Modern {
            http: HttpClient::new(&f.mcp_url()),
            next_id: 1,
        };
        (f, m)
    }

    /// A request body; `params` gets `_meta` with these capabilities unless it has one.
    fn body(&mut self, method: &str, mut params: Value, caps: Value) -> Value {
        if params.get("_meta").is_none() {
            params["_meta"] = meta(caps);
        }
        let id = self.next_id;
        self.next_id += 1;
        json!({"jsonrpc":"2.0","id":id,"method":method,"params":params})
    }

    /// The headers a conforming client derives from `body`.
    fn headers(body: &Value) -> Vec<(String, String)> {
        let mut h = vec![("mcp-method".to_owned(), body["method"].as_str().unwrap().to_owned())];
        if let Some(v) = body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"].as_str() {
            h.push(("mcp-protocol-version".into(), v.into()));
        }
        let name = match body["method"].as_str().unwrap() {
            "tools/call" | "prompts/get" => body["params"]["name"].as_str(),
            "resources/read" => body["params"]["uri"].as_str(),
            _ => None,
        };
        if let Some(n) = name {
            h.push(("mcp-name".into(), n.into()));
        }
        h
    }

    async fn post(&self, body: &Value) -> Reply {
        let h = Modern::headers(body);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.http.post_with(body, &h).await
    }

    async fn stream(&self, body: &Value) -> SseStream {
        let h = Modern::headers(body);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.http.post_stream_with(body, &h).await
    }

    async fn request(&mut self, method: &str, params: Value) -> Reply {
        let b = self.body(method, params, json!({}));
        self.post(&b).await
    }

    async fn call(&mut self, tool: &str, args: Value, caps: Value) -> Reply {
        let b = self.body("tools/call", json!({"name": tool, "arguments": args}), caps);
        self.post(&b).await
    }
}

fn error_code(r: &Reply) -> i64 {
    r.response()["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {:?}", r.body))
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn discover_names_versions_capabilities_and_identity() {
    let (_f, mut c) = Modern::with(Options {
        era: Era::Modern,
        ttl_ms: 1234,
        name: "modern-fixture".into(),
        ..Options::default()
    })
    .await;
    let r = c.request("server/discover", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type().starts_with("application/json"));
    assert!(r.headers.get("mcp-session-id").is_none());
    let d = &r.response()["result"];
    assert_eq!(d["resultType"], "complete");
    assert_eq!(d["supportedVersions"], json!([V]));
    assert_eq!(d["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(d["capabilities"]["prompts"]["listChanged"], true);
    assert_eq!(
        d["capabilities"]["resources"],
        json!({"subscribe": true, "listChanged": true})
    );
    assert!(d["capabilities"]["logging"].is_object());
    assert!(d["capabilities"]["completions"].is_object());
    assert_eq!(
        d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "modern-fixture"
    );
    assert!(d["_meta"]["io.modelcontextprotocol/serverInfo"]["version"].is_string());
    assert!(d["instructions"].as_str().unwrap().contains("echo"));
    assert_eq!(d["ttlMs"], 1234);
    assert_eq!(d["cacheScope"], "public");

    // A dual-era server lists both generations, newest first.
    let (_f, mut c) = Modern::start(Era::Dual).await;
    let d = c.request("server/discover", json!({})).await.response();
    let versions = d["result"]["supportedVersions"].as_array().unwrap().clone();
    assert_eq!(versions[0], V);
    assert!(versions.contains(&json!("2025-11-25")) && versions.contains(&json!("2024-11-05")));
}

#[tokio::test]
async fn meta_is_required_and_versions_are_checked() {
    let (f, c) = Modern::start(Era::Modern).await;
    let headers = [("mcp-protocol-version", V), ("mcp-method", "tools/list")];
    // No _meta at all.
    let r = c
        .http
        .post_with(
            &json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}),
            &headers,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r), -32602);
    assert_eq!(r.response()["id"], 1);
    // _meta without clientCapabilities.
    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/list",
        "params":{"_meta":{"io.modelcontextprotocol/protocolVersion": V}}});
    let r = c.http.post_with(&body, &headers).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::BAD_REQUEST, -32602));
    assert!(
        r.response()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("clientCapabilities")
    );
    // An unknown version (header and _meta agree): -32022 with supported/requested.
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/protocolVersion"] = json!("1900-01-01");
    let body = json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta": m}});
    let r = c
        .http
        .post_with(
            &body,
            &[("mcp-protocol-version", "1900-01-01"), ("mcp-method", "tools/list")],
        )
        .await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::BAD_REQUEST, -32022));
    assert_eq!(
        r.response()["error"]["data"],
        json!({"supported": [V], "requested": "1900-01-01"})
    );
    // A session-based version sent the modern way to a modern-only server is unsupported too.
    m["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let body = json!({"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta": m}});
    let r = c
        .http
        .post_with(
            &body,
            &[("mcp-protocol-version", "2025-11-25"), ("mcp-method", "tools/list")],
        )
        .await;
    assert_eq!(error_code(&r), -32022);
    // A bad log level.
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/logLevel"] = json!("loud");
    let body = json!({"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"_meta": m}});
    assert_eq!(error_code(&c.http.post_with(&body, &headers).await), -32602);
    // Nothing above reached a handler.
    assert_eq!(f.stats().method("tools/list"), 0);
}

#[tokio::test]
async fn request_headers_must_match_the_body() {
    let (f, mut c) = Modern::start(Era::Modern).await;
    let call = c.body(
        "tools/call",
        json!({"name":"echo","arguments":{"message":"hi"}}),
        json!({}),
    );
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case<'_>; 7] = [
        (
            "no version header",
            vec![("mcp-method", "tools/call"), ("mcp-name", "echo")],
            "MCP-Protocol-Version",
        ),
        (
            "version header differs from _meta",
            vec![
                ("mcp-protocol-version", "2099-01-01"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            "does not match",
        ),
        (
            "no method header",
            vec![("mcp-protocol-version", V), ("mcp-name", "echo")],
            "Mcp-Method",
        ),
        (
            "method header differs",
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/list"),
                ("mcp-name", "echo"),
            ],
            "does not match",
        ),
        (
            "no name header",
            vec![("mcp-protocol-version", V), ("mcp-method", "tools/call")],
            "Mcp-Name",
        ),
        (
            "name header differs",
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "add"),
            ],
            "does not match",
        ),
        (
            "name header is broken Base64",
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?***?="),
            ],
            "Base64",
        ),
    ];
    for (what, headers, needle) in cases {
        let r = c.http.post_with(&call, &headers).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(error_code(&r), -32020, "{what}");
        let msg = r.response()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    assert_eq!(f.stats().tool_calls(), 0);
    // The Base64 sentinel form of the right name is accepted (decoded before comparing).
    let ok = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?ZWNobw==?="),
    ];
    let r = c.http.post_with(&call, &ok).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(text(&r.response()), "hi");
    // resources/read compares Mcp-Name with params.uri.
    let read = c.body("resources/read", json!({"uri": "example://readme"}), json!({}));
    let r = c
        .http
        .post_with(
            &read,
            &[
                ("mcp-protocol-version", V),
                ("mcp-method", "resources/read"),
                ("mcp-name", "example://counter"),
            ],
        )
        .await;
    assert_eq!(error_code(&r), -32020);
    assert_eq!(c.post(&read).await.status, StatusCode::OK);
    // Every POST's Mcp-* headers were recorded, in order.
    let seen = f.request_headers();
    assert_eq!(seen.len(), 10);
    let last = seen.last().unwrap();
    assert!(last.contains(&("mcp-method".into(), "resources/read".into())));
    assert!(last.contains(&("mcp-name".into(), "example://readme".into())));
    assert!(last.contains(&("mcp-protocol-version".into(), V.into())));
    assert!(seen[7].contains(&("mcp-name".into(), "=?base64?ZWNobw==?=".into())));
}

#[tokio::test]
async fn no_sessions_no_initialize_no_get_stream() {
    let (f, mut c) = Modern::start(Era::Modern).await;
    // initialize: refused with an error that names the supported versions (HTTP 400).
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"legacy","version":"0"}}});
    let r = c.http.post(&init).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get("mcp-session-id").is_none());
    let e = &r.response()["error"];
    assert_eq!(e["code"], -32022);
    assert_eq!(e["data"], json!({"supported": [V], "requested": "2025-11-25"}));
    assert!(e["message"].as_str().unwrap().contains(V));
    assert_eq!(f.server().session_count(), 0, "initialize opened no session");
    // GET and DELETE: 405; the legacy SSE endpoints do not exist.
    assert_eq!(
        c.http.send_method(Method::GET, &f.mcp_url()).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        c.http.send_method(Method::DELETE, &f.mcp_url()).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        c.http.send_method(Method::GET, &f.sse_url()).await.status,
        StatusCode::NOT_FOUND
    );
    // An Mcp-Session-Id is ignored and never echoed.
    c.http.session = Some("0123456789abcdef".into());
    let r = c.request("tools/list", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("mcp-session-id").is_none());
    // Methods 2026-07-28 does not have: 404 with -32601.
    for m in ["ping", "logging/setLevel", "resources/subscribe", "nope/nothing"] {
        let r = c.request(m, json!({"level":"info","uri":COUNTER_URI})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
        assert_eq!(error_code(&r), -32601, "{m}");
    }
    // A batch is not a 2026-07-28 message.
    let a = c.body("tools/list", json!({}), json!({}));
    let r = c
        .http
        .post_with(
            &json!([a]),
            &[("mcp-protocol-version", V), ("mcp-method", "tools/list")],
        )
        .await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::BAD_REQUEST, -32600));
}

#[tokio::test]
async fn results_carry_result_type_and_cache_hints() {
    let (_f, mut c) = Modern::start(Era::Modern).await;
    for (method, key) in [
        ("tools/list", "tools"),
        ("prompts/list", "prompts"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
    ] {
        let r = c.request(method, json!({})).await.response();
        let res = &r["result"];
        assert_eq!(res["resultType"], "complete", "{method}");
        assert_eq!(res["ttlMs"], 30000, "{method}");
        assert_eq!(res["cacheScope"], "public", "{method}");
        assert!(!res[key].as_array().unwrap().is_empty(), "{method}");
    }
    let tools = c.request("tools/list", json!({})).await.response();
    let elicit = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "elicit")
        .unwrap()
        .clone();
    assert_eq!(elicit["inputSchema"]["properties"]["rounds"]["maximum"], 2);
    let read = c
        .request("resources/read", json!({"uri":"example://readme"}))
        .await
        .response();
    assert_eq!(read["result"]["resultType"], "complete");
    assert_eq!(read["result"]["ttlMs"], 30000);
    let live = c
        .request("resources/read", json!({"uri": COUNTER_URI}))
        .await
        .response();
    assert_eq!(live["result"]["ttlMs"], 0, "the counter changes at any time");
    let call = c.call("add", json!({"a": 2, "b": 3}), json!({})).await.response();
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(call["result"]["structuredContent"]["sum"], 5);
    assert!(call["result"].get("ttlMs").is_none(), "tool results are not cacheable");
    let prompt = c.request("prompts/get", json!({"name":"greeting"})).await.response();
    assert_eq!(prompt["result"]["resultType"], "complete");
    // A failing tool is still a complete result, with isError.
    let fail = c.call("fail", json!({}), json!({})).await.response();
    assert_eq!(fail["result"]["isError"], true);
    assert_eq!(fail["result"]["resultType"], "complete");
}

fn input_required(r: &Reply) -> (Value, String) {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let res = r.response()["result"].clone();
    assert_eq!(res["resultType"], "input_required", "{res}");
    assert!(
        res.get("ttlMs").is_none(),
        "input_required results carry no cache hints"
    );
    let state = res["requestState"].as_str().expect("requestState").to_owned();
    (res["inputRequests"].clone(), state)
}

#[tokio::test]
async fn sampling_round_trip_and_request_state_checks() {
    let (f, mut c) = Modern::start(Era::Modern).await;
    let caps = json!({"sampling": {}});
    let args = json!({"prompt": "Capital of France?", "max_tokens": 20});
    let first = c.call("sample", args.clone(), caps.clone()).await;
    let (reqs, state) = input_required(&first);
    assert_eq!(reqs["sample"]["method"], "sampling/createMessage");
    assert_eq!(reqs["sample"]["params"]["maxTokens"], 20);
    assert_eq!(
        reqs["sample"]["params"]["messages"][0]["content"]["text"],
        "Capital of France?"
    );
    assert_eq!(f.server().pending_request_states(), 1);
    let answer = json!({"sample": {"role": "assistant", "model": "m",
        "content": {"type": "text", "text": "Paris"}}});
    let retry = |state: &str, args: &Value| json!({"name": "sample", "arguments": args, "requestState": state, "inputResponses": answer});
    let b = c.body("tools/call", retry(&state, &args), caps.clone());
    let done = c.post(&b).await.response();
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(text(&done), "Paris");
    assert_eq!(f.server().pending_request_states(), 0);
    // The same state again (single use), a forged one, one for other arguments: -32602.
    let b = c.body("tools/call", retry(&state, &args), caps.clone());
    assert_eq!(error_code(&c.post(&b).await), -32602);
    let b = c.body("tools/call", retry("forged-state", &args), caps.clone());
    assert_eq!(error_code(&c.post(&b).await), -32602);
    // A state on a tool that never asks for input is not one this server issued either.
    let b = c.body(
        "tools/call",
        json!({"name":"echo","arguments":{"message":"m"},"requestState":state}),
        json!({}),
    );
    assert_eq!(error_code(&c.post(&b).await), -32602);
    let b = c.body(
        "resources/read",
        json!({"uri":"example://readme","requestState":"x"}),
        json!({}),
    );
    assert_eq!(error_code(&c.post(&b).await), -32602);
    let (_, state) = input_required(&c.call("sample", args.clone(), caps.clone()).await);
    let b = c.body("tools/call", retry(&state, &json!({"prompt": "other"})), caps.clone());
    let r = c.post(&b).await;
    assert_eq!(error_code(&r), -32602);
    assert!(
        r.response()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("different request")
    );
    // A retry without the answer is asked again (a new state), not failed.
    let (_, state) = input_required(&c.call("sample", args.clone(), caps.clone()).await);
    let b = c.body(
        "tools/call",
        json!({"name":"sample","arguments":args,"requestState":state,"inputResponses":{"other":{}}}),
        caps.clone(),
    );
    let (reqs, state2) = input_required(&c.post(&b).await);
    assert!(reqs["sample"].is_object());
    assert_ne!(state, state2);
}

#[tokio::test]
async fn missing_client_capability_is_refused_before_asking() {
    let (f, mut c) = Modern::start(Era::Modern).await;
    for (tool, args, cap) in [
        ("sample", json!({"prompt": "x"}), "sampling"),
        ("elicit", json!({"question": "x"}), "elicitation"),
        ("list_roots", json!({}), "roots"),
    ] {
        let r = c.call(tool, args, json!({})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{tool}");
        let e = &r.response()["error"];
        assert_eq!(e["code"], -32021, "{tool}");
        assert!(e["data"]["requiredCapabilities"][cap].is_object(), "{tool}: {e}");
    }
    // Elicitation declared for URL mode only does not cover this form-mode request.
    let r = c
        .call("elicit", json!({"question": "x"}), json!({"elicitation": {"url": {}}}))
        .await;
    assert_eq!(error_code(&r), -32021);
    assert_eq!(f.server().pending_request_states(), 0);
}

#[tokio::test]
async fn two_round_elicitation_and_roots() {
    let (_f, mut c) = Modern::start(Era::Modern).await;
    let caps = json!({"elicitation": {"form": {}}, "roots": {}});
    let args = json!({"question": "Your name?", "rounds": 2});
    let (reqs, state) = input_required(&c.call("elicit", args.clone(), caps.clone()).await);
    assert_eq!(reqs["elicit"]["method"], "elicitation/create");
    assert_eq!(reqs["elicit"]["params"]["mode"], "form");
    assert_eq!(reqs["elicit"]["params"]["message"], "Your name?");
    let b = c.body(
        "tools/call",
        json!({"name":"elicit","arguments":args,"requestState":state,
               "inputResponses":{"elicit":{"action":"accept","content":{"answer":"Ada"}}}}),
        caps.clone(),
    );
    let (reqs, state) = input_required(&c.post(&b).await);
    assert_eq!(reqs["confirm"]["method"], "elicitation/create");
    assert!(reqs["confirm"]["params"]["message"].as_str().unwrap().contains("Ada"));
    assert!(reqs.get("elicit").is_none());
    let b = c.body(
        "tools/call",
        json!({"name":"elicit","arguments":args,"requestState":state,
               "inputResponses":{"confirm":{"action":"accept","content":{"confirm":true}}}}),
        caps.clone(),
    );
    let done = c.post(&b).await.response();
    let s = &done["result"]["structuredContent"];
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(s["action"], "accept");
    assert_eq!(s["content"]["answer"], "Ada");
    assert_eq!(s["confirm"]["content"]["confirm"], true);

    let (reqs, state) = input_required(&c.call("list_roots", json!({}), caps.clone()).await);
    assert_eq!(reqs["roots"]["method"], "roots/list");
    let b = c.body(
        "tools/call",
        json!({"name":"list_roots","arguments":{},"requestState":state,
               "inputResponses":{"roots":{"roots":[{"uri":"file:///work","name":"work"}]}}}),
        caps,
    );
    let done = c.post(&b).await.response();
    assert_eq!(done["result"]["structuredContent"]["roots"][0]["uri"], "file:///work");
}

#[tokio::test]
async fn log_messages_only_when_asked_and_at_or_above_the_level() {
    let (_f, mut c) = Modern::start(Era::Modern).await;
    // No logLevel: no notifications/message, a plain JSON answer.
    let r = c.call("log", json!({"level":"error","message":"m"}), json!({})).await;
    assert!(r.content_type().starts_with("application/json"));
    assert!(text(&r.response()).starts_with("Not sent"));
    // logLevel error: a warning is below it.
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/logLevel"] = json!("error");
    let b = c.body(
        "tools/call",
        json!({"name":"log","arguments":{"level":"warning","message":"w"},"_meta": m}),
        json!({}),
    );
    let r = c.post(&b).await;
    assert_eq!(r.messages().len(), 1, "{:?}", r.body);
    assert!(text(&r.response()).starts_with("Not sent"));
    // logLevel info: the warning goes out on the request's own stream, before the result.
    m["io.modelcontextprotocol/logLevel"] = json!("info");
    let b = c.body(
        "tools/call",
        json!({"name":"log","arguments":{"level":"warning","message":"w"},"_meta": m}),
        json!({}),
    );
    let r = c.post(&b).await;
    assert!(r.content_type().starts_with("text/event-stream"));
    assert_eq!(r.headers.get("x-accel-buffering").unwrap(), "no");
    let msgs = r.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["method"], "notifications/message");
    assert_eq!(msgs[0]["params"]["level"], "warning");
    assert_eq!(msgs[1]["result"]["resultType"], "complete");
}

#[tokio::test]
async fn progress_then_result_and_closing_the_stream_cancels() {
    let (f, mut c) = Modern::start(Era::Modern).await;
    let mut m = meta(json!({}));
    m["progressToken"] = json!("p1");
    let b = c.body(
        "tools/call",
        json!({"name":"long_operation","arguments":{"steps":2,"delay_ms":5},"_meta": m}),
        json!({}),
    );
    let r = c.post(&b).await;
    let msgs = r.messages();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["method"], "notifications/progress");
    assert_eq!(msgs[0]["params"]["progressToken"], "p1");
    assert_eq!(msgs[2]["result"]["resultType"], "complete");
    assert_eq!(f.stats().snapshot().cancellations, 0);

    // Close the response stream after the first progress event: that cancels the request.
    let b = c.body(
        "tools/call",
        json!({"name":"long_operation","arguments":{"steps":1000,"delay_ms":20},"_meta": m}),
        json!({}),
    );
    let mut s = c.stream(&b).await;
    assert_eq!(s.next_json().await.unwrap()["method"], "notifications/progress");
    drop(s);
    eventually("the cancellation", || f.stats().snapshot().cancellations == 1).await;

    // The same without any stream: a JSON-answered call whose connection closes.
    let (f2, mut c2) = Modern::with(Options {
        era: Era::Modern,
        call_delay: Duration::from_secs(30),
        ..Options::default()
    })
    .await;
    let b = c2.body(
        "tools/call",
        json!({"name":"echo","arguments":{"message":"x"}}),
        json!({}),
    );
    let pending = tokio::spawn(async move { c2.post(&b).await });
    eventually("the call to arrive", || f2.stats().tool_calls() == 1).await;
    pending.abort();
    eventually("the cancellation", || f2.stats().snapshot().cancellations == 1).await;
}

#[tokio::test]
async fn sse_responses_flag_streams_every_answer() {
    let (_f, mut c) = Modern::with(Options {
        era: Era::Modern,
        sse_responses: true,
        ..Options::default()
    })
    .await;
    let r = c.request("server/discover", json!({})).await;
    assert!(r.content_type().starts_with("text/event-stream"));
    assert_eq!(r.response()["result"]["supportedVersions"], json!([V]));
    // Validation errors still come back as 400 JSON before any stream.
    let r = c.call("sample", json!({"prompt":"x"}), json!({})).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::BAD_REQUEST, -32021));
}

#[tokio::test]
async fn listen_acknowledges_then_delivers_what_was_asked() {
    let (f, mut c) = Modern::start(Era::Modern).await;
    let b = c.body(
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true,
            "resourceSubscriptions": [COUNTER_URI, "example://nope"]}}),
        json!({}),
    );
    let id = b["id"].clone();
    let mut s = c.stream(&b).await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(
        s.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let ack = s.next_json().await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"][SUB], id);
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": [COUNTER_URI]})
    );
    assert_eq!(f.server().subscription_count(), 1);

    // add_tool (the tool) announces the change; prompts were not asked for.
    assert_eq!(f.server().notify_prompts_list_changed(), 0);
    let r = c.call("add_tool", json!({"name": "fresh"}), json!({})).await;
    assert_eq!(r.response()["result"]["resultType"], "complete");
    let n = s.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/tools/list_changed");
    assert_eq!(n["params"]["_meta"][SUB], id);
    // touch_resource (the tool) and the in-process trigger.
    c.call("touch_resource", json!({"uri": COUNTER_URI}), json!({})).await;
    let n = s.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/resources/updated");
    assert_eq!(n["params"]["uri"], COUNTER_URI);
    assert_eq!(n["params"]["_meta"][SUB], id);
    assert_eq!(f.server().notify_resource_updated("example://readme"), 0);
    assert_eq!(f.server().notify_tools_list_changed(), 1);
    assert_eq!(
        s.next_json().await.unwrap()["method"],
        "notifications/tools/list_changed"
    );

    // The server ends it gracefully: notifications/cancelled, then the result; the stream ends.
    assert_eq!(f.server().end_subscriptions(), 1);
    let n = s.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/cancelled");
    assert_eq!(n["params"]["requestId"], id);
    let done = s.next_json().await.unwrap();
    assert_eq!(done["id"], id);
    assert_eq!(done["result"], json!({"resultType": "complete", "_meta": {SUB: id}}));
    assert!(s.next_event().await.is_none());
    assert_eq!(f.server().subscription_count(), 0);
    assert_eq!(f.stats().snapshot().cancellations, 0);

    // A client closing its listen stream cancels the subscription.
    let b = c.body(
        "subscriptions/listen",
        json!({"notifications": {"promptsListChanged": true}}),
        json!({}),
    );
    let mut s = c.stream(&b).await;
    s.next_json().await.unwrap();
    assert_eq!(f.server().subscription_count(), 1);
    drop(s);
    eventually("the subscription to end", || f.server().subscription_count() == 0).await;
    assert_eq!(f.stats().snapshot().cancellations, 1);
    // A listen without a filter is invalid.
    let r = c.request("subscriptions/listen", json!({})).await;
    assert_eq!(error_code(&r), -32602);
}

#[tokio::test]
async fn echo_meta_returns_the_request_meta() {
    let (_f, mut c) = Modern::with(Options {
        era: Era::Modern,
        echo_meta: true,
        ..Options::default()
    })
    .await;
    let mut m = meta(json!({"roots": {}}));
    m["traceparent"] = json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let b = c.body(
        "tools/call",
        json!({"name":"echo_meta","arguments":{},"_meta": m.clone()}),
        json!({}),
    );
    let r = c.post(&b).await.response();
    assert_eq!(r["result"]["structuredContent"]["meta"], m);
}

#[tokio::test]
async fn dual_serves_sessions_and_stateless_requests_side_by_side() {
    let (f, mut modern) = Modern::start(Era::Dual).await;
    let mut legacy = HttpClient::new(&f.mcp_url());
    let init = legacy.initialize("2025-11-25", json!({})).await;
    assert!(legacy.session.is_some());
    assert_eq!(init.response()["result"]["protocolVersion"], "2025-11-25");
    // The session-based answer is today's (no resultType, no cache hints).
    let r = legacy.request("tools/list", json!({})).await.response();
    assert!(r["result"].get("resultType").is_none());
    assert!(r["result"].get("ttlMs").is_none());
    // Beside it, a stateless request gets a 2026-07-28 answer, and no session.
    let r = modern.request("tools/list", json!({})).await;
    assert!(r.headers.get("mcp-session-id").is_none());
    assert_eq!(r.response()["result"]["resultType"], "complete");
    // A session-based request without a session and without _meta is today's 400.
    let r = HttpClient::new(&f.mcp_url()).request("tools/list", json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r), -32000);
    // server/discover exists in dual mode; in a session it is still unknown.
    assert_eq!(
        modern.request("server/discover", json!({})).await.status,
        StatusCode::OK
    );
    let r = legacy.request("server/discover", json!({})).await.response();
    assert_eq!(r["error"]["code"], -32601);
    // A modern version in the header alone is enough to be served the modern way.
    let r = legacy_less_post(&f, &[("mcp-protocol-version", V), ("mcp-method", "tools/list")]).await;
    assert_eq!((r.status, error_code(&r)), (StatusCode::BAD_REQUEST, -32602));
    // Sessions still get server→client requests; the same tool is multi-round-trip statelessly.
    let (reqs, _) = input_required(
        &modern
            .call("sample", json!({"prompt":"p"}), json!({"sampling":{}}))
            .await,
    );
    assert!(reqs["sample"].is_object());
    // add_tool reaches both: the session's stream and a subscription.
    let b = modern.body(
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
        json!({}),
    );
    let mut s = modern.stream(&b).await;
    s.next_json().await.unwrap();
    assert_eq!(f.server().notify_tools_list_changed(), 2);
    assert_eq!(
        s.next_json().await.unwrap()["method"],
        "notifications/tools/list_changed"
    );
    let mut get = legacy.get_stream(&f.mcp_url()).await;
    assert_eq!(
        get.next_json().await.unwrap()["method"],
        "notifications/tools/list_changed"
    );
}

async fn legacy_less_post(f: &HttpFixture, headers: &[(&str, &str)]) -> Reply {
    HttpClient::new(&f.mcp_url())
        .post_with(
            &json!({"jsonrpc":"2.0","id":9,"method":"tools/list","params":{}}),
            headers,
        )
        .await
}

#[tokio::test]
async fn session_era_is_unchanged() {
    let (f, c) = Modern::start(Era::Session).await;
    // No modern path: a stateless-looking request without a session is today's 400, and an
    // unknown version header is today's plain 400.
    let b = json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta": meta(json!({}))}});
    let r = c.post(&b).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r), -32000);
    assert!(
        f.request_headers().is_empty(),
        "headers are recorded only for modern/dual or echo_meta"
    );
    let tools = c.http.clone();
    let mut s = tools;
    s.initialize("2025-11-25", json!({})).await;
    let r = s.request("server/discover", json!({})).await.response();
    assert_eq!(r["error"]["code"], -32601);
}

// ---- stdio ----

fn in_process(era: Era) -> (ExampleServer, LineClient, tokio::task::JoinHandle<()>) {
    let server = ExampleServer::new(opts(era));
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let (sr, sw) = tokio::io::split(server_end);
    let task = tokio::spawn({
        let server = server.clone();
        async move {
            let _ = server.serve_io(sr, sw).await;
        }
    });
    let (cr, cw) = tokio::io::split(client_end);
    (server, LineClient::new(cw, cr), task)
}

fn with_meta(mut params: Value, caps: Value) -> Value {
    params["_meta"] = meta(caps);
    params
}

#[tokio::test]
async fn stdio_modern_discover_errors_and_mrtr() {
    let (server, mut c, _t) = in_process(Era::Modern);
    let d = c.request("server/discover", with_meta(json!({}), json!({}))).await;
    assert_eq!(d["result"]["supportedVersions"], json!([V]));
    assert_eq!(d["result"]["resultType"], "complete");
    // Missing _meta, unknown version, initialize, removed methods.
    assert_eq!(c.request("tools/list", json!({})).await["error"]["code"], -32602);
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/protocolVersion"] = json!("2030-01-01");
    let e = c.request("tools/list", json!({"_meta": m})).await;
    assert_eq!(e["error"]["code"], -32022);
    assert_eq!(e["error"]["data"]["requested"], "2030-01-01");
    let init = c
        .request(
            "initialize",
            json!({"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"l","version":"0"}}),
        )
        .await;
    assert_eq!(init["error"]["code"], -32022);
    assert_eq!(init["error"]["data"]["supported"], json!([V]));
    assert_eq!(
        c.request("ping", with_meta(json!({}), json!({}))).await["error"]["code"],
        -32601
    );
    // Multi-round-trip sampling over stdio.
    let caps = json!({"sampling": {}});
    let first = c
        .request(
            "tools/call",
            with_meta(json!({"name":"sample","arguments":{"prompt":"2+2?"}}), caps.clone()),
        )
        .await;
    assert_eq!(first["result"]["resultType"], "input_required");
    let state = first["result"]["requestState"].as_str().unwrap();
    let done = c
        .request(
            "tools/call",
            with_meta(
                json!({"name":"sample","arguments":{"prompt":"2+2?"},"requestState":state,
                       "inputResponses":{"sample":{"role":"assistant","content":{"type":"text","text":"4"}}}}),
                caps.clone(),
            ),
        )
        .await;
    assert_eq!(text(&done), "4");
    // The state was used up; a forged one is refused the same way.
    for state in [state, "forged"] {
        let again = c
            .request(
                "tools/call",
                with_meta(
                    json!({"name":"sample","arguments":{"prompt":"2+2?"},"requestState":state,
                           "inputResponses":{"sample":{"role":"assistant","content":{"type":"text","text":"4"}}}}),
                    caps.clone(),
                ),
            )
            .await;
        assert_eq!(again["error"]["code"], -32602, "{again}");
    }
    let missing = c
        .request(
            "tools/call",
            with_meta(json!({"name":"sample","arguments":{"prompt":"x"}}), json!({})),
        )
        .await;
    assert_eq!(missing["error"]["code"], -32021);
    // The server never wrote a request of its own on stdout.
    assert!(
        c.seen
            .iter()
            .all(|m| m.get("id").is_none() || m.get("method").is_none())
    );
    // A batch is refused.
    c.send_raw(
        &json!([{"jsonrpc":"2.0","id":99,"method":"tools/list","params":with_meta(json!({}), json!({}))}]).to_string(),
    )
    .await;
    let e = c.next().await;
    assert_eq!(e["error"]["code"], -32600);
    assert_eq!(server.stats().method("server/discover"), 1);
}

#[tokio::test]
async fn stdio_listen_logs_and_cancellation() {
    let (server, mut c, task) = in_process(Era::Modern);
    let listen = c
        .start(
            "subscriptions/listen",
            with_meta(
                json!({"notifications":{"toolsListChanged":true,"resourcesListChanged":true}}),
                json!({}),
            ),
        )
        .await;
    let ack = c.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"][SUB], listen);
    // A call's log message (asked for) comes before its response; the list change is tagged.
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/logLevel"] = json!("debug");
    let r = c
        .request(
            "tools/call",
            json!({"name":"log","arguments":{"level":"info","message":"hello"},"_meta": m}),
        )
        .await;
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(
        c.seen
            .iter()
            .any(|m| m["method"] == "notifications/message" && m["params"]["data"] == "hello")
    );
    c.seen.clear();
    let r = c
        .request(
            "tools/call",
            with_meta(json!({"name":"add_tool","arguments":{"name":"dyn"}}), json!({})),
        )
        .await;
    assert!(r["result"]["isError"].is_null());
    let n = c
        .seen
        .iter()
        .find(|m| m["method"] == "notifications/tools/list_changed")
        .cloned()
        .expect("list_changed on the subscription");
    assert_eq!(n["params"]["_meta"][SUB], listen);
    // notifications/cancelled ends the listen request without a response.
    assert_eq!(server.subscription_count(), 1);
    c.notify("notifications/cancelled", json!({"requestId": listen})).await;
    eventually("the subscription to end", || server.subscription_count() == 0).await;
    assert_eq!(server.stats().snapshot().cancellations, 1);
    let d = c.request("server/discover", with_meta(json!({}), json!({}))).await;
    assert!(d["result"].is_object());
    assert!(c.seen.iter().all(|m| m["id"] != json!(listen)));
    // End of input ends an open subscription at once (no 2 s grace wait).
    c.start(
        "subscriptions/listen",
        with_meta(json!({"notifications":{"toolsListChanged":true}}), json!({})),
    )
    .await;
    c.next().await;
    let t = Instant::now();
    c.close_input().await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[tokio::test]
async fn stdio_dual_serves_both_on_one_connection() {
    let (_server, mut c, _t) = in_process(Era::Dual);
    let d = c.request("server/discover", with_meta(json!({}), json!({}))).await;
    assert!(d["result"]["supportedVersions"].as_array().unwrap().len() > 1);
    c.initialize("2025-11-25", json!({})).await;
    let legacy = c.request("tools/list", json!({})).await;
    assert!(legacy["result"].get("resultType").is_none());
    let modern = c.request("tools/list", with_meta(json!({}), json!({}))).await;
    assert_eq!(modern["result"]["resultType"], "complete");
    assert_eq!(c.request("ping", json!({})).await["result"], json!({}));
}

#[tokio::test]
async fn the_binary_takes_era_and_ttl_flags() {
    let mut c = LineClient::spawn(&["--era", "modern", "--ttl-ms", "777"]);
    let d = c.request("server/discover", with_meta(json!({}), json!({}))).await;
    assert_eq!(d["result"]["ttlMs"], 777);
    let l = c.request("tools/list", with_meta(json!({}), json!({}))).await;
    assert_eq!(l["result"]["ttlMs"], 777);
    c.close_input().await;
    assert_eq!(c.exit_code().await, Some(0));
}

#[tokio::test]
async fn stdio_dual_session_gets_two_elicitations_for_two_rounds() {
    let (_server, mut c, _t) = in_process(Era::Dual);
    c.initialize("2025-11-25", json!({"elicitation": {}})).await;
    let id = c
        .start(
            "tools/call",
            json!({"name":"elicit","arguments":{"question":"Colour?","rounds":2}}),
        )
        .await;
    let first = c.next().await;
    assert_eq!(first["method"], "elicitation/create");
    assert_eq!(first["params"]["message"], "Colour?");
    c.send(&json!({"jsonrpc":"2.0","id":first["id"],"result":{"action":"accept","content":{"answer":"red"}}}))
        .await;
    let second = c.next().await;
    assert_eq!(second["method"], "elicitation/create");
    assert!(second["params"]["message"].as_str().unwrap().contains("red"));
    assert_eq!(
        second["params"]["requestedSchema"]["properties"]["confirm"]["type"],
        "boolean"
    );
    c.send(&json!({"jsonrpc":"2.0","id":second["id"],"result":{"action":"decline"}}))
        .await;
    let r = c.wait_for(id).await;
    assert_eq!(
        r["result"]["structuredContent"],
        json!({"action":"accept","content":{"answer":"red"},"confirm":{"action":"decline"}})
    );
    // The session-based answer has no resultType; rounds 3 is invalid arguments (a tool error).
    assert!(r["result"].get("resultType").is_none());
    let r = c.call("elicit", json!({"question":"x","rounds":3})).await;
    assert_eq!(r["result"]["isError"], true);
}

#[tokio::test]
async fn slow_start_delays_discover() {
    let mut c = LineClient::spawn(&["--era", "modern", "--fault", "slow-start:300"]);
    let t = Instant::now();
    let d = c.request("server/discover", with_meta(json!({}), json!({}))).await;
    assert!(d["result"].is_object());
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn mcp_param_headers_of_x_mcp_header_tools_are_checked() {
    let (f, mut c) = Modern::with(Options {
        era: Era::Modern,
        xheader_tools: true,
        ..Options::default()
    })
    .await;
    let args = json!({"region": "Zürich", "tenant": {"id": 42}, "verbose": true, "query": "q"});
    let call = c.body("tools/call", json!({"name": "xh_route", "arguments": args}), json!({}));
    let base = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "xh_route"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h = base.to_vec();
        h.extend_from_slice(extra);
        h
    };
    // Every present argument mirrored (Base64 for non-ASCII, 42.0 equals 42): accepted.
    let good = with(&[
        ("mcp-param-region", "=?base64?WsO8cmljaA==?="),
        ("mcp-param-tenant-id", "42.0"),
        ("mcp-param-verbose", "true"),
    ]);
    let r = c.http.post_with(&call, &good).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.response()["result"]["structuredContent"]["arguments"]["region"],
        "Zürich"
    );
    // A header that disagrees, one that is missing, one for an absent argument: -32020.
    for (what, h) in [
        (
            "different region",
            with(&[
                ("mcp-param-region", "Bern"),
                ("mcp-param-tenant-id", "42"),
                ("mcp-param-verbose", "true"),
            ]),
        ),
        (
            "no tenant header",
            with(&[
                ("mcp-param-region", "=?base64?WsO8cmljaA==?="),
                ("mcp-param-verbose", "true"),
            ]),
        ),
        (
            "note header without a note",
            with(&[
                ("mcp-param-region", "=?base64?WsO8cmljaA==?="),
                ("mcp-param-tenant-id", "42"),
                ("mcp-param-verbose", "true"),
                ("mcp-param-note", "n"),
            ]),
        ),
    ] {
        let r = c.http.post_with(&call, &h).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
        assert_eq!(error_code(&r), -32020, "{what}");
    }
    // Unrelated Mcp-Param-* headers on a tool without annotations are ignored.
    let echo = c.body(
        "tools/call",
        json!({"name":"echo","arguments":{"message":"m"}}),
        json!({}),
    );
    let r = c
        .http
        .post_with(
            &echo,
            &[
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
                ("mcp-param-x", "y"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(f.stats().tool_calls(), 2);
}

#[tokio::test]
async fn listen_streams_can_carry_keep_alive_comments() {
    let (f, mut c) = Modern::with(Options {
        era: Era::Modern,
        listen_keep_alive: Some(Duration::from_millis(50)),
        ..Options::default()
    })
    .await;
    let b = c.body(
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
        json!({}),
    );
    let mut s = c.stream(&b).await;
    assert_eq!(
        s.next_json().await.unwrap()["method"],
        "notifications/subscriptions/acknowledged"
    );
    // A comment block (no data) arrives while nothing happens.
    let (_, data) = s.next_event().await.unwrap();
    assert_eq!(data, "", "a keep-alive comment carries no data");
    f.server().notify_tools_list_changed();
    let n = loop {
        let (_, data) = s.next_event().await.unwrap();
        if !data.is_empty() {
            break serde_json::from_str::<Value>(&data).unwrap();
        }
    };
    assert_eq!(n["method"], "notifications/tools/list_changed");
    // Other streams get none: a progress stream of a slow call.
    let mut m = meta(json!({}));
    m["progressToken"] = json!(1);
    let b = c.body(
        "tools/call",
        json!({"name":"long_operation","arguments":{"steps":1,"delay_ms":200},"_meta": m}),
        json!({}),
    );
    let r = c.post(&b).await;
    assert!(!String::from_utf8_lossy(&r.body).contains(":\n\n"), "{:?}", r.body);
}

#[tokio::test]
async fn cache_private_marks_every_cacheable_result_private() {
    let (_f, mut c) = Modern::with(Options {
        era: Era::Modern,
        cache_private: true,
        ..Options::default()
    })
    .await;
    for (method, params) in [
        ("server/discover", json!({})),
        ("tools/list", json!({})),
        ("resources/templates/list", json!({})),
        ("resources/read", json!({"uri": "example://readme"})),
    ] {
        let r = c.request(method, params).await.response();
        assert_eq!(r["result"]["cacheScope"], "private", "{method}: {r}");
    }
}
