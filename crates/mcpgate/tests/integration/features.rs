//! Server features through the gateway: tools/call, prompts/get, resources/read (listed and
//! template-matched URIs), resources/templates/list, completion/complete, logging.

use mcpgate_example_server::{COUNTER_URI, LogLevel, NOTES_TEMPLATE, README_URI};
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_call_returns_results_structured_content_and_tool_errors() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("s", &[], "")],
    ))
    .await;
    let c = gw.connect().await;
    for p in ["h", "s"] {
        let r = c.call(&format!("{p}_add"), json!({ "a": 2, "b": 3 })).await;
        assert_eq!(r["structuredContent"], json!({ "sum": 5 }), "{p}: {r}");
        assert_eq!(r["content"][0]["type"], "text");
        let md = c
            .call_text(
                &format!("{p}_convert_to_markdown"),
                json!({ "text": "Title\n\n- a\n- b" }),
            )
            .await;
        assert!(md.contains("- a") && md.contains("- b"), "{md}");
        // A failing tool is a result with isError, not a JSON-RPC error.
        let r = c.call(&format!("{p}_fail"), json!({ "message": "boom" })).await;
        assert_eq!(r["isError"], true, "{r}");
        assert_eq!(r["content"][0]["text"], "boom");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_get_routes_to_the_owner_with_arguments() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("s", &[], "")],
    ))
    .await;
    let c = gw.connect().await;
    for p in ["h", "s"] {
        let r = c
            .result(
                "prompts/get",
                json!({ "name": format!("{p}_summarize"), "arguments": { "text": "Lorem ipsum", "style": "bullet" } }),
            )
            .await;
        let text = r["messages"][0]["content"]["text"].as_str().expect("a text message");
        assert!(text.contains("bulleted") && text.contains("Lorem ipsum"), "{text}");
        assert_eq!(r["messages"][0]["role"], "user");
    }
    assert_eq!(fx.stats().method("prompts/get"), 1);
    let e = c.error("prompts/get", json!({ "name": "h_nope" })).await;
    assert_eq!(e["code"], -32602, "{e}");
    // The upstream's own invalid-params error (missing argument) comes back unchanged.
    let e = c
        .error("prompts/get", json!({ "name": "h_summarize", "arguments": {} }))
        .await;
    assert_eq!(e["code"], -32602, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_read_routes_listed_and_template_matched_uris() {
    let first = named_fixture("one").await;
    let second = named_fixture("two").await;
    // The counter tells the two servers apart: bump the first one's to 3.
    for _ in 0..3 {
        first.server().notify_resource_updated(COUNTER_URI);
    }
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("one", &first.mcp_url(), ""),
            http_target("two", &second.mcp_url(), ""),
        ],
    ))
    .await;
    let c = gw.connect().await;

    // Listed resources (both servers list the same URIs: the first target owns them).
    let r = c.result("resources/read", json!({ "uri": COUNTER_URI })).await;
    assert_eq!(r["contents"][0]["text"], "3", "{r}");
    assert_eq!(r["contents"][0]["uri"], COUNTER_URI);
    let r = c.result("resources/read", json!({ "uri": README_URI })).await;
    assert!(
        r["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("mcpgate example server")
    );
    let r = c.result("resources/read", json!({ "uri": "example://logo.png" })).await;
    assert!(
        r["contents"][0]["blob"].as_str().unwrap().starts_with("iVBORw0KGgo"),
        "binary contents"
    );

    // A URI that is not listed but matches a template.
    let r = c
        .result("resources/read", json!({ "uri": "example://notes/todo" }))
        .await;
    assert_eq!(r["contents"][0]["uri"], "example://notes/todo");
    assert!(
        r["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Put mcpgate in front")
    );
    assert_eq!(first.stats().method("resources/read"), 4);
    assert_eq!(second.stats().method("resources/read"), 0);

    // Template-matched but unknown to the server: the server's -32002 comes back.
    let e = c
        .error("resources/read", json!({ "uri": "example://notes/missing" }))
        .await;
    assert_eq!(e["code"], -32002, "{e}");
    // Matching nothing at all: -32002 from the gateway.
    let e = c.error("resources/read", json!({ "uri": "nothing://here" })).await;
    assert_eq!(e["code"], -32002, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_templates_are_listed_and_completions_route_by_prompt_and_template() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("s", &[], "")],
    ))
    .await;
    let c = gw.connect().await;
    let templates = c.list_all("resources/templates/list", "resourceTemplates").await;
    assert!(
        templates
            .iter()
            .any(|t| t["uriTemplate"] == NOTES_TEMPLATE && t["name"] == "note"),
        "{templates:?}"
    );

    // A prompt argument, by the prompt's exposed name, for each target.
    for p in ["h", "s"] {
        let r = c
            .result(
                "completion/complete",
                json!({ "ref": { "type": "ref/prompt", "name": format!("{p}_summarize") },
                        "argument": { "name": "style", "value": "b" } }),
            )
            .await;
        assert_eq!(r["completion"]["values"], json!(["brief", "bullet"]), "{p}: {r}");
    }
    assert_eq!(fx.stats().method("completion/complete"), 1);

    // A resource template argument.
    let r = c
        .result(
            "completion/complete",
            json!({ "ref": { "type": "ref/resource", "uri": NOTES_TEMPLATE },
                    "argument": { "name": "name", "value": "t" } }),
        )
        .await;
    assert_eq!(r["completion"]["values"], json!(["todo"]), "{r}");

    let e = c
        .error(
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "h_nope" }, "argument": { "name": "x", "value": "" } }),
        )
        .await;
    assert_eq!(e["code"], -32602, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_set_level_filters_and_log_messages_reach_only_their_session() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    let mut a_general = a.listen().await;
    let mut b_general = b.listen().await;

    assert_eq!(
        a.result("logging/setLevel", json!({ "level": "warning" })).await,
        json!({})
    );
    assert_eq!(
        b.result("logging/setLevel", json!({ "level": "debug" })).await,
        json!({})
    );
    let e = a.error("logging/setLevel", json!({ "level": "loud" })).await;
    assert_eq!(e["code"], -32602, "{e}");

    // Below A's level: the upstream does not send it (the level reached A's upstream session).
    let text = a
        .call_text("log", json!({ "level": "info", "message": "a-info" }))
        .await;
    assert!(text.starts_with("Not sent"), "{text}");

    // At A's level: delivered to A, related to A's request.
    let (id, reply) = a
        .start(
            "tools/call",
            json!({ "name": "log", "arguments": { "level": "error", "message": "a-error" } }),
        )
        .await;
    let msgs = collect_reply(reply, &id).await;
    let logs: Vec<_> = msgs
        .iter()
        .filter(|m| is_notification(m, "notifications/message"))
        .collect();
    assert_eq!(logs.len(), 1, "{msgs:?}");
    assert_eq!(logs[0]["params"]["data"], "a-error");
    assert_eq!(logs[0]["params"]["level"], "error");

    // B's debug message reaches B.
    let (id, reply) = b
        .start(
            "tools/call",
            json!({ "name": "log", "arguments": { "level": "debug", "message": "b-debug" } }),
        )
        .await;
    let msgs = collect_reply(reply, &id).await;
    assert!(
        msgs.iter()
            .any(|m| is_notification(m, "notifications/message") && m["params"]["data"] == "b-debug"),
        "{msgs:?}"
    );

    // A log outside any request reaches each session whose level lets it through.
    fx.server().log(LogLevel::Notice, "server-notice");
    let got = b_general
        .expect("the server's notice on B's stream", |m| {
            m["params"]["data"] == "server-notice"
        })
        .await;
    assert_eq!(got["params"]["level"], "notice");
    fx.server().log(LogLevel::Critical, "server-critical");
    // A (warning) gets the critical one, and nothing of B's or below its level before it.
    let seen = a_general
        .collect_until("the server's critical log on A's stream", |m| {
            m["params"]["data"] == "server-critical"
        })
        .await;
    for m in &seen {
        let data = m["params"]["data"].as_str().unwrap_or("");
        assert!(
            !["b-debug", "server-notice", "a-info"].contains(&data),
            "A's stream got {data:?}: {seen:?}"
        );
    }
}

/// Every message of a POST's reply (JSON: just the response).
pub async fn collect_reply(reply: Reply, id: &serde_json::Value) -> Vec<serde_json::Value> {
    match reply {
        Reply::Sse(mut s) => {
            let id = id.clone();
            s.collect_until("the response", move |m| is_response_to(m, &id)).await
        }
        other => vec![other.into_message(id).await],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_client_target_logs_only_to_sessions_it_has_an_upstream_session_for() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    // B asked for logs but never used the target: the server has no session of B's to log for.
    let b = gw.connect().await;
    let mut b_events = b.listen().await;
    b.result("logging/setLevel", json!({ "level": "debug" })).await;

    fx.server().log(LogLevel::Warning, "not for B");
    // The only upstream session is the gateway's own, which sends this right after the log.
    fx.server().notify_tools_list_changed();
    let seen = b_events
        .collect_until("the list_changed sentinel", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    assert!(
        !seen.iter().any(|m| is_notification(m, "notifications/message")),
        "B got a log of a session that is not its own: {seen:?}"
    );

    // A client with its own upstream session gets the server's logs on it.
    let a = gw.connect().await;
    let mut a_events = a.listen().await;
    a.result("logging/setLevel", json!({ "level": "info" })).await;
    assert_eq!(a.call_text("echo", json!({ "message": "open" })).await, "open");
    fx.server().log(LogLevel::Warning, "for A");
    a_events.expect("A's log", |m| m["params"]["data"] == "for A").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_of_any_type_come_back_unchanged_and_never_cross_sessions() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("s", &[], SHARED)],
    ))
    .await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    for id in [
        json!("same"),
        json!(0),
        json!(-7),
        json!(9007199254740993u64),
        json!(""),
    ] {
        for tool in ["s_long_operation", "h_long_operation"] {
            // Both sessions use the same id at the same time, on the same upstream (s).
            let (ra, rb) = tokio::join!(call_with_id(&a, &id, tool, 2), call_with_id(&b, &id, tool, 3));
            assert_eq!(ra["id"], id, "{ra}");
            assert_eq!(rb["id"], id, "{rb}");
            let ta = ra["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let tb = rb["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(ta.contains("2 step"), "A got {ra}");
            assert!(tb.contains("3 step"), "B got {rb}");
        }
    }
}

/// `long_operation` under a request id the test chooses.
async fn call_with_id(c: &Client, id: &serde_json::Value, tool: &str, steps: u64) -> serde_json::Value {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": { "name": tool, "arguments": { "steps": steps, "delay_ms": 5 } } });
    c.post(&body).await.into_message(id).await
}
