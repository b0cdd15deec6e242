//! Rate limits (token buckets from `governor`, keyed per identity, target or tool) and the
//! per-target concurrency limit (a semaphore with a bounded, timed queue).
//!
//! Keyed limiters forget keys whose bucket is full again ([`RateLimits::sweep`], run
//! periodically), so an identity seen once does not keep memory forever.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use mcpgate_config::traffic::{Concurrency, RateLimit, RateScope};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `governor`'s clock on `tokio::time`, so paused-time tests drive the buckets too.
#[derive(Clone, Debug)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;
type Keyed = RateLimiter<Arc<str>, HashMapStateStore<Arc<str>>, TokioClock, NoOpMiddleware<Duration>>;

enum Bucket {
    Direct(Direct),
    Keyed(Keyed),
}

struct Limit {
    cfg: RateLimit,
    bucket: Bucket,
    clock: TokioClock,
}

/// A request over a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// `global`, `identity`, `target` or `tool`.
    pub scope: &'static str,
    /// When the request would be allowed.
    pub retry_after: Duration,
    /// The limit as written (`10/s`).
    pub rate: String,
}

/// Every configured rate limit, with its buckets.
pub struct RateLimits {
    limits: Vec<Limit>,
}

/// What one request is, for the limits that apply to it.
pub struct Subject<'a> {
    /// The caller's identity key (`None`: anonymous).
    pub identity: Option<&'a str>,
    /// The target it goes to, once known.
    pub target: Option<&'a str>,
    /// The upstream tool name of a `tools/call`.
    pub tool: Option<&'a str>,
}

/// The key all anonymous callers share.
const ANONYMOUS: &str = "\u{0}anonymous";

pub(crate) fn scope_name(s: RateScope) -> &'static str {
    match s {
        RateScope::Global => "global",
        RateScope::Identity => "identity",
        RateScope::Target => "target",
        RateScope::Tool => "tool",
    }
}

impl RateLimits {
    /// Builds the buckets of `limits`.
    pub fn new(limits: &[RateLimit]) -> Self {
        let limits = limits
            .iter()
            .map(|cfg| {
                let burst = NonZeroU32::new(cfg.burst.max(1)).expect("at least 1");
                let quota = Quota::with_period(cfg.period.max(Duration::from_nanos(1)))
                    .expect("a non-zero period")
                    .allow_burst(burst);
                let clock = TokioClock::default();
                let bucket = match cfg.scope {
                    RateScope::Global => Bucket::Direct(RateLimiter::direct_with_clock(quota, clock.clone())),
                    _ => Bucket::Keyed(RateLimiter::new(quota, HashMapStateStore::default(), clock.clone())),
                };
                Limit {
                    cfg: cfg.clone(),
                    bucket,
                    clock,
                }
            })
            .collect();
        RateLimits { limits }
    }

    /// Is any limit configured?
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Checks (and takes from) every limit of `scopes` that applies to `s`; the first one
    /// exceeded refuses the request.
    pub fn check(&self, scopes: &[RateScope], s: &Subject<'_>) -> Result<(), Limited> {
        for l in self.limits.iter().filter(|l| scopes.contains(&l.cfg.scope)) {
            let key: Option<String> = match l.cfg.scope {
                RateScope::Global => None,
                RateScope::Identity => {
                    let id = s.identity.unwrap_or(ANONYMOUS);
                    if let Some(g) = &l.cfg.matches
                        && (s.identity.is_none() || !g.matches(id))
                    {
                        continue;
                    }
                    Some(id.to_owned())
                }
                RateScope::Target => {
                    let Some(t) = s.target else { continue };
                    if l.cfg.matches.as_ref().is_some_and(|g| !g.matches(t)) {
                        continue;
                    }
                    Some(t.to_owned())
                }
                RateScope::Tool => {
                    let (Some(t), Some(tool)) = (s.target, s.tool) else {
                        continue;
                    };
                    if l.cfg.matches.as_ref().is_some_and(|g| !g.matches(t))
                        || l.cfg.tool.as_ref().is_some_and(|g| !g.matches(tool))
                    {
                        continue;
                    }
                    Some(format!("{t}\u{0}{tool}"))
                }
            };
            let verdict = match (&l.bucket, key) {
                (Bucket::Direct(d), _) => d.check(),
                (Bucket::Keyed(k), Some(key)) => k.check_key(&Arc::from(key)),
                (Bucket::Keyed(_), None) => continue,
            };
            if let Err(not_until) = verdict {
                let now = l.clock.now();
                let wait = not_until.earliest_possible().duration_since(now);
                return Err(Limited {
                    scope: scope_name(l.cfg.scope),
                    retry_after: Duration::from(wait),
                    rate: l.cfg.rate.clone(),
                });
            }
        }
        Ok(())
    }

    /// Forgets keys whose bucket is full again (they behave exactly like new keys).
    pub fn sweep(&self) {
        for l in &self.limits {
            if let Bucket::Keyed(k) = &l.bucket {
                k.retain_recent();
                k.shrink_to_fit();
            }
        }
    }

    /// Keys held by keyed limits (for tests and metrics).
    pub fn keys(&self) -> usize {
        self.limits
            .iter()
            .map(|l| match &l.bucket {
                Bucket::Keyed(k) => k.len(),
                Bucket::Direct(_) => 0,
            })
            .sum()
    }
}

/// The per-target limit on requests in flight.
pub struct ConcurrencyLimit {
    cfg: Concurrency,
    slots: Option<Arc<Semaphore>>,
    queued: AtomicUsize,
}

/// Why a request got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The queue was full.
    QueueFull,
    /// No slot freed within `queue_timeout`.
    Timeout,
}

impl ConcurrencyLimit {
    /// A limit of `cfg.max_in_flight` (none when 0).
    pub fn new(cfg: &Concurrency) -> Self {
        ConcurrencyLimit {
            slots: (cfg.max_in_flight > 0).then(|| Arc::new(Semaphore::new(cfg.max_in_flight))),
            cfg: cfg.clone(),
            queued: AtomicUsize::new(0),
        }
    }

    /// A slot, waiting up to `queue_timeout` in a queue of at most `max_queue`.
    pub async fn acquire(&self) -> Result<Option<OwnedSemaphorePermit>, Rejected> {
        let Some(sem) = &self.slots else { return Ok(None) };
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(Some(p));
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.cfg.max_queue {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejected::QueueFull);
        }
        let r = tokio::time::timeout(self.cfg.queue_timeout, sem.clone().acquire_owned()).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match r {
            Ok(Ok(p)) => Ok(Some(p)),
            _ => Err(Rejected::Timeout),
        }
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.slots
            .as_ref()
            .map_or(0, |s| self.cfg.max_in_flight - s.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_config::Glob;

    fn limit(scope: RateScope, matches: Option<&str>, tool: Option<&str>, per_sec: u32, burst: u32) -> RateLimit {
        RateLimit {
            scope,
            matches: matches.map(Glob::new),
            tool: tool.map(Glob::new),
            period: Duration::from_secs(1) / per_sec,
            burst,
            rate: format!("{per_sec}/s"),
        }
    }

    fn who(
        identity: Option<&'static str>,
        target: Option<&'static str>,
        tool: Option<&'static str>,
    ) -> Subject<'static> {
        Subject { identity, target, tool }
    }

    #[tokio::test(start_paused = true)]
    async fn identity_buckets_are_separate_and_refill() {
        let l = RateLimits::new(&[limit(RateScope::Identity, None, None, 1, 2)]);
        let ids = [RateScope::Identity];
        assert!(l.check(&ids, &who(Some("alice"), None, None)).is_ok());
        assert!(l.check(&ids, &who(Some("alice"), None, None)).is_ok());
        let e = l.check(&ids, &who(Some("alice"), None, None)).unwrap_err();
        assert_eq!(e.scope, "identity");
        assert!(e.retry_after > Duration::ZERO && e.retry_after <= Duration::from_secs(1));
        // Bob has his own bucket; anonymous callers share one.
        assert!(l.check(&ids, &who(Some("bob"), None, None)).is_ok());
        assert!(l.check(&ids, &who(None, None, None)).is_ok());
        assert!(l.check(&ids, &who(None, None, None)).is_ok());
        assert!(l.check(&ids, &who(None, None, None)).is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(l.check(&ids, &who(Some("alice"), None, None)).is_ok());
        // Keys whose bucket refilled are forgotten.
        assert_eq!(l.keys(), 3);
        tokio::time::advance(Duration::from_secs(5)).await;
        l.sweep();
        assert_eq!(l.keys(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn tool_and_target_limits_match_patterns() {
        let l = RateLimits::new(&[
            limit(RateScope::Tool, Some("a"), Some("echo*"), 1, 1),
            limit(RateScope::Target, Some("b"), None, 1, 1),
        ]);
        let all = [RateScope::Tool, RateScope::Target];
        assert!(l.check(&all, &who(None, Some("a"), Some("echo"))).is_ok());
        assert_eq!(
            l.check(&all, &who(None, Some("a"), Some("echo"))).unwrap_err().scope,
            "tool"
        );
        // Another tool, another target: not limited.
        assert!(l.check(&all, &who(None, Some("a"), Some("add"))).is_ok());
        assert!(l.check(&all, &who(None, Some("a"), Some("add"))).is_ok());
        assert!(l.check(&all, &who(None, Some("b"), None)).is_ok());
        assert_eq!(l.check(&all, &who(None, Some("b"), None)).unwrap_err().scope, "target");
        // Scopes not asked for are not checked.
        assert!(l.check(&[RateScope::Global], &who(None, Some("b"), None)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_queue_is_bounded_in_size_and_time() {
        let c = ConcurrencyLimit::new(&Concurrency {
            max_in_flight: 1,
            max_queue: 1,
            queue_timeout: Duration::from_millis(100),
        });
        let held = c.acquire().await.unwrap();
        assert!(held.is_some());
        assert_eq!(c.in_flight(), 1);
        let c = Arc::new(c);
        let c2 = c.clone();
        let waiter = tokio::spawn(async move { c2.acquire().await.map(|p| p.is_some()) });
        tokio::task::yield_now().await;
        assert_eq!(c.acquire().await.unwrap_err(), Rejected::QueueFull);
        assert_eq!(waiter.await.unwrap(), Err(Rejected::Timeout));
        drop(held);
        assert!(c.acquire().await.unwrap().is_some());
    }
}
