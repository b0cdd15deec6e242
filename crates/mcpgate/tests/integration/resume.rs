//! SSE event ids and `Last-Event-ID` resumption (2025-11-25 transport, "Resumability and
//! Redelivery"): a broken stream is resumed with GET + `Last-Event-ID`, replaying only what
//! followed on that stream.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::*;

fn progress_values(msgs: &[Value]) -> Vec<u64> {
    msgs.iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .map(|m| m["params"]["progress"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_stream_dropped_mid_call_is_resumed_with_last_event_id() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let c = gw.connect().await;
    let (id, reply) = c
        .start(
            "tools/call",
            json!({ "name": "long_operation", "arguments": { "steps": 8, "delay_ms": 25 },
                    "_meta": { "progressToken": "resume-me" } }),
        )
        .await;
    let mut stream = reply.stream();
    // Read up to the first progress notification, then drop the connection.
    let first = stream
        .expect("the first progress", |m| is_notification(m, "notifications/progress"))
        .await;
    assert_eq!(first["params"]["progress"], 1);
    let last = stream.last_id.clone().expect("events on a resumable stream carry ids");
    let seen_ids: HashSet<String> = stream.ids.iter().cloned().collect();
    drop(stream);

    // Resume: the rest of the progress, then the response, nothing twice.
    let mut resumed = c.resume(&last).await;
    let rest = resumed
        .collect_until("the response on the resumed stream", |m| is_response_to(m, &id))
        .await;
    assert_eq!(progress_values(&rest), (2..=8).collect::<Vec<u64>>(), "{rest:?}");
    let resp = rest.last().unwrap();
    assert!(
        resp["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("finished"),
        "{resp}"
    );
    for p in rest.iter().filter(|m| is_notification(m, "notifications/progress")) {
        assert_eq!(p["params"]["progressToken"], "resume-me");
    }
    for i in &resumed.ids {
        assert!(
            !seen_ids.contains(i),
            "event {i} was replayed although it had been received"
        );
    }
    assert!(resumed.ended().await, "the resumed stream ends after the response");
    // A dropped connection is not a cancellation.
    assert_eq!(fx.stats().snapshot().cancellations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_get_stream_is_resumed_with_what_was_missed() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let c = gw.connect().await;
    // An upstream session of its own, which the server's logs are sent on.
    assert_eq!(c.call_text("echo", json!({ "message": "open" })).await, "open");
    c.result("logging/setLevel", json!({ "level": "info" })).await;
    let mut general = c.listen().await;
    fx.server().log(mcpgate_example_server::LogLevel::Info, "one");
    general.expect("log one", |m| m["params"]["data"] == "one").await;
    let last = general.last_id.clone().expect("GET stream events carry ids");
    drop(general);

    // Sent while no GET stream is connected.
    fx.server().log(mcpgate_example_server::LogLevel::Info, "two");
    fx.server().log(mcpgate_example_server::LogLevel::Info, "three");
    let mut resumed = c.resume(&last).await;
    resumed.expect("log two", |m| m["params"]["data"] == "two").await;
    resumed.expect("log three", |m| m["params"]["data"] == "three").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_ids_are_unique_across_the_streams_of_a_session() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let c = gw.connect().await;
    let mut general = c.listen().await;
    let mut ids: Vec<String> = Vec::new();
    for token in [1, 2, 3] {
        let (id, reply) = c
            .start(
                "tools/call",
                json!({ "name": "long_operation", "arguments": { "steps": 2, "delay_ms": 1 },
                        "_meta": { "progressToken": token } }),
            )
            .await;
        let mut s = reply.stream();
        s.response(&id).await;
        assert!(!s.ids.is_empty(), "SSE events carry ids");
        ids.extend(s.ids.iter().cloned());
    }
    fx.server().notify_tools_list_changed();
    general
        .expect("list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    ids.extend(general.ids.iter().cloned());
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "event ids repeat across streams: {ids:?}");
}
