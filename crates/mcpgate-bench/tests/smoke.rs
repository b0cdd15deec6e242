//! A quick run of the harness against the example server, direct and through an in-process
//! gateway: it must connect, initialize, send, count and report sane figures. No timing is
//! asserted — only that requests went through without errors and the reports hold together.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_bench::client::{Accept, Endpoint, Transport};
use mcpgate_bench::load::{self, Call, IdleSessions, LoadSpec, Recorded};

struct Gateway {
    core: mcpgate_core::Gateway,
    mcp: String,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn gateway(upstream_mcp: &str) -> Gateway {
    let yaml = format!(
        "listen:\n  address: 127.0.0.1:0\ntargets:\n  - name: fx\n    streamable_http:\n      url: {upstream_mcp}\n"
    );
    let config = mcpgate_config::Config::from_str(&yaml, "smoke.yaml", false).expect("config loads");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let core = mcpgate_core::Gateway::start(config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mcpgate_http::serve(listener, core.clone(), async move {
        let _ = stopped.await;
    }));
    core.wait_targets_settled(Duration::from_secs(10)).await;
    Gateway {
        core,
        mcp: format!("http://{addr}/mcp"),
        base: format!("http://{addr}"),
        _stop: stop,
    }
}

fn streamable(url: &str, accept: Accept) -> Transport {
    Transport::Streamable {
        ep: Arc::new(Endpoint::parse(url, None).unwrap()),
        accept,
    }
}

fn spec(transport: Transport, call: Call, rate: Option<f64>) -> LoadSpec {
    LoadSpec {
        transport,
        call,
        concurrency: 2,
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(300),
        rate,
        timeout: Duration::from_secs(10),
        watch_pid: Some(std::process::id()),
    }
}

/// Requests went through, none failed, and the report's figures are consistent.
fn assert_sane(what: &str, rec: &Recorded) {
    let r = rec.report();
    assert!(r.requests > 0, "{what}: no requests counted: {r:?}");
    assert_eq!(r.errors, 0, "{what}: errors: {r:?}");
    let l = r.latency_us;
    assert!(
        l.p50 > 0.0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
        "{what}: percentiles out of order: {l:?}"
    );
    assert!(r.throughput_rps > 0.0 && r.duration_s > 0.0, "{what}: {r:?}");
    let json = serde_json::to_value(&r).unwrap();
    for key in ["requests", "errors", "throughput_rps", "latency_us"] {
        assert!(json.get(key).is_some(), "{what}: no `{key}` in {json}");
    }
    let server = rec.server.expect("the watched process was sampled");
    assert_eq!(server.calls, r.requests);
    assert!(server.rss_kb > 0, "{what}: {server:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_runs_direct_and_through_the_gateway() {
    let fx = mcpgate_example_server::spawn_http(mcpgate_example_server::Options {
        result_bytes: Some(10_000),
        ..Default::default()
    })
    .await
    .unwrap();
    let gw = gateway(&fx.mcp_url()).await;
    let echo = Call::tool("echo", r#"{"message":"hi"}"#);

    let direct = load::run(&spec(streamable(&fx.mcp_url(), Accept::Both), echo.clone(), None))
        .await
        .unwrap();
    assert_sane("direct", &direct);
    let through = load::run(&spec(streamable(&gw.mcp, Accept::Both), echo.clone(), None))
        .await
        .unwrap();
    assert_sane("gateway", &through);

    let blob = load::run(&spec(
        streamable(&gw.mcp, Accept::Sse),
        Call::tool("blob_result", "{}"),
        None,
    ))
    .await
    .unwrap();
    assert_sane("gateway, SSE answers, 10 KB results", &blob);
    assert!(blob.report().result_bytes_mean >= 10_000, "{:?}", blob.report());

    let legacy = load::run(&spec(
        Transport::Legacy {
            ep: Arc::new(Endpoint::parse(&format!("{}/sse", gw.base), None).unwrap()),
        },
        echo.clone(),
        None,
    ))
    .await
    .unwrap();
    assert_sane("gateway, legacy SSE", &legacy);

    let open = load::run(&spec(
        streamable(&gw.mcp, Accept::Both),
        Call::bare("tools/list"),
        Some(100.0),
    ))
    .await
    .unwrap();
    assert_sane("gateway, open loop", &open);
    assert!(open.ok <= 40, "an open loop at 100/s sent {} in 0.3 s", open.ok);

    let ep = Arc::new(Endpoint::parse(&gw.mcp, None).unwrap());
    let setups = load::setup_rate(
        ep.clone(),
        2,
        Duration::from_millis(20),
        Duration::from_millis(200),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(setups.ok > 0 && setups.error_count() == 0, "{:?}", setups.report());

    // Every session the bench opened is gone again (DELETEd).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gw.core.session_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gw.core.session_count(), 0, "the bench left sessions open");

    let mut idle = IdleSessions::open(ep, 20, 4).await.unwrap();
    assert_eq!(idle.len(), 20);
    idle.open_streams(8).await.unwrap();
    assert_eq!((idle.streams(), idle.errors.len()), (20, 0));
    assert_eq!(gw.core.session_count(), 20);
    idle.close(4).await;
    assert_eq!(gw.core.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_json() {
    let fx = mcpgate_example_server::spawn_http(Default::default()).await.unwrap();
    let url = fx.mcp_url();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate-bench"))
        .args([
            "load", "--url", &url, "--json", "-c", "2", "-d", "300ms", "--warmup", "50ms",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["kind"], "load");
    assert_eq!(v["concurrency"], 2);
    assert!(v["report"]["requests"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["report"]["errors"], 0, "{v}");
    assert!(v["report"]["latency_us"]["p99"].as_f64().unwrap() > 0.0, "{v}");
}
