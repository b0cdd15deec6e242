//! One configured upstream target at run time: its shared ("main") upstream session kept
//! alive by a supervisor with backoff, its per-kind list caches, and its health.
//!
//! The main session serves capabilities and lists for every downstream session, and every
//! request when the target is `shared`. `per_client` targets additionally get one upstream
//! session per downstream session, opened on first use (see `gateway.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use mcpgate_config::Target;
use mcpgate_proto::{ObjectEdit, RawJson};
use mcpgate_upstream::TransportSpec;
use tokio::sync::watch;

use crate::error::GatewayError;
use crate::upstream::Upstream;

/// The four mergeable lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`
    Tools = 0,
    /// `prompts/list`
    Prompts = 1,
    /// `resources/list`
    Resources = 2,
    /// `resources/templates/list`
    Templates = 3,
}

impl ListKind {
    /// All kinds.
    pub const ALL: [ListKind; 4] = [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::Templates,
    ];

    /// The list method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
        }
    }

    /// The result member holding the items.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The server capability that announces the list.
    pub fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::Templates => "resources",
        }
    }

    /// The kind a `notifications/*/list_changed` method invalidates.
    pub fn from_list_changed(method: &str) -> Option<&'static [ListKind]> {
        match method {
            "notifications/tools/list_changed" => Some(&[ListKind::Tools]),
            "notifications/prompts/list_changed" => Some(&[ListKind::Prompts]),
            "notifications/resources/list_changed" => Some(&[ListKind::Resources, ListKind::Templates]),
            _ => None,
        }
    }
}

/// State of a target's main upstream session.
#[derive(Clone)]
pub enum MainState {
    /// First connection attempt (or a reconnect) in progress.
    Connecting,
    /// Connected.
    Up(Upstream),
    /// Not reachable; the supervisor retries after a backoff.
    Down {
        /// Why.
        error: String,
    },
}

/// A target at run time.
pub struct TargetRt {
    /// Its validated configuration.
    pub cfg: Target,
    /// Transport spec for the upstream client.
    pub spec: TransportSpec,
    /// Main session state, watched by requests waiting for the first connection.
    pub main: watch::Sender<MainState>,
    lists: [ArcSwapOption<Vec<RawJson>>; 4],
    /// Cache hints the upstream gave with each list (2026-07-28 upstreams; `None` otherwise).
    hints: [parking_lot::Mutex<Option<CacheHints>>; 4],
    generation: [AtomicU64; 4],
    fill: [tokio::sync::Mutex<()>; 4],
    /// Number of main-session (re)starts, for operators.
    pub restarts: AtomicU64,
    /// Supervision state: stop signal, crash loop, stderr tail, per-client session count.
    pub ops: crate::supervision::TargetOps,
    /// Traffic management: endpoints, circuit breakers, concurrency limit, retry budget.
    pub traffic: crate::traffic::TargetTraffic,
    /// The protocol generation the `server/discover` probe found (`generation: auto`), kept
    /// across restarts and for per-client sessions; forgotten when a connect fails, so the
    /// next attempt probes again.
    era: parking_lot::Mutex<Option<mcpgate_upstream::Generation>>,
    /// `x-mcp-header` parameters of a 2026-07-28 HTTP target's tools, shared by its
    /// connections (mirrored into `Mcp-Param-*` headers on calls).
    pub(crate) tool_headers: Arc<mcpgate_upstream::ToolHeaders>,
}

impl TargetRt {
    pub(crate) fn new(cfg: Target, ops: crate::supervision::TargetOps) -> Self {
        let spec = transport_spec(&cfg);
        let traffic = crate::traffic::TargetTraffic::new(&cfg.traffic, &spec);
        TargetRt {
            ops,
            cfg,
            spec,
            main: watch::Sender::new(MainState::Connecting),
            lists: Default::default(),
            hints: Default::default(),
            generation: Default::default(),
            fill: Default::default(),
            restarts: AtomicU64::new(0),
            traffic,
            era: parking_lot::Mutex::new(None),
            tool_headers: Arc::default(),
        }
    }

    /// The target name.
    pub fn name(&self) -> &Arc<str> {
        &self.cfg.name
    }

    /// The protocol generation to ask for when connecting: the configured one, or with
    /// `auto` the one a probe already found (the era is a property of the server: the spec
    /// advises caching it, and re-probing when the cached assumption fails).
    pub(crate) fn upstream_generation(&self) -> mcpgate_upstream::Generation {
        use mcpgate_upstream::Generation as G;
        match self.cfg.generation {
            mcpgate_config::Generation::Auto => self.era.lock().unwrap_or(G::Auto),
            mcpgate_config::Generation::Session => G::Session,
            mcpgate_config::Generation::Stateless => G::Stateless,
        }
    }

    /// Records the outcome of a connect: the generation found, or `None` after a failure.
    pub(crate) fn remember_generation(&self, found: Option<mcpgate_upstream::Generation>) {
        if self.cfg.generation == mcpgate_config::Generation::Auto {
            *self.era.lock() = found;
        }
    }

    /// The cache hints the upstream gave with its last `kind` list, if any.
    pub(crate) fn list_hints(&self, kind: ListKind) -> Option<CacheHints> {
        *self.hints[kind as usize].lock()
    }

    /// Does the main session speak the stateless generation (2026-07-28)?
    pub fn is_stateless(&self) -> bool {
        matches!(&*self.main.borrow(), MainState::Up(u) if u.conn.generation() == mcpgate_upstream::Generation::Stateless)
    }

    /// Is the main session up?
    pub fn is_up(&self) -> bool {
        matches!(&*self.main.borrow(), MainState::Up(u) if !u.is_closed())
    }

    /// The main upstream, waiting up to `wait` for a connection attempt in progress.
    pub(crate) async fn main_upstream(&self, wait: Duration) -> Result<Upstream, GatewayError> {
        let mut rx = self.main.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match &*rx.borrow_and_update() {
                MainState::Up(u) if !u.is_closed() => return Ok(u.clone()),
                MainState::Up(_) | MainState::Connecting => {}
                MainState::Down { error } => {
                    return Err(GatewayError::Unavailable {
                        target: self.cfg.name.to_string(),
                        reason: error.clone(),
                    });
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    return Err(GatewayError::Unavailable {
                        target: self.cfg.name.to_string(),
                        reason: "still connecting".into(),
                    });
                }
            }
        }
    }

    /// `(readOnlyHint, idempotentHint)` of upstream tool `name`, from the cached list.
    pub(crate) fn tool_hints(&self, name: &str) -> Option<(bool, bool)> {
        let tools = self.lists[ListKind::Tools as usize].load_full()?;
        let tool = tools
            .iter()
            .find(|t| mcpgate_proto::raw::str_member(t, "name").is_some_and(|n| n.as_str() == name))?;
        let ann = mcpgate_proto::raw::member(tool, "annotations")?;
        let flag = |k: &str| mcpgate_proto::raw::member(&ann, k).is_some_and(|v| v.as_bytes() == b"true");
        Some((flag("readOnlyHint"), flag("idempotentHint")))
    }

    /// Drops the cached lists of these kinds.
    pub(crate) fn invalidate(&self, kinds: &[ListKind]) {
        for k in kinds {
            self.generation[*k as usize].fetch_add(1, Ordering::AcqRel);
            self.lists[*k as usize].store(None);
        }
    }

    /// The target's full list of `kind` (all upstream pages), from cache when valid.
    pub(crate) async fn list(
        &self,
        kind: ListKind,
        wait: Duration,
        tracing: Option<&crate::trace::Tracing>,
    ) -> Result<Arc<Vec<RawJson>>, GatewayError> {
        let i = kind as usize;
        if let Some(v) = self.lists[i].load_full() {
            return Ok(v);
        }
        let _fill = self.fill[i].lock().await;
        if let Some(v) = self.lists[i].load_full() {
            return Ok(v);
        }
        let generation = self.generation[i].load(Ordering::Acquire);
        let up = self.main_upstream(wait).await?;
        let items = if has_capability(&up.init.capabilities, kind.capability()) {
            // A list is a read: retried on transient failures, within the retry budget.
            self.traffic.count_request();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let fetched = fetch_all(
                    &up,
                    kind,
                    self.cfg.traffic.timeouts.list,
                    &self.cfg.name,
                    (tracing, &self.spec),
                )
                .await;
                match fetched {
                    Ok((items, hints)) => {
                        *self.hints[i].lock() = hints;
                        break items;
                    }
                    Err(e) => match self.traffic.retry_after(None, &self.cfg.name, &e, attempt, true, true) {
                        Some(wait) if !up.is_closed() => tokio::time::sleep(wait).await,
                        _ => return Err(e),
                    },
                }
            }
        } else {
            Vec::new()
        };
        let items = Arc::new(items);
        if self.generation[i].load(Ordering::Acquire) == generation && !up.is_closed() {
            self.lists[i].store(Some(items.clone()));
        }
        Ok(items)
    }
}

/// Does a server capabilities object declare `name`?
pub(crate) fn has_capability(caps: &RawJson, name: &str) -> bool {
    mcpgate_proto::raw::member(caps, name).is_some_and(|v| !v.is_null())
}

/// Follows upstream pagination to the end.
async fn fetch_all(
    up: &Upstream,
    kind: ListKind,
    timeout: Duration,
    target: &str,
    (tracing, spec): (Option<&crate::trace::Tracing>, &mcpgate_upstream::TransportSpec),
) -> Result<(Vec<RawJson>, Option<CacheHints>), GatewayError> {
    let mut items = Vec::new();
    let mut hints: Option<CacheHints> = None;
    let mut cursor: Option<RawJson> = None;
    let mut seen = std::collections::HashSet::new();
    for _page in 0..10_000 {
        let params = cursor.as_ref().map(|c| {
            let mut e = ObjectEdit::new();
            e.set("cursor", c.clone());
            e.to_raw()
        });
        let (pending, span) = crate::trace::send_request(tracing, target, spec, &up.conn, kind.method(), params);
        let resp = tokio::time::timeout(timeout, pending)
            .await
            .map_err(|_| GatewayError::Timeout { target: target.into() })
            .and_then(|r| r.map_err(|e| GatewayError::from_upstream(target, e)));
        crate::trace::end_request(span, resp.as_ref());
        let resp = resp?;
        if let Some(err) = resp.error_object() {
            return Err(GatewayError::Upstream {
                target: target.into(),
                message: format!("{} failed: {}", kind.method(), err.message),
            });
        }
        let result = resp
            .result
            .ok_or_else(|| GatewayError::bad_response(target, "response without result"))?;
        let edit =
            ObjectEdit::parse(&result).map_err(|_| GatewayError::bad_response(target, "result is not an object"))?;
        if let Some(page) = CacheHints::of(&edit) {
            hints = Some(hints.map_or(page, |h| h.merge(page)));
        }
        if let Some(arr) = edit.get(kind.key()) {
            // The message was validated when it arrived: its elements are shared, not
            // parsed again.
            let page = mcpgate_proto::raw::elements(arr)
                .ok_or_else(|| GatewayError::bad_response(target, "list is not an array"))?;
            items.extend(page);
        }
        match edit.get("nextCursor") {
            Some(c) if !c.is_null() => {
                if !seen.insert(c.clone()) {
                    tracing::warn!(target = %target, method = kind.method(), "Upstream repeated a pagination cursor; stopping.");
                    break;
                }
                cursor = Some(c.clone());
            }
            _ => break,
        }
    }
    Ok((items, hints))
}

/// `ttlMs`/`cacheScope` of a 2026-07-28 result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CacheHints {
    /// Freshness in ms (`None`: the result gave no `ttlMs`).
    pub ttl_ms: Option<u64>,
    /// `cacheScope: "private"`.
    pub private: bool,
}

impl CacheHints {
    /// The hints of a result object, if it has any.
    pub(crate) fn of(result: &ObjectEdit) -> Option<CacheHints> {
        let ttl_ms = result.get("ttlMs").and_then(|t| t.as_i64()).map(|t| t.max(0) as u64);
        let scope = result.get("cacheScope").and_then(RawJson::as_json_str);
        if ttl_ms.is_none() && scope.is_none() {
            return None;
        }
        Some(CacheHints {
            ttl_ms,
            private: scope.is_some_and(|s| s.as_str() == "private"),
        })
    }

    /// Never fresher than the shortest, private when any is.
    pub(crate) fn merge(self, other: CacheHints) -> CacheHints {
        let ttl_ms = match (self.ttl_ms, other.ttl_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        CacheHints {
            ttl_ms,
            private: self.private || other.private,
        }
    }
}

/// Converts config to the upstream client's transport spec.
fn transport_spec(t: &Target) -> TransportSpec {
    use mcpgate_config::Transport;
    let headers = |h: &[(String, mcpgate_config::Secret)]| {
        let mut map = http::HeaderMap::new();
        for (k, v) in h {
            if let (Ok(name), Ok(mut value)) = (
                http::HeaderName::try_from(k.as_str()),
                http::HeaderValue::try_from(v.expose()),
            ) {
                value.set_sensitive(true);
                map.append(name, value);
            }
        }
        map
    };
    match &t.transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => TransportSpec::Stdio {
            command: command.clone(),
            args: args.clone(),
            env: env.iter().map(|(k, v)| (k.clone(), v.expose().to_owned())).collect(),
            cwd: cwd.clone(),
        },
        Transport::Sse { url, headers: h } => TransportSpec::Sse {
            url: url.clone(),
            headers: headers(h),
        },
        Transport::StreamableHttp { url, headers: h } => TransportSpec::StreamableHttp {
            url: url.clone(),
            headers: headers(h),
        },
    }
}
