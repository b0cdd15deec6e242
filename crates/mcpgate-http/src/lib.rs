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

mod accept;
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
    let router = Router::new()
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
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    // Metrics on the main listener unless they have a listener of their own; no MCP
    // authentication (Prometheus scrapes without a token), like /healthz and /readyz.
    let m = &cfg.observability.metrics;
    let router = if m.enabled && m.address.is_none() {
        router.route(&m.path, get(metrics))
    } else {
        router
    };
    router
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
    // Each connection gets a clone of the router (an `Arc`): serving the `Router` as a
    // make-service would rebuild its route table for every connection. HTTP/1.1 without
    // protocol sniffing (see `accept`).
    accept::serve(listener, router(gw), shutdown).await
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

async fn healthz() -> &'static str {
    "ok\n"
}

/// The Prometheus scrape endpoint (`observability.metrics.path`).
async fn metrics(State(state): State<AppState>, uri: http::Uri) -> Response {
    let m = state.gw.telemetry().metrics();
    if !m.enabled() {
        return not_found(uri).await;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, mcpgate_telemetry::Metrics::CONTENT_TYPE)],
        m.encode(),
    )
        .into_response()
}

/// The router of a separate metrics listener (`observability.metrics.address`): the metrics
/// endpoint, `/healthz` and `/readyz`, with the same Host/Origin checks as the main listener.
pub fn metrics_router(gw: Gateway) -> Router {
    let cfg = gw.config();
    let state = AppState {
        gw: gw.clone(),
        legacy: Arc::new(Mutex::new(HashMap::new())),
    };
    Router::new()
        .route(&cfg.observability.metrics.path, get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), edge_layer))
        .with_state(state)
}

/// Serves [`metrics_router`] until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    gw: Gateway,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, metrics_router(gw).into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(state): State<AppState>) -> Response {
    let targets = state.gw.target_status();
    let draining = state.gw.is_draining();
    let cfg = state.gw.config();
    // Ready: the config is loaded and the listener bound (this answer proves both), not
    // draining, and enough targets up — by default, every target settled (up or failed).
    let targets_up = targets.iter().filter(|t| t.state == "up").count();
    let min_targets_up = cfg.observability.min_targets_up;
    let targets_ok = match min_targets_up {
        Some(min) => targets_up >= min,
        None => targets.iter().all(|t| t.state != "connecting"),
    };
    let ready = !draining && targets_ok;
    let (allowed, denied) = state.gw.authorization_counts();
    let body = serde_json::json!({
        "ready": ready,
        "config": { "loaded": true, "source": cfg.source.as_ref().map(|p| p.display().to_string()) },
        "targets_up": targets_up,
        "min_targets_up": min_targets_up,
        "draining": draining,
        "sessions": state.gw.session_count(),
        "in_flight": state.gw.in_flight_requests(),
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
