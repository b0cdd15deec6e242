//! `subscriptions/listen` (2026-07-28): the registry of open subscriptions and the long-lived
//! request that holds one open.
//!
//! A subscription is opened by a `subscriptions/listen` request; its first message is
//! `notifications/subscriptions/acknowledged`, then it carries only the notification types the
//! client opted in to, each with `_meta["io.modelcontextprotocol/subscriptionId"]` set to the
//! listen request's id. It ends when the client cancels the request (closes the HTTP response
//! stream; `notifications/cancelled` on stdio), or when the server ends it
//! ([`crate::ExampleServer::end_subscriptions`], shutdown): then the server sends
//! `notifications/cancelled` for the listen request and the request's result
//! (`resultType: "complete"` with the subscription id in `_meta`), as the cancellation and
//! subscriptions pages ask.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::content;
use crate::jsonrpc::{self, Incoming, Msg, RpcError};
use crate::server::Ctx;

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Which list changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `notifications/tools/list_changed`.
    Tools,
    /// `notifications/prompts/list_changed`.
    Prompts,
    /// `notifications/resources/list_changed`.
    Resources,
}

impl ListKind {
    /// The notification's method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
            ListKind::Resources => "notifications/resources/list_changed",
        }
    }
}

/// The notification filter of a `subscriptions/listen` request (`SubscriptionFilter`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    tools_list_changed: bool,
    #[serde(default)]
    prompts_list_changed: bool,
    #[serde(default)]
    resources_list_changed: bool,
    #[serde(default)]
    resource_subscriptions: Option<Vec<String>>,
}

impl Filter {
    fn wants(&self, kind: ListKind) -> bool {
        match kind {
            ListKind::Tools => self.tools_list_changed,
            ListKind::Prompts => self.prompts_list_changed,
            ListKind::Resources => self.resources_list_changed,
        }
    }

    /// The subset this server honours: every list type (it has tools, prompts and
    /// resources), and the requested URIs that name one of its resources.
    fn honoured(mut self) -> Filter {
        if let Some(uris) = self.resource_subscriptions.as_mut() {
            uris.retain(|u| content::exists(u));
        }
        self
    }

    /// The filter as acknowledged: only the types agreed to.
    fn to_json(&self) -> Value {
        let mut v = serde_json::Map::new();
        for (on, key) in [
            (self.tools_list_changed, "toolsListChanged"),
            (self.prompts_list_changed, "promptsListChanged"),
            (self.resources_list_changed, "resourcesListChanged"),
        ] {
            if on {
                v.insert(key.into(), Value::Bool(true));
            }
        }
        if let Some(uris) = &self.resource_subscriptions {
            v.insert("resourceSubscriptions".into(), json!(uris));
        }
        Value::Object(v)
    }
}

struct Listener {
    /// The listen request's id, raw JSON.
    sub_id: Box<str>,
    session: Arc<str>,
    filter: Filter,
    out: mpsc::Sender<Msg>,
    /// Cancelled when the server ends the subscription.
    end: CancellationToken,
}

/// Every open subscription of one server.
#[derive(Default)]
pub struct Listeners {
    next: AtomicU64,
    count: AtomicUsize,
    map: Mutex<HashMap<u64, Listener>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `{"jsonrpc":"2.0","method":M,"params":{"_meta":{subscriptionId:ID}, …extra}}`.
fn tagged(method: &str, sub_id: &str, extra: Option<(&str, &Value)>) -> Bytes {
    let mut params = format!("{{\"_meta\":{{\"{SUBSCRIPTION_ID}\":{sub_id}}}");
    if let Some((k, v)) = extra {
        params.push_str(&format!(",\"{k}\":{v}"));
    }
    params.push('}');
    Bytes::from(format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"{method}\",\"params\":{params}}}"
    ))
}

impl Listeners {
    /// Open subscriptions.
    pub fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Sends a list-changed notification to the subscriptions that asked for it.
    pub fn list_changed(&self, kind: ListKind) -> usize {
        if self.len() == 0 {
            return 0;
        }
        let map = lock(&self.map);
        map.values()
            .filter(|l| l.filter.wants(kind))
            .filter(|l| {
                l.out
                    .try_send(Msg::other(tagged(kind.method(), &l.sub_id, None)))
                    .is_ok()
            })
            .count()
    }

    /// Sends `notifications/resources/updated` to the subscriptions listing `uri`.
    pub fn resource_updated(&self, uri: &str) -> usize {
        if self.len() == 0 {
            return 0;
        }
        let uri_json = Value::String(uri.to_owned());
        let map = lock(&self.map);
        map.values()
            .filter(|l| {
                l.filter
                    .resource_subscriptions
                    .as_ref()
                    .is_some_and(|u| u.iter().any(|u| u == uri))
            })
            .filter(|l| {
                let n = tagged("notifications/resources/updated", &l.sub_id, Some(("uri", &uri_json)));
                l.out.try_send(Msg::other(n)).is_ok()
            })
            .count()
    }

    /// Ends every subscription gracefully; returns how many there were.
    pub fn end_all(&self) -> usize {
        let map = lock(&self.map);
        for l in map.values() {
            l.end.cancel();
        }
        map.len()
    }

    /// The raw ids of the listen requests of one session (stdio), to cancel them at end of
    /// input.
    pub fn ids_of(&self, session: &str) -> Vec<Box<str>> {
        lock(&self.map)
            .values()
            .filter(|l| &*l.session == session)
            .map(|l| l.sub_id.clone())
            .collect()
    }

    fn remove(&self, key: u64) {
        if lock(&self.map).remove(&key).is_some() {
            self.count.fetch_sub(1, Relaxed);
        }
    }
}

/// Unregisters a subscription when its request ends (answered, cancelled or dropped).
struct Registered<'a> {
    listeners: &'a Listeners,
    key: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.listeners.remove(self.key);
    }
}

/// Handles a `subscriptions/listen` request: acknowledges it, then holds it open until the
/// server ends it (the answer is then the graceful-closure result) or the request is
/// cancelled (the caller drops this future; nothing more is sent).
pub async fn listen(ctx: &Ctx, msg: &Incoming, id: &str) -> Option<Msg> {
    #[derive(Deserialize)]
    struct P {
        notifications: Option<Filter>,
    }
    let filter = match msg.parse_params::<P>() {
        Ok(P { notifications: Some(f) }) => f.honoured(),
        Ok(P { notifications: None }) => {
            let e = RpcError::invalid_params("subscriptions/listen needs params.notifications (the filter)");
            return Some(Msg::response(jsonrpc::error(Some(id), &e)));
        }
        Err(e) => return Some(Msg::response(jsonrpc::error(Some(id), &e))),
    };
    let listeners = &ctx.shared.listeners;
    let ack = tagged(
        "notifications/subscriptions/acknowledged",
        id,
        Some(("notifications", &filter.to_json())),
    );
    let end = CancellationToken::new();
    let key = listeners.next.fetch_add(1, Relaxed);
    {
        // The acknowledgment is queued under the registry lock, so no notification of this
        // subscription can precede it.
        let mut map = lock(&listeners.map);
        if ctx.out.try_send(Msg::other(ack)).is_err() {
            let e = RpcError::new(-32603, "The output stream is full; try again.");
            return Some(Msg::response(jsonrpc::error(Some(id), &e)));
        }
        map.insert(
            key,
            Listener {
                sub_id: id.into(),
                session: ctx.session.id.clone(),
                filter,
                out: ctx.out.clone(),
                end: end.clone(),
            },
        );
        listeners.count.fetch_add(1, Relaxed);
    }
    let _registered = Registered { listeners, key };
    tokio::select! {
        _ = end.cancelled() => {}
        _ = ctx.shared.shutdown.cancelled() => {}
    }
    let cancelled = jsonrpc::notification(
        "notifications/cancelled",
        &json!({ "requestId": serde_json::from_str::<Value>(id).unwrap_or(Value::Null),
                 "reason": "The server ended the subscription." }),
    );
    let _ = ctx.out.send(Msg::other(cancelled)).await;
    let mut w = jsonrpc::ResultWriter::new(id, 96);
    w.raw(format!("{{\"resultType\":\"complete\",\"_meta\":{{\"{SUBSCRIPTION_ID}\":{id}}}}}").as_bytes());
    Some(Msg::response(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_notifications_with_the_subscription_id() {
        let b = tagged("notifications/tools/list_changed", "\"l-1\"", None);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["params"]["_meta"][SUBSCRIPTION_ID], "l-1");
        let b = tagged(
            "notifications/resources/updated",
            "7",
            Some(("uri", &json!("example://counter"))),
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["params"]["_meta"][SUBSCRIPTION_ID], 7);
        assert_eq!(v["params"]["uri"], "example://counter");
    }

    #[test]
    fn acknowledges_only_what_it_honours() {
        let f: Filter = serde_json::from_value(json!({
            "toolsListChanged": true, "promptsListChanged": false,
            "resourceSubscriptions": ["example://counter", "nope://x"]
        }))
        .unwrap();
        assert_eq!(
            f.honoured().to_json(),
            json!({"toolsListChanged": true, "resourceSubscriptions": ["example://counter"]})
        );
    }
}
