//! Pass-through: fields the gateway does not interpret (unknown members, `_meta`,
//! `annotations`, future fields) travel unchanged in both directions, and methods it does
//! not know are forwarded.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_definitions_keep_annotations_meta_and_unknown_fields() {
    let (url, _rec) = recording_server().await;
    let fx = named_fixture("ex").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("rec", &url, ""), http_target("ex", &fx.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let tools = c.list_all("tools/list", "tools").await;
    let got = tools
        .iter()
        .find(|t| t["name"] == "rec_inspect")
        .expect("the recorder's tool");
    let mut expected = recorder_tool();
    expected["name"] = json!("rec_inspect");
    assert_eq!(got, &expected, "only the name may change");

    // The example server's tools, compared with what it lists itself.
    let direct = Client::new(&fx.mcp_url());
    let mut direct = direct;
    direct.initialize(LATEST, json!({})).await;
    for original in direct.list_all("tools/list", "tools").await {
        let name = original["name"].as_str().unwrap();
        let exposed = tools
            .iter()
            .find(|t| t["name"] == format!("ex_{name}"))
            .unwrap_or_else(|| panic!("ex_{name} missing"));
        let mut expected = original.clone();
        expected["name"] = json!(format!("ex_{name}"));
        assert_eq!(exposed, &expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_params_and_results_pass_through_intact() {
    let (url, rec) = recording_server().await;
    let fx = named_fixture("ex").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("rec", &url, ""), http_target("ex", &fx.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let arguments = json!({ "x": 1, "nested": { "deep": [1, "two", { "three": 3.25 }] }, "unicode": "ü→😀", "big": 9007199254740993u64 });
    let params = json!({
        "name": "rec_inspect",
        "arguments": arguments,
        "_meta": { "com.example/request": "r-1", "progressToken": "p-1" },
        "x-unknown-param": { "keep": ["me", null, false] }
    });
    let resp = c.request("tools/call", params.clone()).await;
    let result = &resp["result"];

    // What reached the upstream: the same params, with the upstream's tool name.
    let sent = rec.last_request("tools/call").expect("the call reached the recorder");
    assert_eq!(sent["params"]["name"], "inspect");
    assert_eq!(
        sent["params"]["arguments"], arguments,
        "arguments are untouched (big ints too)"
    );
    assert_eq!(sent["params"]["x-unknown-param"], params["x-unknown-param"]);
    assert_eq!(
        sent["params"]["_meta"]["com.example/request"], "r-1",
        "other _meta members are kept"
    );
    assert!(
        sent["params"]["_meta"].get("progressToken").is_some(),
        "a progress token is still sent"
    );

    // What reached the client: the upstream's result, unchanged.
    let mut expected = recorder_call_result(&sent["params"]);
    expected["structuredContent"]["received"] = sent["params"].clone();
    assert_eq!(result, &expected);
    assert_eq!(resp["jsonrpc"], "2.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_are_forwarded_to_a_single_target_and_refused_when_ambiguous() {
    let (url, rec) = recording_server().await;
    let gw = Gateway::start(&config("", &[http_target("rec", &url, "")])).await;
    let c = gw.connect().await;
    let params = json!({ "anything": [1, 2, 3], "_meta": { "k": "v" } });
    let r = c.result("x-vendor/custom", params.clone()).await;
    assert_eq!(r, json!({ "method": "x-vendor/custom", "params": params }));
    let sent: Value = rec.last_request("x-vendor/custom").unwrap();
    assert_eq!(sent["params"], params);

    // With several targets and nothing to route by, the gateway cannot know where it goes.
    let fx = named_fixture("ex").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("rec", &url, ""), http_target("ex", &fx.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let e = c.error("x-vendor/custom", json!({})).await;
    assert_eq!(e["code"], -32601, "{e}");
    assert_eq!(c.result("ping", json!({})).await, json!({}));
}

/// A result far larger than the envelope is sent on from the upstream's buffer (the body is
/// made of several buffers): it must still arrive whole, byte for byte, with the client's id
/// and a `Content-Length` that matches.
#[tokio::test]
async fn a_large_result_arrives_whole_with_its_length() {
    let up = fixture(mcpgate_example_server::Options {
        result_bytes: Some(100_000),
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config("", &[http_target("fx", &up.mcp_url(), "")])).await;
    let mut c = gw.client();
    c.initialize(LATEST, json!({})).await;
    let mut h = c.headers();
    h.insert("accept", "application/json".parse().unwrap());
    let body = json!({"jsonrpc": "2.0", "id": "big-1", "method": "tools/call", "params": {"name": "blob_result", "arguments": {}}});
    let resp = c.post_raw(h, serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(content_type(resp.headers()), "application/json");
    let declared: usize = resp.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len(), declared);
    let v: Value = serde_json::from_slice(&bytes).expect("one JSON value");
    assert_eq!(v["id"], "big-1");
    assert_eq!(v["jsonrpc"], "2.0");
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(text.len(), 100_000);
}
