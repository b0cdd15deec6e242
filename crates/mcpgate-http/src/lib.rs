//! mcpgate's downstream transports on one HTTP listener.
//!
//! - Streamable HTTP (2025-03-26, 2025-06-18, 2025-11-25) at `listen.mcp_path`: POST with
//!   JSON or SSE responses, the GET stream, DELETE, `Mcp-Session-Id`, `MCP-Protocol-Version`
//!   checks, resumable SSE streams ([`streams`]).
//! - Legacy HTTP+SSE (2024-11-05): `GET listen.sse_path` → `endpoint` event, then
//!   `POST listen.message_path?sessionId=…`.
//! - `/healthz` and `/readyz`.
//!
//! Every request passes the [`edge`] checks first. MCP semantics live in `mcpgate-core`;
//! this crate only frames, validates and delivers.

pub mod auth;
pub mod edge;
mod legacy;
mod modern;
mod response;
mod streamable;
pub mod streams;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, Method, StatusCode, header};
use mcpgate_core::Gateway;
use parking_lot::Mutex;

pub use response::jsonrpc_error;

/// Shared state of the HTTP layer.
#[derive(Clone)]
pub struct AppState {
    /// The federation core.
    pub gw: Gateway,
    legacy: Arc<Mutex<HashMap<String, Arc<legacy::LegacyConn>>>>,
}

/// Builds the router for the gateway's configured paths.
pub fn router(gw: Gateway) -> Router {
    let cfg = gw.config();
    let l = &cfg.listen;
    let state = AppState {
        gw: gw.clone(),
        legacy: Arc::new(Mutex::new(HashMap::new())),
    };
    Router::new()
        .route(
            &l.mcp_path,
            get(streamable::get)
                .post(streamable::post)
                .delete(streamable::delete)
                .options(preflight),
        )
        .route(&l.sse_path, get(legacy::sse).options(preflight))
        .route(&l.message_path, axum::routing::post(legacy::message).options(preflight))
        .route(mcpgate_auth::metadata::WELL_KNOWN, get(auth::metadata))
        .route(
            &format!("{}/{{*path}}", mcpgate_auth::metadata::WELL_KNOWN),
            get(auth::metadata),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(l.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), edge_layer))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gw: Gateway,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // `into_make_service`: each connection gets a clone of the router (an `Arc`), where
    // serving the `Router` itself rebuilds its route table for every connection (a few KiB
    // per open SSE stream, and allocations per connection).
    axum::serve(listener, router(gw).into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn edge_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let cfg = state.gw.config();
    if let Err(e) = edge::check(&cfg.listen, req.headers()) {
        let msg = match &e {
            edge::EdgeError::Host(h) => format!("Forbidden: Host `{h}` is not allowed"),
            edge::EdgeError::Origin(o) => format!("Forbidden: Origin `{o}` is not allowed"),
        };
        tracing::warn!(reason = %msg, "Rejected a request at the edge.");
        return jsonrpc_error(StatusCode::FORBIDDEN, mcpgate_proto::ErrorCode::INVALID_REQUEST, &msg);
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let mut resp =
        if cfg.auth.is_enabled() && req.method() != Method::OPTIONS && auth::is_protected(&cfg, req.uri().path()) {
            match auth::authenticate(&state, &cfg, &mut req).await {
                Ok(()) => next.run(req).await,
                Err(r) => r,
            }
        } else {
            next.run(req).await
        };
    if let Some(origin) = origin {
        edge::cors_headers(&origin, resp.headers_mut());
    }
    resp
}

async fn preflight(method: Method) -> Response {
    debug_assert_eq!(method, Method::OPTIONS);
    let mut h = HeaderMap::new();
    edge::preflight_headers(&mut h);
    (StatusCode::NO_CONTENT, h).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let targets = state.gw.target_status();
    let ready = targets.iter().all(|t| t.state != "connecting");
    let (allowed, denied) = state.gw.authorization_counts();
    let body = serde_json::json!({
        "ready": ready,
        "sessions": state.gw.session_count(),
        "targets": targets,
        "authorization": { "allowed": allowed, "denied": denied },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn not_found(uri: http::Uri) -> Response {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        mcpgate_proto::ErrorCode::INVALID_REQUEST,
        &format!("Not found: {}", uri.path()),
    )
}
