//! `x-mcp-header` (mcpgate-proto's xheader module) on arbitrary input: the first line is a
//! tool's `inputSchema`, the second the call's arguments, the rest header values. Never
//! panics; the headers extracted from arguments always validate against them; every header
//! value decodes back to what was encoded.
#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use mcpgate_proto::RawJson;
use mcpgate_proto::xheader::{decode_value, encode_value, extract, header_params, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.splitn(3, '\n');
    let schema = lines.next().unwrap_or("");
    let args = lines.next().unwrap_or("");
    let rest = lines.next().unwrap_or("");
    for v in rest.split('\n') {
        let _ = decode_value(v.as_bytes());
        assert_eq!(decode_value(encode_value(v).as_bytes()).as_deref(), Some(v));
    }
    let Ok(schema) = RawJson::parse(bytes::Bytes::copy_from_slice(schema.as_bytes())) else { return };
    let Ok(params) = header_params(&schema) else { return };
    let args = RawJson::parse(bytes::Bytes::copy_from_slice(args.as_bytes())).ok();
    if let Ok(headers) = extract(&params, args.as_ref()) {
        let map: HeaderMap = headers.into_iter().collect();
        assert_eq!(validate(&params, &map, args.as_ref()), Ok(()));
    }
    // Arbitrary header values against the same arguments: an answer, never a panic.
    let mut map = HeaderMap::new();
    for (p, v) in params.iter().zip(rest.split('\n')) {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            map.insert(p.header.clone(), v);
        }
    }
    let _ = validate(&params, &map, args.as_ref());
});
