//! Operations (issue 4): hot reload of targets, limits (JSON depth, sessions, streams,
//! upstream message size, per-client processes), stdio supervision (crash loops, stderr
//! tail), and the graceful drain of `mcpgate run` on SIGTERM, with no process left behind.

use std::process::Stdio;
use std::time::Duration;

use mcpgate_example_server::Options;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Helpers: processes by marker, a gateway run as a process
// ---------------------------------------------------------------------------------------------

/// Pids of live processes whose command line contains every one of `args` as an argument.
pub fn processes_with(args: &[&str]) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.iter().all(|a| argv.contains(&a.as_bytes())) {
            out.push(pid);
        }
    }
    out
}

/// Waits until exactly `n` processes match `args`.
pub async fn wait_processes(args: &[&str], n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = processes_with(args);
        if found.len() == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} process(es) with {args:?}, found {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A name unique to this run, for telling this test's processes from others'.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", rand_suffix())
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}{:x}", std::process::id() & 0xfff, nanos & 0xfffff)
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

/// `mcpgate run` as a child process on a port of its own.
pub struct GatewayProcess {
    pub child: tokio::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Writes `yaml` (with `listen.address` set to a free port) and starts the gateway; waits
    /// until `/readyz` answers 200.
    pub async fn start(head: &str, targets: &[String]) -> GatewayProcess {
        // The test's HTTP client needs a TLS provider even for http:// URLs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let yaml = config(&format!("listen:\n  address: 127.0.0.1:{port}\n{head}"), targets);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = tokio::process::Command::new(MCPGATE)
            .args(["run", "-c"])
            .arg(&path)
            .env("MCPGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("mcpgate starts");
        let g = GatewayProcess { child, port, dir };
        g.wait_ready().await;
        g
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("gateway.yaml")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base())
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    pub async fn readyz(&self) -> (StatusCode, Value) {
        let r = http_client()
            .get(format!("{}/readyz", self.base()))
            .send()
            .await
            .expect("readyz answers");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = http_client().get(format!("{}/readyz", self.base())).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the gateway did not become ready: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, sig);
        }
    }

    /// Open file descriptors of the gateway process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident memory of the gateway process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// A second client on the same session (for concurrent requests).
pub fn same_session(c: &Client) -> Client {
    let mut other = Client::new(&c.url);
    other.session = c.session.clone();
    other.version = c.version.clone();
    other
}

fn target_status(ready: &Value, name: &str) -> Value {
    ready["targets"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Graceful drain
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_calls_refuses_new_work_and_exits_cleanly() {
    let marker = unique("drain");
    let gw = GatewayProcess::start(
        "shutdown:\n  announce: 700ms\n  drain_timeout: 20s\n",
        &[stdio_target(&marker, &[], "")],
    )
    .await;
    let mut c = Client::new(&gw.mcp_url());
    c.initialize(LATEST, json!({})).await;
    // A per-client process besides the main one.
    assert!(c.call_text("echo", json!({ "message": "hi" })).await.contains("hi"));
    wait_processes(&["--name", &marker], 2).await;

    // A slow call in flight when the signal arrives.
    let slow = tokio::spawn(async move {
        let r = c
            .call_text("long_operation", json!({ "steps": 6, "delay_ms": 250 }))
            .await;
        (c, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = tokio::time::Instant::now();
    gw.signal(libc::SIGTERM);

    // Within the announce window: not ready, and no new sessions (503 with a JSON-RPC body).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, body) = gw.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["draining"], true);
    let fresh = Client::new(&gw.mcp_url());
    let resp = fresh
        .post_raw(
            fresh.headers(),
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "late", "version": "1"}}}))
            .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], -32001, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("shutting down"),
        "{err}"
    );

    // The slow call completes with its result.
    let (_c, text) = within("the in-flight call to finish", slow).await.unwrap();
    assert!(text.contains("Long operation finished: 6 step(s)"), "{text}");

    // After the announce window the listener is closed: new connections are refused.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let refused = std::net::TcpStream::connect(("127.0.0.1", gw.port));
    assert!(
        refused.is_err(),
        "the listener still accepts connections during the drain"
    );

    // Exit 0 well within the drain timeout, and no child process left.
    let mut gw = gw;
    let status = within("the gateway to exit", gw.child.wait()).await.unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{}", gw.log());
    assert!(sent.elapsed() < Duration::from_secs(15));
    wait_processes(&["--name", &marker], 0).await;
    let log = gw.log();
    assert!(log.contains("Shutting down gracefully"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_kills_stdio_servers() {
    let marker = unique("force");
    let gw = GatewayProcess::start("shutdown:\n  drain_timeout: 60s\n", &[stdio_target(&marker, &[], "")]).await;
    let mut c = Client::new(&gw.mcp_url());
    c.initialize(LATEST, json!({})).await;
    let _slow = tokio::spawn(async move {
        let _ = c
            .request(
                "tools/call",
                json!({ "name": "long_operation", "arguments": { "steps": 100, "delay_ms": 500 } }),
            )
            .await;
    });
    wait_processes(&["--name", &marker], 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal(libc::SIGINT);
    let mut gw = gw;
    let status = within("the forced exit", gw.child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(130), "log:\n{}", gw.log());
    wait_processes(&["--name", &marker], 0).await;
}

// ---------------------------------------------------------------------------------------------
// Hot reload
// ---------------------------------------------------------------------------------------------

fn load(yaml: &str, like: &Gateway) -> mcpgate_config::Config {
    let mut c = mcpgate_config::Config::from_str(yaml, "reload.yaml", false).expect("the new config loads");
    c.listen.address = like.core.config().listen.address;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_removes_and_replaces_targets_and_keeps_the_rest_untouched() {
    let (keep, gone, change, added) = (unique("rk"), unique("rg"), unique("rc"), unique("ra"));
    let before = config(
        "",
        &[
            stdio_target(&keep, &[], ""),
            stdio_target(&gone, &[], ""),
            stdio_target(&change, &[], ""),
        ],
    );
    let gw = Gateway::start(&before).await;
    let c = gw.connect().await;
    let mut general = c.listen().await;
    for t in [&keep, &gone, &change] {
        assert_eq!(c.call_text(&format!("{t}_echo"), json!({ "message": "x" })).await, "x");
        wait_processes(&["--name", t], 2).await;
    }
    let keep_pids = processes_with(&["--name", &keep]);

    // A call in flight on the unchanged target while the reload happens.
    let same_session = same_session(&c);
    let tool = format!("{keep}_long_operation");
    let in_flight = tokio::spawn(async move {
        same_session
            .call_text(&tool, json!({ "steps": 4, "delay_ms": 250 }))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = config(
        "",
        &[
            stdio_target(&keep, &[], ""),
            stdio_target(&change, &["--page-size", "50"], ""),
            stdio_target(&added, &[], ""),
        ],
    );
    let report = gw.core.reload(load(&after, &gw));
    assert_eq!(report.added, std::slice::from_ref(&added));
    assert_eq!(report.removed, std::slice::from_ref(&gone));
    assert_eq!(report.changed, std::slice::from_ref(&change));
    assert_eq!(report.unchanged, std::slice::from_ref(&keep));
    assert!(report.needs_restart.is_empty(), "{report:?}");

    // Clients are told the lists changed.
    general
        .expect("tools/list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    // The in-flight call on the kept target completes.
    let done = within("the in-flight call", in_flight).await.unwrap();
    assert!(done.contains("Long operation finished"), "{done}");
    // The kept target's processes are the same ones; the removed target's are gone; the
    // replaced target runs new ones (with the new arguments).
    assert_eq!(processes_with(&["--name", &keep]), keep_pids);
    wait_processes(&["--name", &gone], 0).await;
    wait_processes(&["--name", &change, "--page-size"], 1).await;
    assert_eq!(
        processes_with(&["--name", &change]).len(),
        1,
        "the old process of the replaced target is gone"
    );
    gw.wait_state(&added, "up").await;

    // The removed target's state gauges leave /metrics (no stale `up` forever); the others stay.
    let gone_up = format!("mcpgate_target_up{{target=\"{gone}\"}}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&gw).await;
        if !text.contains(&gone_up) || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!text.contains(&gone_up), "{text}");
    for t in [&keep, &change, &added] {
        assert!(
            text.contains(&format!("mcpgate_target_up{{target=\"{t}\"}} 1")),
            "{t}: {text}"
        );
    }

    // The same session goes on: the new and replaced targets work, the removed one is unknown.
    let names = c.tool_names().await;
    assert!(names.iter().any(|n| n == &format!("{added}_echo")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with(&format!("{gone}_"))), "{names:?}");
    assert_eq!(
        c.call_text(&format!("{added}_echo"), json!({ "message": "new" })).await,
        "new"
    );
    assert_eq!(
        c.call_text(&format!("{change}_echo"), json!({ "message": "again" }))
            .await,
        "again"
    );
    assert_eq!(
        c.call_text(&format!("{keep}_echo"), json!({ "message": "same" })).await,
        "same"
    );
    let e = c
        .error("tools/call", json!({ "name": format!("{gone}_echo"), "arguments": {} }))
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    wait_processes(&["--name", &change], 2).await;
    drop(c);
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_naming_and_keeps_the_listener_address() {
    let ok = named_fixture("ok").await;
    let other = named_fixture("other").await;
    let targets = [
        http_target("ok", &ok.mcp_url(), ""),
        http_target("other", &other.mcp_url(), ""),
    ];
    let gw = Gateway::start(&config("", &targets)).await;
    let c = gw.connect().await;
    let mut general = c.listen().await;
    assert!(c.tool_names().await.contains(&"ok_echo".to_string()));
    let running = gw.core.config().listen.address;
    let mut new = load(&config("naming:\n  separator: \"-\"\n", &targets), &gw);
    new.listen.address = "127.0.0.1:1".parse().unwrap();
    let report = gw.core.reload(new);
    assert_eq!(report.needs_restart, ["listen.address"]);
    assert_eq!(report.unchanged.len(), 2);
    assert_eq!(gw.core.config().listen.address, running, "the old address stays");
    general
        .expect("tools/list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    let names = c.tool_names().await;
    assert!(names.contains(&"ok-echo".to_string()), "{names:?}");
    assert_eq!(
        c.call_text("other-echo", json!({ "message": "renamed" })).await,
        "renamed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_file_and_a_bad_file_keeps_the_running_config() {
    let (first, second) = (unique("hf"), unique("hs"));
    let gw = GatewayProcess::start("", &[stdio_target(&first, &[], "    session: shared\n")]).await;
    let mut c = Client::new(&gw.mcp_url());
    c.initialize(LATEST, json!({})).await;
    assert_eq!(c.call_text("echo", json!({ "message": "one" })).await, "one");

    // Add a target: both are served (now prefixed), the session stays.
    let port = gw.port;
    let two = config(
        &format!("listen:\n  address: 127.0.0.1:{port}\n"),
        &[
            stdio_target(&first, &[], "    session: shared\n"),
            stdio_target(&second, &[], "    session: shared\n"),
        ],
    );
    std::fs::write(gw.config_path(), &two).unwrap();
    gw.signal(libc::SIGHUP);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let names = c.tool_names().await;
        if names.contains(&format!("{second}_echo")) && names.contains(&format!("{first}_echo")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{names:?}\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.call_text(&format!("{second}_echo"), json!({ "message": "two" }))
            .await,
        "two"
    );

    // A bad file: rejected with its position, nothing changes.
    std::fs::write(gw.config_path(), "targets:\n  - name: [oops\n").unwrap();
    gw.signal(libc::SIGHUP);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !gw.log().contains("Config reload rejected") {
        assert!(tokio::time::Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gw.log().contains("gateway.yaml:2:"),
        "the error names the position: {}",
        gw.log()
    );
    assert_eq!(
        c.call_text(&format!("{first}_echo"), json!({ "message": "still" }))
            .await,
        "still"
    );

    // Removing a target ends its process.
    let one = config(
        &format!("listen:\n  address: 127.0.0.1:{port}\n"),
        &[stdio_target(&first, &[], "    session: shared\n")],
    );
    std::fs::write(gw.config_path(), &one).unwrap();
    gw.signal(libc::SIGHUP);
    wait_processes(&["--name", &second], 0).await;
    assert_eq!(c.call_text("echo", json!({ "message": "back" })).await, "back");
    gw.signal(libc::SIGTERM);
    let mut gw = gw;
    assert!(within("exit", gw.child.wait()).await.unwrap().success());
    wait_processes(&["--name", &first], 0).await;
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "limits", "version": "1"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_nested_deeper_than_the_limit_are_refused_with_invalid_request() {
    let ok = named_fixture("ok").await;
    let gw = Gateway::start(&config(
        "listen:\n  max_json_depth: 16\n",
        &[http_target("ok", &ok.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let mut deep = json!("leaf");
    for _ in 0..20 {
        deep = json!([deep]);
    }
    let resp = c
        .post_raw(
            c.headers(),
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"message": deep}}}))
            .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("max_json_depth"),
        "{body}"
    );
    // A megabyte of brackets is refused the same way, without stack trouble.
    let bomb = format!("{}{}", "[".repeat(500_000), "]".repeat(500_000));
    let resp = c.post_raw(c.headers(), bomb).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Within the limit is fine.
    let mut ok_depth = json!("leaf");
    for _ in 0..8 {
        ok_depth = json!([ok_depth]);
    }
    let r = c.call("echo", json!({ "message": "fine", "extra": ok_depth })).await;
    assert_eq!(r["content"][0]["text"], "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_limits_are_refused_with_503_or_429() {
    let ok = named_fixture("ok").await;
    let gw = Gateway::start(&config(
        "listen:\n  max_sessions: 2\n",
        &[http_target("ok", &ok.mcp_url(), "")],
    ))
    .await;
    let a = gw.connect().await;
    let _b = gw.connect().await;
    let third = gw.client();
    let resp = third
        .post_raw(third.headers(), serde_json::to_vec(&initialize_body()).unwrap())
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("listen.max_sessions"),
        "{body}"
    );
    assert_eq!(a.delete().await, StatusCode::OK);
    let _c = gw.connect().await;
    let metrics = scrape(&gw).await;
    assert!(
        metrics.contains("mcpgate_limit_rejections_total{limit=\"max_sessions\"} 1"),
        "{metrics}"
    );

    // Per identity: alice's third session is refused, bob is not affected.
    const ALICE_HASH: &str = "ad77f83d5d5b9a3b738cfc75982ec0460450b94aa1bac0f16451a1142c89c4c8";
    const BOB_HASH: &str = "9c854c32c3e1e4018e592ff35ce24355578613133dd3cf727cedd43fe7f89564";
    let head = format!(
        "listen:\n  max_sessions_per_identity: 2\nauth:\n  api_keys:\n    - {{hash: {ALICE_HASH}, subject: alice}}\n    - {{hash: {BOB_HASH}, subject: bob}}"
    );
    let gw = Gateway::start(&config(&head, &[http_target("ok", &ok.mcp_url(), "")])).await;
    let init = |key: &'static str| {
        let url = gw.mcp_url();
        async move {
            http_client()
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {key}"))
                .json(&initialize_body())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(init("test-key-alice").await.status(), StatusCode::OK);
    assert_eq!(init("test-key-alice").await.status(), StatusCode::OK);
    let refused = init("test-key-alice").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_sessions_per_identity"),
        "{body}"
    );
    assert_eq!(init("test-key-bob").await.status(), StatusCode::OK);
    let metrics = scrape(&gw).await;
    assert!(
        metrics.contains("mcpgate_limit_rejections_total{limit=\"max_sessions_per_identity\"} 1"),
        "{metrics}"
    );
}

/// The gateway's `/metrics` text.
async fn scrape(gw: &Gateway) -> String {
    http_client()
        .get(format!("{}/metrics", gw.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_streams_per_session_are_capped() {
    let ok = named_fixture("ok").await;
    let gw = Gateway::start(&config(
        "listen:\n  max_streams_per_session: 1\n",
        &[http_target("ok", &ok.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let first = c.listen().await;
    let second = c.get_raw(&[]).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = second.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_streams_per_session"),
        "{body}"
    );
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = c.get_raw(&[]).await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream was never released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_message_over_the_target_limit_fails_its_call_clearly() {
    let big = |sse| Options {
        name: "big".into(),
        result_bytes: Some(100_000),
        sse_responses: sse,
        ..Default::default()
    };
    let (json_up, sse_up, ok) = (
        fixture(big(false)).await,
        fixture(big(true)).await,
        named_fixture("ok").await,
    );
    let limit = "    max_message_bytes: 65536\n";
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("body", &json_up.mcp_url(), limit),
            http_target("event", &sse_up.mcp_url(), limit),
            http_target("ok", &ok.mcp_url(), ""),
        ],
    ))
    .await;
    let c = gw.connect().await;
    for t in ["body", "event"] {
        let e = c
            .error(
                "tools/call",
                json!({ "name": format!("{t}_blob_result"), "arguments": {} }),
            )
            .await;
        assert_eq!(e["code"], -32004, "{t}: {e}");
        assert!(e["message"].as_str().unwrap().contains("larger than 65536"), "{t}: {e}");
        assert_eq!(c.call_text("ok_echo", json!({ "message": "fine" })).await, "fine");
    }
}

// ---------------------------------------------------------------------------------------------
// stdio supervision
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_server_is_reported_with_its_stderr() {
    let ok = named_fixture("ok").await;
    let marker = unique("loop");
    let gw = Gateway::start_unsettled(&config(
        "supervision:\n  backoff_initial: 20ms\n  backoff_max: 50ms\n  crash_loop_restarts: 3\n  crash_loop_window: 1m\n  crash_loop_backoff: 1m\n",
        &[
            http_target("ok", &ok.mcp_url(), ""),
            stdio_target(&marker, &["--fault", "crash-after:0"], "    connect_timeout: 5s\n"),
        ],
    ))
    .await;
    gw.wait_state(&marker, "crash_loop").await;
    let status = gw.core.target_status().into_iter().find(|t| t.name == marker).unwrap();
    assert!(
        status.stderr.iter().any(|l| l.contains("crash")),
        "the stderr tail shows why: {status:?}"
    );
    // /readyz shows it, and the other target keeps working.
    let ready: Value = http_client()
        .get(format!("{}/readyz", gw.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = target_status(&ready, &marker);
    assert_eq!(t["state"], "crash_loop", "{ready}");
    assert!(!t["stderr"].as_array().unwrap().is_empty(), "{ready}");
    let metrics = scrape(&gw).await;
    assert!(
        metrics.contains(&format!("mcpgate_target_crash_loop{{target=\"{marker}\"}} 1")),
        "{metrics}"
    );
    let c = gw.connect().await;
    assert_eq!(c.call_text("ok_echo", json!({ "message": "fine" })).await, "fine");
    // No restarts while in the crash-loop backoff.
    let restarts = processes_with(&["--name", &marker]).len();
    assert_eq!(restarts, 0, "no process lingers between attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_processes_are_capped_by_max_processes() {
    let marker = unique("cap");
    let gw = Gateway::start(&config("", &[stdio_target(&marker, &[], "    max_processes: 1\n")])).await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    assert_eq!(a.call_text("echo", json!({ "message": "a" })).await, "a");
    let e = b
        .error("tools/call", json!({ "name": "echo", "arguments": { "message": "b" } }))
        .await;
    assert_eq!(e["code"], -32001, "{e}");
    assert!(e["message"].as_str().unwrap().contains("max_processes"), "{e}");
    wait_processes(&["--name", &marker], 2).await;
    assert_eq!(a.delete().await, StatusCode::OK);
    wait_processes(&["--name", &marker], 1).await;
    assert_eq!(b.call_text("echo", json!({ "message": "b" })).await, "b");
}
