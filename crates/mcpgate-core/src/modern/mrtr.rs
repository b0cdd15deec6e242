//! Multi-round-trip requests (MRTR) bridged onto session-based upstreams.
//!
//! A stateless client's `tools/call`, `prompts/get` or `resources/read` runs upstream as an
//! ordinary request. If the upstream sends a server→client request during it
//! (`sampling/createMessage`, `elicitation/create`, `roots/list`), the gateway cannot relay it
//! (a 2026-07-28 client takes no requests): it answers the client with
//! `resultType: "input_required"`, one `inputRequests` entry per pending upstream request,
//! and a sealed `requestState`, and **holds** the upstream call. The client's retry carries
//! `inputResponses` and the `requestState`; the gateway opens the state, hands each response
//! to the upstream request it answers, and goes on waiting for the upstream: the final result,
//! or another round of input.
//!
//! Bounds: a held call lives at most `stateless.input_wait` (default 5 minutes; then the
//! upstream request is cancelled) and at most `stateless.max_held_calls` (default 1024) calls
//! are held per gateway process (more are refused with an error, and their upstream request
//! cancelled). The `requestState` is HMAC-SHA256 sealed
//! ([`mcpgate_auth::seal`]) over a version byte, a random 128-bit handle, the expiry and a
//! digest binding it to the caller's subject, the method and the tool/prompt name or URI;
//! a state that fails any check is refused (-32602, HTTP 400). The held upstream call lives
//! in the memory of the replica that started it: another replica (or this one after a
//! restart) cannot open the state (different key) or does not hold the call, and answers
//! -32602 saying so; the client starts the call again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcpgate_auth::Identity;
use mcpgate_auth::seal::Sealer;
use mcpgate_proto::modern::{self as wire};
use mcpgate_proto::raw::{member, str_member};
use mcpgate_proto::{ErrorCode, Message, MessageKind, ObjectEdit, RawJson};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Reply, RequestMeta, Status, strip_modern_params};
use crate::gateway::Gateway;
use crate::session::{Session, level_rank};

/// After the first server→client request of a round, how long the gateway waits for more
/// (an upstream that asks for several inputs at once sends them back to back) before
/// answering the client with all of them.
pub const GATHER_WINDOW: Duration = Duration::from_millis(50);

const STATE_VERSION: u8 = 1;
const HANDLE_LEN: usize = 16;
const BINDING_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + HANDLE_LEN + 8 + BINDING_LEN;

type Handle = [u8; HANDLE_LEN];

/// The held calls of one gateway process.
pub(crate) struct Held {
    sealer: Sealer,
    calls: Mutex<HashMap<Handle, Call>>,
    /// How long a call is held, in ms.
    ttl_ms: u64,
    /// Most calls held at once.
    max: usize,
}

/// One upstream call of a stateless client, running or waiting for input.
struct Call {
    session: Arc<Session>,
    events: mpsc::Receiver<Message>,
    task: JoinHandle<Option<Message>>,
    /// Server→client requests waiting for the client: (inputRequests key, gateway id, request).
    pending: Vec<(String, u64, RawJson)>,
    /// Capabilities the upstream asked for that the client had not declared.
    refused: Vec<&'static str>,
    binding: [u8; BINDING_LEN],
    log_level: Option<usize>,
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.task.is_finished() {
            // Abandoned (expired, refused, or the client went away): cancel upstream.
            for f in self.session.state.lock().in_flight.values() {
                f.cancel.cancel();
            }
            self.session.closed.cancel();
        }
    }
}

impl Held {
    pub(crate) fn new(sealer: Sealer, ttl: Duration, max: usize) -> Self {
        Held {
            sealer,
            calls: Mutex::new(HashMap::new()),
            ttl_ms: ttl.as_millis() as u64,
            max,
        }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Binds a state to who asked, and for what.
fn binding(identity: Option<&Identity>, method: &str, subject: &str) -> [u8; BINDING_LEN] {
    let mut h = Sha256::new();
    h.update(identity.map_or("", |i| i.subject.as_str()).as_bytes());
    h.update([0]);
    h.update(method.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    let d = h.finalize();
    let mut out = [0u8; BINDING_LEN];
    out.copy_from_slice(&d[..BINDING_LEN]);
    out
}

fn bad_request(id: &RawJson, message: &str) -> Reply {
    Reply::error(id.clone(), ErrorCode::INVALID_PARAMS, message, None, Status::BadRequest)
}

/// Serves a stateless `tools/call`, `prompts/get` or `resources/read`: a new call, or the
/// retry of a held one.
pub(crate) async fn call(
    gw: &Gateway,
    msg: Message,
    meta: RequestMeta,
    identity: Option<Arc<Identity>>,
    related: mpsc::Sender<Message>,
    cancel: CancellationToken,
) -> Reply {
    let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
    let params = msg.params.clone().unwrap_or(RawJson::from_static("{}"));
    let subject_key = if msg.method() == "resources/read" {
        "uri"
    } else {
        "name"
    };
    let subject = str_member(&params, subject_key)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let bind = binding(identity.as_deref(), msg.method(), &subject);
    let responses = match member(&params, "inputResponses") {
        None => None,
        Some(r) => match ObjectEdit::parse(&r) {
            Ok(e) if e.iter().all(|(_, v)| v.is_object()) => Some(e),
            _ => {
                return bad_request(
                    &id,
                    "Invalid params: inputResponses must be an object mapping each inputRequests key to a result object",
                );
            }
        },
    };
    let held = &gw.inner.modern.mrtr;
    let call = match member(&params, "requestState") {
        None => {
            // A new call. inputResponses without requestState answer nothing the gateway
            // asked: for a session-based upstream they are dropped. A 2026-07-28 upstream may
            // ask for input without a requestState (it is optional), so its retry goes to it
            // with the client's inputResponses.
            let session = gw.inner.ephemeral_session(&meta, identity);
            let (tx, events) = mpsc::channel(64);
            let upstream_msg = if responses.is_some() && routed_to_stateless(gw, msg.method(), &subject).await {
                super::strip_modern_meta(msg)
            } else {
                strip_modern_params(msg)
            };
            let (g, s) = (gw.clone(), session.clone());
            let task = tokio::spawn(async move { g.handle(&s, upstream_msg, Some(tx)).await });
            Call {
                session,
                events,
                task,
                pending: Vec::new(),
                refused: Vec::new(),
                binding: bind,
                log_level: meta.log_level,
            }
        }
        Some(state) => {
            let Some(state) = state.as_json_str() else {
                return bad_request(&id, "Invalid params: requestState must be a string");
            };
            let opened = held
                .sealer
                .open(&state)
                .filter(|p| p.len() == PAYLOAD_LEN && p[0] == STATE_VERSION);
            if opened.is_none() && routed_to_stateless(gw, msg.method(), &subject).await {
                // A 2026-07-28 upstream's own state: its retry goes to it as the client sent it
                // (the upstream verifies its state; the gateway holds nothing).
                let session = gw.inner.ephemeral_session(&meta, identity);
                let (tx, events) = mpsc::channel(64);
                let upstream_msg = super::strip_modern_meta(msg);
                let (g, s) = (gw.clone(), session.clone());
                let task = tokio::spawn(async move { g.handle(&s, upstream_msg, Some(tx)).await });
                let call = Call {
                    session,
                    events,
                    task,
                    pending: Vec::new(),
                    refused: Vec::new(),
                    binding: bind,
                    log_level: meta.log_level,
                };
                return drive(gw, call, id, related, cancel).await;
            }
            let Some(payload) = opened else {
                return bad_request(
                    &id,
                    "Invalid params: requestState failed verification (not issued by this gateway, or altered)",
                );
            };
            let handle: Handle = payload[1..1 + HANDLE_LEN].try_into().expect("length checked");
            let expires = u64::from_be_bytes(payload[1 + HANDLE_LEN..1 + HANDLE_LEN + 8].try_into().expect("length"));
            if now_unix_ms() > expires {
                return bad_request(&id, "Invalid params: requestState has expired; call again without it");
            }
            if payload[1 + HANDLE_LEN + 8..] != bind {
                return bad_request(
                    &id,
                    "Invalid params: requestState was issued for another request or caller",
                );
            }
            let Some(mut call) = held.calls.lock().remove(&handle) else {
                return bad_request(
                    &id,
                    "Invalid params: requestState names a call this gateway instance does not hold \
                     (it completed, expired, or is held by another replica); call again without it",
                );
            };
            // Answer what the client answered; what it did not answer stays pending.
            let mut still = Vec::new();
            for (key, gid, request) in std::mem::take(&mut call.pending) {
                match responses.as_ref().and_then(|r| r.get(&key)) {
                    Some(v) => {
                        let reply = Message::response(RawJson::from_value(&gid), v.clone());
                        gw.handle(&call.session, reply, None).await;
                    }
                    None => still.push((key, gid, request)),
                }
            }
            call.pending = still;
            if !call.pending.is_empty() {
                return hold(gw, call, &id);
            }
            call
        }
    };
    drive(gw, call, id, related, cancel).await
}

/// Does the request go to a target that speaks 2026-07-28 itself?
async fn routed_to_stateless(gw: &Gateway, method: &str, subject: &str) -> bool {
    use crate::target::ListKind;
    let rt = gw.inner.runtime.load_full();
    let owner = match method {
        "tools/call" => gw.inner.named_owner(&rt, ListKind::Tools, subject).await,
        "prompts/get" => gw.inner.named_owner(&rt, ListKind::Prompts, subject).await,
        "resources/read" => gw.inner.resource_owner(&rt, subject).await.ok(),
        _ => None,
    };
    owner.is_some_and(|o| rt.targets[o.target].is_stateless())
}

/// Waits for the call's next outcome: its result, or a round of input requests.
async fn drive(
    gw: &Gateway,
    mut call: Call,
    id: RawJson,
    related: mpsc::Sender<Message>,
    cancel: CancellationToken,
) -> Reply {
    loop {
        tokio::select! {
            biased;
            ev = call.events.recv() => match ev {
                Some(m) => {
                    if server_request(gw, &mut call, m, &related).await {
                        gather(gw, &mut call, &related).await;
                        return hold(gw, call, &id);
                    }
                }
                None => {
                    let res = (&mut call.task).await.ok().flatten();
                    return finish(call, res, id);
                }
            },
            res = &mut call.task => {
                let res = res.ok().flatten();
                while let Ok(m) = call.events.try_recv() {
                    server_request(gw, &mut call, m, &related).await;
                }
                return finish(call, res, id);
            }
            _ = cancel.cancelled() => {
                // The client closed the response stream: that is cancellation (dropping the
                // call cancels the upstream request).
                drop(call);
                return Reply::error(id, ErrorCode::REQUEST_CANCELLED, "request cancelled", None, Status::Ok);
            }
        }
    }
}

/// Collects further input requests arriving within [`GATHER_WINDOW`] of each other.
async fn gather(gw: &Gateway, call: &mut Call, related: &mpsc::Sender<Message>) {
    while let Ok(Some(m)) = tokio::time::timeout(GATHER_WINDOW, call.events.recv()).await {
        server_request(gw, call, m, related).await;
    }
}

/// Handles one message the call's upstream sent: relays request-scoped notifications the
/// client asked for, answers what the gateway can, and queues input requests. True when an
/// input request was queued.
async fn server_request(gw: &Gateway, call: &mut Call, m: Message, related: &mpsc::Sender<Message>) -> bool {
    match m.kind() {
        MessageKind::Notification => {
            let relay = match m.method() {
                "notifications/progress" => true,
                // 2026-07-28: no log messages unless the request set a level.
                "notifications/message" => call.log_level.is_some_and(|min| {
                    let level = m.params.as_ref().and_then(|p| str_member(p, "level"));
                    level_rank(level.as_deref().unwrap_or("info")) >= min
                }),
                _ => false,
            };
            if relay {
                let _ = related.try_send(m);
            }
            false
        }
        MessageKind::Request => {
            let Some(gid) = m.id.as_ref().and_then(RawJson::as_i64) else {
                return false;
            };
            let answer = |reply: Message| {
                let (g, s) = (gw.clone(), call.session.clone());
                async move {
                    g.handle(&s, reply, None).await;
                }
            };
            let gid_raw = RawJson::from_value(&gid);
            let cap = match (m.method(), super::bridge::capability_for(m.method())) {
                (_, Some(cap)) => cap,
                ("ping", None) => {
                    answer(Message::response(gid_raw, RawJson::from_static("{}"))).await;
                    return false;
                }
                (other, None) => {
                    let text = format!("mcpgate: `{other}` cannot be relayed to a 2026-07-28 client");
                    answer(Message::error(gid_raw, ErrorCode::METHOD_NOT_FOUND, &text, None)).await;
                    return false;
                }
            };
            if !call.session.has_capability(cap) {
                if !call.refused.contains(&cap) {
                    call.refused.push(cap);
                }
                let text = format!("mcpgate: the client did not declare the `{cap}` capability for this request");
                answer(Message::error(gid_raw, ErrorCode::METHOD_NOT_FOUND, &text, None)).await;
                return false;
            }
            let mut request = ObjectEdit::new();
            request.set("method", RawJson::string(m.method()));
            if let Some(p) = &m.params {
                request.set("params", p.clone());
            }
            call.pending
                .push((format!("{cap}-{gid}"), gid as u64, request.to_raw()));
            true
        }
        _ => false,
    }
}

/// Holds `call` and answers the client with its pending input requests.
fn hold(gw: &Gateway, call: Call, id: &RawJson) -> Reply {
    let held = &gw.inner.modern.mrtr;
    let mut requests = ObjectEdit::new();
    for (key, _, request) in &call.pending {
        requests.set(key, request.clone());
    }
    let handle: Handle = rand::random();
    let ttl = held.ttl_ms;
    let expires = now_unix_ms() + ttl;
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.push(STATE_VERSION);
    payload.extend_from_slice(&handle);
    payload.extend_from_slice(&expires.to_be_bytes());
    payload.extend_from_slice(&call.binding);
    let state = held.sealer.seal(&payload);
    {
        let mut calls = held.calls.lock();
        if calls.len() >= held.max {
            drop(calls);
            drop(call);
            tracing::warn!(
                limit = held.max,
                "Refused to hold another call waiting for client input."
            );
            return Reply::error(
                id.clone(),
                ErrorCode::INTERNAL_ERROR,
                "mcpgate: too many calls are waiting for client input; try again later",
                None,
                Status::Ok,
            );
        }
        calls.insert(handle, call);
    }
    let me = gw.inner.me.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ttl)).await;
        if let Some(inner) = me.upgrade() {
            let expired = inner.modern.mrtr.calls.lock().remove(&handle);
            if expired.is_some() {
                tracing::debug!("A call waiting for client input expired; cancelled upstream.");
            }
        }
    });
    let mut result = ObjectEdit::new();
    result.set("resultType", RawJson::string(wire::RESULT_INPUT_REQUIRED));
    result.set("inputRequests", requests.to_raw());
    result.set("requestState", RawJson::string(&state));
    Reply {
        message: Message::response(id.clone(), result.to_raw()),
        status: Status::Ok,
    }
}

/// The call's final response, under the id of the request that is being answered now.
fn finish(call: Call, res: Option<Message>, id: RawJson) -> Reply {
    let Some(resp) = res else {
        return Reply::error(id, ErrorCode::INTERNAL_ERROR, "internal error", None, Status::Ok);
    };
    let failed = resp.error.is_some() || resp.is_tool_error();
    if failed && !call.refused.is_empty() {
        // The upstream needed a capability the client did not declare, and failed without it.
        let mut required = serde_json::Map::new();
        for cap in &call.refused {
            required.insert((*cap).to_owned(), serde_json::json!({}));
        }
        let data = serde_json::json!({ "requiredCapabilities": required });
        return Reply::error(
            id,
            wire::MISSING_REQUIRED_CLIENT_CAPABILITY,
            &format!("Missing required client capability: {}", call.refused.join(", ")),
            Some(RawJson::from_value(&data)),
            Status::BadRequest,
        );
    }
    // A 2026-07-28 upstream's own -32021 (or another error its transport sends with 400)
    // keeps its status on the way through.
    let code = resp
        .error
        .as_ref()
        .and_then(|e| member(e, "code"))
        .and_then(|c| c.as_i64());
    let status = if code.is_some_and(|c| wire::is_stateless_error(ErrorCode(c))) {
        Status::BadRequest
    } else {
        Status::Ok
    };
    Reply {
        message: Message { id: Some(id), ..resp },
        status,
    }
}
