//! Tests of `x-mcp-header` parsing, encoding and validation, written from the 2026-07-28
//! Streamable HTTP text ("Custom Headers from Tool Parameters", "Value Encoding", "Server
//! Validation").

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn raw(v: serde_json::Value) -> RawJson {
    RawJson::from_value(&v)
}

fn params(schema: serde_json::Value) -> Result<Vec<HeaderParam>, InvalidAnnotation> {
    header_params(&raw(schema))
}

fn region_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "region": {"type": "string", "description": "The region", "x-mcp-header": "Region"},
            "query": {"type": "string"}
        },
        "required": ["region", "query"]
    })
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

// ---- schema parsing ----

#[test]
fn spec_example_tool() {
    let p = params(region_schema()).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(&*p[0].name, "Region");
    assert_eq!(p[0].header.as_str(), "mcp-param-region");
    assert_eq!(p[0].path.len(), 1);
    assert_eq!(&*p[0].path[0], "region");
}

#[test]
fn tools_without_annotations_have_none() {
    assert_eq!(params(json!({"type": "object"})).unwrap(), vec![]);
    assert_eq!(
        params(json!({"type": "object", "properties": {"a": {"type": "string"}}})).unwrap(),
        vec![]
    );
    // A whole tool without the word is answered without parsing the schema.
    let tool = raw(json!({"name": "t", "inputSchema": {"type": "object"}}));
    assert_eq!(tool_header_params(&tool).unwrap(), vec![]);
    let tool = raw(json!({"name": "t", "inputSchema": region_schema()}));
    assert_eq!(tool_header_params(&tool).unwrap().len(), 1);
}

#[test]
fn nested_properties_are_reachable() {
    let p = params(json!({
        "type": "object",
        "properties": {
            "target": {"type": "object", "properties": {
                "tenant": {"type": "string", "x-mcp-header": "Tenant"},
                "shard": {"type": "integer", "x-mcp-header": "Shard"}
            }},
            "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"}
        }
    }))
    .unwrap();
    let got: Vec<(String, Vec<String>)> = p
        .iter()
        .map(|p| (p.header.to_string(), p.path.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert!(got.contains(&("mcp-param-tenant".into(), vec!["target".into(), "tenant".into()])));
    assert!(got.contains(&("mcp-param-shard".into(), vec!["target".into(), "shard".into()])));
    assert!(got.contains(&("mcp-param-dry-run".into(), vec!["dry".into()])));
}

#[test]
fn a_property_named_like_the_annotation_is_not_one() {
    // "x-mcp-header" as a property *name*, and inside data keywords, is not an annotation.
    let p = params(json!({
        "type": "object",
        "properties": {"x-mcp-header": {"type": "string"}},
        "default": {"x-mcp-header": "Nope"},
        "examples": [{"x-mcp-header": "Nope"}]
    }))
    .unwrap();
    assert_eq!(p, vec![]);
}

#[test]
fn a_type_list_is_not_a_primitive_type() {
    // Not even a nullable primitive: the official SDK clients drop such a tool as well.
    assert!(matches!(
        params(json!({"type": "object", "properties": {
            "a": {"type": ["string", "null"], "x-mcp-header": "A"}
        }})),
        Err(InvalidAnnotation::NotPrimitive { .. })
    ));
}

#[test]
fn values_of_non_schema_keywords_are_not_looked_into() {
    // Unknown extension keywords and data keywords hold no schema positions.
    let p = params(json!({
        "type": "object",
        "properties": {"a": {"type": "string", "x-mcp-header": "A", "x-vendor": {"x-mcp-header": "B"}}},
        "x-vendor": {"deep": [{"x-mcp-header": "C"}]},
        "const": {"x-mcp-header": "D"},
        "enum": [{"x-mcp-header": "E"}]
    }))
    .unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(&*p[0].name, "A");
}

fn invalid(schema: serde_json::Value) -> InvalidAnnotation {
    params(schema).expect_err("must be invalid")
}

fn one(prop: serde_json::Value) -> serde_json::Value {
    json!({"type": "object", "properties": {"p": prop}})
}

#[test]
fn empty_name_is_invalid() {
    assert!(matches!(
        invalid(one(json!({"type": "string", "x-mcp-header": ""}))),
        InvalidAnnotation::Empty { .. }
    ));
}

#[test]
fn non_string_name_is_invalid() {
    assert!(matches!(
        invalid(one(json!({"type": "string", "x-mcp-header": 7}))),
        InvalidAnnotation::NotString { .. }
    ));
}

#[test]
fn names_must_be_tokens() {
    for bad in [
        "Has Space",
        "a:b",
        "a/b",
        "(x)",
        "é",
        "a\"b",
        "a,b",
        "a@b",
        "[x]",
        "{x}",
        "a=b",
        "a?b",
        "a;b",
    ] {
        assert!(
            matches!(
                invalid(one(json!({"type": "string", "x-mcp-header": bad}))),
                InvalidAnnotation::NotToken { .. }
            ),
            "{bad:?} must be rejected"
        );
    }
    for good in ["Region", "x-y_z", "A1", "!#$%&'*+-.^_`|~", "0"] {
        assert!(
            params(one(json!({"type": "string", "x-mcp-header": good}))).is_ok(),
            "{good:?} is a token"
        );
    }
}

#[test]
fn control_characters_are_invalid() {
    for bad in ["Re\r\ngion", "a\nb", "a\tb", "a\u{0}b", "a\u{7f}b"] {
        assert!(
            matches!(
                invalid(one(json!({"type": "string", "x-mcp-header": bad}))),
                InvalidAnnotation::ControlCharacter { .. }
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn duplicates_are_case_insensitive() {
    let e = invalid(json!({"type": "object", "properties": {
        "a": {"type": "string", "x-mcp-header": "Region"},
        "b": {"type": "object", "properties": {"c": {"type": "string", "x-mcp-header": "REGION"}}}
    }}));
    assert!(matches!(e, InvalidAnnotation::Duplicate { .. }), "{e}");
    assert!(e.to_string().contains("REGION") || e.to_string().contains("Region"));
}

#[test]
fn only_string_integer_boolean() {
    for ty in [
        json!("number"),
        json!("object"),
        json!("array"),
        json!("null"),
        json!(["string", "integer"]),
        json!(["number", "null"]),
        json!(["string", "null"]),
        json!(["integer"]),
    ] {
        assert!(
            matches!(
                invalid(one(json!({"type": ty, "x-mcp-header": "P"}))),
                InvalidAnnotation::NotPrimitive { .. }
            ),
            "type {ty} must be rejected"
        );
    }
    // No declared type at all is not a declared primitive either.
    assert!(matches!(
        invalid(one(json!({"x-mcp-header": "P"}))),
        InvalidAnnotation::NotPrimitive { .. }
    ));
    for ty in ["string", "integer", "boolean"] {
        assert!(params(one(json!({"type": ty, "x-mcp-header": "P"}))).is_ok());
    }
}

#[test]
fn annotations_off_the_properties_chain_are_invalid() {
    let annotated = json!({"type": "string", "x-mcp-header": "P"});
    let cases = [
        json!({"type": "object", "x-mcp-header": "Root"}),
        json!({"type": "object", "properties": {"a": {"type": "array", "items": annotated}}}),
        json!({"type": "object", "properties": {"a": {"type": "array", "prefixItems": [annotated]}}}),
        json!({"type": "object", "oneOf": [{"properties": {"a": annotated}}]}),
        json!({"type": "object", "anyOf": [{"properties": {"a": annotated}}]}),
        json!({"type": "object", "allOf": [{"properties": {"a": annotated}}]}),
        json!({"type": "object", "not": {"properties": {"a": annotated}}}),
        json!({"type": "object", "if": {"properties": {"a": annotated}}}),
        json!({"type": "object", "then": {"properties": {"a": annotated}}}),
        json!({"type": "object", "else": {"properties": {"a": annotated}}}),
        json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": annotated}}),
        json!({"type": "object", "definitions": {"A": annotated}}),
        json!({"type": "object", "additionalProperties": annotated}),
        json!({"type": "object", "patternProperties": {"^a": annotated}}),
        json!({"type": "object", "properties": {"a": {"type": "object", "additionalProperties": annotated}}}),
        json!({"type": "object", "dependentSchemas": {"a": {"properties": {"b": annotated}}}}),
        json!({"type": "object", "properties": {"a": {"type": "array", "items": [annotated]}}}),
        json!({"type": "object", "dependencies": {"a": {"properties": {"b": annotated}}}}),
        json!({"type": "object", "propertyNames": annotated}),
        json!({"type": "object", "properties": {"a": {"type": "array", "contains": annotated}}}),
    ];
    for schema in cases {
        let e = params(schema.clone()).expect_err(&format!("{schema} must be invalid"));
        assert!(matches!(e, InvalidAnnotation::Unreachable { .. }), "{schema}: {e}");
    }
}

#[test]
fn errors_say_where() {
    let e = invalid(
        json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "P"}}}}),
    );
    assert_eq!(
        e,
        InvalidAnnotation::Unreachable {
            at: "#/properties/a/items".into()
        }
    );
    let e = invalid(one(json!({"type": "number", "x-mcp-header": "Amount"})));
    assert!(e.to_string().contains("\"number\""), "{e}");
    assert!(e.to_string().contains("#/properties/p"), "{e}");
}

#[test]
fn schemas_that_are_not_objects_have_no_parameters() {
    // They have no schema positions, so nothing in them is an annotation.
    assert_eq!(header_params(&RawJson::from_static("[\"x-mcp-header\"]")), Ok(vec![]));
    assert_eq!(header_params(&RawJson::from_static("\"caf\\u00e9\"")), Ok(vec![]));
    assert_eq!(header_params(&RawJson::from_static("true")), Ok(vec![]));
    assert_eq!(
        header_params(&RawJson::from_static("[{\"x-mcp-header\": \"A\"}]")),
        Ok(vec![])
    );
}

// ---- value encoding ----

#[test]
fn spec_encoding_examples() {
    assert_eq!(encode_value("us-west1"), "us-west1");
    assert_eq!(encode_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
    assert_eq!(encode_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
    assert_eq!(encode_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
    assert_eq!(
        encode_value("=?base64?literal?="),
        "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
    );
    // Spaces inside are fine; a tab is a control character.
    assert_eq!(encode_value("a b"), "a b");
    assert_ne!(encode_value("a\tb"), "a\tb");
}

#[test]
fn spec_decoding_examples() {
    assert_eq!(decode_value(b"us-west1").as_deref(), Some("us-west1"));
    assert_eq!(
        decode_value(b"=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
        Some("Hello, 世界")
    );
    assert_eq!(decode_value(b"=?base64?IHBhZGRlZCA=?=").as_deref(), Some(" padded "));
    assert_eq!(
        decode_value(b"=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").as_deref(),
        Some("=?base64?literal?=")
    );
    assert_eq!(decode_value(b"=?base64?not base64!?="), None);
    assert_eq!(decode_value(b"caf\xc3\xa9"), None, "raw non-ASCII is invalid");
    assert_eq!(decode_value(b"=?base64?/w==?="), None, "Base64 of non-UTF-8");
    // The markers are case-sensitive: an upper-case one is a plain value.
    assert_eq!(decode_value(b"=?BASE64?YQ==?=").as_deref(), Some("=?BASE64?YQ==?="));
}

// ---- extraction ----

#[test]
fn extract_spec_example() {
    let p = params(region_schema()).unwrap();
    let h = extract(&p, Some(&raw(json!({"region": "us-west1", "query": "SELECT 1"})))).unwrap();
    assert_eq!(
        h,
        vec![(
            HeaderName::from_static("mcp-param-region"),
            HeaderValue::from_static("us-west1")
        )]
    );
}

#[test]
fn extract_converts_types_and_skips_null_and_absent() {
    let p = params(json!({"type": "object", "properties": {
        "n": {"type": "integer", "x-mcp-header": "N"},
        "b": {"type": "boolean", "x-mcp-header": "B"},
        "s": {"type": "string", "x-mcp-header": "S"},
        "o": {"type": "object", "properties": {"deep": {"type": "string", "x-mcp-header": "Deep"}}}
    }}))
    .unwrap();
    let h = extract(&p, Some(&raw(json!({"n": -7, "b": false, "s": null})))).unwrap();
    let mut names: Vec<_> = h
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("mcp-param-b".into(), "false".into()),
            ("mcp-param-n".into(), "-7".into())
        ]
    );
    let h: HeaderMap = extract(
        &p,
        Some(&RawJson::from_static(
            r#"{"n": 42.0, "o": {"deep": "Hello, \u4e16\u754c"}}"#,
        )),
    )
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(h["mcp-param-n"], "42");
    assert_eq!(h["mcp-param-deep"], "=?base64?SGVsbG8sIOS4lueVjA==?=");
    assert_eq!(extract(&p, None).unwrap(), vec![]);
    // A non-object on the way means "absent".
    assert_eq!(extract(&p, Some(&raw(json!({"o": "flat"})))).unwrap(), vec![]);
}

#[test]
fn extract_integer_bounds() {
    let p = params(one(json!({"type": "integer", "x-mcp-header": "P"}))).unwrap();
    let at = |v: serde_json::Value| extract(&p, Some(&raw(json!({"p": v}))));
    assert_eq!(at(json!(9007199254740991i64)).unwrap()[0].1, "9007199254740991");
    assert_eq!(at(json!(-9007199254740991i64)).unwrap()[0].1, "-9007199254740991");
    assert!(matches!(
        at(json!(9007199254740992i64)),
        Err(ExtractError::OutOfRange { .. })
    ));
    assert!(matches!(
        at(json!(-9007199254740992i64)),
        Err(ExtractError::OutOfRange { .. })
    ));
    assert!(matches!(
        extract(&p, Some(&RawJson::from_static("{\"p\": 1e300}"))),
        Err(ExtractError::OutOfRange { .. })
    ));
    assert!(matches!(at(json!(1.5)), Err(ExtractError::NotInteger { .. })));
    assert!(matches!(at(json!([1])), Err(ExtractError::NotPrimitive { .. })));
    assert!(matches!(at(json!({"a": 1})), Err(ExtractError::NotPrimitive { .. })));
}

// ---- validation ----

fn check(p: &[HeaderParam], h: &[(&str, &str)], args: serde_json::Value) -> Result<(), Mismatch> {
    validate(p, &headers(h), Some(&raw(args)))
}

#[test]
fn validate_spec_table() {
    let p = params(region_schema()).unwrap();
    // Value provided: the header must be there and match.
    assert_eq!(
        check(&p, &[("Mcp-Param-Region", "us-west1")], json!({"region": "us-west1"})),
        Ok(())
    );
    // Header names are case-insensitive.
    assert_eq!(
        check(&p, &[("MCP-PARAM-REGION", "us-west1")], json!({"region": "us-west1"})),
        Ok(())
    );
    // null or absent: no header expected.
    assert_eq!(check(&p, &[], json!({"region": null})), Ok(()));
    assert_eq!(check(&p, &[], json!({"query": "x"})), Ok(()));
    assert_eq!(validate(&p, &HeaderMap::new(), None), Ok(()));
    // The client omitted the header while the value is in the body.
    let e = check(&p, &[], json!({"region": "us-west1"})).unwrap_err();
    assert!(e.to_string().starts_with("Header mismatch: "), "{e}");
    assert!(e.to_string().contains("Mcp-Param-Region"), "{e}");
    // Mismatch.
    let e = check(&p, &[("Mcp-Param-Region", "eu-west1")], json!({"region": "us-west1"})).unwrap_err();
    assert!(
        e.to_string().contains("'eu-west1'") && e.to_string().contains("'us-west1'"),
        "{e}"
    );
    // A header without a body value.
    assert!(check(&p, &[("Mcp-Param-Region", "us-west1")], json!({"region": null})).is_err());
    assert!(check(&p, &[("Mcp-Param-Region", "us-west1")], json!({})).is_err());
    // Values are case-sensitive.
    assert!(check(&p, &[("Mcp-Param-Region", "US-WEST1")], json!({"region": "us-west1"})).is_err());
    // Sent twice.
    assert!(
        check(
            &p,
            &[("Mcp-Param-Region", "us-west1"), ("Mcp-Param-Region", "us-west1")],
            json!({"region": "us-west1"})
        )
        .is_err()
    );
}

#[test]
fn validate_decodes_base64_and_rejects_bad_encodings() {
    let p = params(one(json!({"type": "string", "x-mcp-header": "Greeting"}))).unwrap();
    assert_eq!(
        check(
            &p,
            &[("mcp-param-greeting", "=?base64?SGVsbG8sIOS4lueVjA==?=")],
            json!({"p": "Hello, 世界"})
        ),
        Ok(())
    );
    // A client may also encode a value that did not need it.
    assert_eq!(
        check(
            &p,
            &[("mcp-param-greeting", "=?base64?dXMtd2VzdDE=?=")],
            json!({"p": "us-west1"})
        ),
        Ok(())
    );
    // Bad Base64: invalid.
    let e = check(&p, &[("mcp-param-greeting", "=?base64?%%%?=")], json!({"p": "x"})).unwrap_err();
    assert!(e.to_string().contains("invalid"), "{e}");
    // The raw sentinel text in the body must come encoded, not plain.
    assert!(
        check(
            &p,
            &[("mcp-param-greeting", "=?base64?bGl0ZXJhbA==?=")],
            json!({"p": "=?base64?bGl0ZXJhbA==?="})
        )
        .is_err()
    );
    // Raw UTF-8 in a header: invalid characters.
    let mut h = HeaderMap::new();
    h.insert(
        "mcp-param-greeting",
        HeaderValue::from_bytes("café".as_bytes()).unwrap(),
    );
    assert!(validate(&p, &h, Some(&raw(json!({"p": "café"})))).is_err());
}

#[test]
fn validate_compares_integers_numerically() {
    let p = params(one(json!({"type": "integer", "x-mcp-header": "N"}))).unwrap();
    for header in ["42", "42.0", "4.2e1", "420E-1", "+42", "42.000"] {
        assert_eq!(
            check(&p, &[("mcp-param-n", header)], json!({"p": 42})),
            Ok(()),
            "{header}"
        );
    }
    assert_eq!(
        validate(
            &p,
            &headers(&[("mcp-param-n", "42")]),
            Some(&RawJson::from_static("{\"p\": 42.0}"))
        ),
        Ok(())
    );
    for header in ["43", "42.5", "0x2a", "forty-two", "", "42.0000000000000001", "4.2"] {
        assert!(
            check(&p, &[("mcp-param-n", header)], json!({"p": 42})).is_err(),
            "{header}"
        );
    }
    assert_eq!(check(&p, &[("mcp-param-n", "-0")], json!({"p": 0})), Ok(()));
    // Out of the safe range in the body: rejected whatever the header says.
    assert!(
        check(
            &p,
            &[("mcp-param-n", "9007199254740992")],
            json!({"p": 9007199254740992i64})
        )
        .is_err()
    );
}

#[test]
fn validate_booleans_exactly() {
    let p = params(one(json!({"type": "boolean", "x-mcp-header": "B"}))).unwrap();
    assert_eq!(check(&p, &[("mcp-param-b", "true")], json!({"p": true})), Ok(()));
    assert_eq!(check(&p, &[("mcp-param-b", "false")], json!({"p": false})), Ok(()));
    assert!(check(&p, &[("mcp-param-b", "True")], json!({"p": true})).is_err());
    assert!(check(&p, &[("mcp-param-b", "1")], json!({"p": true})).is_err());
}

#[test]
fn unknown_param_headers_are_ignored() {
    let p = params(region_schema()).unwrap();
    assert_eq!(
        check(
            &p,
            &[("Mcp-Param-Region", "us-west1"), ("Mcp-Param-Other", "whatever")],
            json!({"region": "us-west1"})
        ),
        Ok(())
    );
    assert_eq!(check(&[], &[("Mcp-Param-Other", "x")], json!({})), Ok(()));
}

#[test]
fn integral_parser() {
    assert_eq!(integral("0"), Some(Integral::Int(0)));
    assert_eq!(integral("-12"), Some(Integral::Int(-12)));
    assert_eq!(integral("1.20e1"), Some(Integral::Int(12)));
    assert_eq!(integral("1e37"), Some(Integral::Int(10i128.pow(37))));
    assert_eq!(integral("1e38"), Some(Integral::Huge));
    assert_eq!(integral("1e999999999999"), Some(Integral::Huge));
    assert_eq!(integral("0e-99999"), Some(Integral::Int(0)));
    for bad in [
        "", "-", ".", "1.", ".5", "1e", "1.5", "1e-1", "NaN", "Infinity", "1_000", "١",
    ] {
        assert_eq!(integral(bad), None, "{bad:?}");
    }
}

// ---- a server's tools, learned from tools/list ----

#[test]
fn tool_headers_learned_from_list_pages() {
    let mut th = ToolHeaders::default();
    let page = raw(json!({"tools": [
        {"name": "route", "inputSchema": region_schema()},
        {"name": "plain", "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}}}},
        {"name": "bad", "inputSchema": one(json!({"type": "number", "x-mcp-header": "Amount"}))},
    ], "nextCursor": "2"}));
    let rejected = th.learn_page(&page);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, "bad");
    assert!(matches!(rejected[0].1, InvalidAnnotation::NotPrimitive { .. }));
    assert!(th.get("route").is_some() && th.get("plain").is_none() && th.get("bad").is_none());

    let call = raw(json!({"name": "route", "arguments": {"region": "Hello, 世界", "query": "q"}}));
    let h = th.for_call(Some(&call)).unwrap();
    assert_eq!(
        h,
        vec![(
            HeaderName::from_static("mcp-param-region"),
            HeaderValue::from_static("=?base64?SGVsbG8sIOS4lueVjA==?=")
        )]
    );
    // What a client sends is what a server accepts.
    let hm: HeaderMap = h.into_iter().collect();
    assert_eq!(
        validate(
            th.get("route").unwrap(),
            &hm,
            crate::raw::member(&call, "arguments").as_ref()
        ),
        Ok(())
    );
    // Unknown, unannotated and argument-less calls carry none.
    for p in [
        json!({"name": "plain", "arguments": {"a": "x"}}),
        json!({"name": "nope"}),
        json!({"name": "route"}),
    ] {
        assert_eq!(th.for_call(Some(&raw(p))).unwrap(), vec![]);
    }
    assert_eq!(th.for_call(None).unwrap(), vec![]);

    // A later page that lists the tool without annotations replaces what was learned.
    th.learn_page(&raw(
        json!({"tools": [{"name": "route", "inputSchema": {"type": "object"}}]}),
    ));
    assert!(th.get("route").is_none());
    th.learn_page(&page);
    th.clear();
    assert!(th.get("route").is_none());
    // Not a list result: nothing learned, nothing rejected.
    assert!(th.learn_page(&raw(json!({"content": []}))).is_empty());
}

// ---- properties ----

proptest! {
    #[test]
    fn encode_then_decode_is_identity(s in any::<String>()) {
        let v = encode_value(&s);
        prop_assert_eq!(decode_value(v.as_bytes()), Some(s.clone()));
        // Plain exactly when safe.
        let plain = v.as_bytes() == s.as_bytes();
        let sentinel = s.starts_with("=?base64?") && s.ends_with("?=");
        let safe = s.bytes().all(|b| (0x20..=0x7e).contains(&b)) && !s.starts_with(' ') && !s.ends_with(' ') && !sentinel;
        prop_assert_eq!(plain, safe);
    }

    #[test]
    fn ascii_round_trip(s in "[ -~]{0,40}") {
        prop_assert_eq!(decode_value(encode_value(&s).as_bytes()), Some(s));
    }

    #[test]
    fn extracted_headers_always_validate(
        s in any::<String>(),
        n in -MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER,
        b in any::<bool>(),
        present in proptest::collection::vec(any::<bool>(), 3),
    ) {
        let p = params(json!({"type": "object", "properties": {
            "s": {"type": "string", "x-mcp-header": "S"},
            "o": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}},
            "b": {"type": "boolean", "x-mcp-header": "B"}
        }})).unwrap();
        let mut args = serde_json::Map::new();
        if present[0] { args.insert("s".into(), json!(s)); }
        if present[1] { args.insert("o".into(), json!({"n": n})); }
        if present[2] { args.insert("b".into(), json!(b)); }
        let args = raw(serde_json::Value::Object(args));
        let h: HeaderMap = extract(&p, Some(&args)).unwrap().into_iter().collect();
        prop_assert_eq!(h.len(), present.iter().filter(|x| **x).count());
        prop_assert_eq!(validate(&p, &h, Some(&args)), Ok(()));
        // Dropping any one header breaks validation.
        for name in h.keys() {
            let mut fewer = h.clone();
            fewer.remove(name);
            prop_assert!(validate(&p, &fewer, Some(&args)).is_err());
        }
    }

    #[test]
    fn a_different_string_never_validates(a in any::<String>(), b in any::<String>()) {
        prop_assume!(a != b);
        let p = params(one(json!({"type": "string", "x-mcp-header": "P"}))).unwrap();
        let mut h = HeaderMap::new();
        h.insert("mcp-param-p", encode_value(&a));
        let args = raw(json!({"p": b}));
        prop_assert!(validate(&p, &h, Some(&args)).is_err());
    }

    #[test]
    fn integers_compare_numerically(n in -MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER, zeros in 0usize..5, m in -MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER) {
        let p = params(one(json!({"type": "integer", "x-mcp-header": "N"}))).unwrap();
        let args = raw(json!({"p": n}));
        let written = if zeros == 0 { n.to_string() } else { format!("{n}.{}", "0".repeat(zeros)) };
        let mut h = HeaderMap::new();
        h.insert("mcp-param-n", HeaderValue::from_str(&written).unwrap());
        prop_assert_eq!(validate(&p, &h, Some(&args)), Ok(()));
        h.insert("mcp-param-n", HeaderValue::from_str(&m.to_string()).unwrap());
        prop_assert_eq!(validate(&p, &h, Some(&args)).is_ok(), m == n);
    }

    #[test]
    fn token_names_are_accepted_and_others_rejected(name in "[\\x00-\\x7f]{0,12}") {
        let r = params(one(json!({"type": "string", "x-mcp-header": name.clone()})));
        let token = !name.is_empty() && name.bytes().all(is_tchar);
        prop_assert_eq!(r.is_ok(), token);
    }

    #[test]
    fn schema_parsing_never_panics(v in json_value()) {
        let _ = header_params(&raw(v));
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![Just("x-mcp-header".to_owned()), Just("string".to_owned()), "[a-z]{0,4}"].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("x-mcp-header"),
                        Just("properties"),
                        Just("type"),
                        Just("items"),
                        Just("a")
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
