//! Server→client requests (sampling, elicitation, roots) relayed to the client of the
//! originating session, and the client's answer relayed back to the upstream.

use serde_json::{Value, json};

use crate::common::*;

/// Calls `tool`, answers the one server→client request `method` it triggers with `answer`,
/// and returns (the relayed request, the tool's response).
async fn round_trip(c: &Client, tool: &str, args: Value, method: &str, answer: Value) -> (Value, Value) {
    let (id, reply) = c.start("tools/call", json!({ "name": tool, "arguments": args })).await;
    let mut stream = reply.stream();
    let req = stream
        .expect(&format!("a {method} request"), |m| is_request(m, method))
        .await;
    assert_eq!(c.respond(&req["id"], answer).await, reqwest::StatusCode::ACCEPTED);
    let resp = stream.response(&id).await;
    (req, resp)
}

fn sampling_answer(text: &str) -> Value {
    json!({ "role": "assistant", "content": { "type": "text", "text": text }, "model": "test-model", "stopReason": "endTurn" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_elicitation_and_roots_round_trip_through_every_upstream_transport() {
    let http = named_fixture("h").await;
    let sse = named_fixture("l").await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("h", &http.mcp_url(), ""),
            sse_target("l", &sse.sse_url(), ""),
            stdio_target("s", &[], ""),
        ],
    ))
    .await;
    let c = gw.connect().await;
    for p in ["h", "l", "s"] {
        let (req, resp) = round_trip(
            &c,
            &format!("{p}_sample"),
            json!({ "prompt": format!("question for {p}"), "max_tokens": 7 }),
            "sampling/createMessage",
            sampling_answer(&format!("answer from {p}'s client")),
        )
        .await;
        assert_eq!(
            req["params"]["messages"][0]["content"]["text"],
            format!("question for {p}")
        );
        assert_eq!(req["params"]["maxTokens"], 7);
        assert_eq!(
            resp["result"]["content"][0]["text"],
            format!("answer from {p}'s client"),
            "{p}: {resp}"
        );

        let (req, resp) = round_trip(
            &c,
            &format!("{p}_elicit"),
            json!({ "question": "Your name?" }),
            "elicitation/create",
            json!({ "action": "accept", "content": { "answer": "Ada" } }),
        )
        .await;
        assert_eq!(req["params"]["message"], "Your name?");
        assert!(
            req["params"]["requestedSchema"]["properties"]["answer"].is_object(),
            "{req}"
        );
        assert_eq!(
            resp["result"]["structuredContent"],
            json!({ "action": "accept", "content": { "answer": "Ada" } }),
            "{p}: {resp}"
        );

        let roots = json!([{ "uri": "file:///work/project", "name": "project" }, { "uri": "file:///tmp" }]);
        let (_, resp) = round_trip(
            &c,
            &format!("{p}_list_roots"),
            json!({}),
            "roots/list",
            json!({ "roots": roots }),
        )
        .await;
        assert_eq!(resp["result"]["structuredContent"]["roots"], roots, "{p}: {resp}");
    }
    assert_eq!(
        http.stats().snapshot().responses,
        3,
        "three answers reached the HTTP upstream"
    );
    assert_eq!(
        sse.stats().snapshot().responses,
        3,
        "three answers reached the SSE upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_answer_reaches_the_upstream() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config("", &[http_target("h", &fx.mcp_url(), "")])).await;
    let c = gw.connect().await;
    let (id, reply) = c
        .start(
            "tools/call",
            json!({ "name": "sample", "arguments": { "prompt": "no" } }),
        )
        .await;
    let mut stream = reply.stream();
    let req = stream
        .expect("a sampling request", |m| is_request(m, "sampling/createMessage"))
        .await;
    let body =
        json!({ "jsonrpc": "2.0", "id": req["id"], "error": { "code": -1, "message": "User rejected sampling" } });
    let status = c
        .post_raw(c.headers(), serde_json::to_vec(&body).unwrap())
        .await
        .status();
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    let resp = stream.response(&id).await;
    assert_eq!(resp["result"]["isError"], true, "{resp}");
    assert!(
        resp["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("User rejected sampling"),
        "{resp}"
    );
}

/// Two sessions sample at the same time; each must see only its own request and get only
/// its own answer.
async fn two_sessions_concurrently(gw: &Gateway, tool: &str) {
    let a = gw.connect().await;
    let b = gw.connect().await;
    // Sent together: both calls are in flight upstream before either asks its client.
    let ((ida, ra), (idb, rb)) = tokio::join!(
        a.start(
            "tools/call",
            json!({ "name": tool, "arguments": { "prompt": "from A" } })
        ),
        b.start(
            "tools/call",
            json!({ "name": tool, "arguments": { "prompt": "from B" } })
        ),
    );
    let (mut sa, mut sb) = (ra.stream(), rb.stream());
    // Both requests are outstanding before either is answered.
    let req_a = sa
        .expect("A's sampling request", |m| is_request(m, "sampling/createMessage"))
        .await;
    let req_b = sb
        .expect("B's sampling request", |m| is_request(m, "sampling/createMessage"))
        .await;
    assert_eq!(
        req_a["params"]["messages"][0]["content"]["text"], "from A",
        "A got {req_a}"
    );
    assert_eq!(
        req_b["params"]["messages"][0]["content"]["text"], "from B",
        "B got {req_b}"
    );
    // Answer B first.
    assert_eq!(
        b.respond(&req_b["id"], sampling_answer("for B")).await,
        reqwest::StatusCode::ACCEPTED
    );
    assert_eq!(
        a.respond(&req_a["id"], sampling_answer("for A")).await,
        reqwest::StatusCode::ACCEPTED
    );
    let resp_a = sa.response(&ida).await;
    let resp_b = sb.response(&idb).await;
    assert_eq!(resp_a["result"]["content"][0]["text"], "for A", "{resp_a}");
    assert_eq!(resp_b["result"]["content"][0]["text"], "for B", "{resp_b}");
    // Neither stream carried the other's request.
    for (s, other) in [(&mut sa, "from B"), (&mut sb, "from A")] {
        let rest = s.drain().await;
        assert!(
            !rest
                .iter()
                .any(|m| m["params"]["messages"][0]["content"]["text"] == other),
            "{rest:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_each_get_only_their_own_server_requests() {
    let fx = named_fixture("h").await;
    let gw = Gateway::start(&config(
        "",
        &[http_target("h", &fx.mcp_url(), ""), stdio_target("p", &[], "")],
    ))
    .await;
    two_sessions_concurrently(&gw, "h_sample").await;
    assert_eq!(fx.stats().snapshot().responses, 2);
    two_sessions_concurrently(&gw, "p_sample").await;
}

/// With one upstream session for every client, a server→client request carries nothing that
/// names the call it belongs to (stdio has no per-request stream), so the gateway relays it to
/// the client whose call is most recent: two concurrent callers can get each other's request.
/// `per_client` (the default) does not have this problem; see the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "design limit of `session: shared`: server->client requests of concurrent calls on one \
            shared stdio session cannot be told apart and go to the most recent caller"]
async fn concurrent_sessions_on_a_shared_stdio_upstream_each_get_only_their_own_server_requests() {
    let gw = Gateway::start(&config("", &[stdio_target("s", &[], SHARED)])).await;
    two_sessions_concurrently(&gw, "sample").await;
}
