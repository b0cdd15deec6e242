//! Authentication and authorization through the whole gateway: 401 challenges and RFC 9728
//! metadata on every transport, per-identity list filtering, call decisions that look like
//! unknown names, bypass attempts (case and separator tricks, prefix confusion between
//! targets, resources by URI), session binding, and live policy reloads.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const ALICE: &str = "test-key-alice";
const BOB: &str = "test-key-bob";
const ALICE_HASH: &str = "ad77f83d5d5b9a3b738cfc75982ec0460450b94aa1bac0f16451a1142c89c4c8";
const BOB_HASH: &str = "9c854c32c3e1e4018e592ff35ce24355578613133dd3cf727cedd43fe7f89564";

const POLICIES: &str = r#"policies:
  - name: dev-tools
    allow:
      tools: ["ex:echo", "ex:add"]
      prompts: ["ex:greeting"]
      resources: ["ex:example://readme", "ex:example://notes/*"]
    when: { claims: { groups: { contains: dev } } }
  - name: no-big-sums
    deny: { tools: ["ex:add"] }
    when: { cel: 'args.a > 100' }
"#;

fn head(policies: &str, hide_denied: bool) -> String {
    format!(
        "auth:\n  hide_denied: {hide_denied}\n  api_keys:\n    - {{hash: {ALICE_HASH}, subject: alice, claims: {{groups: [dev]}}}}\n    - {{hash: {BOB_HASH}, subject: bob}}\n  resource:\n    authorization_servers: [\"https://idp.example.com\"]\n    scopes: [mcp]\n{policies}"
    )
}

fn two_targets() -> Vec<String> {
    vec![stdio_target("ex", &[], ""), stdio_target("ex-b", &[], "")]
}

async fn gateway(policies: &str, hide_denied: bool) -> Gateway {
    Gateway::start(&config(&head(policies, hide_denied), &two_targets())).await
}

/// A Streamable HTTP client that sends a credential.
struct Authed {
    http: reqwest::Client,
    url: String,
    auth: Option<String>,
    session: Option<String>,
}

impl Authed {
    fn new(gw: &Gateway, key: Option<&str>) -> Authed {
        Authed {
            http: http_client(),
            url: gw.mcp_url(),
            auth: key.map(|k| format!("Bearer {k}")),
            session: None,
        }
    }

    async fn post(&self, body: &Value) -> reqwest::Response {
        let mut r = self
            .http
            .post(&self.url)
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .json(body);
        if let Some(a) = &self.auth {
            r = r.header("authorization", a);
        }
        if let Some(s) = &self.session {
            r = r.header("mcp-session-id", s).header("mcp-protocol-version", LATEST);
        }
        within("a POST", r.send()).await.expect("sent")
    }

    async fn init(mut self) -> Authed {
        let resp = self
            .post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "auth-test", "version": "1"}}}))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        self.session = Some(resp.headers()["mcp-session-id"].to_str().unwrap().to_owned());
        self
    }

    async fn rpc(&self, method: &str, params: Value) -> Value {
        let resp = self
            .post(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{method}");
        resp.json().await.expect("JSON")
    }

    async fn names(&self, method: &str, key: &str, field: &str) -> Vec<String> {
        let r = self.rpc(method, json!({})).await;
        let mut n: Vec<String> = r["result"][key]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|t| t[field].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    }

    async fn call(&self, name: &str, args: Value) -> Value {
        self.rpc("tools/call", json!({"name": name, "arguments": args})).await
    }
}

fn challenge(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn unauthenticated_requests_get_401_with_metadata_on_every_transport() {
    let gw = gateway(POLICIES, true).await;
    let http = http_client();
    let base = gw.base();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}});
    let requests = [
        ("/mcp", http.post(format!("{base}/mcp")).json(&init)),
        (
            "/mcp",
            http.get(format!("{base}/mcp")).header("accept", "text/event-stream"),
        ),
        ("/mcp", http.delete(format!("{base}/mcp")).header("mcp-session-id", "x")),
        ("/sse", http.get(format!("{base}/sse"))),
        ("/sse", http.post(format!("{base}/message?sessionId=abc")).json(&init)),
        (
            "/mcp",
            http.post(format!("{base}/mcp"))
                .header("authorization", "Bearer nope")
                .json(&init),
        ),
        (
            "/mcp",
            http.post(format!("{base}/mcp")).header("x-api-key", "nope").json(&init),
        ),
        (
            "/mcp",
            http.post(format!("{base}/mcp"))
                .header("authorization", "Basic YTpi")
                .json(&init),
        ),
    ];
    for (path, req) in requests {
        let resp = within("a request", req.send()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        let c = challenge(&resp);
        assert!(
            c.starts_with(&format!(
                "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource{path}\", scope=\"mcp\""
            )),
            "{c}"
        );
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().starts_with("Unauthorized"),
            "{body}"
        );
    }
    for (suffix, resource) in [("", "/mcp"), ("/mcp", "/mcp"), ("/sse", "/sse")] {
        let resp = http
            .get(format!("{base}/.well-known/oauth-protected-resource{suffix}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["resource"], format!("{base}{resource}"));
        assert_eq!(doc["authorization_servers"], json!(["https://idp.example.com"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp"]));
    }
    let resp = http
        .get(format!("{base}/.well-known/oauth-protected-resource/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        http.get(format!("{base}/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn lists_are_filtered_per_identity() {
    let gw = gateway(POLICIES, true).await;
    let alice = Authed::new(&gw, Some(ALICE)).init().await;
    let bob = Authed::new(&gw, Some(BOB)).init().await;
    assert_eq!(alice.names("tools/list", "tools", "name").await, ["ex_add", "ex_echo"]);
    assert!(bob.names("tools/list", "tools", "name").await.is_empty());
    assert_eq!(alice.names("prompts/list", "prompts", "name").await, ["ex_greeting"]);
    assert_eq!(
        alice.names("resources/list", "resources", "uri").await,
        ["example://readme"]
    );
    assert_eq!(
        alice
            .names("resources/templates/list", "resourceTemplates", "uriTemplate")
            .await,
        ["example://notes/{name}"]
    );
    assert!(bob.names("resources/list", "resources", "uri").await.is_empty());
    // With hide_denied off, everything is listed and only calls are refused.
    let gw = gateway(POLICIES, false).await;
    let bob = Authed::new(&gw, Some(BOB)).init().await;
    let all = bob.names("tools/list", "tools", "name").await;
    assert!(
        all.contains(&"ex_echo".to_string()) && all.contains(&"ex-b_echo".to_string()),
        "{all:?}"
    );
}

#[tokio::test]
async fn calls_are_authorized_and_denials_look_like_unknown_names() {
    let gw = gateway(POLICIES, false).await;
    let alice = Authed::new(&gw, Some(ALICE)).init().await;
    let bob = Authed::new(&gw, Some(BOB)).init().await;
    let ok = alice.call("ex_echo", json!({"message": "hi"})).await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi", "{ok}");
    assert!(
        alice
            .call("ex_add", json!({"a": 1, "b": 2}))
            .await
            .get("result")
            .is_some()
    );
    let unknown = alice.call("no_such_tool", json!({})).await["error"].clone();
    let same_as_unknown = |e: &Value, name: &str| {
        e["code"] == unknown["code"]
            && e["message"].as_str().unwrap() == unknown["message"].as_str().unwrap().replace("no_such_tool", name)
            && e.get("data") == unknown.get("data")
    };
    // CEL over the arguments: a big sum is denied by the deny rule.
    let e = alice.call("ex_add", json!({"a": 101, "b": 2})).await["error"].clone();
    assert!(same_as_unknown(&e, "ex_add"), "{e}");
    // Another identity, another target with the same tool, and spelling tricks.
    let e = bob.call("ex_echo", json!({"message": "hi"})).await["error"].clone();
    assert!(same_as_unknown(&e, "ex_echo"), "{e}");
    for name in [
        "ex-b_echo",
        "EX_echo",
        "ex_Echo",
        "ex_ECHO",
        "ex__echo",
        "ex-echo",
        "ex_echo ",
        " ex_echo",
        "ex_echo\u{0}",
        "ex_b_echo",
        "ex-b__echo",
        "ex:echo",
        "echo",
        "ex_current_time",
        "zz_echo",
    ] {
        let e = alice.call(name, json!({"message": "x"})).await["error"].clone();
        assert!(same_as_unknown(&e, name), "{name}: {e}");
    }
    let (allowed, denied) = gw.core.authorization_counts();
    assert!(allowed >= 2 && denied >= 3, "{allowed} {denied}");
    let ready: Value = http_client()
        .get(format!("{}/readyz", gw.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["authorization"], json!({"allowed": allowed, "denied": denied}));
}

#[tokio::test]
async fn resources_prompts_and_completions_are_authorized() {
    let gw = gateway(POLICIES, false).await;
    let alice = Authed::new(&gw, Some(ALICE)).init().await;
    let r = alice.rpc("resources/read", json!({"uri": "example://readme"})).await;
    assert!(r.get("result").is_some(), "{r}");
    let r = alice
        .rpc("resources/read", json!({"uri": "example://notes/todo"}))
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let unknown = alice.rpc("resources/read", json!({"uri": "example://nope"})).await["error"].clone();
    for (method, uri) in [
        ("resources/read", "example://counter"),
        ("resources/subscribe", "example://counter"),
        ("resources/read", "EXAMPLE://readme"),
        ("resources/read", "example://readme/../counter"),
    ] {
        let e = alice.rpc(method, json!({"uri": uri})).await["error"].clone();
        assert_eq!(e["code"], unknown["code"], "{method} {uri}: {e}");
        assert_eq!(
            e["message"].as_str().unwrap(),
            unknown["message"].as_str().unwrap().replace("example://nope", uri),
            "{method} {uri}"
        );
    }
    assert!(
        alice
            .rpc("prompts/get", json!({"name": "ex_greeting"}))
            .await
            .get("result")
            .is_some()
    );
    let e = alice
        .rpc(
            "prompts/get",
            json!({"name": "ex_summarize", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(e["error"]["message"], "Unknown prompt: ex_summarize", "{e}");
    let e = alice
        .rpc(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "ex_summarize"}, "argument": {"name": "style", "value": ""}}),
        )
        .await;
    assert_eq!(e["error"]["message"], "Unknown prompt: ex_summarize", "{e}");
    let e = alice
        .rpc(
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "example://counter"}, "argument": {"name": "x", "value": ""}}),
        )
        .await;
    assert!(e.get("error").is_some(), "{e}");
}

#[tokio::test]
async fn a_session_belongs_to_its_identity() {
    let gw = gateway(POLICIES, false).await;
    let alice = Authed::new(&gw, Some(ALICE)).init().await;
    let mut bob = Authed::new(&gw, Some(BOB));
    bob.session = alice.session.clone();
    let resp = bob
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let mut anon = Authed::new(&gw, None);
    anon.session = alice.session.clone();
    let resp = anon
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The owner carries on.
    assert!(alice.rpc("tools/list", json!({})).await.get("result").is_some());
}

#[tokio::test]
async fn policy_reload_changes_decisions_without_dropping_sessions() {
    let gw = gateway("", false).await;
    let alice = Authed::new(&gw, Some(ALICE)).init().await;
    let e = alice.call("ex_echo", json!({"message": "hi"})).await;
    assert!(e.get("error").is_some(), "default deny: {e}");
    let new =
        mcpgate_config::Config::from_str(&config(&head(POLICIES, false), &two_targets()), "new.yaml", false).unwrap();
    gw.core.reload_policies(&new);
    let ok = alice.call("ex_echo", json!({"message": "hi"})).await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi", "{ok}");
    assert_eq!(gw.core.session_count(), 1);
}

#[tokio::test]
async fn jwt_identities_from_a_minted_key() {
    let key = mcpgate_auth::mint::generate_es256().unwrap();
    let yaml = config(
        &format!(
            "auth:\n  jwt:\n    issuers: [test]\n    audiences: [gw]\n    jwks: {{inline: {}}}\npolicies:\n  - allow: {{tools: [\"ex:echo\"]}}\n    when: {{claims: {{sub: me}}}}\n",
            key.public_jwk
        ),
        &[stdio_target("ex", &[], "")],
    );
    let gw = Gateway::start(&yaml).await;
    let token = |sub: &str, ttl: i64| {
        let mut c = mcpgate_auth::mint::claims(sub, "test", &["gw".into()], 0, None);
        c["exp"] = json!(c["iat"].as_i64().unwrap() + ttl);
        mcpgate_auth::mint::sign_es256(&key.private_pem, None, &c).unwrap()
    };
    let me = Authed::new(&gw, Some(&token("me", 600))).init().await;
    // One target: names are not prefixed.
    assert_eq!(
        me.call("echo", json!({"message": "jwt"})).await["result"]["content"][0]["text"],
        "jwt"
    );
    let you = Authed::new(&gw, Some(&token("you", 600))).init().await;
    assert!(you.call("echo", json!({"message": "jwt"})).await.get("error").is_some());
    let expired = Authed::new(&gw, Some(&token("me", -3600)));
    let resp = expired
        .post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": LATEST, "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn a_reload_that_replaces_the_jwks_ends_cached_tokens_of_the_old_key() {
    let old_key = mcpgate_auth::mint::generate_es256().unwrap();
    let new_key = mcpgate_auth::mint::generate_es256().unwrap();
    let yaml = |jwk: &Value| {
        config(
            &format!(
                "auth:\n  jwt:\n    issuers: [test]\n    audiences: [gw]\n    jwks: {{inline: {jwk}}}\npolicies:\n  - allow: {{tools: [\"ex:echo\"]}}\n"
            ),
            &[stdio_target("ex", &[], "")],
        )
    };
    let token = |key: &mcpgate_auth::mint::GeneratedKey| {
        let c = mcpgate_auth::mint::claims("me", "test", &["gw".into()], 3600, None);
        mcpgate_auth::mint::sign_es256(&key.private_pem, None, &c).unwrap()
    };
    let gw = Gateway::start(&yaml(&old_key.public_jwk)).await;
    let me = Authed::new(&gw, Some(&token(&old_key))).init().await;
    // Verified, then served from the verified-token cache.
    for _ in 0..2 {
        assert_eq!(
            me.call("echo", json!({"message": "k1"})).await["result"]["content"][0]["text"],
            "k1"
        );
    }
    let mut new = mcpgate_config::Config::from_str(&yaml(&new_key.public_jwk), "new.yaml", false).unwrap();
    new.listen.address = gw.core.config().listen.address;
    gw.core.reload(new);
    // The old key is gone: its token is refused on the very next request, cached or not.
    let resp = me
        .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "k1"}}}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains("error=\"invalid_token\""));
    let fresh = Authed::new(&gw, Some(&token(&new_key))).init().await;
    assert_eq!(
        fresh.call("echo", json!({"message": "k2"})).await["result"]["content"][0]["text"],
        "k2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filtering_is_reapplied_when_an_upstream_list_changes() {
    let policies = r#"policies:
  - allow: { tools: ["s:add_tool", "s:echo", "s:visible_*"] }
    when: { claims: { sub: alice } }
"#;
    let gw = Gateway::start(&config(&head(policies, true), &[stdio_target("s", &[], SHARED)])).await;
    let alice = Authed::new(&gw, Some(ALICE)).init().await;
    assert_eq!(alice.names("tools/list", "tools", "name").await, ["add_tool", "echo"]);
    for name in ["visible_one", "hidden_one"] {
        let r = alice.call("add_tool", json!({"name": name})).await;
        assert!(r.get("result").is_some(), "{r}");
    }
    eventually_async(|| async { alice.names("tools/list", "tools", "name").await.len() == 3 }).await;
    assert_eq!(
        alice.names("tools/list", "tools", "name").await,
        ["add_tool", "echo", "visible_one"]
    );
    let e = alice.call("hidden_one", json!({"message": "x"})).await;
    assert_eq!(e["error"]["message"], "Unknown tool: hidden_one", "{e}");
    assert_eq!(
        alice.call("visible_one", json!({"message": "x"})).await["result"]["content"][0]["text"],
        "x"
    );
}

async fn eventually_async<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn client_responses_cannot_reach_an_upstream_as_calls() {
    // A client may only answer server→client requests the gateway sent to its own session:
    // made-up responses and errors go nowhere, and the upstream never sees them.
    let (url, rec) = recording_server().await;
    let gw = Gateway::start(&config(&head("", false), &[http_target("rec", &url, "")])).await;
    let bob = Authed::new(&gw, Some(BOB)).init().await;
    for body in [
        json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}),
        json!({"jsonrpc": "2.0", "id": "1", "error": {"code": 1, "message": "x"}}),
        json!({"jsonrpc": "2.0", "id": 99, "result": {"method": "tools/call", "params": {"name": "inspect"}}}),
    ] {
        let resp = bob.post(&body).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    let e = bob.call("inspect", json!({})).await;
    assert!(e.get("error").is_some(), "default deny: {e}");
    let seen = rec.messages();
    assert!(
        !seen
            .iter()
            .any(|m| m.get("method").is_none() || m["method"] == "tools/call"),
        "the upstream saw: {seen:?}"
    );
}

/// A stateless Streamable HTTP MCP server with one tool `whoami` that records the
/// `Authorization` header of every request it gets.
async fn header_recorder() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                };
                let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                while buf.len() < head_end + len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                log.lock().unwrap().push(header("authorization"));
                let msg: Value = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
                let (status, body) = match (msg.get("id"), msg["method"].as_str()) {
                    (Some(id), Some(method)) => {
                        let result = match method {
                            "initialize" => {
                                json!({"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "hdr", "version": "1"}})
                            }
                            "tools/list" => json!({"tools": [{"name": "whoami", "inputSchema": {"type": "object"}}]}),
                            "tools/call" => json!({"content": [{"type": "text", "text": "ok"}]}),
                            _ => json!({}),
                        };
                        (200, json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
                    }
                    _ => (202, String::new()),
                };
                let ctype = if status == 200 {
                    "Content-Type: application/json\r\n"
                } else {
                    ""
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{ctype}\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/mcp"), seen)
}

#[tokio::test]
async fn the_client_token_reaches_only_targets_that_opt_in() {
    let (plain_url, plain) = header_recorder().await;
    let (fwd_url, fwd) = header_recorder().await;
    let policies = "policies:\n  - allow: { tools: [\"*\"] }\n";
    let yaml = config(
        &head(policies, true),
        &[
            http_target("plain", &plain_url, ""),
            http_target("fwd", &fwd_url, "    forward_authorization: true\n"),
        ],
    );
    let gw = Gateway::start(&yaml).await;
    let alice = Authed::new(&gw, Some(ALICE)).init().await;
    for tool in ["plain_whoami", "fwd_whoami"] {
        let r = alice.call(tool, json!({})).await;
        assert_eq!(r["result"]["content"][0]["text"], "ok", "{r}");
    }
    assert!(
        plain.lock().unwrap().iter().all(Option::is_none),
        "never forwarded by default"
    );
    // API keys are not bearer tokens of an identity provider: not forwarded either.
    assert!(fwd.lock().unwrap().iter().all(Option::is_none));

    let key = mcpgate_auth::mint::generate_es256().unwrap();
    let yaml = config(
        &format!(
            "auth:\n  jwt: {{issuers: [t], audiences: [gw], jwks: {{inline: {}}}}}\n{policies}",
            key.public_jwk
        ),
        &[
            http_target("plain", &plain_url, ""),
            http_target("fwd", &fwd_url, "    forward_authorization: true\n"),
        ],
    );
    let gw = Gateway::start(&yaml).await;
    let claims = mcpgate_auth::mint::claims("me", "t", &["gw".into()], 600, None);
    let token = mcpgate_auth::mint::sign_es256(&key.private_pem, None, &claims).unwrap();
    let me = Authed::new(&gw, Some(&token)).init().await;
    plain.lock().unwrap().clear();
    fwd.lock().unwrap().clear();
    for tool in ["plain_whoami", "fwd_whoami"] {
        assert_eq!(me.call(tool, json!({})).await["result"]["content"][0]["text"], "ok");
    }
    assert!(plain.lock().unwrap().iter().all(Option::is_none));
    let bearer = format!("Bearer {token}");
    let forwarded = fwd.lock().unwrap().clone();
    assert!(
        forwarded.iter().any(|h| h.as_deref() == Some(bearer.as_str())),
        "{forwarded:?}"
    );
}

#[tokio::test]
async fn a_legacy_sse_connection_belongs_to_its_identity() {
    let gw = gateway(POLICIES, false).await;
    let http = http_client();
    let base = gw.base();
    let resp = within(
        "GET /sse",
        http.get(format!("{base}/sse"))
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {ALICE}"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = SseStream::new(resp);
    let ev = stream.next_event().await.expect("the endpoint event");
    let post_url = format!("{base}{}", ev.data);
    let post = |key: Option<&'static str>, body: Value| {
        let mut r = http.post(&post_url).json(&body);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}});
    // Bob cannot initialize (or use) Alice's connection; without credentials: 401.
    assert_eq!(
        post(Some(BOB), init.clone()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(None, init.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(post(Some(ALICE), init).await.unwrap().status(), StatusCode::ACCEPTED);
    stream.response(&json!(1)).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ex_echo", "arguments": {"message": "legacy"}}});
    assert_eq!(
        post(Some(BOB), call.clone()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(post(Some(ALICE), call).await.unwrap().status(), StatusCode::ACCEPTED);
    let r = stream.response(&json!(2)).await;
    assert_eq!(r["result"]["content"][0]["text"], "legacy", "{r}");
}
