//! Active health checks: a `ping` on each target's main upstream session every
//! `health.interval`, bounded by `health.timeout`. A failed or late ping counts as a failure
//! for the circuit breaker of the endpoint the main session is on. A good one is the probe
//! that closes a circuit whose cool-down is over (so a target left out of the lists comes
//! back without client traffic); it does not reset the failure count of real calls.
//!
//! One task per gateway walks the targets of the runtime in force, so targets added by a
//! reload are checked without anyone starting anything.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::gateway::Inner;
use crate::target::{MainState, TargetRt};

/// The last health check of a target.
#[derive(Debug, Clone)]
pub struct Check {
    /// `None` when it passed, else why it failed.
    pub error: Option<String>,
}

/// How often keyed rate limiters forget identities, targets and tools whose bucket is full.
const LIMITER_SWEEP: Duration = Duration::from_secs(60);

/// Runs health checks (and the rate-limit key sweep) until `shutdown`.
pub(crate) async fn run(inner: Weak<Inner>, shutdown: CancellationToken) {
    let mut next: std::collections::HashMap<Arc<str>, Instant> = Default::default();
    let mut next_sweep = Instant::now() + LIMITER_SWEEP;
    loop {
        let Some(gw) = inner.upgrade() else { return };
        let rt = gw.runtime.load_full();
        drop(gw);
        let now = Instant::now();
        if now >= next_sweep {
            rt.limits.sweep();
            next_sweep = now + LIMITER_SWEEP;
        }
        let mut wake = now + Duration::from_secs(1);
        next.retain(|name, _| rt.by_name.contains_key(name));
        for t in rt.targets.iter() {
            let interval = t.traffic.cfg.health.interval;
            if interval.is_zero() {
                continue;
            }
            let due = *next.entry(t.name().clone()).or_insert(now + interval);
            if due <= now {
                let at = now + interval;
                next.insert(t.name().clone(), at);
                wake = wake.min(at);
                tokio::spawn(check(inner.clone(), t.clone()));
            } else {
                wake = wake.min(due);
            }
        }
        drop(rt);
        tokio::select! {
            _ = tokio::time::sleep_until(wake.max(now + Duration::from_millis(10))) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One round of checks of `t`: a `ping` on its main session and, for a target with replicas,
/// on a health-check session of every other replica (opened when needed, so an unreachable
/// replica fails its check at the connect).
async fn check(inner: Weak<Inner>, t: Arc<TargetRt>) {
    let main = match &*t.main.borrow() {
        MainState::Up(u) if !u.is_closed() => Some(u.clone()),
        // Down or connecting: the supervisor owns that state.
        _ => None,
    };
    if let Some(up) = &main {
        let error = ping(&inner, &t, up).await;
        if let Some(error) = error {
            *t.traffic.last_health.lock() = Some(Check { error });
        }
    }
    if t.traffic.endpoints.len() > 1 {
        for i in 0..t.traffic.endpoints.len() {
            if main.as_ref().is_some_and(|u| u.endpoint == i) {
                continue;
            }
            probe_replica(&inner, &t, i).await;
        }
    }
}

/// Checks replica `i` on its health-check session.
async fn probe_replica(inner: &Weak<Inner>, t: &Arc<TargetRt>, i: usize) {
    // During a cool-down nothing is tried.
    if t.traffic.endpoint_open(i) {
        return;
    }
    let held = t.traffic.probes.lock().get(&i).filter(|u| !u.is_closed()).cloned();
    let up = match held {
        Some(u) => u,
        None => {
            let Some(gw) = inner.upgrade() else { return };
            // A failed connect counts against the replica (in `connect_at`).
            let Ok(u) = gw.connect_at(t, None, Some(i)).await else {
                return;
            };
            let (stop, conn) = (t.ops.stop.clone(), u.conn.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = conn.closed() => {}
                }
                conn.close().await;
            });
            t.traffic.probes.lock().insert(i, u.clone());
            u
        }
    };
    ping(inner, t, &up).await;
}

/// One `ping` on `up`; its outcome goes to the breaker of `up`'s endpoint. Returns why it
/// failed, or `Some(None)` when it passed (`None`: not tried, the endpoint is cooling down).
async fn ping(inner: &Weak<Inner>, t: &Arc<TargetRt>, up: &crate::upstream::Upstream) -> Option<Option<String>> {
    let traffic = &t.traffic;
    let ticket = traffic.admit(t.name(), up.endpoint).ok()?;
    let timeout = traffic.cfg.health.timeout;
    let error = match tokio::time::timeout(timeout, up.conn.request("ping", None)).await {
        // Any answer, even an error, shows the server is alive and reading.
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer to ping within {}ms", timeout.as_millis())),
    };
    if let Some(e) = &error {
        tracing::warn!(target = %t.name(), endpoint = up.endpoint, error = %e, "Health check failed.");
    }
    // A passing ping only decides a half-open probe: it must not reset the count of
    // consecutive failures of real calls (a server can answer pings and hang every call).
    let verdict = match (&error, ticket.is_probe()) {
        (Some(_), _) => Some(false),
        (None, true) => Some(true),
        (None, false) => None,
    };
    if let (Some(tr), Some(gw)) = (ticket.finish(verdict), inner.upgrade()) {
        gw.circuit_transition(t, up.endpoint, tr);
    }
    Some(error)
}
