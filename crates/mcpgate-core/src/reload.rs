//! Applying a new configuration to a running gateway without dropping sessions.
//!
//! A reload builds the new runtime from the new file and swaps it in. Targets whose
//! configuration is identical keep their `TargetRt` (their main upstream session, list caches,
//! per-client upstream sessions and in-flight calls are untouched). Added targets start
//! connecting and are announced with `list_changed` when they come up. Removed targets, and
//! targets whose configuration changed in any field (which are replaced by a new one of the
//! same name), are retired: they leave the lists at once, their in-flight requests get up to
//! `shutdown.drain_timeout` to finish, then their upstream sessions are closed (stdio: process
//! group TERM, grace, KILL). Downstream sessions stay. Listener settings that are bound when
//! the socket opens (address, paths, body limit) need a restart: the old values stay and the
//! reload says so.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_config::Config;
use mcpgate_proto::Message;

use crate::gateway::{Gateway, Runtime, build_runtime, supervise};
use crate::target::{MainState, TargetRt};
use crate::upstream::Upstream;

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Targets that were not there before.
    pub added: Vec<String>,
    /// Targets no longer configured.
    pub removed: Vec<String>,
    /// Targets whose configuration changed (replaced).
    pub changed: Vec<String>,
    /// Targets kept as they were.
    pub unchanged: Vec<String>,
    /// Listener settings that changed in the file but need a restart (the old ones stay).
    pub needs_restart: Vec<&'static str>,
}

impl Gateway {
    /// Applies `new` to the running gateway: targets, naming, authentication, policies,
    /// limits and timeouts. See the module documentation for what happens to each target.
    pub fn reload(&self, new: Config) -> ReloadReport {
        let inner = &self.inner;
        let old = inner.runtime.load_full();
        let mut new = new;
        let mut report = ReloadReport::default();
        keep_bound_listener(&old.config, &mut new, &mut report.needs_restart);

        // The new runtime, then the old targets that survive put back in place.
        let fresh = build_runtime(new, &inner.shutdown);
        let mut targets: Vec<Arc<TargetRt>> = Vec::with_capacity(fresh.targets.len());
        let mut started = Vec::new();
        for t in &fresh.targets {
            let kept = old
                .by_name
                .get(t.name())
                .map(|&i| &old.targets[i])
                .filter(|o| o.cfg == t.cfg);
            match kept {
                Some(o) => {
                    report.unchanged.push(t.name().to_string());
                    targets.push(o.clone());
                    // The fresh twin was never started; release its stop token.
                    t.ops.stop.cancel();
                }
                None => {
                    if old.by_name.contains_key(t.name()) {
                        report.changed.push(t.name().to_string());
                    } else {
                        report.added.push(t.name().to_string());
                    }
                    t.ops.announce_first.store(true, std::sync::atomic::Ordering::Relaxed);
                    targets.push(t.clone());
                    started.push(t.clone());
                }
            }
        }
        let retired: Vec<Arc<TargetRt>> = old
            .targets
            .iter()
            .filter(|o| !targets.iter().any(|t| Arc::ptr_eq(t, o)))
            .cloned()
            .collect();
        for o in &retired {
            if !fresh.by_name.contains_key(o.name()) {
                report.removed.push(o.name().to_string());
            }
        }
        let naming_changed = old.config.naming.separator != fresh.config.naming.separator
            || old.config.naming.prefix != fresh.config.naming.prefix
            || old.prefix != fresh.prefix;
        let rt = Runtime {
            by_name: targets.iter().enumerate().map(|(i, t)| (t.name().clone(), i)).collect(),
            targets,
            ..fresh
        };

        // Per-client upstream sessions of retired targets leave their sessions now (so new
        // requests on a replaced target open a fresh one); task routes follow the new order.
        let mut retired_upstreams: Vec<Upstream> = Vec::new();
        let sessions: Vec<Arc<crate::Session>> = inner.sessions.read().values().cloned().collect();
        for s in &sessions {
            let mut st = s.state.lock();
            for o in &retired {
                if let Some(cell) = st.upstreams.remove(o.name())
                    && let Some(up) = cell.get()
                {
                    retired_upstreams.push(up.clone());
                }
            }
            st.tasks.retain(|_, i| {
                let Some(name) = old.targets.get(*i).map(|t| t.name().clone()) else {
                    return false;
                };
                match rt.by_name.get(&name) {
                    Some(&j) if !retired.iter().any(|o| o.name() == &name) => {
                        *i = j;
                        true
                    }
                    _ => false,
                }
            });
        }
        {
            let mut levels = inner.shared_log_level.lock();
            for o in &retired {
                levels.remove(o.name());
            }
        }
        let policies_changed = !Arc::ptr_eq(&old.config.policy, &rt.config.policy);
        rt.config.auth.start();
        inner.runtime.store(Arc::new(rt));

        for t in &started {
            tokio::spawn(supervise(inner.me.clone(), t.clone(), t.ops.stop.clone()));
        }
        let membership = !report.added.is_empty() || !report.removed.is_empty() || !report.changed.is_empty();
        // Lists may differ for everyone: caches go, clients are told (policies may hide or
        // show items; retired targets' items are gone; naming renames everything).
        inner.membership_changed(false);
        if membership || naming_changed || policies_changed {
            inner.for_each_session(|s| {
                for m in [
                    "notifications/tools/list_changed",
                    "notifications/prompts/list_changed",
                    "notifications/resources/list_changed",
                ] {
                    s.send(Message::notification(m, None));
                }
            });
        }
        if !retired.is_empty() {
            let drain = inner.runtime.load().config.shutdown.drain_timeout;
            let gone = Gone {
                gateway: inner.me.clone(),
                names: report.removed.iter().map(|n| Arc::from(n.as_str())).collect(),
            };
            tokio::spawn(retire(retired, retired_upstreams, drain, gone));
        }
        tracing::info!(
            added = ?report.added,
            removed = ?report.removed,
            changed = ?report.changed,
            unchanged = report.unchanged.len(),
            "Applied the new configuration."
        );
        report
    }
}

/// Keeps the listener settings that are fixed once the socket is bound, noting which ones
/// the new file tried to change.
fn keep_bound_listener(old: &Config, new: &mut Config, needs_restart: &mut Vec<&'static str>) {
    let (o, n) = (&old.listen, &mut new.listen);
    if o.address != n.address {
        needs_restart.push("listen.address");
        n.address = o.address;
    }
    if o.mcp_path != n.mcp_path {
        needs_restart.push("listen.mcp_path");
        n.mcp_path = o.mcp_path.clone();
    }
    if o.sse_path != n.sse_path {
        needs_restart.push("listen.sse_path");
        n.sse_path = o.sse_path.clone();
    }
    if o.message_path != n.message_path {
        needs_restart.push("listen.message_path");
        n.message_path = o.message_path.clone();
    }
    if o.max_body_bytes != n.max_body_bytes {
        needs_restart.push("listen.max_body_bytes");
        n.max_body_bytes = o.max_body_bytes;
    }
}

/// Drains and closes targets a reload removed or replaced: their supervisors stop, their
/// in-flight requests get up to `drain` to finish, then every upstream session is closed.
/// Targets a reload removed (not replaced): their metric series go once they are closed,
/// unless a later reload brought the name back meanwhile.
struct Gone {
    gateway: std::sync::Weak<crate::gateway::Inner>,
    names: Vec<Arc<str>>,
}

async fn retire(targets: Vec<Arc<TargetRt>>, per_client: Vec<Upstream>, drain: Duration, gone: Gone) {
    let mut upstreams = per_client;
    for t in &targets {
        t.ops.stop.cancel();
        if let MainState::Up(u) = &*t.main.borrow() {
            upstreams.push(u.clone());
        }
    }
    let deadline = tokio::time::Instant::now() + drain;
    while upstreams
        .iter()
        .any(|u| !u.is_closed() && u.conn.pending_requests() > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    futures_util::future::join_all(upstreams.iter().map(|u| u.conn.close())).await;
    for t in &targets {
        t.main.send_replace(MainState::Down {
            error: "removed by a config reload".into(),
        });
        tracing::info!(target = %t.name(), "Closed a target removed or replaced by a config reload.");
    }
    if let Some(gw) = gone.gateway.upgrade() {
        let rt = gw.runtime.load();
        for name in gone.names.iter().filter(|n| !rt.by_name.contains_key(&**n)) {
            gw.telemetry.metrics().target_removed(name);
        }
    }
}
