//! The Streamable HTTP transport against the fixture server.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mcpgate_proto::version;
use mcpgate_upstream::{ConnectOptions, Connection, TransportSpec, UpstreamError};
use serde_json::json;

use crate::common::*;
use crate::fixture::Fixture;

fn spec(f: &Fixture) -> TransportSpec {
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer upstream-token".parse().unwrap());
    TransportSpec::StreamableHttp {
        url: f.mcp_url(),
        headers,
    }
}

async fn connect_with(f: &Fixture, opts: ConnectOptions) -> (Connection, Inbox) {
    let (handler, inbox) = recorder();
    let (conn, _) = Connection::connect(&spec(f), opts, handler).await.unwrap();
    (conn, inbox)
}

async fn connect(f: &Fixture) -> (Connection, Inbox) {
    connect_with(f, options("http")).await
}

#[tokio::test]
async fn handshake_sets_session_and_version_headers() {
    let f = Fixture::start().await;
    let (handler, _inbox) = recorder();
    let (conn, init) = Connection::connect(&spec(&f), options("http"), handler).await.unwrap();
    assert_eq!(init.protocol_version, version::LATEST);
    assert_eq!(conn.protocol_version(), version::LATEST);
    assert_eq!(init.instructions.as_deref(), Some("Use the tools."));
    assert_eq!(init.server_info.as_str(), r#"{"name":"fixture","version":"1.0"}"#);
    let raw: serde_json::Value = init.raw.decode().unwrap();
    assert_eq!(raw["capabilities"]["tools"]["listChanged"], true);

    let seen = f.seen_rpc("initialize");
    let init_req = &seen[0];
    assert_eq!(init_req.header("accept"), Some("application/json, text/event-stream"));
    assert_eq!(init_req.header("content-type"), Some("application/json"));
    assert_eq!(init_req.header("authorization"), Some("Bearer upstream-token"));
    assert_eq!(init_req.header("mcp-session-id"), None);
    assert_eq!(init_req.header("mcp-protocol-version"), None);

    let initialized = &f.seen_rpc("notifications/initialized")[0];
    assert_eq!(initialized.header("mcp-session-id"), Some("sess-0"));
    assert_eq!(initialized.header("mcp-protocol-version"), Some(version::LATEST));

    f.wait_for(1, |s| s.http == "GET").await;
    let get = &f.seen_gets()[0];
    assert_eq!(get.header("accept"), Some("text/event-stream"));
    assert_eq!(get.header("mcp-session-id"), Some("sess-0"));
    assert_eq!(get.header("authorization"), Some("Bearer upstream-token"));
    conn.close().await;
}

#[tokio::test]
async fn version_negotiation() {
    let f = Fixture::start().await;
    *f.st.answer_version.lock().unwrap() = Some("2025-03-26".into());
    let (conn, _inbox) = connect(&f).await;
    assert_eq!(conn.protocol_version(), "2025-03-26");
    within(5, conn.request("echo", None)).await.unwrap();
    assert_eq!(f.seen_rpc("echo")[0].header("mcp-protocol-version"), Some("2025-03-26"));
    conn.close().await;

    *f.st.answer_version.lock().unwrap() = Some("2030-01-01".into());
    let (handler, _inbox) = recorder();
    let err = Connection::connect(&spec(&f), options("http"), handler)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Protocol(m) if m.contains("2030-01-01")),
        "{err}"
    );
    assert!(
        f.seen_rpc("notifications/initialized").len() == 1,
        "no initialized after a bad version"
    );
}

#[tokio::test]
async fn json_and_sse_responses() {
    let f = Fixture::start().await;
    let (conn, _inbox) = connect(&f).await;
    let sse = within(5, conn.request("echo", Some(raw(r#"{"via":"sse"}"#))))
        .await
        .unwrap();
    assert_eq!(result(&sse), json!({"echo": {"via": "sse"}}));
    f.st.json_responses.store(true, Ordering::SeqCst);
    let json = within(5, conn.request("echo", Some(raw(r#"{"via":"json"}"#))))
        .await
        .unwrap();
    assert_eq!(result(&json), json!({"echo": {"via": "json"}}));
    let err = within(5, conn.request("unknown", None)).await.unwrap();
    assert_eq!(err.error_object().unwrap().code, -32601);
    conn.close().await;
}

#[tokio::test]
async fn concurrent_requests_are_matched() {
    let f = Fixture::start().await;
    let (conn, _inbox) = connect(&f).await;
    slow_requests_in_parallel(&conn).await;
    conn.close().await;
}

#[tokio::test]
async fn sse_response_is_relayed_event_by_event() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let call = conn.request("stream", None);
    let id = call.id();
    let call = tokio::spawn(call);
    // Both notifications arrive while the fixture still holds the response back.
    for n in [1, 2] {
        let (note, related) = inbox.notification().await;
        assert_eq!(note.method(), "notifications/progress");
        assert_eq!(related, Some(id));
        let params: serde_json::Value = note.params.unwrap().decode().unwrap();
        assert_eq!(params["progress"], n);
    }
    assert!(!call.is_finished());
    f.st.gate.notify_one();
    let response = within(5, call).await.unwrap().unwrap();
    assert_eq!(result(&response), json!({"done": true}));
    conn.close().await;
}

#[tokio::test]
async fn server_request_on_the_post_stream_is_answered_with_respond() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let call = conn.request("ask", None);
    let id = call.id();
    let call = tokio::spawn(call);
    let (request, related) = inbox.request().await;
    assert_eq!(request.method(), "sampling/createMessage");
    assert_eq!(related, Some(id));
    conn.respond(answer(&request, json!({"model": "m", "role": "assistant"})))
        .await
        .unwrap();
    let response = within(5, call).await.unwrap().unwrap();
    assert_eq!(
        result(&response),
        json!({"answer": {"model": "m", "role": "assistant"}})
    );
    let posted = &f.seen_rpc("response")[0];
    assert_eq!(posted.header("mcp-session-id"), Some("sess-0"));
    conn.close().await;
}

#[tokio::test]
async fn dropped_post_stream_resumes_with_last_event_id() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let call = conn.request("drop", None);
    let id = call.id();
    let response = within(5, call).await.unwrap();
    assert_eq!(result(&response), json!({"resumed": true}));
    let (note, related) = inbox.notification().await;
    assert_eq!(note.method(), "notifications/progress");
    assert_eq!(related, Some(id));
    let resume = f
        .seen_gets()
        .into_iter()
        .find(|s| s.header("last-event-id") == Some("d-2"))
        .expect("a GET with Last-Event-ID: d-2");
    assert_eq!(resume.header("mcp-session-id"), Some("sess-0"));
    assert_eq!(resume.header("accept"), Some("text/event-stream"));

    // Without an event id there is nothing to resume from.
    let err = within(5, conn.request("drop_no_id", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Closed(_)), "{err}");
    assert!(!conn.is_closed(), "one lost stream does not end the session");
    conn.close().await;
}

#[tokio::test]
async fn get_stream_delivers_and_reconnects_with_last_event_id() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    f.wait_for(1, |s| s.http == "GET").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(f.push_get(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})));
    let (note, related) = inbox.notification().await;
    assert_eq!(note.method(), "notifications/tools/list_changed");
    assert_eq!(related, None);

    f.end_get(20);
    f.wait_for(2, |s| s.http == "GET").await;
    assert_eq!(f.seen_gets()[1].header("last-event-id"), Some("g0"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(f.push_get(json!({"jsonrpc": "2.0", "id": 5, "method": "ping"})));
    let (ping, related) = inbox.request().await;
    assert_eq!(ping.method(), "ping");
    assert_eq!(related, None);
    conn.respond(answer(&ping, json!({}))).await.unwrap();
    assert_eq!(f.get_opens(), 2);
    conn.close().await;
}

#[tokio::test]
async fn no_get_stream_on_405() {
    let f = Fixture::start().await;
    f.st.get_allowed.store(false, Ordering::SeqCst);
    let (conn, _inbox) = connect(&f).await;
    within(5, conn.request("echo", None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(f.seen_gets().len(), 1, "405 means no GET stream, and no retries");
    conn.close().await;
}

#[tokio::test]
async fn session_expiry_ends_the_connection() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let err = within(5, conn.request("expire", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::SessionExpired), "{err}");
    assert!(err.is_retryable());
    assert!(matches!(inbox.closed().await, Some(UpstreamError::SessionExpired)));
    assert!(conn.is_closed());
    assert!(matches!(
        conn.request("echo", None).await,
        Err(UpstreamError::SessionExpired)
    ));
    conn.close().await;
    assert_eq!(f.deletes(), 0, "no DELETE for a session the server already dropped");
}

#[tokio::test]
async fn bad_answers_fail_the_request_not_the_connection() {
    let f = Fixture::start().await;
    let (conn, _inbox) = connect(&f).await;
    for method in ["garbage", "garbage_event", "html", "accepted", "other_id"] {
        let err = within(5, conn.request(method, None)).await.unwrap_err();
        assert!(matches!(err, UpstreamError::Protocol(_)), "{method}: {err}");
    }
    let err = within(5, conn.request("fail", Some(raw(r#"{"status":503}"#))))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Http { status: 503, body } if body == "nope"),
        "{err}"
    );
    assert!(err.is_retryable());
    let err = within(5, conn.request("fail", Some(raw(r#"{"status":400}"#))))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Http { status: 400, .. }));
    assert!(!conn.is_closed());
    within(5, conn.request("echo", None)).await.unwrap();
    conn.close().await;
}

#[tokio::test]
async fn oversized_events_and_bodies_are_refused() {
    let f = Fixture::start().await;
    let mut opts = options("http");
    opts.max_message_bytes = 4096;
    let (conn, _inbox) = connect_with(&f, opts).await;
    let err = within(5, conn.request("huge", Some(raw(r#"{"size":10000}"#))))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::TooLarge(4096)), "{err}");
    let err = within(5, conn.request("huge_json", Some(raw(r#"{"size":10000}"#))))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::TooLarge(4096)), "{err}");
    let ok = within(5, conn.request("huge", Some(raw(r#"{"size":100}"#))))
        .await
        .unwrap();
    assert_eq!(result(&ok), json!({}));
    conn.close().await;
}

#[tokio::test]
async fn dropping_the_future_forgets_the_pending_entry() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let mut call = conn.request("stream", None);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut call)
            .await
            .is_err()
    );
    assert_eq!(conn.pending_requests(), 1);
    inbox.notification().await;
    drop(call);
    assert_eq!(conn.pending_requests(), 0);
    within(5, conn.request("echo", None)).await.unwrap();
    conn.close().await;
}

#[tokio::test]
async fn close_deletes_the_session_and_fails_pending_requests() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let pending = tokio::spawn(conn.request("stream", None));
    inbox.notification().await;
    within(5, conn.close()).await;
    assert_eq!(f.deletes(), 1);
    let delete = f.seen().into_iter().find(|s| s.http == "DELETE").unwrap();
    assert_eq!(delete.header("mcp-session-id"), Some("sess-0"));
    assert!(matches!(
        within(5, pending).await.unwrap(),
        Err(UpstreamError::Closed(_))
    ));
    loop {
        match inbox.next().await {
            mcpgate_upstream::Inbound::Notification { .. } => continue, // the second progress event
            mcpgate_upstream::Inbound::Closed { error } => {
                assert!(error.is_none());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(conn.is_closed());
    within(5, conn.close()).await;
    assert_eq!(f.deletes(), 1, "close is idempotent");
    assert!(matches!(
        conn.request("echo", None).await,
        Err(UpstreamError::Closed(_))
    ));
}

#[tokio::test]
async fn dropping_the_connection_deletes_the_session() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    drop(conn);
    assert!(inbox.closed().await.is_none());
    f.wait_for(1, |s| s.http == "DELETE").await;
}

#[tokio::test]
async fn stateless_server_without_session_id() {
    let f = Fixture::start().await;
    f.st.assign_session.store(false, Ordering::SeqCst);
    f.st.json_responses.store(true, Ordering::SeqCst);
    let (conn, _inbox) = connect(&f).await;
    within(5, conn.request("echo", None)).await.unwrap();
    assert!(f.seen().iter().all(|s| s.header("mcp-session-id").is_none()));
    conn.close().await;
    assert_eq!(f.deletes(), 0);
}

#[tokio::test]
async fn connect_failures() {
    let (handler, _inbox) = recorder();
    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = TransportSpec::StreamableHttp {
        url: format!("http://127.0.0.1:{port}/mcp").parse().unwrap(),
        headers: Default::default(),
    };
    let err = Connection::connect(&refused, options("x"), handler.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Connect(_)), "{err}");
    assert!(err.is_retryable());

    // Accepts TCP but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut opts = options("x");
    opts.connect_timeout = Duration::from_millis(300);
    let spec = TransportSpec::StreamableHttp {
        url: format!("http://{addr}/mcp").parse().unwrap(),
        headers: Default::default(),
    };
    let err = Connection::connect(&spec, opts, handler.clone()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout), "{err}");

    // A 404 before any session is a plain HTTP error.
    let f = Fixture::start().await;
    let spec = TransportSpec::StreamableHttp {
        url: format!("http://{}/nowhere", f.addr).parse().unwrap(),
        headers: Default::default(),
    };
    let err = Connection::connect(&spec, options("x"), handler).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Http { status: 404, .. }), "{err}");
}

#[tokio::test]
async fn same_origin_redirects_are_followed() {
    let f = Fixture::start().await;
    let spec = TransportSpec::StreamableHttp {
        url: format!("http://{}/moved", f.addr).parse().unwrap(),
        headers: Default::default(),
    };
    let (handler, _inbox) = recorder();
    let (conn, _) = Connection::connect(&spec, options("moved"), handler).await.unwrap();
    let echoed = within(5, conn.request("echo", Some(raw(r#"{"m":1}"#)))).await.unwrap();
    assert_eq!(result(&echoed), json!({"echo": {"m": 1}}));
    conn.close().await;
    assert_eq!(f.deletes(), 1, "the DELETE followed the redirect too");
}
