//! Run-time knobs of the example server: the `Options` struct shared by the CLI and in-process
//! users (tests, benchmarks), and the fault modes tests use to simulate broken upstreams.
//!
//! This module only describes behaviour; the transports and the dispatcher act on it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Default `serverInfo.name` reported by `initialize`.
pub const DEFAULT_NAME: &str = "mcpgate-example";

/// Everything that changes how the example server behaves.
///
/// `Options::default()` is the friendly example server: no pagination, no extra tools, no faults.
#[derive(Debug, Clone)]
pub struct Options {
    /// `serverInfo.name` in the `initialize` result.
    pub name: String,
    /// Page size for `tools/list`, `prompts/list`, `resources/list` and
    /// `resources/templates/list`; `None` returns every item in one page.
    pub page_size: Option<usize>,
    /// Number of generated tools `tool_0000`, `tool_0001`, … (each echoes its `message`),
    /// for big-list benchmarks.
    pub extra_tools: usize,
    /// When set, the tool `blob_result` exists and returns a text of exactly this many bytes.
    pub result_bytes: Option<usize>,
    /// Delay applied to every `tools/call` before the tool runs (cancellable).
    pub call_delay: Duration,
    /// Injected faults, for tests of how a gateway copes with broken servers.
    pub faults: Vec<Fault>,
    /// HTTP only: serve Streamable HTTP without sessions (no `Mcp-Session-Id`, no GET stream,
    /// no server→client requests).
    pub stateless: bool,
    /// HTTP only: answer every POSTed request with a `text/event-stream` response, even when a
    /// single JSON object would do.
    pub sse_responses: bool,
    /// The tool `echo_meta` exists (it returns its request's `params._meta`), and HTTP keeps
    /// the `traceparent` header of every POST (see `HttpFixture::traceparents`): fixtures for
    /// tests of trace-context propagation.
    pub echo_meta: bool,
    /// Which protocol generation(s) the server speaks: the session-based revisions only (the
    /// default), only the stateless 2026-07-28 revision, or both side by side.
    pub era: Era,
    /// `ttlMs` of cacheable 2026-07-28 results (`server/discover`, the lists, `resources/read`
    /// except the live `example://counter`, which is always 0).
    pub ttl_ms: u64,
    /// The `x-mcp-header` fixtures exist (`--xheader-tools`): `xh_route`, whose parameters
    /// are mirrored into `Mcp-Param-*` headers, and `xh_bad_*`, each with annotations that
    /// break one of the spec's constraints (a client or gateway must not list them). Every one
    /// answers with its arguments as structured content `{arguments}`.
    pub xheader_tools: bool,
    /// HTTP, 2026-07-28: send an SSE comment line (`:`) on a `subscriptions/listen` stream
    /// whenever this long passes without a notification (`None`: never).
    pub listen_keep_alive: Option<Duration>,
    /// 2026-07-28: cacheable results say `cacheScope: "private"` instead of `"public"` (a
    /// server whose lists depend on the caller).
    pub cache_private: bool,
}

/// The protocol generation(s) an example server speaks (`--era`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Era {
    /// Session-based revisions only (2024-11-05 … 2025-11-25): `initialize`, sessions,
    /// server→client requests. `server/discover` is an unknown method.
    #[default]
    Session,
    /// Only the stateless revision 2026-07-28: `server/discover`, per-request `_meta`,
    /// multi-round-trip results, `subscriptions/listen`; `initialize` is refused.
    Modern,
    /// Both: `initialize` opens a session as in [`Era::Session`]; a request whose
    /// `params._meta` carries `io.modelcontextprotocol/protocolVersion` (on HTTP: or whose
    /// `MCP-Protocol-Version` header names a non-session revision, without `Mcp-Session-Id`)
    /// is served statelessly as in [`Era::Modern`].
    Dual,
}

impl Era {
    /// Whether stateless 2026-07-28 requests are served.
    pub fn modern(self) -> bool {
        self != Era::Session
    }

    /// Whether `initialize` sessions are served.
    pub fn session(self) -> bool {
        self != Era::Modern
    }
}

/// An `--era` value that could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid era {0:?}: expected session, modern or dual")]
pub struct EraParseError(String);

impl FromStr for Era {
    type Err = EraParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "session" => Ok(Era::Session),
            "modern" => Ok(Era::Modern),
            "dual" => Ok(Era::Dual),
            _ => Err(EraParseError(s.to_owned())),
        }
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Era::Session => "session",
            Era::Modern => "modern",
            Era::Dual => "dual",
        })
    }
}

/// Default `ttlMs` of cacheable 2026-07-28 results.
pub const DEFAULT_TTL_MS: u64 = 30_000;

impl Default for Options {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            page_size: None,
            extra_tools: 0,
            result_bytes: None,
            call_delay: Duration::ZERO,
            faults: Vec::new(),
            stateless: false,
            sse_responses: false,
            echo_meta: false,
            era: Era::Session,
            ttl_ms: DEFAULT_TTL_MS,
            xheader_tools: false,
            listen_keep_alive: None,
            cache_private: false,
        }
    }
}

impl Options {
    /// True when `tools/call` must never be answered.
    pub(crate) fn hangs(&self) -> bool {
        self.faults.iter().any(|f| matches!(f, Fault::Hang))
    }

    /// The number of `tools/call` answered before the rest hang, if any.
    pub(crate) fn hang_after(&self) -> Option<u64> {
        self.faults.iter().find_map(|f| match f {
            Fault::HangAfter(n) => Some(*n),
            _ => None,
        })
    }

    /// The number of `*/list` requests answered with garbage before the rest are answered.
    pub(crate) fn flaky_lists(&self) -> u64 {
        self.faults
            .iter()
            .find_map(|f| match f {
                Fault::FlakyLists(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// True when `tools/call` must be answered with bytes that are not JSON.
    pub(crate) fn garbage(&self) -> bool {
        self.faults.iter().any(|f| matches!(f, Fault::Garbage))
    }

    /// Delay before answering each `tools/call` (the `slow` fault).
    pub(crate) fn slow_calls(&self) -> Duration {
        self.faults
            .iter()
            .find_map(|f| match f {
                Fault::Slow(d) => Some(*d),
                _ => None,
            })
            .unwrap_or(Duration::ZERO)
    }

    /// True when `tools/call` floods log notifications forever.
    pub(crate) fn floods(&self) -> bool {
        self.faults.contains(&Fault::Flood)
    }

    /// True when a stdio `tools/call` gets half a response before the process exits.
    pub(crate) fn crashes_mid_response(&self) -> bool {
        self.faults.contains(&Fault::CrashMidResponse)
    }

    /// The number of requests answered before the injected crash, if any.
    pub(crate) fn crash_after(&self) -> Option<u64> {
        self.faults.iter().find_map(|f| match f {
            Fault::CrashAfter(n) => Some(*n),
            _ => None,
        })
    }

    /// Delay before answering `initialize`.
    pub(crate) fn slow_start(&self) -> Duration {
        self.faults
            .iter()
            .find_map(|f| match f {
                Fault::SlowStart(d) => Some(*d),
                _ => None,
            })
            .unwrap_or(Duration::ZERO)
    }
}

/// A fault injected on purpose, for gateway tests. Written on the command line as
/// `hang`, `crash-after:N`, `garbage`, `slow-start:MS`, `hang-after:N`, `flaky-lists:N`,
/// `slow:MS`, `flood` or `crash-mid-response`. A flapping server is `crash-after:N` restarted
/// by the gateway's supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never answer `tools/call` (other methods still work). A cancellation still stops it.
    Hang,
    /// Answer the first N JSON-RPC requests (`initialize` included); on request N+1 the stdio
    /// server exits with status 1 (in process: `serve_*` returns an error) and the HTTP server
    /// drops the connection that carries it, and every later one, without a response.
    CrashAfter(u64),
    /// Answer `tools/call` with bytes that are not JSON: a non-JSON line on stdout, a non-JSON
    /// `application/json` body (or SSE `data:`) on HTTP.
    Garbage,
    /// Sleep this long before answering `initialize`.
    SlowStart(Duration),
    /// Answer the first N `tools/call` requests, then never answer one again (like `hang`).
    HangAfter(u64),
    /// Answer the first N `*/list` requests with bytes that are not JSON (as `garbage` does
    /// for calls), then answer normally: a server that recovers from a transient fault.
    FlakyLists(u64),
    /// Sleep this long before answering each `tools/call` (cancellable).
    Slow(Duration),
    /// `tools/call` never answers: it sends 16 KiB `notifications/message` logs every
    /// millisecond until cancelled (a server streaming forever).
    Flood,
    /// stdio: `tools/call` gets the first half of a response line, then the server exits with
    /// status 1 (a crash in the middle of writing a response).
    CrashMidResponse,
}

/// A `--fault` value that could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "invalid fault {0:?}: expected hang, crash-after:N, garbage, slow-start:MS, hang-after:N, flaky-lists:N, slow:MS, flood or crash-mid-response"
)]
pub struct FaultParseError(String);

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || FaultParseError(s.to_owned());
        match s.split_once(':') {
            None if s == "hang" => Ok(Fault::Hang),
            None if s == "garbage" => Ok(Fault::Garbage),
            None if s == "flood" => Ok(Fault::Flood),
            None if s == "crash-mid-response" => Ok(Fault::CrashMidResponse),
            Some(("slow", ms)) => ms
                .parse()
                .map(|ms| Fault::Slow(Duration::from_millis(ms)))
                .map_err(|_| err()),
            Some(("crash-after", n)) => n.parse().map(Fault::CrashAfter).map_err(|_| err()),
            Some(("hang-after", n)) => n.parse().map(Fault::HangAfter).map_err(|_| err()),
            Some(("flaky-lists", n)) => n.parse().map(Fault::FlakyLists).map_err(|_| err()),
            Some(("slow-start", ms)) => ms
                .parse()
                .map(|ms| Fault::SlowStart(Duration::from_millis(ms)))
                .map_err(|_| err()),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Hang => f.write_str("hang"),
            Fault::CrashAfter(n) => write!(f, "crash-after:{n}"),
            Fault::Garbage => f.write_str("garbage"),
            Fault::SlowStart(d) => write!(f, "slow-start:{}", d.as_millis()),
            Fault::HangAfter(n) => write!(f, "hang-after:{n}"),
            Fault::FlakyLists(n) => write!(f, "flaky-lists:{n}"),
            Fault::Slow(d) => write!(f, "slow:{}", d.as_millis()),
            Fault::Flood => f.write_str("flood"),
            Fault::CrashMidResponse => f.write_str("crash-mid-response"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_print() {
        for s in [
            "hang",
            "garbage",
            "crash-after:3",
            "slow-start:250",
            "hang-after:2",
            "flaky-lists:1",
            "slow:40",
            "flood",
            "crash-mid-response",
        ] {
            let f: Fault = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert_eq!("crash-after:7".parse::<Fault>().unwrap(), Fault::CrashAfter(7));
        for bad in ["", "crash", "crash-after:", "crash-after:x", "slow-start:-1", "hang:1"] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }

    #[test]
    fn eras_parse_and_print() {
        for s in ["session", "modern", "dual"] {
            assert_eq!(s.parse::<Era>().unwrap().to_string(), s);
        }
        assert!("legacy".parse::<Era>().is_err());
        assert_eq!(Options::default().era, Era::Session);
        assert!(Era::Dual.modern() && Era::Dual.session());
        assert!(!Era::Modern.session() && !Era::Session.modern());
    }
}
