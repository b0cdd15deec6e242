//! The tools: their definitions (serialized once), `tools/list` pages built from those bytes,
//! and `tools/call` for each tool, including the ones that talk back to the client
//! (progress, logging, sampling, elicitation, roots) and the fault modes that apply to calls.
//!
//! Errors follow the tools section of the spec: an unknown tool or a malformed call is a
//! JSON-RPC error (-32602); a failing tool is a result with `isError: true`; invalid arguments are
//! `isError` results from protocol 2025-11-25 on and -32602 errors before it, as each version
//! specifies.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::clock;
use crate::content::{self, COUNTER_URI};
use crate::jsonrpc::{self, Incoming, Msg, ResultWriter, RpcError};
use crate::markdown;
use crate::server::Ctx;
use crate::session::{LogLevel, Transport, Version, caps};

/// How long a tool waits for the client to answer a sampling, elicitation or roots request.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// What the garbage fault writes instead of a tool result.
pub const GARBAGE: &[u8] = b"garbage fault: this is not JSON }{";

/// Tool definitions and the tools added at run time.
pub struct ToolCatalog {
    /// Built-in tools, then `tool_NNNN` tools, each a serialized `Tool`.
    fixed: Vec<Bytes>,
    extra: usize,
    /// `echo_meta` is enabled.
    echo_meta: bool,
    /// The `x-mcp-header` fixtures are enabled (`--xheader-tools`).
    xheader_tools: bool,
    /// The pre-serialized result of `blob_result`, when enabled.
    blob_result: Option<Bytes>,
    /// Tools added by `add_tool` (name, serialized definition); copy-on-write.
    dynamic: RwLock<DynamicTools>,
}

/// Tools added at run time: (name, serialized definition), replaced whole on each addition.
type DynamicTools = Arc<Vec<(Box<str>, Bytes)>>;

fn ser(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

fn read_only() -> Value {
    json!({ "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false })
}

fn builtin_definitions(blob: bool, echo_meta: bool, modern: bool) -> Vec<Value> {
    let mut v = vec![
        json!({
            "name": "echo", "title": "Echo",
            "description": "Returns the message unchanged.",
            "inputSchema": { "type": "object", "properties": {
                "message": { "type": "string", "description": "The text to echo back." } },
                "required": ["message"] },
            "annotations": read_only(),
        }),
        json!({
            "name": "add", "title": "Add two numbers",
            "description": "Adds a and b. Returns the sum as text and as structured content {sum}.",
            "inputSchema": { "type": "object", "properties": {
                "a": { "type": "number", "description": "First addend." },
                "b": { "type": "number", "description": "Second addend." } },
                "required": ["a", "b"] },
            "outputSchema": { "type": "object", "properties": {
                "sum": { "type": "number", "description": "a + b" } }, "required": ["sum"] },
            "annotations": read_only(),
        }),
        json!({
            "name": "current_time", "title": "Current time",
            "description": "The current time as RFC 3339, in UTC or at a fixed offset such as +02:00 (named zones other than UTC are not supported).",
            "inputSchema": { "type": "object", "properties": {
                "timezone": { "type": "string", "description": "\"UTC\" (default) or an offset like \"+02:00\" or \"-05:30\"." } } },
            "outputSchema": { "type": "object", "properties": {
                "time": { "type": "string", "description": "RFC 3339 timestamp." },
                "timezone": { "type": "string", "description": "\"UTC\" or the offset used." },
                "unix": { "type": "integer", "description": "Seconds since the Unix epoch." } },
                "required": ["time", "timezone", "unix"] },
            "annotations": { "readOnlyHint": true, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
        }),
        json!({
            "name": "convert_to_markdown", "title": "Convert text to Markdown",
            "description": "Converts plain text to Markdown: a title-like first line becomes a heading, \
                ===/--- underlines become headings, -/*/+ and 1. lines become lists, indented blocks become code, \
                other lines join into paragraphs, URLs become autolinks and Markdown syntax characters are escaped.",
            "inputSchema": { "type": "object", "properties": {
                "text": { "type": "string", "description": "The plain text to convert." } },
                "required": ["text"] },
            "annotations": read_only(),
        }),
        json!({
            "name": "long_operation", "title": "Long operation",
            "description": "Works for `steps` steps of `delay_ms` each, sending notifications/progress after each step \
                when the request carries _meta.progressToken. Stops early on notifications/cancelled.",
            "inputSchema": { "type": "object", "properties": {
                "steps": { "type": "integer", "minimum": 0, "maximum": 10000, "default": 5, "description": "Number of steps." },
                "delay_ms": { "type": "integer", "minimum": 0, "maximum": 60000, "default": 200, "description": "Milliseconds per step." } } },
            "annotations": read_only(),
        }),
        json!({
            "name": "sample", "title": "Ask the client's model",
            "description": "Sends sampling/createMessage to the client with the prompt and returns the model's answer.",
            "inputSchema": { "type": "object", "properties": {
                "prompt": { "type": "string", "description": "What to ask the model." },
                "max_tokens": { "type": "integer", "minimum": 1, "default": 256, "description": "maxTokens for the request." } },
                "required": ["prompt"] },
            "annotations": { "readOnlyHint": true, "openWorldHint": true },
        }),
        json!({
            "name": "elicit", "title": "Ask the user",
            "description": "Sends elicitation/create (form mode) with the question and returns the user's action and answer.",
            "inputSchema": { "type": "object", "properties": {
                "question": { "type": "string", "description": "The question to show the user." } },
                "required": ["question"] },
            "outputSchema": { "type": "object", "properties": {
                "action": { "type": "string", "enum": ["accept", "decline", "cancel"] },
                "content": { "type": "object", "description": "The submitted form (accept only)." } },
                "required": ["action"] },
            "annotations": { "readOnlyHint": true, "openWorldHint": true },
        }),
        json!({
            "name": "list_roots", "title": "List the client's roots",
            "description": "Sends roots/list to the client and returns the roots it shares.",
            "inputSchema": { "type": "object", "additionalProperties": false },
            "outputSchema": { "type": "object", "properties": {
                "roots": { "type": "array", "items": { "type": "object", "properties": {
                    "uri": { "type": "string" }, "name": { "type": "string" } }, "required": ["uri"] } } },
                "required": ["roots"] },
            "annotations": read_only(),
        }),
        json!({
            "name": "log", "title": "Emit a log message",
            "description": "Sends notifications/message at the given level, unless below the level set with logging/setLevel.",
            "inputSchema": { "type": "object", "properties": {
                "level": { "type": "string", "enum": LogLevel::ALL.map(LogLevel::as_str), "description": "The severity." },
                "message": { "type": "string", "description": "The log text." },
                "logger": { "type": "string", "description": "Logger name (default \"example\")." } },
                "required": ["level", "message"] },
            "annotations": read_only(),
        }),
        json!({
            "name": "fail", "title": "Fail",
            "description": "Always fails: returns a tool result with isError true and the message.",
            "inputSchema": { "type": "object", "properties": {
                "message": { "type": "string", "description": "The error text." } } },
            "annotations": read_only(),
        }),
        json!({
            "name": "add_tool", "title": "Add a tool",
            "description": "Adds an echo-like tool with the given name and sends notifications/tools/list_changed to every session.",
            "inputSchema": { "type": "object", "properties": {
                "name": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$", "description": "The new tool's name." } },
                "required": ["name"] },
            "annotations": { "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
        }),
        json!({
            "name": "touch_resource", "title": "Touch a resource",
            "description": "Marks a resource as changed: sends notifications/resources/updated to the sessions subscribed to it \
                (touching example://counter also increments it).",
            "inputSchema": { "type": "object", "properties": {
                "uri": { "type": "string", "description": "The resource URI, e.g. example://counter." } },
                "required": ["uri"] },
            "annotations": { "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
        }),
    ];
    if modern {
        // 2026-07-28 servers (--era modern|dual) also offer a two-round elicitation.
        if let Some(elicit) = v.iter_mut().find(|d| d["name"] == "elicit") {
            elicit["inputSchema"]["properties"]["rounds"] = json!({
                "type": "integer", "minimum": 1, "maximum": 2, "default": 1,
                "description": "2 asks a second question (confirm) after the answer (--era modern|dual)."
            });
            elicit["outputSchema"]["properties"]["confirm"] =
                json!({ "type": "object", "description": "The confirmation round's {action, content} (rounds 2)." });
        }
    }
    if echo_meta {
        v.push(json!({
            "name": "echo_meta", "title": "Echo the request's _meta",
            "description": "Returns the request's params._meta (null when absent) as structured content {meta} (--echo-meta).",
            "inputSchema": { "type": "object" },
            "annotations": read_only(),
        }));
    }
    if blob {
        v.push(json!({
            "name": "blob_result", "title": "Large result",
            "description": "Returns a text of the configured size (--result-bytes), for benchmarks.",
            "inputSchema": { "type": "object" },
            "annotations": read_only(),
        }));
    }
    v
}

/// The `x-mcp-header` fixtures (MCP 2026-07-28, tools section and Streamable HTTP "Custom
/// Headers from Tool Parameters"): `xh_route` is valid; each `xh_bad_*` breaks one constraint
/// on `x-mcp-header` values, so a client (or a gateway serving HTTP clients) must leave it
/// out of `tools/list`.
pub const XHEADER_TOOLS: [&str; 7] = [
    "xh_route",
    "xh_bad_number",
    "xh_bad_items",
    "xh_bad_dup",
    "xh_bad_token",
    "xh_bad_ref",
    "xh_bad_oneof",
];

fn xheader_definitions() -> Vec<Value> {
    let def = |name: &str, description: &str, schema: Value| {
        json!({
            "name": name,
            "description": format!("{description} Returns its arguments as structured content {{arguments}} (--xheader-tools)."),
            "inputSchema": schema,
            "annotations": read_only(),
        })
    };
    vec![
        def(
            "xh_route",
            "Parameters mirrored into headers: Mcp-Param-Region (region), Mcp-Param-Tenant-Id (tenant.id), Mcp-Param-Verbose (verbose), Mcp-Param-Note (note).",
            json!({ "type": "object", "properties": {
                "region": { "type": "string", "description": "Where to run.", "x-mcp-header": "Region" },
                "tenant": { "type": "object", "properties": {
                    "id": { "type": "integer", "description": "The tenant.", "x-mcp-header": "Tenant-Id" } } },
                "verbose": { "type": "boolean", "x-mcp-header": "Verbose" },
                "note": { "type": "string", "description": "May be null (then no header is sent).", "x-mcp-header": "Note" },
                "query": { "type": "string", "description": "Not mirrored." } } }),
        ),
        def(
            "xh_bad_number",
            "Invalid: x-mcp-header on a number parameter.",
            json!({ "type": "object", "properties": {
                "amount": { "type": "number", "x-mcp-header": "Amount" } } }),
        ),
        def(
            "xh_bad_items",
            "Invalid: x-mcp-header under items.",
            json!({ "type": "object", "properties": {
                "regions": { "type": "array", "items": { "type": "string", "x-mcp-header": "Region" } } } }),
        ),
        def(
            "xh_bad_dup",
            "Invalid: the same header name twice (case-insensitively).",
            json!({ "type": "object", "properties": {
                "a": { "type": "string", "x-mcp-header": "Region" },
                "b": { "type": "string", "x-mcp-header": "region" } } }),
        ),
        def(
            "xh_bad_token",
            "Invalid: a header name that is not an HTTP token.",
            json!({ "type": "object", "properties": {
                "a": { "type": "string", "x-mcp-header": "Bad Name" } } }),
        ),
        def(
            "xh_bad_ref",
            "Invalid: x-mcp-header reached through $ref.",
            json!({ "type": "object", "properties": { "a": { "$ref": "#/$defs/A" } },
                "$defs": { "A": { "type": "string", "x-mcp-header": "A" } } }),
        ),
        def(
            "xh_bad_oneof",
            "Invalid: x-mcp-header under oneOf.",
            json!({ "type": "object", "oneOf": [
                { "properties": { "a": { "type": "string", "x-mcp-header": "A" } } },
                { "properties": { "b": { "type": "integer" } } } ] }),
        ),
    ]
}

fn extra_name(i: usize) -> String {
    format!("tool_{i:04}")
}

fn echo_definition(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": { "type": "object", "properties": {
            "message": { "type": "string", "description": "The text to echo back." } } },
    })
}

impl ToolCatalog {
    /// Builds the catalog for these options.
    pub fn new(extra: usize, result_bytes: Option<usize>, echo_meta: bool, modern: bool) -> ToolCatalog {
        let mut fixed: Vec<Bytes> = builtin_definitions(result_bytes.is_some(), echo_meta, modern)
            .iter()
            .map(ser)
            .collect();
        fixed.reserve(extra);
        for i in 0..extra {
            fixed.push(ser(&echo_definition(
                &extra_name(i),
                "Generated echo tool (--extra-tools).",
            )));
        }
        let blob_result = result_bytes.map(|n| {
            let text: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            ser(&json!({ "content": [{ "type": "text", "text": text }] }))
        });
        ToolCatalog {
            fixed,
            extra,
            echo_meta,
            xheader_tools: false,
            blob_result,
            dynamic: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// Adds the `x-mcp-header` fixtures ([`XHEADER_TOOLS`]) when `on`.
    pub fn with_xheader_tools(mut self, on: bool) -> ToolCatalog {
        if on {
            self.xheader_tools = true;
            self.fixed.extend(xheader_definitions().iter().map(ser));
        }
        self
    }

    fn dynamic(&self) -> DynamicTools {
        self.dynamic.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn is_extra(&self, name: &str) -> bool {
        name.strip_prefix("tool_")
            .filter(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|i| i < self.extra && extra_name(i) == name)
    }

    fn is_builtin(&self, name: &str) -> bool {
        BUILTINS.contains(&name)
            || (name == "blob_result" && self.blob_result.is_some())
            || (name == "echo_meta" && self.echo_meta)
            || (self.xheader_tools && XHEADER_TOOLS.contains(&name))
    }

    /// The `x-mcp-header` parameters of tool `name` (none when it has no valid annotations),
    /// for a 2026-07-28 server's check of `Mcp-Param-*` headers. Only definitions that spell
    /// the keyword are parsed.
    pub fn header_params(&self, name: &str) -> Vec<mcpgate_proto::xheader::HeaderParam> {
        #[derive(Deserialize)]
        struct N<'a> {
            #[serde(borrow)]
            name: Cow<'a, str>,
        }
        let marked = |def: &Bytes| {
            def.windows(mcpgate_proto::xheader::ANNOTATION.len())
                .any(|w| w == mcpgate_proto::xheader::ANNOTATION.as_bytes())
        };
        self.fixed
            .iter()
            .filter(|d| marked(d))
            .find(|d| serde_json::from_slice::<N<'_>>(d).is_ok_and(|n| n.name == name))
            .and_then(|d| {
                let raw = mcpgate_proto::RawJson::parse(d.clone()).ok()?;
                mcpgate_proto::xheader::tool_header_params(&raw).ok()
            })
            .unwrap_or_default()
    }

    /// Whether a tool with this name exists.
    pub fn exists(&self, name: &str) -> bool {
        self.is_builtin(name) || self.is_extra(name) || self.dynamic().iter().any(|(n, _)| &**n == name)
    }

    /// Adds an echo-like tool; false when the name is taken.
    pub fn add(&self, name: &str) -> bool {
        if self.is_builtin(name) || self.is_extra(name) {
            return false;
        }
        let def = ser(&echo_definition(name, "Dynamic echo tool added by add_tool."));
        let mut guard = self.dynamic.write().unwrap_or_else(|e| e.into_inner());
        if guard.iter().any(|(n, _)| &**n == name) {
            return false;
        }
        let mut next = Vec::with_capacity(guard.len() + 1);
        next.extend(guard.iter().cloned());
        next.push((name.into(), def));
        *guard = Arc::new(next);
        true
    }

    /// Writes a `tools/list` response for one page.
    pub fn list(&self, id: &str, page_size: Option<usize>, cursor: Option<&str>) -> Result<Bytes, RpcError> {
        let dynamic = self.dynamic();
        let total = self.fixed.len() + dynamic.len();
        let (range, next) = content::page(total, page_size, cursor, "tools")?;
        let item = |i: usize| -> &[u8] {
            if i < self.fixed.len() {
                &self.fixed[i]
            } else {
                &dynamic[i - self.fixed.len()].1
            }
        };
        let size: usize = range.clone().map(|i| item(i).len() + 1).sum();
        let mut w = ResultWriter::new(id, size + 48);
        w.raw(b"{\"tools\":[");
        for (n, i) in range.enumerate() {
            if n > 0 {
                w.raw(b",");
            }
            w.raw(item(i));
        }
        w.raw(b"]");
        if let Some(next) = next {
            w.raw(b",\"nextCursor\":").json(&next);
        }
        w.raw(b"}");
        Ok(w.finish())
    }
}

const BUILTINS: [&str; 12] = [
    "echo",
    "add",
    "current_time",
    "convert_to_markdown",
    "long_operation",
    "sample",
    "elicit",
    "list_roots",
    "log",
    "fail",
    "add_tool",
    "touch_resource",
];

/// The tools that may wait or send messages before their result; every other tool answers
/// at once and can run inline.
const TALKING_TOOLS: [&str; 5] = ["long_operation", "sample", "elicit", "list_roots", "log"];

/// Whether calling `name` finishes at once without sending anything else first.
pub fn is_instant(name: &str) -> bool {
    !TALKING_TOOLS.contains(&name)
}

/// The tool name of a `tools/call`, if present.
pub fn peek_name(msg: &Incoming) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Name<'a> {
        #[serde(borrow, default)]
        name: Option<Cow<'a, str>>,
    }
    msg.parse_params::<Name<'_>>().ok()?.name
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<Meta<'a>>,
    /// 2026-07-28 retries only.
    #[serde(borrow, default, rename = "requestState")]
    request_state: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

/// Why a tool did not produce a normal result.
pub enum ToolError {
    /// Arguments that do not match the input schema.
    InvalidArguments(String),
    /// The tool ran and failed: an `isError` result.
    Failed(String),
}

type ToolResult = Result<Bytes, ToolError>;

/// An `isError` tool result with this text.
pub fn error_result(id: &str, text: &str) -> Bytes {
    call_result(id, text, None, true)
}

/// A tool result with structured content (and its JSON as text).
pub fn structured(id: &str, value: &Value) -> Bytes {
    structured_result(id, value)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallToolResult<'a> {
    content: [TextContent<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    structured_content: Option<&'a Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_error: bool,
}

#[derive(Serialize)]
struct TextContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

fn text_result(id: &str, text: &str) -> Bytes {
    call_result(id, text, None, false)
}

fn call_result(id: &str, text: &str, structured: Option<&Value>, is_error: bool) -> Bytes {
    let mut w = ResultWriter::new(id, text.len() + 48);
    w.json(&CallToolResult {
        content: [TextContent { kind: "text", text }],
        structured_content: structured,
        is_error,
    });
    w.finish()
}

/// A result whose text is the JSON of its structured content (as the spec recommends).
fn structured_result(id: &str, value: &Value) -> Bytes {
    call_result(id, &value.to_string(), Some(value), false)
}

fn args<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Result<T, ToolError> {
    serde_json::from_str(raw.map_or("{}", RawValue::get))
        .map_err(|e| ToolError::InvalidArguments(format!("Invalid arguments: {e}")))
}

/// Handles `tools/call`. `None` means no response (never happens except under the hang fault,
/// which simply never completes).
pub async fn call(ctx: &Ctx, msg: &Incoming, id: &str) -> Option<Msg> {
    let opts = &ctx.shared.opts;
    if ctx.shared.call_hangs() {
        std::future::pending::<()>().await;
    }
    if opts.garbage() {
        return Some(Msg::response(Bytes::from_static(GARBAGE)));
    }
    let slow = opts.slow_calls();
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    if opts.floods() {
        if ctx.meta.is_some_and(|m| m.log_level.is_none()) {
            // 2026-07-28: no log messages for a request that did not ask for them.
            std::future::pending::<()>().await;
        }
        let filler = "x".repeat(16 * 1024);
        loop {
            let n = log_message(LogLevel::parse("info").expect("a level"), "flood", &filler);
            if ctx.out.send(Msg::other(n)).await.is_err() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let params: CallParams<'_> = match msg.parse_params() {
        Ok(p) => p,
        Err(e) => return Some(Msg::response(jsonrpc::error(Some(id), &e))),
    };
    let Some(name) = params.name else {
        let e = RpcError::invalid_params("missing tool name");
        return Some(Msg::response(jsonrpc::error(Some(id), &e)));
    };
    if !ctx.shared.tools.exists(&name) {
        let e = RpcError::invalid_params(format!("Unknown tool: {name}"));
        return Some(Msg::response(jsonrpc::error(Some(id), &e)));
    }
    if !opts.call_delay.is_zero() {
        tokio::time::sleep(opts.call_delay).await;
    }
    if ctx.meta.is_some() {
        if crate::mrtr::is_mrtr_tool(&name) {
            return crate::mrtr::call(ctx, msg, id).await;
        }
        if params.request_state.is_some() {
            // 2026-07-28: only the multi-round-trip tools issue states; any other is forged.
            let e = RpcError::invalid_params(format!("Unknown requestState: {name} never asks for input"));
            return Some(Msg::response(jsonrpc::error(Some(id), &e)));
        }
    }
    if name == "echo_meta" {
        #[derive(Deserialize)]
        struct P<'a> {
            #[serde(borrow, default, rename = "_meta")]
            meta: Option<&'a RawValue>,
        }
        let meta: Value = msg
            .parse_params::<P<'_>>()
            .ok()
            .and_then(|p| p.meta)
            .and_then(|m| serde_json::from_str(m.get()).ok())
            .unwrap_or(Value::Null);
        return Some(Msg::response(structured_result(id, &json!({ "meta": meta }))));
    }
    let progress = params.meta.and_then(|m| m.progress_token);
    let outcome = run(ctx, id, &name, params.arguments, progress).await;
    let bytes = match outcome {
        Ok(b) => b,
        Err(ToolError::Failed(text)) => call_result(id, &text, None, true),
        Err(ToolError::InvalidArguments(text)) => {
            if ctx.version >= Version::V2025_11_25 {
                call_result(id, &text, None, true)
            } else {
                jsonrpc::error(Some(id), &RpcError::invalid_params(text))
            }
        }
    };
    Some(Msg::response(bytes))
}

async fn run(ctx: &Ctx, id: &str, name: &str, raw: Option<&RawValue>, progress: Option<&RawValue>) -> ToolResult {
    match name {
        "echo" => {
            #[derive(Deserialize)]
            struct A<'a> {
                #[serde(borrow)]
                message: Cow<'a, str>,
            }
            let a: A<'_> = args(raw)?;
            Ok(text_result(id, &a.message))
        }
        "add" => {
            #[derive(Deserialize)]
            struct A {
                a: serde_json::Number,
                b: serde_json::Number,
            }
            let a: A = args(raw)?;
            let sum = match (a.a.as_i64(), a.b.as_i64()) {
                (Some(x), Some(y)) if x.checked_add(y).is_some() => json!(x + y),
                _ => {
                    let s = a.a.as_f64().unwrap_or(f64::NAN) + a.b.as_f64().unwrap_or(f64::NAN);
                    if !s.is_finite() {
                        return Err(ToolError::Failed("The sum is not a finite number.".into()));
                    }
                    json!(s)
                }
            };
            Ok(structured_result(id, &json!({ "sum": sum })))
        }
        "current_time" => {
            #[derive(Deserialize)]
            struct A {
                timezone: Option<String>,
            }
            let a: A = args(raw)?;
            let tz = a.timezone.as_deref().unwrap_or("UTC");
            let offset = clock::parse_offset(tz).ok_or_else(|| {
                ToolError::InvalidArguments(format!(
                    "Unsupported timezone {tz:?}: use \"UTC\" or a fixed offset like \"+02:00\"."
                ))
            })?;
            let unix = clock::now_unix();
            let time = clock::format_rfc3339(unix, offset);
            let zone = if offset.0 == 0 {
                "UTC".to_owned()
            } else {
                time[time.len() - 6..].to_owned()
            };
            Ok(call_result(
                id,
                &time,
                Some(&json!({ "time": time, "timezone": zone, "unix": unix })),
                false,
            ))
        }
        "convert_to_markdown" => {
            #[derive(Deserialize)]
            struct A<'a> {
                #[serde(borrow)]
                text: Cow<'a, str>,
            }
            let a: A<'_> = args(raw)?;
            Ok(text_result(id, &markdown::convert(&a.text)))
        }
        "long_operation" => long_operation(ctx, id, raw, progress).await,
        "sample" => sample(ctx, id, raw).await,
        "elicit" => elicit(ctx, id, raw).await,
        "list_roots" => {
            let reply = client_request(ctx, "roots/list", &json!({}), caps::ROOTS, "roots").await?;
            let roots = reply.get("roots").cloned().unwrap_or_else(|| json!([]));
            Ok(structured_result(id, &json!({ "roots": roots })))
        }
        "log" => {
            #[derive(Deserialize)]
            struct A<'a> {
                #[serde(borrow)]
                level: Cow<'a, str>,
                #[serde(borrow)]
                message: Cow<'a, str>,
                #[serde(borrow, default)]
                logger: Option<Cow<'a, str>>,
            }
            let a: A<'_> = args(raw)?;
            let level = LogLevel::parse(&a.level)
                .ok_or_else(|| ToolError::InvalidArguments(format!("Unknown log level {:?}.", a.level)))?;
            let min = match ctx.meta {
                None => ctx.session.log_level(),
                Some(meta) => match meta.log_level {
                    Some(l) => l,
                    None => {
                        return Ok(text_result(
                            id,
                            "Not sent: the request's _meta has no io.modelcontextprotocol/logLevel.",
                        ));
                    }
                },
            };
            if level < min {
                return Ok(text_result(
                    id,
                    &format!(
                        "Not sent: {} is below the session's level {}.",
                        level.as_str(),
                        min.as_str()
                    ),
                ));
            }
            let logger = a.logger.as_deref().unwrap_or("example");
            let n = log_message(level, logger, &a.message);
            let _ = ctx.out.send(Msg::other(n)).await;
            Ok(text_result(id, &format!("Sent a {} log message.", level.as_str())))
        }
        "fail" => {
            #[derive(Deserialize)]
            struct A {
                message: Option<String>,
            }
            let a: A = args(raw)?;
            Err(ToolError::Failed(
                a.message.unwrap_or_else(|| "The fail tool failed, as asked.".into()),
            ))
        }
        "add_tool" => {
            #[derive(Deserialize)]
            struct A {
                name: String,
            }
            let a: A = args(raw)?;
            let valid = (1..=128).contains(&a.name.len())
                && a.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(ToolError::InvalidArguments(format!(
                    "Invalid tool name {:?}: use 1-128 of A-Z a-z 0-9 _ - .",
                    a.name
                )));
            }
            if !ctx.shared.add_tool(&a.name) {
                return Err(ToolError::Failed(format!("A tool named {:?} exists already.", a.name)));
            }
            Ok(text_result(id, &format!("Added tool {:?}.", a.name)))
        }
        "touch_resource" => {
            #[derive(Deserialize)]
            struct A {
                uri: String,
            }
            let a: A = args(raw)?;
            if !content::exists(&a.uri) {
                return Err(ToolError::Failed(format!("Unknown resource {:?}.", a.uri)));
            }
            if a.uri == COUNTER_URI {
                ctx.shared.bump_counter();
            }
            let n = ctx.shared.notify_resource_updated(&a.uri);
            Ok(text_result(
                id,
                &format!("Notified {n} subscribed session(s) that {} changed.", a.uri),
            ))
        }
        "blob_result" => match &ctx.shared.tools.blob_result {
            Some(body) => {
                let mut w = ResultWriter::new(id, body.len());
                w.raw(body);
                Ok(w.finish())
            }
            None => Err(ToolError::Failed("blob_result is disabled.".into())),
        },
        xh if XHEADER_TOOLS.contains(&xh) => {
            let arguments: Value = match raw {
                Some(r) => serde_json::from_str(r.get()).unwrap_or(Value::Null),
                None => Value::Null,
            };
            Ok(structured_result(id, &json!({ "arguments": arguments })))
        }
        // tool_NNNN and dynamic tools echo their message.
        other => {
            #[derive(Deserialize)]
            struct A<'a> {
                #[serde(borrow, default)]
                message: Option<Cow<'a, str>>,
            }
            let a: A<'_> = args(raw)?;
            Ok(text_result(id, a.message.as_deref().unwrap_or(other)))
        }
    }
}

/// A `notifications/message`.
pub fn log_message(level: LogLevel, logger: &str, data: &str) -> Bytes {
    jsonrpc::notification(
        "notifications/message",
        &json!({ "level": level.as_str(), "logger": logger, "data": data }),
    )
}

async fn long_operation(ctx: &Ctx, id: &str, raw: Option<&RawValue>, progress: Option<&RawValue>) -> ToolResult {
    #[derive(Deserialize)]
    struct A {
        steps: Option<u64>,
        delay_ms: Option<u64>,
    }
    let a: A = args(raw)?;
    let steps = a.steps.unwrap_or(5);
    let delay = a.delay_ms.unwrap_or(200);
    if steps > 10_000 || delay > 60_000 {
        return Err(ToolError::InvalidArguments(
            "steps must be at most 10000 and delay_ms at most 60000.".into(),
        ));
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Progress<'a> {
        progress_token: &'a RawValue,
        progress: u64,
        total: u64,
        message: String,
    }
    for step in 1..=steps {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if let Some(token) = progress {
            let n = jsonrpc::notification(
                "notifications/progress",
                &Progress {
                    progress_token: token,
                    progress: step,
                    total: steps,
                    message: format!("Step {step} of {steps}"),
                },
            );
            let _ = ctx.out.send(Msg::other(n)).await;
        }
    }
    Ok(text_result(
        id,
        &format!("Long operation finished: {steps} step(s) of {delay} ms."),
    ))
}

async fn sample(ctx: &Ctx, id: &str, raw: Option<&RawValue>) -> ToolResult {
    #[derive(Deserialize)]
    struct A {
        prompt: String,
        max_tokens: Option<u32>,
    }
    let a: A = args(raw)?;
    let params = json!({
        "messages": [{ "role": "user", "content": { "type": "text", "text": a.prompt } }],
        "maxTokens": a.max_tokens.unwrap_or(256),
    });
    let reply = client_request(ctx, "sampling/createMessage", &params, caps::SAMPLING, "sampling").await?;
    sampling_answer(id, &reply)
}

/// The tool result of `sample` from the client's `CreateMessageResult`.
pub fn sampling_answer(id: &str, reply: &Value) -> ToolResult {
    // `content` is one block, or (2025-11-25) an array of blocks.
    let blocks = match reply.get("content") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    };
    let text: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    if text.is_empty() {
        return Err(ToolError::Failed(
            "The client's sampling result had no text content.".into(),
        ));
    }
    Ok(text_result(id, &text.join("\n")))
}

async fn elicit(ctx: &Ctx, id: &str, raw: Option<&RawValue>) -> ToolResult {
    #[derive(Deserialize)]
    struct A {
        question: String,
        /// Offered (and read) only by `--era modern|dual` servers.
        #[serde(default)]
        rounds: Option<Value>,
    }
    let a: A = args(raw)?;
    let with_mode = ctx.version >= Version::V2025_11_25;
    let rounds = if ctx.shared.opts.era.modern() {
        elicit_rounds(a.rounds.as_ref())?
    } else {
        1
    };
    let params = elicit_params(&a.question, with_mode);
    let ask = |params| {
        client_request(
            ctx,
            "elicitation/create",
            params,
            caps::ELICIT_FORM,
            "elicitation (form mode)",
        )
    };
    let reply = ask(&params).await?;
    let mut out = elicit_outcome(&reply)?;
    if rounds == 2 {
        let second = ask(&confirm_params(&reply, with_mode)).await?;
        out["confirm"] = elicit_outcome(&second)?;
    }
    Ok(structured_result(id, &out))
}

/// The `rounds` argument of `elicit`: 1 (default) or 2.
pub fn elicit_rounds(v: Option<&Value>) -> Result<u64, ToolError> {
    match v {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=2).contains(n))
            .ok_or_else(|| ToolError::InvalidArguments("Invalid arguments: rounds must be 1 or 2".into())),
    }
}

/// The second (confirmation) question of `elicit` with `rounds: 2`, quoting the first answer.
pub fn confirm_params(first: &Value, with_mode: bool) -> Value {
    let answer = first
        .get("content")
        .and_then(|c| c.get("answer"))
        .map(|a| a.to_string())
        .unwrap_or_else(|| "nothing".into());
    let mut params = json!({
        "message": format!("You answered {answer}. Is that final?"),
        "requestedSchema": {
            "type": "object",
            "properties": { "confirm": { "type": "boolean", "title": "Confirm" } },
            "required": ["confirm"]
        }
    });
    if with_mode {
        params["mode"] = json!("form");
    }
    params
}

/// The `elicitation/create` params of `elicit` (`mode: "form"` from 2025-11-25 on).
pub fn elicit_params(question: &str, with_mode: bool) -> Value {
    let mut params = json!({
        "message": question,
        "requestedSchema": {
            "type": "object",
            "properties": { "answer": { "type": "string", "title": "Answer", "description": question } },
            "required": ["answer"]
        }
    });
    if with_mode {
        params["mode"] = json!("form");
    }
    params
}

/// `{action, content?}` from the client's `ElicitResult`.
pub fn elicit_outcome(reply: &Value) -> Result<Value, ToolError> {
    let action = reply
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::Failed("The client's elicitation result had no action.".into()))?;
    let mut out = json!({ "action": action });
    if let Some(content) = reply.get("content").filter(|c| c.is_object()) {
        out["content"] = content.clone();
    }
    Ok(out)
}

/// Sends a server→client request on the request's stream and waits for the client's answer.
async fn client_request(ctx: &Ctx, method: &str, params: &Value, cap: u8, cap_name: &str) -> Result<Value, ToolError> {
    let session = &ctx.session;
    if session.transport == Transport::Stateless {
        return Err(ToolError::Failed(format!(
            "{method} needs a session: server-to-client requests are not available on stateless HTTP."
        )));
    }
    if !session.has_cap(cap) {
        return Err(ToolError::Failed(format!(
            "The client did not declare the {cap_name} capability at initialize, so {method} cannot be sent."
        )));
    }
    let (mut pending, rx) = session.begin_client_request();
    pending.cancel_via(ctx.out.clone());
    let bytes = jsonrpc::request(pending.id, method, params);
    if ctx.out.send(Msg::other(bytes)).await.is_err() {
        return Err(ToolError::Failed("The client is gone.".into()));
    }
    match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, rx).await {
        Ok(Ok(Ok(result))) => {
            pending.answered();
            Ok(result)
        }
        Ok(Ok(Err(error))) => {
            pending.answered();
            let msg = error.get("message").and_then(Value::as_str).unwrap_or("unknown error");
            Err(ToolError::Failed(format!(
                "The client answered {method} with an error: {msg}"
            )))
        }
        Ok(Err(_)) => Err(ToolError::Failed(format!(
            "The session ended before the client answered {method}."
        ))),
        Err(_) => Err(ToolError::Failed(format!(
            "The client did not answer {method} within {} s.",
            CLIENT_REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(c: &ToolCatalog, page: Option<usize>) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let b = c.list("1", page, cursor.as_deref()).unwrap();
            let v: Value = serde_json::from_slice(&b).unwrap();
            for t in v["result"]["tools"].as_array().unwrap() {
                out.push(t["name"].as_str().unwrap().to_owned());
            }
            match v["result"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    #[test]
    fn catalog_lists_builtin_extra_and_dynamic_tools() {
        let c = ToolCatalog::new(3, Some(10), false, false);
        assert!(c.exists("blob_result") && c.exists("tool_0002") && !c.exists("tool_0003"));
        assert!(!c.exists("tool_2") && !c.exists("nope"));
        assert!(c.add("mine") && !c.add("mine") && !c.add("echo") && !c.add("tool_0001"));
        let all = names(&c, None);
        assert_eq!(all.len(), BUILTINS.len() + 1 + 3 + 1);
        assert_eq!(all.last().map(String::as_str), Some("mine"));
        assert_eq!(names(&c, Some(4)), all);
        let v: Value = serde_json::from_slice(c.blob_result.as_ref().unwrap()).unwrap();
        assert_eq!(v["content"][0]["text"], "abcdefghij");
        let plain = ToolCatalog::new(0, None, false, false);
        assert!(!plain.exists("blob_result"));
        assert_eq!(names(&plain, None).len(), BUILTINS.len());
    }

    #[test]
    fn xheader_tools_only_with_the_flag() {
        let off = ToolCatalog::new(0, None, false, false).with_xheader_tools(false);
        assert!(XHEADER_TOOLS.iter().all(|t| !off.exists(t)));
        assert!(!names(&off, None).iter().any(|n| n.starts_with("xh_")));
        let on = ToolCatalog::new(0, None, false, false).with_xheader_tools(true);
        assert!(XHEADER_TOOLS.iter().all(|t| on.exists(t)));
        let listed = names(&on, None);
        assert_eq!(listed.len(), BUILTINS.len() + XHEADER_TOOLS.len());
        assert!(XHEADER_TOOLS.iter().all(|t| listed.iter().any(|n| n == t)));
        for d in xheader_definitions() {
            assert_eq!(d["inputSchema"]["type"], "object", "{d}");
        }
    }

    #[test]
    fn every_definition_is_well_formed() {
        for d in builtin_definitions(true, true, true) {
            let name = d["name"].as_str().unwrap();
            assert!(d["description"].is_string(), "{name}");
            assert_eq!(d["inputSchema"]["type"], "object", "{name}");
            if let Some(req) = d["inputSchema"]["required"].as_array() {
                for r in req {
                    assert!(d["inputSchema"]["properties"][r.as_str().unwrap()].is_object());
                }
            }
        }
    }
}
