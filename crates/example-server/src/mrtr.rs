//! Multi-round-trip requests (2026-07-28) for the tools that need the client: `sample`,
//! `elicit` (one round, or two with `rounds: 2`) and `list_roots`.
//!
//! The first call answers `resultType: "input_required"` with `inputRequests` (keys `sample`,
//! `elicit`, `confirm`, `roots`) and a `requestState`: a random 128-bit handle on a server-side
//! entry holding the tool, its arguments, the answers so far and an expiry. The retry must
//! carry that state (an unknown, expired, already used or mismatched one is -32602) and the
//! `inputResponses`; when every answer is in, the result is built from them. Each state is
//! single-use. A request whose `clientCapabilities` lack what an input request needs is
//! refused with -32021 before anything is asked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::jsonrpc::{self, Incoming, Msg, RpcError};
use crate::modern::{self, ReqMeta};
use crate::server::Ctx;
use crate::session::caps;
use crate::tools::{self, ToolError};

/// How long a `requestState` stays valid.
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// Most states held at once (expired ones are dropped first; beyond it the oldest goes).
pub const MAX_STATES: usize = 10_000;

/// The tools that ask the client for input.
pub fn is_mrtr_tool(name: &str) -> bool {
    matches!(name, "sample" | "elicit" | "list_roots")
}

struct State {
    tool: String,
    args: Value,
    answers: Map<String, Value>,
    asked: String,
    expires: Instant,
}

/// The server-side table behind `requestState`.
#[derive(Default)]
pub struct States {
    map: Mutex<HashMap<String, State>>,
}

impl States {
    fn insert(&self, state: State) -> String {
        let handle = format!("{:032x}", rand::random::<u128>());
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_STATES {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_STATES
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(handle.clone(), state);
        handle
    }

    fn take(&self, handle: &str) -> Option<State> {
        let s = self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(handle)?;
        (s.expires > Instant::now()).then_some(s)
    }

    /// States outstanding (issued, not yet used, possibly expired).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[derive(Deserialize)]
struct Params {
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default, rename = "requestState")]
    request_state: Option<Value>,
    #[serde(default, rename = "inputResponses")]
    input_responses: Option<Value>,
}

/// What a tool needs next.
enum Step {
    /// Ask the client: (key, method, params, capability bit, capability name, capability JSON).
    Ask(&'static str, &'static str, Value, u8, &'static str, Value),
    /// The final result.
    Done(Bytes),
}

fn cap_of(tool: &str) -> (u8, &'static str, Value) {
    match tool {
        "sample" => (caps::SAMPLING, "sampling", json!({ "sampling": {} })),
        "list_roots" => (caps::ROOTS, "roots", json!({ "roots": {} })),
        _ => (
            caps::ELICIT_FORM,
            "elicitation (form mode)",
            json!({ "elicitation": { "form": {} } }),
        ),
    }
}

/// The capability check of a first call (no `requestState`), made before any stream starts.
pub fn precheck(msg: &Incoming, meta: &ReqMeta) -> Result<(), RpcError> {
    let Ok(p) = msg.parse_params::<Params>() else {
        return Ok(());
    };
    match p.name.as_deref() {
        Some(name) if is_mrtr_tool(name) && p.request_state.is_none() => {
            let (bit, cap_name, required) = cap_of(name);
            if meta.caps & bit == 0 {
                return Err(modern::missing_capability(cap_name, required));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn error(id: &str, e: RpcError) -> Option<Msg> {
    Some(Msg::response(jsonrpc::error(Some(id), &e)))
}

/// Handles `tools/call` of a multi-round-trip tool for a modern request.
pub async fn call(ctx: &Ctx, msg: &Incoming, id: &str) -> Option<Msg> {
    let p: Params = match msg.parse_params() {
        Ok(p) => p,
        Err(e) => return error(id, e),
    };
    let tool = p.name.unwrap_or_default();
    let args = p.arguments.unwrap_or_else(|| json!({}));
    let meta = ctx.meta.unwrap_or(ReqMeta {
        caps: 0,
        log_level: None,
    });
    let mut answers = Map::new();
    match (p.request_state, p.input_responses) {
        (None, None) => {}
        (None, Some(_)) => {
            return error(
                id,
                RpcError::invalid_params("inputResponses without the requestState they answer"),
            );
        }
        (Some(Value::String(handle)), responses) => {
            let Some(state) = ctx.shared.mrtr.take(&handle) else {
                return error(
                    id,
                    RpcError::invalid_params("Unknown, expired or already used requestState"),
                );
            };
            if state.tool != tool || state.args != args {
                return error(
                    id,
                    RpcError::invalid_params(
                        "requestState was issued for a different request (tool name or arguments differ)",
                    ),
                );
            }
            answers = state.answers;
            // Keys this server did not ask for are ignored, as the spec asks.
            if let Some(answer) = responses
                .as_ref()
                .and_then(Value::as_object)
                .and_then(|r| r.get(&state.asked))
            {
                answers.insert(state.asked.clone(), answer.clone());
            }
        }
        (Some(_), _) => return error(id, RpcError::invalid_params("requestState must be a string")),
    }
    let step = match next_step(id, &tool, &args, &answers) {
        Ok(s) => s,
        Err(ToolError::Failed(text)) | Err(ToolError::InvalidArguments(text)) => {
            return Some(Msg::response(tools::error_result(id, &text)));
        }
    };
    match step {
        Step::Done(bytes) => Some(Msg::response(bytes)),
        Step::Ask(key, method, params, bit, cap_name, required) => {
            if meta.caps & bit == 0 {
                return error(id, modern::missing_capability(cap_name, required));
            }
            let handle = ctx.shared.mrtr.insert(State {
                tool,
                args,
                answers,
                asked: key.to_owned(),
                expires: Instant::now() + STATE_TTL,
            });
            let result = json!({
                "resultType": mcpgate_proto::modern::RESULT_INPUT_REQUIRED,
                "inputRequests": { key: { "method": method, "params": params } },
                "requestState": handle,
            });
            Some(Msg::response(jsonrpc::result(id, &result)))
        }
    }
}

fn arg_str<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::InvalidArguments(format!("Invalid arguments: `{key}` (a string) is required")))
}

fn next_step(id: &str, tool: &str, args: &Value, answers: &Map<String, Value>) -> Result<Step, ToolError> {
    let (bit, cap_name, required) = cap_of(tool);
    let ask = |key, method, params| Ok(Step::Ask(key, method, params, bit, cap_name, required.clone()));
    match tool {
        "sample" => {
            let prompt = arg_str(args, "prompt")?;
            let max_tokens = match args.get("max_tokens") {
                None | Some(Value::Null) => 256,
                Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                    ToolError::InvalidArguments("Invalid arguments: max_tokens must be a positive integer".into())
                })?,
            };
            match answers.get("sample") {
                None => ask(
                    "sample",
                    "sampling/createMessage",
                    json!({
                        "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
                        "maxTokens": max_tokens,
                    }),
                ),
                Some(reply) => Ok(Step::Done(tools::sampling_answer(id, reply)?)),
            }
        }
        "list_roots" => match answers.get("roots") {
            None => ask("roots", "roots/list", json!({})),
            Some(reply) => {
                let roots = reply.get("roots").cloned().unwrap_or_else(|| json!([]));
                Ok(Step::Done(tools::structured(id, &json!({ "roots": roots }))))
            }
        },
        _ => {
            let question = arg_str(args, "question")?;
            let rounds = tools::elicit_rounds(args.get("rounds"))?;
            let Some(first) = answers.get("elicit") else {
                return ask("elicit", "elicitation/create", tools::elicit_params(question, true));
            };
            let mut out = tools::elicit_outcome(first)?;
            if rounds == 2 {
                let Some(second) = answers.get("confirm") else {
                    return ask("confirm", "elicitation/create", tools::confirm_params(first, true));
                };
                out["confirm"] = tools::elicit_outcome(second)?;
            }
            Ok(Step::Done(tools::structured(id, &out)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_single_use_and_expire() {
        let t = States::default();
        let h = t.insert(State {
            tool: "sample".into(),
            args: json!({}),
            answers: Map::new(),
            asked: "sample".into(),
            expires: Instant::now() + STATE_TTL,
        });
        assert_eq!(h.len(), 32);
        assert!(t.take(&h).is_some());
        assert!(t.take(&h).is_none());
        let h = t.insert(State {
            tool: "sample".into(),
            args: json!({}),
            answers: Map::new(),
            asked: "sample".into(),
            expires: Instant::now() - Duration::from_secs(1),
        });
        assert!(t.take(&h).is_none());
        assert!(t.take("forged").is_none());
    }
}
