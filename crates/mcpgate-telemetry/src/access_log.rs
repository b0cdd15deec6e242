//! The access log: one line per MCP request, JSON (for log pipelines) or text (for a
//! terminal), written by a thread of its own so a slow disk or pipe never holds a request up.
//!
//! A line is formatted on the request's task and appended to a shared buffer (a short lock, no
//! system call, no wake-up); the writer thread writes the buffer out every
//! [`FLUSH_EVERY`]. When more than [`MAX_BUFFERED`] bytes are waiting (the output is stuck),
//! new lines are dropped and counted (`mcpgate_access_log_dropped_total`) rather than blocking
//! the gateway or growing without bound.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;

use crate::Request;

/// How often the writer thread writes out what was logged.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Bytes waiting for the writer before new lines are dropped.
pub const MAX_BUFFERED: usize = 8 << 20;

/// What request tasks and the writer thread share.
struct Shared {
    /// Lines not written yet, and whether the log was closed.
    pending: Mutex<(Vec<u8>, bool)>,
}

/// Line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// `key=value` text for people.
    Text,
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogOutput {
    /// The process's standard error (with the gateway's own logs).
    #[default]
    Stderr,
    /// The process's standard output.
    Stdout,
    /// A file, appended to (created when missing).
    File(PathBuf),
}

/// Settings of the access log.
#[derive(Debug, Clone, Default)]
pub struct AccessLogOptions {
    /// Write it at all.
    pub enabled: bool,
    /// Line format.
    pub format: LogFormat,
    /// Destination.
    pub output: LogOutput,
}

/// An open access log. Dropping it writes out what is pending and ends the writer thread.
pub struct AccessLog {
    format: LogFormat,
    shared: Arc<Shared>,
    dropped: Counter,
}

impl AccessLog {
    /// Opens the output and starts the writer thread; `dropped` counts lines lost to a full
    /// queue.
    pub fn open(opts: &AccessLogOptions, dropped: Counter) -> std::io::Result<AccessLog> {
        let out: Box<dyn std::io::Write + Send> = match &opts.output {
            LogOutput::Stderr => Box::new(std::io::stderr()),
            LogOutput::Stdout => Box::new(std::io::stdout()),
            LogOutput::File(path) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new((Vec::with_capacity(64 * 1024), false)),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("mcpgate-access-log".into())
            .spawn(move || write_lines(&writer, out))?;
        Ok(AccessLog {
            format: opts.format,
            shared,
            dropped,
        })
    }

    /// Formats `r` and appends the line for the writer.
    pub fn write(&self, r: &Request<'_>) {
        let line = format_line(self.format, SystemTime::now(), r);
        let mut pending = self.shared.pending.lock();
        if pending.0.len() + line.len() > MAX_BUFFERED {
            drop(pending);
            self.dropped.inc();
            return;
        }
        pending.0.extend_from_slice(line.as_bytes());
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.shared.pending.lock().1 = true;
    }
}

/// The writer thread: every [`FLUSH_EVERY`], writes out what was logged; ends (after a last
/// write) once the log is closed.
fn write_lines(shared: &Shared, mut out: Box<dyn std::io::Write + Send>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let closed = {
            let mut pending = shared.pending.lock();
            std::mem::swap(&mut pending.0, &mut batch);
            pending.1
        };
        if !batch.is_empty() {
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

/// The key under which a request's name is logged.
fn name_key(method: &str) -> &'static str {
    match method {
        "tools/call" => "tool",
        "prompts/get" => "prompt",
        m if m.starts_with("resources/") => "resource",
        _ => "name",
    }
}

/// One line, newline included.
pub(crate) fn format_line(format: LogFormat, now: SystemTime, r: &Request<'_>) -> String {
    let mut s = String::with_capacity(320 + r.arguments.map_or(0, str::len) + r.result.map_or(0, str::len));
    let ts = Timestamp(now);
    match format {
        LogFormat::Json => {
            let _ = write!(s, "{{\"ts\":\"{ts}\"");
            let mut field = |k: &str, v: Option<&str>| {
                if let Some(v) = v {
                    s.push_str(",\"");
                    s.push_str(k);
                    s.push_str("\":");
                    json_string(&mut s, v);
                }
            };
            field("session", r.session);
            field("transport", Some(r.transport));
            field("subject", r.subject);
            field("client_name", r.client_name);
            field("client_version", r.client_version);
            field("method", Some(r.method));
            field("target", r.target);
            field(name_key(r.method), r.name);
            field("outcome", Some(r.outcome.as_str()));
            if let Some(code) = r.error_code {
                let _ = write!(s, ",\"error_code\":{code}");
            }
            let _ = write!(s, ",\"duration_ms\":{}", Millis(r.duration));
            if let Some(up) = r.upstream_duration {
                let _ = write!(s, ",\"upstream_ms\":{}", Millis(up));
            }
            let _ = write!(s, ",\"bytes_in\":{},\"bytes_out\":{}", r.bytes_in, r.bytes_out);
            // Raw JSON from the parsed message: already valid JSON, embedded as is.
            if let Some(a) = r.arguments {
                s.push_str(",\"arguments\":");
                s.push_str(a);
            }
            if let Some(res) = r.result {
                s.push_str(",\"result\":");
                s.push_str(res);
            }
            s.push_str("}\n");
        }
        LogFormat::Text => {
            let _ = write!(s, "{ts} {} {}", r.method, r.outcome.as_str());
            if let Some(code) = r.error_code {
                let _ = write!(s, " code={code}");
            }
            if let Some(t) = r.target {
                let _ = write!(s, " target={t}");
            }
            if let Some(n) = r.name {
                let _ = write!(s, " {}={}", name_key(r.method), Quoted(n));
            }
            let _ = write!(s, " duration={}ms", Millis(r.duration));
            if let Some(up) = r.upstream_duration {
                let _ = write!(s, " upstream={}ms", Millis(up));
            }
            let _ = write!(s, " in={}B out={}B", r.bytes_in, r.bytes_out);
            if let Some(id) = r.session {
                let _ = write!(s, " session={id}");
            }
            let _ = write!(s, " transport={}", r.transport);
            if let Some(sub) = r.subject {
                let _ = write!(s, " subject={}", Quoted(sub));
            }
            if r.client_name.is_some() || r.client_version.is_some() {
                let _ = write!(
                    s,
                    " client={}/{}",
                    Quoted(r.client_name.unwrap_or("-")),
                    Quoted(r.client_version.unwrap_or("-"))
                );
            }
            if let Some(a) = r.arguments {
                let _ = write!(s, " arguments={a}");
            }
            if let Some(res) = r.result {
                let _ = write!(s, " result={res}");
            }
            s.push('\n');
        }
    }
    s
}

/// A JSON string literal of `v`.
fn json_string(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

/// A text-format value: as is when it is one plain word, else a JSON string literal (so a
/// client-chosen name cannot forge fields or lines).
struct Quoted<'a>(&'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain = !self.0.is_empty()
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
        if plain {
            return f.write_str(self.0);
        }
        let mut s = String::with_capacity(self.0.len() + 2);
        json_string(&mut s, self.0);
        f.write_str(&s)
    }
}

/// Milliseconds with microsecond precision.
struct Millis(Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = self.0.as_micros();
        write!(f, "{}.{:03}", us / 1000, us % 1000)
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-25T15:40:00.123Z`.
struct Timestamp(SystemTime);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs();
        let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
        let (y, m, day) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            d.subsec_millis()
        )
    }
}

/// Year, month, day of the proleptic Gregorian calendar for days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn timestamps() {
        assert_eq!(Timestamp(at(0, 0)).to_string(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.789
        assert_eq!(Timestamp(at(951_827_696, 789)).to_string(), "2000-02-29T12:34:56.789Z");
        assert_eq!(Timestamp(at(1_795_000_000, 5)).to_string(), "2026-11-18T11:06:40.005Z");
    }

    fn call() -> Request<'static> {
        Request {
            session: Some("0123abcd"),
            transport: "streamable_http",
            subject: Some("me"),
            client_name: Some("inspector \"cli\""),
            client_version: Some("1.0"),
            method: "tools/call",
            target: Some("tools"),
            name: Some("echo"),
            outcome: Outcome::Ok,
            error_code: None,
            duration: Duration::from_micros(1_234),
            upstream_duration: Some(Duration::from_micros(1_000)),
            bytes_in: 120,
            bytes_out: 300,
            arguments: None,
            result: None,
        }
    }

    #[test]
    fn json_line_is_valid_json_with_every_field() {
        let mut r = call();
        r.arguments = Some(r#"{"message":"hi"}"#);
        let line = format_line(LogFormat::Json, at(0, 0), &r);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ts": "1970-01-01T00:00:00.000Z",
                "session": "0123abcd",
                "transport": "streamable_http",
                "subject": "me",
                "client_name": "inspector \"cli\"",
                "client_version": "1.0",
                "method": "tools/call",
                "target": "tools",
                "tool": "echo",
                "outcome": "ok",
                "duration_ms": 1.234,
                "upstream_ms": 1.0,
                "bytes_in": 120,
                "bytes_out": 300,
                "arguments": {"message": "hi"},
            })
        );
    }

    #[test]
    fn json_escapes_control_characters() {
        let mut r = call();
        r.subject = Some("a\nb\u{1}");
        let line = format_line(LogFormat::Json, at(0, 0), &r);
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["subject"], "a\nb\u{1}");
    }

    #[test]
    fn text_line() {
        let mut r = call();
        r.outcome = Outcome::InvalidRequest;
        r.error_code = Some(-32602);
        let line = format_line(LogFormat::Text, at(0, 0), &r);
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z tools/call invalid_request code=-32602 target=tools tool=echo \
             duration=1.234ms upstream=1.000ms in=120B out=300B session=0123abcd transport=streamable_http \
             subject=me client=\"inspector \\\"cli\\\"\"/1.0\n"
        );
    }

    #[test]
    fn a_file_output_receives_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let dropped = Counter::default();
        let log = AccessLog::open(
            &AccessLogOptions {
                enabled: true,
                format: LogFormat::Json,
                output: LogOutput::File(path.clone()),
            },
            dropped.clone(),
        )
        .unwrap();
        for _ in 0..3 {
            log.write(&call());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 3 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "lines not written: {text:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(dropped.get(), 0);
    }
}
