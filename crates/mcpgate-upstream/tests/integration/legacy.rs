//! The legacy HTTP+SSE transport (2024-11-05) against the fixture server.

use std::time::Duration;

use mcpgate_upstream::{ConnectOptions, Connection, TransportSpec, UpstreamError};
use serde_json::json;

use crate::common::*;
use crate::fixture::Fixture;

fn spec(f: &Fixture) -> TransportSpec {
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer legacy-token".parse().unwrap());
    TransportSpec::Sse {
        url: f.sse_url(),
        headers,
    }
}

fn legacy_options() -> ConnectOptions {
    let mut o = options("legacy");
    o.protocol_version = mcpgate_proto::version::V2024_11_05;
    o
}

async fn connect_with(f: &Fixture, opts: ConnectOptions) -> (Connection, Inbox) {
    let (handler, inbox) = recorder();
    let (conn, _) = Connection::connect(&spec(f), opts, handler).await.unwrap();
    (conn, inbox)
}

async fn connect(f: &Fixture) -> (Connection, Inbox) {
    connect_with(f, legacy_options()).await
}

#[tokio::test]
async fn handshake_over_the_endpoint_event() {
    let f = Fixture::start().await;
    let (handler, _inbox) = recorder();
    let (conn, init) = Connection::connect(&spec(&f), legacy_options(), handler).await.unwrap();
    assert_eq!(init.protocol_version, "2024-11-05");
    assert_eq!(conn.protocol_version(), "2024-11-05");
    let get = &f.seen_gets()[0];
    assert_eq!(get.header("accept"), Some("text/event-stream"));
    assert_eq!(get.header("authorization"), Some("Bearer legacy-token"));
    let post = &f.seen_rpc("initialize")[0];
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.header("authorization"), Some("Bearer legacy-token"));
    f.wait_for(1, |s| s.rpc.as_deref() == Some("notifications/initialized"))
        .await;
    conn.close().await;
}

#[tokio::test]
async fn requests_are_matched_and_server_messages_delivered() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let echoed = within(5, conn.request("echo", Some(raw(r#"{"a":1}"#)))).await.unwrap();
    assert_eq!(result(&echoed), json!({"echo": {"a": 1}}));

    slow_requests_in_parallel(&conn).await;

    within(5, conn.request("notify", None)).await.unwrap();
    let (note, related) = inbox.notification().await;
    assert_eq!(note.method(), "notifications/progress");
    assert_eq!(related, None);

    let ask = tokio::spawn(conn.request("ask", None));
    let (request, related) = inbox.request().await;
    assert_eq!(request.method(), "sampling/createMessage");
    assert_eq!(related, None);
    conn.respond(answer(&request, json!({"model": "m"}))).await.unwrap();
    assert_eq!(
        result(&within(5, ask).await.unwrap().unwrap()),
        json!({"answer": {"model": "m"}})
    );

    f.push_legacy(json!({"jsonrpc": "2.0", "method": "notifications/resources/list_changed"}));
    let (note, _) = inbox.notification().await;
    assert_eq!(note.method(), "notifications/resources/list_changed");
    conn.close().await;
}

#[tokio::test]
async fn stream_end_closes_the_connection() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let err = within(5, conn.request("end", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Closed(_)), "{err}");
    assert!(matches!(inbox.closed().await, Some(UpstreamError::Closed(_))));
    assert!(conn.is_closed());
}

#[tokio::test]
async fn oversized_event_closes_the_connection() {
    let f = Fixture::start().await;
    let mut opts = legacy_options();
    opts.max_message_bytes = 4096;
    let (conn, mut inbox) = connect_with(&f, opts).await;
    let err = within(5, conn.request("huge", Some(raw(r#"{"size":10000}"#))))
        .await
        .unwrap_err();
    assert!(matches!(&err, UpstreamError::Closed(m) if m.contains("4096")), "{err}");
    assert!(matches!(inbox.closed().await, Some(UpstreamError::TooLarge(4096))));
}

#[tokio::test]
async fn unknown_session_on_post_is_session_expired() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    // The fixture forgets the session but keeps the stream open.
    let _ = tokio::time::timeout(Duration::from_millis(200), conn.request("expire", None)).await;
    let err = within(5, conn.request("echo", None)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::SessionExpired), "{err}");
    assert!(matches!(inbox.closed().await, Some(UpstreamError::SessionExpired)));
}

#[tokio::test]
async fn endpoint_on_another_origin_is_refused() {
    let f = Fixture::start().await;
    *f.st.legacy_endpoint.lock().unwrap() = Some("http://127.0.0.2:1/message".into());
    let (handler, _inbox) = recorder();
    let err = Connection::connect(&spec(&f), legacy_options(), handler)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Protocol(m) if m.contains("origin")),
        "{err}"
    );
    assert!(
        f.seen_rpc("initialize").is_empty(),
        "nothing was posted to the foreign endpoint"
    );
}

#[tokio::test]
async fn not_an_event_stream_is_refused() {
    let f = Fixture::start().await;
    let (handler, _inbox) = recorder();
    // /mcp's GET answers 405 here; a legacy client must report it.
    f.st.get_allowed.store(false, std::sync::atomic::Ordering::SeqCst);
    let spec = TransportSpec::Sse {
        url: f.mcp_url(),
        headers: Default::default(),
    };
    let err = Connection::connect(&spec, legacy_options(), handler).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Http { status: 405, .. }), "{err}");
}

#[tokio::test]
async fn close_fails_pending_and_reports_closed_once() {
    let f = Fixture::start().await;
    let (conn, mut inbox) = connect(&f).await;
    let pending = tokio::spawn(conn.request("hang", None));
    f.wait_for(1, |s| s.rpc.as_deref() == Some("hang")).await;
    within(5, conn.close()).await;
    assert!(matches!(
        within(5, pending).await.unwrap(),
        Err(UpstreamError::Closed(_))
    ));
    assert!(inbox.closed().await.is_none());
    within(5, conn.close()).await;
    inbox.assert_quiet(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn streamable_url_falls_back_to_legacy_sse() {
    let f = Fixture::start().await;
    let (handler, _inbox) = recorder();
    // POST /sse is 405 on the fixture: the client retries the URL as a legacy SSE endpoint.
    let spec = TransportSpec::StreamableHttp {
        url: f.sse_url(),
        headers: Default::default(),
    };
    let (conn, init) = Connection::connect(&spec, legacy_options(), handler).await.unwrap();
    assert_eq!(init.protocol_version, "2024-11-05");
    assert!(conn.pid().is_none());
    let echoed = within(5, conn.request("echo", Some(raw(r#"{"b":2}"#)))).await.unwrap();
    assert_eq!(result(&echoed), json!({"echo": {"b": 2}}));
    assert_eq!(f.seen_gets().len(), 1);
    conn.close().await;
}
