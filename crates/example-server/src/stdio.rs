//! The stdio transport: newline-delimited JSON-RPC over any byte stream (the process's
//! stdin/stdout in the binary, a `tokio::io::duplex` in tests).
//!
//! One reader loop classifies each line; instant methods are answered inline, `initialize`
//! and `tools/call` run as tasks so a long operation never blocks `echo`, and a single writer
//! task owns the output. Responses to server→client requests arrive on the same input.
//! Logging goes to `tracing` (stderr in the binary), never to the output stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ServeError;
use crate::jsonrpc::{self, INVALID_REQUEST, Incoming, Kind, Method, Msg, PARSE_ERROR, RpcError};
use crate::modern;
use crate::options::Era;
use crate::server::{self, Ctx, Shared};
use crate::session::{Session, Transport, UNRELATED_CAPACITY, Version};

/// How long requests still running at end of input may take to finish before they are
/// cancelled.
pub const EOF_GRACE: Duration = Duration::from_secs(2);

/// Serves one stdio session on `reader`/`writer` until end of input or shutdown.
pub async fn serve<R, W>(shared: Arc<Shared>, reader: R, writer: W) -> Result<(), ServeError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Msg>(UNRELATED_CAPACITY);
    let session = Session::new(crate::new_session_id().into(), Transport::Stdio, Some(tx.clone()), None);
    shared.register(session.clone());
    let done = CancellationToken::new();
    let writer_task = tokio::spawn(write_loop(rx, writer, done.clone()));
    let tracker = TaskTracker::new();
    tracing::info!(
        name = %shared.opts.name,
        versions = ?versions(&shared),
        "The example MCP server is ready on stdio."
    );

    let result = read_loop(&shared, &session, &tx, &tracker, reader).await;
    tracker.close();
    match result {
        Err(ServeError::Crashed) => {
            shared.unregister(&session.id);
            writer_task.abort();
            return Err(ServeError::Crashed);
        }
        Err(e) => {
            tracing::warn!(error = %e, "Reading the stdio input failed.");
        }
        Ok(()) => {}
    }
    // Nothing more can arrive: answers to our requests never will, and running requests get a
    // grace period before they are cancelled. Open subscriptions (2026-07-28) end now: their
    // client is gone.
    session.abandon_client_requests();
    for id in shared.listeners.ids_of(&session.id) {
        session.cancel(&id);
    }
    if tokio::time::timeout(EOF_GRACE, tracker.wait()).await.is_err() {
        session.close();
        tracker.wait().await;
    }
    shared.unregister(&session.id);
    drop(tx);
    done.cancel();
    match writer_task.await {
        Ok(r) => r.map_err(ServeError::Io),
        Err(e) => Err(ServeError::Io(std::io::Error::other(e))),
    }
}

/// The protocol versions served, for the ready line.
fn versions(shared: &Shared) -> Vec<&'static str> {
    if shared.opts.era.modern() {
        modern::supported_versions(shared.opts.era)
    } else {
        crate::SUPPORTED_VERSIONS.to_vec()
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    tx: &mpsc::Sender<Msg>,
    tracker: &TaskTracker,
    reader: R,
) -> Result<(), ServeError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    loop {
        let mut line = Vec::new();
        let n = tokio::select! {
            _ = shared.shutdown.cancelled() => return Ok(()),
            r = reader.read_until(b'\n', &mut line) => r.map_err(ServeError::Io)?,
        };
        if n == 0 {
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (msgs, batch) = match jsonrpc::parse(Bytes::from(line)) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(error = %e, "Received a line that is not JSON.");
                let err = RpcError::new(PARSE_ERROR, "Parse error");
                let _ = tx.send(Msg::response(jsonrpc::error(None, &err))).await;
                continue;
            }
        };
        if batch {
            if shared.opts.era == Era::Modern {
                let err = RpcError::new(
                    INVALID_REQUEST,
                    "JSON-RPC batches are not part of protocol 2026-07-28: send one message per line",
                );
                let _ = tx.send(Msg::response(jsonrpc::error(None, &err))).await;
                continue;
            }
            run_batch(shared, session, tx, tracker, msgs)?;
            continue;
        }
        for msg in msgs {
            handle(shared, session, tx, tracker, msg).await?;
        }
    }
}

fn ctx(shared: &Arc<Shared>, session: &Arc<Session>, out: mpsc::Sender<Msg>) -> Ctx {
    Ctx {
        shared: shared.clone(),
        session: session.clone(),
        out,
        version: session.version().unwrap_or(Version::LATEST),
        meta: None,
    }
}

async fn handle(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    tx: &mpsc::Sender<Msg>,
    tracker: &TaskTracker,
    msg: Incoming,
) -> Result<(), ServeError> {
    match msg.kind {
        Kind::Notification { .. } => shared.on_notification(session, &msg),
        Kind::Response { .. } => shared.on_response(session, &msg),
        Kind::Invalid { .. } => {
            let _ = tx.send(server::invalid_request(&msg)).await;
        }
        Kind::Request { method, .. } => {
            if !shared.admit(method) {
                return Err(ServeError::Crashed);
            }
            if method == Method::ToolsCall && shared.opts.crashes_mid_response() {
                let id = msg.id().unwrap_or("null");
                let half =
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"cut sh"#);
                let _ = tx.send(Msg::response(Bytes::from(half))).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(ServeError::Crashed);
            }
            let modern = match shared.opts.era {
                Era::Session => false,
                Era::Modern => true,
                Era::Dual => method != Method::Initialize && modern::has_modern_meta(&msg),
            };
            if modern {
                modern_request(shared, session, tx, tracker, msg, method).await;
                return Ok(());
            }
            let ctx = ctx(shared, session, tx.clone());
            if shared.runs_inline(&msg) {
                if let Some(reply) = server::handle_request(&ctx, &msg).await {
                    let _ = tx.send(reply).await;
                }
            } else {
                let guard = session.track(msg.id().unwrap_or("null"));
                tracker.spawn(server::run_tracked(ctx, msg, guard));
            }
        }
    }
    Ok(())
}

/// A 2026-07-28 request: validated (`_meta`, version, method, capabilities), then answered
/// inline or run as a task that `notifications/cancelled` stops.
async fn modern_request(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    tx: &mpsc::Sender<Msg>,
    tracker: &TaskTracker,
    msg: Incoming,
    method: Method,
) {
    let checked = if method == Method::Initialize {
        Err(modern::initialize_refused(&msg))
    } else {
        modern::parse_meta(&msg).and_then(|(version, meta)| {
            modern::check_version(shared.opts.era, &version)?;
            modern::precheck(&msg, &meta)?;
            Ok(meta)
        })
    };
    let meta = match checked {
        Ok(meta) => meta,
        Err(e) => {
            let _ = tx.send(Msg::response(jsonrpc::error(msg.id(), &e))).await;
            return;
        }
    };
    let ctx = Ctx {
        shared: shared.clone(),
        session: session.clone(),
        out: tx.clone(),
        version: Version::LATEST,
        meta: Some(meta),
    };
    if modern::runs_inline(shared, &msg) {
        if let Some(reply) = modern::handle(&ctx, &msg).await {
            let _ = tx.send(reply).await;
        }
    } else {
        let guard = session.track(msg.id().unwrap_or("null"));
        let token = guard.token.clone();
        tracker.spawn(modern::run(ctx, msg, token, false, Some(guard)));
    }
}

/// A JSON-RPC batch: requests run concurrently; their responses go out together as one array
/// line, while progress, logs and server→client requests go out as they happen.
fn run_batch(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    tx: &mpsc::Sender<Msg>,
    tracker: &TaskTracker,
    msgs: Vec<Incoming>,
) -> Result<(), ServeError> {
    let (btx, mut brx) = mpsc::channel::<Msg>(64);
    let mut early = Vec::new();
    for msg in msgs {
        match msg.kind {
            Kind::Notification { .. } => shared.on_notification(session, &msg),
            Kind::Response { .. } => shared.on_response(session, &msg),
            Kind::Invalid { .. } => early.push(server::invalid_request(&msg).bytes),
            Kind::Request { method, .. } => {
                if !shared.admit(method) {
                    return Err(ServeError::Crashed);
                }
                let guard = session.track(msg.id().unwrap_or("null"));
                tracker.spawn(server::run_tracked(ctx(shared, session, btx.clone()), msg, guard));
            }
        }
    }
    drop(btx);
    let tx = tx.clone();
    tracker.spawn(async move {
        let mut responses = early;
        while let Some(m) = brx.recv().await {
            if m.is_response {
                responses.push(m.bytes);
            } else {
                let _ = tx.send(m).await;
            }
        }
        if !responses.is_empty() {
            let _ = tx.send(Msg::response(join_array(&responses))).await;
        }
    });
    Ok(())
}

/// `[a,b,c]` from serialized messages.
pub fn join_array(items: &[Bytes]) -> Bytes {
    let mut v = Vec::with_capacity(items.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
    v.push(b'[');
    for (i, b) in items.iter().enumerate() {
        if i > 0 {
            v.push(b',');
        }
        v.extend_from_slice(b);
    }
    v.push(b']');
    Bytes::from(v)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Msg>,
    writer: W,
    done: CancellationToken,
) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, writer);
    loop {
        let msg = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = done.cancelled() => None,
        };
        let Some(msg) = msg else { break };
        w.write_all(&msg.bytes).await?;
        w.write_all(b"\n").await?;
        if rx.is_empty() {
            w.flush().await?;
        }
    }
    while let Ok(msg) = rx.try_recv() {
        w.write_all(&msg.bytes).await?;
        w.write_all(b"\n").await?;
    }
    w.flush().await?;
    w.shutdown().await
}
