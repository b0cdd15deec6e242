//! Traffic management settings: timeouts per method class, retries with a budget, concurrency
//! limits, health checks, circuit breaking, load balancing over replicas, and rate limits.
//!
//! The file sections (`*Spec`, serde, every field optional) are resolved here into the runtime
//! [`Traffic`] of each target: a target's own section wins field by field over
//! `traffic.defaults`, which wins over the built-in defaults documented on each field. This
//! module only validates and resolves; the machinery lives in `mcpgate-core`'s `traffic`.

use std::time::Duration;

use serde::Deserialize;

use crate::Glob;
use crate::duration::HumanDuration;

// ---- the file as written ----

/// Top-level `traffic:` section.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// Defaults for every target's `timeouts`, `retries`, `concurrency`, `health` and
    /// `circuit_breaker` (a target's own value wins, field by field).
    #[serde(default)]
    pub defaults: TargetTrafficSpec,
    /// Rate limits, each a token bucket (`rate` refill, `burst` capacity); a request must pass
    /// every limit that applies to it.
    #[serde(default)]
    pub rate_limits: Vec<RateLimitSpec>,
}

/// The traffic sections a target (or `traffic.defaults`) may carry.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TargetTrafficSpec {
    /// Timeouts per method class.
    #[serde(default)]
    pub timeouts: Option<TimeoutsSpec>,
    /// Retries of safe requests.
    #[serde(default)]
    pub retries: Option<RetriesSpec>,
    /// Limit on requests in flight to the target.
    #[serde(default)]
    pub concurrency: Option<ConcurrencySpec>,
    /// Active health checks.
    #[serde(default)]
    pub health: Option<HealthSpec>,
    /// Circuit breaking.
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreakerSpec>,
}

/// `timeouts:`
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    /// One `*/list` request (one page) to the target, when the gateway fills its list cache.
    /// Default `30s`.
    #[serde(default)]
    pub list: Option<HumanDuration>,
    /// A call (`tools/call`, `prompts/get`, `resources/read`, `completion/complete`, any other
    /// forwarded request) without a sign of life: each `notifications/progress` for the call
    /// restarts this clock. Default: the target's `request_timeout` (`5m`).
    #[serde(default)]
    pub call: Option<HumanDuration>,
    /// Hard limit of one call however much progress it reports. Default `1h`.
    #[serde(default)]
    pub max_call: Option<HumanDuration>,
}

/// `retries:`
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RetriesSpec {
    /// Attempts in total, the first included (1: never retry). Default `3`.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Backoff before the first retry; doubled after each, with full jitter. Default `100ms`.
    #[serde(default)]
    pub backoff: Option<HumanDuration>,
    /// Largest backoff. Default `2s`.
    #[serde(default)]
    pub max_backoff: Option<HumanDuration>,
    /// Retries allowed as a fraction of requests over `budget_window`. Default `0.2`.
    #[serde(default)]
    pub budget_ratio: Option<f64>,
    /// Retries always allowed per `budget_window`, whatever the ratio. Default `10`.
    #[serde(default)]
    pub budget_min: Option<u32>,
    /// Window over which the budget is counted. Default `10s`.
    #[serde(default)]
    pub budget_window: Option<HumanDuration>,
    /// Upstream tool names (globs) whose `tools/call` may be retried. Default none.
    #[serde(default)]
    pub idempotent_tools: Option<Vec<String>>,
    /// Also retry tools the server annotates `idempotentHint: true` or `readOnlyHint: true`.
    /// Annotations are untrusted hints, so only for servers you trust. Default `false`.
    #[serde(default)]
    pub trust_idempotent_hint: Option<bool>,
}

/// `concurrency:`
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencySpec {
    /// Requests in flight to the target at once (all sessions); 0 = no limit. Default `0`.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Requests waiting for a slot at once; beyond, a request is rejected at once. Default `100`.
    #[serde(default)]
    pub max_queue: Option<usize>,
    /// Longest wait for a slot before the request is rejected. Default `1s`.
    #[serde(default)]
    pub queue_timeout: Option<HumanDuration>,
}

/// `health:`
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// Interval between `ping`s on the target's main upstream session; `0` disables.
    /// Default `15s`.
    #[serde(default)]
    pub interval: Option<HumanDuration>,
    /// Time allowed for one `ping`. Default `5s`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// `circuit_breaker:`
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerSpec {
    /// Consecutive failures (timeouts, lost connections, invalid responses, failed health
    /// checks) that open the circuit; `0` disables circuit breaking. Default `5`.
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// Time an open circuit fails requests fast before letting probes through. Default `30s`.
    #[serde(default)]
    pub open_for: Option<HumanDuration>,
    /// Probes let through at once when half-open; that many successes close it. Default `1`.
    #[serde(default)]
    pub half_open_probes: Option<u32>,
}

/// How requests are spread over the endpoints of a target with several `urls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancing {
    /// Each new upstream session on the next endpoint in turn (default).
    #[default]
    RoundRobin,
    /// Each new upstream session on the endpoint with the fewest requests in flight.
    LeastOutstanding,
}

/// What a rate limit counts per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    /// Every request, one bucket for the whole gateway.
    Global,
    /// Every request, one bucket per identity (token subject / API key subject; all
    /// anonymous sessions share one bucket).
    Identity,
    /// Requests forwarded to a target, one bucket per target.
    Target,
    /// `tools/call` requests, one bucket per target and tool.
    Tool,
}

/// One entry of `traffic.rate_limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// What is counted (`global`, `identity`, `target`, `tool`).
    pub scope: RateScope,
    /// Which requests the limit applies to (a glob): identity subjects for `identity`, target
    /// names for `target`, `target:tool` for `tool` (upstream tool names). Default: all.
    #[serde(default, rename = "match")]
    pub matches: Option<String>,
    /// Refill rate: `N/s`, `N/m`, `N/h` or `N/<duration>` such as `5/10s`.
    pub rate: String,
    /// Bucket size: requests allowed in a burst. Default: `N` of `rate`.
    #[serde(default)]
    pub burst: Option<u32>,
}

// ---- validated ----

/// A target's resolved traffic settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// Timeouts per method class.
    pub timeouts: Timeouts,
    /// Retry policy.
    pub retries: Retries,
    /// Concurrency limit.
    pub concurrency: Concurrency,
    /// Active health checks.
    pub health: Health,
    /// Circuit breaker.
    pub breaker: Breaker,
    /// Endpoint choice for targets with several `urls`.
    pub load_balancing: LoadBalancing,
    /// Every endpoint of an HTTP target, in file order (the first is the transport's `url`);
    /// empty for stdio.
    pub endpoints: Vec<url::Url>,
}

/// Resolved timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// One list page.
    pub list: Duration,
    /// A call without progress.
    pub call: Duration,
    /// A call in total.
    pub max_call: Duration,
}

/// Resolved retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Retries {
    /// Attempts in total (≥ 1).
    pub attempts: u32,
    /// First backoff.
    pub backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Retry budget: fraction of requests.
    pub budget_ratio: f64,
    /// Retry budget: retries always allowed per window.
    pub budget_min: u32,
    /// Retry budget window.
    pub budget_window: Duration,
    /// Tools whose calls may be retried.
    pub idempotent_tools: Vec<Glob>,
    /// Retry tools annotated idempotent or read-only.
    pub trust_idempotent_hint: bool,
}

/// Resolved concurrency limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// In-flight limit (0: none).
    pub max_in_flight: usize,
    /// Waiters limit.
    pub max_queue: usize,
    /// Longest wait.
    pub queue_timeout: Duration,
}

/// Resolved health checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Interval (zero: disabled).
    pub interval: Duration,
    /// Ping timeout.
    pub timeout: Duration,
}

/// Resolved circuit breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    /// Failures that open (0: disabled).
    pub consecutive_failures: u32,
    /// Open period.
    pub open_for: Duration,
    /// Concurrent probes when half-open, and successes needed to close.
    pub half_open_probes: u32,
}

/// A validated rate limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// What is counted.
    pub scope: RateScope,
    /// Which keys it applies to: subject / target glob; for `tool`, the target glob.
    pub matches: Option<Glob>,
    /// For `tool`: the tool-name glob.
    pub tool: Option<Glob>,
    /// Time to refill one request.
    pub period: Duration,
    /// Bucket size.
    pub burst: u32,
    /// The rate as written, for messages.
    pub rate: String,
}

/// Parses `N/s`, `N/m`, `N/h`, `N/<duration>` into (count, per).
pub fn parse_rate(s: &str) -> Result<(u32, Duration), String> {
    let err = || format!("`{s}` is not a rate like `10/s`, `100/m`, `5/h` or `3/10s`");
    let (n, per) = s.trim().split_once('/').ok_or_else(err)?;
    let n: u32 = n.trim().parse().map_err(|_| err())?;
    let per = match per.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => crate::duration::parse_duration(other).map_err(|_| err())?,
    };
    if n == 0 || per.is_zero() {
        return Err(format!("`{s}`: the count and the period must be greater than zero"));
    }
    Ok((n, per))
}

/// A problem in a traffic section: the field (relative to the section's path) and message.
pub(crate) type Problem = (String, String);

fn d(v: Option<HumanDuration>) -> Option<Duration> {
    v.map(|h| h.0)
}

/// Resolves a target's sections over the defaults. `request_timeout` is the target's own
/// `request_timeout` when written (the older name of `timeouts.call`).
pub(crate) fn resolve(
    own: &TargetTrafficSpec,
    defaults: &TargetTrafficSpec,
    request_timeout: Option<Duration>,
    load_balancing: Option<LoadBalancing>,
    endpoints: Vec<url::Url>,
) -> Result<Traffic, Problem> {
    let to = own.timeouts.clone().unwrap_or_default();
    let dto = defaults.timeouts.clone().unwrap_or_default();
    let timeouts = Timeouts {
        list: d(to.list).or(d(dto.list)).unwrap_or(Duration::from_secs(30)),
        call: d(to.call)
            .or(request_timeout)
            .or(d(dto.call))
            .unwrap_or(Duration::from_secs(300)),
        max_call: d(to.max_call).or(d(dto.max_call)).unwrap_or(Duration::from_secs(3600)),
    };
    for (f, v) in [("timeouts.list", timeouts.list), ("timeouts.call", timeouts.call)] {
        if v < Duration::from_millis(10) {
            return Err((f.into(), "must be at least 10ms".into()));
        }
    }
    if timeouts.max_call < timeouts.call {
        return Err((
            "timeouts.max_call".into(),
            format!(
                "must not be shorter than timeouts.call ({}s)",
                timeouts.call.as_secs_f64()
            ),
        ));
    }

    let r = own.retries.clone().unwrap_or_default();
    let dr = defaults.retries.clone().unwrap_or_default();
    let retries = Retries {
        attempts: r.attempts.or(dr.attempts).unwrap_or(3),
        backoff: d(r.backoff).or(d(dr.backoff)).unwrap_or(Duration::from_millis(100)),
        max_backoff: d(r.max_backoff).or(d(dr.max_backoff)).unwrap_or(Duration::from_secs(2)),
        budget_ratio: r.budget_ratio.or(dr.budget_ratio).unwrap_or(0.2),
        budget_min: r.budget_min.or(dr.budget_min).unwrap_or(10),
        budget_window: d(r.budget_window)
            .or(d(dr.budget_window))
            .unwrap_or(Duration::from_secs(10)),
        idempotent_tools: r
            .idempotent_tools
            .or(dr.idempotent_tools)
            .unwrap_or_default()
            .iter()
            .map(|p| Glob::new(p))
            .collect(),
        trust_idempotent_hint: r.trust_idempotent_hint.or(dr.trust_idempotent_hint).unwrap_or(false),
    };
    if retries.attempts == 0 || retries.attempts > 10 {
        return Err(("retries.attempts".into(), "must be between 1 and 10".into()));
    }
    if !(0.0..=1.0).contains(&retries.budget_ratio) {
        return Err(("retries.budget_ratio".into(), "must be between 0 and 1".into()));
    }
    if retries.budget_window < Duration::from_secs(1) {
        return Err(("retries.budget_window".into(), "must be at least 1s".into()));
    }
    if retries.max_backoff < retries.backoff {
        return Err((
            "retries.max_backoff".into(),
            "must not be shorter than retries.backoff".into(),
        ));
    }

    let c = own.concurrency.clone().unwrap_or_default();
    let dc = defaults.concurrency.clone().unwrap_or_default();
    let concurrency = Concurrency {
        max_in_flight: c.max_in_flight.or(dc.max_in_flight).unwrap_or(0),
        max_queue: c.max_queue.or(dc.max_queue).unwrap_or(100),
        queue_timeout: d(c.queue_timeout)
            .or(d(dc.queue_timeout))
            .unwrap_or(Duration::from_secs(1)),
    };

    let h = own.health.clone().unwrap_or_default();
    let dh = defaults.health.clone().unwrap_or_default();
    let health = Health {
        interval: d(h.interval).or(d(dh.interval)).unwrap_or(Duration::from_secs(15)),
        timeout: d(h.timeout).or(d(dh.timeout)).unwrap_or(Duration::from_secs(5)),
    };
    if !health.interval.is_zero() && health.interval < Duration::from_millis(50) {
        return Err(("health.interval".into(), "must be 0 (off) or at least 50ms".into()));
    }
    if health.timeout < Duration::from_millis(10) {
        return Err(("health.timeout".into(), "must be at least 10ms".into()));
    }

    let b = own.circuit_breaker.clone().unwrap_or_default();
    let db = defaults.circuit_breaker.clone().unwrap_or_default();
    let breaker = Breaker {
        consecutive_failures: b.consecutive_failures.or(db.consecutive_failures).unwrap_or(5),
        open_for: d(b.open_for).or(d(db.open_for)).unwrap_or(Duration::from_secs(30)),
        half_open_probes: b.half_open_probes.or(db.half_open_probes).unwrap_or(1),
    };
    if breaker.half_open_probes == 0 {
        return Err(("circuit_breaker.half_open_probes".into(), "must be at least 1".into()));
    }
    if breaker.open_for < Duration::from_millis(10) {
        return Err(("circuit_breaker.open_for".into(), "must be at least 10ms".into()));
    }

    Ok(Traffic {
        timeouts,
        retries,
        concurrency,
        health,
        breaker,
        load_balancing: load_balancing.unwrap_or_default(),
        endpoints,
    })
}

/// Validates one rate limit.
pub(crate) fn rate_limit(spec: &RateLimitSpec) -> Result<RateLimit, Problem> {
    let (n, per) = parse_rate(&spec.rate).map_err(|m| ("rate".to_string(), m))?;
    let burst = spec.burst.unwrap_or(n);
    if burst == 0 {
        return Err(("burst".into(), "must be at least 1".into()));
    }
    let (matches, tool) = match (spec.scope, spec.matches.as_deref()) {
        (_, None) => (None, None),
        (RateScope::Global, Some(_)) => {
            return Err(("match".into(), "a global limit matches every request".into()));
        }
        (RateScope::Tool, Some(m)) => match m.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => (Some(Glob::new(t)), Some(Glob::new(n))),
            _ => {
                return Err((
                    "match".into(),
                    format!("`{m}` is not a `target:tool` pattern (use `*` for any)"),
                ));
            }
        },
        (_, Some(m)) => (Some(Glob::new(m)), None),
    };
    Ok(RateLimit {
        scope: spec.scope,
        matches,
        tool,
        period: per / n,
        burst,
        rate: spec.rate.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<crate::Config, String> {
        crate::Config::from_str(yaml, "test.yaml", false).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_then_file_defaults_then_the_target_win() {
        let c = load("targets:\n  - name: a\n    stdio: {command: x}\n").unwrap();
        let t = &c.targets[0].traffic;
        assert_eq!(t.timeouts.list, Duration::from_secs(30));
        assert_eq!(t.timeouts.call, Duration::from_secs(300));
        assert_eq!(t.timeouts.max_call, Duration::from_secs(3600));
        assert_eq!(t.retries.attempts, 3);
        assert_eq!(t.breaker.consecutive_failures, 5);
        assert_eq!(t.health.interval, Duration::from_secs(15));
        assert_eq!(t.concurrency.max_in_flight, 0);
        assert!(t.endpoints.is_empty());
        assert!(c.rate_limits.is_empty());

        let c = load(
            "traffic:\n  defaults:\n    timeouts: {call: 1m, list: 5s}\n    retries: {attempts: 2}\n  rate_limits:\n    - {scope: tool, match: 'a:echo*', rate: 10/s}\ntargets:\n  - name: a\n    stdio: {command: x}\n    timeouts: {call: 2m}\n  - name: b\n    stdio: {command: x}\n    request_timeout: 90s\n",
        )
        .unwrap();
        let (a, b) = (&c.targets[0].traffic, &c.targets[1].traffic);
        assert_eq!(a.timeouts.call, Duration::from_secs(120), "the target's own value wins");
        assert_eq!(
            a.timeouts.list,
            Duration::from_secs(5),
            "field by field over the defaults"
        );
        assert_eq!(a.retries.attempts, 2);
        assert_eq!(
            b.timeouts.call,
            Duration::from_secs(90),
            "request_timeout is the older name"
        );
        assert_eq!(c.targets[1].request_timeout, Duration::from_secs(90));
        assert_eq!(c.rate_limits[0].burst, 10);
        assert_eq!(c.rate_limits[0].period, Duration::from_millis(100));
        assert!(c.rate_limits[0].tool.as_ref().unwrap().matches("echo_x"));
    }

    #[test]
    fn replicas() {
        let c = load("targets:\n  - name: a\n    streamable_http:\n      urls: ['http://127.0.0.1:1/mcp', 'http://127.0.0.1:2/mcp']\n    load_balancing: least_outstanding\n").unwrap();
        let t = &c.targets[0];
        assert_eq!(t.traffic.endpoints.len(), 2);
        assert_eq!(t.traffic.load_balancing, LoadBalancing::LeastOutstanding);
        match &t.transport {
            crate::Transport::StreamableHttp { url, .. } => assert_eq!(url.port(), Some(1)),
            _ => panic!(),
        }
        let e =
            load("targets:\n  - name: a\n    streamable_http: {url: 'http://x/', urls: ['http://y/']}\n").unwrap_err();
        assert!(e.contains("either `url` or `urls`"), "{e}");
        let e = load("targets:\n  - name: a\n    sse: {}\n").unwrap_err();
        assert!(e.contains("targets[0].sse: needs a `url`"), "{e}");
        let e = load("targets:\n  - name: a\n    sse:\n      urls: ['http://y/', 'ftp://z/']\n").unwrap_err();
        assert!(e.starts_with("test.yaml:4: targets[0].sse.urls[1]: only http"), "{e}");
        let e =
            load("targets:\n  - name: a\n    sse: {url: 'http://y/'}\n    load_balancing: round_robin\n").unwrap_err();
        assert!(e.contains("needs an HTTP target with several `urls`"), "{e}");
    }

    #[test]
    fn bad_values_are_rejected_with_their_position() {
        let e = load("targets:\n  - name: a\n    stdio: {command: x}\n    timeouts: {call: 10m, max_call: 1m}\n")
            .unwrap_err();
        assert!(
            e.starts_with("test.yaml:2: targets[0].timeouts.max_call: must not be shorter"),
            "{e}"
        );
        let e = load("targets:\n  - name: a\n    stdio: {command: x}\n    retries: {attempts: 0}\n").unwrap_err();
        assert!(
            e.contains("targets[0].retries.attempts: must be between 1 and 10"),
            "{e}"
        );
        let e = load("targets:\n  - name: a\n    stdio: {command: x}\n    circuit_breaker: {consecutive_failure: 3}\n")
            .unwrap_err();
        assert!(e.contains("unknown field `consecutive_failure`"), "{e}");
        let e = load("traffic:\n  rate_limits:\n    - {scope: global, rate: 10/fortnight}\n").unwrap_err();
        assert!(
            e.starts_with("test.yaml:3: traffic.rate_limits[0].rate: `10/fortnight` is not a rate"),
            "{e}"
        );
        let e = load("traffic:\n  rate_limits:\n    - {scope: tool, match: echo, rate: 1/s}\n").unwrap_err();
        assert!(
            e.contains("traffic.rate_limits[0].match: `echo` is not a `target:tool` pattern"),
            "{e}"
        );
        let e = load("traffic:\n  rate_limits:\n    - {scope: everyone, rate: 1/s}\n").unwrap_err();
        assert!(e.contains("unknown variant `everyone`"), "{e}");
        let e = load("traffic:\n  defaults:\n    retries: {budget_ratio: 2}\n").unwrap_err();
        assert!(
            e.contains("traffic.defaults.retries.budget_ratio: must be between 0 and 1"),
            "{e}"
        );
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("10/s").unwrap(), (10, Duration::from_secs(1)));
        assert_eq!(parse_rate("100/m").unwrap(), (100, Duration::from_secs(60)));
        assert_eq!(parse_rate(" 5 / h").unwrap(), (5, Duration::from_secs(3600)));
        assert_eq!(parse_rate("3/10s").unwrap(), (3, Duration::from_secs(10)));
        for bad in ["", "10", "x/s", "0/s", "10/0s", "10/fortnight", "-1/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
