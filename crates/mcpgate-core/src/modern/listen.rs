//! `subscriptions/listen` for stateless clients: one long-lived response stream per listen
//! request, carrying only the change notifications the client opted in to, each tagged with
//! `_meta["io.modelcontextprotocol/subscriptionId"]` (the listen request's id), the
//! acknowledgment first.
//!
//! A listen stream is registered like a session (so the gateway's existing fan-out reaches it:
//! coalesced `list_changed` from targets' main sessions, target membership changes, policy
//! reloads, and `notifications/resources/updated` for subscribed URIs), with an [`Outbound`]
//! that filters and tags. It holds an in-flight entry, so the idle sweep never closes it while
//! it is open. For `resourceSubscriptions` the gateway sends `resources/subscribe` upstream on
//! the client's behalf (authorized like any request) and `resources/unsubscribe` when the
//! stream closes, unless another session or stream still holds that URI.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use mcpgate_auth::Identity;
use mcpgate_proto::modern::meta;
use mcpgate_proto::raw::{elements, member, str_member};
use mcpgate_proto::{ErrorCode, Message, ObjectEdit, RawJson};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Reply, RequestMeta, Status};
use crate::gateway::{Gateway, Inner};
use crate::session::{DownstreamKind, InFlight, Outbound, Session};

/// How many notifications may wait for a slow listen stream before more are dropped.
const LISTEN_QUEUE: usize = 256;

/// What a listen request opted in to.
#[derive(Clone, Debug, Default)]
struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: HashSet<String>,
}

impl Filter {
    fn parse(params: Option<&RawJson>) -> Result<Filter, &'static str> {
        let Some(n) = params.and_then(|p| member(p, "notifications")) else {
            return Ok(Filter::default());
        };
        if !n.is_object() {
            return Err("Invalid params: notifications must be an object");
        }
        let flag = |k: &str| member(&n, k).is_some_and(|v| v.as_str() == "true");
        let mut uris = HashSet::new();
        if let Some(list) = member(&n, "resourceSubscriptions") {
            let items = elements(&list).ok_or("Invalid params: resourceSubscriptions must be an array of URIs")?;
            for item in items {
                let uri = item
                    .as_json_str()
                    .ok_or("Invalid params: resourceSubscriptions must be an array of URIs")?;
                uris.insert(uri.to_string());
            }
        }
        Ok(Filter {
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            uris,
        })
    }

    fn admits(&self, msg: &Message) -> bool {
        match msg.method() {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => msg
                .params
                .as_ref()
                .and_then(|p| str_member(p, "uri"))
                .is_some_and(|u| self.uris.contains(u.as_str())),
            _ => false,
        }
    }

    fn to_json(&self, uris: &[String]) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        for (k, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                o.insert(k.into(), true.into());
            }
        }
        if !uris.is_empty() {
            o.insert("resourceSubscriptions".into(), uris.into());
        }
        o.into()
    }
}

/// `msg` with `_meta.subscriptionId` set.
fn tagged(msg: Message, id: &RawJson) -> Message {
    let mut p = ObjectEdit::parse_or_new(msg.params.as_ref()).unwrap_or_default();
    let mut m = p
        .get("_meta")
        .and_then(|m| ObjectEdit::parse(m).ok())
        .unwrap_or_default();
    m.set(meta::SUBSCRIPTION_ID, id.clone());
    p.set("_meta", m.to_raw());
    Message {
        params: Some(p.to_raw()),
        ..msg
    }
}

struct ListenOutbound {
    filter: parking_lot::RwLock<Filter>,
    id: RawJson,
    tx: mpsc::Sender<Message>,
}

impl Outbound for ListenOutbound {
    fn send(&self, msg: Message) -> bool {
        if !self.filter.read().admits(&msg) {
            return !self.tx.is_closed();
        }
        match self.tx.try_send(tagged(msg, &self.id)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("A listen stream is not keeping up; dropped a notification.");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An open listen stream: read [`Listen::rx`] until it ends or [`Listen::closed`] fires
/// (the gateway ends the subscription: answer with [`Listen::final_response`]). Dropping it
/// ends the subscription.
pub struct Listen {
    /// The acknowledgment, then the notifications.
    pub rx: mpsc::Receiver<Message>,
    /// Fires when the gateway ends the subscription (shutdown).
    pub closed: CancellationToken,
    id: RawJson,
    _guard: ListenGuard,
}

impl Listen {
    /// The response that ends the subscription gracefully.
    pub fn final_response(&self) -> Message {
        let result = serde_json::json!({
            "resultType": "complete",
            "_meta": { meta::SUBSCRIPTION_ID: self.id, meta::SERVER_INFO: super::server_info() },
        });
        Message::response(self.id.clone(), RawJson::from_value(&result))
    }
}

struct ListenGuard {
    gw: Weak<Inner>,
    session: Arc<Session>,
}

impl Drop for ListenGuard {
    fn drop(&mut self) {
        let (me, session) = (self.gw.clone(), self.session.clone());
        tokio::spawn(async move {
            let Some(inner) = me.upgrade() else { return };
            let gw = Gateway { inner };
            session.state.lock().in_flight.clear();
            let uris: Vec<String> = session.state.lock().subscriptions.iter().cloned().collect();
            for uri in uris {
                let others = gw
                    .inner
                    .sessions
                    .read()
                    .values()
                    .any(|s| !Arc::ptr_eq(s, &session) && s.is_subscribed(&uri));
                if others {
                    continue;
                }
                let params = RawJson::from_value(&serde_json::json!({ "uri": uri }));
                let req = Message::request(RawJson::from_static("0"), "resources/unsubscribe", Some(params));
                gw.handle(&session, req, None).await;
            }
            gw.close_session(&session.id);
        });
    }
}

impl Gateway {
    /// Opens a `subscriptions/listen` stream for a stateless client.
    pub async fn modern_listen(
        &self,
        msg: Message,
        meta: RequestMeta,
        identity: Option<Arc<Identity>>,
    ) -> Result<Listen, Box<Reply>> {
        let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
        let filter = Filter::parse(msg.params.as_ref()).map_err(|e| {
            Box::new(Reply::error(
                id.clone(),
                ErrorCode::INVALID_PARAMS,
                e,
                None,
                Status::BadRequest,
            ))
        })?;
        let (tx, rx) = mpsc::channel(LISTEN_QUEUE);
        let outbound = ListenOutbound {
            filter: parking_lot::RwLock::new(Filter {
                uris: HashSet::new(),
                ..filter.clone()
            }),
            id: id.clone(),
            tx: tx.clone(),
        };
        let key: [u8; 16] = rand::random();
        let session = Arc::new(Session::new(
            Arc::from(format!("listen-{}", hex::encode(key))),
            DownstreamKind::Modern,
            mcpgate_proto::modern::V2026_07_28,
            meta.client_info.clone(),
            meta.client_capabilities.clone(),
            Box::new(outbound),
            self.inner.now_ms(),
        ));
        if let Some(identity) = identity {
            let _ = session.identity.set(identity);
        }
        session.state.lock().in_flight.insert(
            id.clone(),
            InFlight {
                cancel: CancellationToken::new(),
            },
        );
        // Subscribe upstream on the client's behalf; URIs that fail (unknown, denied) are left
        // out of the acknowledgment.
        let mut agreed = Vec::new();
        let mut uris: Vec<&String> = filter.uris.iter().collect();
        uris.sort();
        for uri in uris {
            let params = RawJson::from_value(&serde_json::json!({ "uri": uri }));
            let req = Message::request(RawJson::from_static("0"), "resources/subscribe", Some(params));
            match self.handle(&session, req, None).await {
                Some(r) if r.error.is_none() => agreed.push(uri.clone()),
                other => {
                    tracing::debug!(uri = %uri, response = ?other.map(|m| m.to_bytes()), "A listen stream's resource subscription was refused.");
                }
            }
        }
        let ack = Message::notification(
            "notifications/subscriptions/acknowledged",
            Some(RawJson::from_value(&serde_json::json!({
                "_meta": { meta::SUBSCRIPTION_ID: id },
                "notifications": filter.to_json(&agreed),
            }))),
        );
        let _ = tx.try_send(ack);
        if let Some(o) = session.outbound().as_any().downcast_ref::<ListenOutbound>() {
            o.filter.write().uris = agreed.into_iter().collect();
        }
        self.inner.sessions.write().insert(session.id.clone(), session.clone());
        Ok(Listen {
            rx,
            closed: session.closed.clone(),
            id,
            _guard: ListenGuard {
                gw: self.inner.me.clone(),
                session,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_tags() {
        let p = RawJson::from_value(&serde_json::json!({
            "notifications": { "toolsListChanged": true, "resourceSubscriptions": ["a://1"] }
        }));
        let f = Filter::parse(Some(&p)).unwrap();
        assert!(f.admits(&Message::notification("notifications/tools/list_changed", None)));
        assert!(!f.admits(&Message::notification("notifications/prompts/list_changed", None)));
        let upd = |u: &str| {
            Message::notification(
                "notifications/resources/updated",
                Some(RawJson::from_value(&serde_json::json!({ "uri": u }))),
            )
        };
        assert!(f.admits(&upd("a://1")) && !f.admits(&upd("a://2")));
        assert!(!f.admits(&Message::notification("notifications/message", None)));
        let t = tagged(upd("a://1"), &RawJson::from_static("7"));
        let v: serde_json::Value = t.params.unwrap().decode().unwrap();
        assert_eq!(v["_meta"][meta::SUBSCRIPTION_ID], 7);
        assert!(Filter::parse(Some(&RawJson::from_value(&serde_json::json!({"notifications": 1})))).is_err());
        assert!(
            Filter::parse(Some(&RawJson::from_value(
                &serde_json::json!({"notifications": {"resourceSubscriptions": [1]}})
            )))
            .is_err()
        );
    }
}
