//! The 2024-11-05 HTTP+SSE transport, in process.

use std::time::Duration;

use http::StatusCode;
use mcpgate_example_server::{Options, spawn_http};
use serde_json::json;

use crate::common::{HttpClient, text};

#[tokio::test]
async fn endpoint_event_then_messages_on_the_stream() {
    let f = spawn_http(Options::default()).await.unwrap();
    let c = HttpClient::new(&f.sse_url());
    let mut s = c.get_stream(&f.sse_url()).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.headers["content-type"], "text/event-stream");
    let (event, endpoint) = s.next_event().await.unwrap();
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/message?sessionId="), "{endpoint}");
    assert_eq!(f.server().session_count(), 1);

    let mut post = HttpClient::new(&format!("http://{}{endpoint}", f.addr()));
    let init = post.request_value(
        "initialize",
        json!({"protocolVersion":"2024-11-05","capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"0"}}),
    );
    let r = post.post(&init).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let (event, data) = s.next_event().await.unwrap();
    assert_eq!(event, "message");
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["id"], init["id"]);
    assert_eq!(v["result"]["protocolVersion"], "2024-11-05");
    post.notify("notifications/initialized", json!({})).await;

    let call = post.request_value("tools/call", json!({"name":"echo","arguments":{"message":"old"}}));
    assert_eq!(post.post(&call).await.status, StatusCode::ACCEPTED);
    let v = s.next_json().await.unwrap();
    assert_eq!(text(&v), "old");

    // A sampling round trip: the request arrives on the stream, the answer is POSTed.
    let call = post.request_value("tools/call", json!({"name":"sample","arguments":{"prompt":"hi"}}));
    post.post(&call).await;
    let req = s.next_json().await.unwrap();
    assert_eq!(req["method"], "sampling/createMessage");
    let r = post
        .post(&json!({"jsonrpc":"2.0","id":req["id"],"result":{"role":"assistant","content":{"type":"text","text":"hello"},"model":"m"}}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let v = s.next_json().await.unwrap();
    assert_eq!(text(&v), "hello");

    // Unrelated notifications share the stream.
    f.server().notify_tools_list_changed();
    assert_eq!(
        s.next_json().await.unwrap()["method"],
        "notifications/tools/list_changed"
    );

    // Closing the stream ends the session.
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.server().session_count(), 0);
    assert_eq!(post.post(&call).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn message_endpoint_errors() {
    let f = spawn_http(Options::default()).await.unwrap();
    let c = HttpClient::new(&format!("http://{}/message", f.addr()));
    assert_eq!(c.post(&json!({})).await.status, StatusCode::BAD_REQUEST);
    let c = HttpClient::new(&format!("http://{}/message?sessionId=nope", f.addr()));
    assert_eq!(c.post(&json!({})).await.status, StatusCode::NOT_FOUND);

    let s = HttpClient::new(&f.sse_url());
    let mut stream = s.get_stream(&f.sse_url()).await;
    let (_, endpoint) = stream.next_event().await.unwrap();
    let c = HttpClient::new(&format!("http://{}{endpoint}", f.addr()));
    let r = c.post_raw("not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], -32700);
}
