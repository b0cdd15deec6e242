//! The gateway's side of one upstream session: the connection plus the routing state that
//! sends what the upstream says back to the right downstream session and stream.
//!
//! Every request the gateway sends upstream is registered in [`Routes`] under its upstream
//! id for as long as it is in flight, with the downstream session and the stream its
//! related messages belong on. Messages from the upstream are then routed by, in order:
//! the request whose response stream carried them (Streamable HTTP), the progress token,
//! the session that owns a per-client upstream session, and — for a shared upstream that
//! gives no other clue — the most recent in-flight request on that connection.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use mcpgate_proto::{ErrorCode, Message, ObjectEdit, RawJson};
use mcpgate_upstream::{Connection, Inbound, InboundHandler, InitializeResult};
use parking_lot::Mutex;

use crate::gateway::Inner;
use crate::session::{RelatedSink, Session};

/// A live upstream session with its routing table.
#[derive(Clone)]
pub struct Upstream {
    /// The transport connection.
    pub conn: Connection,
    /// What the upstream said in `initialize`.
    pub init: Arc<InitializeResult>,
    pub(crate) routes: Arc<Routes>,
    /// The target endpoint (replica) it is connected to: an index into the target's
    /// `traffic.endpoints`.
    pub endpoint: usize,
}

impl Upstream {
    /// Is the connection gone?
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

/// Where one in-flight upstream request came from.
#[derive(Clone)]
pub(crate) struct Route {
    pub session: Weak<Session>,
    pub sink: Option<RelatedSink>,
    /// The client span of the request (tracing on): the parent of what the upstream asks
    /// the client on its behalf.
    pub trace: Option<opentelemetry::Context>,
}

/// Routing state of one upstream connection.
pub(crate) struct Routes {
    pub target: Arc<str>,
    /// The session owning a per-client upstream session; `None` for shared ones.
    pub owner: Option<Weak<Session>>,
    in_flight: Mutex<HashMap<u64, Route>>,
    /// The upstream these routes belong to, set once connected and cleared when it closes
    /// (it refers back to the connection, so it must not outlive it).
    current: tokio::sync::watch::Sender<Option<Upstream>>,
    /// The `max_processes` slot a per-client upstream session holds until it closes.
    pub(crate) slot: Mutex<Option<crate::supervision::ProcessSlot>>,
}

impl Routes {
    pub fn new(target: Arc<str>, owner: Option<Weak<Session>>) -> Arc<Self> {
        Arc::new(Routes {
            target,
            owner,
            in_flight: Mutex::new(HashMap::new()),
            current: tokio::sync::watch::Sender::new(None),
            slot: Mutex::new(None),
        })
    }

    pub fn set_current(&self, u: Option<Upstream>) {
        self.current.send_replace(u);
    }

    pub fn current(&self) -> Option<Upstream> {
        self.current.borrow().clone()
    }

    /// The upstream, waiting while its handshake completes (a server may send requests
    /// right after `notifications/initialized`, before `connect` has returned).
    async fn current_when_ready(&self) -> Option<Upstream> {
        let mut rx = self.current.subscribe();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(30), rx.wait_for(Option::is_some)).await;
        ready.ok()?.ok().and_then(|u| u.clone())
    }

    pub fn insert(&self, upstream_id: u64, route: Route) {
        self.in_flight.lock().insert(upstream_id, route);
    }

    pub fn remove(&self, upstream_id: u64) {
        self.in_flight.lock().remove(&upstream_id);
    }

    fn get(&self, upstream_id: u64) -> Option<Route> {
        self.in_flight.lock().get(&upstream_id).cloned()
    }

    /// The most recent in-flight request (highest id), the best guess for a shared upstream.
    fn latest(&self) -> Option<Route> {
        let map = self.in_flight.lock();
        map.iter().max_by_key(|(id, _)| **id).map(|(_, r)| r.clone())
    }
}

/// Removes the route when the request ends, however it ends.
pub(crate) struct RouteGuard {
    pub routes: Arc<Routes>,
    pub id: u64,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        self.routes.remove(self.id);
    }
}

/// Receives everything an upstream connection says unprompted.
pub(crate) struct Handler {
    pub gw: Weak<Inner>,
    pub routes: Arc<Routes>,
}

impl InboundHandler for Handler {
    fn on_message(&self, inbound: Inbound) {
        let Some(gw) = self.gw.upgrade() else { return };
        match inbound {
            Inbound::Notification { message, related } => self.notification(&gw, message, related),
            Inbound::Request { message, related } => self.request(message, related),
            Inbound::Closed { error } => {
                self.routes.set_current(None);
                gw.upstream_closed(&self.routes, error.as_ref());
            }
        }
    }
}

impl Handler {
    /// The session (and stream) a message from the upstream belongs to.
    fn route_for(&self, related: Option<u64>) -> Option<(Arc<Session>, Option<RelatedSink>)> {
        if let Some(route) = related.and_then(|id| self.routes.get(id))
            && let Some(s) = route.session.upgrade()
        {
            return Some((s, route.sink));
        }
        if let Some(owner) = &self.routes.owner {
            let s = owner.upgrade()?;
            let sink = self.routes.latest().and_then(|r| r.sink);
            return Some((s, sink));
        }
        let route = self.routes.latest()?;
        Some((route.session.upgrade()?, route.sink))
    }

    fn notification(&self, gw: &Arc<Inner>, mut msg: Message, related: Option<u64>) {
        let method = msg.method().to_owned();
        match method.as_str() {
            "notifications/progress" => {
                let Some(params) = &msg.params else { return };
                let Ok(mut edit) = ObjectEdit::parse(params) else {
                    return;
                };
                let Some(token) = edit.get("progressToken").and_then(|t| t.as_i64()) else {
                    return;
                };
                let Some(entry) = gw.progress_route(token as u64) else {
                    tracing::debug!(target = %self.routes.target, token, "Dropped progress for a finished or unknown request.");
                    return;
                };
                // Progress is a sign of life: it restarts the call's timeout (issue 4).
                entry.alive.notify_one();
                let Some(session) = entry.route.session.upgrade() else {
                    return;
                };
                edit.set("progressToken", entry.original);
                msg.params = Some(edit.to_raw());
                session.send_related(entry.route.sink.as_ref(), msg);
            }
            "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed" => {
                match &self.routes.owner {
                    // The owning session is gone: nobody to tell.
                    Some(owner) => {
                        if let Some(s) = owner.upgrade() {
                            gw.list_changed(&self.routes.target, &method, Some(s));
                        }
                    }
                    None => gw.list_changed(&self.routes.target, &method, None),
                }
            }
            "notifications/resources/updated" => {
                let uri = msg
                    .params
                    .as_ref()
                    .and_then(|p| mcpgate_proto::raw::str_member(p, "uri"));
                let Some(uri) = uri else { return };
                match &self.routes.owner {
                    Some(owner) => {
                        if let Some(s) = owner.upgrade() {
                            s.send(msg);
                        }
                    }
                    None => gw.for_each_session(|s| {
                        if s.is_subscribed(&uri) {
                            s.send(msg.clone());
                        }
                    }),
                }
            }
            "notifications/message" => {
                let level = msg
                    .params
                    .as_ref()
                    .and_then(|p| mcpgate_proto::raw::str_member(p, "level"))
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "info".into());
                let owned = self.routes.owner.is_some() || related.is_some_and(|id| self.routes.get(id).is_some());
                if owned {
                    if let Some((s, sink)) = self.route_for(related)
                        && s.log_passes(&level) != Some(false)
                    {
                        s.send_related(sink.as_ref(), msg);
                    }
                } else if gw.target_is_shared(&self.routes.target) {
                    // A shared upstream's log: every session that asked for logs at this level.
                    gw.for_each_session(|s| {
                        if s.log_passes(&level) == Some(true) {
                            s.send(msg.clone());
                        }
                    });
                }
                // Otherwise it is the discovery session of a per-client target: every client's
                // own upstream session carries its own copy, so relaying this one would send
                // duplicates, and logs to clients the server has no session for.
            }
            "notifications/cancelled" => {
                // The upstream gave up on one of its server→client requests.
                let Some(params) = &msg.params else { return };
                let Ok(mut edit) = ObjectEdit::parse(params) else {
                    return;
                };
                let Some(up_id) = edit.get("requestId").cloned() else {
                    return;
                };
                gw.for_each_session(|s| {
                    let mut st = s.state.lock();
                    let found = st
                        .server_requests
                        .iter()
                        .find(|(_, p)| match &p.reply_to {
                            crate::session::ReplyTo::Upstream { upstream, upstream_id } => {
                                Arc::ptr_eq(&upstream.routes, &self.routes) && *upstream_id == up_id
                            }
                            crate::session::ReplyTo::Gateway(_) => false,
                        })
                        .map(|(k, _)| *k);
                    if let Some(k) = found {
                        st.server_requests.remove(&k);
                        drop(st);
                        edit.set("requestId", RawJson::from_value(&k));
                        s.send(Message::notification("notifications/cancelled", Some(edit.to_raw())));
                    }
                });
            }
            _ => {
                if let Some((s, sink)) = self.route_for(related) {
                    s.send_related(sink.as_ref(), msg);
                } else {
                    tracing::debug!(target = %self.routes.target, method = %method, "Dropped a notification no session is waiting for.");
                }
            }
        }
    }

    fn request(&self, msg: Message, related: Option<u64>) {
        let Some(upstream) = self.routes.current() else {
            let routes = self.routes.clone();
            let me = Handler {
                gw: self.gw.clone(),
                routes: self.routes.clone(),
            };
            tokio::spawn(async move {
                if routes.current_when_ready().await.is_some() {
                    me.request(msg, related);
                } else {
                    tracing::warn!(target = %routes.target, method = msg.method(), "Dropped a server request: the upstream session never became ready.");
                }
            });
            return;
        };
        let upstream_id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
        let Some((session, sink)) = self.route_for(related) else {
            // Nobody to ask: answer a ping ourselves, refuse anything else.
            let reply = if msg.method() == "ping" {
                Message::response(upstream_id, RawJson::from_static("{}"))
            } else {
                Message::error(
                    upstream_id,
                    ErrorCode::INTERNAL_ERROR,
                    &format!("mcpgate: no client session to relay `{}` to", msg.method()),
                    None,
                )
            };
            let conn = upstream.conn.clone();
            tokio::spawn(async move {
                let _ = conn.respond(reply).await;
            });
            return;
        };
        let id = session.mint_server_request_id();
        let trace = self.gw.upgrade().and_then(|gw| {
            let tracing = gw.tracing.as_ref()?;
            let cause = related.and_then(|r| self.routes.get(r)).and_then(|r| r.trace);
            Some(tracing.relay_span(&msg, &self.routes.target, &session, cause))
        });
        session.state.lock().server_requests.insert(
            id,
            crate::session::PendingServerRequest {
                reply_to: crate::session::ReplyTo::Upstream { upstream, upstream_id },
                trace,
            },
        );
        let out = Message {
            id: Some(RawJson::from_value(&id)),
            ..msg
        };
        session.send_related(sink.as_ref(), out);
    }
}
