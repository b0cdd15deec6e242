//! Traffic management on the request path (issue 4): timeouts per method class with progress
//! extending a call, cancellation sent upstream on timeout, retries only where safe and within
//! a budget, rate limits and concurrency limits answered with JSON-RPC errors, circuit
//! breaking with the target left out of lists and probed back, and load balancing over
//! replicas with session affinity. Each test also checks that another target is unaffected.

use std::time::Duration;

use mcpgate_example_server::{Fault, Options};
use serde_json::{Value, json};

use crate::common::*;

fn opts(name: &str, faults: Vec<Fault>) -> Options {
    Options {
        name: name.into(),
        faults,
        ..Default::default()
    }
}

async fn ok_still_answers(c: &Client) {
    assert_eq!(c.call_text("ok_echo", json!({ "message": "fine" })).await, "fine");
}

fn call_params(tool: &str, arguments: Value) -> Value {
    json!({ "name": tool, "arguments": arguments })
}

/// The `/metrics` text.
async fn metrics(gw: &Gateway) -> String {
    let resp = within(
        "GET /metrics",
        http_client().get(format!("{}/metrics", gw.base())).send(),
    )
    .await
    .expect("GET /metrics");
    resp.text().await.expect("the metrics text")
}

/// Asserts that `/metrics` has the line `series value`.
async fn assert_metric(gw: &Gateway, series: &str, value: u64) {
    let text = metrics(gw).await;
    let line = format!("{series} {value}");
    assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_gets_32003_and_is_cancelled_upstream() {
    let ok = named_fixture("ok").await;
    let slow = fixture(opts("slow", vec![Fault::Hang])).await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("slow", &slow.mcp_url(), "    timeouts: { call: 300ms }\n"),
        ],
    ))
    .await;
    let c = gw.connect().await;
    let started = tokio::time::Instant::now();
    let e = c
        .error("tools/call", call_params("slow_echo", json!({ "message": "x" })))
        .await;
    assert_eq!(e["code"], -32003, "{e}");
    assert_eq!(e["data"]["target"], "slow", "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "the call timeout applied");
    // The upstream was told to stop working on it.
    eventually("the upstream to see notifications/cancelled", || {
        slow.stats().snapshot().cancellations == 1
    })
    .await;
    ok_still_answers(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_extends_a_call_until_max_call() {
    let ok = named_fixture("ok").await;
    let work = named_fixture("work").await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("work", &work.mcp_url(), "    timeouts: { call: 600ms, max_call: 2s }\n"),
        ],
    ))
    .await;
    let c = gw.connect().await;
    let args = json!({ "steps": 8, "delay_ms": 150 });
    // 8 × 150 ms = 1.2 s without progress: past the 600 ms call timeout.
    let e = c
        .error("tools/call", call_params("work_long_operation", args.clone()))
        .await;
    assert_eq!(e["code"], -32003, "{e}");
    // With a progress token every step is a sign of life: the same call completes.
    let m = c
        .request(
            "tools/call",
            json!({ "name": "work_long_operation", "arguments": args, "_meta": { "progressToken": "p1" } }),
        )
        .await;
    assert!(m.get("result").is_some(), "progress kept the call alive: {m}");
    // But never beyond max_call (2 s): 20 × 150 ms = 3 s.
    let m = c
        .request(
            "tools/call",
            json!({ "name": "work_long_operation", "arguments": { "steps": 20, "delay_ms": 150 }, "_meta": { "progressToken": "p2" } }),
        )
        .await;
    assert_eq!(
        m["error"]["code"], -32003,
        "max_call bounds a call that keeps reporting: {m}"
    );
    ok_still_answers(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_retried_but_a_tool_call_only_when_marked_idempotent() {
    let ok = named_fixture("ok").await;
    let flaky = fixture(opts("flaky", vec![Fault::FlakyLists(1)])).await;
    let broken = fixture(opts("broken", vec![Fault::Garbage])).await;
    let idem = fixture(opts("idem", vec![Fault::Garbage])).await;
    let no_breaker = "    circuit_breaker: { consecutive_failures: 0 }\n";
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("flaky", &flaky.mcp_url(), no_breaker),
            http_target("broken", &broken.mcp_url(), no_breaker),
            http_target(
                "idem",
                &idem.mcp_url(),
                &format!("{no_breaker}    retries: {{ attempts: 3, backoff: 10ms, idempotent_tools: [\"ech*\"] }}\n"),
            ),
        ],
    ))
    .await;
    let c = gw.connect().await;
    // The first tools/list answer was garbage; the retry got the list.
    let names = c.tool_names().await;
    assert!(names.iter().any(|n| n == "flaky_echo"), "{names:?}");
    assert_eq!(flaky.stats().method("tools/list"), 2, "one failed list, one retry");

    // A tools/call is not retried: the server may have acted on it.
    let e = c
        .error("tools/call", call_params("broken_echo", json!({ "message": "x" })))
        .await;
    assert_eq!(e["code"], -32004, "{e}");
    assert_eq!(broken.stats().tool_calls(), 1, "a non-idempotent call is sent once");

    // Unless the target marks the tool idempotent: then up to `attempts` times.
    let e = c
        .error("tools/call", call_params("idem_echo", json!({ "message": "x" })))
        .await;
    assert_eq!(e["code"], -32004, "{e}");
    assert_eq!(idem.stats().tool_calls(), 3, "an idempotent call is retried");
    assert_metric(&gw, "mcpgate_upstream_retries_total{target=\"idem\"}", 2).await;
    // A tool the list does not mark is still sent once.
    let before = idem.stats().tool_calls();
    c.error("tools/call", call_params("idem_add", json!({ "a": 1, "b": 2 })))
        .await;
    assert_eq!(idem.stats().tool_calls(), before + 1);
    ok_still_answers(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_stops_retries_amplifying_an_outage() {
    let bad = fixture(opts("bad", vec![Fault::Garbage])).await;
    let gw = Gateway::start(&config(
        "",
        &[http_target(
            "bad",
            &bad.mcp_url(),
            "    circuit_breaker: { consecutive_failures: 0 }\n    retries: { attempts: 3, backoff: 10ms, budget_ratio: 0, budget_min: 2, idempotent_tools: [echo] }\n",
        )],
    ))
    .await;
    let c = gw.connect().await;
    for _ in 0..4 {
        c.error("tools/call", call_params("echo", json!({ "message": "x" })))
            .await;
    }
    // 4 calls, and only the 2 retries the budget allows (ratio 0, minimum 2 per window).
    assert_eq!(bad.stats().tool_calls(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_32005_with_retry_after_per_scope() {
    let ok = named_fixture("ok").await;
    let lim = named_fixture("lim").await;
    let head = "traffic:\n  rate_limits:\n    - { scope: tool, match: \"lim:echo\", rate: 1/m, burst: 2 }\n    - { scope: target, match: lim, rate: 1/m, burst: 3 }\n";
    let gw = Gateway::start(&config(
        head,
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target("lim", &lim.mcp_url(), ""),
        ],
    ))
    .await;
    let c = gw.connect().await;
    for _ in 0..2 {
        assert_eq!(c.call_text("lim_echo", json!({ "message": "hi" })).await, "hi");
    }
    let e = c
        .error("tools/call", call_params("lim_echo", json!({ "message": "hi" })))
        .await;
    assert_eq!(e["code"], -32005, "{e}");
    assert_eq!(e["data"]["scope"], "tool", "{e}");
    assert_eq!(e["data"]["target"], "lim", "{e}");
    let wait = e["data"]["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(wait > 1000 && wait <= 60_000, "{e}");
    assert_eq!(
        lim.stats().tool_calls(),
        2,
        "the refused call never reached the upstream"
    );
    assert_metric(&gw, "mcpgate_rate_limited_total{scope=\"tool\"}", 1).await;
    // Another tool of the target is not under the tool limit, but under the target's: the
    // refused call took nothing from it, so one more call fits.
    c.call("lim_add", json!({ "a": 1, "b": 2 })).await;
    let e = c
        .error("tools/call", call_params("lim_add", json!({ "a": 1, "b": 2 })))
        .await;
    assert_eq!(e["data"]["scope"], "target", "{e}");
    // Other targets are not limited.
    for _ in 0..5 {
        ok_still_answers(&c).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_and_identity_limits_count_requests_not_pings() {
    let ok = named_fixture("ok").await;
    let head = "traffic:\n  rate_limits:\n    - { scope: identity, rate: 1/m, burst: 3 }\n";
    let gw = Gateway::start(&config(head, &[http_target("ok", &ok.mcp_url(), "")])).await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    for _ in 0..5 {
        a.result("ping", json!({})).await;
    }
    a.result("tools/list", json!({})).await;
    a.call("echo", json!({ "message": "x" })).await;
    // Anonymous sessions share one identity bucket: b gets the last request of it.
    b.result("tools/list", json!({})).await;
    let e = b.error("tools/list", json!({})).await;
    assert_eq!(e["code"], -32005, "{e}");
    assert_eq!(e["data"]["scope"], "identity", "{e}");
    assert!(e["data"].get("target").is_none(), "{e}");
    // Pings are never limited.
    a.result("ping", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_at_its_concurrency_limit_queues_briefly_then_refuses() {
    let ok = named_fixture("ok").await;
    let busy = fixture(Options {
        name: "busy".into(),
        call_delay: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target(
                "busy",
                &busy.mcp_url(),
                "    concurrency: { max_in_flight: 1, max_queue: 1, queue_timeout: 5s }\n",
            ),
        ],
    ))
    .await;
    let c1 = gw.connect().await;
    let c2 = gw.connect().await;
    let c3 = gw.connect().await;
    let first = tokio::spawn(async move { c1.call_text("busy_echo", json!({ "message": "1" })).await });
    eventually("the first call to reach the upstream", || {
        busy.stats().tool_calls() == 1
    })
    .await;
    // The second waits in the queue for the slot.
    let second = tokio::spawn(async move { c2.call_text("busy_echo", json!({ "message": "2" })).await });
    eventually("the second call to wait in the queue", || {
        gw.core
            .target_status()
            .iter()
            .any(|t| t.name == "busy" && t.traffic.queued == 1)
    })
    .await;
    // The queue (1) is full: the third is refused at once.
    let e = c3
        .error("tools/call", call_params("busy_echo", json!({ "message": "3" })))
        .await;
    assert_eq!(e["code"], -32005, "{e}");
    assert_eq!(e["data"]["scope"], "concurrency", "{e}");
    assert_metric(&gw, "mcpgate_rate_limited_total{scope=\"concurrency\"}", 1).await;
    assert_eq!(e["data"]["target"], "busy", "{e}");
    ok_still_answers(&c3).await;
    assert_eq!(within("the first call", first).await.unwrap(), "1");
    assert_eq!(within("the queued call", second).await.unwrap(), "2");
    assert_eq!(busy.stats().tool_calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_opens_after_failures_hides_the_target_and_closes_after_a_probe() {
    let ok = named_fixture("ok").await;
    let flap = named_fixture("flap").await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            http_target(
                "flap",
                &flap.mcp_url(),
                "    timeouts: { call: 200ms }\n    circuit_breaker: { consecutive_failures: 2, open_for: 3s }\n    health: { interval: 100ms, timeout: 500ms }\n",
            ),
        ],
    ))
    .await;
    let c = gw.connect().await;
    let mut events = c.listen().await;
    assert!(c.tool_names().await.iter().any(|n| n == "flap_echo"));
    flap.server().set_hang(true);
    for _ in 0..2 {
        let e = c
            .error("tools/call", call_params("flap_echo", json!({ "message": "x" })))
            .await;
        assert_eq!(e["code"], -32003, "{e}");
    }
    // Open: clients are told the list changed, the target's tools are gone, calls fail fast.
    events
        .expect("tools/list_changed when the circuit opens", |m| {
            m["method"] == "notifications/tools/list_changed"
        })
        .await;
    let status = gw.core.target_status();
    let flap_status = status.iter().find(|t| t.name == "flap").unwrap();
    assert_eq!(flap_status.traffic.circuit, "open", "{status:?}");
    // `/readyz` shows it too.
    let readyz: Value = http_client()
        .get(format!("{}/readyz", gw.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flap_ready = readyz["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "flap")
        .cloned()
        .unwrap();
    assert_eq!(flap_ready["circuit"], "open", "{readyz}");
    assert_eq!(
        flap_ready["state"], "up",
        "the connection is fine, the calls are not: {readyz}"
    );
    assert_metric(&gw, "mcpgate_circuit_open{target=\"flap\"}", 1).await;
    let names = c.tool_names().await;
    assert!(!names.iter().any(|n| n.starts_with("flap_")), "{names:?}");
    assert!(names.iter().any(|n| n == "ok_echo"), "{names:?}");
    let calls = flap.stats().tool_calls();
    let e = c
        .error("tools/call", call_params("flap_echo", json!({ "message": "x" })))
        .await;
    assert_eq!(e["code"], -32001, "{e}");
    assert_eq!(e["data"]["circuit"], "open", "{e}");
    assert_eq!(e["data"]["target"], "flap", "{e}");
    assert_eq!(
        flap.stats().tool_calls(),
        calls,
        "an open circuit fails fast: nothing reached the upstream"
    );
    ok_still_answers(&c).await;

    // It recovers; after the cool-down a health check is the probe that closes the circuit.
    flap.server().set_hang(false);
    eventually("the circuit to close", || {
        gw.core
            .target_status()
            .iter()
            .any(|t| t.name == "flap" && t.traffic.circuit == "closed")
    })
    .await;
    events
        .expect("tools/list_changed when it returns", |m| {
            m["method"] == "notifications/tools/list_changed"
        })
        .await;
    assert!(c.tool_names().await.iter().any(|n| n == "flap_echo"));
    assert_eq!(c.call_text("flap_echo", json!({ "message": "back" })).await, "back");
    assert_metric(&gw, "mcpgate_circuit_open{target=\"flap\"}", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_sessions_keep_affinity_and_sessions_move_when_one_dies() {
    let ok = named_fixture("ok").await;
    let a = RestartableFixture::start(opts("rep", vec![])).await;
    let b = RestartableFixture::start(opts("rep", vec![])).await;
    let target = format!(
        "  - name: rep\n    streamable_http:\n      urls: [{}, {}]\n    load_balancing: round_robin\n",
        q(&a.mcp_url()),
        q(&b.mcp_url())
    );
    let gw = Gateway::start(&config("", &[http_target("ok", &ok.mcp_url(), ""), target])).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let c = gw.connect().await;
        assert_eq!(c.call_text("rep_echo", json!({ "message": "x" })).await, "x");
        clients.push(c);
    }
    let (ca, cb) = (a.server.stats().tool_calls(), b.server.stats().tool_calls());
    assert_eq!(ca + cb, 4);
    assert!(ca >= 1 && cb >= 1, "round robin used both replicas: {ca} / {cb}");
    let status = gw.core.target_status();
    let rep = status.iter().find(|t| t.name == "rep").unwrap();
    assert_eq!(rep.traffic.endpoints.len(), 2, "{status:?}");

    // Affinity: each session's calls stay on the replica holding its upstream session.
    for c in &clients {
        let (a0, b0) = (a.server.stats().tool_calls(), b.server.stats().tool_calls());
        for _ in 0..3 {
            c.call_text("rep_echo", json!({ "message": "y" })).await;
        }
        let (da, db) = (a.server.stats().tool_calls() - a0, b.server.stats().tool_calls() - b0);
        assert!(
            (da, db) == (3, 0) || (da, db) == (0, 3),
            "calls of one session split: {da} / {db}"
        );
    }

    // Replica b dies: every session keeps working, re-established on a.
    let a_before = a.server.stats().tool_calls();
    drop(b);
    for c in &clients {
        assert_eq!(c.call_text("rep_echo", json!({ "message": "z" })).await, "z");
    }
    assert_eq!(
        a.server.stats().tool_calls(),
        a_before + 4,
        "all went to the live replica"
    );
    ok_still_answers(&clients[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_prefers_the_idle_replica() {
    let a = fixture(Options {
        name: "rep".into(),
        call_delay: Duration::from_millis(2000),
        ..Default::default()
    })
    .await;
    let b = fixture(Options {
        name: "rep".into(),
        call_delay: Duration::from_millis(2000),
        ..Default::default()
    })
    .await;
    let target = format!(
        "  - name: rep\n    streamable_http:\n      urls: [{}, {}]\n    load_balancing: least_outstanding\n",
        q(&a.mcp_url()),
        q(&b.mcp_url())
    );
    let gw = Gateway::start(&config("", &[target])).await;
    // Two sessions each with a slow call in flight: the second session's upstream session
    // goes to the replica without one, whatever the turn.
    let c1 = gw.connect().await;
    let c2 = gw.connect().await;
    let first = tokio::spawn(async move { c1.call_text("echo", json!({ "message": "1" })).await });
    eventually("the first call in flight", || {
        a.stats().tool_calls() + b.stats().tool_calls() == 1
    })
    .await;
    let busy_a = a.stats().tool_calls() == 1;
    c2.call_text("echo", json!({ "message": "2" })).await;
    if busy_a {
        assert_eq!(b.stats().tool_calls(), 1, "the idle replica b got the second session");
    } else {
        assert_eq!(a.stats().tool_calls(), 1, "the idle replica a got the second session");
    }
    within("the first call", first).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_annotations_make_a_call_retryable_only_when_trusted() {
    let trusted = fixture(opts("trusted", vec![Fault::Garbage])).await;
    let untrusted = fixture(opts("untrusted", vec![Fault::Garbage])).await;
    let common = "    circuit_breaker: { consecutive_failures: 0 }\n    retries: { attempts: 2, backoff: 10ms";
    let gw = Gateway::start(&config(
        "",
        &[
            http_target(
                "trusted",
                &trusted.mcp_url(),
                &format!("{common}, trust_idempotent_hint: true }}\n"),
            ),
            http_target("untrusted", &untrusted.mcp_url(), &format!("{common} }}\n")),
        ],
    ))
    .await;
    let c = gw.connect().await;
    c.tool_names().await;
    // `echo` is annotated readOnlyHint/idempotentHint: retried where the hints are trusted.
    c.error("tools/call", call_params("trusted_echo", json!({ "message": "x" })))
        .await;
    assert_eq!(trusted.stats().tool_calls(), 2);
    c.error("tools/call", call_params("untrusted_echo", json!({ "message": "x" })))
        .await;
    assert_eq!(
        untrusted.stats().tool_calls(),
        1,
        "annotations are not trusted by default"
    );
    // `add_tool` is annotated neither read-only nor idempotent: never retried.
    c.error("tools/call", call_params("trusted_add_tool", json!({ "name": "n" })))
        .await;
    assert_eq!(trusted.stats().tool_calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_replica_is_health_checked_and_skipped_while_its_circuit_is_open() {
    let a = RestartableFixture::start(opts("rep", vec![])).await;
    let b = RestartableFixture::start(opts("rep", vec![])).await;
    let b_addr = b.addr;
    let target = format!(
        "  - name: rep\n    streamable_http:\n      urls: [{}, {}]\n    health: {{ interval: 100ms, timeout: 500ms }}\n    circuit_breaker: {{ consecutive_failures: 2, open_for: 1s }}\n",
        q(&a.mcp_url()),
        q(&b.mcp_url())
    );
    let gw = Gateway::start(&config("", &[target])).await;
    let endpoint_circuit = |i: usize| {
        let status = gw.core.target_status();
        status[0].traffic.endpoints[i].circuit
    };
    // The replica without the main session gets a health-check session of its own.
    eventually("a health-check session on replica b", || {
        b.server.stats().method("ping") >= 1
    })
    .await;

    // b goes away: with no client traffic at all, its checks fail and its circuit opens.
    drop(b);
    eventually("replica b's circuit to open", || endpoint_circuit(1) == "open").await;
    assert_eq!(endpoint_circuit(0), "closed");
    assert_eq!(
        gw.core.target_status()[0].traffic.circuit,
        "closed",
        "the target as a whole is fine"
    );
    // New sessions all go to a.
    for _ in 0..2 {
        let c = gw.connect().await;
        assert_eq!(c.call_text("echo", json!({ "message": "x" })).await, "x");
    }
    assert_eq!(a.server.stats().tool_calls(), 2);

    // b comes back on the same address: after the cool-down a check closes its circuit.
    let listener = within("rebinding b's port", async {
        loop {
            match tokio::net::TcpListener::bind(b_addr).await {
                Ok(l) => return l,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    let b2 = mcpgate_example_server::ExampleServer::new(opts("rep", vec![]));
    let serving = tokio::spawn({
        let b2 = b2.clone();
        async move { b2.serve_http(listener).await }
    });
    eventually("replica b's circuit to close", || endpoint_circuit(1) == "closed").await;
    assert!(b2.stats().method("ping") >= 1);
    b2.shutdown();
    serving.abort();
}
