//! Streamable HTTP, in process.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use mcpgate_example_server::{Fault, HttpFixture, Options, spawn_http};
use serde_json::{Value, json};

use crate::common::{HttpClient, text};

async fn fixture(opts: Options) -> (HttpFixture, HttpClient) {
    let f = spawn_http(opts).await.unwrap();
    let c = HttpClient::new(&f.mcp_url());
    (f, c)
}

fn call_text(r: &crate::common::Reply) -> String {
    text(&r.response()).to_owned()
}

#[tokio::test]
async fn initialize_issues_a_session_and_negotiates() {
    let (f, mut c) = fixture(Options::default()).await;
    let r = c.initialize("2025-03-26", json!({})).await;
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.json()["result"]["protocolVersion"], "2025-03-26");
    let sid = c.session.clone().expect("Mcp-Session-Id issued");
    assert_eq!(sid.len(), 32);
    assert!(sid.bytes().all(|b| (0x21..=0x7e).contains(&b)));

    let mut other = HttpClient::new(&f.mcp_url());
    let r = other.initialize("2099-01-01", json!({})).await;
    assert_eq!(r.json()["result"]["protocolVersion"], "2025-11-25");
    assert_ne!(other.session, c.session);
    assert_eq!(f.server().session_count(), 2);
    assert_eq!(f.stats().snapshot().sessions_opened, 2);

    let r = c.request("ping", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["result"], json!({}));

    // A failed initialize (no protocolVersion) gets no session.
    let mut bad = HttpClient::new(&f.mcp_url());
    let r = bad.request("initialize", json!({"capabilities":{}})).await;
    assert_eq!(r.json()["error"]["code"], -32602);
    assert!(r.headers.get("mcp-session-id").is_none());
    assert_eq!(f.server().session_count(), 2);
}

#[tokio::test]
async fn session_errors_and_delete() {
    let (f, mut c) = fixture(Options::default()).await;
    // No session id on a non-initialize request: 400.
    let r = c.request("tools/list", json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Unknown session id: 404.
    c.session = Some("0123456789abcdef0123456789abcdef".into());
    let r = c.request("tools/list", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["id"], Value::Null);

    c.session = None;
    c.initialize("2025-11-25", json!({})).await;
    // Notifications and responses: 202 with no body.
    let r = c
        .notify("notifications/progress", json!({"progressToken":1,"progress":1}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.body.is_empty());
    let r = c.post(&json!({"jsonrpc":"2.0","id":99,"result":{}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);

    assert_eq!(c.delete().await, StatusCode::OK);
    assert_eq!(f.server().session_count(), 0);
    let r = c.request("ping", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(c.delete().await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn header_checks() {
    let (f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    c.version = Some("1999-01-01".into());
    let r = c.request("ping", json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    c.version = Some("2025-11-25".into());

    let req = Request::builder()
        .method(Method::POST)
        .uri(f.mcp_url())
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    assert_eq!(c.send(req).await.status(), StatusCode::FORBIDDEN);

    let req = Request::builder()
        .method(Method::POST)
        .uri(f.mcp_url())
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    assert_eq!(c.send(req).await.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let req = Request::builder()
        .method(Method::PUT)
        .uri(f.mcp_url())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.send(req).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(resp.headers().get("allow").is_some());
}

#[tokio::test]
async fn json_rpc_errors_over_http() {
    let (_f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let r = c.post_raw("{\"jsonrpc\":").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let v = r.json();
    assert_eq!(v["id"], Value::Null);
    assert_eq!(v["error"]["code"], -32700);
    assert_eq!(c.request("bogus", json!({})).await.json()["error"]["code"], -32601);
    let v = c
        .request("resources/read", json!({"uri":"example://nope"}))
        .await
        .json();
    assert_eq!(v["error"]["code"], -32002);
    assert_eq!(v["error"]["data"]["uri"], "example://nope");
    let v = c.request("logging/setLevel", json!({"level":"loud"})).await.json();
    assert_eq!(v["error"]["code"], -32602);
    let v = c.request("prompts/get", json!({"name":"summarize"})).await.json();
    assert_eq!(v["error"]["code"], -32602);
}

#[tokio::test]
async fn invalid_tool_arguments_depend_on_the_version() {
    let (f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let v = c.call("add", json!({"a":"one","b":2})).await.response();
    assert_eq!(
        v["result"]["isError"], true,
        "2025-11-25: input validation is a tool error"
    );

    let mut old = HttpClient::new(&f.mcp_url());
    old.initialize("2025-06-18", json!({})).await;
    let v = old.call("add", json!({"a":"one","b":2})).await.response();
    assert_eq!(v["error"]["code"], -32602, "2025-06-18: invalid arguments are -32602");
}

#[tokio::test]
async fn every_plain_tool() {
    let (_f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;

    assert_eq!(call_text(&c.call("echo", json!({"message":"hello"})).await), "hello");

    let r = c.call("add", json!({"a":2,"b":40})).await.response();
    assert_eq!(r["result"]["structuredContent"], json!({"sum":42}));
    assert_eq!(text(&r), "{\"sum\":42}");
    let r = c.call("add", json!({"a":0.5,"b":0.25})).await.response();
    assert_eq!(r["result"]["structuredContent"]["sum"], 0.75);

    let r = c.call("current_time", json!({})).await.response();
    let t = text(&r);
    assert!(t.ends_with('Z') && t.len() == 20 && &t[10..11] == "T", "{t}");
    assert_eq!(r["result"]["structuredContent"]["timezone"], "UTC");
    let r = c.call("current_time", json!({"timezone":"+02:00"})).await.response();
    assert!(text(&r).ends_with("+02:00"));
    let r = c
        .call("current_time", json!({"timezone":"Mars/Olympus"}))
        .await
        .response();
    assert_eq!(r["result"]["isError"], true);

    let md = call_text(
        &c.call(
            "convert_to_markdown",
            json!({"text":"Trip plan\n\n- pack\n- go to https://example.com/map.\n\nDone."}),
        )
        .await,
    );
    assert_eq!(
        md,
        "# Trip plan\n\n- pack\n- go to <https://example.com/map>.\n\nDone.\n"
    );

    let r = c.call("fail", json!({"message":"nope"})).await.response();
    assert_eq!(r["result"]["isError"], true);
    assert_eq!(text(&r), "nope");

    let tools = c.request("tools/list", json!({})).await.json();
    let add = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "add")
        .unwrap()
        .clone();
    assert_eq!(add["title"], "Add two numbers");
    assert!(add["outputSchema"]["properties"]["sum"].is_object());
    assert_eq!(add["annotations"]["readOnlyHint"], true);
}

#[tokio::test]
async fn prompts_resources_and_completion() {
    let (_f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let p = c.request("prompts/list", json!({})).await.json();
    let names: Vec<&str> = p["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["summarize", "greeting"]);
    let g = c
        .request(
            "prompts/get",
            json!({"name":"summarize","arguments":{"text":"Rust is fast.","style":"detailed"}}),
        )
        .await
        .json();
    let msg = &g["result"]["messages"][0];
    assert_eq!(msg["role"], "user");
    assert!(msg["content"]["text"].as_str().unwrap().contains("Rust is fast."));
    assert!(c.request("prompts/get", json!({"name":"greeting"})).await.json()["result"]["messages"].is_array());

    let r = c.request("resources/list", json!({})).await.json();
    let uris: Vec<&str> = r["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["example://readme", "example://logo.png", "example://counter"]);
    let t = c.request("resources/templates/list", json!({})).await.json();
    assert_eq!(
        t["result"]["resourceTemplates"][0]["uriTemplate"],
        "example://notes/{name}"
    );

    let logo = c
        .request("resources/read", json!({"uri":"example://logo.png"}))
        .await
        .json();
    let item = &logo["result"]["contents"][0];
    assert_eq!(item["mimeType"], "image/png");
    assert!(item["blob"].as_str().unwrap().starts_with("iVBORw0KGgo"));
    let note = c
        .request("resources/read", json!({"uri":"example://notes/todo"}))
        .await
        .json();
    assert!(
        note["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("mcpgate")
    );

    let comp = c
        .request(
            "completion/complete",
            json!({"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"style","value":"de"}}),
        )
        .await
        .json();
    assert_eq!(comp["result"]["completion"]["values"], json!(["detailed"]));
    let comp = c
        .request(
            "completion/complete",
            json!({"ref":{"type":"ref/resource","uri":"example://notes/{name}"},"argument":{"name":"name","value":""}}),
        )
        .await
        .json();
    assert_eq!(comp["result"]["completion"]["values"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn pagination_of_every_list() {
    let (_f, mut c) = fixture(Options {
        page_size: Some(2),
        extra_tools: 3,
        ..Options::default()
    })
    .await;
    c.initialize("2025-11-25", json!({})).await;
    for (method, key, total) in [
        ("tools/list", "tools", 15),
        ("prompts/list", "prompts", 2),
        ("resources/list", "resources", 3),
        ("resources/templates/list", "resourceTemplates", 1),
    ] {
        let mut seen = 0;
        let mut cursor = Value::Null;
        loop {
            let params = if cursor.is_null() {
                json!({})
            } else {
                json!({"cursor": cursor})
            };
            let r = c.request(method, params).await.json();
            let items = r["result"][key].as_array().unwrap().len();
            assert!(items <= 2);
            seen += items;
            cursor = r["result"]["nextCursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        assert_eq!(seen, total, "{method}");
    }
}

#[tokio::test]
async fn progress_is_streamed_as_sse() {
    let (_f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let r = c
        .request(
            "tools/call",
            json!({"name":"long_operation","arguments":{"steps":3,"delay_ms":5},"_meta":{"progressToken":7}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "text/event-stream");
    let text_body = std::str::from_utf8(&r.body).unwrap();
    assert!(text_body.starts_with("event: message\ndata: {"), "{text_body}");
    assert!(text_body.ends_with("}\n\n"));
    let msgs = r.messages();
    assert_eq!(msgs.len(), 4);
    for (i, m) in msgs[..3].iter().enumerate() {
        assert_eq!(m["method"], "notifications/progress");
        assert_eq!(m["params"]["progressToken"], 7);
        assert_eq!(m["params"]["progress"], i + 1);
    }
    assert!(text(&msgs[3]).contains("3 step"));

    // Without a progress token the same tool answers with plain JSON.
    let r = c.call("long_operation", json!({"steps":2,"delay_ms":1})).await;
    assert_eq!(r.content_type(), "application/json");
}

#[tokio::test]
async fn cancellation_stops_a_streamed_request() {
    let (f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let req = c.request_value(
        "tools/call",
        json!({"name":"long_operation","arguments":{"steps":100,"delay_ms":30},"_meta":{"progressToken":"t"}}),
    );
    let mut s = c.post_stream(&req).await;
    assert_eq!(s.status, StatusCode::OK);
    let first = s.next_json().await.unwrap();
    assert_eq!(first["method"], "notifications/progress");
    let r = c
        .notify(
            "notifications/cancelled",
            json!({"requestId": req["id"], "reason":"enough"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // The stream ends without a response for the cancelled request.
    while let Some(m) = s.next_json().await {
        assert_eq!(m["method"], "notifications/progress", "unexpected {m}");
    }
    assert_eq!(f.stats().snapshot().cancellations, 1);
}

#[tokio::test]
async fn sampling_round_trip_over_the_post_stream() {
    let (f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({"sampling":{}, "elicitation":{"form":{}}}))
        .await;
    let req = c.request_value("tools/call", json!({"name":"sample","arguments":{"prompt":"2+2?"}}));
    let mut s = c.post_stream(&req).await;
    assert_eq!(s.headers["content-type"], "text/event-stream");
    let server_req = s.next_json().await.unwrap();
    assert_eq!(server_req["method"], "sampling/createMessage");
    let r = c
        .post(&json!({"jsonrpc":"2.0","id":server_req["id"],"result":{
            "role":"assistant","content":[{"type":"text","text":"4"}],"model":"m"}}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let resp = s.next_json().await.unwrap();
    assert_eq!(resp["id"], req["id"]);
    assert_eq!(text(&resp), "4");
    assert!(s.next_event().await.is_none(), "stream ends after the response");
    assert_eq!(f.stats().snapshot().responses, 1);

    // Elicitation: declined.
    let req = c.request_value("tools/call", json!({"name":"elicit","arguments":{"question":"ok?"}}));
    let mut s = c.post_stream(&req).await;
    let server_req = s.next_json().await.unwrap();
    assert_eq!(server_req["method"], "elicitation/create");
    c.post(&json!({"jsonrpc":"2.0","id":server_req["id"],"result":{"action":"decline"}}))
        .await;
    let resp = s.next_json().await.unwrap();
    assert_eq!(resp["result"]["structuredContent"], json!({"action":"decline"}));
}

#[tokio::test]
async fn cancelling_a_tool_cancels_its_client_request() {
    let (_f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({"roots":{}})).await;
    let req = c.request_value("tools/call", json!({"name":"list_roots","arguments":{}}));
    let mut s = c.post_stream(&req).await;
    let server_req = s.next_json().await.unwrap();
    assert_eq!(server_req["method"], "roots/list");
    c.notify("notifications/cancelled", json!({"requestId": req["id"]}))
        .await;
    let n = s.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/cancelled");
    assert_eq!(n["params"]["requestId"], server_req["id"]);
    assert!(s.next_event().await.is_none());
}

#[tokio::test]
async fn logging_honours_set_level() {
    let (_f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let r = c.call("log", json!({"level":"info","message":"hello log"})).await;
    assert_eq!(r.content_type(), "text/event-stream");
    let msgs = r.messages();
    assert_eq!(msgs[0]["method"], "notifications/message");
    assert_eq!(msgs[0]["params"]["level"], "info");
    assert_eq!(msgs[0]["params"]["data"], "hello log");

    let r = c.request("logging/setLevel", json!({"level":"warning"})).await;
    assert_eq!(r.json()["result"], json!({}));
    let r = c.call("log", json!({"level":"info","message":"quiet"})).await;
    assert_eq!(r.content_type(), "application/json");
    assert!(call_text(&r).contains("below"));
    let r = c.call("log", json!({"level":"error","message":"loud"})).await;
    assert_eq!(r.messages()[0]["params"]["level"], "error");
}

#[tokio::test]
async fn get_stream_carries_unrelated_notifications() {
    let (f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let mut other = HttpClient::new(&f.mcp_url());
    other.initialize("2025-11-25", json!({})).await;

    let mut g = c.get_stream(&f.mcp_url()).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.headers["content-type"], "text/event-stream");
    // Only one GET stream per session.
    let g2 = c.get_stream(&f.mcp_url()).await;
    assert_eq!(g2.status, StatusCode::CONFLICT);

    let r = c
        .request("resources/subscribe", json!({"uri":"example://counter"}))
        .await;
    assert_eq!(r.json()["result"], json!({}));
    let r = other.call("touch_resource", json!({"uri":"example://counter"})).await;
    assert!(call_text(&r).contains("Notified 1"));
    let n = g.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/resources/updated");
    assert_eq!(n["params"]["uri"], "example://counter");
    let v = c
        .request("resources/read", json!({"uri":"example://counter"}))
        .await
        .json();
    assert_eq!(v["result"]["contents"][0]["text"], "1");

    // add_tool from another session: list_changed here, and the tool is listed and callable.
    let r = other.call("add_tool", json!({"name":"dyn.tool-1"})).await;
    assert!(!r.response()["result"]["isError"].as_bool().unwrap_or(false));
    let n = g.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/tools/list_changed");
    let tools = c.request("tools/list", json!({})).await.json();
    assert!(
        tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "dyn.tool-1")
    );
    assert_eq!(call_text(&c.call("dyn.tool-1", json!({"message":"dyn"})).await), "dyn");
    let r = c.call("add_tool", json!({"name":"echo"})).await.response();
    assert_eq!(r["result"]["isError"], true);

    // Triggers from the test handle.
    assert_eq!(f.server().notify_prompts_list_changed(), 2);
    let n = g.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/prompts/list_changed");
    c.request("resources/unsubscribe", json!({"uri":"example://counter"}))
        .await;
    assert_eq!(f.server().notify_resource_updated("example://counter"), 0);

    // Closing the GET stream keeps queued messages for the next one.
    drop(g);
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.server().notify_resources_list_changed();
    let mut g = c.get_stream(&f.mcp_url()).await;
    assert_eq!(g.status, StatusCode::OK);
    let n = g.next_json().await.unwrap();
    assert_eq!(n["method"], "notifications/resources/list_changed");

    // DELETE ends the session and its GET stream.
    assert_eq!(c.delete().await, StatusCode::OK);
    assert!(g.next_event().await.is_none());
}

#[tokio::test]
async fn forced_sse_responses() {
    let (_f, mut c) = fixture(Options {
        sse_responses: true,
        ..Options::default()
    })
    .await;
    c.initialize("2025-11-25", json!({})).await;
    let r = c.call("echo", json!({"message":"x"})).await;
    assert_eq!(r.content_type(), "text/event-stream");
    assert_eq!(r.events().len(), 1);
    assert_eq!(r.events()[0].0, "message");
    assert_eq!(text(&r.response()), "x");
    let r = c.request("ping", json!({})).await;
    assert_eq!(r.content_type(), "text/event-stream");
}

#[tokio::test]
async fn batches_are_answered_with_an_array() {
    let (_f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-03-26", json!({})).await;
    let r = c
        .post(&json!([
            {"jsonrpc":"2.0","id":"a","method":"ping"},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo","arguments":{"message":"m"}}}
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
}

#[tokio::test]
async fn stateless_mode() {
    let (f, mut c) = fixture(Options {
        stateless: true,
        ..Options::default()
    })
    .await;
    let r = c.initialize("2025-06-18", json!({"sampling":{}})).await;
    assert!(r.headers.get("mcp-session-id").is_none());
    assert!(c.session.is_none());
    assert_eq!(call_text(&c.call("echo", json!({"message":"s"})).await), "s");
    let r = c.call("sample", json!({"prompt":"x"})).await.response();
    assert_eq!(r["result"]["isError"], true);
    assert!(text(&r).contains("stateless"));
    let g = c.get_stream(&f.mcp_url()).await;
    assert_eq!(g.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(c.delete().await, StatusCode::METHOD_NOT_ALLOWED);
    // Progress still streams.
    let r = c
        .request(
            "tools/call",
            json!({"name":"long_operation","arguments":{"steps":1,"delay_ms":1},"_meta":{"progressToken":1}}),
        )
        .await;
    assert_eq!(r.messages().len(), 2);
}

#[tokio::test]
async fn crash_after_drops_the_connection() {
    let (f, mut c) = fixture(Options {
        faults: vec![Fault::CrashAfter(2)],
        ..Options::default()
    })
    .await;
    c.initialize("2025-11-25", json!({})).await;
    assert_eq!(c.request("ping", json!({})).await.status, StatusCode::OK);
    let req = Request::builder()
        .method(Method::POST)
        .uri(f.mcp_url())
        .header("content-type", "application/json")
        .header("mcp-session-id", c.session.clone().unwrap())
        .body(Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
        )))
        .unwrap();
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<Bytes>>();
    let res = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .expect("the dropped connection must fail fast");
    assert!(res.is_err(), "expected a connection error, got {res:?}");
}

#[tokio::test]
async fn garbage_and_hang_over_http() {
    let (_f, mut c) = fixture(Options {
        faults: vec![Fault::Garbage],
        ..Options::default()
    })
    .await;
    c.initialize("2025-11-25", json!({})).await;
    let r = c.call("echo", json!({"message":"x"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert_eq!(c.request("ping", json!({})).await.json()["result"], json!({}));

    let (_f, mut c) = fixture(Options {
        faults: vec![Fault::Hang],
        ..Options::default()
    })
    .await;
    c.initialize("2025-11-25", json!({})).await;
    let req = c.request_value("tools/call", json!({"name":"echo","arguments":{"message":"x"}}));
    let pending = tokio::spawn({
        let c = c.clone();
        async move { c.post(&req).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "hang must never answer tools/call");
    assert_eq!(c.request("ping", json!({})).await.json()["result"], json!({}));
    pending.abort();
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let (f, mut c) = fixture(Options::default()).await;
    c.initialize("2025-11-25", json!({})).await;
    let addr = f.addr();
    f.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn binary_serves_http_and_prints_the_address_first() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(crate::common::BIN)
        .args(["--http", "127.0.0.1:0", "--name", "bin-http"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");
    let mut c = HttpClient::new(&format!("{base}/mcp"));
    let r = c.initialize("2025-11-25", json!({})).await;
    assert_eq!(r.json()["result"]["serverInfo"]["name"], "bin-http");
    assert_eq!(
        call_text(&c.call("echo", json!({"message":"via binary"})).await),
        "via binary"
    );
    child.kill().await.unwrap();
}
