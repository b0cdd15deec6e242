//! Authorization in the core: every request the gateway forwards to a target is decided by
//! the policy of the config in force, with the session's identity, the target and the
//! upstream's own name (never the exposed name, so spelling tricks cannot reach another
//! tool). Denials look exactly like unknown names. Lists are filtered per session when
//! `hide_denied` is on; the filtered view is cached per session and rebuilt only when the
//! merged list or the policy changes (a list_changed or a reload), so listing stays cheap.
//!
//! Not here: authentication (the HTTP edge) and the rules themselves (`mcpgate-auth`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mcpgate_auth::{Identity, Kind, Policy, Request};
use mcpgate_proto::RawJson;
use parking_lot::Mutex;

use crate::gateway::{Inner, Runtime};
use crate::lists::{self, Merged};
use crate::session::Session;
use crate::target::ListKind;

/// Decisions made so far.
#[derive(Default)]
pub(crate) struct Decisions {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
}

struct View {
    source: Arc<Merged>,
    policy: Arc<Policy>,
    view: Arc<Merged>,
}

/// A session's filtered list views, one per list kind.
#[derive(Default)]
pub(crate) struct VisibleLists {
    views: Mutex<[Option<View>; 4]>,
}

fn list_kind(kind: ListKind) -> Kind {
    match kind {
        ListKind::Tools => Kind::Tool,
        ListKind::Prompts => Kind::Prompt,
        ListKind::Resources | ListKind::Templates => Kind::Resource,
    }
}

impl VisibleLists {
    /// The part of `merged` that `identity` may see under `rt`'s policy.
    pub(crate) fn view(
        &self,
        kind: ListKind,
        merged: &Arc<Merged>,
        rt: &Runtime,
        identity: Option<&Identity>,
    ) -> Arc<Merged> {
        let policy = &rt.config.policy;
        if policy.allows_everything() || !rt.config.auth.hide_denied {
            return merged.clone();
        }
        let i = kind as usize;
        if let Some(v) = &self.views.lock()[i]
            && Arc::ptr_eq(&v.source, merged)
            && Arc::ptr_eq(&v.policy, policy)
        {
            return v.view.clone();
        }
        let k = list_kind(kind);
        let items: Vec<RawJson> = merged
            .items
            .iter()
            .zip(&merged.owners)
            .filter(|(_, o)| policy.visible(identity, k, rt.targets[o.target].name(), &o.name))
            .map(|(item, _)| item.clone())
            .collect();
        let view = Arc::new(Merged::view(kind, items));
        self.views.lock()[i] = Some(View {
            source: merged.clone(),
            policy: policy.clone(),
            view: view.clone(),
        });
        view
    }
}

impl Inner {
    /// Decides whether `session` may use `name` (upstream tool/prompt name, resource URI or
    /// method) on target `target`; logs and counts the decision.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn authorize(
        &self,
        rt: &Runtime,
        session: &Session,
        kind: Kind,
        method: &str,
        target: usize,
        name: &str,
        args: Option<&RawJson>,
    ) -> bool {
        let policy = &rt.config.policy;
        if policy.allows_everything() {
            return true;
        }
        let args = if policy.uses_arguments() {
            args.and_then(|a| serde_json::from_slice::<serde_json::Value>(a.as_bytes()).ok())
        } else {
            None
        };
        let identity = session.identity().map(|i| &**i);
        let target_name = rt.targets[target].name();
        let d = policy.decide(&Request {
            identity,
            kind,
            method,
            target: target_name,
            name,
            args: args.as_ref(),
        });
        let subject = identity.map_or("-", |i| i.subject.as_str());
        if d.allowed {
            self.decisions.allowed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(subject, kind = kind.as_str(), target = %target_name, name, decision = "allow", rule = %d.rule, "Authorization decision.");
        } else {
            self.decisions.denied.fetch_add(1, Ordering::Relaxed);
            self.telemetry
                .metrics()
                .authorization_denied(target_name, kind.as_str());
            tracing::info!(subject, kind = kind.as_str(), target = %target_name, name, decision = "deny", rule = %d.rule, "Authorization decision.");
        }
        d.allowed
    }
}

impl Merged {
    /// A list of only `items` (a filtered view; no index).
    pub(crate) fn view(kind: ListKind, items: Vec<RawJson>) -> Merged {
        let full_result = lists::page_result(kind, &items, None);
        Merged {
            items,
            owners: vec![],
            index: Default::default(),
            templates: vec![],
            also: Default::default(),
            full_result,
            runtime: 0,
            xheaders: Default::default(),
            xheader_rejected: Vec::new(),
        }
    }
}

/// `spec` with `Authorization: Bearer <token>` added (HTTP transports only).
pub(crate) fn with_bearer(
    spec: &mcpgate_upstream::TransportSpec,
    token: &str,
) -> Option<mcpgate_upstream::TransportSpec> {
    use mcpgate_upstream::TransportSpec;
    let value = http::HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    let mut spec = spec.clone();
    match &mut spec {
        TransportSpec::Sse { headers, .. } | TransportSpec::StreamableHttp { headers, .. } => {
            headers.insert(http::header::AUTHORIZATION, value);
            Some(spec)
        }
        TransportSpec::Stdio { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::with_bearer;
    use mcpgate_upstream::TransportSpec;

    #[test]
    fn bearer_is_added_to_http_transports_only() {
        let http = TransportSpec::StreamableHttp {
            url: "http://127.0.0.1:1/mcp".parse().unwrap(),
            headers: Default::default(),
        };
        let Some(TransportSpec::StreamableHttp { headers, .. }) = with_bearer(&http, "tok") else {
            panic!("not forwarded");
        };
        assert_eq!(headers["authorization"], "Bearer tok");
        let stdio = TransportSpec::Stdio {
            command: "x".into(),
            args: vec![],
            env: vec![],
            cwd: None,
        };
        assert!(with_bearer(&stdio, "tok").is_none());
        assert!(with_bearer(&http, "bad\nvalue").is_none());
    }
}
