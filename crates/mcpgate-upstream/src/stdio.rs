//! The stdio transport: a server subprocess in its own process group speaking
//! newline-delimited JSON-RPC on stdin/stdout.
//!
//! Owns the child's lifetime: one writer task fed by a bounded queue, one stdout reader
//! (lines bounded by the message limit; non-JSON lines are logged and skipped up to a bound),
//! one stderr logger (bounded lines, logged through `tracing`), and one supervisor that notices
//! the exit, and on close or drop closes stdin, waits, SIGTERMs then SIGKILLs the process group,
//! and always reaps the child. Message framing (no raw line breaks inside a line) is done by
//! the encoder in [`crate::connection`].

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::connection::Shared;
use crate::pending::Driver;
use crate::{StderrTail, UpstreamError};

/// Messages queued for the writer before senders wait.
const QUEUE: usize = 256;
/// How long a server gets to exit after its stdin is closed, and again after SIGTERM.
const GRACE: Duration = Duration::from_secs(2);
/// How long leftover members of the process group get after SIGTERM.
const STRAGGLER_GRACE: Duration = Duration::from_millis(500);
/// After stdout closes, how long to wait for the exit status before declaring the connection lost.
const EOF_EXIT_WAIT: Duration = Duration::from_millis(250);
/// Non-JSON-RPC stdout lines tolerated over a connection's life.
const MAX_GARBAGE_LINES: usize = 1000;
/// Longest stderr line logged; the rest of the line is dropped.
const MAX_STDERR_LINE: usize = 4096;
/// Bytes of a skipped line shown in the log.
const PREVIEW: usize = 200;
/// Size of a fresh stdout read buffer, and the free space below which one is allocated.
const READ_CHUNK: usize = 64 * 1024;
const MIN_FREE: usize = 4 * 1024;

/// The client side of a stdio server.
pub(crate) struct StdioTransport {
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    terminated: CancellationToken,
    pid: u32,
}

impl StdioTransport {
    /// Spawns the server and its I/O tasks.
    pub(crate) fn spawn(
        command: &str,
        args: &[String],
        env: &[(String, String)],
        cwd: Option<&Path>,
        shared: Arc<Shared>,
        tail: Option<Arc<StderrTail>>,
    ) -> Result<Self, UpstreamError> {
        let mut cmd = Command::new(command);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd.spawn().map_err(|e| UpstreamError::Spawn(Arc::new(e)))?;
        let pid = child.id().expect("a child that was not waited for has a pid");
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three pipes were requested");
        };
        tracing::debug!(target = %shared.target, pid, command, "Started upstream process.");

        let (tx, rx) = mpsc::channel(QUEUE);
        let terminated = CancellationToken::new();
        let (eof_tx, eof_rx) = oneshot::channel();
        let writer = tokio::spawn(write_loop(stdin, rx, shared.clone()));
        tokio::spawn(read_loop(stdout, shared.clone(), eof_tx));
        tokio::spawn(log_stderr(stderr, shared.target.clone(), tail, terminated.clone()));
        tokio::spawn(supervise(
            child,
            pid,
            shared.clone(),
            writer,
            eof_rx,
            terminated.clone(),
        ));
        Ok(StdioTransport {
            tx,
            shared,
            terminated,
            pid,
        })
    }

    /// Queues a request; returns a driver only when the queue is full.
    pub(crate) fn start(&self, line: Bytes) -> Result<Option<Driver>, UpstreamError> {
        match self.tx.try_send(line) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(line)) => {
                let tx = self.tx.clone();
                let shared = self.shared.clone();
                Ok(Some(Box::pin(async move {
                    tx.send(line).await.map_err(|_| shared.closed_error())
                })))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.shared.closed_error()),
        }
    }

    /// Queues a notification or response.
    pub(crate) async fn send(&self, line: Bytes) -> Result<(), UpstreamError> {
        self.tx.send(line).await.map_err(|_| self.shared.closed_error())
    }

    /// The server's process id (also its process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves once the process has been reaped and its group signalled.
    pub(crate) async fn terminated(&self) {
        self.terminated.cancelled().await
    }
}

async fn write_loop(mut stdin: ChildStdin, mut rx: mpsc::Receiver<Bytes>, shared: Arc<Shared>) {
    loop {
        let line = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break,
            line = rx.recv() => match line {
                Some(line) => line,
                None => break,
            },
        };
        let result = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break,
            result = stdin.write_all(&line) => result,
        };
        if let Err(e) = result {
            // Usually the process is exiting; let the supervisor report its exit status.
            if tokio::time::timeout(EOF_EXIT_WAIT, shared.cancel.cancelled())
                .await
                .is_err()
            {
                shared.finish(Some(UpstreamError::io(e)));
            }
            break;
        }
    }
    // Dropping stdin closes it: the polite request to exit.
}

/// A line longer than the message bound, being skipped.
struct Oversized {
    /// Our request id, if the line's start showed it.
    head_id: Option<u64>,
    /// The last bytes seen, where a trailing `"id":N}` would be.
    tail: Vec<u8>,
}

const TAIL: usize = 64;

impl Oversized {
    fn new(start: &[u8]) -> Self {
        let mut o = Oversized {
            head_id: top_level_id(start),
            tail: Vec::with_capacity(TAIL * 2),
        };
        o.push(start);
        o
    }

    fn push(&mut self, bytes: &[u8]) {
        let keep = &bytes[bytes.len().saturating_sub(TAIL)..];
        self.tail.extend_from_slice(keep);
        if self.tail.len() > TAIL {
            self.tail.drain(..self.tail.len() - TAIL);
        }
    }

    /// Fails the request the line answered, when its id could be found.
    fn report(self, shared: &Shared) {
        let limit = shared.max_message_bytes;
        let id = self.head_id.or_else(|| trailing_id(&self.tail));
        tracing::warn!(target = %shared.target, limit, id, "Skipped an upstream message larger than the limit.");
        if let Some(id) = id {
            shared.pending.complete(id, Err(UpstreamError::TooLarge(limit)));
        }
    }
}

async fn read_loop(mut stdout: ChildStdout, shared: Arc<Shared>, eof: oneshot::Sender<()>) {
    let max = shared.max_message_bytes;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // Bytes at the front of `buf` already known to hold no line break.
    let mut scanned = 0;
    let mut oversized: Option<Oversized> = None;
    let mut garbage = 0usize;
    loop {
        while let Some(i) = memchr::memchr(b'\n', &buf[scanned..]) {
            let end = scanned + i;
            let line = buf.split_to(end + 1).freeze();
            scanned = 0;
            if let Some(mut skipped) = oversized.take() {
                skipped.push(&line[..end]);
                skipped.report(&shared);
            } else if end > max {
                Oversized::new(&line[..end]).report(&shared);
            } else if !on_line(line.slice(..end), &shared, &mut garbage) {
                return;
            }
        }
        scanned = buf.len();
        if let Some(skipped) = &mut oversized {
            skipped.push(&buf);
            buf.clear();
            scanned = 0;
        } else if buf.len() > max {
            oversized = Some(Oversized::new(&buf));
            buf.clear();
            scanned = 0;
        }
        if buf.capacity() - buf.len() < MIN_FREE {
            // Lines already handed out keep their part of the old buffer alive.
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            read = stdout.read_buf(&mut buf) => read,
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(target = %shared.target, error = %e, "Reading the upstream's stdout failed.");
                break;
            }
        }
    }
    let _ = eof.send(());
}

/// Handles one stdout line; false when the connection must end.
fn on_line(line: Bytes, shared: &Shared, garbage: &mut usize) -> bool {
    let line = trim_line(line);
    if line.is_empty() {
        return true;
    }
    if let Err(e) = shared.dispatch_bytes(line.clone(), None, None) {
        *garbage += 1;
        let preview = String::from_utf8_lossy(&line[..line.len().min(PREVIEW)]);
        tracing::warn!(target = %shared.target, error = %e, line = %preview, "Skipped a stdout line that is not a JSON-RPC message.");
        if *garbage > MAX_GARBAGE_LINES {
            shared.finish(Some(UpstreamError::Protocol(format!(
                "more than {MAX_GARBAGE_LINES} stdout lines were not JSON-RPC messages"
            ))));
            return false;
        }
    }
    true
}

fn trim_line(mut line: Bytes) -> Bytes {
    while line.last().is_some_and(|b| b.is_ascii_whitespace()) {
        line.truncate(line.len() - 1);
    }
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    line.slice(start..)
}

/// Finds `"id": <number>` among the members of the top-level object at the start of `json`
/// (which may be cut short).
fn top_level_id(json: &[u8]) -> Option<u64> {
    let mut depth = 0usize;
    let mut expect_key = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < json.len() && json[j] != b'"' {
                    j += if json[j] == b'\\' { 2 } else { 1 };
                }
                if j >= json.len() {
                    return None;
                }
                if depth == 1 && expect_key {
                    expect_key = false;
                    let mut k = j + 1;
                    while json.get(k).is_some_and(u8::is_ascii_whitespace) {
                        k += 1;
                    }
                    if json.get(k) != Some(&b':') {
                        return None;
                    }
                    if &json[start..j] == b"id" {
                        return leading_number(&json[k + 1..]);
                    }
                    i = k + 1;
                    continue;
                }
                i = j + 1;
                continue;
            }
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Reads `"id":N}` at the very end of a top-level object (where some SDKs put the id).
fn trailing_id(tail: &[u8]) -> Option<u64> {
    let body = tail.trim_ascii_end().strip_suffix(b"}")?.trim_ascii_end();
    let digits_start = body.iter().rposition(|b| !b.is_ascii_digit())? + 1;
    let number = &body[digits_start..];
    let rest = body[..digits_start]
        .trim_ascii_end()
        .strip_suffix(b":")?
        .trim_ascii_end();
    if !rest.ends_with(b"\"id\"") {
        return None;
    }
    std::str::from_utf8(number).ok()?.parse().ok()
}

fn leading_number(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii_start();
    let len = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    // A number cut off by the end of the prefix is not trusted.
    if len == 0 || len == s.len() {
        return None;
    }
    std::str::from_utf8(&s[..len]).ok()?.parse().ok()
}

async fn log_stderr(stderr: ChildStderr, target: Arc<str>, tail: Option<Arc<StderrTail>>, stop: CancellationToken) {
    let mut reader = BufReader::new(stderr);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut cut = false;
    loop {
        let chunk = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            chunk = reader.fill_buf() => match chunk {
                Ok([]) | Err(_) => break,
                Ok(chunk) => chunk,
            },
        };
        let (piece, used, complete) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = MAX_STDERR_LINE - line.len();
        line.extend_from_slice(&piece[..piece.len().min(room)]);
        cut |= piece.len() > room;
        reader.consume(used);
        if complete {
            emit_stderr(&target, tail.as_deref(), &line, cut);
            line.clear();
            cut = false;
        }
    }
    if !line.is_empty() {
        emit_stderr(&target, tail.as_deref(), &line, cut);
    }
}

fn emit_stderr(target: &str, tail: Option<&StderrTail>, line: &[u8], cut: bool) {
    let line = String::from_utf8_lossy(line.trim_ascii_end());
    if !line.is_empty() {
        if let Some(tail) = tail {
            tail.push(&line);
        }
        tracing::info!(target = %target, line = %line, truncated = cut, "Upstream stderr.");
    }
}

/// SIGKILLs the process group if the supervisor is dropped before it reaped the child
/// (e.g. the runtime shuts down); tokio reaps the dropped child in the background.
struct GroupGuard {
    pgid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

async fn supervise(
    mut child: Child,
    pid: u32,
    shared: Arc<Shared>,
    writer: JoinHandle<()>,
    mut eof: oneshot::Receiver<()>,
    terminated: CancellationToken,
) {
    let mut guard = GroupGuard { pgid: pid, armed: true };
    let exited = tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => None,
        status = child.wait() => Some(status),
        _ = &mut eof => tokio::time::timeout(EOF_EXIT_WAIT, child.wait()).await.ok(),
    };
    match exited {
        Some(status) => {
            let how = describe(status);
            shared.finish(Some(UpstreamError::Closed(format!("the upstream process {how}"))));
            writer.abort();
            reap_stragglers(pid).await;
        }
        None => {
            shared.finish(Some(UpstreamError::Closed(
                "the upstream process closed its stdout".into(),
            )));
            shutdown(&mut child, pid, writer).await;
        }
    }
    guard.armed = false;
    tracing::debug!(target = %shared.target, pid, "Upstream process reaped.");
    terminated.cancel();
}

/// Closes stdin, waits, SIGTERMs the group, waits, SIGKILLs it; always reaps the leader.
async fn shutdown(child: &mut Child, pid: u32, writer: JoinHandle<()>) {
    // The writer stops on cancellation and drops stdin.
    let _ = writer.await;
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
            signal_group(pid, libc::SIGKILL);
            let _ = child.wait().await;
        }
    }
    reap_stragglers(pid).await;
}

/// The leader is gone; take down whatever else is left in its process group.
async fn reap_stragglers(pgid: u32) {
    if !group_alive(pgid) {
        return;
    }
    signal_group(pgid, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + STRAGGLER_GRACE;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    signal_group(pgid, libc::SIGKILL);
}

/// SIGKILLs the process group `pgid` now.
pub(crate) fn kill_group_now(pgid: u32) {
    signal_group(pgid, libc::SIGKILL);
}

fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else { return };
    if pgid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the group.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

fn group_alive(pgid: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: as above; signal 0 only checks for existence.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => format!("exited ({s})"),
        },
        Err(e) => format!("could not be waited for: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ids_in_cut_messages() {
        assert_eq!(
            top_level_id(br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"te"#),
            Some(42)
        );
        assert_eq!(top_level_id(br#"{"result":{"id":7,"x":"#), None);
        assert_eq!(top_level_id(br#"{"a":"\"id\":3","id" : 9 ,"#), Some(9));
        assert_eq!(
            top_level_id(br#"{"jsonrpc":"2.0","id":4"#),
            None,
            "a cut number is not trusted"
        );
        assert_eq!(top_level_id(br#"{"method":"x","params":{"#), None);
        assert_eq!(trailing_id(br#"aaaa"}]},"jsonrpc":"2.0","id":17}"#), Some(17));
        assert_eq!(trailing_id(br#"aaaa"}]},"jsonrpc":"2.0","id" : 17 }  "#), Some(17));
        assert_eq!(trailing_id(br#"aaaa","xid":17}"#), None);
        assert_eq!(trailing_id(br#"aaaa"}"#), None);
    }

    #[test]
    fn trims_lines() {
        assert_eq!(&trim_line(Bytes::from_static(b"  {}\r"))[..], b"{}");
        assert!(trim_line(Bytes::from_static(b" \r")).is_empty());
    }
}
