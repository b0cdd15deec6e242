//! The fault-injection suite (issue 4): `mcpgate run` as a process in front of fixture
//! upstreams that hang, crash in the middle of a response, answer garbage, flap, answer
//! slowly, and stream forever. For each: the exact error a client sees, that a healthy target
//! keeps answering during it, and that nothing leaks over a sustained run (the gateway's file
//! descriptors and RSS, and child processes). The matrix is documented in
//! docs/operations.md ("Fault matrix").

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;
use crate::operations::{GatewayProcess, processes_with, unique, wait_processes};

/// Rounds of the sustained run (each sends one call to every target at once).
fn rounds() -> usize {
    std::env::var("MCPGATE_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

struct Targets {
    ok: String,
    hang: String,
    crash: String,
    garbage: String,
    flap: String,
    slow: String,
    too_slow: String,
    flood: String,
}

impl Targets {
    fn new() -> Targets {
        Targets {
            ok: unique("fok"),
            hang: unique("fhang"),
            crash: unique("fcrash"),
            garbage: unique("fgarb"),
            flap: unique("fflap"),
            slow: unique("fslow"),
            too_slow: unique("ftoo"),
            flood: unique("fflood"),
        }
    }

    fn all(&self) -> [&String; 8] {
        [
            &self.ok,
            &self.hang,
            &self.crash,
            &self.garbage,
            &self.flap,
            &self.slow,
            &self.too_slow,
            &self.flood,
        ]
    }

    fn yaml(&self) -> Vec<String> {
        let timeout = |t: &str| format!("{SHARED}    request_timeout: {t}\n");
        vec![
            stdio_target(&self.ok, &[], SHARED),
            stdio_target(&self.hang, &["--fault", "hang"], &timeout("1s")),
            stdio_target(&self.crash, &["--fault", "crash-mid-response"], SHARED),
            stdio_target(&self.garbage, &["--fault", "garbage"], &timeout("1s")),
            // Answers initialize, tools/list and one more request, then crashes; restarted.
            stdio_target(&self.flap, &["--fault", "crash-after:3"], SHARED),
            stdio_target(&self.slow, &["--fault", "slow:300"], SHARED),
            stdio_target(&self.too_slow, &["--fault", "slow:5000"], &timeout("1s")),
            stdio_target(&self.flood, &["--fault", "flood"], "    request_timeout: 1500ms\n"),
        ]
    }
}

const HEAD: &str = "supervision:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n  crash_loop_restarts: 1000\n";

async fn call(c: &Client, target: &str, message: &str) -> Value {
    c.request(
        "tools/call",
        json!({ "name": format!("{target}_echo"), "arguments": { "message": message } }),
    )
    .await
}

fn error_of(m: &Value) -> &Value {
    assert!(m.get("result").is_none(), "expected an error: {m}");
    &m["error"]
}

fn assert_error(m: &Value, code: i64, text: &str, target: &str) {
    let e = error_of(m);
    assert_eq!(e["code"], code, "{m}");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(msg.contains(text), "expected {text:?} in {m}");
    assert!(
        e["data"]["target"] == target || msg.contains(target),
        "the error names the target: {m}"
    );
}

async fn healthy(c: &Client, t: &Targets) {
    let m = call(c, &t.ok, "fine").await;
    assert_eq!(m["result"]["content"][0]["text"], "fine", "{m}");
}

/// One call to every target at once.
async fn round(c: &Client, t: &Targets) -> Vec<Value> {
    join_all(t.all().map(|target| call(c, target, "r"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_gets_its_error_others_keep_answering_and_nothing_leaks() {
    let t = Targets::new();
    let gw = GatewayProcess::start(HEAD, &t.yaml()).await;
    let mut c = Client::new(&gw.mcp_url());
    c.initialize(LATEST, json!({})).await;
    healthy(&c, &t).await;

    // hang: the request timeout, and the call is cancelled upstream.
    assert_error(&call(&c, &t.hang, "x").await, -32003, "did not answer in time", &t.hang);
    healthy(&c, &t).await;

    // crash in the middle of a response: unavailable, naming the exit.
    let m = call(&c, &t.crash, "x").await;
    assert_error(&m, -32001, "exited with status 1", &t.crash);
    healthy(&c, &t).await;

    // garbage on stdout: the line is skipped (and logged); the call times out.
    assert_error(
        &call(&c, &t.garbage, "x").await,
        -32003,
        "did not answer in time",
        &t.garbage,
    );
    healthy(&c, &t).await;

    // flapping: calls fail as unavailable while it is down and succeed once it is back.
    let (mut failed, mut answered_after_failure) = (0, false);
    for i in 0..30 {
        let m = call(&c, &t.flap, &i.to_string()).await;
        match m.get("error") {
            Some(e) => {
                assert_eq!(e["code"], -32001, "{m}");
                failed += 1;
            }
            None => {
                assert_eq!(m["result"]["content"][0]["text"], i.to_string(), "{m}");
                answered_after_failure |= failed > 0;
            }
        }
        if failed >= 2 && answered_after_failure {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        healthy(&c, &t).await;
    }
    assert!(
        failed >= 2 && answered_after_failure,
        "the flapping target never came back"
    );

    // slow: answered, just later; too slow: the timeout.
    let started = tokio::time::Instant::now();
    assert_eq!(call(&c, &t.slow, "late").await["result"]["content"][0]["text"], "late");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_error(
        &call(&c, &t.too_slow, "x").await,
        -32003,
        "did not answer in time",
        &t.too_slow,
    );

    // streaming forever: the client gets the stream of log notifications, then the timeout.
    let (id, reply) = c
        .start(
            "tools/call",
            json!({ "name": format!("{}_echo", t.flood), "arguments": {} }),
        )
        .await;
    let mut stream = reply.stream();
    let seen = stream
        .collect_until("the flood's timeout", |m| is_response_to(m, &id))
        .await;
    let logs = seen
        .iter()
        .filter(|m| is_notification(m, "notifications/message"))
        .count();
    assert!(logs >= 10, "the notifications reach the client ({logs})");
    assert_error(seen.last().unwrap(), -32003, "did not answer in time", &t.flood);
    healthy(&c, &t).await;

    // Sustained: every target at once, round after round. Warm up first, then measure.
    let c2 = crate::operations::same_session(&c);
    for _ in 0..2 {
        round(&c2, &t).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds0, rss0) = (gw.fds(), gw.rss_kib());
    for _ in 0..rounds() {
        let answers = round(&c2, &t).await;
        // Every call is answered (a result or an error, never silence), the healthy one
        // with its result.
        assert_eq!(answers[0]["result"]["content"][0]["text"], "r", "{:?}", answers[0]);
        for a in &answers {
            assert!(a.get("result").is_some() || a.get("error").is_some(), "{a}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds1, rss1) = (gw.fds(), gw.rss_kib());
    assert!(fds1 <= fds0 + 8, "file descriptors grew from {fds0} to {fds1}");
    assert!(
        rss1 <= rss0 + 40 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB over {} rounds",
        rounds()
    );
    for target in t.all() {
        let n = processes_with(&["--name", target.as_str()]).len();
        assert!(n <= 2, "{target}: {n} processes");
    }
    eprintln!(
        "fault suite: {} rounds; gateway fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} KiB",
        rounds()
    );

    // A clean exit leaves no process behind.
    gw.signal(libc::SIGTERM);
    let mut gw = gw;
    let status = within("the gateway to exit", gw.child.wait()).await.unwrap();
    assert!(status.success(), "{}", gw.log());
    for target in t.all() {
        wait_processes(&["--name", target.as_str()], 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_grow_the_gateways_memory() {
    let (ok, flood) = (unique("sok"), unique("sflood"));
    let gw = GatewayProcess::start(
        "",
        &[
            stdio_target(&ok, &[], SHARED),
            stdio_target(&flood, &["--fault", "flood"], "    request_timeout: 12s\n"),
        ],
    )
    .await;
    let mut c = Client::new(&gw.mcp_url());
    c.initialize(LATEST, json!({})).await;
    // The general stream, opened and never read.
    let general = c.get_raw(&[]).await;
    assert_eq!(general.status(), StatusCode::OK);
    // A call whose SSE response streams ~16 MB/s of log notifications, never read.
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": format!("{flood}_echo"), "arguments": {}}});
    let mut h = c.headers();
    h.insert("accept", "text/event-stream".parse().unwrap());
    let unread = c.post_raw(h, serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(unread.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let early = gw.rss_kib();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let late = gw.rss_kib();
    // Six more seconds of flood is ~100 MB; the per-session buffers are bounded.
    assert!(
        late <= early + 32 * 1024,
        "RSS grew from {early} KiB to {late} KiB while the client did not read"
    );
    // The gateway still serves this session and others.
    let other = {
        let mut o = Client::new(&gw.mcp_url());
        o.initialize(LATEST, json!({})).await;
        o
    };
    assert_eq!(
        other
            .call_text(&format!("{ok}_echo"), json!({ "message": "yes" }))
            .await,
        "yes"
    );
    assert_eq!(
        c.call_text(&format!("{ok}_echo"), json!({ "message": "me" })).await,
        "me"
    );
    eprintln!("slow client: gateway RSS {early} KiB -> {late} KiB");
    drop(unread);
    drop(general);
}
