//! Session-based clients in front of 2026-07-28 ("stateless") upstreams.
//!
//! Two things differ from a session-based upstream:
//!
//! - **Per-request metadata** ([`upstream_params`]): each request carries the protocol
//!   version and the *client's* capabilities and clientInfo (from its `initialize`, or a
//!   stateless client's own `_meta`) and its log level, so the upstream sees each client as
//!   itself over one shared connection.
//! - **Input requests** ([`Inner::fulfil_input`]): the upstream does not send
//!   `sampling/createMessage`, `elicitation/create` or `roots/list` as requests; it answers
//!   the call with `resultType: "input_required"`. For a session-based client the gateway
//!   asks each `inputRequests` entry as an ordinary server→client request on the call's
//!   stream, collects the answers, and retries the call upstream with `inputResponses` and
//!   the upstream's `requestState` unchanged, until the upstream gives the final result.
//!   A stateless client gets the `input_required` result itself and retries on its own
//!   (modern/mrtr.rs forwards that retry as is).

use std::sync::Arc;
use std::time::Duration;

use mcpgate_proto::modern::{self as wire, meta};
use mcpgate_proto::raw::{member, str_member};
use mcpgate_proto::{ErrorCode, Message, ObjectEdit, RawJson};

use crate::error::GatewayError;
use crate::gateway::Inner;
use crate::session::{LOG_LEVELS, PendingServerRequest, RelatedSink, ReplyTo, Session};
use crate::target::TargetRt;

/// Most input rounds one call may take before the gateway gives up on the upstream (a
/// server may re-ask until it has what it needs, but not forever).
pub const MAX_INPUT_ROUNDS: usize = 16;

/// `params` for a 2026-07-28 upstream on behalf of `session`: its capabilities, clientInfo
/// and log level in `_meta` (a stateless client's progress token and other `_meta` kept).
pub(crate) fn upstream_params(session: &Session, params: Option<&RawJson>) -> RawJson {
    let mut p = params.and_then(|p| ObjectEdit::parse(p).ok()).unwrap_or_default();
    let mut m = p
        .get("_meta")
        .and_then(|m| ObjectEdit::parse(m).ok())
        .unwrap_or_default();
    // The version too, so the connection finds the request complete and passes it on as is.
    m.set(meta::PROTOCOL_VERSION, RawJson::string(wire::V2026_07_28));
    m.set(meta::CLIENT_CAPABILITIES, session.client_capabilities.clone());
    // clientInfo is optional in 2026-07-28; a stateless client that sent none has an empty
    // object here, which is no valid Implementation: leave the key to the connection's default.
    if str_member(&session.client_info, "name").is_some() {
        m.set(meta::CLIENT_INFO, session.client_info.clone());
    } else {
        m.remove(meta::CLIENT_INFO);
    }
    let level = session.state.lock().log_level;
    match level {
        Some(l) => m.set(meta::LOG_LEVEL, RawJson::string(LOG_LEVELS[l])),
        None => {
            m.remove(meta::LOG_LEVEL);
        }
    }
    p.set("_meta", m.to_raw());
    p.to_raw()
}

/// Is `resp` an `input_required` result?
pub(crate) fn is_input_required(resp: &Message) -> bool {
    resp.result
        .as_ref()
        .and_then(|r| str_member(r, "resultType"))
        .is_some_and(|t| t.as_str() == wire::RESULT_INPUT_REQUIRED)
}

/// The client capability an input request needs (`None`: not an input request).
pub(crate) fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

fn error_reply(id: &RawJson, code: ErrorCode, message: &str, data: Option<serde_json::Value>) -> Message {
    Message::error(id.clone(), code, message, data.map(|d| RawJson::from_value(&d)))
}

impl Inner {
    /// Drives a session-based client's call through a 2026-07-28 upstream's input rounds:
    /// `first` is the upstream's `input_required` answer to `msg`.
    pub(crate) async fn fulfil_input(
        &self,
        session: &Arc<Session>,
        t: &Arc<TargetRt>,
        msg: Message,
        sink: Option<RelatedSink>,
        first: Message,
    ) -> Result<Message, GatewayError> {
        let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
        let wait = self.runtime.load().config.stateless.input_wait;
        let mut resp = first;
        for _round in 0..MAX_INPUT_ROUNDS {
            if !is_input_required(&resp) {
                return Ok(resp);
            }
            let result = resp.result.clone().unwrap_or(RawJson::from_static("{}"));
            let requests = member(&result, "inputRequests")
                .map(|r| ObjectEdit::parse(&r))
                .transpose()
                .map_err(|_| GatewayError::BadResponse {
                    target: t.name().to_string(),
                    message: "inputRequests of an input_required result is not an object".into(),
                })?
                .unwrap_or_default();
            let mut answers = ObjectEdit::new();
            for (key, request) in requests.iter() {
                let method = str_member(request, "method")
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_default();
                let Some(capability) = capability_for(&method) else {
                    return Err(GatewayError::BadResponse {
                        target: t.name().to_string(),
                        message: format!("input request `{key}` has method `{method}`, which is not an input request"),
                    });
                };
                if member(&session.client_capabilities, capability).is_none() {
                    return Ok(error_reply(
                        &id,
                        wire::MISSING_REQUIRED_CLIENT_CAPABILITY,
                        &format!(
                            "Missing required client capability: the upstream `{}` needs `{capability}`, which this client did not declare",
                            t.name()
                        ),
                        Some(serde_json::json!({ "requiredCapabilities": { capability: {} } })),
                    ));
                }
                let params = member(request, "params");
                let answer = match self.ask_client(session, sink.as_ref(), &method, params, wait).await {
                    Ok(a) => a,
                    Err(e) => return Err(e),
                };
                if let Some(err) = &answer.error {
                    // An input response is a result; a client error ends the call with it.
                    return Ok(Message {
                        id: Some(id),
                        error: Some(err.clone()),
                        result: None,
                        method: None,
                        params: None,
                        ..answer
                    });
                }
                answers.set(key, answer.result.unwrap_or(RawJson::from_static("{}")));
            }
            let mut p = msg
                .params
                .as_ref()
                .and_then(|p| ObjectEdit::parse(p).ok())
                .unwrap_or_default();
            p.set("inputResponses", answers.to_raw());
            match member(&result, "requestState") {
                Some(state) => p.set("requestState", state),
                None => {
                    p.remove("requestState");
                }
            }
            let retry = Message {
                params: Some(p.to_raw()),
                ..msg.clone()
            };
            resp = self.forward_once(session, t, retry, None, sink.clone()).await?;
        }
        if !is_input_required(&resp) {
            return Ok(resp);
        }
        Err(GatewayError::BadResponse {
            target: t.name().to_string(),
            message: format!("the upstream still asked for input after {MAX_INPUT_ROUNDS} rounds"),
        })
    }

    /// Asks the client one question (a server→client request on the call's stream) and
    /// waits up to `wait` for its answer.
    async fn ask_client(
        &self,
        session: &Arc<Session>,
        sink: Option<&RelatedSink>,
        method: &str,
        params: Option<RawJson>,
        wait: Duration,
    ) -> Result<Message, GatewayError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gid = session.mint_server_request_id();
        session.state.lock().server_requests.insert(
            gid,
            PendingServerRequest {
                reply_to: ReplyTo::Gateway(tx),
                trace: None,
            },
        );
        let request = Message::request(RawJson::from_value(&gid), method, params);
        session.send_related(sink, request);
        let outcome = tokio::select! {
            r = tokio::time::timeout(wait, rx) => r,
            _ = session.closed.cancelled() => {
                session.state.lock().server_requests.remove(&gid);
                return Err(GatewayError::Cancelled);
            }
        };
        match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(GatewayError::Cancelled),
            Err(_) => {
                session.state.lock().server_requests.remove(&gid);
                let params = RawJson::from_value(&serde_json::json!({
                    "requestId": gid,
                    "reason": "mcpgate: no answer in time",
                }));
                session.send_related(sink, Message::notification("notifications/cancelled", Some(params)));
                Err(GatewayError::InvalidParams(format!(
                    "the client did not answer `{method}` within {} s",
                    wait.as_secs()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_required_is_recognized() {
        let m = |s: &str| Message::parse(bytes::Bytes::from(s.to_owned())).unwrap();
        assert!(is_input_required(&m(
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","requestState":"x"}}"#
        )));
        assert!(!is_input_required(&m(
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[]}}"#
        )));
        assert!(!is_input_required(&m(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#
        )));
        assert!(!is_input_required(&m(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#
        )));
    }

    #[test]
    fn input_methods_need_their_capability() {
        assert_eq!(capability_for("sampling/createMessage"), Some("sampling"));
        assert_eq!(capability_for("elicitation/create"), Some("elicitation"));
        assert_eq!(capability_for("roots/list"), Some("roots"));
        assert_eq!(capability_for("tools/call"), None);
    }
}
