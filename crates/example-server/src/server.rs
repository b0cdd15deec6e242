//! The transport-independent core: server-wide state ([`Shared`]), the session registry used
//! for broadcasts, and the dispatcher that answers every MCP method.
//!
//! Transports (`stdio.rs`, `http.rs`) parse bytes into [`Incoming`] messages, decide where
//! answers go (an `mpsc` of [`Msg`]), and call in here. Nothing in this module knows about HTTP
//! status codes or stdout.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::content::{self, Content};
use crate::jsonrpc::{self, INVALID_REQUEST, Incoming, Kind, Method, Msg, ResultWriter, RpcError};
use crate::listen::ListKind;
use crate::options::Options;
use crate::session::{InflightGuard, LogLevel, Session, Transport, Version, caps};
use crate::stats::Stats;
use crate::tools::{self, ToolCatalog};

/// Server-wide state shared by every session and transport.
pub struct Shared {
    /// The options the server was started with.
    pub opts: Options,
    /// Counters.
    pub stats: Stats,
    /// Tool definitions (fixed and dynamic).
    pub tools: ToolCatalog,
    /// Prompts, resources and templates.
    pub content: Content,
    /// The serialized `initialize` result per protocol version (indexed by `Version as usize`).
    init_results: [Bytes; 4],
    sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    counter: AtomicU64,
    /// Cancelled to stop every transport loop of this server.
    pub shutdown: CancellationToken,
    /// The single pseudo-session of stateless HTTP.
    pub stateless: Arc<Session>,
    /// A sender nobody listens to, for requests that never send anything but their response.
    null_out: mpsc::Sender<Msg>,
    /// `traceparent` headers of the POSTs received (with `echo_meta` only; the last 1000).
    pub traceparents: std::sync::Mutex<std::collections::VecDeque<String>>,
    /// The `Mcp-*`/`MCP-*` headers of each POST to `/mcp` (names in lower case; the last 1000),
    /// recorded with `--era modern|dual` or `echo_meta`.
    pub request_headers: std::sync::Mutex<std::collections::VecDeque<Vec<(String, String)>>>,
    /// Open `subscriptions/listen` requests (2026-07-28).
    pub listeners: crate::listen::Listeners,
    /// Outstanding `requestState`s of multi-round-trip tool calls (2026-07-28).
    pub mrtr: crate::mrtr::States,
    /// Run-time fault state: `tools/call` and `*/list` seen, and the hang switch.
    faults: FaultState,
}

/// Counters and switches behind the `hang-after` and `flaky-lists` faults and
/// [`crate::ExampleServer::set_hang`].
#[derive(Default)]
struct FaultState {
    calls: AtomicU64,
    lists: AtomicU64,
    hang: std::sync::atomic::AtomicBool,
}

/// The server's `instructions` (in the `initialize` and `server/discover` results).
pub const INSTRUCTIONS: &str = "This is the mcpgate example server. Tools: echo, add, current_time, \
convert_to_markdown (plain text to Markdown), long_operation (progress and cancellation), sample \
(asks your model), elicit (asks the user), list_roots, log, fail, add_tool and touch_resource \
(list-changed and resource-updated notifications). Read example://readme for an overview.";

impl Shared {
    /// Builds the server state for `opts`.
    pub fn new(opts: Options) -> Arc<Shared> {
        let init_results = [
            Version::V2024_11_05,
            Version::V2025_03_26,
            Version::V2025_06_18,
            Version::V2025_11_25,
        ]
        .map(|v| init_result(&opts.name, v));
        let (null_out, _) = mpsc::channel(1);
        Arc::new(Shared {
            null_out,
            tools: ToolCatalog::new(opts.extra_tools, opts.result_bytes, opts.echo_meta, opts.era.modern())
                .with_xheader_tools(opts.xheader_tools),
            traceparents: std::sync::Mutex::default(),
            request_headers: std::sync::Mutex::default(),
            listeners: crate::listen::Listeners::default(),
            mrtr: crate::mrtr::States::default(),
            faults: FaultState::default(),
            content: Content::new(),
            stats: Stats::default(),
            init_results,
            sessions: RwLock::default(),
            counter: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
            stateless: Session::new("stateless".into(), Transport::Stateless, None, None),
            opts,
        })
    }

    /// A sender whose messages are discarded, for requests that only produce a response.
    pub fn null_out(&self) -> mpsc::Sender<Msg> {
        self.null_out.clone()
    }

    /// Adds a session to the registry (for broadcasts and HTTP lookups).
    pub fn register(&self, session: Arc<Session>) {
        self.stats.session_opened();
        self.write_sessions().insert(session.id.clone(), session);
    }

    /// Removes and closes a session; `None` when unknown.
    pub fn unregister(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.write_sessions().remove(id)?;
        s.close();
        self.stats.session_closed();
        Some(s)
    }

    /// Looks a session up by id.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Number of registered sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn write_sessions(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Arc<Session>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The sessions that take messages unrelated to a request: all of them in the session
    /// era; none in the modern era (a stdio connection there is a 2026-07-28 client, which
    /// gets only what it subscribed to); in the dual era, those that ran `initialize`.
    fn all_sessions(&self) -> Vec<Arc<Session>> {
        let era = self.opts.era;
        if era == crate::options::Era::Modern {
            return Vec::new();
        }
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| era == crate::options::Era::Session || s.version().is_some())
            .cloned()
            .collect()
    }

    /// Sends a message to every session's unrelated stream; returns how many took it.
    pub fn broadcast(&self, bytes: Bytes) -> usize {
        self.all_sessions()
            .iter()
            .filter(|s| s.send_unrelated(Msg::other(bytes.clone())))
            .count()
    }

    /// Adds a dynamic echo tool and announces `notifications/tools/list_changed`.
    pub fn add_tool(&self, name: &str) -> bool {
        let added = self.tools.add(name);
        if added {
            self.list_changed(ListKind::Tools);
        }
        added
    }

    /// Sends a list-changed notification to every session and to every 2026-07-28
    /// subscription that opted in to it; returns how many took it.
    pub fn list_changed(&self, kind: ListKind) -> usize {
        self.broadcast(jsonrpc::bare_notification(kind.method())) + self.listeners.list_changed(kind)
    }

    /// Sends `notifications/resources/updated` to sessions subscribed to `uri` and to the
    /// 2026-07-28 subscriptions listing it; returns how many.
    pub fn notify_resource_updated(&self, uri: &str) -> usize {
        let bytes = jsonrpc::notification("notifications/resources/updated", &json!({ "uri": uri }));
        self.all_sessions()
            .iter()
            .filter(|s| s.is_subscribed(uri))
            .filter(|s| s.send_unrelated(Msg::other(bytes.clone())))
            .count()
            + self.listeners.resource_updated(uri)
    }

    /// Keeps the `Mcp-*` headers of one POST (see [`Shared::request_headers`]).
    pub fn record_headers(&self, headers: Vec<(String, String)>) {
        let mut seen = self.request_headers.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() == 1000 {
            seen.pop_front();
        }
        seen.push_back(headers);
    }

    /// Sends `notifications/message` to every session whose level lets it through.
    pub fn log_all(&self, level: LogLevel, logger: &str, message: &str) -> usize {
        let bytes = tools::log_message(level, logger, message);
        self.all_sessions()
            .iter()
            .filter(|s| level >= s.log_level())
            .filter(|s| s.send_unrelated(Msg::other(bytes.clone())))
            .count()
    }

    /// Increments the `example://counter` resource.
    pub fn bump_counter(&self) -> u64 {
        self.counter.fetch_add(1, Relaxed) + 1
    }

    /// The current value of `example://counter`.
    pub fn counter(&self) -> u64 {
        self.counter.load(Relaxed)
    }

    /// Whether a request is answered inline by the transport (no task, no stream): it sends
    /// nothing before its response and finishes at once. That is every method but `tools/call`
    /// and a slow-starting `initialize`, plus calls of tools that neither wait nor talk back to
    /// the client when no call delay or hang fault is configured.
    pub fn runs_inline(&self, msg: &Incoming) -> bool {
        match msg.method() {
            Some(Method::ToolsCall) => {
                self.opts.call_delay.is_zero()
                    && !self.may_hang()
                    && tools::peek_name(msg).is_some_and(|name| tools::is_instant(&name))
            }
            Some(Method::Initialize) => self.opts.slow_start().is_zero(),
            Some(m) => m.is_instant(),
            None => true,
        }
    }

    /// Could a `tools/call` hang (a hang fault, or the hang switch)?
    pub fn may_hang(&self) -> bool {
        self.opts.hangs() || self.opts.hang_after().is_some() || self.faults.hang.load(Relaxed)
    }

    /// Counts a `tools/call` and says whether it must never be answered.
    pub fn call_hangs(&self) -> bool {
        let n = self.faults.calls.fetch_add(1, Relaxed) + 1;
        self.opts.hangs() || self.faults.hang.load(Relaxed) || self.opts.hang_after().is_some_and(|limit| n > limit)
    }

    /// Turns the hang switch on or off: while on, every new `tools/call` hangs.
    pub fn set_hang(&self, on: bool) {
        self.faults.hang.store(on, Relaxed);
    }

    /// Counts a `*/list` request and says whether it gets garbage (`flaky-lists`).
    fn list_is_garbage(&self) -> bool {
        let limit = self.opts.flaky_lists();
        limit > 0 && self.faults.lists.fetch_add(1, Relaxed) < limit
    }

    /// Counts a received request; false when the crash-after fault fires for it.
    pub fn admit(&self, method: Method) -> bool {
        let n = self.stats.count_request(method);
        self.opts.crash_after().is_none_or(|limit| n <= limit)
    }

    /// Handles a notification from the client (never answered).
    pub fn on_notification(&self, session: &Session, msg: &Incoming) {
        let method = msg.method().unwrap_or(Method::Other);
        self.stats.count_notification(method);
        match method {
            Method::Initialized => session.mark_initialized(),
            Method::Cancelled => {
                #[derive(Deserialize)]
                struct P<'a> {
                    #[serde(borrow, rename = "requestId")]
                    request_id: &'a RawValue,
                }
                if let Ok(p) = msg.parse_params::<P<'_>>()
                    && session.cancel(p.request_id.get())
                {
                    self.stats.count_cancellation();
                }
            }
            _ => {}
        }
    }

    /// Handles a response to one of our server→client requests.
    pub fn on_response(&self, session: &Session, msg: &Incoming) {
        self.stats.count_response();
        let (Some(id), Some(outcome)) = (msg.id(), msg.outcome()) else {
            return;
        };
        let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
        let reply = match outcome {
            Ok(r) => Ok(parse(r)),
            Err(e) => Err(parse(e)),
        };
        if !session.complete_client_request(id, reply) {
            tracing::debug!(session = %session.id, id, "Ignored a response to no pending request.");
        }
    }
}

fn init_result(name: &str, v: Version) -> Bytes {
    let mut capabilities = json!({
        "tools": { "listChanged": true },
        "prompts": { "listChanged": true },
        "resources": { "subscribe": true, "listChanged": true },
        "logging": {},
    });
    if v >= Version::V2025_03_26 {
        capabilities["completions"] = json!({});
    }
    let mut server_info = json!({ "name": name, "version": env!("CARGO_PKG_VERSION") });
    if v >= Version::V2025_06_18 {
        server_info["title"] = json!("mcpgate example server");
    }
    let result = json!({
        "protocolVersion": v.as_str(),
        "capabilities": capabilities,
        "serverInfo": server_info,
        "instructions": INSTRUCTIONS,
    });
    Bytes::from(serde_json::to_vec(&result).unwrap_or_default())
}

/// Everything a request handler needs: the server, the session, where related messages and
/// the response go, and the protocol version the request is read under.
#[derive(Clone)]
pub struct Ctx {
    /// Server-wide state.
    pub shared: Arc<Shared>,
    /// The session the request belongs to.
    pub session: Arc<Session>,
    /// The stream for messages related to this request (progress, logs, server→client
    /// requests) and its response.
    pub out: mpsc::Sender<Msg>,
    /// The protocol version in force (the newest session-based one for 2026-07-28 requests,
    /// whose behaviour it shares).
    pub version: Version,
    /// For a 2026-07-28 request: what its `_meta` declared. `None` for session-based requests.
    pub meta: Option<crate::modern::ReqMeta>,
}

/// The answer to a message that is not a valid JSON-RPC request, response or notification.
pub fn invalid_request(msg: &Incoming) -> Msg {
    Msg::response(jsonrpc::error(
        msg.id(),
        &RpcError::new(INVALID_REQUEST, "Invalid Request"),
    ))
}

/// Runs a tracked (cancellable) request and sends its response to `ctx.out`, unless it was
/// cancelled: then nothing is sent, as the cancellation section asks.
pub async fn run_tracked(ctx: Ctx, msg: Incoming, guard: InflightGuard) {
    let token = guard.token.clone();
    let res = tokio::select! {
        biased;
        _ = token.cancelled() => None,
        r = handle_request(&ctx, &msg) => r,
    };
    drop(guard);
    if let Some(m) = res {
        let _ = ctx.out.send(m).await;
    }
}

#[derive(Deserialize)]
struct ListParams<'a> {
    #[serde(borrow, default)]
    cursor: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UriParams {
    uri: String,
}

/// Answers one request. `None` means no response is due.
pub async fn handle_request(ctx: &Ctx, msg: &Incoming) -> Option<Msg> {
    let Kind::Request { method, .. } = msg.kind else {
        return None;
    };
    let id = msg.id().unwrap_or("null");
    let shared = &ctx.shared;
    let page_size = shared.opts.page_size;
    if matches!(
        method,
        Method::ToolsList | Method::PromptsList | Method::ResourcesList | Method::ResourcesTemplatesList
    ) && shared.list_is_garbage()
    {
        return Some(Msg::response(Bytes::from_static(crate::tools::GARBAGE)));
    }
    let res: Result<Bytes, RpcError> = match method {
        Method::Initialize => initialize(ctx, msg, id).await,
        Method::Ping => Ok(jsonrpc::result(id, &json!({}))),
        Method::ToolsCall => return tools::call(ctx, msg, id).await,
        Method::ToolsList => msg
            .parse_params::<ListParams<'_>>()
            .and_then(|p| shared.tools.list(id, page_size, p.cursor.as_deref())),
        Method::PromptsList => list(id, msg, &shared.content.prompts, "prompts", page_size),
        Method::ResourcesList => list(id, msg, &shared.content.resources, "resources", page_size),
        Method::ResourcesTemplatesList => list(id, msg, &shared.content.templates, "resourceTemplates", page_size),
        Method::PromptsGet => content::get_prompt(msg.params()).map(|v| jsonrpc::result(id, &v)),
        Method::ResourcesRead => msg
            .parse_params::<UriParams>()
            .and_then(|p| content::read(&p.uri, shared.counter()))
            .map(|v| jsonrpc::result(id, &v)),
        Method::ResourcesSubscribe => msg.parse_params::<UriParams>().and_then(|p| {
            if content::exists(&p.uri) {
                ctx.session.subscribe(&p.uri);
                Ok(jsonrpc::result(id, &json!({})))
            } else {
                Err(RpcError::resource_not_found(&p.uri))
            }
        }),
        Method::ResourcesUnsubscribe => msg.parse_params::<UriParams>().map(|p| {
            ctx.session.unsubscribe(&p.uri);
            jsonrpc::result(id, &json!({}))
        }),
        Method::CompletionComplete => content::complete(msg.params()).map(|v| jsonrpc::result(id, &v)),
        Method::LoggingSetLevel => {
            #[derive(Deserialize)]
            struct P {
                level: String,
            }
            msg.parse_params::<P>().and_then(|p| match LogLevel::parse(&p.level) {
                Some(level) => {
                    ctx.session.set_log_level(level);
                    Ok(jsonrpc::result(id, &json!({})))
                }
                None => Err(RpcError::invalid_params(format!("invalid log level {:?}", p.level))),
            })
        }
        Method::Initialized
        | Method::Cancelled
        | Method::Progress
        | Method::RootsListChanged
        | Method::ServerDiscover
        | Method::SubscriptionsListen
        | Method::Other => Err(RpcError::method_not_found(msg.method_name())),
    };
    Some(Msg::response(match res {
        Ok(b) => b,
        Err(e) => jsonrpc::error(Some(id), &e),
    }))
}

fn list(id: &str, msg: &Incoming, items: &[Bytes], key: &str, page_size: Option<usize>) -> Result<Bytes, RpcError> {
    let p: ListParams<'_> = msg.parse_params()?;
    let (range, next) = content::page(items.len(), page_size, p.cursor.as_deref(), key)?;
    let mut w = ResultWriter::new(id, 512);
    w.raw(b"{\"").raw(key.as_bytes()).raw(b"\":[");
    for (n, item) in items[range].iter().enumerate() {
        if n > 0 {
            w.raw(b",");
        }
        w.raw(item);
    }
    w.raw(b"]");
    if let Some(next) = next {
        w.raw(b",\"nextCursor\":").json(&next);
    }
    w.raw(b"}");
    Ok(w.finish())
}

#[derive(Deserialize)]
struct InitializeParams<'a> {
    #[serde(borrow, rename = "protocolVersion")]
    protocol_version: Cow<'a, str>,
    #[serde(default)]
    capabilities: Option<ClientCapabilities>,
}

#[derive(Deserialize, Default)]
struct ClientCapabilities {
    #[serde(default)]
    sampling: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    roots: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    elicitation: Option<Value>,
}

async fn initialize(ctx: &Ctx, msg: &Incoming, id: &str) -> Result<Bytes, RpcError> {
    let p: InitializeParams<'_> = msg.parse_params()?;
    let version = Version::negotiate(&p.protocol_version);
    let c = p.capabilities.unwrap_or_default();
    let mut bits = 0;
    if c.sampling.is_some() {
        bits |= caps::SAMPLING;
    }
    if c.roots.is_some() {
        bits |= caps::ROOTS;
    }
    // `elicitation: {}` means form mode only; otherwise form must be listed.
    if let Some(Value::Object(e)) = &c.elicitation
        && (e.is_empty() || e.contains_key("form"))
    {
        bits |= caps::ELICIT_FORM;
    }
    ctx.session.set_initialize(version, bits);
    let delay = ctx.shared.opts.slow_start();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = &ctx.shared.init_results[version as usize];
    let mut w = ResultWriter::new(id, body.len());
    w.raw(body);
    Ok(w.finish())
}
