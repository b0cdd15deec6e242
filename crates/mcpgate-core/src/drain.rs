//! Graceful shutdown and session admission: the draining flag (readiness turns false and new
//! sessions are refused), the count of in-flight client requests a drain waits for, and the
//! session limits checked at `initialize`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::gateway::Gateway;
use crate::{GatewayError, Session};

/// Draining state of the gateway.
#[derive(Default)]
pub(crate) struct DrainState {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// Counts one client request in flight until dropped.
pub(crate) struct InFlightRequest<'a>(&'a DrainState);

impl Drop for InFlightRequest<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl DrainState {
    pub(crate) fn request_started(&self) -> InFlightRequest<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlightRequest(self)
    }
}

impl Gateway {
    /// Starts draining: `/readyz` reports not ready and new sessions are refused with 503.
    /// Existing sessions keep working. Idempotent.
    pub fn begin_drain(&self) {
        if !self.inner.drain.draining.swap(true, Ordering::AcqRel) {
            tracing::info!(
                sessions = self.session_count(),
                in_flight = self.in_flight_requests(),
                "Draining: new sessions are refused."
            );
        }
    }

    /// Is the gateway draining?
    pub fn is_draining(&self) -> bool {
        self.inner.drain.draining.load(Ordering::Acquire)
    }

    /// Client requests being handled now.
    pub fn in_flight_requests(&self) -> usize {
        self.inner.drain.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no client request is in flight, or `timeout`; true when idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let d = &self.inner.drain;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = d.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if d.in_flight.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return d.in_flight.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// Ends every session (cancelling what is still in flight, which ends their SSE streams
    /// after what was queued is flushed), for the last step of a drain.
    pub fn close_all_sessions(&self) {
        let ids: Vec<std::sync::Arc<str>> = self.inner.sessions.read().keys().cloned().collect();
        for id in ids {
            self.inner.close_session(&id);
        }
    }

    /// Kills every stdio process group at once (a second signal: exit now).
    pub fn kill_processes_now(&self) {
        let rt = self.inner.runtime.load_full();
        let mut conns: Vec<mcpgate_upstream::Connection> = rt
            .targets
            .iter()
            .filter_map(|t| match &*t.main.borrow() {
                crate::target::MainState::Up(u) => Some(u.conn.clone()),
                _ => None,
            })
            .collect();
        for s in self.inner.sessions.read().values() {
            let st = s.state.lock();
            conns.extend(st.upstreams.values().filter_map(|c| c.get().map(|u| u.conn.clone())));
        }
        for c in conns {
            c.kill_now();
        }
    }
}

/// Checks a new session against draining and the session limits; called with the session
/// table locked so concurrent `initialize`s cannot overshoot.
pub(crate) fn admit(
    draining: bool,
    listen: &mcpgate_config::Listen,
    sessions: &std::collections::HashMap<std::sync::Arc<str>, std::sync::Arc<Session>>,
    identity: Option<&mcpgate_auth::Identity>,
) -> Result<(), GatewayError> {
    if draining {
        return Err(GatewayError::SessionRefused {
            message: "mcpgate is shutting down and accepts no new sessions; retry on another replica".into(),
            status: 503,
            limit: "draining",
        });
    }
    if listen.max_sessions > 0 && sessions.len() >= listen.max_sessions {
        return Err(GatewayError::SessionRefused {
            message: format!(
                "too many sessions: the gateway's limit of {} (listen.max_sessions) is reached; retry later",
                listen.max_sessions
            ),
            status: 503,
            limit: "max_sessions",
        });
    }
    let per = listen.max_sessions_per_identity;
    if per > 0 {
        let subject = identity.map(|i| i.subject.as_str());
        let mine = sessions
            .values()
            .filter(|s| s.identity().map(|i| i.subject.as_str()) == subject)
            .count();
        if mine >= per {
            return Err(GatewayError::SessionRefused {
                message: format!(
                    "too many sessions for this identity: the limit of {per} (listen.max_sessions_per_identity) is reached; close one or retry later"
                ),
                status: 429,
                limit: "max_sessions_per_identity",
            });
        }
    }
    Ok(())
}
