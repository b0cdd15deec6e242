//! Tool parameters mirrored into headers (`x-mcp-header` → `Mcp-Param-*`, MCP 2026-07-28),
//! written from the Streamable HTTP text ("Custom Headers from Tool Parameters", "Value
//! Encoding", "Server Validation") and the tools section: a stateless client calling an
//! annotated tool through the gateway must send headers that agree with its arguments (else
//! 400 and -32020, and nothing reaches the upstream); tools whose annotations break the
//! spec's constraints are not listed and cannot be called.
//!
//! The upstream is the example server with `--xheader-tools`: `xh_route` (valid
//! annotations: `Region` string, `Tenant-Id` integer nested under `tenant`, `Verbose`
//! boolean, `Note` string, sent null) and `xh_bad_*` tools whose annotations are each invalid
//! for one reason.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::common::*;

const V: &str = "2026-07-28";

/// The tools with invalid annotations the fixture lists, and why each is invalid.
const INVALID: &[(&str, &str)] = &[
    ("xh_bad_number", "a `number` parameter"),
    ("xh_bad_items", "an annotation under `items`"),
    ("xh_bad_dup", "`Region` and `region`"),
    ("xh_bad_token", "a name with a space"),
    ("xh_bad_ref", "an annotation under `$defs`, reached through `$ref`"),
    ("xh_bad_oneof", "an annotation under `oneOf`"),
];

/// (what, arguments, headers, a phrase the error message must hold).
type Case = (&'static str, Value, Vec<(String, String)>, &'static str);

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn code(&self) -> Option<i64> {
        self.body["error"]["code"].as_i64()
    }
}

async fn setup() -> (Gateway, mcpgate_example_server::HttpFixture) {
    let fx = fixture(mcpgate_example_server::Options {
        name: "h".into(),
        xheader_tools: true,
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    (gw, fx)
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "xheader-test", "version": "1" },
    })
}

/// A stateless POST of `method` with the standard headers plus `extra` headers.
async fn post(gw: &Gateway, method: &str, params: Value, extra: &[(&str, &str)]) -> Answer {
    let mut params = params;
    params["_meta"] = meta();
    let mut h = HeaderMap::new();
    h.insert(
        "accept",
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("mcp-protocol-version", HeaderValue::from_static(V));
    h.insert("mcp-method", HeaderValue::from_str(method).unwrap());
    if let Some(name) = params["name"].as_str() {
        h.insert("mcp-name", HeaderValue::from_str(name).unwrap());
    }
    for (k, v) in extra {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let resp = within(
        "a stateless POST",
        http_client().post(gw.mcp_url()).headers(h).json(&body).send(),
    )
    .await
    .expect("sent");
    let status = resp.status();
    let ct = content_type(resp.headers());
    let body = if ct == "text/event-stream" {
        SseStream::new(resp).response(&json!(1)).await
    } else {
        let text = resp.text().await.expect("a body");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("HTTP {status}: not JSON: {text}"))
    };
    Answer { status, body }
}

async fn call(gw: &Gateway, arguments: Value, headers: &[(&str, &str)]) -> Answer {
    post(
        gw,
        "tools/call",
        json!({ "name": "xh_route", "arguments": arguments }),
        headers,
    )
    .await
}

fn tool_names(list: &Value) -> Vec<String> {
    list["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {list}"))
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_with_invalid_annotations_are_not_listed_or_callable() {
    let (gw, fx) = setup().await;
    // The upstream really offers them (so their absence is the gateway's doing).
    let mut direct = Client::new(&fx.mcp_url());
    direct.initialize("2025-11-25", json!({})).await;
    let upstream = direct.tool_names().await;
    for (t, _) in INVALID {
        assert!(upstream.iter().any(|n| n == t), "the fixture lists {t}: {upstream:?}");
    }

    let a = post(&gw, "tools/list", json!({}), &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let listed = tool_names(&a.body["result"]);
    assert!(listed.contains(&"xh_route".to_owned()), "{listed:?}");
    assert!(listed.contains(&"echo".to_owned()), "other tools stay: {listed:?}");
    for (t, why) in INVALID {
        assert!(
            !listed.contains(&t.to_string()),
            "{t} ({why}) must be left out: {listed:?}"
        );
    }
    // The merged list is shared: a session-based client does not see them either.
    let c = gw.connect().await;
    let session_listed = c.tool_names().await;
    for (t, _) in INVALID {
        assert!(!session_listed.contains(&t.to_string()), "{session_listed:?}");
    }

    // Calling one is an unknown tool, and nothing reaches the upstream.
    let before = fx.stats().tool_calls();
    for (t, _) in INVALID {
        let a = post(
            &gw,
            "tools/call",
            json!({ "name": t.to_string(), "arguments": {} }),
            &[],
        )
        .await;
        assert_eq!(a.code(), Some(-32602), "{t}: {}", a.body);
        let e = c
            .error("tools/call", json!({ "name": t.to_string(), "arguments": {} }))
            .await;
        assert_eq!(e["code"], -32602, "{t}: {e}");
    }
    assert_eq!(fx.stats().tool_calls(), before);

    // Operators see how many tools each target lost this way.
    let resp = within(
        "GET /metrics",
        http_client().get(format!("{}/metrics", gw.base())).send(),
    )
    .await
    .expect("scraped");
    let text = resp.text().await.expect("a body");
    let line = format!("mcpgate_tools_rejected{{target=\"h\"}} {}", INVALID.len());
    assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_headers_reach_the_tool() {
    let (gw, _fx) = setup().await;
    let args = json!({
        "region": "us-west1", "tenant": { "id": 42 }, "verbose": true, "query": "SELECT 1"
    });
    let a = call(
        &gw,
        args.clone(),
        &[
            ("Mcp-Param-Region", "us-west1"),
            ("Mcp-Param-Tenant-Id", "42"),
            ("Mcp-Param-Verbose", "true"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["result"]["structuredContent"]["arguments"], args, "{}", a.body);

    // Header names are case-insensitive; an integer may be written as 42.0; a non-ASCII
    // value arrives Base64-encoded; null or absent arguments send no header.
    let a = call(
        &gw,
        json!({ "region": "Zürich", "tenant": { "id": 42 }, "note": null }),
        &[
            ("MCP-PARAM-REGION", "=?base64?WsO8cmljaA==?="),
            ("mcp-param-tenant-id", "42.0"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["result"]["structuredContent"]["arguments"]["region"], "Zürich");

    // A value that looks like the sentinel is sent encoded (here: "=?base64?x?=").
    let a = call(
        &gw,
        json!({ "region": "=?base64?x?=" }),
        &[("Mcp-Param-Region", "=?base64?PT9iYXNlNjQ/eD89?=")],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // No annotated argument, no header: fine. Headers naming no annotated parameter are
    // ignored.
    let a = call(&gw, json!({ "query": "q" }), &[("Mcp-Param-Unrelated", "anything")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.get("result").is_some(), "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_mismatched_or_badly_encoded_headers_are_refused() {
    let (gw, fx) = setup().await;
    let args = json!({ "region": "us-west1", "tenant": { "id": 42 }, "verbose": false });
    let good: [(&str, &str); 3] = [
        ("Mcp-Param-Region", "us-west1"),
        ("Mcp-Param-Tenant-Id", "42"),
        ("Mcp-Param-Verbose", "false"),
    ];
    let before = fx.stats().tool_calls();
    let with = |replace: &str, value: Option<&'static str>| -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = good
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(replace))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(v) = value {
            h.push((replace.to_owned(), v.to_owned()));
        }
        h
    };
    let cases: Vec<Case> = vec![
        (
            "Region missing",
            args.clone(),
            with("Mcp-Param-Region", None),
            "Mcp-Param-Region",
        ),
        (
            "nested Tenant-Id missing",
            args.clone(),
            with("Mcp-Param-Tenant-Id", None),
            "Mcp-Param-Tenant-Id",
        ),
        (
            "Region differs",
            args.clone(),
            with("Mcp-Param-Region", Some("eu-west1")),
            "does not match",
        ),
        (
            "Region differs in case",
            args.clone(),
            with("Mcp-Param-Region", Some("US-WEST1")),
            "does not match",
        ),
        (
            "Tenant-Id differs numerically",
            args.clone(),
            with("Mcp-Param-Tenant-Id", Some("43")),
            "does not match",
        ),
        (
            "Verbose differs",
            args.clone(),
            with("Mcp-Param-Verbose", Some("true")),
            "does not match",
        ),
        (
            "bad Base64",
            args.clone(),
            with("Mcp-Param-Region", Some("=?base64?%%%?=")),
            "Mcp-Param-Region",
        ),
        (
            "raw non-ASCII bytes",
            json!({ "region": "Zürich" }),
            vec![("Mcp-Param-Region".into(), "Zürich".into())],
            "Mcp-Param-Region",
        ),
        (
            "the Base64 of something else",
            args.clone(),
            with("Mcp-Param-Region", Some("=?base64?ZXUtd2VzdDE=?=")),
            "does not match",
        ),
        (
            "a header without its argument",
            json!({ "query": "q" }),
            vec![("Mcp-Param-Region".into(), "us-west1".into())],
            "Mcp-Param-Region",
        ),
        (
            "a header for a null argument",
            json!({ "region": null }),
            vec![("Mcp-Param-Region".into(), "us-west1".into())],
            "Mcp-Param-Region",
        ),
    ];
    for (what, arguments, headers, says) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let a = call(&gw, arguments, &h).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.body);
        assert_eq!(a.code(), Some(-32020), "{what}: {}", a.body);
        assert_eq!(a.body["id"], 1, "{what}: the error answers the request's id");
        let msg = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with("Header mismatch"), "{what}: {msg}");
        assert!(msg.contains(says), "{what}: {msg:?} should mention {says:?}");
    }
    assert_eq!(fx.stats().tool_calls(), before, "no refused call reached the upstream");

    // Session-based clients define no such headers and are not checked.
    let c = gw.connect().await;
    let r = c.call("xh_route", args.clone()).await;
    assert_eq!(r["structuredContent"]["arguments"], args, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_hidden_by_policy_fails_as_unknown_whatever_its_headers() {
    // API keys "test-key-alice" (groups: dev) and "test-key-bob" (no groups), as in auth.rs.
    let head = "auth:\n  hide_denied: true\n  api_keys:\n    - {hash: ad77f83d5d5b9a3b738cfc75982ec0460450b94aa1bac0f16451a1142c89c4c8, subject: alice, claims: {groups: [dev]}}\n    - {hash: 9c854c32c3e1e4018e592ff35ce24355578613133dd3cf727cedd43fe7f89564, subject: bob}\npolicies:\n  - allow: { tools: [\"h:xh_route\"] }\n    when: { claims: { groups: { contains: dev } } }\n";
    let fx = fixture(mcpgate_example_server::Options {
        name: "h".into(),
        xheader_tools: true,
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(head, &[http_target("h", &fx.mcp_url(), "")])).await;
    let args = json!({ "region": "us-west1" });
    let alice = ("authorization", "Bearer test-key-alice");
    let bob = ("authorization", "Bearer test-key-bob");

    // Alice may see the tool: its headers are checked.
    let a = call(&gw, args.clone(), &[alice]).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, Some(-32020)),
        "{}",
        a.body
    );
    let a = call(&gw, args.clone(), &[alice, ("Mcp-Param-Region", "us-west1")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["result"]["structuredContent"]["arguments"], args);

    // Bob may not: a header error would tell him the tool exists and what it expects, so he
    // gets exactly what an unknown tool gets, with or without the right headers.
    for headers in [vec![bob], vec![bob, ("Mcp-Param-Region", "us-west1")]] {
        let a = call(&gw, args.clone(), &headers).await;
        assert_eq!(a.code(), Some(-32602), "{}", a.body);
        assert_eq!(a.body["error"]["message"], "Unknown tool: xh_route", "{}", a.body);
    }
}
