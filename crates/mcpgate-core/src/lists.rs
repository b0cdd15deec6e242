//! Merged lists: every target's items under their exposed names, an index from exposed name
//! (or URI) back to the owning target, the serialized result ready to send, and the gateway's
//! own opaque pagination over it.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use bytes::{BufMut, BytesMut};
use mcpgate_proto::RawJson;
use mcpgate_proto::xheader::HeaderParam;

use crate::naming;
use crate::target::{ListKind, TargetRt};

/// Where an exposed item lives.
#[derive(Clone, Debug)]
pub(crate) struct Owner {
    /// Index of the target in the runtime's target list.
    pub target: usize,
    /// The item's upstream name (tools, prompts) or URI (resources).
    pub name: Arc<str>,
}

/// One merged list.
pub(crate) struct Merged {
    /// Items as exposed, in target order.
    pub items: Vec<RawJson>,
    /// The owner of each item of `items` (for per-identity filtering).
    pub owners: Vec<Owner>,
    /// Exposed name (or URI / URI template) → owner.
    pub index: HashMap<Arc<str>, Owner>,
    /// For templates: (target, template) pairs for URI matching.
    pub templates: Vec<(usize, String)>,
    /// Resources (and templates) that several targets list: the other targets, in order.
    /// Reads go to the first; subscriptions go to all of them.
    pub also: HashMap<Arc<str>, Vec<usize>>,
    /// `{"<key>":[...]}` when unpaginated.
    pub full_result: RawJson,
    /// [`crate::gateway::Runtime::generation`] of the runtime whose targets `owners` index
    /// (0 until the gateway sets it).
    pub runtime: u64,
    /// Tools only: exposed name → its `x-mcp-header` parameters, for the tools that have any
    /// (read once here, so a stateless `tools/call` checks its `Mcp-Param-*` headers with
    /// one lookup; tools whose annotations are invalid are not in the list at all).
    pub xheaders: HashMap<Arc<str>, Arc<[HeaderParam]>>,
    /// Tools only, per target (`None` when the target was left out): how many of its tools
    /// were left out for invalid `x-mcp-header` annotations (for the metric).
    pub xheader_rejected: Vec<Option<usize>>,
}

/// Builds a merged list from each target's items (`None` for targets left out).
pub(crate) fn merge(
    kind: ListKind,
    targets: &[Arc<TargetRt>],
    per_target: Vec<Option<Arc<Vec<RawJson>>>>,
    sep: &str,
    prefix: bool,
) -> Merged {
    let mut items = Vec::new();
    let mut owners = Vec::new();
    let mut index: HashMap<Arc<str>, Owner> = HashMap::new();
    let mut templates = Vec::new();
    let mut also: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
    let mut collisions: HashMap<(usize, usize), (usize, String)> = HashMap::new();
    let mut xheaders: HashMap<Arc<str>, Arc<[HeaderParam]>> = HashMap::new();
    let mut xheader_rejected: Vec<Option<usize>> = vec![None; targets.len()];
    let key_field = match kind {
        ListKind::Tools | ListKind::Prompts => "name",
        ListKind::Resources => "uri",
        ListKind::Templates => "uriTemplate",
    };
    for (ti, list) in per_target.into_iter().enumerate() {
        let Some(list) = list else { continue };
        let t = &targets[ti];
        if kind == ListKind::Tools {
            xheader_rejected[ti] = Some(0);
        }
        for item in list.iter() {
            // One pass over the item: its key, and where the key's value lies for renaming.
            let Some((key, key_range)) = mcpgate_proto::raw::member_range(item, key_field)
                .and_then(|(v, range)| Some((v.as_json_str()?, range)))
            else {
                tracing::warn!(target = %t.name(), list = kind.method(), "Skipped a list item without `{key_field}`.");
                continue;
            };
            let key = key.as_str();
            if kind == ListKind::Tools && !t.cfg.tools.permits(key) {
                continue;
            }
            // x-mcp-header (2026-07-28): HTTP clients must reject a tool whose annotations
            // break the spec's constraints, so the gateway never lists it (nor routes it).
            let header_params = if kind == ListKind::Tools {
                match mcpgate_proto::xheader::tool_header_params(item) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(target = %t.name(), tool = key, reason = %e, "Left out a tool whose x-mcp-header annotations are invalid.");
                        if let Some(n) = &mut xheader_rejected[ti] {
                            *n += 1;
                        }
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            let exposed = match kind {
                ListKind::Tools | ListKind::Prompts => naming::expose(t.name(), sep, key, prefix),
                _ => key.to_owned(),
            };
            if let Some((key, prev)) = index.get_key_value(exposed.as_str()) {
                let c = collisions.entry((prev.target, ti)).or_insert((0, exposed.clone()));
                c.0 += 1;
                if kind == ListKind::Templates {
                    templates.push((ti, key_field_value(item, key_field)));
                }
                if matches!(kind, ListKind::Resources | ListKind::Templates) {
                    also.entry(key.clone()).or_default().push(ti);
                }
                continue;
            }
            let out = if exposed != key {
                // Only the name's bytes change; every other byte of the item is kept.
                item.with_replaced(key_range, &RawJson::string(&exposed))
            } else {
                item.clone()
            };
            if kind == ListKind::Templates {
                templates.push((ti, key.to_owned()));
            }
            let owner = Owner {
                target: ti,
                name: Arc::from(key),
            };
            owners.push(owner.clone());
            let exposed: Arc<str> = Arc::from(exposed);
            if !header_params.is_empty() {
                xheaders.insert(exposed.clone(), Arc::from(header_params));
            }
            index.insert(exposed, owner);
            items.push(out);
        }
    }
    for ((kept, hidden), (count, example)) in collisions {
        tracing::warn!(
            list = kind.method(),
            kept = %targets[kept].name(),
            hidden = %targets[hidden].name(),
            count,
            example = %example,
            "Two targets expose the same names; the first target in the config serves them."
        );
    }
    let full_result = page_result(kind, &items, None);
    Merged {
        items,
        owners,
        index,
        templates,
        also,
        full_result,
        runtime: 0,
        xheaders,
        xheader_rejected,
    }
}

fn key_field_value(item: &RawJson, field: &str) -> String {
    mcpgate_proto::raw::str_member(item, field)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Serializes `{"<key>":[items], "nextCursor": ...}`.
pub(crate) fn page_result(kind: ListKind, items: &[RawJson], next: Option<String>) -> RawJson {
    let len: usize = items.iter().map(|i| i.as_bytes().len() + 1).sum();
    let mut buf = BytesMut::with_capacity(len + 64);
    buf.put_slice(b"{\"");
    buf.put_slice(kind.key().as_bytes());
    buf.put_slice(b"\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(item.as_bytes());
    }
    buf.put_u8(b']');
    if let Some(next) = next {
        buf.put_slice(b",\"nextCursor\":");
        mcpgate_proto::raw::write_json_string(&mut buf, &next);
    }
    buf.put_u8(b'}');
    // Assembled from valid JSON values: a merged list of 10,000 tools is not parsed again.
    RawJson::assume_valid(buf.freeze())
}

/// The gateway's opaque cursor: `base64url("<kind>:<offset>")`.
pub(crate) fn encode_cursor(kind: ListKind, offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{offset}", kind as u8))
}

/// Reads a cursor made by [`encode_cursor`].
pub(crate) fn decode_cursor(kind: ListKind, cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (k, off) = text.split_once(':')?;
    if k != (kind as u8).to_string() {
        return None;
    }
    off.parse().ok()
}

/// Does `uri` match RFC 6570 template `tpl` (literal parts in order, each `{...}` matching
/// one or more characters)?
pub(crate) fn template_matches(tpl: &str, uri: &str) -> bool {
    let mut lits = Vec::new();
    let mut rest = tpl;
    loop {
        match rest.find('{') {
            Some(open) => {
                lits.push(&rest[..open]);
                let Some(close) = rest[open..].find('}') else {
                    return false;
                };
                rest = &rest[open + close + 1..];
            }
            None => {
                lits.push(rest);
                break;
            }
        }
    }
    if lits.len() == 1 {
        return uri == lits[0];
    }
    let Some(mut s) = uri.strip_prefix(lits[0]) else {
        return false;
    };
    let last = lits.len() - 1;
    for (i, lit) in lits.iter().enumerate().skip(1) {
        // The variable before this literal takes at least one character.
        let Some(first) = s.chars().next() else {
            return false;
        };
        let first_len = first.len_utf8();
        if i == last {
            return s.len() >= first_len + lit.len() && s.ends_with(lit);
        }
        match s[first_len..].find(lit) {
            Some(at) => s = &s[first_len + at + lit.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert!(template_matches("example://notes/{name}", "example://notes/a"));
        assert!(!template_matches("example://notes/{name}", "example://notes/"));
        assert!(!template_matches("example://notes/{name}", "other://notes/a"));
        assert!(template_matches("test://template/{id}/data", "test://template/42/data"));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://template/42/other"
        ));
        assert!(template_matches("file:///{path}", "file:///etc/hosts"));
        assert!(template_matches("static://x", "static://x"));
    }

    #[test]
    fn cursors() {
        let c = encode_cursor(ListKind::Tools, 50);
        assert_eq!(decode_cursor(ListKind::Tools, &c), Some(50));
        assert_eq!(decode_cursor(ListKind::Prompts, &c), None);
        assert_eq!(decode_cursor(ListKind::Tools, "garbage!"), None);
    }
}
