//! The binary over stdio, and `serve_io` in process.

use std::time::{Duration, Instant};

use mcpgate_example_server::{ExampleServer, Fault, Options, ServeError};
use serde_json::{Value, json};

use crate::common::{LineClient, text};

#[tokio::test]
async fn handshake_lists_and_clean_exit() {
    let mut c = LineClient::spawn(&[]);
    let init = c.initialize("2025-06-18", json!({})).await;
    let r = &init["result"];
    assert_eq!(r["protocolVersion"], "2025-06-18");
    assert_eq!(r["serverInfo"]["name"], "mcpgate-example");
    assert_eq!(r["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(r["capabilities"]["resources"]["subscribe"], true);
    assert!(r["capabilities"]["completions"].is_object());
    assert!(r["capabilities"]["logging"].is_object());
    assert!(r["instructions"].as_str().unwrap().contains("echo"));

    let tools = c.request("tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for n in [
        "echo",
        "add",
        "current_time",
        "convert_to_markdown",
        "long_operation",
        "sample",
        "elicit",
        "list_roots",
        "log",
        "fail",
        "add_tool",
        "touch_resource",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(tools["result"].get("nextCursor").is_none());
    assert_eq!(
        text(&c.call("echo", json!({"message":"hé \"x\"\n"})).await),
        "hé \"x\"\n"
    );

    // The one stderr line says it is ready; stdout had only JSON (c.next() would have panicked).
    let ready = tokio::time::timeout(Duration::from_secs(5), c.stderr.as_mut().unwrap().recv())
        .await
        .unwrap()
        .unwrap();
    assert!(ready.contains("ready"), "{ready}");

    c.close_input().await;
    assert_eq!(c.next_line().await, None);
    assert_eq!(c.exit_code().await, Some(0));
}

#[tokio::test]
async fn version_negotiation() {
    let mut c = LineClient::spawn(&["--name", "custom"]);
    for v in ["2024-11-05", "2025-03-26", "2025-11-25"] {
        let r = c.initialize(v, json!({})).await;
        assert_eq!(r["result"]["protocolVersion"], v);
        assert_eq!(r["result"]["serverInfo"]["name"], "custom");
    }
    let r = c.initialize("2023-01-01", json!({})).await;
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
    // 2024-11-05 had no completions capability.
    let r = c.initialize("2024-11-05", json!({})).await;
    assert!(r["result"]["capabilities"].get("completions").is_none());
    let r = c.request("initialize", json!({"capabilities":{}})).await;
    assert_eq!(r["error"]["code"], -32602);
}

#[tokio::test]
async fn long_operation_does_not_block_echo() {
    let mut c = LineClient::spawn(&[]);
    c.initialize("2025-11-25", json!({})).await;
    let slow = c
        .start(
            "tools/call",
            json!({"name":"long_operation","arguments":{"steps":2,"delay_ms":400}}),
        )
        .await;
    let fast = c
        .start("tools/call", json!({"name":"echo","arguments":{"message":"quick"}}))
        .await;
    let first = c.next().await;
    assert_eq!(first["id"], fast, "echo must answer while long_operation runs");
    let done = c.wait_for(slow).await;
    assert!(text(&done).contains("2 step"));
}

#[tokio::test]
async fn progress_then_cancellation_sends_no_response() {
    let mut c = LineClient::spawn(&[]);
    c.initialize("2025-11-25", json!({})).await;
    let id = c
        .start(
            "tools/call",
            json!({"name":"long_operation","arguments":{"steps":50,"delay_ms":40},
                   "_meta":{"progressToken":"tok-1"}}),
        )
        .await;
    let mut last = 0.0;
    for _ in 0..2 {
        let p = c.next().await;
        assert_eq!(p["method"], "notifications/progress");
        assert_eq!(p["params"]["progressToken"], "tok-1");
        assert_eq!(p["params"]["total"], 50);
        let v = p["params"]["progress"].as_f64().unwrap();
        assert!(v > last, "progress must increase");
        last = v;
    }
    c.notify("notifications/cancelled", json!({"requestId": id, "reason": "test"}))
        .await;
    // A ping after the cancel: everything up to its response must not be the cancelled result.
    let ping = c.start("ping", json!({})).await;
    let r = c.wait_for(ping).await;
    assert_eq!(r["result"], json!({}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ping2 = c.start("ping", json!({})).await;
    c.wait_for(ping2).await;
    assert!(
        c.seen.iter().all(|m| m["id"] != json!(id)),
        "cancelled request was answered: {:?}",
        c.seen
    );
    let progress_after = c
        .seen
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert!(progress_after <= 2, "progress continued after cancel");
}

#[tokio::test]
async fn sampling_elicitation_and_roots_round_trip() {
    let mut c = LineClient::spawn(&[]);
    c.initialize(
        "2025-11-25",
        json!({"sampling":{}, "elicitation":{}, "roots":{"listChanged":true}}),
    )
    .await;

    let id = c
        .start(
            "tools/call",
            json!({"name":"sample","arguments":{"prompt":"What is 6*7?"}}),
        )
        .await;
    let req = c.next().await;
    assert_eq!(req["method"], "sampling/createMessage");
    assert_eq!(req["params"]["messages"][0]["content"]["text"], "What is 6*7?");
    assert!(req["params"]["maxTokens"].as_u64().unwrap() > 0);
    c.send(&json!({"jsonrpc":"2.0","id":req["id"],"result":{
        "role":"assistant","content":{"type":"text","text":"42"},"model":"test-model","stopReason":"endTurn"}}))
        .await;
    assert_eq!(text(&c.wait_for(id).await), "42");

    let id = c
        .start(
            "tools/call",
            json!({"name":"elicit","arguments":{"question":"Your name?"}}),
        )
        .await;
    let req = c.next().await;
    assert_eq!(req["method"], "elicitation/create");
    assert_eq!(req["params"]["mode"], "form");
    assert_eq!(req["params"]["message"], "Your name?");
    assert_eq!(req["params"]["requestedSchema"]["type"], "object");
    c.send(&json!({"jsonrpc":"2.0","id":req["id"],"result":{"action":"accept","content":{"answer":"Ada"}}}))
        .await;
    let r = c.wait_for(id).await;
    assert_eq!(
        r["result"]["structuredContent"],
        json!({"action":"accept","content":{"answer":"Ada"}})
    );

    let id = c.start("tools/call", json!({"name":"list_roots","arguments":{}})).await;
    let req = c.next().await;
    assert_eq!(req["method"], "roots/list");
    c.send(&json!({"jsonrpc":"2.0","id":req["id"],"result":{"roots":[{"uri":"file:///work","name":"work"}]}}))
        .await;
    let r = c.wait_for(id).await;
    assert_eq!(r["result"]["structuredContent"]["roots"][0]["uri"], "file:///work");

    // A client error is reported as a tool error.
    let id = c
        .start("tools/call", json!({"name":"sample","arguments":{"prompt":"x"}}))
        .await;
    let req = c.next().await;
    c.send(&json!({"jsonrpc":"2.0","id":req["id"],"error":{"code":-1,"message":"User rejected sampling"}}))
        .await;
    let r = c.wait_for(id).await;
    assert_eq!(r["result"]["isError"], true);
    assert!(text(&r).contains("User rejected sampling"));
}

#[tokio::test]
async fn client_requests_need_declared_capabilities() {
    let mut c = LineClient::spawn(&[]);
    c.initialize("2025-06-18", json!({})).await;
    for (tool, args) in [
        ("sample", json!({"prompt":"x"})),
        ("elicit", json!({"question":"x"})),
        ("list_roots", json!({})),
    ] {
        let r = c.call(tool, args).await;
        assert_eq!(r["result"]["isError"], true, "{tool}: {r}");
        assert!(text(&r).contains("capability"));
    }
}

#[tokio::test]
async fn json_rpc_errors() {
    let mut c = LineClient::spawn(&[]);
    c.initialize("2025-11-25", json!({})).await;
    c.send_raw("{not json").await;
    let e = c.next().await;
    assert_eq!(e["id"], Value::Null);
    assert_eq!(e["error"]["code"], -32700);
    let e = c.request("no/such/method", json!({})).await;
    assert_eq!(e["error"]["code"], -32601);
    let e = c.request("resources/read", json!({})).await;
    assert_eq!(e["error"]["code"], -32602);
    let e = c.request("tools/call", json!({"name":"no_such_tool"})).await;
    assert_eq!(e["error"]["code"], -32602);
    let e = c.request("resources/read", json!({"uri":"example://missing"})).await;
    assert_eq!(e["error"]["code"], -32002);
    assert_eq!(e["error"]["data"]["uri"], "example://missing");
    c.send_raw(r#"{"jsonrpc":"2.0","id":"x"}"#).await;
    let e = c.next().await;
    assert_eq!(
        (e["id"].clone(), e["error"]["code"].clone()),
        (json!("x"), json!(-32600))
    );
    // Unknown fields are ignored; requests before initialize would be answered too.
    let r = c.request("ping", json!({"unknown": true, "_meta": {"x": 1}})).await;
    assert_eq!(r["result"], json!({}));
}

#[tokio::test]
async fn requests_before_initialize_are_answered() {
    let mut c = LineClient::spawn(&[]);
    let r = c.request("tools/list", json!({})).await;
    assert!(r["result"]["tools"].as_array().unwrap().len() >= 12);
}

#[tokio::test]
async fn pagination_extra_tools_and_blob_result() {
    let mut c = LineClient::spawn(&["--page-size", "7", "--extra-tools", "20", "--result-bytes", "100000"]);
    c.initialize("2025-11-25", json!({})).await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = c.request("tools/list", params).await;
        let tools = r["result"]["tools"].as_array().unwrap();
        assert!(tools.len() <= 7);
        names.extend(tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        pages += 1;
        match r["result"]["nextCursor"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(names.len(), 12 + 1 + 20);
    assert_eq!(pages, 5);
    assert!(names.contains(&"tool_0019".to_owned()));
    let r = c.call("tool_0003", json!({"message":"m"})).await;
    assert_eq!(text(&r), "m");
    let r = c.call("blob_result", json!({})).await;
    assert_eq!(text(&r).len(), 100_000);
    let r = c.request("tools/list", json!({"cursor":"bogus"})).await;
    assert_eq!(r["error"]["code"], -32602);
    let r = c.request("resources/list", json!({})).await;
    assert_eq!(r["result"]["resources"].as_array().unwrap().len(), 3);
    assert!(r["result"].get("nextCursor").is_none());
}

#[tokio::test]
async fn crash_after_exits_the_process() {
    let mut c = LineClient::spawn(&["--fault", "crash-after:2"]);
    c.initialize("2025-11-25", json!({})).await;
    let r = c.request("ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    c.start("ping", json!({})).await;
    assert_eq!(c.next_line().await, None, "no answer after the crash");
    assert_eq!(c.exit_code().await, Some(1));
}

#[tokio::test]
async fn garbage_and_hang_faults() {
    let mut c = LineClient::spawn(&["--fault", "garbage"]);
    c.initialize("2025-11-25", json!({})).await;
    c.start("tools/call", json!({"name":"echo","arguments":{"message":"x"}}))
        .await;
    let line = c.next_line().await.unwrap();
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
    // The stream stays usable.
    assert_eq!(c.request("ping", json!({})).await["result"], json!({}));

    let mut c = LineClient::spawn(&["--fault", "hang"]);
    c.initialize("2025-11-25", json!({})).await;
    let id = c
        .start("tools/call", json!({"name":"echo","arguments":{"message":"x"}}))
        .await;
    assert_eq!(c.request("ping", json!({})).await["result"], json!({}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ping = c.start("ping", json!({})).await;
    c.wait_for(ping).await;
    assert!(c.seen.iter().all(|m| m["id"] != json!(id)));
}

#[tokio::test]
async fn hang_after_and_flaky_list_faults() {
    let mut c = LineClient::spawn(&["--fault", "hang-after:1", "--fault", "flaky-lists:1"]);
    c.initialize("2025-11-25", json!({})).await;
    // The first list is garbage, the next one is a list.
    c.start("tools/list", json!({})).await;
    let line = c.next_line().await.unwrap();
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
    assert!(c.request("tools/list", json!({})).await["result"]["tools"].is_array());
    // The first call is answered, the second hangs (pings still work).
    assert_eq!(text(&c.call("echo", json!({"message":"a"})).await), "a");
    let id = c
        .start("tools/call", json!({"name":"echo","arguments":{"message":"b"}}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ping = c.start("ping", json!({})).await;
    c.wait_for(ping).await;
    assert!(c.seen.iter().all(|m| m["id"] != json!(id)));
}

#[tokio::test]
async fn the_hang_switch_stops_and_resumes_calls() {
    let server = ExampleServer::new(Options::default());
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let (sr, sw) = tokio::io::split(server_end);
    tokio::spawn({
        let server = server.clone();
        async move { server.serve_io(sr, sw).await }
    });
    let (cr, cw) = tokio::io::split(client_end);
    let mut c = LineClient::new(cw, cr);
    c.initialize("2025-11-25", json!({})).await;
    server.set_hang(true);
    let id = c
        .start("tools/call", json!({"name":"echo","arguments":{"message":"x"}}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ping = c.start("ping", json!({})).await;
    c.wait_for(ping).await;
    assert!(
        c.seen.iter().all(|m| m["id"] != json!(id)),
        "the call hangs while the switch is on"
    );
    server.set_hang(false);
    assert_eq!(text(&c.call("echo", json!({"message":"y"})).await), "y");
}

#[tokio::test]
async fn slow_start_and_call_delay() {
    let mut c = LineClient::spawn(&["--fault", "slow-start:300", "--delay-ms", "200"]);
    let t = Instant::now();
    c.initialize("2025-11-25", json!({})).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    c.call("echo", json!({"message":"x"})).await;
    assert!(t.elapsed() >= Duration::from_millis(200));
    let t = Instant::now();
    c.request("ping", json!({})).await;
    assert!(t.elapsed() < Duration::from_millis(200), "only tools/call is delayed");
}

#[tokio::test]
async fn in_process_serve_io_with_stats_and_notifications() {
    let server = ExampleServer::new(Options::default());
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let (sr, sw) = tokio::io::split(server_end);
    let task = tokio::spawn({
        let server = server.clone();
        async move { server.serve_io(sr, sw).await }
    });
    let (cr, cw) = tokio::io::split(client_end);
    let mut c = LineClient::new(cw, cr);
    c.initialize("2025-11-25", json!({})).await;
    c.call("echo", json!({"message":"a"})).await;
    c.request("tools/list", json!({})).await;
    assert_eq!(server.session_count(), 1);

    // Triggers from the test reach the session.
    let r = c
        .request("resources/subscribe", json!({"uri":"example://counter"}))
        .await;
    assert_eq!(r["result"], json!({}));
    assert_eq!(server.notify_tools_list_changed(), 1);
    assert_eq!(c.next().await["method"], "notifications/tools/list_changed");
    assert_eq!(server.notify_resource_updated("example://counter"), 1);
    let n = c.next().await;
    assert_eq!(n["method"], "notifications/resources/updated");
    assert_eq!(n["params"]["uri"], "example://counter");
    let r = c.request("resources/read", json!({"uri":"example://counter"})).await;
    assert_eq!(r["result"]["contents"][0]["text"], "1");
    assert_eq!(server.log(mcpgate_example_server::LogLevel::Error, "boom"), 1);
    let n = c.next().await;
    assert_eq!(n["method"], "notifications/message");
    assert_eq!(n["params"]["data"], "boom");

    let s = server.stats();
    assert_eq!(s.method("tools/list"), 1);
    assert_eq!(s.method("notifications/initialized"), 1);
    assert_eq!(s.tool_calls(), 1);
    assert_eq!(s.snapshot().active_sessions(), 1);

    c.close_input().await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(server.session_count(), 0);
    assert_eq!(server.stats().snapshot().sessions_closed, 1);
}

#[tokio::test]
async fn in_process_crash_returns_an_error() {
    let opts = Options {
        faults: vec![Fault::CrashAfter(1)],
        ..Options::default()
    };
    let server = ExampleServer::new(opts);
    let (client_end, server_end) = tokio::io::duplex(4096);
    let (sr, sw) = tokio::io::split(server_end);
    let task = tokio::spawn({
        let server = server.clone();
        async move { server.serve_io(sr, sw).await }
    });
    let (cr, cw) = tokio::io::split(client_end);
    let mut c = LineClient::new(cw, cr);
    c.initialize("2025-11-25", json!({})).await;
    c.start("ping", json!({})).await;
    let r = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(ServeError::Crashed)));
}
