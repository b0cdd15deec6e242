//! Interop with the project's example server (a peer this crate's authors did not write),
//! in process over Streamable HTTP and legacy SSE.

use std::time::Duration;

use mcpgate_example_server::{Options, spawn_http};
use mcpgate_upstream::{Connection, Inbound, TransportSpec};
use serde_json::{Value, json};

use crate::common::*;

fn text_of(response: &mcpgate_proto::Message) -> String {
    result(response)["content"][0]["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn streamable_http_tools_progress_sampling_and_notifications() {
    let server = spawn_http(Options::default()).await.unwrap();
    let spec = TransportSpec::StreamableHttp {
        url: server.mcp_url().parse().unwrap(),
        headers: Default::default(),
    };
    let (handler, mut inbox) = recorder();
    let (conn, init) = Connection::connect(&spec, options("example"), handler).await.unwrap();
    assert_eq!(init.protocol_version, mcpgate_proto::version::LATEST);

    let list = within(5, conn.request("tools/list", None)).await.unwrap();
    let names: Vec<String> = result(&list)["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.iter().any(|n| n == "echo"), "{names:?}");

    let echo = conn.request(
        "tools/call",
        Some(rawv(json!({"name": "echo", "arguments": {"message": "hello\nworld"}}))),
    );
    assert_eq!(text_of(&within(5, echo).await.unwrap()), "hello\nworld");

    // Progress notifications travel on the call's response stream.
    let call = conn.request(
        "tools/call",
        Some(rawv(
            json!({"name": "long_operation", "arguments": {"steps": 3, "delay_ms": 10},
            "_meta": {"progressToken": "p1"}}),
        )),
    );
    let id = call.id();
    within(5, call).await.unwrap();
    for _ in 0..3 {
        let (note, related) = inbox.notification().await;
        assert_eq!(note.method(), "notifications/progress");
        assert_eq!(related, Some(id));
    }

    // Sampling: a server→client request answered through respond().
    let call = tokio::spawn(conn.request(
        "tools/call",
        Some(rawv(json!({"name": "sample", "arguments": {"prompt": "2+2?"}}))),
    ));
    let (request, _) = inbox.request().await;
    assert_eq!(request.method(), "sampling/createMessage");
    conn.respond(answer(
        &request,
        json!({"role": "assistant", "content": {"type": "text", "text": "4"}, "model": "test"}),
    ))
    .await
    .unwrap();
    assert_eq!(text_of(&within(5, call).await.unwrap().unwrap()), "4");

    // Server-initiated notifications arrive on the GET stream once it is open.
    let mut delivered = false;
    for _ in 0..50 {
        server.server().notify_tools_list_changed();
        if let Ok(Some(Inbound::Notification { message, related })) =
            tokio::time::timeout(Duration::from_millis(100), inbox.0.recv()).await
        {
            assert_eq!(message.method(), "notifications/tools/list_changed");
            assert_eq!(related, None);
            delivered = true;
            break;
        }
    }
    assert!(delivered, "no list_changed notification arrived");

    assert_eq!(server.server().session_count(), 1);
    conn.close().await;
    for _ in 0..100 {
        if server.server().session_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("close() did not end the example server's session");
}

#[tokio::test]
async fn streamable_http_with_sse_responses() {
    let server = spawn_http(Options {
        sse_responses: true,
        ..Options::default()
    })
    .await
    .unwrap();
    let spec = TransportSpec::StreamableHttp {
        url: server.mcp_url().parse().unwrap(),
        headers: Default::default(),
    };
    let (handler, _inbox) = recorder();
    let (conn, _) = Connection::connect(&spec, options("example"), handler).await.unwrap();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            conn.request(
                "tools/call",
                Some(rawv(json!({"name": "add", "arguments": {"a": i, "b": 1}}))),
            )
        })
        .collect();
    for (i, r) in within(5, futures_util::future::join_all(calls))
        .await
        .into_iter()
        .enumerate()
    {
        let r = r.unwrap();
        assert_eq!(result(&r)["structuredContent"]["sum"].as_f64(), Some(i as f64 + 1.0));
    }
    conn.close().await;
}

#[tokio::test]
async fn legacy_sse_against_the_example_server() {
    let server = spawn_http(Options::default()).await.unwrap();
    let spec = TransportSpec::Sse {
        url: server.sse_url().parse().unwrap(),
        headers: Default::default(),
    };
    let mut opts = options("example-legacy");
    opts.protocol_version = mcpgate_proto::version::V2024_11_05;
    let (handler, _inbox) = recorder();
    let (conn, init) = Connection::connect(&spec, opts, handler).await.unwrap();
    assert_eq!(init.protocol_version, "2024-11-05");
    let echo = conn.request(
        "tools/call",
        Some(rawv(json!({"name": "echo", "arguments": {"message": "legacy"}}))),
    );
    assert_eq!(text_of(&within(5, echo).await.unwrap()), "legacy");
    let ping = within(5, conn.request("ping", None)).await.unwrap();
    assert_eq!(result(&ping), Value::Object(Default::default()));
    conn.close().await;
}
