//! Operations state of one target: its supervisor's stop signal, crash-loop detection, the
//! last stderr lines of its processes, and the count of per-client upstream sessions
//! (`max_processes`). The supervisor loop itself is in `gateway.rs`; this module decides how
//! long it waits between attempts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mcpgate_config::Supervision;
use mcpgate_upstream::StderrTail;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Per-target operations state, owned by [`crate::target::TargetRt`].
pub struct TargetOps {
    /// Cancelled when the target is removed (reload) or the gateway shuts down.
    pub(crate) stop: CancellationToken,
    /// Last stderr lines of the target's processes.
    pub(crate) stderr: Arc<StderrTail>,
    /// Too many failures within the window: attempts are spaced by the crash-loop backoff.
    crash_loop: AtomicBool,
    /// Failures (failed starts, closed connections) within the window.
    failures: Mutex<Failures>,
    /// Open per-client upstream sessions.
    per_client_open: Arc<AtomicUsize>,
    /// Added by a reload: its first connection is announced to clients (`list_changed`).
    pub(crate) announce_first: AtomicBool,
    supervision: Supervision,
}

struct Failures {
    at: VecDeque<Instant>,
    backoff: Duration,
}

impl TargetOps {
    pub(crate) fn new(supervision: &Supervision, stop: CancellationToken) -> Self {
        TargetOps {
            stop,
            stderr: StderrTail::new(supervision.stderr_lines),
            crash_loop: AtomicBool::new(false),
            failures: Mutex::new(Failures {
                at: VecDeque::new(),
                backoff: supervision.backoff_initial,
            }),
            per_client_open: Arc::new(AtomicUsize::new(0)),
            announce_first: AtomicBool::new(false),
            supervision: supervision.clone(),
        }
    }

    /// Is the target in a crash loop?
    pub fn crash_loop(&self) -> bool {
        self.crash_loop.load(Ordering::Relaxed)
    }

    /// Last stderr lines of the target's processes, oldest first.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// Open per-client upstream sessions.
    pub fn per_client_open(&self) -> usize {
        self.per_client_open.load(Ordering::Relaxed)
    }

    /// Records a failed start or a lost connection; returns the delay before the next
    /// attempt, and whether this failure put the target into a crash loop.
    pub(crate) fn failed(&self) -> (Duration, bool) {
        let s = &self.supervision;
        let now = Instant::now();
        let mut f = self.failures.lock();
        f.at.push_back(now);
        while f
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) > s.crash_loop_window)
        {
            f.at.pop_front();
        }
        let looping = f.at.len() >= s.crash_loop_restarts as usize;
        let entered = looping && !self.crash_loop.swap(true, Ordering::Relaxed);
        if !looping {
            self.crash_loop.store(false, Ordering::Relaxed);
        }
        let delay = if looping { s.crash_loop_backoff } else { f.backoff };
        f.backoff = (f.backoff * 2).min(s.backoff_max);
        (delay, entered)
    }

    /// A connection that stayed up for `uptime` ended: after a whole window of good
    /// behaviour the failure history (and the backoff) start over.
    pub(crate) fn was_up_for(&self, uptime: Duration) {
        if uptime > self.supervision.crash_loop_window.min(Duration::from_secs(30)) {
            let mut f = self.failures.lock();
            f.at.clear();
            f.backoff = self.supervision.backoff_initial;
            self.crash_loop.store(false, Ordering::Relaxed);
        }
    }

    /// Reserves a per-client upstream session under `max` (0: no limit).
    pub(crate) fn reserve_per_client(&self, max: usize) -> Option<ProcessSlot> {
        let n = self.per_client_open.fetch_add(1, Ordering::AcqRel);
        if max > 0 && n >= max {
            self.per_client_open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ProcessSlot(self.per_client_open.clone()))
    }
}

/// One counted per-client upstream session; released on drop.
pub(crate) struct ProcessSlot(Arc<AtomicUsize>);

impl Drop for ProcessSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sup() -> Supervision {
        Supervision {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            crash_loop_restarts: 3,
            crash_loop_window: Duration::from_secs(60),
            crash_loop_backoff: Duration::from_secs(10),
            stderr_lines: 5,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_then_crash_loop_then_recovers() {
        let ops = TargetOps::new(&sup(), CancellationToken::new());
        assert_eq!(ops.failed(), (Duration::from_millis(100), false));
        assert_eq!(ops.failed(), (Duration::from_millis(200), false));
        assert!(!ops.crash_loop());
        assert_eq!(
            ops.failed(),
            (Duration::from_secs(10), true),
            "third failure within the window"
        );
        assert!(ops.crash_loop());
        assert_eq!(ops.failed(), (Duration::from_secs(10), false), "entered only once");
        // Failures age out of the window.
        tokio::time::advance(Duration::from_secs(61)).await;
        let (delay, entered) = ops.failed();
        assert!(!entered && !ops.crash_loop());
        assert_eq!(
            delay,
            Duration::from_secs(1),
            "backoff stays at its maximum until the target is healthy"
        );
        ops.was_up_for(Duration::from_secs(120));
        assert_eq!(
            ops.failed(),
            (Duration::from_millis(100), false),
            "a healthy run resets the backoff"
        );
    }

    #[test]
    fn per_client_slots_are_capped_and_released() {
        let ops = TargetOps::new(&sup(), CancellationToken::new());
        let a = ops.reserve_per_client(2).unwrap();
        let _b = ops.reserve_per_client(2).unwrap();
        assert!(ops.reserve_per_client(2).is_none());
        assert_eq!(ops.per_client_open(), 2);
        drop(a);
        assert!(ops.reserve_per_client(2).is_some());
        assert!(ops.reserve_per_client(0).is_some(), "0 means no limit");
    }
}
