//! 2026-07-28 ("stateless") upstreams, written from the 2026-07-28 specification: each
//! target's generation is discovered (`server/discover`, falling back to `initialize`) and
//! spoken natively — per-request `_meta` with the calling client's own capabilities, the
//! `Mcp-Method`/`Mcp-Name` headers, no session — and bridged for session-based clients:
//! `input_required` results become server→client requests and the call is retried with
//! `inputResponses`; list changes and resource updates arrive over the gateway's
//! `subscriptions/listen` stream; log levels travel per request; closing the response stream
//! cancels. Stateless clients get the upstream's own `input_required` and retry through.

use mcpgate_example_server::{Era, Options};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;
use crate::modern::Modern;

fn modern_opts(name: &str) -> Options {
    Options {
        name: name.into(),
        era: Era::Modern,
        echo_meta: true,
        ..Default::default()
    }
}

/// A gateway with a natively modern HTTP target `m`, a modern stdio target `ms`, and a
/// session-based HTTP target `s`.
async fn mixed() -> (
    Gateway,
    mcpgate_example_server::HttpFixture,
    mcpgate_example_server::HttpFixture,
) {
    let m = fixture(modern_opts("m")).await;
    let s = named_fixture("s").await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("m", &m.mcp_url(), ""),
            stdio_target("ms", &["--era", "modern", "--echo-meta"], ""),
            http_target("s", &s.mcp_url(), ""),
        ],
    ))
    .await;
    (gw, m, s)
}

fn generation(gw: &Gateway, name: &str) -> Option<&'static str> {
    gw.core
        .target_status()
        .into_iter()
        .find(|t| t.name == name)
        .and_then(|t| t.generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_targets_generation_is_discovered_and_spoken() {
    let (gw, m, s) = mixed().await;
    assert_eq!(generation(&gw, "m"), Some("stateless"));
    assert_eq!(generation(&gw, "ms"), Some("stateless"));
    assert_eq!(generation(&gw, "s"), Some("session"));
    let status = gw.core.target_status();
    let pv = |n: &str| status.iter().find(|t| t.name == n).unwrap().protocol_version.clone();
    assert_eq!(pv("m").as_deref(), Some("2026-07-28"));
    assert_eq!(pv("s").as_deref(), Some("2025-11-25"));

    let c = gw.connect().await;
    let names = c.tool_names().await;
    for n in ["m_echo", "ms_echo", "s_echo"] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    assert_eq!(c.call_text("m_echo", json!({ "message": "hi m" })).await, "hi m");
    assert_eq!(c.call_text("ms_echo", json!({ "message": "hi ms" })).await, "hi ms");
    assert_eq!(c.call_text("s_echo", json!({ "message": "hi s" })).await, "hi s");

    // The modern upstream never saw initialize or a session; every POST named its method in
    // the headers, and tools/call named the tool.
    assert_eq!(
        m.stats().snapshot().sessions_opened,
        0,
        "no session on a modern upstream"
    );
    assert_eq!(m.stats().method("initialize"), 0);
    assert!(s.stats().method("initialize") >= 1);
    let posts = m.server().request_headers();
    assert!(!posts.is_empty());
    let get = |h: &Vec<(String, String)>, k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for h in &posts {
        assert_eq!(get(h, "mcp-protocol-version").as_deref(), Some("2026-07-28"), "{h:?}");
        assert!(get(h, "mcp-method").is_some(), "{h:?}");
        assert!(get(h, "mcp-session-id").is_none(), "{h:?}");
    }
    assert!(
        posts
            .iter()
            .any(|h| get(h, "mcp-method").as_deref() == Some("tools/call")
                && get(h, "mcp-name").as_deref() == Some("echo")),
        "{posts:?}"
    );
    // `ping` to the gateway still works for the session-based client.
    assert_eq!(c.result("ping", json!({})).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_sees_each_clients_own_capabilities_and_info() {
    let (gw, _m, _s) = mixed().await;
    let mut c = gw.client();
    c.initialize(LATEST, json!({ "elicitation": {} })).await;
    for t in ["m", "ms"] {
        let r = c.call(&format!("{t}_echo_meta"), json!({})).await;
        let meta = &r["structuredContent"]["meta"];
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28",
            "{t}: {meta}"
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientCapabilities"],
            json!({ "elicitation": {} }),
            "{t}: the client's own capabilities, not the gateway's: {meta}"
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientInfo"]["name"], "mcpgate-integration-tests",
            "{t}: {meta}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_required_becomes_server_requests_for_a_session_based_client() {
    let (gw, m, _s) = mixed().await;
    let c = gw.connect().await;
    for t in ["m", "ms"] {
        // Two rounds: elicitation, then a confirmation, each asked as a server→client request
        // on the call's stream and answered by the client.
        let (id, reply) = c
            .start(
                "tools/call",
                json!({ "name": format!("{t}_elicit"), "arguments": { "question": "Name?", "rounds": 2 } }),
            )
            .await;
        let mut stream = reply.stream();
        let first = stream
            .expect("elicitation/create", |m| is_request(m, "elicitation/create"))
            .await;
        assert_eq!(first["params"]["message"], "Name?", "{first}");
        assert_eq!(
            c.respond(
                &first["id"],
                json!({ "action": "accept", "content": { "answer": "Ada" } })
            )
            .await,
            StatusCode::ACCEPTED
        );
        let second = stream
            .expect("the confirmation", |m| is_request(m, "elicitation/create"))
            .await;
        assert_ne!(first["id"], second["id"]);
        c.respond(
            &second["id"],
            json!({ "action": "accept", "content": { "answer": "yes" } }),
        )
        .await;
        let resp = stream.response(&id).await;
        let out = &resp["result"]["structuredContent"];
        assert_eq!(out["action"], "accept", "{t}: {resp}");
        assert_eq!(out["content"]["answer"], "Ada", "{t}: {resp}");
        assert_eq!(out["confirm"]["content"]["answer"], "yes", "{t}: {resp}");

        // Sampling and roots the same way.
        let (id, reply) = c
            .start(
                "tools/call",
                json!({ "name": format!("{t}_sample"), "arguments": { "prompt": "2+2?" } }),
            )
            .await;
        let mut stream = reply.stream();
        let req = stream
            .expect("sampling/createMessage", |m| is_request(m, "sampling/createMessage"))
            .await;
        c.respond(
            &req["id"],
            json!({ "role": "assistant", "content": { "type": "text", "text": "four" }, "model": "m", "stopReason": "endTurn" }),
        )
        .await;
        let resp = stream.response(&id).await;
        assert_eq!(resp["result"]["content"][0]["text"], "four", "{t}: {resp}");

        let (id, reply) = c
            .start(
                "tools/call",
                json!({ "name": format!("{t}_list_roots"), "arguments": {} }),
            )
            .await;
        let mut stream = reply.stream();
        let req = stream.expect("roots/list", |m| is_request(m, "roots/list")).await;
        c.respond(&req["id"], json!({ "roots": [{ "uri": "file:///work" }] }))
            .await;
        let resp = stream.response(&id).await;
        assert_eq!(
            resp["result"]["structuredContent"]["roots"][0]["uri"], "file:///work",
            "{t}: {resp}"
        );
    }
    // Each round was a separate upstream request (the retry carried inputResponses).
    assert!(m.stats().tool_calls() >= 4, "{:?}", m.stats().snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_capability_gets_missing_required_client_capability() {
    let (gw, _m, _s) = mixed().await;
    let mut c = gw.client();
    c.initialize(LATEST, json!({})).await;
    let e = c
        .error(
            "tools/call",
            json!({ "name": "m_elicit", "arguments": { "question": "Name?" } }),
        )
        .await;
    assert_eq!(e["code"], -32021, "{e}");
    assert!(e["data"]["requiredCapabilities"]["elicitation"].is_object(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_client_gets_the_upstreams_input_required_and_retries_through() {
    let (gw, _m, _s) = mixed().await;
    let client = Modern::new(&gw, all_client_capabilities());
    for t in ["m", "ms"] {
        let params = json!({ "name": format!("{t}_elicit"), "arguments": { "question": "Name?" } });
        let first = client.call("tools/call", params.clone()).await;
        let r = first.result().clone();
        assert_eq!(r["resultType"], "input_required", "{t}: {r}");
        // The upstream's own key and state, passed through unchanged.
        assert_eq!(r["inputRequests"]["elicit"]["method"], "elicitation/create", "{t}: {r}");
        let state = r["requestState"]
            .as_str()
            .expect("the upstream's requestState")
            .to_owned();

        let mut forged = params.clone();
        forged["requestState"] = json!("not-the-upstreams-state");
        forged["inputResponses"] = json!({ "elicit": { "action": "accept", "content": { "answer": "Ada" } } });
        let refused = client.call("tools/call", forged).await;
        assert_eq!(refused.error_code(), -32602, "{t}: the upstream refuses a forged state");

        let mut retry = params.clone();
        retry["requestState"] = json!(state);
        retry["inputResponses"] = json!({ "elicit": { "action": "accept", "content": { "answer": "Ada" } } });
        let done = client.call("tools/call", retry).await;
        let r = done.result();
        assert_eq!(r["resultType"], "complete", "{t}: {r}");
        assert_eq!(r["structuredContent"]["content"]["answer"], "Ada", "{t}: {r}");
    }
    // Missing capability: the upstream's -32021 reaches the client with HTTP 400.
    let bare = Modern::new(&gw, json!({}));
    let a = bare
        .call(
            "tools/call",
            json!({ "name": "m_elicit", "arguments": { "question": "Name?" } }),
        )
        .await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::BAD_REQUEST, -32021),
        "{}",
        a.response()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changes_and_resource_updates_arrive_over_the_listen_stream() {
    let (gw, m, _s) = mixed().await;
    let c = gw.connect().await;
    let mut events = c.listen().await;
    // Let the gateway's listen stream to the upstream be acknowledged.
    eventually("the gateway to listen to m", || m.server().subscription_count() >= 1).await;

    let added = c.call_text("m_add_tool", json!({ "name": "fresh" })).await;
    assert!(!added.is_empty(), "add_tool answered: {added}");
    events
        .expect("tools/list_changed", |v| {
            is_notification(v, "notifications/tools/list_changed")
        })
        .await;
    eventually_async_names(&c, "m_fresh").await;

    // resources/subscribe on a modern upstream: the gateway's listen stream now carries the
    // URI, and an update reaches the subscribed client.
    let uri = mcpgate_example_server::COUNTER_URI;
    assert_eq!(c.result("resources/subscribe", json!({ "uri": uri })).await, json!({}));
    c.call("m_touch_resource", json!({ "uri": uri })).await;
    let upd = events
        .expect("resources/updated", |v| {
            is_notification(v, "notifications/resources/updated")
        })
        .await;
    assert_eq!(upd["params"]["uri"], uri, "{upd}");
}

async fn eventually_async_names(c: &Client, name: &str) {
    for _ in 0..200 {
        if c.tool_names().await.iter().any(|n| n == name) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{name} never appeared in tools/list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_levels_travel_per_request() {
    let (gw, _m, _s) = mixed().await;
    let quiet = gw.connect().await;
    let text = quiet
        .call_text("m_log", json!({ "level": "warning", "message": "unheard" }))
        .await;
    assert!(
        text.contains("no io.modelcontextprotocol/logLevel"),
        "no level set, none sent: {text}"
    );

    let loud = gw.connect().await;
    assert_eq!(
        loud.result("logging/setLevel", json!({ "level": "info" })).await,
        json!({})
    );
    let (id, reply) = loud
        .start(
            "tools/call",
            json!({ "name": "m_log", "arguments": { "level": "warning", "message": "heard" } }),
        )
        .await;
    let msgs = reply
        .stream()
        .collect_until("the response", |v| is_response_to(v, &id))
        .await;
    assert!(
        msgs.iter()
            .any(|v| is_notification(v, "notifications/message") && v["params"]["data"].to_string().contains("heard")),
        "{msgs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_closes_the_upstream_response_stream() {
    let (gw, m, _s) = mixed().await;
    let c = gw.connect().await;
    let (id, reply) = c
        .start(
            "tools/call",
            json!({ "name": "m_long_operation", "arguments": { "delay_ms": 1000, "steps": 60 }, "_meta": { "progressToken": "p" } }),
        )
        .await;
    let mut stream = reply.stream();
    stream
        .expect("progress", |v| is_notification(v, "notifications/progress"))
        .await;
    c.notify(
        "notifications/cancelled",
        Some(json!({ "requestId": id, "reason": "user gave up" })),
    )
    .await;
    eventually("the upstream to see the cancellation", || {
        m.stats().snapshot().cancellations >= 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_configured_stateless_refuses_a_session_based_server() {
    let s = named_fixture("s").await;
    let gw = Gateway::start_unsettled(&config(
        "",
        &[http_target(
            "s",
            &s.mcp_url(),
            "    generation: stateless\n    connect_timeout: 2s\n",
        )],
    ))
    .await;
    gw.wait_state("s", "down").await;
    let status = gw.core.target_status();
    let err = status[0].error.clone().unwrap_or_default();
    assert!(err.contains("session-based"), "{err}");

    // And `generation: session` skips the probe of a modern-capable dual server.
    let d = fixture(Options {
        name: "d".into(),
        era: Era::Dual,
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("d", &d.mcp_url(), "    generation: session\n")],
    ))
    .await;
    assert_eq!(generation(&gw, "d"), Some("session"));
    assert_eq!(d.stats().method("server/discover"), 0);
    let gw2 = Gateway::start(&config("", &[http_target("d", &d.mcp_url(), "")])).await;
    assert_eq!(
        generation(&gw2, "d"),
        Some("stateless"),
        "auto picks 2026-07-28 on a dual server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_arguments_are_mirrored_into_mcp_param_headers_upstream() {
    // The fixture, like any 2026-07-28 server, rejects a call whose annotated argument is in
    // the body without its Mcp-Param-* header (-32020), so these calls pass only if the
    // gateway mirrors them as a client must.
    let m = fixture(Options {
        xheader_tools: true,
        ..modern_opts("m")
    })
    .await;
    // One target: its tools are not prefixed.
    let gw = Gateway::start(&config("", &[http_target("m", &m.mcp_url(), "")])).await;
    let c = gw.connect().await;
    let args =
        json!({ "region": "us-west1", "tenant": { "id": 42 }, "verbose": true, "note": "Hello, 世界", "query": "q" });
    let r = c.call("xh_route", args.clone()).await;
    assert_eq!(r["structuredContent"]["arguments"], args, "{r}");
    let posts = m.server().request_headers();
    let call = posts
        .iter()
        .rev()
        .find(|h| h.iter().any(|(k, v)| k == "mcp-name" && v == "xh_route"))
        .expect("the call's headers");
    let get = |k: &str| call.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("mcp-param-region").as_deref(), Some("us-west1"), "{call:?}");
    assert_eq!(get("mcp-param-tenant-id").as_deref(), Some("42"), "{call:?}");
    assert_eq!(get("mcp-param-verbose").as_deref(), Some("true"), "{call:?}");
    assert_eq!(
        get("mcp-param-note").as_deref(),
        Some("=?base64?SGVsbG8sIOS4lueVjA==?="),
        "{call:?}"
    );
    // A null value sends no header (and the server expects none).
    let r = c.call("xh_route", json!({ "region": "eu", "note": null })).await;
    assert_eq!(r["structuredContent"]["arguments"]["region"], "eu", "{r}");
    // Tools with invalid annotations are not offered at all.
    let names = c.tool_names().await;
    assert!(names.iter().any(|n| n == "xh_route"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("xh_bad")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_cache_hints_follow_the_stateless_upstreams_own() {
    // A 2026-07-28 upstream that says its lists are fresh for 5 s and private, beside a
    // session-based one (no hints: the gateway's 60 s): the merged list is never fresher
    // than its shortest contributor, and private because one contributor is.
    let m = fixture(Options {
        ttl_ms: 5_000,
        cache_private: true,
        ..modern_opts("m")
    })
    .await;
    let s = named_fixture("s").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("m", &m.mcp_url(), ""), http_target("s", &s.mcp_url(), "")],
    ))
    .await;
    let client = Modern::new(&gw, json!({}));
    let list = client.call("tools/list", json!({})).await;
    let r = list.result();
    assert_eq!(r["ttlMs"], 5_000, "{r}");
    assert_eq!(r["cacheScope"], "private", "{r}");
    let d = client.call("server/discover", json!({})).await;
    assert_eq!(d.result()["ttlMs"], 5_000, "{}", d.response());

    // Session-based contributors only: the gateway's own default, public.
    let gw2 = Gateway::start(&config("", &[http_target("s", &s.mcp_url(), "")])).await;
    let r = Modern::new(&gw2, json!({})).call("tools/list", json!({})).await;
    assert_eq!(r.result()["ttlMs"], 60_000, "{}", r.response());
    assert_eq!(r.result()["cacheScope"], "public", "{}", r.response());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_members_of_a_stateless_request_reach_a_stateless_upstream() {
    let (gw, _m, _s) = mixed().await;
    let client = Modern::new(&gw, all_client_capabilities());
    // clientInfo is optional in 2026-07-28: a request without it still reaches the upstream
    // (with a valid clientInfo, not an empty object, which servers refuse).
    let params = json!({
        "name": "m_echo_meta",
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    });
    let body = json!({ "jsonrpc": "2.0", "id": 901, "method": "tools/call", "params": params });
    let a = client.send(client.headers("tools/call", &params), &body).await;
    let meta = &a.result()["structuredContent"]["meta"];
    assert!(meta["io.modelcontextprotocol/clientInfo"]["name"].is_string(), "{meta}");

    // requestState is optional too: a retry with inputResponses and no state hands the
    // answers to the upstream. This fixture insists on its state and says so, naming the
    // inputResponses it received: had the gateway dropped them, it would ask again
    // (`input_required`) instead.
    let retry = client
        .call(
            "tools/call",
            json!({
                "name": "m_elicit",
                "arguments": { "question": "Name?" },
                "inputResponses": { "elicit": { "action": "accept", "content": { "answer": "Ada" } } },
            }),
        )
        .await;
    assert_eq!(retry.error_code(), -32602, "{}", retry.response());
    assert!(
        retry.response()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("inputResponses"),
        "{}",
        retry.response()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_upstream_that_restarts_or_goes_away_is_noticed_without_calls() {
    let fx = RestartableFixture::start(modern_opts("m")).await;
    let gw = Gateway::start(&config("", &[http_target("m", &fx.mcp_url(), "")])).await;
    let c = gw.connect().await;
    let mut events = c.listen().await;
    assert_eq!(c.call_text("echo", json!({ "message": "before" })).await, "before");
    eventually("the gateway to listen to m", || fx.server.subscription_count() >= 1).await;

    // A restart breaks the gateway's listen stream. There is no session to lose; what changed
    // meanwhile is unknown, so clients are told the lists may have changed, and calls go on.
    let fx = fx.restart().await;
    events
        .expect("tools/list_changed after the break", |v| {
            is_notification(v, "notifications/tools/list_changed")
        })
        .await;
    eventually("the gateway to listen again", || fx.server.subscription_count() >= 1).await;
    assert_eq!(c.call_text("echo", json!({ "message": "after" })).await, "after");
    assert_eq!(generation(&gw, "m"), Some("stateless"));

    // Gone for good: the listen stream cannot be reopened, so the target is marked down
    // without any client call (and its tools leave the lists).
    drop(fx);
    gw.wait_state("m", "down").await;
}
