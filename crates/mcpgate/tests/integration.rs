//! mcpgate's integration tests: one test binary, the gateway in-process on an ephemeral port,
//! fixture upstreams over stdio, Streamable HTTP and legacy SSE, and MCP clients written from
//! the transport spec. The modules live in `tests/integration/`.

#[path = "integration/common.rs"]
mod common;

#[path = "integration/auth.rs"]
mod auth;
#[path = "integration/bad_input.rs"]
mod bad_input;
#[path = "integration/config.rs"]
mod config;
#[path = "integration/failures.rs"]
mod failures;
#[path = "integration/faults.rs"]
mod faults;
#[path = "integration/features.rs"]
mod features;
#[path = "integration/legacy.rs"]
mod legacy;
#[path = "integration/lifecycle.rs"]
mod lifecycle;
#[path = "integration/lists.rs"]
mod lists;
#[path = "integration/modern.rs"]
mod modern;
#[path = "integration/modern_upstream.rs"]
mod modern_upstream;
#[path = "integration/notifications.rs"]
mod notifications;
#[path = "integration/observability.rs"]
mod observability;
#[path = "integration/operations.rs"]
mod operations;
#[path = "integration/passthrough.rs"]
mod passthrough;
#[path = "integration/progress.rs"]
mod progress;
#[path = "integration/resume.rs"]
mod resume;
#[path = "integration/server_requests.rs"]
mod server_requests;
#[path = "integration/tracing.rs"]
mod tracing;
#[path = "integration/traffic.rs"]
mod traffic;
#[path = "integration/xheader.rs"]
mod xheader;
