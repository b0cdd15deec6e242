//! Tool parameters mirrored into HTTP headers (MCP 2026-07-28, `x-mcp-header`).
//!
//! A tool's `inputSchema` may mark parameters with `"x-mcp-header": "Name"`; a Streamable
//! HTTP client then sends the argument's value as `Mcp-Param-Name`, and whoever processes the
//! body must check that the two agree. This module owns the three pure steps:
//!
//! - [`header_params`] / [`tool_header_params`]: a schema's annotations, or why the tool
//!   definition is invalid (spec: "Constraints on `x-mcp-header` values");
//! - [`extract`]: the headers a call's `arguments` produce (spec: "Value Encoding");
//! - [`validate`]: do a request's headers agree with its `arguments` (spec: "Server
//!   Validation")?
//! - [`ToolHeaders`]: a server's annotated tools learned from its `tools/list` pages, so a
//!   `tools/call` to it can carry the headers ([`ToolHeaders::for_call`]).
//!
//! No I/O, no logging: what to do with an invalid tool or a mismatch is the caller's business
//! (`mcpgate-core` drops such tools from merged lists, `mcpgate-http` answers -32020).

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::RawJson;
use crate::modern::header::{BASE64_PREFIX, BASE64_SUFFIX, PARAM_PREFIX};

/// The schema keyword that marks a parameter.
pub const ANNOTATION: &str = "x-mcp-header";

/// The largest integer a mirrored parameter may hold (2^53 − 1, JavaScript's safe range);
/// its negation is the smallest.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// One annotated parameter of a tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderParam {
    /// The `x-mcp-header` value as the schema writes it (`Region`).
    pub name: Box<str>,
    /// The header it becomes: `mcp-param-region` (header names are case-insensitive; `http`
    /// keeps them lower case).
    pub header: HeaderName,
    /// The chain of `properties` keys from the schema root to the parameter.
    pub path: Box<[Box<str>]>,
}

/// Why a tool definition's `x-mcp-header` annotations make it invalid. `at` is the JSON
/// pointer of the annotated schema within `inputSchema`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAnnotation {
    /// The `inputSchema` could not be read as JSON.
    #[error("inputSchema is not valid JSON")]
    NotJson,
    /// The annotation's value is not a JSON string.
    #[error("`x-mcp-header` at {at:?} is not a string")]
    NotString { at: String },
    /// `"x-mcp-header": ""`.
    #[error("`x-mcp-header` at {at:?} is empty")]
    Empty { at: String },
    /// The value holds a control character (CR, LF, …).
    #[error("`x-mcp-header` {name:?} at {at:?} contains a control character")]
    ControlCharacter { at: String, name: String },
    /// The value is not an HTTP field-name token (RFC 9110 `1*tchar`).
    #[error("`x-mcp-header` {name:?} at {at:?} is not an HTTP field-name token (RFC 9110 tchar)")]
    NotToken { at: String, name: String },
    /// Two annotations name the same header, compared case-insensitively.
    #[error("`x-mcp-header` {name:?} at {at:?} repeats {first_name:?} at {first:?} (names are case-insensitive)")]
    Duplicate {
        at: String,
        name: String,
        first: String,
        first_name: String,
    },
    /// The parameter is not declared as `string`, `integer` or `boolean`.
    #[error(
        "`x-mcp-header` {name:?} at {at:?} annotates a parameter of type {ty}; only string, integer and boolean are allowed"
    )]
    NotPrimitive { at: String, name: String, ty: String },
    /// The annotation is not reachable from the root through `properties` keys alone
    /// (it sits under `items`, `oneOf`, `$defs`, `if`, the root itself, …).
    #[error("`x-mcp-header` at {at:?} is not statically reachable from the schema root through `properties` only")]
    Unreachable { at: String },
}

/// Why a call's arguments cannot be mirrored into headers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The argument is an object or an array.
    #[error("argument {path} (header Mcp-Param-{name}) is not a string, integer or boolean")]
    NotPrimitive { name: String, path: String },
    /// The argument is a number with a fraction.
    #[error("argument {path} (header Mcp-Param-{name}) is not an integer")]
    NotInteger { name: String, path: String },
    /// The argument is an integer outside ±(2^53 − 1).
    #[error("argument {path} (header Mcp-Param-{name}) is outside the safe integer range ±(2^53-1)")]
    OutOfRange { name: String, path: String },
}

/// A request whose `Mcp-Param-*` headers do not agree with its arguments: the message of
/// the -32020 (`HeaderMismatch`) error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Header mismatch: {0}")]
pub struct Mismatch(pub String);

/// The annotated parameters of a tool definition (a `tools/list` item), or why the tool is
/// invalid. A tool whose bytes cannot hold an annotation is answered without parsing it.
pub fn tool_header_params(tool: &RawJson) -> Result<Vec<HeaderParam>, InvalidAnnotation> {
    if !may_hold_annotation(tool.as_bytes()) {
        return Ok(Vec::new());
    }
    match crate::raw::member(tool, "inputSchema") {
        Some(schema) => header_params(&schema),
        // No schema (an invalid tool, but not for this reason): nothing is annotated.
        None => Ok(Vec::new()),
    }
}

/// Could these JSON bytes contain an `x-mcp-header` key? (Only if the name appears as is,
/// or some string is written with `\u` escapes.)
fn may_hold_annotation(json: &[u8]) -> bool {
    memchr::memmem::find(json, ANNOTATION.as_bytes()).is_some() || memchr::memmem::find(json, b"\\u").is_some()
}

/// The annotated parameters of an `inputSchema` (ordered by property name, level by level),
/// or why its annotations are invalid.
///
/// Annotations are looked for at every schema position (JSON Schema 2020-12 applicators, and
/// draft-07's `definitions`, `dependencies`, `additionalItems` and array-valued `items`).
/// Values of other keywords are data (`default`, `const`, `enum`, `examples`) or unknown
/// extensions, not schemas, so an `x-mcp-header` key inside them is no annotation; `$ref` is
/// not followed (the schema it names is visited where it is defined, e.g. under `$defs`,
/// which is off the `properties` chain). This is the reading of the official Python SDK's
/// client too, so both agree on which tools exist.
pub fn header_params(input_schema: &RawJson) -> Result<Vec<HeaderParam>, InvalidAnnotation> {
    if !may_hold_annotation(input_schema.as_bytes()) {
        return Ok(Vec::new());
    }
    let schema: Value = serde_json::from_slice(input_schema.as_bytes()).map_err(|_| InvalidAnnotation::NotJson)?;
    let mut out: Vec<(HeaderParam, String)> = Vec::new();
    // JSON pointers are shown as URI fragments ("#/properties/region").
    let mut walk = Walk {
        path: Vec::new(),
        pointer: String::from("#"),
        out: &mut out,
    };
    // A schema that is not an object has no schema positions (an invalid tool, but not for
    // this reason).
    walk.schema(&schema, Position::Root)?;
    Ok(out.into_iter().map(|(p, _)| p).collect())
}

/// Applicators whose value is one schema (or, for `items` in draft-07, an array of them).
const SUBSCHEMA_SINGLE: &[&str] = &[
    "items",
    "additionalItems",
    "contains",
    "unevaluatedItems",
    "additionalProperties",
    "propertyNames",
    "unevaluatedProperties",
    "not",
    "if",
    "then",
    "else",
    "contentSchema",
];

/// Applicators whose value is an array of schemas.
const SUBSCHEMA_LIST: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Applicators whose value maps names to schemas (`dependencies` may also map to arrays of
/// property names, which hold no schema).
const SUBSCHEMA_MAP: &[&str] = &[
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
    "dependencies",
];

/// Where a schema sits relative to the `properties` chain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// The root schema (no parameter).
    Root,
    /// Reached from the root through `properties` keys only (`Walk::path` is the chain).
    Reachable,
    /// Reached through any other applicator.
    Unreachable,
}

struct Walk<'a> {
    path: Vec<String>,
    pointer: String,
    out: &'a mut Vec<(HeaderParam, String)>,
}

impl Walk<'_> {
    fn schema(&mut self, node: &Value, at: Position) -> Result<(), InvalidAnnotation> {
        let Value::Object(node) = node else {
            return Ok(());
        };
        if let Some(v) = node.get(ANNOTATION) {
            if at != Position::Reachable {
                return Err(InvalidAnnotation::Unreachable {
                    at: self.pointer.clone(),
                });
            }
            self.annotation(node, v)?;
        }
        let below = if at == Position::Unreachable {
            Position::Unreachable
        } else {
            Position::Reachable
        };
        for (key, value) in node {
            let k = key.as_str();
            if k == "properties" {
                let Value::Object(props) = value else { continue };
                for (name, sub) in props {
                    let len = self.enter(k);
                    let inner = self.pointer.len();
                    self.pointer.push('/');
                    self.pointer.push_str(&escape_pointer(name));
                    self.path.push(name.clone());
                    let r = self.schema(sub, below);
                    self.path.pop();
                    self.pointer.truncate(inner);
                    self.pointer.truncate(len);
                    r?;
                }
            } else if SUBSCHEMA_SINGLE.contains(&k) || SUBSCHEMA_LIST.contains(&k) {
                let len = self.enter(k);
                let r = match value {
                    Value::Array(items) => self.each(items.iter().enumerate().map(|(i, v)| (i.to_string(), v))),
                    other => self.schema(other, Position::Unreachable),
                };
                self.pointer.truncate(len);
                r?;
            } else if SUBSCHEMA_MAP.contains(&k)
                && let Value::Object(map) = value
            {
                let len = self.enter(k);
                let r = self.each(map.iter().map(|(n, v)| (escape_pointer(n), v)));
                self.pointer.truncate(len);
                r?;
            }
        }
        Ok(())
    }

    /// Walks named subschemas, all off the `properties` chain.
    fn each<'v>(&mut self, subs: impl Iterator<Item = (String, &'v Value)>) -> Result<(), InvalidAnnotation> {
        for (name, sub) in subs {
            let len = self.enter(&name);
            let r = self.schema(sub, Position::Unreachable);
            self.pointer.truncate(len);
            r?;
        }
        Ok(())
    }

    /// Appends `/key` to the pointer; returns the length to truncate back to.
    fn enter(&mut self, key: &str) -> usize {
        let len = self.pointer.len();
        self.pointer.push('/');
        self.pointer.push_str(&escape_pointer(key));
        len
    }

    /// Records the annotation `v` of the reachable property schema `node`.
    fn annotation(&mut self, node: &serde_json::Map<String, Value>, v: &Value) -> Result<(), InvalidAnnotation> {
        let at = self.pointer.clone();
        let name = annotation_name(v, &at)?;
        check_type(node, &name, &at)?;
        if let Some((first, first_at)) = self.out.iter().find(|(p, _)| p.name.eq_ignore_ascii_case(&name)) {
            return Err(InvalidAnnotation::Duplicate {
                at,
                name,
                first: first_at.clone(),
                first_name: first.name.to_string(),
            });
        }
        let header = HeaderName::from_bytes(format!("{PARAM_PREFIX}{}", name.to_ascii_lowercase()).as_bytes())
            .map_err(|_| InvalidAnnotation::NotToken {
                at: at.clone(),
                name: name.clone(),
            })?;
        self.out.push((
            HeaderParam {
                name: name.into(),
                header,
                path: self.path.iter().map(|s| s.as_str().into()).collect(),
            },
            at,
        ));
        Ok(())
    }
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn annotation_name(v: &Value, at: &str) -> Result<String, InvalidAnnotation> {
    let Value::String(name) = v else {
        return Err(InvalidAnnotation::NotString { at: at.to_owned() });
    };
    let at = at.to_owned();
    if name.is_empty() {
        return Err(InvalidAnnotation::Empty { at });
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidAnnotation::ControlCharacter { at, name: name.clone() });
    }
    if !name.bytes().all(is_tchar) {
        return Err(InvalidAnnotation::NotToken { at, name: name.clone() });
    }
    Ok(name.clone())
}

/// The annotated schema must declare `type` as one of the strings `string`, `integer` or
/// `boolean` (a list of types, even `["string", "null"]`, is not a primitive type; the
/// official SDK clients refuse it too).
fn check_type(node: &serde_json::Map<String, Value>, name: &str, at: &str) -> Result<(), InvalidAnnotation> {
    const PRIMITIVE: &[&str] = &["string", "integer", "boolean"];
    let ok = matches!(node.get("type"), Some(Value::String(t)) if PRIMITIVE.contains(&t.as_str()));
    if ok {
        return Ok(());
    }
    let ty = match node.get("type") {
        None => "(none)".to_owned(),
        Some(t) => t.to_string(),
    };
    Err(InvalidAnnotation::NotPrimitive {
        at: at.to_owned(),
        name: name.to_owned(),
        ty,
    })
}

/// The `x-mcp-header` parameters of a server's tools, learned from its `tools/list` results:
/// what a 2026-07-28 HTTP client needs to put `Mcp-Param-*` headers on a `tools/call` (and
/// what the gateway needs when it calls a 2026-07-28 upstream: the headers of that hop are
/// derived from the upstream's own schemas, never copied from the downstream request).
#[derive(Clone, Debug, Default)]
pub struct ToolHeaders {
    by_name: std::collections::HashMap<Box<str>, std::sync::Arc<[HeaderParam]>>,
}

impl ToolHeaders {
    /// Reads one `tools/list` result (`{"tools": [...]}`, one page): remembers the annotated
    /// tools, forgets earlier knowledge of the others listed, and returns the tools whose
    /// annotations are invalid (name, reason), which a client must not offer.
    pub fn learn_page(&mut self, result: &RawJson) -> Vec<(String, InvalidAnnotation)> {
        let mut rejected = Vec::new();
        let Some(tools) = crate::raw::member(result, "tools").and_then(|t| crate::raw::elements(&t)) else {
            return rejected;
        };
        for tool in tools {
            let Some(name) = crate::raw::str_member(&tool, "name") else {
                continue;
            };
            match tool_header_params(&tool) {
                Ok(p) if p.is_empty() => {
                    self.by_name.remove(name.as_str());
                }
                Ok(p) => {
                    self.by_name.insert(name.as_str().into(), p.into());
                }
                Err(e) => {
                    self.by_name.remove(name.as_str());
                    rejected.push((name.to_string(), e));
                }
            }
        }
        rejected
    }

    /// Forgets everything (the server announced `notifications/tools/list_changed`).
    pub fn clear(&mut self) {
        self.by_name.clear();
    }

    /// The annotated parameters of tool `name`, if it has any.
    pub fn get(&self, name: &str) -> Option<&std::sync::Arc<[HeaderParam]>> {
        self.by_name.get(name)
    }

    /// The `Mcp-Param-*` headers of a `tools/call` with these `params` (`{name, arguments}`):
    /// none for a tool without (known) annotations.
    pub fn for_call(&self, params: Option<&RawJson>) -> Result<Vec<(HeaderName, HeaderValue)>, ExtractError> {
        let Some(params) = params else {
            return Ok(Vec::new());
        };
        let Some(p) = crate::raw::str_member(params, "name").and_then(|n| self.by_name.get(n.as_str())) else {
            return Ok(Vec::new());
        };
        extract(p, crate::raw::member(params, "arguments").as_ref())
    }
}

/// The headers that `arguments` (a `tools/call`'s `params.arguments`) produce for `params`:
/// one per parameter whose value is present and not null, encoded per the spec.
pub fn extract(
    params: &[HeaderParam],
    arguments: Option<&RawJson>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ExtractError> {
    let mut out = Vec::with_capacity(params.len());
    for p in params {
        let Some(value) = arguments.and_then(|a| lookup(a, &p.path)) else {
            continue;
        };
        let text = match classify(&value) {
            Arg::Null => continue,
            Arg::Str(s) => s,
            Arg::Bool(b) => b.to_string(),
            Arg::Int(i) => i.to_string(),
            Arg::Compound => {
                return Err(ExtractError::NotPrimitive {
                    name: p.name.to_string(),
                    path: dotted(&p.path),
                });
            }
            Arg::Fraction => {
                return Err(ExtractError::NotInteger {
                    name: p.name.to_string(),
                    path: dotted(&p.path),
                });
            }
            Arg::OutOfRange => {
                return Err(ExtractError::OutOfRange {
                    name: p.name.to_string(),
                    path: dotted(&p.path),
                });
            }
        };
        out.push((p.header.clone(), encode_value(&text)));
    }
    Ok(out)
}

/// Checks a request's headers against its `arguments` for `params` (spec: Server
/// Validation). Headers that name no annotated parameter are not looked at.
pub fn validate(params: &[HeaderParam], headers: &HeaderMap, arguments: Option<&RawJson>) -> Result<(), Mismatch> {
    for p in params {
        let shown = || format!("Mcp-Param-{}", p.name);
        let mut values = headers.get_all(&p.header).iter();
        let header = values.next();
        if header.is_some() && values.next().is_some() {
            return Err(Mismatch(format!("{} is sent more than once", shown())));
        }
        let body = arguments.and_then(|a| lookup(a, &p.path)).map(|v| classify(&v));
        let body = match body {
            None | Some(Arg::Null) => {
                if header.is_some() {
                    return Err(Mismatch(format!(
                        "{} is sent but argument {} is absent or null",
                        shown(),
                        dotted(&p.path)
                    )));
                }
                continue;
            }
            Some(b) => b,
        };
        let Some(header) = header else {
            return Err(Mismatch(format!(
                "required header {} is missing (argument {} is present)",
                shown(),
                dotted(&p.path)
            )));
        };
        let Some(text) = decode_value(header.as_bytes()) else {
            return Err(Mismatch(format!("{} has invalid characters or bad Base64", shown())));
        };
        let same = match &body {
            Arg::Str(s) => *s == text,
            Arg::Bool(b) => text == if *b { "true" } else { "false" },
            Arg::Int(i) => integral(&text) == Some(Integral::Int(*i as i128)),
            Arg::Compound => {
                return Err(Mismatch(format!(
                    "argument {} (header {}) is not a string, integer or boolean",
                    dotted(&p.path),
                    shown()
                )));
            }
            Arg::Null | Arg::Fraction | Arg::OutOfRange => {
                return Err(Mismatch(format!(
                    "argument {} (header {}) is not an integer within ±(2^53-1)",
                    dotted(&p.path),
                    shown()
                )));
            }
        };
        if !same {
            let body_text = match &body {
                Arg::Str(s) => s.clone(),
                Arg::Bool(b) => b.to_string(),
                Arg::Int(i) => i.to_string(),
                _ => String::new(),
            };
            return Err(Mismatch(format!(
                "{} header value '{}' does not match body value '{}'",
                shown(),
                text.escape_debug(),
                body_text.escape_debug()
            )));
        }
    }
    Ok(())
}

/// The header value for `s`: as is when it is visible ASCII (spaces allowed inside), else
/// the UTF-8 Base64-encoded inside `=?base64?…?=`; a plain value that looks like that sentinel
/// is encoded too.
pub fn encode_value(s: &str) -> HeaderValue {
    let plain =
        s.bytes().all(|b| (0x20..=0x7e).contains(&b)) && !s.starts_with(' ') && !s.ends_with(' ') && !is_sentinel(s);
    if plain {
        return HeaderValue::from_str(s).expect("visible ASCII is a valid header value");
    }
    let mut out = String::with_capacity(BASE64_PREFIX.len() + s.len().div_ceil(3) * 4 + BASE64_SUFFIX.len());
    out.push_str(BASE64_PREFIX);
    base64::engine::general_purpose::STANDARD.encode_string(s.as_bytes(), &mut out);
    out.push_str(BASE64_SUFFIX);
    HeaderValue::from_str(&out).expect("Base64 is a valid header value")
}

/// Does `s` look like the sentinel (starts with `=?base64?`, ends with `?=`)? Such a plain
/// value must be encoded to stay unambiguous.
fn is_sentinel(s: &str) -> bool {
    s.starts_with(BASE64_PREFIX) && s.ends_with(BASE64_SUFFIX)
}

/// The value of an `Mcp-Name` or `Mcp-Param-*` header: plain visible ASCII (with spaces and
/// tabs) as is, or the UTF-8 inside the `=?base64?…?=` sentinel. `None` for a value that is
/// neither (invalid characters, bad Base64, not UTF-8).
pub fn decode_value(v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    if s.len() >= BASE64_PREFIX.len() + BASE64_SUFFIX.len() && is_sentinel(s) {
        let inner = &s[BASE64_PREFIX.len()..s.len() - BASE64_SUFFIX.len()];
        let bytes = base64::engine::general_purpose::STANDARD.decode(inner).ok()?;
        return String::from_utf8(bytes).ok();
    }
    s.bytes()
        .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
        .then(|| s.to_owned())
}

/// An argument's value, as far as headers care.
#[derive(Debug)]
enum Arg {
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    Fraction,
    OutOfRange,
    Compound,
}

fn classify(v: &RawJson) -> Arg {
    let b = v.as_bytes();
    match b.first() {
        Some(b'"') => v.as_json_str().map_or(Arg::Compound, |s| Arg::Str(s.to_string())),
        Some(b't') => Arg::Bool(true),
        Some(b'f') => Arg::Bool(false),
        Some(b'n') => Arg::Null,
        Some(b'{' | b'[') | None => Arg::Compound,
        Some(_) => match std::str::from_utf8(b).ok().and_then(integral) {
            Some(Integral::Int(i)) if i.unsigned_abs() <= MAX_SAFE_INTEGER as u128 => Arg::Int(i as i64),
            Some(Integral::Int(_) | Integral::Huge) => Arg::OutOfRange,
            None => Arg::Fraction,
        },
    }
}

/// A decimal number known to be integral.
#[derive(Debug, PartialEq, Eq)]
enum Integral {
    Int(i128),
    /// Integral but with more than 38 digits: outside any range this module accepts.
    Huge,
}

/// Reads a JSON-style decimal number (`42`, `-7`, `42.0`, `4.2e1`, `420E-1`) exactly; `None`
/// unless it is well-formed and integral. No floating point: `42.0000000000000001` is not 42.
fn integral(s: &str) -> Option<Integral> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if mantissa.contains('.') && frac.is_empty() {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let mut exp = exp.checked_sub(frac.len() as i64)?;
    let trimmed = digits.trim_end_matches('0');
    exp = exp.checked_add((digits.len() - trimmed.len()) as i64)?;
    if trimmed.is_empty() {
        return Some(Integral::Int(0));
    }
    if exp < 0 {
        return None;
    }
    if trimmed.len() as i64 + exp > 38 {
        return Some(Integral::Huge);
    }
    let mut v: i128 = trimmed.parse().ok()?;
    for _ in 0..exp {
        v *= 10;
    }
    Some(Integral::Int(if neg { -v } else { v }))
}

fn lookup(arguments: &RawJson, path: &[Box<str>]) -> Option<RawJson> {
    let mut cur = arguments.clone();
    for key in path {
        if !cur.is_object() {
            return None;
        }
        cur = crate::raw::member(&cur, key)?;
    }
    Some(cur)
}

fn dotted(path: &[Box<str>]) -> String {
    path.join(".")
}

#[cfg(test)]
mod tests;
