//! `x-mcp-header` (MCP 2026-07-28) in the core: the header parameters of a tool as the caller
//! sees it, read once per merged list (see [`crate::lists::Merged::xheaders`]). Tools whose
//! annotations are invalid never get this far: the merged list leaves them out.
//!
//! Not here: the parsing, encoding and comparison rules (`mcpgate_proto::xheader`) and the
//! HTTP checks (`mcpgate-http`).

use std::sync::Arc;

use mcpgate_auth::{Identity, Kind};
use mcpgate_proto::xheader::HeaderParam;

use crate::gateway::{Gateway, Inner, Runtime};
use crate::lists::Merged;
use crate::target::ListKind;

impl Gateway {
    /// The `x-mcp-header` parameters of the tool exposed as `name`, when it has any and
    /// `identity` may see it; `None` otherwise (no annotations, unknown, or hidden by policy:
    /// such a call fails as an unknown tool later, and checking its headers first would
    /// reveal that it exists). Costs one cached-list load and one lookup per call.
    pub async fn tool_header_params(&self, name: &str, identity: Option<&Identity>) -> Option<Arc<[HeaderParam]>> {
        let rt = self.inner.runtime.load_full();
        let merged = self.inner.merged(ListKind::Tools, &rt).await;
        let params = merged.xheaders.get(name)?.clone();
        let policy = &rt.config.policy;
        if !policy.allows_everything() {
            let owner = merged.index.get(name)?;
            if !policy.visible(identity, Kind::Tool, rt.targets[owner.target].name(), &owner.name) {
                return None;
            }
        }
        Some(params)
    }
}

impl Inner {
    /// Reports, per target, how many tools a freshly built merged tool list left out for
    /// invalid annotations (`mcpgate_tools_rejected`). Targets left out of the list keep their
    /// last value.
    pub(crate) fn note_xheader_rejections(&self, rt: &Runtime, merged: &Merged) {
        for (t, n) in rt.targets.iter().zip(&merged.xheader_rejected) {
            if let Some(n) = n {
                self.telemetry.metrics().tools_rejected(t.name(), *n);
            }
        }
    }
}
