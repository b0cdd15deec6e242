//! The example server's prompts, resources, resource template and completions, plus the
//! cursor pagination shared by every list method.
//!
//! Definitions are serialized once at start-up; list responses are built by concatenating
//! those bytes. Tools live in `tools.rs`.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::jsonrpc::RpcError;

/// URI of the README resource.
pub const README_URI: &str = "example://readme";
/// URI of the PNG logo resource.
pub const LOGO_URI: &str = "example://logo.png";
/// URI of the counter resource (changes on `touch_resource`; subscribable).
pub const COUNTER_URI: &str = "example://counter";
/// The resource template of notes.
pub const NOTES_TEMPLATE: &str = "example://notes/{name}";
const NOTES_PREFIX: &str = "example://notes/";

/// Styles the `summarize` prompt accepts (and completes).
pub const SUMMARY_STYLES: [&str; 3] = ["brief", "detailed", "bullet"];

/// A 16×16 PNG (the mcpgate "gate" glyph, two colours), base64-encoded.
pub const LOGO_PNG_BASE64: &str = include_str!("logo.png.b64");

/// The notes behind `example://notes/{name}`: (name, text).
pub const NOTES: [(&str, &str); 4] = [
    (
        "welcome",
        "Welcome to the mcpgate example server.\n\nTry the `echo` and `add` tools, read `example://readme`, and subscribe to `example://counter`.\n",
    ),
    (
        "todo",
        "- Put mcpgate in front of this server\n- Call a tool through the gateway\n- Add an authorization policy\n",
    ),
    (
        "ideas",
        "Ideas for a gateway: one endpoint for every MCP server, policies per tool, metrics per call.\n",
    ),
    ("changelog", "0.1.0: first release of the example server.\n"),
];

/// The README resource text.
pub const README: &str = "# mcpgate example server\n\n\
A small MCP server that shows every MCP feature working, on its own or behind mcpgate.\n\n\
## Tools\n\n\
- `echo`, `add`, `current_time`, `convert_to_markdown`: plain tools.\n\
- `long_operation`: progress notifications and cancellation.\n\
- `sample`, `elicit`, `list_roots`: ask the client (sampling, elicitation, roots).\n\
- `log`: log messages at a level, honouring `logging/setLevel`.\n\
- `fail`: a tool result with `isError: true`.\n\
- `add_tool`, `touch_resource`: list-changed and resource-updated notifications.\n\n\
## Resources\n\n\
- `example://readme` (this text), `example://logo.png` (an image), `example://counter` (changes; subscribe to it).\n\
- `example://notes/{name}`: notes `welcome`, `todo`, `ideas`, `changelog`.\n\n\
## Prompts\n\n\
- `summarize(text, style?)` with completion of `style`; `greeting`.\n";

/// Pre-serialized catalog of prompts, resources and templates.
pub struct Content {
    /// One serialized `Prompt` per entry.
    pub prompts: Vec<Bytes>,
    /// One serialized `Resource` per entry.
    pub resources: Vec<Bytes>,
    /// One serialized `ResourceTemplate` per entry.
    pub templates: Vec<Bytes>,
}

fn ser(v: Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

impl Content {
    /// Builds the catalog.
    pub fn new() -> Content {
        let prompts = vec![
            ser(json!({
                "name": "summarize",
                "title": "Summarize text",
                "description": "Asks the model to summarize a text in a given style.",
                "arguments": [
                    { "name": "text", "description": "The text to summarize.", "required": true },
                    { "name": "style", "description": "brief, detailed or bullet (default brief).", "required": false }
                ]
            })),
            ser(json!({
                "name": "greeting",
                "title": "Greeting",
                "description": "A friendly first message that asks the model to introduce this server's tools."
            })),
        ];
        let logo_size = LOGO_PNG_BASE64.trim().len() / 4 * 3
            - LOGO_PNG_BASE64.trim().bytes().rev().take_while(|b| *b == b'=').count();
        let resources = vec![
            ser(json!({
                "uri": README_URI, "name": "readme", "title": "README",
                "description": "What this example server offers.",
                "mimeType": "text/markdown", "size": README.len()
            })),
            ser(json!({
                "uri": LOGO_URI, "name": "logo.png", "title": "Logo",
                "description": "A tiny PNG image (binary resource).",
                "mimeType": "image/png", "size": logo_size
            })),
            ser(json!({
                "uri": COUNTER_URI, "name": "counter", "title": "Counter",
                "description": "A number that grows each time `touch_resource` touches it; subscribe to get notified.",
                "mimeType": "text/plain"
            })),
        ];
        let templates = vec![ser(json!({
            "uriTemplate": NOTES_TEMPLATE, "name": "note", "title": "Notes",
            "description": "Short notes by name (welcome, todo, ideas, changelog); names complete.",
            "mimeType": "text/plain"
        }))];
        Content {
            prompts,
            resources,
            templates,
        }
    }
}

impl Default for Content {
    fn default() -> Self {
        Content::new()
    }
}

/// Whether `uri` names a readable resource.
pub fn exists(uri: &str) -> bool {
    matches!(uri, README_URI | LOGO_URI | COUNTER_URI) || note(uri).is_some()
}

/// The note text for a `example://notes/{name}` URI.
pub fn note(uri: &str) -> Option<&'static str> {
    let name = uri.strip_prefix(NOTES_PREFIX)?;
    NOTES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The `contents` of `resources/read` for `uri`.
pub fn read(uri: &str, counter: u64) -> Result<Value, RpcError> {
    let item = match uri {
        README_URI => json!({ "uri": uri, "mimeType": "text/markdown", "text": README }),
        LOGO_URI => json!({ "uri": uri, "mimeType": "image/png", "blob": LOGO_PNG_BASE64.trim() }),
        COUNTER_URI => json!({ "uri": uri, "mimeType": "text/plain", "text": counter.to_string() }),
        _ => match note(uri) {
            Some(text) => json!({ "uri": uri, "mimeType": "text/plain", "text": text }),
            None => return Err(RpcError::resource_not_found(uri)),
        },
    };
    Ok(json!({ "contents": [item] }))
}

#[derive(Deserialize)]
struct GetPromptParams {
    name: String,
    #[serde(default)]
    arguments: Option<serde_json::Map<String, Value>>,
}

/// `prompts/get`.
pub fn get_prompt(params: Option<&str>) -> Result<Value, RpcError> {
    let p: GetPromptParams = serde_json::from_str(params.unwrap_or("{}"))
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
    let args = p.arguments.unwrap_or_default();
    let arg = |name: &str| args.get(name).and_then(Value::as_str);
    match p.name.as_str() {
        "summarize" => {
            let text = arg("text").ok_or_else(|| RpcError::invalid_params("missing required argument: text"))?;
            let style = arg("style").unwrap_or("brief");
            let how = match style {
                "brief" => "in two or three sentences",
                "detailed" => "in detail, keeping every important point",
                "bullet" => "as a bulleted list of the key points",
                other => {
                    return Err(RpcError::invalid_params(format!(
                        "invalid style {other:?}: expected brief, detailed or bullet"
                    )));
                }
            };
            Ok(json!({
                "description": format!("Summarize a text ({style})"),
                "messages": [{
                    "role": "user",
                    "content": { "type": "text", "text": format!("Summarize the following text {how}:\n\n{text}") }
                }]
            }))
        }
        "greeting" => Ok(json!({
            "description": "A friendly greeting",
            "messages": [{
                "role": "user",
                "content": {
                    "type": "text",
                    "text": "Hello! Please greet me and briefly tell me what the tools of the mcpgate example server can do."
                }
            }]
        })),
        other => Err(RpcError::invalid_params(format!("Unknown prompt: {other}"))),
    }
}

#[derive(Deserialize)]
struct CompleteParams {
    #[serde(rename = "ref")]
    reference: Reference,
    argument: Argument,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Reference {
    #[serde(rename = "ref/prompt")]
    Prompt { name: String },
    #[serde(rename = "ref/resource")]
    Resource { uri: String },
}

#[derive(Deserialize)]
struct Argument {
    name: String,
    #[serde(default)]
    value: String,
}

/// `completion/complete`: prompt `summarize`'s `style`, and the notes template's `name`.
pub fn complete(params: Option<&str>) -> Result<Value, RpcError> {
    let p: CompleteParams = serde_json::from_str(params.unwrap_or("{}"))
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
    let candidates: Vec<&str> = match &p.reference {
        Reference::Prompt { name } => match (name.as_str(), p.argument.name.as_str()) {
            ("summarize", "style") => SUMMARY_STYLES.to_vec(),
            ("summarize" | "greeting", _) => Vec::new(),
            (other, _) => {
                return Err(RpcError::invalid_params(format!("Unknown prompt: {other}")));
            }
        },
        Reference::Resource { uri } => match (uri.as_str(), p.argument.name.as_str()) {
            (NOTES_TEMPLATE, "name") => NOTES.iter().map(|(n, _)| *n).collect(),
            _ => Vec::new(),
        },
    };
    let prefix = p.argument.value.to_lowercase();
    let values: Vec<&str> = candidates.into_iter().filter(|c| c.starts_with(&prefix)).collect();
    Ok(json!({
        "completion": { "values": values, "total": values.len(), "hasMore": false }
    }))
}

/// Cursor pagination: the index range of this page and the cursor of the next one.
///
/// Cursors are opaque to clients; here they are `"<list>:<offset>"`, rejected with -32602 when
/// they do not belong to this list or point past its end.
pub fn page(
    total: usize,
    page_size: Option<usize>,
    cursor: Option<&str>,
    list: &str,
) -> Result<(Range<usize>, Option<String>), RpcError> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .strip_prefix(list)
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= total)
            .ok_or_else(|| RpcError::invalid_params(format!("invalid cursor: {c:?}")))?,
    };
    match page_size.filter(|n| *n > 0) {
        None => Ok((start..total, None)),
        Some(n) => {
            let end = start.saturating_add(n).min(total);
            let next = (end < total).then(|| format!("{list}:{end}"));
            Ok((start..end, next))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_cursors() {
        assert_eq!(page(5, None, None, "tools").unwrap(), (0..5, None));
        let (r, next) = page(5, Some(2), None, "tools").unwrap();
        assert_eq!(r, 0..2);
        let (r, next) = page(5, Some(2), next.as_deref(), "tools").unwrap();
        assert_eq!(r, 2..4);
        let (r, next) = page(5, Some(2), next.as_deref(), "tools").unwrap();
        assert_eq!((r, next), (4..5, None));
        assert!(page(5, Some(2), Some("prompts:2"), "tools").is_err());
        assert!(page(5, Some(2), Some("tools:9"), "tools").is_err());
        assert!(page(5, Some(2), Some("garbage"), "tools").is_err());
        assert_eq!(page(0, Some(2), None, "tools").unwrap(), (0..0, None));
    }

    #[test]
    fn reads_resources() {
        assert!(
            read(README_URI, 0).unwrap()["contents"][0]["text"]
                .as_str()
                .unwrap()
                .contains("echo")
        );
        assert_eq!(read(COUNTER_URI, 7).unwrap()["contents"][0]["text"], "7");
        assert_eq!(
            read("example://notes/todo", 0).unwrap()["contents"][0]["mimeType"],
            "text/plain"
        );
        let e = read("example://nope", 0).unwrap_err();
        assert_eq!(e.code, crate::jsonrpc::RESOURCE_NOT_FOUND);
        assert_eq!(e.data.unwrap()["uri"], "example://nope");
        assert!(read("example://notes/missing", 0).is_err());
    }

    #[test]
    fn logo_is_a_png() {
        let b64 = LOGO_PNG_BASE64.trim();
        // "\x89PNG\r\n\x1a\n" base64-encodes to this prefix.
        assert!(b64.starts_with("iVBORw0KGgo"));
        assert_eq!(b64.len() % 4, 0);
    }

    #[test]
    fn completes_style_and_notes() {
        let v = complete(Some(
            r#"{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"style","value":"b"}}"#,
        ))
        .unwrap();
        assert_eq!(v["completion"]["values"], json!(["brief", "bullet"]));
        let v = complete(Some(
            r#"{"ref":{"type":"ref/resource","uri":"example://notes/{name}"},"argument":{"name":"name","value":"t"}}"#,
        ))
        .unwrap();
        assert_eq!(v["completion"]["values"], json!(["todo"]));
        assert!(
            complete(Some(
                r#"{"ref":{"type":"ref/prompt","name":"x"},"argument":{"name":"a","value":""}}"#
            ))
            .is_err()
        );
        assert!(complete(Some(r#"{"ref":{"type":"ref/other"},"argument":{"name":"a"}}"#)).is_err());
    }

    #[test]
    fn prompts() {
        let v = get_prompt(Some(
            r#"{"name":"summarize","arguments":{"text":"abc","style":"bullet"}}"#,
        ))
        .unwrap();
        assert!(
            v["messages"][0]["content"]["text"]
                .as_str()
                .unwrap()
                .contains("bulleted")
        );
        assert!(get_prompt(Some(r#"{"name":"summarize"}"#)).is_err());
        assert!(get_prompt(Some(r#"{"name":"summarize","arguments":{"text":"a","style":"x"}}"#)).is_err());
        assert!(get_prompt(Some(r#"{"name":"greeting"}"#)).is_ok());
        assert!(get_prompt(Some(r#"{"name":"nope"}"#)).is_err());
    }
}
