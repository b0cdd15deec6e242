//! Notifications from upstreams: `tools/list_changed` (and the list it announces), and
//! `resources/updated` delivered only to the sessions subscribed to the resource.

use mcpgate_example_server::{COUNTER_URI, README_URI};
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_changed_reaches_every_client_and_the_new_tool_is_listed() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("s", &[], "")],
    ))
    .await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    let mut a_events = a.listen().await;
    let mut b_events = b.listen().await;
    // Lists are cached now, and both clients have upstream sessions of their own.
    let before = a.tool_names().await;
    assert!(!before.contains(&"h_fresh".to_owned()));
    assert_eq!(b.call_text("h_echo", json!({ "message": "x" })).await, "x");

    // A tool appears on the HTTP upstream.
    assert!(fx.server().add_tool("fresh"));
    for s in [&mut a_events, &mut b_events] {
        s.expect("tools/list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    }
    let after = a.tool_names().await;
    assert!(after.contains(&"h_fresh".to_owned()), "{after:?}");
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(b.call_text("h_fresh", json!({ "message": "new" })).await, "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_added_through_a_shared_stdio_upstream_is_announced_to_every_client() {
    let gw = Gateway::start(&config("", &[stdio_target("s", &[], SHARED)])).await;
    let a = gw.connect().await;
    let b = gw.connect().await;
    let mut a_events = a.listen().await;
    let mut b_events = b.listen().await;
    assert!(!a.tool_names().await.contains(&"brand_new".to_owned()));

    let text = b.call_text("add_tool", json!({ "name": "brand_new" })).await;
    assert!(text.contains("brand_new"), "{text}");
    for s in [&mut a_events, &mut b_events] {
        s.expect("tools/list_changed", |m| {
            is_notification(m, "notifications/tools/list_changed")
        })
        .await;
    }
    assert!(a.tool_names().await.contains(&"brand_new".to_owned()));
    assert_eq!(a.call_text("brand_new", json!({ "message": "hi" })).await, "hi");
}

/// A subscribes to the counter, B to the readme; B touches both, and each session must hear
/// only about its own resource. The readme update, which comes after, is the sentinel that
/// proves a counter update did not arrive before it.
async fn subscriptions(gw: &Gateway) {
    let a = gw.connect().await;
    let b = gw.connect().await;
    let mut a_events = a.listen().await;
    let mut b_events = b.listen().await;
    let updated = |uri: &'static str| {
        move |m: &serde_json::Value| is_notification(m, "notifications/resources/updated") && m["params"]["uri"] == uri
    };

    assert_eq!(
        a.result("resources/subscribe", json!({ "uri": COUNTER_URI })).await,
        json!({})
    );
    assert_eq!(
        b.result("resources/subscribe", json!({ "uri": README_URI })).await,
        json!({})
    );
    let text = b.call_text("touch_resource", json!({ "uri": COUNTER_URI })).await;
    assert!(text.contains("Notified"), "{text}");
    b.call_text("touch_resource", json!({ "uri": README_URI })).await;

    let seen = a_events
        .collect_until("the counter update on A", updated(COUNTER_URI))
        .await;
    assert!(
        !seen.iter().any(updated(README_URI)),
        "A is not subscribed to the readme: {seen:?}"
    );
    let seen = b_events
        .collect_until("the readme update on B", updated(README_URI))
        .await;
    assert!(
        !seen.iter().any(updated(COUNTER_URI)),
        "B is not subscribed to the counter: {seen:?}"
    );
    // The subscriber can read the new value.
    let r = a.result("resources/read", json!({ "uri": COUNTER_URI })).await;
    assert!(r["contents"][0]["text"].as_str().unwrap().parse::<u64>().unwrap() >= 1);

    // After unsubscribing, A no longer hears about the counter (but does about the readme).
    assert_eq!(
        a.result("resources/unsubscribe", json!({ "uri": COUNTER_URI })).await,
        json!({})
    );
    assert_eq!(
        a.result("resources/subscribe", json!({ "uri": README_URI })).await,
        json!({})
    );
    b.call_text("touch_resource", json!({ "uri": COUNTER_URI })).await;
    b.call_text("touch_resource", json!({ "uri": README_URI })).await;
    let seen = a_events
        .collect_until("the readme update on A", updated(README_URI))
        .await;
    assert!(
        !seen.iter().any(updated(COUNTER_URI)),
        "A unsubscribed from the counter: {seen:?}"
    );
    // B still gets its own.
    b_events
        .expect("the second readme update on B", updated(README_URI))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_updated_reaches_only_subscribed_sessions_on_a_shared_stdio_upstream() {
    let gw = Gateway::start(&config("", &[stdio_target("s", &[], SHARED)])).await;
    subscriptions(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_updated_reaches_only_subscribed_sessions_on_a_per_client_http_upstream() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    subscriptions(&gw).await;
    // An update triggered outside any request reaches the subscriber too.
    let a = gw.connect().await;
    let mut events = a.listen().await;
    a.result("resources/subscribe", json!({ "uri": COUNTER_URI })).await;
    assert_eq!(
        fx.server().notify_resource_updated(COUNTER_URI),
        1,
        "one subscribed upstream session"
    );
    let n = events
        .expect("resources/updated", |m| {
            is_notification(m, "notifications/resources/updated")
        })
        .await;
    assert_eq!(n["params"]["uri"], COUNTER_URI);
}
