//! Progress notifications relayed under the client's own token, and cancellation.

use serde_json::{Value, json};

use crate::common::*;

/// Calls `long_operation` with a progress token and returns (progress notifications, response).
async fn long_operation(c: &Client, tool: &str, token: Value, steps: u64, delay_ms: u64) -> (Vec<Value>, Value) {
    let (id, reply) = c
        .start(
            "tools/call",
            json!({ "name": tool, "arguments": { "steps": steps, "delay_ms": delay_ms },
                    "_meta": { "progressToken": token } }),
        )
        .await;
    let mut stream = reply.stream();
    let msgs = stream
        .collect_until("the long operation's response", |m| is_response_to(m, &id))
        .await;
    let (resp, rest) = msgs.split_last().expect("at least the response");
    let progress: Vec<Value> = rest
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .cloned()
        .collect();
    (progress, resp.clone())
}

fn assert_progress(progress: &[Value], token: &Value, steps: u64) {
    assert_eq!(progress.len() as u64, steps, "one notification per step: {progress:?}");
    for (i, p) in progress.iter().enumerate() {
        // The client's own token, with its JSON type (string stays string, number stays number).
        assert_eq!(&p["params"]["progressToken"], token, "{p}");
        assert_eq!(p["params"]["progress"], json!(i as u64 + 1), "in order: {progress:?}");
        assert_eq!(p["params"]["total"], json!(steps));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_arrives_on_the_post_stream_in_order_under_the_clients_token() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("s", &[], "")],
    ))
    .await;
    let c = gw.connect().await;
    for tool in ["h_long_operation", "s_long_operation"] {
        for token in [json!("tok-é-1"), json!(42), json!(0)] {
            let (progress, resp) = long_operation(&c, tool, token.clone(), 4, 5).await;
            assert!(
                resp["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .contains("finished"),
                "{resp}"
            );
            assert_progress(&progress, &token, 4);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_using_the_same_token_on_a_shared_upstream_get_only_their_own_progress() {
    let gw = Gateway::start(&config("", &[stdio_target("s", &[], SHARED)])).await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    let token = json!("same-token");
    let ((pa, ra), (pb, rb)) = tokio::join!(
        long_operation(&a, "long_operation", token.clone(), 3, 20),
        long_operation(&b, "long_operation", token.clone(), 5, 12),
    );
    assert!(ra.get("result").is_some() && rb.get("result").is_some());
    assert_progress(&pa, &token, 3);
    assert_progress(&pb, &token, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_reaches_the_upstream_and_the_session_keeps_working() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let c = gw.connect().await;
    let (id, reply) = c
        .start(
            "tools/call",
            json!({ "name": "long_operation", "arguments": { "steps": 500, "delay_ms": 20 },
                    "_meta": { "progressToken": "cancel-me" } }),
        )
        .await;
    let mut stream = reply.stream();
    stream
        .expect("the first progress", |m| is_notification(m, "notifications/progress"))
        .await;
    let status = c
        .notify(
            "notifications/cancelled",
            Some(json!({ "requestId": id, "reason": "the user changed their mind" })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    eventually("the upstream to see the cancellation", || {
        fx.stats().snapshot().cancellations == 1
    })
    .await;
    // The stream ends (well before the 10 s the operation would take), and no successful
    // result arrives for the cancelled request.
    let rest = stream.drain().await;
    assert!(
        !rest.iter().any(|m| is_response_to(m, &id) && m.get("result").is_some()),
        "{rest:?}"
    );

    // The session keeps working, and so does the tool.
    assert_eq!(
        c.call_text("echo", json!({ "message": "still here" })).await,
        "still here"
    );
    let (progress, resp) = long_operation(&c, "long_operation", json!(7), 2, 5).await;
    assert!(resp.get("result").is_some(), "{resp}");
    assert_progress(&progress, &json!(7), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_a_shared_stdio_upstream_leaves_other_requests_alone() {
    let gw = Gateway::start(&config("", &[stdio_target("s", &[], SHARED)])).await;
    let c = gw.connect().await;
    let (id, reply) = c
        .start(
            "tools/call",
            json!({ "name": "long_operation", "arguments": { "steps": 500, "delay_ms": 20 },
                    "_meta": { "progressToken": 1 } }),
        )
        .await;
    let mut stream = reply.stream();
    stream
        .expect("the first progress", |m| is_notification(m, "notifications/progress"))
        .await;
    // Another request on the same upstream runs meanwhile.
    let other = gw.connect().await;
    let (other_id, other_reply) = other
        .start(
            "tools/call",
            json!({ "name": "long_operation", "arguments": { "steps": 3, "delay_ms": 20 } }),
        )
        .await;
    c.notify("notifications/cancelled", Some(json!({ "requestId": id })))
        .await;
    let rest = stream.drain().await;
    assert!(!rest.iter().any(|m| is_response_to(m, &id) && m.get("result").is_some()));
    let done = other_reply.into_message(&other_id).await;
    assert!(
        done["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("3 step"),
        "{done}"
    );
    assert_eq!(c.call_text("echo", json!({ "message": "ok" })).await, "ok");
}
