//! The gateway: targets, sessions, and the routing of every client message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use mcpgate_config::{Config, PrefixMode, SessionMode};
use mcpgate_proto::raw::{member, str_member};
use mcpgate_proto::{ErrorCode, Message, MessageKind, ObjectEdit, RawJson, version};
use mcpgate_upstream::{ConnectOptions, Connection, HttpClient, UpstreamError};
use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use crate::error::GatewayError;
use crate::lists::{self, Merged, Owner};
use crate::session::{DownstreamKind, InFlight, LOG_LEVELS, Outbound, RelatedSink, Session};
use crate::target::{ListKind, MainState, TargetRt, has_capability};
use crate::upstream::{Handler, Route, RouteGuard, Routes, Upstream};

/// Window in which `list_changed` notifications for the same list are sent to clients once.
const LIST_CHANGED_COALESCE: Duration = Duration::from_millis(50);

/// The federating MCP server. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

/// Health of one target, for `/readyz`, `mcpgate check` and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetStatus {
    /// Target name.
    pub name: String,
    /// Transport kind.
    pub transport: &'static str,
    /// `up`, `connecting` or `down`.
    pub state: &'static str,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Negotiated protocol version, when up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The protocol generation spoken to it, when up: `stateless` (2026-07-28, found by the
    /// `server/discover` probe) or `session`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<&'static str>,
    /// Main-session restarts so far.
    pub restarts: u64,
    /// The last stderr lines of a stdio target that is not up (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stderr: Vec<String>,
    /// Open per-client upstream sessions (for stdio: processes).
    pub per_client_sessions: usize,
    /// Traffic management (issue 4): circuit, requests in flight, endpoints, last health check.
    #[serde(flatten)]
    pub traffic: crate::traffic::TrafficStatus,
}

#[derive(Clone)]
pub(crate) struct Runtime {
    pub config: Arc<Config>,
    pub targets: Vec<Arc<TargetRt>>,
    pub by_name: HashMap<Arc<str>, usize>,
    pub prefix: bool,
    /// Rate-limit buckets of `config.rate_limits` (issue 4).
    pub limits: Arc<crate::traffic::limits::RateLimits>,
    /// Unique per target list: merged lists built from another runtime (before or after a
    /// reload) index a different `targets`, so they are never used with this one.
    pub generation: u64,
}

/// Source of [`Runtime::generation`].
static RUNTIME_GENERATION: AtomicU64 = AtomicU64::new(1);

pub(crate) struct ProgressEntry {
    pub route: Route,
    pub original: RawJson,
    /// Notified on each progress notification: restarts the call's timeout.
    pub alive: Arc<tokio::sync::Notify>,
}

pub(crate) struct Inner {
    pub(crate) me: Weak<Inner>,
    pub(crate) runtime: ArcSwap<Runtime>,
    pub(crate) sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    progress: Mutex<HashMap<u64, ProgressEntry>>,
    next_token: AtomicU64,
    merged: [ArcSwapOption<Merged>; 4],
    merged_generation: [AtomicU64; 4],
    merged_fill: [tokio::sync::Mutex<()>; 4],
    /// A coalesced `list_changed` broadcast is scheduled, per list kind.
    list_changed_pending: [std::sync::atomic::AtomicBool; 4],
    /// Level last sent to each shared upstream with `logging/setLevel`.
    pub(crate) shared_log_level: Mutex<HashMap<Arc<str>, usize>>,
    /// Authorization decisions so far.
    pub(crate) decisions: crate::authz::Decisions,
    http: HttpClient,
    epoch: tokio::time::Instant,
    pub(crate) shutdown: CancellationToken,
    /// Draining, in-flight requests and session admission (issue 4).
    pub(crate) drain: crate::drain::DrainState,
    /// Stateless (2026-07-28) clients: held multi-round-trip calls (issue 6).
    pub(crate) modern: crate::modern::State,
    /// OpenTelemetry spans; `None` (tracing not configured) skips every span.
    pub(crate) tracing: Option<crate::trace::Tracing>,
    /// Metrics and the access log (see `observe.rs`).
    pub(crate) telemetry: Arc<mcpgate_telemetry::Telemetry>,
}

fn gateway_client_info() -> RawJson {
    RawJson::from_value(&serde_json::json!({ "name": crate::SERVER_NAME, "version": crate::VERSION }))
}

/// What the gateway can relay to clients, declared to shared upstream sessions.
fn gateway_client_capabilities() -> RawJson {
    RawJson::from_static(r#"{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}"#)
}

impl Gateway {
    /// Builds the gateway and starts connecting to every target in the background.
    pub fn start(config: Config) -> Gateway {
        Gateway::start_traced(config, None)
    }

    /// [`Gateway::start`] with OpenTelemetry spans made by `tracing` (see [`crate::trace`]).
    pub fn start_traced(config: Config, tracing: Option<crate::trace::Tracing>) -> Gateway {
        let http = HttpClient::new();
        let shutdown = CancellationToken::new();
        let telemetry = Arc::new(crate::observe::telemetry(&config));
        let modern = crate::modern::State::new(&config.stateless);
        let runtime = build_runtime(config, &shutdown);
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            runtime: ArcSwap::from_pointee(runtime),
            sessions: RwLock::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            merged: Default::default(),
            merged_generation: Default::default(),
            merged_fill: Default::default(),
            list_changed_pending: Default::default(),
            shared_log_level: Mutex::new(HashMap::new()),
            decisions: Default::default(),
            http,
            epoch: tokio::time::Instant::now(),
            shutdown,
            drain: Default::default(),
            modern,
            tracing,
            telemetry,
        });
        for t in inner.runtime.load().targets.iter() {
            tokio::spawn(supervise(inner.me.clone(), t.clone(), t.ops.stop.clone()));
        }
        tokio::spawn(sweep_sessions(inner.me.clone(), inner.shutdown.child_token()));
        // Traffic management (issue 4): health checks and rate-limit key expiry.
        tokio::spawn(crate::traffic::health::run(
            inner.me.clone(),
            inner.shutdown.child_token(),
        ));
        Gateway { inner }
    }

    /// Metrics and the access log. Other layers report their events through it (e.g.
    /// `gw.telemetry().metrics().auth_failure(reason)`).
    pub fn telemetry(&self) -> &mcpgate_telemetry::Telemetry {
        &self.inner.telemetry
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.runtime.load().config.clone()
    }

    /// Status of every target.
    pub fn target_status(&self) -> Vec<TargetStatus> {
        self.inner
            .runtime
            .load()
            .targets
            .iter()
            .map(|t| {
                let (state, error, pv) = match &*t.main.borrow() {
                    MainState::Up(u) if !u.is_closed() => (
                        "up",
                        None,
                        Some((u.init.protocol_version.clone(), u.conn.generation().as_str())),
                    ),
                    MainState::Up(_) => ("down", Some("connection closed".to_string()), None),
                    MainState::Connecting => ("connecting", None, None),
                    MainState::Down { error } if t.ops.crash_loop() => ("crash_loop", Some(error.clone()), None),
                    MainState::Down { error } => ("down", Some(error.clone()), None),
                };
                let (pv, generation) = pv.map_or((None, None), |(v, g)| (Some(v), Some(g)));
                let stderr = if state == "up" {
                    Vec::new()
                } else {
                    t.ops.stderr_lines()
                };
                TargetStatus {
                    name: t.name().to_string(),
                    transport: t.cfg.transport.kind(),
                    state,
                    error,
                    protocol_version: pv,
                    generation,
                    restarts: t.restarts.load(Ordering::Relaxed),
                    stderr,
                    per_client_sessions: t.ops.per_client_open(),
                    traffic: t.traffic.status(),
                }
            })
            .collect()
    }

    /// Waits until no target is still making its first connection attempt, or `timeout`.
    pub async fn wait_targets_settled(&self, timeout: Duration) {
        let rt = self.inner.runtime.load_full();
        let _ = tokio::time::timeout(timeout, async {
            for t in &rt.targets {
                let mut rx = t.main.subscribe();
                let _ = rx.wait_for(|s| !matches!(s, MainState::Connecting)).await;
            }
        })
        .await;
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.read().len()
    }

    /// Handles `initialize`: creates the session and returns it with the result to send.
    pub fn initialize(
        &self,
        kind: DownstreamKind,
        params: Option<&RawJson>,
        outbound: Box<dyn Outbound>,
    ) -> Result<(Arc<Session>, RawJson), GatewayError> {
        self.initialize_as(kind, params, outbound, None)
    }

    /// [`Gateway::initialize`] for an authenticated caller: the session belongs to
    /// `identity` for its whole life, and every request on it is authorized as that identity.
    pub fn initialize_as(
        &self,
        kind: DownstreamKind,
        params: Option<&RawJson>,
        outbound: Box<dyn Outbound>,
        identity: Option<Arc<mcpgate_auth::Identity>>,
    ) -> Result<(Arc<Session>, RawJson), GatewayError> {
        let params = params.ok_or_else(|| GatewayError::InvalidParams("initialize requires params".into()))?;
        let requested = str_member(params, "protocolVersion")
            .ok_or_else(|| GatewayError::InvalidParams("initialize: missing protocolVersion".into()))?;
        let pv = version::negotiate(&requested);
        // Kept for the session's life, so copied out of the request: a slice would keep the
        // whole receive buffer it points into (8 KiB or more) alive with it.
        let client_info = member(params, "clientInfo").map_or(RawJson::from_static("{}"), owned);
        let caps = member(params, "capabilities").map_or(RawJson::from_static("{}"), owned);
        let id: Arc<str> = Arc::from(new_session_id());
        let session = Arc::new(Session::new(
            id.clone(),
            kind,
            pv,
            client_info,
            caps,
            outbound,
            self.inner.now_ms(),
        ));
        let admit_as = identity.clone();
        if let Some(identity) = identity {
            let _ = session.identity.set(identity);
        }
        {
            let mut sessions = self.inner.sessions.write();
            let listen = &self.inner.runtime.load().config.listen;
            crate::drain::admit(self.is_draining(), listen, &sessions, admit_as.as_deref())?;
            sessions.insert(id, session.clone());
        }
        self.inner.telemetry.metrics().session_started(kind.as_str());
        tracing::debug!(session = %session.id, protocol_version = pv, transport = kind.as_str(), "Session started.");
        Ok((session, self.inner.initialize_result(pv)))
    }

    /// Looks up a live session.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.inner.sessions.read().get(id).cloned()?;
        s.touch(self.inner.now_ms());
        Some(s)
    }

    /// The identity that owns session `id` (`Some(None)`: an anonymous session; `None`: no
    /// such session). Unlike [`Gateway::session`], this does not count as activity, so a
    /// caller who is refused cannot keep someone else's session alive.
    pub fn session_owner(&self, id: &str) -> Option<Option<Arc<mcpgate_auth::Identity>>> {
        let s = self.inner.sessions.read().get(id).cloned()?;
        Some(s.identity().cloned())
    }

    /// Marks a session active (e.g. while its stream is open).
    pub fn touch(&self, session: &Session) {
        session.touch(self.inner.now_ms());
    }

    /// Swaps in the authentication and authorization of `new` (keys, API keys, policies,
    /// `hide_denied`) without touching targets or sessions; every session is told its lists
    /// may have changed. The rest of `new` (listener, targets) is ignored.
    pub fn reload_policies(&self, new: &Config) {
        let old = self.inner.runtime.load_full();
        let mut cfg = (*old.config).clone();
        cfg.auth = new.auth.clone();
        cfg.policy = new.policy.clone();
        let mut rt = (*old).clone();
        rt.config = Arc::new(cfg);
        self.inner.runtime.store(Arc::new(rt));
        new.auth.start();
        tracing::info!(
            rules = new.policy.len(),
            auth = new.auth.is_enabled(),
            "Reloaded authentication and policies."
        );
        self.inner.for_each_session(|s| {
            for m in [
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
                "notifications/resources/list_changed",
            ] {
                s.send(Message::notification(m, None));
            }
        });
    }

    /// Authorization decisions so far: (allowed, denied).
    pub fn authorization_counts(&self) -> (u64, u64) {
        let d = &self.inner.decisions;
        (d.allowed.load(Ordering::Relaxed), d.denied.load(Ordering::Relaxed))
    }

    /// Ends a session: cancels its requests and closes its per-client upstream sessions.
    pub fn close_session(&self, id: &str) -> bool {
        self.inner.close_session(id)
    }

    /// The W3C trace context in a request's HTTP headers (empty when tracing is off).
    pub fn trace_parent(&self, headers: &http::HeaderMap) -> crate::trace::TraceParent {
        match &self.inner.tracing {
            Some(t) => t.extract_headers(headers),
            None => crate::trace::TraceParent::NONE,
        }
    }

    /// [`Gateway::initialize_as`] for the `initialize` request `msg`, inside a server span
    /// when tracing is on (`parent`: the transport's trace context).
    pub fn initialize_traced(
        &self,
        kind: DownstreamKind,
        msg: &Message,
        outbound: Box<dyn Outbound>,
        identity: Option<Arc<mcpgate_auth::Identity>>,
        parent: &crate::trace::TraceParent,
    ) -> Result<(Arc<Session>, RawJson), GatewayError> {
        let observed = self
            .inner
            .telemetry
            .wants_requests()
            .then(|| crate::observe::Started::initialize(msg));
        let span = self.inner.tracing.as_ref().map(|t| t.server_span(msg, None, parent));
        if span.is_none() && observed.is_none() {
            return self.initialize_as(kind, msg.params.as_ref(), outbound, identity);
        }
        let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
        let outcome = self.initialize_as(kind, msg.params.as_ref(), outbound, identity);
        let response = match &outcome {
            Ok((_, result)) => Message::response(id, result.clone()),
            Err(e) => e.to_response(id),
        };
        if let Some(span) = span {
            if let Ok((session, _)) = &outcome {
                span.set_session(&session.id, session.protocol_version, kind.as_str());
            }
            span.end(&response);
        }
        if let Some(started) = observed {
            let (session, how) = match &outcome {
                Ok((s, _)) => (Some(&**s), (mcpgate_telemetry::Outcome::Ok, None)),
                Err(e) => (None, (e.outcome(), Some(e.code().0))),
            };
            crate::observe::report(&self.inner.telemetry, kind, session, &started, None, how, &response);
        }
        outcome
    }

    /// Handles one client message; returns the response for a request.
    pub async fn handle(&self, session: &Arc<Session>, msg: Message, sink: Option<RelatedSink>) -> Option<Message> {
        self.handle_traced(session, msg, sink, &crate::trace::TraceParent::NONE)
            .await
    }

    /// [`Gateway::handle`] for a message whose transport carried trace context (`parent`,
    /// from [`Gateway::trace_parent`]).
    pub async fn handle_traced(
        &self,
        session: &Arc<Session>,
        msg: Message,
        sink: Option<RelatedSink>,
        parent: &crate::trace::TraceParent,
    ) -> Option<Message> {
        session.touch(self.inner.now_ms());
        match msg.kind() {
            MessageKind::Request => {
                let _in_flight = self.inner.drain.request_started();
                let id = msg.id.clone().expect("requests have ids");
                let span = self.inner.tracing.as_ref().map(|t| {
                    let s = (&*session.id, session.protocol_version, session.kind.as_str());
                    t.server_span(&msg, Some(s), parent)
                });
                // Metrics and the access log: what the request was, noted while it is routed.
                let observed = self
                    .inner
                    .telemetry
                    .wants_requests()
                    .then(|| crate::observe::Started::now(&msg));
                // Routing is a large future (tens of KiB of state across its awaits): it lives in
                // one heap allocation made here, so the futures around it (this one, the
                // transport's task) stay small and are cheap to move.
                let routed = Box::pin(self.inner.request(session, msg, sink));
                let (result, notes) = crate::observe::with_notes(observed.is_some(), async {
                    match &span {
                        None => routed.await,
                        Some(s) => {
                            use opentelemetry::context::FutureExt as _;
                            let cx = s.context().clone();
                            routed.with_context(cx).await
                        }
                    }
                })
                .await;
                let outcome = observed.as_ref().map(|o| crate::observe::outcome(&o.method, &result));
                let response = match result {
                    Ok(m) => m,
                    Err(e) => {
                        if !matches!(
                            e,
                            GatewayError::NotFound(_)
                                | GatewayError::InvalidParams(_)
                                | GatewayError::MethodNotFound(_)
                        ) {
                            tracing::debug!(session = %session.id, error = %e, "Request failed.");
                        }
                        e.to_response(id)
                    }
                };
                if let Some(s) = span {
                    s.end(&response);
                }
                if let (Some(started), Some(outcome)) = (observed, outcome) {
                    let t = &self.inner.telemetry;
                    crate::observe::report(t, session.kind, Some(session), &started, notes, outcome, &response);
                }
                Some(response)
            }
            MessageKind::Notification => {
                self.inner.notification(session, msg).await;
                None
            }
            MessageKind::Response | MessageKind::Error => {
                self.inner.client_response(session, msg).await;
                None
            }
        }
    }

    /// Stops supervisors, ends every session and closes every upstream (per-client ones
    /// too), returning once every stdio process group is gone.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let ids: Vec<Arc<str>> = self.inner.sessions.read().keys().cloned().collect();
        let mut closes: Vec<Connection> = Vec::new();
        for id in ids {
            if let Some(s) = self.inner.sessions.read().get(&id) {
                let st = s.state.lock();
                closes.extend(st.upstreams.values().filter_map(|c| c.get().map(|u| u.conn.clone())));
            }
            self.inner.close_session(&id);
        }
        let rt = self.inner.runtime.load_full();
        closes.extend(rt.targets.iter().filter_map(|t| match &*t.main.borrow() {
            MainState::Up(u) => Some(u.conn.clone()),
            _ => None,
        }));
        futures_util::future::join_all(closes.iter().map(|c| c.close())).await;
    }
}

pub(crate) fn build_runtime(config: Config, shutdown: &CancellationToken) -> Runtime {
    let targets: Vec<Arc<TargetRt>> = config
        .targets
        .iter()
        .cloned()
        .map(|t| {
            let ops = crate::supervision::TargetOps::new(&config.supervision, shutdown.child_token());
            Arc::new(TargetRt::new(t, ops))
        })
        .collect();
    let by_name = targets.iter().enumerate().map(|(i, t)| (t.name().clone(), i)).collect();
    let prefix = match config.naming.prefix {
        PrefixMode::Always => true,
        PrefixMode::Never => false,
        PrefixMode::Auto => targets.len() >= 2,
    };
    Runtime {
        generation: RUNTIME_GENERATION.fetch_add(1, Ordering::Relaxed),
        limits: Arc::new(crate::traffic::limits::RateLimits::new(&config.rate_limits)),
        config: Arc::new(config),
        targets,
        by_name,
        prefix,
    }
}

/// `raw` in a buffer of its own.
fn owned(raw: RawJson) -> RawJson {
    RawJson::parse(bytes::Bytes::copy_from_slice(raw.as_bytes())).unwrap_or(raw)
}

fn new_session_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Keeps a target's main upstream session alive, reconnecting with backoff.
pub(crate) async fn supervise(inner: Weak<Inner>, t: Arc<TargetRt>, shutdown: CancellationToken) {
    let mut first = true;
    if let Some(gw) = inner.upgrade() {
        gw.telemetry.metrics().target_up(t.name(), false);
    }
    loop {
        let Some(gw) = inner.upgrade() else { return };
        if !first {
            t.main.send_replace(MainState::Connecting);
        }
        let attempt = tokio::select! {
            r = gw.connect(&t, None) => r,
            _ = shutdown.cancelled() => return,
        };
        match attempt {
            Ok(up) => {
                tracing::info!(
                    target = %t.name(),
                    transport = t.cfg.transport.kind(),
                    protocol_version = %up.init.protocol_version,
                    "Connected to target."
                );
                t.invalidate(&ListKind::ALL);
                t.main.send_replace(MainState::Up(up.clone()));
                if t.ops.crash_loop() {
                    gw.telemetry.metrics().crash_loop(t.name(), false);
                }
                gw.telemetry.metrics().target_up(t.name(), true);
                gw.membership_changed(!first || t.ops.announce_first.swap(false, Ordering::Relaxed));
                first = false;
                let since = tokio::time::Instant::now();
                drop(gw);
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    _ = up.conn.closed() => {}
                }
                let Some(gw) = inner.upgrade() else { return };
                tracing::warn!(target = %t.name(), "Target connection closed; reconnecting.");
                t.restarts.fetch_add(1, Ordering::Relaxed);
                t.invalidate(&ListKind::ALL);
                t.main.send_replace(MainState::Down {
                    error: "connection closed; reconnecting".into(),
                });
                gw.telemetry.metrics().target_up(t.name(), false);
                gw.telemetry.metrics().target_restarted(t.name());
                gw.membership_changed(true);
                t.ops.was_up_for(since.elapsed());
            }
            Err(e) => {
                tracing::warn!(target = %t.name(), error = %e, "Cannot connect to target.");
                t.main.send_replace(MainState::Down { error: e.to_string() });
                if first {
                    gw.membership_changed(false);
                }
                first = false;
            }
        }
        let (backoff, entered_crash_loop) = t.ops.failed();
        if entered_crash_loop {
            if let Some(g) = inner.upgrade() {
                g.telemetry.metrics().crash_loop(t.name(), true);
            }
            tracing::error!(
                target = %t.name(),
                retry_in_ms = backoff.as_millis() as u64,
                stderr = ?t.ops.stderr_lines(),
                "Target is in a crash loop; retrying less often."
            );
        } else {
            tracing::info!(target = %t.name(), retry_in_ms = backoff.as_millis() as u64, "Reconnecting to target after a delay.");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Closes sessions idle for longer than the configured timeout.
async fn sweep_sessions(inner: Weak<Inner>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            _ = shutdown.cancelled() => return,
        }
        let Some(gw) = inner.upgrade() else { return };
        let idle = gw.runtime.load().config.listen.session_idle_timeout.as_millis() as u64;
        let now = gw.now_ms();
        let expired: Vec<Arc<str>> = gw
            .sessions
            .read()
            .values()
            .filter(|s| now.saturating_sub(s.last_active_ms()) > idle && s.state.lock().in_flight.is_empty())
            .map(|s| s.id.clone())
            .collect();
        for id in expired {
            tracing::debug!(session = %id, "Session expired after inactivity.");
            gw.close_session(&id);
        }
    }
}

impl Inner {
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn initialize_result(&self, pv: &str) -> RawJson {
        let rt = self.runtime.load();
        let mut instructions = String::new();
        for t in &rt.targets {
            if let MainState::Up(u) = &*t.main.borrow()
                && let Some(text) = u.init.instructions.as_deref().filter(|s| !s.trim().is_empty())
            {
                if rt.targets.len() > 1 {
                    instructions.push_str(&format!("## {}\n{}\n\n", t.name(), text.trim()));
                } else {
                    instructions.push_str(text);
                }
            }
        }
        let mut result = serde_json::json!({
            "protocolVersion": pv,
            "capabilities": {
                "tools": { "listChanged": true },
                "prompts": { "listChanged": true },
                "resources": { "subscribe": true, "listChanged": true },
                "logging": {},
                "completions": {},
            },
            "serverInfo": { "name": crate::SERVER_NAME, "title": "mcpgate MCP gateway", "version": crate::VERSION },
        });
        let trimmed = instructions.trim_end();
        if !trimmed.is_empty() {
            result["instructions"] = serde_json::Value::String(trimmed.to_owned());
        }
        RawJson::from_value(&result)
    }

    /// Opens an upstream session to `t` (the main one when `owner` is `None`).
    pub(crate) async fn connect(
        &self,
        t: &Arc<TargetRt>,
        owner: Option<&Arc<Session>>,
    ) -> Result<Upstream, GatewayError> {
        self.connect_at(t, owner, None).await
    }

    /// [`Inner::connect`] to endpoint `at` of the target, or to the one load balancing picks.
    pub(crate) async fn connect_at(
        &self,
        t: &Arc<TargetRt>,
        owner: Option<&Arc<Session>>,
        at: Option<usize>,
    ) -> Result<Upstream, GatewayError> {
        if t.ops.stop.is_cancelled() {
            return Err(GatewayError::Unavailable {
                target: t.name().to_string(),
                reason: "the target was removed or replaced by a config reload".into(),
            });
        }
        let routes = Routes::new(t.name().clone(), owner.map(Arc::downgrade));
        if owner.is_some() {
            let slot = t.ops.reserve_per_client(t.cfg.max_processes).ok_or_else(|| {
                self.telemetry.metrics().limit_rejected("max_processes");
                GatewayError::Unavailable {
                    target: t.name().to_string(),
                    reason: format!(
                        "the limit of {} per-client upstream sessions (max_processes) is reached; retry later",
                        t.cfg.max_processes
                    ),
                }
            })?;
            *routes.slot.lock() = Some(slot);
        }
        let handler = Arc::new(Handler {
            gw: self.me.clone(),
            routes: routes.clone(),
        });
        let (client_info, capabilities) = match owner {
            Some(s) => (s.client_info.clone(), s.client_capabilities.clone()),
            None => (gateway_client_info(), gateway_client_capabilities()),
        };
        let opts = ConnectOptions {
            target: t.name().clone(),
            client_info,
            capabilities,
            protocol_version: version::LATEST,
            connect_timeout: t.cfg.connect_timeout,
            max_message_bytes: t.cfg.max_message_bytes,
            http: self.http.clone(),
            stderr: Some(t.ops.stderr.clone()),
            generation: t.upstream_generation(),
            tool_headers: t.tool_headers.clone(),
        };
        // Traffic management (issue 4): the endpoint (replica) this upstream session lives on.
        let endpoint = at.unwrap_or_else(|| t.traffic.pick());
        let spec = &t.traffic.endpoints[endpoint].spec;
        // The client's own token goes upstream only to targets that opt in.
        let forwarded = owner
            .filter(|_| t.cfg.forward_authorization)
            .and_then(|s| crate::authz::with_bearer(spec, s.identity()?.bearer.as_deref()?));
        let (conn, init) = match Connection::connect(forwarded.as_ref().unwrap_or(spec), opts, handler).await {
            Ok(c) => c,
            Err(e) => {
                t.remember_generation(None);
                let e = GatewayError::from_upstream(t.name(), e);
                // With replicas, a replica that cannot be reached is skipped by the next picks.
                // A single endpoint's reachability is the supervisor's business (down state,
                // backoff): counting it here would keep a recovered target out for a cool-down.
                if t.traffic.endpoints.len() > 1
                    && crate::traffic::health_signal(&e) == Some(false)
                    && let Some(tr) = t.traffic.record_failure(endpoint)
                {
                    self.circuit_transition(t, endpoint, tr);
                }
                return Err(e);
            }
        };
        t.remember_generation(Some(conn.generation()));
        self.telemetry.metrics().upstream_session_opened(t.name());
        let up = Upstream {
            conn,
            init: Arc::new(init),
            routes: routes.clone(),
            endpoint,
        };
        routes.set_current(Some(up.clone()));
        if let Some(s) = owner {
            // Carry the session's log level over to its new upstream session.
            let level = s.state.lock().log_level;
            if let Some(level) = level.filter(|_| has_capability(&up.init.capabilities, "logging")) {
                let params = RawJson::from_value(&serde_json::json!({ "level": LOG_LEVELS[level] }));
                let _ = tokio::time::timeout(t.cfg.request_timeout, up.conn.request("logging/setLevel", Some(params)))
                    .await;
            }
        }
        Ok(up)
    }

    pub(crate) fn upstream_closed(&self, routes: &Arc<Routes>, error: Option<&UpstreamError>) {
        self.telemetry.metrics().upstream_session_closed(&routes.target);
        drop(routes.slot.lock().take());
        if let Some(owner) = routes.owner.as_ref().and_then(Weak::upgrade) {
            tracing::debug!(target = %routes.target, session = %owner.id, error = ?error.map(|e| e.to_string()), "Per-client upstream session closed.");
            let mut st = owner.state.lock();
            st.upstreams
                .retain(|_, cell| cell.get().is_none_or(|u| !Arc::ptr_eq(&u.routes, routes)));
        }
    }

    pub(crate) fn progress_route(&self, token: u64) -> Option<ProgressEntry> {
        let map = self.progress.lock();
        map.get(&token).map(|e| ProgressEntry {
            route: e.route.clone(),
            original: e.original.clone(),
            alive: e.alive.clone(),
        })
    }

    /// Does target `name` serve every client from one upstream session?
    pub(crate) fn target_is_shared(&self, name: &str) -> bool {
        let rt = self.runtime.load();
        rt.by_name
            .get(name)
            .is_some_and(|&i| rt.targets[i].cfg.session == SessionMode::Shared)
    }

    pub(crate) fn for_each_session(&self, mut f: impl FnMut(&Arc<Session>)) {
        let sessions: Vec<Arc<Session>> = self.sessions.read().values().cloned().collect();
        for s in &sessions {
            f(s);
        }
    }

    /// A target's list changed: drop caches now and tell the clients concerned.
    ///
    /// A change announced on a client's own upstream session (`owner`) may concern that
    /// session alone (servers register tools per session, e.g. after seeing the client's
    /// capabilities): only that client is told. A change announced on the gateway's discovery
    /// session concerns everyone; servers announce a global change on every session they
    /// hold, so those broadcasts are coalesced into one per list within a short window.
    pub(crate) fn list_changed(&self, target: &str, method: &str, owner: Option<Arc<Session>>) {
        let Some(kinds) = ListKind::from_list_changed(method) else {
            return;
        };
        let rt = self.runtime.load();
        if let Some(&i) = rt.by_name.get(target) {
            rt.targets[i].invalidate(kinds);
        }
        for k in kinds {
            self.invalidate_merged(*k);
        }
        if let Some(owner) = owner {
            owner.send(Message::notification(method, None));
            return;
        }
        let slot = kinds[0] as usize;
        if self.list_changed_pending[slot].swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        let method = method.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(LIST_CHANGED_COALESCE).await;
            let Some(gw) = me.upgrade() else { return };
            gw.list_changed_pending[slot].store(false, Ordering::Release);
            gw.for_each_session(|s| {
                s.send(Message::notification(&method, None));
            });
        });
    }

    /// A target came up or went down: drop merged lists; tell clients when asked to.
    pub(crate) fn membership_changed(&self, notify: bool) {
        for k in ListKind::ALL {
            self.invalidate_merged(k);
        }
        if notify {
            self.for_each_session(|s| {
                for m in [
                    "notifications/tools/list_changed",
                    "notifications/prompts/list_changed",
                    "notifications/resources/list_changed",
                ] {
                    s.send(Message::notification(m, None));
                }
            });
        }
    }

    fn invalidate_merged(&self, kind: ListKind) {
        self.merged_generation[kind as usize].fetch_add(1, Ordering::AcqRel);
        self.merged[kind as usize].store(None);
    }

    /// The merged list of `kind`, built from the targets' caches when needed.
    ///
    /// Owners in the result index `rt.targets`: the list is always built from `rt`, the
    /// caller's runtime, even when a reload swapped in another one meanwhile (such a list is
    /// used once and not cached).
    pub(crate) async fn merged(&self, kind: ListKind, rt: &Arc<Runtime>) -> Arc<Merged> {
        let i = kind as usize;
        if let Some(m) = self.merged[i].load_full()
            && m.runtime == rt.generation
        {
            return m;
        }
        let _fill = self.merged_fill[i].lock().await;
        if let Some(m) = self.merged[i].load_full()
            && m.runtime == rt.generation
        {
            return m;
        }
        let generation = self.merged_generation[i].load(Ordering::Acquire);
        let fetches = rt.targets.iter().map(|t| {
            let wait = t.cfg.connect_timeout.min(Duration::from_secs(10));
            let tracing = self.tracing.as_ref();
            async move {
                // A target whose circuit is open is left out (issue 4); clients are told
                // when it leaves and when it returns.
                if let Some(retry_after) = t.traffic.all_open() {
                    return Err(GatewayError::CircuitOpen {
                        target: t.name().to_string(),
                        retry_after,
                    });
                }
                t.list(kind, wait, tracing).await
            }
        });
        let results = futures_util::future::join_all(fetches).await;
        let mut complete = true;
        let per_target = results
            .into_iter()
            .zip(rt.targets.iter())
            .map(|(r, t)| match r {
                Ok(items) => Some(items),
                Err(e) => {
                    if !matches!(&*t.main.borrow(), MainState::Down { .. })
                        && !matches!(e, GatewayError::CircuitOpen { .. })
                    {
                        complete = false;
                    }
                    tracing::warn!(target = %t.name(), list = kind.method(), error = %e, "Left a target out of a merged list.");
                    self.telemetry.metrics().list_merge_failed(kind.method(), t.name());
                    None
                }
            })
            .collect();
        let mut merged = lists::merge(kind, &rt.targets, per_target, &rt.config.naming.separator, rt.prefix);
        merged.runtime = rt.generation;
        self.note_xheader_rejections(rt, &merged);
        let merged = Arc::new(merged);
        let current = self.runtime.load().generation == rt.generation;
        if complete && current && self.merged_generation[i].load(Ordering::Acquire) == generation {
            self.merged[i].store(Some(merged.clone()));
        }
        merged
    }

    pub(crate) fn close_session(&self, id: &str) -> bool {
        let Some(session) = self.sessions.write().remove(id) else {
            return false;
        };
        self.telemetry.metrics().session_ended(session.kind.as_str());
        session.closed.cancel();
        let (upstreams, pending, subscriptions) = {
            let mut st = session.state.lock();
            for f in st.in_flight.values() {
                f.cancel.cancel();
            }
            (
                std::mem::take(&mut st.upstreams),
                std::mem::take(&mut st.server_requests),
                std::mem::take(&mut st.subscriptions),
            )
        };
        self.progress
            .lock()
            .retain(|_, e| e.route.session.upgrade().is_some_and(|s| !Arc::ptr_eq(&s, &session)));
        let rt = self.runtime.load_full();
        let me = self.me.clone();
        tokio::spawn(async move {
            for (_, p) in pending {
                // The gateway's own questions end with the session (their senders drop).
                let crate::session::ReplyTo::Upstream { upstream, upstream_id } = p.reply_to else {
                    continue;
                };
                let reply = Message::error(
                    upstream_id,
                    ErrorCode::INTERNAL_ERROR,
                    "mcpgate: the client session ended",
                    None,
                );
                if let Some(span) = p.trace {
                    span.end(&reply);
                }
                let _ = upstream.conn.respond(reply).await;
            }
            for (_, cell) in upstreams {
                if let Some(up) = cell.get() {
                    up.conn.close().await;
                }
            }
            // Shared upstreams: drop subscriptions nobody else holds.
            if let Some(gw) = me.upgrade() {
                for uri in subscriptions {
                    let still = gw.sessions.read().values().any(|s| s.is_subscribed(&uri));
                    if still {
                        continue;
                    }
                    if let Ok(owner) = gw.resource_owner(&rt, &uri).await {
                        let t = &rt.targets[owner.target];
                        if t.cfg.session == SessionMode::Shared
                            && let Ok(up) = t.main_upstream(Duration::ZERO).await
                        {
                            let params = RawJson::from_value(&serde_json::json!({ "uri": uri }));
                            let _ = up.conn.request("resources/unsubscribe", Some(params)).await;
                        }
                    }
                }
            }
        });
        tracing::debug!(session = %id, "Session closed.");
        true
    }

    // ---- client → gateway ----

    async fn request(
        &self,
        session: &Arc<Session>,
        msg: Message,
        sink: Option<RelatedSink>,
    ) -> Result<Message, GatewayError> {
        let id = msg.id.clone().expect("request");
        let rt = self.runtime.load_full();
        self.admit_request(&rt, session, msg.method())?;
        match msg.method() {
            "ping" => Ok(Message::response(id, RawJson::from_static("{}"))),
            "initialize" => Err(GatewayError::InvalidParams("session is already initialized".into())),
            "tools/list" => self.list(&rt, session, ListKind::Tools, id, msg.params.as_ref()).await,
            "prompts/list" => {
                self.list(&rt, session, ListKind::Prompts, id, msg.params.as_ref())
                    .await
            }
            "resources/list" => {
                self.list(&rt, session, ListKind::Resources, id, msg.params.as_ref())
                    .await
            }
            "resources/templates/list" => {
                self.list(&rt, session, ListKind::Templates, id, msg.params.as_ref())
                    .await
            }
            "tools/call" => self.call_named(&rt, session, msg, sink, ListKind::Tools).await,
            "prompts/get" => self.call_named(&rt, session, msg, sink, ListKind::Prompts).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.call_resource(&rt, session, msg, sink).await
            }
            "completion/complete" => self.complete(&rt, session, msg, sink).await,
            "logging/setLevel" => self.set_level(&rt, session, msg).await,
            _ => self.passthrough(&rt, session, msg, sink).await,
        }
    }

    async fn list(
        &self,
        rt: &Arc<Runtime>,
        session: &Arc<Session>,
        kind: ListKind,
        id: RawJson,
        params: Option<&RawJson>,
    ) -> Result<Message, GatewayError> {
        let merged = self.merged(kind, rt).await;
        let merged = session
            .visible
            .view(kind, &merged, rt, session.identity().map(|i| &**i));
        let page_size = self.runtime.load().config.listen.page_size;
        let cursor = match params.and_then(|p| member(p, "cursor")).filter(|c| !c.is_null()) {
            Some(c) => Some(
                c.as_json_str()
                    .ok_or_else(|| GatewayError::InvalidParams("Invalid cursor: must be a string".into()))?,
            ),
            None => None,
        };
        let offset = match &cursor {
            Some(c) => lists::decode_cursor(kind, c)
                .ok_or_else(|| GatewayError::InvalidParams(format!("Invalid cursor: {c}")))?,
            None => 0,
        };
        if page_size == 0 || (offset == 0 && merged.items.len() <= page_size) {
            if offset != 0 {
                return Ok(Message::response(id, lists::page_result(kind, &[], None)));
            }
            return Ok(Message::response(id, merged.full_result.clone()));
        }
        let start = offset.min(merged.items.len());
        let end = (start + page_size).min(merged.items.len());
        let next = (end < merged.items.len()).then(|| lists::encode_cursor(kind, end));
        Ok(Message::response(
            id,
            lists::page_result(kind, &merged.items[start..end], next),
        ))
    }

    /// Finds the owner of an exposed tool or prompt name.
    pub(crate) async fn named_owner(&self, rt: &Arc<Runtime>, kind: ListKind, name: &str) -> Option<Owner> {
        let merged = self.merged(kind, rt).await;
        merged.index.get(name).cloned()
    }

    async fn call_named(
        &self,
        rt: &Arc<Runtime>,
        session: &Arc<Session>,
        msg: Message,
        sink: Option<RelatedSink>,
        kind: ListKind,
    ) -> Result<Message, GatewayError> {
        let what = if kind == ListKind::Tools { "tool" } else { "prompt" };
        let params = msg
            .params
            .as_ref()
            .ok_or_else(|| GatewayError::InvalidParams(format!("missing params for {}", msg.method())))?;
        let mut edit = open_object(params, "params")?;
        let name = edit
            .get("name")
            .and_then(RawJson::as_json_str)
            .ok_or_else(|| GatewayError::InvalidParams(format!("missing {what} name")))?;
        let Some(owner) = self.named_owner(rt, kind, &name).await else {
            return Err(unknown_name(rt, what, &name));
        };
        let pkind = if kind == ListKind::Tools {
            mcpgate_auth::Kind::Tool
        } else {
            mcpgate_auth::Kind::Prompt
        };
        let args = edit.get("arguments").cloned();
        crate::observe::note_call(&rt.targets[owner.target], &owner.name, args.as_ref());
        if !self.authorize(
            rt,
            session,
            pkind,
            msg.method(),
            owner.target,
            &owner.name,
            args.as_ref(),
        ) {
            // Exactly what an unknown name gets: a denial does not reveal that the name exists.
            return Err(GatewayError::denied(GatewayError::NotFound(format!(
                "Unknown {what}: {name}"
            ))));
        }
        let t = rt.targets[owner.target].clone();
        if &*owner.name != name.as_str() {
            edit.set("name", RawJson::string(&owner.name));
        }
        let resp = self.forward(session, &t, msg, Some(edit), sink).await?;
        // A task-augmented call (2025-11-25) answers with a task: later tasks/* requests
        // naming it must reach the same target.
        if let Some(task_id) = resp
            .result
            .as_ref()
            .and_then(|r| member(r, "task"))
            .and_then(|t| str_member(&t, "taskId"))
        {
            session.state.lock().tasks.insert(task_id.to_string(), owner.target);
        }
        Ok(resp)
    }

    /// The target that serves `uri`: a listed resource, a matching template, or the only
    /// target with resources.
    pub(crate) async fn resource_owner(&self, rt: &Arc<Runtime>, uri: &str) -> Result<Owner, GatewayError> {
        let resources = self.merged(ListKind::Resources, rt).await;
        if let Some(o) = resources.index.get(uri) {
            return Ok(o.clone());
        }
        let templates = self.merged(ListKind::Templates, rt).await;
        if let Some((ti, _)) = templates
            .templates
            .iter()
            .find(|(_, tpl)| lists::template_matches(tpl, uri))
        {
            return Ok(Owner {
                target: *ti,
                name: Arc::from(uri),
            });
        }
        let with_resources: Vec<usize> = rt
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| match &*t.main.borrow() {
                MainState::Up(u) => has_capability(&u.init.capabilities, "resources"),
                _ => false,
            })
            .map(|(i, _)| i)
            .collect();
        match with_resources.as_slice() {
            [only] => Ok(Owner {
                target: *only,
                name: Arc::from(uri),
            }),
            _ => Err(GatewayError::ResourceNotFound(uri.to_owned())),
        }
    }

    /// Targets other than `primary` that list `uri` or a template matching it.
    async fn other_owners(&self, rt: &Arc<Runtime>, uri: &str, primary: usize) -> Vec<usize> {
        let resources = self.merged(ListKind::Resources, rt).await;
        let templates = self.merged(ListKind::Templates, rt).await;
        let mut out: Vec<usize> = resources.also.get(uri).cloned().unwrap_or_default();
        for (ti, tpl) in &templates.templates {
            if lists::template_matches(tpl, uri) {
                out.push(*ti);
            }
        }
        out.sort_unstable();
        out.dedup();
        out.retain(|t| *t != primary);
        out
    }

    async fn call_resource(
        &self,
        rt: &Arc<Runtime>,
        session: &Arc<Session>,
        msg: Message,
        sink: Option<RelatedSink>,
    ) -> Result<Message, GatewayError> {
        let uri = msg
            .params
            .as_ref()
            .and_then(|p| str_member(p, "uri"))
            .ok_or_else(|| GatewayError::InvalidParams(format!("{}: missing uri", msg.method())))?;
        let owner = self.resource_owner(rt, &uri).await?;
        crate::observe::note_resource(&rt.targets[owner.target], &uri, None);
        if !self.authorize(
            rt,
            session,
            mcpgate_auth::Kind::Resource,
            msg.method(),
            owner.target,
            &uri,
            None,
        ) {
            return Err(GatewayError::denied(GatewayError::ResourceNotFound(uri.to_string())));
        }
        let t = rt.targets[owner.target].clone();
        let method = msg.method().to_owned();
        if method != "resources/read" {
            // Several targets may serve the same URI: (un)subscribe with every one of them.
            for ti in self.other_owners(rt, &uri, owner.target).await {
                let other = rt.targets[ti].clone();
                let Ok(up) = self.upstream_for(&other, session).await else {
                    continue;
                };
                let timeout = other.cfg.request_timeout;
                let req = up.conn.request(&method, msg.params.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(timeout, req).await;
                });
            }
        }
        let resp = self.forward(session, &t, msg, None, sink).await?;
        if resp.error.is_none() {
            match method.as_str() {
                "resources/subscribe" => {
                    session.state.lock().subscriptions.insert(uri.to_string());
                }
                "resources/unsubscribe" => {
                    session.state.lock().subscriptions.remove(uri.as_str());
                }
                _ => {}
            }
        }
        Ok(resp)
    }

    async fn complete(
        &self,
        rt: &Arc<Runtime>,
        session: &Arc<Session>,
        msg: Message,
        sink: Option<RelatedSink>,
    ) -> Result<Message, GatewayError> {
        let params = msg
            .params
            .as_ref()
            .ok_or_else(|| GatewayError::InvalidParams("completion/complete: missing params".into()))?;
        let mut edit = open_object(params, "params")?;
        let reference = edit
            .get("ref")
            .cloned()
            .ok_or_else(|| GatewayError::InvalidParams("completion/complete: missing ref".into()))?;
        let mut ref_edit = open_object(&reference, "ref")?;
        let kind = ref_edit
            .get("type")
            .and_then(RawJson::as_json_str)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let t = match kind.as_str() {
            "ref/prompt" => {
                let name = ref_edit
                    .get("name")
                    .and_then(RawJson::as_json_str)
                    .ok_or_else(|| GatewayError::InvalidParams("ref/prompt needs a name".into()))?;
                let owner = self
                    .named_owner(rt, ListKind::Prompts, &name)
                    .await
                    .ok_or_else(|| GatewayError::NotFound(format!("Unknown prompt: {name}")))?;
                crate::observe::note_call(&rt.targets[owner.target], &owner.name, edit.get("argument"));
                if !self.authorize(
                    rt,
                    session,
                    mcpgate_auth::Kind::Prompt,
                    msg.method(),
                    owner.target,
                    &owner.name,
                    None,
                ) {
                    return Err(GatewayError::denied(GatewayError::NotFound(format!(
                        "Unknown prompt: {name}"
                    ))));
                }
                ref_edit.set("name", RawJson::string(&owner.name));
                edit.set("ref", ref_edit.to_raw());
                rt.targets[owner.target].clone()
            }
            "ref/resource" => {
                let uri = ref_edit
                    .get("uri")
                    .and_then(RawJson::as_json_str)
                    .ok_or_else(|| GatewayError::InvalidParams("ref/resource needs a uri".into()))?;
                let templates = self.merged(ListKind::Templates, rt).await;
                let owner = match templates.index.get(uri.as_str()) {
                    Some(o) => o.clone(),
                    None => self.resource_owner(rt, &uri).await?,
                };
                crate::observe::note_resource(&rt.targets[owner.target], &uri, edit.get("argument"));
                if !self.authorize(
                    rt,
                    session,
                    mcpgate_auth::Kind::Resource,
                    msg.method(),
                    owner.target,
                    &uri,
                    None,
                ) {
                    return Err(GatewayError::denied(GatewayError::ResourceNotFound(uri.to_string())));
                }
                rt.targets[owner.target].clone()
            }
            other => {
                return Err(GatewayError::InvalidParams(format!(
                    "unknown completion ref type `{other}`"
                )));
            }
        };
        let up = self.upstream_for(&t, session).await?;
        if !has_capability(&up.init.capabilities, "completions") {
            return Ok(Message::response(
                msg.id.clone().expect("request"),
                RawJson::from_static(r#"{"completion":{"values":[],"hasMore":false}}"#),
            ));
        }
        self.forward(session, &t, msg, Some(edit), sink).await
    }

    async fn set_level(
        &self,
        rt: &Arc<Runtime>,
        session: &Arc<Session>,
        msg: Message,
    ) -> Result<Message, GatewayError> {
        let id = msg.id.clone().expect("request");
        let level = msg
            .params
            .as_ref()
            .and_then(|p| str_member(p, "level"))
            .ok_or_else(|| GatewayError::InvalidParams("logging/setLevel: missing level".into()))?;
        let Some(rank) = LOG_LEVELS.iter().position(|l| *l == level.as_str()) else {
            return Err(GatewayError::InvalidParams(format!("unknown log level `{level}`")));
        };
        let per_client: Vec<Upstream> = {
            let mut st = session.state.lock();
            st.log_level = Some(rank);
            st.upstreams.values().filter_map(|c| c.get().cloned()).collect()
        };
        let params = RawJson::from_value(&serde_json::json!({ "level": level.as_str() }));
        let mut sends = Vec::new();
        for up in per_client
            .iter()
            .filter(|u| has_capability(&u.init.capabilities, "logging"))
        {
            sends.push(up.conn.request("logging/setLevel", Some(params.clone())));
        }
        // Shared upstreams log at the most verbose level any session asked for; the gateway
        // filters per session.
        let min = self
            .sessions
            .read()
            .values()
            .filter_map(|s| s.state.lock().log_level)
            .min()
            .unwrap_or(rank);
        for t in rt.targets.iter().filter(|t| t.cfg.session == SessionMode::Shared) {
            let Ok(up) = t.main_upstream(Duration::ZERO).await else {
                continue;
            };
            if !has_capability(&up.init.capabilities, "logging") {
                continue;
            }
            let mut levels = self.shared_log_level.lock();
            if levels.get(t.name()) == Some(&min) {
                continue;
            }
            levels.insert(t.name().clone(), min);
            let p = RawJson::from_value(&serde_json::json!({ "level": LOG_LEVELS[min] }));
            sends.push(up.conn.request("logging/setLevel", Some(p)));
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), futures_util::future::join_all(sends)).await;
        Ok(Message::response(id, RawJson::from_static("{}")))
    }

    /// Methods the gateway does not interpret: routed by a prefixed `name` parameter, or to
    /// the only target.
    async fn passthrough(
        &self,
        rt: &Arc<Runtime>,
        session: &Arc<Session>,
        msg: Message,
        sink: Option<RelatedSink>,
    ) -> Result<Message, GatewayError> {
        let task_id = msg.params.as_ref().and_then(|p| str_member(p, "taskId"));
        let own_task = task_id
            .as_ref()
            .and_then(|id| session.state.lock().tasks.get(id.as_str()).copied());
        // A task this session created came from a call that was authorized; anything else is
        // a method of its own, authorized as `target:method`.
        let method_allowed = |i: usize| {
            self.authorize(
                rt,
                session,
                mcpgate_auth::Kind::Method,
                msg.method(),
                i,
                msg.method(),
                None,
            )
        };
        if rt.targets.len() == 1 {
            if own_task.is_none() && !method_allowed(0) {
                return Err(GatewayError::denied(GatewayError::MethodNotFound(
                    msg.method().to_owned(),
                )));
            }
            let t = rt.targets[0].clone();
            return self.forward(session, &t, msg, None, sink).await;
        }
        if let Some(task_id) = task_id {
            if let Some(t) = own_task.and_then(|i| rt.targets.get(i).cloned()) {
                return self.forward(session, &t, msg, None, sink).await;
            }
            return Err(GatewayError::InvalidParams(format!("Unknown task: {task_id}")));
        }
        if let Some(name) = msg.params.as_ref().and_then(|p| str_member(p, "name")) {
            let sep = &rt.config.naming.separator;
            if let Some((target, rest)) = name.split_once(sep.as_str())
                && let Some(&i) = rt.by_name.get(target)
            {
                if !method_allowed(i) {
                    return Err(GatewayError::denied(GatewayError::MethodNotFound(
                        msg.method().to_owned(),
                    )));
                }
                let t = rt.targets[i].clone();
                let mut edit = open_object(msg.params.as_ref().expect("checked"), "params")?;
                edit.set("name", RawJson::string(rest));
                return self.forward(session, &t, msg, Some(edit), sink).await;
            }
        }
        Err(GatewayError::MethodNotFound(msg.method().to_owned()))
    }

    /// The upstream session serving `session` on `t`.
    async fn upstream_for(&self, t: &Arc<TargetRt>, session: &Arc<Session>) -> Result<Upstream, GatewayError> {
        let wait = t.cfg.connect_timeout;
        // A stateless (2026-07-28) request has no session to give an upstream session to: it
        // uses the target's main one (see modern/mod.rs).
        if t.cfg.session == SessionMode::Shared || session.kind == DownstreamKind::Modern {
            return t.main_upstream(wait).await;
        }
        // With replicas, the main session being down on one says nothing about the others.
        if let MainState::Down { error } = &*t.main.borrow()
            && t.traffic.endpoints.len() == 1
        {
            return Err(GatewayError::Unavailable {
                target: t.name().to_string(),
                reason: error.clone(),
            });
        }
        for _ in 0..2 {
            let cell = session
                .state
                .lock()
                .upstreams
                .entry(t.name().clone())
                .or_default()
                .clone();
            let up = cell.get_or_try_init(|| self.connect(t, Some(session))).await?;
            // Affinity: a session stays on the replica holding its upstream session, unless
            // that replica's circuit opened while another one is usable: then it moves
            // (a new upstream session, initialized afresh) on this request.
            let moved =
                t.traffic.endpoints.len() > 1 && t.traffic.endpoint_open(up.endpoint) && t.traffic.all_open().is_none();
            if !up.is_closed() && !moved {
                return Ok(up.clone());
            }
            if moved {
                tracing::info!(target = %t.name(), session = %session.id, endpoint = up.endpoint, "Moving a session's upstream session off a failing endpoint.");
                let up = up.clone();
                self.drop_upstream(session, t, &up);
                continue;
            }
            let mut st = session.state.lock();
            if st.upstreams.get(t.name()).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                st.upstreams.remove(t.name());
            }
        }
        Err(GatewayError::Unavailable {
            target: t.name().to_string(),
            reason: "upstream session keeps closing".into(),
        })
    }

    /// Sends a client request to target `t` with ids and progress tokens remapped, and
    /// returns the response under the client's id. A 2026-07-28 upstream's input rounds are
    /// driven here for session-based clients (modern/bridge.rs).
    async fn forward(
        &self,
        session: &Arc<Session>,
        t: &Arc<TargetRt>,
        msg: Message,
        edit: Option<ObjectEdit>,
        sink: Option<RelatedSink>,
    ) -> Result<Message, GatewayError> {
        if session.kind == DownstreamKind::Modern || !t.is_stateless() {
            return self.forward_once(session, t, msg, edit, sink).await;
        }
        let msg = match edit {
            Some(e) => Message {
                params: Some(e.to_raw()),
                ..msg
            },
            None => msg,
        };
        let resp = self.forward_once(session, t, msg.clone(), None, sink.clone()).await?;
        if !crate::modern::bridge::is_input_required(&resp) {
            return Ok(resp);
        }
        self.fulfil_input(session, t, msg, sink, resp).await
    }

    /// One upstream request for [`Inner::forward`].
    pub(crate) async fn forward_once(
        &self,
        session: &Arc<Session>,
        t: &Arc<TargetRt>,
        msg: Message,
        edit: Option<ObjectEdit>,
        sink: Option<RelatedSink>,
    ) -> Result<Message, GatewayError> {
        crate::observe::note_target(t);
        let downstream_id = msg.id.clone().expect("request");
        let method = msg.method().to_owned();
        // Progress tokens are rewritten to gateway-unique numbers so they route back here.
        let mut edit = edit;
        let meta_token = {
            let params = edit
                .as_ref()
                .map(|e| e.get("_meta").cloned())
                .unwrap_or_else(|| msg.params.as_ref().and_then(|p| member(p, "_meta")));
            params.and_then(|m| member(&m, "progressToken").map(|tok| (m, tok)))
        };
        let mut token_guard = None;
        let mut alive = None;
        if let Some((meta, original)) = meta_token {
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            let route = Route {
                session: Arc::downgrade(session),
                sink: sink.clone(),
                trace: None,
            };
            let notify = Arc::new(tokio::sync::Notify::new());
            alive = Some(notify.clone());
            self.progress.lock().insert(
                token,
                crate::gateway::ProgressEntry {
                    route,
                    original,
                    alive: notify,
                },
            );
            token_guard = Some(ProgressGuard { inner: self, token });
            let mut m = open_object(&meta, "_meta")?;
            m.set("progressToken", RawJson::from_value(&token));
            let e = match edit.take() {
                Some(e) => e,
                None => ObjectEdit::parse_or_new(msg.params.as_ref()).map_err(|_| not_an_object("params"))?,
            };
            let mut e = e;
            e.set("_meta", m.to_raw());
            edit = Some(e);
        }
        let params = match edit {
            Some(e) => Some(e.to_raw()),
            None => msg.params.clone(),
        };

        // Traffic management (issue 4): target and tool rate limits, the concurrency limit,
        // then each attempt through the endpoint's circuit breaker, retried only when safe.
        let tool = if method == "tools/call" {
            params.as_ref().and_then(|p| str_member(p, "name"))
        } else {
            None
        };
        let tool = tool.as_ref().map(|n| n.as_str());
        self.admit_target(t, tool)?;
        if let Some(retry_after) = t.traffic.all_open() {
            crate::traffic::metrics_hook::circuit_rejected(t.name());
            return Err(GatewayError::CircuitOpen {
                target: t.name().to_string(),
                retry_after,
            });
        }
        let _slot = self.concurrency_slot(t).await?;
        let idempotent = self.idempotent(t, &method, tool);
        t.traffic.count_request();

        let cancel = CancellationToken::new();
        session
            .state
            .lock()
            .in_flight
            .insert(downstream_id.clone(), InFlight { cancel: cancel.clone() });
        let _in_flight = InFlightGuard {
            session,
            id: downstream_id.clone(),
        };

        let mut attempt = 0;
        let mut reinitialized = false;
        let result = loop {
            attempt += 1;
            // Not sent yet: no upstream session, or its circuit is open.
            let ready = match self.upstream_for(t, session).await {
                Ok(up) => t.traffic.admit(t.name(), up.endpoint).map(|ticket| (up, ticket)),
                Err(e) => Err(e),
            };
            let (up, ticket) = match ready {
                Ok(r) => r,
                Err(e) => {
                    // A single-endpoint target that is down stays down for a while: fail now.
                    let down = t.traffic.endpoints.len() == 1 && !t.is_up();
                    match t
                        .traffic
                        .retry_after(Some(self.telemetry.metrics()), t.name(), &e, attempt, false, idempotent)
                        .filter(|_| !down)
                    {
                        Some(wait) => {
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => continue,
                                _ = cancel.cancelled() => break Err(GatewayError::Cancelled),
                            }
                        }
                        None => break Err(e),
                    }
                }
            };
            // A 2026-07-28 upstream hears about the client in every request's `_meta`.
            let params = if up.conn.generation() == mcpgate_upstream::Generation::Stateless {
                Some(crate::modern::bridge::upstream_params(session, params.as_ref()))
            } else {
                params.clone()
            };
            let (pending, span) =
                crate::trace::send_request(self.tracing.as_ref(), t.name(), &t.spec, &up.conn, &method, params);
            let sent_at = tokio::time::Instant::now();
            let upstream_id = pending.id();
            up.routes.insert(
                upstream_id,
                Route {
                    session: Arc::downgrade(session),
                    sink: sink.clone(),
                    trace: span.as_ref().map(|s| s.context().clone()),
                },
            );
            let _route = RouteGuard {
                routes: up.routes.clone(),
                id: upstream_id,
            };
            let mut sent = true;
            let outcome = tokio::select! {
                r = crate::traffic::within_call_timeout(&t.traffic.cfg.timeouts, alive.as_deref(), pending) => match r {
                    Some(Ok(resp)) => Ok(resp),
                    Some(Err(UpstreamError::SessionExpired)) if !reinitialized && t.cfg.session == SessionMode::PerClient => {
                        tracing::info!(target = %t.name(), session = %session.id, "Upstream session expired; re-initializing.");
                        reinitialized = true;
                        attempt -= 1;
                        continue;
                    }
                    Some(Err(e)) => {
                        if matches!(e, UpstreamError::Connect(_)) {
                            // The server cannot be reached (the request never left): end this
                            // upstream session so the next attempt re-establishes it, on another
                            // endpoint when there are several, instead of every call failing.
                            sent = false;
                            self.drop_upstream(session, t, &up);
                        }
                        Err(GatewayError::from_upstream(t.name(), e))
                    }
                    None => {
                        cancel_upstream(&up, upstream_id, "mcpgate: request timed out");
                        Err(GatewayError::Timeout { target: t.name().to_string() })
                    }
                },
                _ = cancel.cancelled() => {
                    cancel_upstream(&up, upstream_id, "client cancelled the request");
                    Err(GatewayError::Cancelled)
                }
            };
            crate::observe::note_upstream(sent_at.elapsed());
            let health = match &outcome {
                Ok(_) => Some(true),
                Err(e) => crate::traffic::health_signal(e),
            };
            if let Some(tr) = ticket.finish(health) {
                self.circuit_transition(t, up.endpoint, tr);
            }
            crate::trace::end_request(span, outcome.as_ref());
            if let Err(e) = &outcome
                && let Some(wait) =
                    t.traffic
                        .retry_after(Some(self.telemetry.metrics()), t.name(), e, attempt, sent, idempotent)
            {
                tracing::debug!(target = %t.name(), method = %method, attempt, error = %e, "Retrying.");
                drop(_route);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = cancel.cancelled() => break Err(GatewayError::Cancelled),
                }
            }
            break outcome;
        };
        drop(token_guard);
        let resp = result?;
        Ok(Message {
            id: Some(downstream_id),
            method: None,
            params: None,
            ..resp
        })
    }

    async fn notification(&self, session: &Arc<Session>, msg: Message) {
        match msg.method() {
            "notifications/initialized" => session.state.lock().initialized = true,
            "notifications/cancelled" => {
                let Some(id) = msg.params.as_ref().and_then(|p| member(p, "requestId")) else {
                    return;
                };
                if let Some(f) = session.state.lock().in_flight.get(&id) {
                    f.cancel.cancel();
                }
            }
            "notifications/roots/list_changed" => {
                let rt = self.runtime.load_full();
                let mut targets: Vec<Upstream> = session
                    .state
                    .lock()
                    .upstreams
                    .values()
                    .filter_map(|c| c.get().cloned())
                    .collect();
                for t in rt.targets.iter().filter(|t| t.cfg.session == SessionMode::Shared) {
                    if let Ok(up) = t.main_upstream(Duration::ZERO).await {
                        targets.push(up);
                    }
                }
                for up in targets {
                    let _ = up.conn.notify("notifications/roots/list_changed", None).await;
                }
            }
            other => tracing::debug!(session = %session.id, method = %other, "Ignored a client notification."),
        }
    }

    /// A client's answer to a server→client request relayed earlier.
    async fn client_response(&self, session: &Arc<Session>, msg: Message) {
        let Some(id) = msg.id.as_ref().and_then(RawJson::as_i64) else {
            tracing::debug!(session = %session.id, "Ignored a response with an id the gateway did not issue.");
            return;
        };
        let Some(pending) = session.state.lock().server_requests.remove(&(id as u64)) else {
            tracing::debug!(session = %session.id, id, "Ignored a response to an unknown server request.");
            return;
        };
        if let Some(span) = pending.trace {
            span.end(&msg);
        }
        let (upstream, upstream_id) = match pending.reply_to {
            crate::session::ReplyTo::Upstream { upstream, upstream_id } => (upstream, upstream_id),
            crate::session::ReplyTo::Gateway(tx) => {
                let _ = tx.send(msg);
                return;
            }
        };
        let reply = Message {
            id: Some(upstream_id),
            ..msg
        };
        if let Err(e) = upstream.conn.respond(reply).await {
            tracing::warn!(target = %upstream.routes.target, error = %e, "Could not deliver a client's answer upstream.");
        }
    }
}

/// The error for a tool or prompt name that no merged list has. A prefixed name of a target
/// that is not up (and so is missing from the lists) fails as that target being unavailable,
/// which a client can retry, rather than as an unknown name.
fn unknown_name(rt: &Runtime, what: &str, name: &str) -> GatewayError {
    if rt.prefix
        && let Some((target, _)) = name.split_once(rt.config.naming.separator.as_str())
        && let Some(&i) = rt.by_name.get(target)
    {
        // Left out of the lists by its circuit breaker (issue 4).
        if let Some(retry_after) = rt.targets[i].traffic.all_open() {
            return GatewayError::CircuitOpen {
                target: target.to_owned(),
                retry_after,
            };
        }
    }
    if rt.prefix
        && let Some((target, _)) = name.split_once(rt.config.naming.separator.as_str())
        && let Some(&i) = rt.by_name.get(target)
        && !rt.targets[i].is_up()
    {
        let reason = match &*rt.targets[i].main.borrow() {
            MainState::Down { error } => error.clone(),
            _ => "not connected yet".into(),
        };
        return GatewayError::Unavailable {
            target: target.to_owned(),
            reason,
        };
    }
    GatewayError::NotFound(format!("Unknown {what}: {name}"))
}

fn cancel_upstream(up: &Upstream, upstream_id: u64, reason: &str) {
    let conn = up.conn.clone();
    let params = RawJson::from_value(&serde_json::json!({ "requestId": upstream_id, "reason": reason }));
    tokio::spawn(async move {
        let _ = conn.notify("notifications/cancelled", Some(params)).await;
    });
}

struct ProgressGuard<'a> {
    inner: &'a Inner,
    token: u64,
}

impl Drop for ProgressGuard<'_> {
    fn drop(&mut self) {
        self.inner.progress.lock().remove(&self.token);
    }
}

struct InFlightGuard<'a> {
    session: &'a Arc<Session>,
    id: RawJson,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.session.state.lock().in_flight.remove(&self.id);
    }
}

/// The error for a member that must be a JSON object.
fn not_an_object(what: &str) -> GatewayError {
    GatewayError::InvalidParams(format!("{what} must be an object"))
}

/// Opens a JSON object for editing, or says which member was not one.
fn open_object(raw: &RawJson, what: &str) -> Result<ObjectEdit, GatewayError> {
    ObjectEdit::parse(raw).map_err(|_| not_an_object(what))
}
