//! The circuit breaker of one endpoint: closed → open after N consecutive failures → half-open
//! after a cool-down, where a few probes decide between closed and open again.
//!
//! A pure state machine: time is passed in, so the transitions are unit-tested without
//! sleeping. What counts as a failure is the caller's business (`traffic::Outcome`).

use std::time::Duration;

use mcpgate_config::traffic::Breaker as Config;
use tokio::time::Instant;

/// The breaker's state, as reported in `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests flow.
    Closed,
    /// Requests fail fast until `until`.
    Open {
        /// End of the cool-down.
        until: Instant,
    },
    /// A few probe requests are let through.
    HalfOpen,
}

impl State {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// A request let through, and whether it is a half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// An ordinary request (closed, or breaking disabled).
    Normal,
    /// A probe (half-open): its outcome decides the state.
    Probe,
}

/// What a request's end did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Closed or half-open → open.
    Opened,
    /// Half-open → closed.
    Closed,
}

/// The breaker of one endpoint.
#[derive(Debug)]
pub struct Breaker {
    cfg: Config,
    state: State,
    failures: u32,
    probes_in_flight: u32,
    probe_successes: u32,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: Config) -> Self {
        Breaker {
            cfg,
            state: State::Closed,
            failures: 0,
            probes_in_flight: 0,
            probe_successes: 0,
        }
    }

    /// The state at `now` (an open breaker whose cool-down is over reads as half-open).
    pub fn state(&self, now: Instant) -> State {
        match self.state {
            State::Open { until } if now >= until => State::HalfOpen,
            s => s,
        }
    }

    /// Is it failing requests fast at `now`?
    pub fn is_open(&self, now: Instant) -> bool {
        matches!(self.state(now), State::Open { .. })
    }

    /// Lets a request through, or says how long until one could be.
    pub fn admit(&mut self, now: Instant) -> Result<Admission, Duration> {
        if self.cfg.consecutive_failures == 0 {
            return Ok(Admission::Normal);
        }
        match self.state {
            State::Closed => Ok(Admission::Normal),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } | State::HalfOpen => {
                if matches!(self.state, State::Open { .. }) {
                    self.state = State::HalfOpen;
                    self.probes_in_flight = 0;
                    self.probe_successes = 0;
                }
                if self.probes_in_flight < self.cfg.half_open_probes {
                    self.probes_in_flight += 1;
                    Ok(Admission::Probe)
                } else {
                    // Probes are out; try again about when they should have answered.
                    Err(self.cfg.open_for.min(Duration::from_secs(1)))
                }
            }
        }
    }

    /// Records the end of a request let through as `admission`: `Some(true)` success,
    /// `Some(false)` failure, `None` neither (cancelled, or an error that says nothing about
    /// the upstream's health).
    pub fn record(&mut self, admission: Admission, ok: Option<bool>, now: Instant) -> Option<Transition> {
        if self.cfg.consecutive_failures == 0 {
            return None;
        }
        if admission == Admission::Probe {
            if self.state != State::HalfOpen {
                // Stale: the breaker moved on since this probe was let through.
                return None;
            }
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
            return match ok {
                None => None,
                Some(true) => {
                    self.probe_successes += 1;
                    if self.probe_successes >= self.cfg.half_open_probes {
                        self.state = State::Closed;
                        self.failures = 0;
                        Some(Transition::Closed)
                    } else {
                        None
                    }
                }
                Some(false) => {
                    self.open(now);
                    Some(Transition::Opened)
                }
            };
        }
        match (self.state, ok) {
            (State::Closed, Some(true)) => {
                self.failures = 0;
                None
            }
            (State::Closed, Some(false)) => {
                self.failures += 1;
                if self.failures >= self.cfg.consecutive_failures {
                    self.open(now);
                    Some(Transition::Opened)
                } else {
                    None
                }
            }
            // Requests admitted before the breaker opened say nothing new.
            _ => None,
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open {
            until: now + self.cfg.open_for,
        };
        self.failures = 0;
        self.probes_in_flight = 0;
        self.probe_successes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(n: u32, probes: u32) -> Config {
        Config {
            consecutive_failures: n,
            open_for: Duration::from_secs(10),
            half_open_probes: probes,
        }
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(3, 1));
        for _ in 0..2 {
            assert_eq!(b.admit(t0), Ok(Admission::Normal));
            assert_eq!(b.record(Admission::Normal, Some(false), t0), None);
        }
        // A success resets the count.
        b.record(Admission::Normal, Some(true), t0);
        for _ in 0..2 {
            assert_eq!(b.record(Admission::Normal, Some(false), t0), None);
        }
        // Neutral outcomes neither count nor reset.
        assert_eq!(b.record(Admission::Normal, None, t0), None);
        assert_eq!(b.record(Admission::Normal, Some(false), t0), Some(Transition::Opened));
        assert!(b.is_open(t0));
        assert_eq!(b.admit(t0 + Duration::from_secs(4)), Err(Duration::from_secs(6)));
    }

    #[test]
    fn half_open_probes_close_or_reopen() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(1, 2));
        b.record(Admission::Normal, Some(false), t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t1), State::HalfOpen);
        assert_eq!(b.admit(t1), Ok(Admission::Probe));
        assert_eq!(b.admit(t1), Ok(Admission::Probe));
        assert!(b.admit(t1).is_err(), "only two probes at once");
        assert_eq!(b.record(Admission::Probe, Some(true), t1), None);
        assert_eq!(b.record(Admission::Probe, Some(true), t1), Some(Transition::Closed));
        assert_eq!(b.state(t1), State::Closed);

        b.record(Admission::Normal, Some(false), t1);
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.admit(t2), Ok(Admission::Probe));
        assert_eq!(b.record(Admission::Probe, Some(false), t2), Some(Transition::Opened));
        assert!(b.is_open(t2 + Duration::from_secs(9)));
        // A cancelled probe frees its slot without deciding anything.
        let t3 = t2 + Duration::from_secs(10);
        assert_eq!(b.admit(t3), Ok(Admission::Probe));
        assert_eq!(b.record(Admission::Probe, None, t3), None);
        assert_eq!(b.admit(t3), Ok(Admission::Probe));
    }

    #[test]
    fn disabled_never_opens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(0, 1));
        for _ in 0..100 {
            assert_eq!(b.admit(t0), Ok(Admission::Normal));
            assert_eq!(b.record(Admission::Normal, Some(false), t0), None);
        }
    }

    proptest! {
        /// Whatever happens, an open breaker lets nothing through before its cool-down ends,
        /// half-open never has more probes out than configured, and it only opens after
        /// `n` consecutive failures of ordinary requests (or a failed probe).
        #[test]
        fn invariants(n in 1u32..5, probes in 1u32..3, ops in proptest::collection::vec((0u8..4, 0u64..4000), 1..200)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut b = Breaker::new(Config { consecutive_failures: n, open_for: Duration::from_secs(2), half_open_probes: probes });
            let mut outstanding: Vec<Admission> = Vec::new();
            let mut run = 0u32;
            for (op, dt) in ops {
                now += Duration::from_millis(dt);
                match op {
                    0 => {
                        let before = b.state(now);
                        match b.admit(now) {
                            Ok(a) => {
                                let was_open = matches!(before, State::Open { .. });
                                prop_assert!(!was_open, "an open breaker let a request through");
                                outstanding.push(a);
                            }
                            Err(wait) => prop_assert!(wait > Duration::ZERO),
                        }
                        let out = outstanding.iter().filter(|a| **a == Admission::Probe).count() as u32;
                        if b.state(now) == State::HalfOpen {
                            prop_assert!(b.probes_in_flight <= probes);
                            prop_assert!(b.probes_in_flight <= out);
                        }
                    }
                    1..=3 => {
                        if let Some(a) = outstanding.pop() {
                            let ok = match op { 1 => Some(true), 2 => Some(false), _ => None };
                            let closed_before = b.state == State::Closed;
                            let t = b.record(a, ok, now);
                            if a == Admission::Normal && closed_before {
                                match ok { Some(false) => run += 1, Some(true) => run = 0, None => {} }
                                if t == Some(Transition::Opened) {
                                    prop_assert_eq!(run, n);
                                    run = 0;
                                }
                            }
                            if t == Some(Transition::Closed) { run = 0; }
                            if t == Some(Transition::Opened) { run = 0; }
                        }
                    }
                    _ => unreachable!(),
                }
            }
        }
    }
}
