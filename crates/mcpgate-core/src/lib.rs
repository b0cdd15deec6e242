//! mcpgate's federation core: one MCP server in front of many.
//!
//! The transports (`mcpgate-http`) hand every client message to a [`Gateway`] together with
//! the client's [`Session`]; the gateway answers what it can itself (`initialize`, `ping`,
//! merged lists), routes the rest to the owning target with names, ids and progress tokens
//! rewritten, and routes what upstreams send back (notifications, server→client requests) to
//! the sessions they concern. It knows nothing of HTTP framing: that is behind
//! [`session::Outbound`] and the related-message sink of each request.

mod authz;
mod drain;
pub mod error;
mod gateway;
mod lists;
pub mod modern;
pub mod naming;
pub mod observe;
mod reload;
pub mod session;
pub mod supervision;
pub mod target;
pub mod trace;
pub mod traffic;
mod upstream;
mod xheader;

pub use error::GatewayError;
pub use gateway::{Gateway, TargetStatus};
pub use session::{DownstreamKind, Outbound, RelatedSink, Session};

/// The gateway's name in `serverInfo` and upstream `clientInfo`.
pub const SERVER_NAME: &str = "mcpgate";
/// The gateway's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
