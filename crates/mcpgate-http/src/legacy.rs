//! Legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens the stream and announces the
//! POST endpoint in an `endpoint` event; every message the gateway sends (responses too)
//! travels on that stream; `POST /message?sessionId=…` carries client messages and is
//! answered `202 Accepted`. Closing the stream ends the session.

use std::sync::{Arc, OnceLock};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use mcpgate_core::{DownstreamKind, Session};
use mcpgate_proto::{ErrorCode, Message, MessageKind, sse};

use crate::AppState;
use crate::response::{jsonrpc_error, sse_response};
use crate::streams::{GeneralStream, SessionStreams};

/// One open legacy SSE connection.
pub(crate) struct LegacyConn {
    streams: Arc<SessionStreams>,
    session: OnceLock<Arc<Session>>,
    /// Who opened the stream; every POST must come from the same caller.
    pub(crate) caller: crate::auth::Caller,
}

#[derive(serde::Deserialize)]
pub(crate) struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// Ends the connection's session when its stream body is dropped (client went away).
struct Cleanup {
    state: AppState,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let conn = self.state.legacy.lock().remove(&self.id);
        if let Some(session) = conn.and_then(|c| c.session.get().cloned()) {
            self.state.gw.close_session(&session.id);
        }
        tracing::debug!(connection = %self.id, "Legacy SSE stream closed.");
    }
}

/// `GET /sse`.
pub(crate) async fn sse(
    State(state): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    _headers: HeaderMap,
) -> Response {
    if state.gw.is_draining() {
        state.gw.telemetry().metrics().limit_rejected("draining");
        return jsonrpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UPSTREAM_UNAVAILABLE,
            "mcpgate is shutting down and accepts no new sessions; retry on another replica",
        );
    }
    let cfg = state.gw.config();
    let id = hex::encode(rand::random::<[u8; 16]>());
    let streams = SessionStreams::new(cfg.listen.resume_buffer, true);
    let live = streams.attach_general();
    state.legacy.lock().insert(
        id.clone(),
        Arc::new(LegacyConn {
            streams: streams.clone(),
            session: OnceLock::new(),
            caller: caller.map(|c| c.0).unwrap_or_default(),
        }),
    );
    let mut first = BytesMut::new();
    let endpoint = format!("{}?sessionId={id}", cfg.listen.message_path);
    sse::write_event(&mut first, None, Some("endpoint"), endpoint.as_bytes());
    let cleanup = Cleanup {
        state: state.clone(),
        id: id.clone(),
    };
    let gw = state.gw.clone();
    let legacy = state.legacy.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let on_idle = move || {
        let _keep = &cleanup;
        if let Some(s) = legacy.lock().get(&id).and_then(|c| c.session.get().cloned()) {
            gw.touch(&s);
        }
    };
    sse_response(live, Some(Bytes::from(first)), cfg.listen.keep_alive, stop, on_idle)
}

/// `POST /message?sessionId=…`.
pub(crate) async fn message(
    State(state): State<AppState>,
    Query(q): Query<MessageQuery>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    let Some(id) = q.session_id else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "Bad Request: sessionId query parameter is required",
        );
    };
    let Some(conn) = state.legacy.lock().get(&id).cloned() else {
        return jsonrpc_error(StatusCode::NOT_FOUND, ErrorCode::INVALID_REQUEST, "Session not found");
    };
    let msg = match Message::parse_limited(body, state.gw.config().listen.max_json_depth) {
        Ok(m) => m,
        Err(e) => return jsonrpc_error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    };
    if msg.method() == "initialize" && msg.kind() == MessageKind::Request {
        if conn.session.get().is_some() {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                "Session already initialized",
            );
        }
        let rid = msg.id.clone().expect("request");
        match state.gw.initialize_traced(
            DownstreamKind::LegacySse,
            &msg,
            Box::new(GeneralStream(conn.streams.clone())),
            conn.caller.0.clone(),
            &state.gw.trace_parent(&headers),
        ) {
            Ok((session, result)) => {
                let _ = conn.session.set(session);
                conn.streams.write(0, &Message::response(rid, result), false);
            }
            Err(e) => conn.streams.write(0, &e.to_response(rid), false),
        }
        return (StatusCode::ACCEPTED, "Accepted").into_response();
    }
    let Some(session) = conn.session.get().cloned() else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "Bad Request: session not initialized",
        );
    };
    if msg.kind() == MessageKind::Request {
        let gw = state.gw.clone();
        let streams = conn.streams.clone();
        let parent = gw.trace_parent(&headers);
        tokio::spawn(async move {
            if let Some(resp) = gw.handle_traced(&session, msg, None, &parent).await {
                streams.write(0, &resp, false);
            }
        });
    } else {
        state.gw.handle(&session, msg, None).await;
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
