//! The core's side of metrics and the access log: what one MCP request was (target, tool,
//! upstream time) and how it ended, reported to [`mcpgate_telemetry`] once per request.
//!
//! The routing code notes what it learns with one call each — [`note_call`] (or
//! [`note_resource`]) where a name is resolved to a target, [`note_target`] where a request is
//! forwarded, [`note_upstream`] around the upstream round trip — into a task-local record that
//! exists only while telemetry wants requests (otherwise the calls do nothing).
//! `Gateway::handle_traced` opens the record ([`with_notes`]) and reports the request when its
//! response is ready. Spans (OpenTelemetry) are `trace.rs`'s business, not this module's.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mcpgate_config::Config;
use mcpgate_proto::raw::{member, str_member};
use mcpgate_proto::{Message, RawJson};
use mcpgate_telemetry::{AccessLogOptions, LogFormat, LogOutput, MetricsOptions, Options, Outcome, Telemetry};

use crate::error::GatewayError;
use crate::session::{DownstreamKind, Session};
use crate::target::TargetRt;

tokio::task_local! {
    static NOTES: RefCell<Notes>;
}

/// What the routing code learned about one request.
#[derive(Default)]
pub(crate) struct Notes {
    /// The target the request was routed to.
    target: Option<Arc<str>>,
    /// The tool or prompt (upstream name) or resource URI.
    name: Option<Arc<str>>,
    /// Time spent waiting for upstream responses (summed over retries).
    upstream: Option<Duration>,
    /// The arguments, when the target logs them.
    arguments: Option<RawJson>,
    /// Does the target log its results?
    log_results: bool,
}

/// Runs `fut` with a fresh record when `on`, returning the record with the output.
pub(crate) async fn with_notes<F: Future>(on: bool, fut: F) -> (F::Output, Option<Notes>) {
    if !on {
        return (fut.await, None);
    }
    NOTES
        .scope(RefCell::new(Notes::default()), async {
            let out = fut.await;
            (out, Some(NOTES.with(|n| n.take())))
        })
        .await
}

/// The request is for `name` (a tool or prompt's upstream name) on target `t`, with
/// `arguments`.
pub(crate) fn note_call(t: &TargetRt, name: &Arc<str>, arguments: Option<&RawJson>) {
    let _ = NOTES.try_with(|n| {
        let mut n = n.borrow_mut();
        n.target = Some(t.name().clone());
        n.name = Some(name.clone());
        n.arguments = arguments.filter(|_| t.cfg.log_arguments).cloned();
        n.log_results = t.cfg.log_results;
    });
}

/// The request is for resource `uri` on target `t` (`arguments`: a completion's argument).
pub(crate) fn note_resource(t: &TargetRt, uri: &str, arguments: Option<&RawJson>) {
    let _ = NOTES.try_with(|n| {
        let mut n = n.borrow_mut();
        n.target = Some(t.name().clone());
        n.name = Some(Arc::from(uri));
        n.arguments = arguments.filter(|_| t.cfg.log_arguments).cloned();
        n.log_results = t.cfg.log_results;
    });
}

/// The request was sent to target `t` (for requests routed without a name).
pub(crate) fn note_target(t: &TargetRt) {
    let _ = NOTES.try_with(|n| {
        let mut n = n.borrow_mut();
        if n.target.is_none() {
            n.target = Some(t.name().clone());
            n.log_results = t.cfg.log_results;
        }
    });
}

/// An upstream round trip of the request took `took`.
pub(crate) fn note_upstream(took: Duration) {
    let _ = NOTES.try_with(|n| {
        let mut n = n.borrow_mut();
        n.upstream = Some(n.upstream.unwrap_or_default() + took);
    });
}

/// The telemetry a config asks for. An access log file that cannot be opened is logged and
/// left out (the binary checks it before starting, see [`check_access_log`]).
pub(crate) fn telemetry(config: &Config) -> Telemetry {
    let opts = options(config);
    match Telemetry::new(&opts) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "Cannot open the access log; continuing without it.");
            let mut opts = opts;
            opts.access_log.enabled = false;
            Telemetry::new(&opts).expect("no access log to open")
        }
    }
}

/// Opens the access log file of `config` (if any) to report a problem before start-up.
pub fn check_access_log(config: &Config) -> std::io::Result<()> {
    let a = &config.observability.access_log;
    if let (true, mcpgate_config::AccessLogOutput::File(path)) = (a.enabled, &a.output) {
        std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    }
    Ok(())
}

fn options(config: &Config) -> Options {
    let o = &config.observability;
    Options {
        metrics: MetricsOptions {
            enabled: o.metrics.enabled,
            max_tools_per_target: o.metrics.max_tools_per_target,
        },
        access_log: AccessLogOptions {
            enabled: o.access_log.enabled,
            format: match o.access_log.format {
                mcpgate_config::AccessLogFormat::Json => LogFormat::Json,
                mcpgate_config::AccessLogFormat::Text => LogFormat::Text,
            },
            output: match &o.access_log.output {
                mcpgate_config::AccessLogOutput::Stderr => LogOutput::Stderr,
                mcpgate_config::AccessLogOutput::Stdout => LogOutput::Stdout,
                mcpgate_config::AccessLogOutput::File(p) => LogOutput::File(p.clone()),
            },
        },
    }
}

/// How a handled request ended, and the JSON-RPC error code of an error response.
pub(crate) fn outcome(method: &str, result: &Result<Message, GatewayError>) -> (Outcome, Option<i64>) {
    match result {
        Err(e) => (e.outcome(), Some(e.code().0)),
        Ok(m) => match (&m.error, &m.result) {
            (Some(err), _) => (Outcome::UpstreamError, member(err, "code").and_then(|c| c.as_i64())),
            (None, Some(_)) if method == "tools/call" && m.is_tool_error() => (Outcome::ToolError, None),
            _ => (Outcome::Ok, None),
        },
    }
}

/// Everything about a request known before it is handled.
pub(crate) struct Started {
    pub at: tokio::time::Instant,
    pub method: mcpgate_proto::JsonStr,
    pub bytes_in: u64,
    /// `clientInfo` of an `initialize` request (other requests: the session's).
    pub client_info: Option<RawJson>,
}

impl Started {
    pub(crate) fn now(request: &Message) -> Started {
        Started {
            at: tokio::time::Instant::now(),
            method: request
                .method
                .clone()
                .unwrap_or(mcpgate_proto::JsonStr::from_static("")),
            bytes_in: encoded_len(request),
            client_info: None,
        }
    }

    /// For an `initialize` request, whose client is not a session yet.
    pub(crate) fn initialize(request: &Message) -> Started {
        Started {
            client_info: request.params.as_ref().and_then(|p| member(p, "clientInfo")),
            ..Started::now(request)
        }
    }
}

/// Reports one finished request.
pub(crate) fn report(
    telemetry: &Telemetry,
    kind: DownstreamKind,
    session: Option<&Session>,
    started: &Started,
    notes: Option<Notes>,
    (outcome, error_code): (Outcome, Option<i64>),
    response: &Message,
) {
    let notes = notes.unwrap_or_default();
    let duration = started.at.elapsed();
    let bytes_out = encoded_len(response);
    if !telemetry.access_log_enabled() {
        telemetry.request(&mcpgate_telemetry::Request {
            transport: kind.as_str(),
            method: &started.method,
            target: notes.target.as_deref(),
            name: notes.name.as_deref(),
            outcome,
            error_code,
            duration,
            upstream_duration: notes.upstream,
            bytes_in: started.bytes_in,
            bytes_out,
            ..Default::default()
        });
        return;
    }
    let (client_name, client_version) = match session {
        Some(s) => (
            str_member(&s.client_info, "name"),
            str_member(&s.client_info, "version"),
        ),
        None => {
            let info = started.client_info.as_ref();
            (
                info.as_ref().and_then(|i| str_member(i, "name")),
                info.as_ref().and_then(|i| str_member(i, "version")),
            )
        }
    };
    let result = response.result.as_ref().filter(|_| notes.log_results);
    telemetry.request(&mcpgate_telemetry::Request {
        session: session.map(|s| &*s.id),
        transport: kind.as_str(),
        subject: session.and_then(|s| s.identity()).map(|i| i.subject.as_str()),
        client_name: client_name.as_deref(),
        client_version: client_version.as_deref(),
        method: &started.method,
        target: notes.target.as_deref(),
        name: notes.name.as_deref(),
        outcome,
        error_code,
        duration,
        upstream_duration: notes.upstream,
        bytes_in: started.bytes_in,
        bytes_out,
        arguments: notes.arguments.as_ref().map(RawJson::as_str),
        result: result.map(RawJson::as_str),
    });
}

/// The size of `m` as the gateway writes it (`Message::write`), without writing it.
pub(crate) fn encoded_len(m: &Message) -> u64 {
    fn string_len(s: &str) -> usize {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            s.len() + 2
        } else {
            serde_json::to_string(s).map_or(s.len() + 2, |j| j.len())
        }
    }
    let raw = |r: &Option<RawJson>, key: usize| r.as_ref().map_or(0, |r| key + r.as_bytes().len());
    // {"jsonrpc":"2.0"  ,"id":  ,"method":  ,"params":  ,"result":  ,"error":  }
    let mut n = 16 + raw(&m.id, 6) + raw(&m.params, 10) + raw(&m.result, 10) + raw(&m.error, 9) + 1;
    if let Some(method) = &m.method {
        n += 10 + string_len(method);
    }
    for (k, v) in &m.extra {
        n += 2 + string_len(k) + v.as_bytes().len();
    }
    n as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_is_exact() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a\"b","result":{"content":[]}}"#,
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"no"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/x\n","x-extra":[1,2]}"#,
        ] {
            let m = Message::parse(bytes::Bytes::from(text)).unwrap();
            assert_eq!(encoded_len(&m), m.to_bytes().len() as u64, "{text}");
        }
    }

    #[test]
    fn outcomes_of_responses() {
        let ok = |text: &str| Ok(Message::parse(bytes::Bytes::copy_from_slice(text.as_bytes())).unwrap());
        let r = ok(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#);
        assert_eq!(outcome("tools/call", &r), (Outcome::ToolError, None));
        // isError means something only for tools/call, and only at the top of the result.
        assert_eq!(outcome("prompts/get", &r), (Outcome::Ok, None));
        let r = ok(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"isError":true}],"isError":false}}"#);
        assert_eq!(outcome("tools/call", &r), (Outcome::Ok, None));
        let r = ok(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}"#);
        assert_eq!(outcome("tools/call", &r), (Outcome::UpstreamError, Some(-32602)));
        let e = Err(GatewayError::Timeout { target: "t".into() });
        assert_eq!(outcome("tools/call", &e), (Outcome::Timeout, Some(-32003)));
    }
}
