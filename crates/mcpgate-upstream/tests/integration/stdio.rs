//! The stdio transport against a bash fixture server (`tests/fixtures/stdio_server.sh`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpgate_upstream::{ConnectOptions, Connection, TransportSpec, UpstreamError};
use serde_json::json;
use tokio::time::Instant;

use crate::common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stdio_server.sh");

fn spec(env: &[(&str, &str)]) -> TransportSpec {
    TransportSpec::Stdio {
        command: "bash".into(),
        args: vec![SCRIPT.into()],
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        cwd: None,
    }
}

async fn connect_with(env: &[(&str, &str)], opts: ConnectOptions) -> (Connection, Inbox) {
    let (handler, inbox) = recorder();
    let (conn, _) = Connection::connect(&spec(env), opts, handler).await.unwrap();
    (conn, inbox)
}

async fn connect() -> (Connection, Inbox) {
    connect_with(&[], options("stdio")).await
}

/// The state letter of a process (`R`, `S`, `Z`, …), or `None` once it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Gone, or at worst a zombie whose parent is not us (it cannot use any resource).
fn not_running(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

#[tokio::test]
async fn handshake_negotiates_the_version() {
    let (handler, _inbox) = recorder();
    let (conn, init) = Connection::connect(&spec(&[("FIXTURE_VERSION", "2025-03-26")]), options("s"), handler)
        .await
        .unwrap();
    assert_eq!(init.protocol_version, "2025-03-26");
    assert_eq!(conn.protocol_version(), "2025-03-26");
    let info: serde_json::Value = init.server_info.decode().unwrap();
    assert_eq!(info["name"], "stdio-fixture");
    assert_eq!(init.capabilities.as_str(), r#"{"tools":{}}"#);
    assert!(conn.pid().is_some());
    conn.close().await;
}

#[tokio::test]
async fn unsupported_version_fails_connect() {
    let (handler, _inbox) = recorder();
    let err = Connection::connect(&spec(&[("FIXTURE_VERSION", "2099-01-01")]), options("s"), handler)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Protocol(m) if m.contains("2099-01-01")),
        "{err}"
    );
}

#[tokio::test]
async fn request_with_line_breaks_in_params_round_trips() {
    let (conn, _inbox) = connect().await;
    let params = raw("{\n  \"text\": \"line1\\nline2\",\r\n  \"list\": [1,\n 2]\n}");
    let response = within(5, conn.request("echo", Some(params))).await.unwrap();
    assert_eq!(
        result(&response),
        json!({"echo": {"text": "line1\nline2", "list": [1, 2]}})
    );
    let error = within(5, conn.request("nope", None)).await.unwrap();
    assert_eq!(error.error_object().unwrap().code, -32601);
    conn.close().await;
}

#[tokio::test]
async fn concurrent_requests_are_matched_by_id() {
    let (conn, _inbox) = connect().await;
    let held: Vec<_> = (0..3).map(|_| conn.request("hold", None)).collect();
    let ids: Vec<u64> = held.iter().map(|r| r.id()).collect();
    let tasks: Vec<_> = held.into_iter().map(tokio::spawn).collect();
    // The fixture answers held requests in reverse order once `release` arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    within(5, conn.request("release", None)).await.unwrap();
    for (task, id) in tasks.into_iter().zip(ids) {
        let response = within(5, task).await.unwrap().unwrap();
        assert_eq!(result(&response), json!({"n": id}));
    }
    assert_eq!(conn.pending_requests(), 0);
    conn.close().await;
}

#[tokio::test]
async fn notifications_and_server_requests_reach_the_handler() {
    let (conn, mut inbox) = connect().await;
    within(5, conn.request("notify", None)).await.unwrap();
    let (note, related) = inbox.notification().await;
    assert_eq!(note.method(), "notifications/message");
    assert_eq!(related, None);

    let ask = tokio::spawn(conn.request("ask", None));
    let (request, related) = inbox.request().await;
    assert_eq!(request.method(), "roots/list");
    assert_eq!(request.id.as_ref().unwrap().as_str(), r#""srv-1""#);
    assert_eq!(related, None);
    conn.respond(answer(&request, json!({"roots": []}))).await.unwrap();
    let response = within(5, ask).await.unwrap().unwrap();
    assert_eq!(
        result(&response)["got"],
        json!({"jsonrpc": "2.0", "id": "srv-1", "result": {"roots": []}})
    );
    conn.close().await;
}

#[tokio::test]
async fn non_json_stdout_lines_are_skipped() {
    let (conn, mut inbox) = connect().await;
    let response = within(5, conn.request("garbage", None)).await.unwrap();
    assert_eq!(result(&response), json!({"after": "garbage"}));
    assert!(!conn.is_closed());
    inbox.assert_quiet(Duration::from_millis(50)).await;
    conn.close().await;
}

#[tokio::test]
async fn oversized_lines_fail_their_request_only() {
    let mut opts = options("s");
    opts.max_message_bytes = 1024;
    let (conn, _inbox) = connect_with(&[], opts).await;
    // The id is found at the start of the line (id first) …
    let err = within(5, conn.request("big", Some(raw(r#"{"size":5000}"#))))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::TooLarge(1024)), "{err}");
    // … and at its end (id last, as some SDKs write it).
    let err = within(5, conn.request("bigtail", Some(raw(r#"{"size":200000}"#))))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::TooLarge(1024)), "{err}");
    let ok = within(5, conn.request("echo", Some(raw(r#"{"still":"alive"}"#))))
        .await
        .unwrap();
    assert_eq!(result(&ok), json!({"echo": {"still": "alive"}}));
    conn.close().await;
}

#[tokio::test]
async fn crash_fails_pending_requests_and_reports_closed() {
    let (conn, mut inbox) = connect().await;
    let held = tokio::spawn(conn.request("hold", None));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let crash = within(5, conn.request("crash", None)).await.unwrap_err();
    assert!(
        matches!(&crash, UpstreamError::Closed(m) if m.contains("status 3")),
        "{crash}"
    );
    let held = within(5, held).await.unwrap().unwrap_err();
    assert!(matches!(held, UpstreamError::Closed(_)));
    let reason = inbox.closed().await.expect("a crash is an error");
    assert!(reason.to_string().contains("status 3"), "{reason}");
    assert!(conn.is_closed());
    within(5, conn.closed()).await;
    let after = conn.request("echo", None).await.unwrap_err();
    assert!(matches!(after, UpstreamError::Closed(_)));
    assert!(matches!(conn.notify("x", None).await, Err(UpstreamError::Closed(_))));
    inbox.assert_quiet(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn close_reaps_the_process_and_its_group() {
    let (conn, mut inbox) = connect().await;
    let pid = conn.pid().unwrap();
    let child = within(5, conn.request("child", None)).await.unwrap();
    let child_pid = result(&child)["pid"].as_u64().unwrap() as u32;
    assert!(proc_state(child_pid).is_some(), "the grandchild runs");
    let pending = tokio::spawn(conn.request("hold", None));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    within(10, conn.close()).await;
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "the server exits on stdin EOF"
    );
    assert_eq!(proc_state(pid), None, "the leader is reaped (no zombie)");
    assert!(not_running(child_pid), "the grandchild in the group is killed");
    assert!(matches!(
        within(5, pending).await.unwrap(),
        Err(UpstreamError::Closed(_))
    ));
    assert!(inbox.closed().await.is_none(), "a requested close is not an error");
    within(5, conn.close()).await; // idempotent
    inbox.assert_quiet(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn close_escalates_to_sigkill_for_a_stubborn_server() {
    let env = [("FIXTURE_IGNORE_TERM", "1"), ("FIXTURE_STUBBORN", "1")];
    let (conn, _inbox) = connect_with(&env, options("s")).await;
    let pid = conn.pid().unwrap();
    let started = Instant::now();
    within(15, conn.close()).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4),
        "stdin close and SIGTERM were each given a grace period: {took:?}"
    );
    assert_eq!(proc_state(pid), None, "killed and reaped");
}

#[tokio::test]
async fn dropping_the_connection_kills_the_process() {
    let (conn, mut inbox) = connect().await;
    let pid = conn.pid().unwrap();
    drop(conn);
    assert!(inbox.closed().await.is_none());
    for _ in 0..200 {
        if proc_state(pid).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process {pid} still exists after the connection was dropped");
}

#[tokio::test]
async fn dropping_the_future_forgets_the_pending_entry() {
    let (conn, _inbox) = connect().await;
    let mut held = conn.request("hold", None);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut held)
            .await
            .is_err()
    );
    assert_eq!(conn.pending_requests(), 1);
    drop(held);
    assert_eq!(conn.pending_requests(), 0);
    // The late response to the forgotten id is dropped; the connection carries on.
    within(5, conn.request("release", None)).await.unwrap();
    let ok = within(5, conn.request("echo", Some(raw("{}")))).await.unwrap();
    assert_eq!(result(&ok), json!({"echo": {}}));
    conn.close().await;
}

#[tokio::test]
async fn spawn_failure_and_connect_timeout() {
    let (handler, _inbox) = recorder();
    let missing = TransportSpec::Stdio {
        command: "/nonexistent/mcp-server".into(),
        args: vec![],
        env: vec![],
        cwd: None,
    };
    let err = Connection::connect(&missing, options("s"), handler.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Spawn(_)), "{err}");
    assert!(!err.is_retryable());

    let silent = TransportSpec::Stdio {
        command: "sleep".into(),
        args: vec!["30".into()],
        env: vec![],
        cwd: None,
    };
    let mut opts = options("s");
    opts.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = Connection::connect(&silent, opts, handler).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Collects what `tracing` writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn stderr_lines_are_logged_with_the_target() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // Current-thread runtime: the connection's tasks log on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    let (conn, _inbox) = connect_with(&[], options("logged-target")).await;
    within(5, conn.request("stderr", None)).await.unwrap();
    conn.close().await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("a line on stderr"), "{logs}");
    assert!(logs.contains("fixture starting"), "{logs}");
    assert!(logs.contains("target=logged-target"), "{logs}");
}
