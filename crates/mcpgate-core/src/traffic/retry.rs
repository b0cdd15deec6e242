//! Retries: which requests may be repeated, how long to wait between attempts, and the retry
//! budget that keeps retries from multiplying the load on a failing target.
//!
//! The budget follows Finagle's and Envoy's idea: over a sliding window, retries may be at
//! most `budget_ratio` of the requests, plus `budget_min` always allowed so a quiet target can
//! still retry. When most requests fail, the budget runs dry and failures surface instead of
//! tripling the traffic.

use std::time::Duration;

use mcpgate_config::traffic::Retries;
use tokio::time::Instant;

/// Number of slots the window is divided into.
const SLOTS: usize = 10;

/// Requests and retries over a sliding window of `SLOTS` slots.
#[derive(Debug)]
pub struct Budget {
    ratio: f64,
    min: u32,
    slot: Duration,
    start: Instant,
    /// Index of the slot `counts[head]` stands for (monotonic).
    head_index: u64,
    head: usize,
    requests: [u32; SLOTS],
    retries: [u32; SLOTS],
}

impl Budget {
    /// An empty budget.
    pub fn new(cfg: &Retries, now: Instant) -> Self {
        Budget {
            ratio: cfg.budget_ratio,
            min: cfg.budget_min,
            slot: cfg.budget_window / SLOTS as u32,
            start: now,
            head_index: 0,
            head: 0,
            requests: [0; SLOTS],
            retries: [0; SLOTS],
        }
    }

    fn advance(&mut self, now: Instant) {
        let index = (now.saturating_duration_since(self.start).as_nanos() / self.slot.as_nanos().max(1)) as u64;
        if index <= self.head_index {
            return;
        }
        let steps = (index - self.head_index).min(SLOTS as u64) as usize;
        for _ in 0..steps {
            self.head = (self.head + 1) % SLOTS;
            self.requests[self.head] = 0;
            self.retries[self.head] = 0;
        }
        self.head_index = index;
    }

    /// Counts a first attempt.
    pub fn request(&mut self, now: Instant) {
        self.advance(now);
        self.requests[self.head] = self.requests[self.head].saturating_add(1);
    }

    /// Takes one retry from the budget if there is one left.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        self.advance(now);
        let requests: u64 = self.requests.iter().map(|&n| u64::from(n)).sum();
        let retries: u64 = self.retries.iter().map(|&n| u64::from(n)).sum();
        let allowed = (requests as f64 * self.ratio).floor() as u64 + u64::from(self.min);
        if retries < allowed {
            self.retries[self.head] += 1;
            true
        } else {
            false
        }
    }
}

/// The wait before retry number `retry` (1 for the first): full jitter over an exponential
/// ceiling, `random(0, min(max_backoff, backoff * 2^(retry-1)))`.
pub fn backoff(cfg: &Retries, retry: u32) -> Duration {
    let ceiling = cfg
        .backoff
        .saturating_mul(1u32 << (retry.saturating_sub(1)).min(16))
        .min(cfg.max_backoff);
    ceiling.mul_f64(rand::random::<f64>())
}

/// Is this method a read that is safe to send again?
pub fn idempotent_method(method: &str) -> bool {
    matches!(
        method,
        "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "prompts/get"
            | "completion/complete"
            | "ping"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(ratio: f64, min: u32) -> Retries {
        Retries {
            attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            budget_ratio: ratio,
            budget_min: min,
            budget_window: Duration::from_secs(10),
            idempotent_tools: vec![],
            trust_idempotent_hint: false,
        }
    }

    #[test]
    fn budget_is_a_fraction_plus_a_floor() {
        let t0 = Instant::now();
        let mut b = Budget::new(&cfg(0.2, 2), t0);
        // Nothing sent yet: the floor alone.
        assert!(b.try_retry(t0));
        assert!(b.try_retry(t0));
        assert!(!b.try_retry(t0));
        for _ in 0..50 {
            b.request(t0);
        }
        // 50 requests → 10 more.
        for _ in 0..10 {
            assert!(b.try_retry(t0));
        }
        assert!(!b.try_retry(t0));
        // A window later everything has slid out: the floor again.
        let later = t0 + Duration::from_secs(11);
        assert!(b.try_retry(later));
        assert!(b.try_retry(later));
        assert!(!b.try_retry(later));
    }

    #[test]
    fn backoff_is_bounded() {
        let c = cfg(0.2, 0);
        for retry in 1..20 {
            let d = backoff(&c, retry);
            assert!(d <= c.max_backoff);
            assert!(d <= Duration::from_millis(100) * (1 << (retry - 1).min(16)));
        }
    }

    #[test]
    fn only_reads_are_idempotent() {
        assert!(idempotent_method("tools/list"));
        assert!(idempotent_method("resources/read"));
        assert!(!idempotent_method("tools/call"));
        assert!(!idempotent_method("resources/subscribe"));
        assert!(!idempotent_method("tasks/cancel"));
    }

    proptest! {
        /// Over any one window, retries never exceed ratio × requests + min.
        #[test]
        fn retries_never_exceed_budget(ratio in 0.0f64..1.0, min in 0u32..5, ops in proptest::collection::vec((any::<bool>(), 0u64..300), 1..500)) {
            let t0 = Instant::now();
            let c = cfg(ratio, min);
            let mut b = Budget::new(&c, t0);
            let mut now = t0;
            let mut log: Vec<(Instant, bool)> = Vec::new(); // (time, is_retry) granted
            for (is_retry, dt) in ops {
                now += Duration::from_millis(dt);
                if is_retry {
                    if b.try_retry(now) { log.push((now, true)); }
                } else {
                    b.request(now);
                    log.push((now, false));
                }
                // The budget always sees at least the last window − one slot, and each
                // grant in that span saw requests from at most two windows back.
                let since = now.checked_sub(c.budget_window - c.budget_window / SLOTS as u32).unwrap_or(t0);
                let horizon = now.checked_sub(c.budget_window * 2).unwrap_or(t0);
                let retries_recent = log.iter().filter(|(t, r)| *r && *t >= since).count() as f64;
                let requests_wide = log.iter().filter(|(t, r)| !*r && *t >= horizon).count() as f64;
                prop_assert!(retries_recent <= (requests_wide * ratio).floor() + f64::from(min) + 0.0001,
                    "retries {retries_recent} requests {requests_wide}");
            }
        }
    }
}
