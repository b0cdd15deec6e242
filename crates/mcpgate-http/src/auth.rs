//! Authentication at the edge, for every MCP path (Streamable HTTP, legacy SSE stream and
//! message paths), and the RFC 9728 protected-resource metadata.
//!
//! A request without acceptable credentials gets `401` with `WWW-Authenticate: Bearer
//! resource_metadata="…"` (and `scope`, `error` where they apply; `403` for
//! `insufficient_scope`). An accepted request carries its [`Caller`] to the handlers, which
//! attach it to the session at initialize; a later request naming a session must come from
//! the same principal, so another subject's token cannot ride an existing session. The
//! client's credentials are consumed here and never passed upstream.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mcpgate_auth::metadata::WELL_KNOWN;
use mcpgate_auth::{AuthError, Credentials, Identity};
use mcpgate_config::Config;
use mcpgate_proto::ErrorCode;

use crate::AppState;
use crate::response::jsonrpc_error;

/// The authenticated caller of a request (`None`: anonymous, where allowed).
#[derive(Clone, Debug, Default)]
pub struct Caller(pub Option<Arc<Identity>>);

/// Do a session's owner and a request's caller agree?
pub(crate) fn same_caller(owner: Option<&Arc<Identity>>, caller: Option<&Arc<Identity>>) -> bool {
    match (owner, caller) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_principal(b),
        _ => false,
    }
}

/// Is `path` one of the MCP paths that need authentication?
pub(crate) fn is_protected(cfg: &Config, path: &str) -> bool {
    let l = &cfg.listen;
    path == l.mcp_path || path == l.sse_path || path == l.message_path
}

/// The resource path a request's challenge names: the SSE stream for the legacy paths,
/// the MCP endpoint otherwise.
fn resource_path<'a>(cfg: &'a Config, path: &str) -> &'a str {
    let l = &cfg.listen;
    if path == l.sse_path || path == l.message_path {
        &l.sse_path
    } else {
        &l.mcp_path
    }
}

/// Authenticates `req` and checks it against the session it names. On success the request
/// carries a [`Caller`] extension.
pub(crate) async fn authenticate(state: &AppState, cfg: &Config, req: &mut Request) -> Result<(), Response> {
    let auth = &cfg.auth;
    let headers = req.headers();
    let creds = Credentials {
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
        api_key: headers.get("x-api-key").and_then(|v| v.to_str().ok()),
    };
    let identity = match auth.authenticate(creds).await {
        Ok(id) => id,
        Err(e) => {
            state.gw.telemetry().metrics().auth_failure(e.reason());
            return Err(challenge(cfg, req, &e));
        }
    };
    // A request on an existing session must come from the session's owner.
    let path = req.uri().path();
    let owner_ok = if path == cfg.listen.mcp_path {
        match headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            Some(id) => state
                .gw
                .session_owner(id)
                .is_none_or(|owner| same_caller(owner.as_ref(), identity.as_ref())),
            None => true,
        }
    } else if path == cfg.listen.message_path {
        let conn_id = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("sessionId=")));
        match conn_id.and_then(|id| state.legacy.lock().get(id).cloned()) {
            Some(conn) => same_caller(conn.caller.0.as_ref(), identity.as_ref()),
            None => true,
        }
    } else {
        true
    };
    if !owner_ok {
        state.gw.telemetry().metrics().auth_failure("session_owner_mismatch");
        tracing::warn!(
            subject = identity.as_ref().map_or("-", |i| i.subject.as_str()),
            "Refused a request for a session that belongs to another identity."
        );
        return Err(jsonrpc_error(
            StatusCode::FORBIDDEN,
            ErrorCode::INVALID_REQUEST,
            "Forbidden: the session belongs to another identity",
        ));
    }
    req.extensions_mut().insert(Caller(identity));
    Ok(())
}

fn challenge(cfg: &Config, req: &Request, e: &AuthError) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let meta = &cfg.auth.metadata;
    let base = meta.base(host);
    let url = meta.url(&base, resource_path(cfg, req.uri().path()));
    tracing::info!(reason = e.reason(), path = %req.uri().path(), "Refused unauthenticated request.");
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let msg = match e {
        AuthError::Missing => "Unauthorized: authentication required".to_string(),
        AuthError::InsufficientScope(_) => format!("Forbidden: {e}"),
        _ => format!("Unauthorized: {e}"),
    };
    let mut resp = jsonrpc_error(status, ErrorCode::INVALID_REQUEST, &msg);
    if let Ok(v) = HeaderValue::from_str(&meta.challenge(&url, e)) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// `GET /.well-known/oauth-protected-resource[/<mcp path>|/<sse path>]`.
pub(crate) async fn metadata(State(state): State<AppState>, req: Request) -> Response {
    let cfg = state.gw.config();
    if !cfg.auth.is_enabled() {
        return not_found();
    }
    let suffix = req.uri().path().strip_prefix(WELL_KNOWN).unwrap_or("");
    let l = &cfg.listen;
    let path = if suffix.is_empty() || suffix == "/" {
        l.mcp_path.as_str()
    } else if suffix == l.mcp_path || suffix == l.sse_path {
        suffix
    } else if suffix == l.message_path {
        l.sse_path.as_str()
    } else {
        return not_found();
    };
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let base = cfg.auth.metadata.base(host);
    let doc = cfg.auth.metadata.document(&base, path);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        doc.to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    jsonrpc_error(StatusCode::NOT_FOUND, ErrorCode::INVALID_REQUEST, "Not found")
}
