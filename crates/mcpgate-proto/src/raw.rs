//! Raw JSON values that are carried, not decoded.
//!
//! A [`RawJson`] is a cheap, reference-counted slice of the bytes a message arrived in; it is
//! guaranteed to hold one syntactically valid JSON value. [`ObjectEdit`] changes a few members
//! of a JSON object (a tool name, a progress token) and leaves every other member's bytes
//! exactly as they were, so unknown and future fields survive the gateway.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::value::RawValue;

/// One valid JSON value, kept as its original bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Bytes);

impl RawJson {
    /// Wraps bytes already known to be one valid JSON value (a slice of a parsed message).
    pub(crate) fn from_trusted(bytes: Bytes) -> Self {
        RawJson(bytes)
    }

    /// Validates `bytes` as exactly one JSON value.
    pub fn parse(bytes: Bytes) -> Result<Self, serde_json::Error> {
        let raw: &RawValue = serde_json::from_slice(&bytes)?;
        let trimmed = raw.get().as_bytes();
        Ok(RawJson(bytes.slice_ref(trimmed)))
    }

    /// Bytes the caller built from valid JSON values (an array or object assembled from
    /// [`RawJson`]s, say) and so need not be parsed again. Checked in debug builds only.
    pub fn assume_valid(bytes: Bytes) -> Self {
        debug_assert!(
            serde_json::from_slice::<&RawValue>(&bytes).is_ok(),
            "not one JSON value: {}",
            String::from_utf8_lossy(&bytes)
        );
        RawJson(bytes)
    }

    /// A copy of this value with the bytes in `range` replaced by `value`: with a range from
    /// [`member_range`], one member changed and every other byte kept as it was.
    ///
    /// # Panics
    /// If `range` is out of bounds.
    pub fn with_replaced(&self, range: std::ops::Range<usize>, value: &RawJson) -> RawJson {
        let mut buf = BytesMut::with_capacity(self.0.len() - range.len() + value.0.len());
        buf.put_slice(&self.0[..range.start]);
        buf.put_slice(&value.0);
        buf.put_slice(&self.0[range.end..]);
        RawJson(buf.freeze())
    }

    /// Serializes any value into a raw JSON value.
    pub fn from_value<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        let v = serde_json::to_vec(value).expect("serializing to a Vec cannot fail");
        RawJson(Bytes::from(v))
    }

    /// A static JSON text such as `null` or `{}`; the caller promises it is valid JSON.
    pub const fn from_static(text: &'static str) -> Self {
        RawJson(Bytes::from_static(text.as_bytes()))
    }

    /// The JSON string literal for `s`.
    pub fn string(s: &str) -> Self {
        Self::from_value(s)
    }

    /// The JSON text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text as `str` (JSON text is always UTF-8).
    pub fn as_str(&self) -> &str {
        // Input was validated by serde_json, which rejects invalid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("null")
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Deserializes the value.
    pub fn decode<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// Is this the JSON `null` literal?
    pub fn is_null(&self) -> bool {
        self.0.as_ref() == b"null"
    }

    /// Is this a JSON object?
    pub fn is_object(&self) -> bool {
        self.0.first() == Some(&b'{')
    }

    /// If this value is a JSON string, its decoded text.
    pub fn as_json_str(&self) -> Option<JsonStr> {
        if self.0.first() != Some(&b'"') {
            return None;
        }
        JsonStr::from_literal(&self.0)
    }

    /// If this value is an integer that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        let first = *self.0.first()?;
        if first == b'-' || first.is_ascii_digit() {
            std::str::from_utf8(&self.0).ok()?.parse().ok()
        } else {
            None
        }
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(self.as_str()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl From<serde_json::Value> for RawJson {
    fn from(v: serde_json::Value) -> Self {
        RawJson::from_value(&v)
    }
}

/// A decoded JSON string, backed by the message bytes when it had no escapes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonStr(Bytes);

impl JsonStr {
    /// Decodes a JSON string literal (with its quotes).
    pub(crate) fn from_literal(lit: &Bytes) -> Option<Self> {
        let inner = lit.get(1..lit.len().checked_sub(1)?)?;
        if memchr::memchr(b'\\', inner).is_none() {
            std::str::from_utf8(inner).ok()?;
            return Some(JsonStr(lit.slice(1..lit.len() - 1)));
        }
        let s: String = serde_json::from_slice(lit).ok()?;
        Some(JsonStr(Bytes::from(s)))
    }

    /// Wraps a Rust string.
    pub fn new(s: impl Into<String>) -> Self {
        JsonStr(Bytes::from(s.into()))
    }

    /// A static string.
    pub const fn from_static(s: &'static str) -> Self {
        JsonStr(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Constructed only from validated UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for JsonStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for JsonStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for JsonStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JSON object opened one level deep: members can be read, replaced, added or removed while
/// every other member keeps its original bytes and order.
#[derive(Clone, Debug, Default)]
pub struct ObjectEdit {
    entries: Vec<(JsonStr, RawJson)>,
}

impl ObjectEdit {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens `raw`, which must be a JSON object.
    pub fn parse(raw: &RawJson) -> Result<Self, serde_json::Error> {
        let bytes = raw.bytes();
        let mut entries = Vec::new();
        let complete = scan::members(bytes, |key, value| {
            let key = JsonStr::from_literal(&bytes.slice(key))?;
            entries.push((key, RawJson(bytes.slice(value))));
            Some(true)
        });
        match complete {
            Some(_) => Ok(ObjectEdit { entries }),
            None => Err(serde::de::Error::custom("expected a JSON object")),
        }
    }

    /// Opens `raw` if present and an object; otherwise starts an empty object.
    pub fn parse_or_new(raw: Option<&RawJson>) -> Result<Self, serde_json::Error> {
        match raw {
            Some(r) if !r.is_null() => Self::parse(r),
            _ => Ok(Self::new()),
        }
    }

    /// The member `key`.
    pub fn get(&self, key: &str) -> Option<&RawJson> {
        self.entries.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    }

    /// Sets member `key` (replacing in place, or appending).
    pub fn set(&mut self, key: &str, value: RawJson) {
        match self.entries.iter_mut().find(|(k, _)| k.as_str() == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((JsonStr::new(key), value)),
        }
    }

    /// Removes member `key`, returning it.
    pub fn remove(&mut self, key: &str) -> Option<RawJson> {
        let i = self.entries.iter().position(|(k, _)| k.as_str() == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Members in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawJson)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Has no members?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the object back out.
    pub fn to_raw(&self) -> RawJson {
        let cap = 2 + self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.as_bytes().len() + 4)
            .sum::<usize>();
        let mut buf = BytesMut::with_capacity(cap);
        buf.put_u8(b'{');
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                buf.put_u8(b',');
            }
            write_json_string(&mut buf, k.as_str());
            buf.put_u8(b':');
            buf.put_slice(v.as_bytes());
        }
        buf.put_u8(b'}');
        RawJson(buf.freeze())
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(buf: &mut BytesMut, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        buf.reserve(s.len() + 2);
        buf.put_u8(b'"');
        buf.put_slice(s.as_bytes());
        buf.put_u8(b'"');
    } else {
        let v = serde_json::to_vec(s).expect("string serialization cannot fail");
        buf.put_slice(&v);
    }
}

/// Reads one string member of a JSON object without decoding the rest of it.
pub fn str_member(raw: &RawJson, key: &str) -> Option<JsonStr> {
    member(raw, key)?.as_json_str()
}

/// Reads one member of a JSON object (raw) with the byte range of its value within `raw`
/// (for [`RawJson::with_replaced`]), without decoding the others' contents.
pub fn member_range(raw: &RawJson, key: &str) -> Option<(RawJson, std::ops::Range<usize>)> {
    let value = member(raw, key)?;
    let start = value.0.as_ptr() as usize - raw.0.as_ptr() as usize;
    Some((value.clone(), start..start + value.0.len()))
}

/// Reads one member of a JSON object (raw) without decoding the others' contents.
pub fn member(raw: &RawJson, key: &str) -> Option<RawJson> {
    let bytes = raw.bytes();
    let mut found = None;
    scan::members(bytes, |k, value| {
        let k = &bytes[k];
        let inner = &k[1..k.len() - 1];
        let same = if memchr::memchr(b'\\', inner).is_none() {
            inner == key.as_bytes()
        } else {
            serde_json::from_slice::<String>(k).is_ok_and(|k| k == key)
        };
        if same {
            found = Some(RawJson(bytes.slice(value)));
            return Some(false);
        }
        Some(true)
    })?;
    found
}

/// Navigation inside bytes that hold one valid JSON value (the [`RawJson`] invariant): it
/// finds members and elements without validating, decoding or allocating. On bytes that are
/// not valid JSON it returns nonsense but never panics or loops.
mod scan {
    use std::ops::Range;

    fn ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    /// Just past the string literal whose opening quote is at `i`.
    fn string_end(b: &[u8], i: usize) -> usize {
        let mut j = i + 1;
        while j < b.len() {
            match memchr::memchr2(b'"', b'\\', &b[j..]) {
                Some(k) if b[j + k] == b'\\' => j += k + 2,
                Some(k) => return j + k + 1,
                None => break,
            }
        }
        b.len()
    }

    /// Just past the value that starts at `i`.
    fn value_end(b: &[u8], i: usize) -> usize {
        match b.get(i) {
            Some(b'"') => string_end(b, i),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                let mut j = i;
                while j < b.len() {
                    match b[j] {
                        b'"' => {
                            j = string_end(b, j);
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return j + 1;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                b.len()
            }
            Some(_) => {
                let mut j = i + 1;
                while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    j += 1;
                }
                j
            }
            None => b.len(),
        }
    }

    /// Calls `f(key literal, value)` for each member of the object in `b`, in order, until
    /// it returns `Some(false)` (stop) or `None` (abandon). `None` when `b` is not an object
    /// or `f` abandoned; `Some(())` otherwise.
    pub(super) fn members(b: &[u8], mut f: impl FnMut(Range<usize>, Range<usize>) -> Option<bool>) -> Option<()> {
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            return Some(());
        }
        while b.get(i) == Some(&b'"') {
            let key = i..string_end(b, i);
            i = ws(b, key.end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(b, i + 1);
            let value = i..value_end(b, i);
            if !f(key, value.clone())? {
                return Some(());
            }
            i = ws(b, value.end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b'}') => return Some(()),
                _ => return None,
            }
        }
        None
    }

    /// The elements of the array in `b`; `None` when `b` is not an array.
    pub(super) fn elements(b: &[u8]) -> Option<Vec<Range<usize>>> {
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        let mut out = Vec::new();
        i = ws(b, i + 1);
        if b.get(i) == Some(&b']') {
            return Some(out);
        }
        while i < b.len() {
            let end = value_end(b, i);
            out.push(i..end);
            i = ws(b, end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b']') => return Some(out),
                _ => return None,
            }
        }
        None
    }
}

/// The elements of a JSON array, sharing its bytes; `None` when `raw` is not an array.
pub fn elements(raw: &RawJson) -> Option<Vec<RawJson>> {
    let bytes = raw.bytes();
    Some(
        scan::elements(bytes)?
            .into_iter()
            .map(|r| RawJson(bytes.slice(r)))
            .collect(),
    )
}

/// Does `json` nest arrays and objects deeper than `max` levels? Brackets inside strings
/// (escapes included) do not count. A linear scan that allocates nothing, for refusing
/// hostile input before parsing it.
pub fn nesting_exceeds(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() {
                    match json[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {

    #[test]
    fn nesting_limit_counts_brackets_outside_strings() {
        use super::nesting_exceeds;
        assert!(!nesting_exceeds(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(nesting_exceeds(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(
            !nesting_exceeds(br#"{"a":"[[[[{{{{\"[[[["}"#, 1),
            "brackets in strings, escaped quote"
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(nesting_exceeds(deep.as_bytes(), 64));
        assert!(!nesting_exceeds(deep.as_bytes(), 100_000));
        assert!(!nesting_exceeds(b"", 0) && !nesting_exceeds(b"1", 0));
    }
    use super::*;
    use proptest::prelude::*;

    fn raw(s: &'static str) -> RawJson {
        RawJson::parse(Bytes::from_static(s.as_bytes())).unwrap()
    }

    #[test]
    fn edit_keeps_other_members_verbatim() {
        let r = raw(r#"{"name":"a_echo", "arguments": {"x" : 1.50, "y":[1, 2]},"zz":{"future":true}}"#);
        let mut e = ObjectEdit::parse(&r).unwrap();
        assert_eq!(e.get("name").unwrap().as_json_str().unwrap().as_str(), "a_echo");
        e.set("name", RawJson::string("echo"));
        assert_eq!(
            e.to_raw().as_str(),
            r#"{"name":"echo","arguments":{"x" : 1.50, "y":[1, 2]},"zz":{"future":true}}"#
        );
    }

    #[test]
    fn member_reads_one_field() {
        let r = raw(r#"{"a":{"b":1},"uri":"file:///x\"y"}"#);
        assert_eq!(str_member(&r, "uri").unwrap().as_str(), "file:///x\"y");
        assert_eq!(member(&r, "a").unwrap().as_str(), r#"{"b":1}"#);
        assert!(member(&r, "missing").is_none());
        assert!(member(&raw("[1]"), "a").is_none());
    }

    #[test]
    fn one_member_replaced_in_place() {
        let r = raw(r#"{ "name" : "echo", "inputSchema": {"name":"x"} }"#);
        let (v, range) = member_range(&r, "name").unwrap();
        assert_eq!(v.as_str(), r#""echo""#);
        let out = r.with_replaced(range, &RawJson::string("fx_echo"));
        assert_eq!(out.as_str(), r#"{ "name" : "fx_echo", "inputSchema": {"name":"x"} }"#);
        assert!(member_range(&r, "missing").is_none());
        let arr = raw(r#"[ {"a":"]}"} , 2,"x" ]"#);
        let items: Vec<String> = elements(&arr).unwrap().iter().map(|e| e.as_str().to_owned()).collect();
        assert_eq!(items, [r#"{"a":"]}"}"#, "2", r#""x""#]);
        assert_eq!(elements(&raw("[]")).unwrap().len(), 0);
        assert!(elements(&raw("{}")).is_none());
        assert_eq!(RawJson::assume_valid(Bytes::from_static(b"[1]")).as_str(), "[1]");
    }

    #[test]
    fn first_of_duplicate_members_and_escaped_keys() {
        let r = raw(r#"{"a":1,"a":2,"b\u0022":3,"\"c":4}"#);
        assert_eq!(member(&r, "a").unwrap().as_str(), "1");
        assert_eq!(member(&r, "b\"").unwrap().as_str(), "3");
        assert_eq!(member(&r, "\"c").unwrap().as_str(), "4");
        let e = ObjectEdit::parse(&r).unwrap();
        assert_eq!(e.len(), 4);
        assert!(ObjectEdit::parse(&raw("[1]")).is_err() && ObjectEdit::parse(&raw("\"{\"")).is_err());
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[ -~\\\\\"\u{e9}\u{1F600}\n\t]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\{}\\[\\]:, ]{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The scanner agrees with serde_json on every member and element, compact or pretty.
        #[test]
        fn scanner_agrees_with_serde(v in json_value(), pretty in any::<bool>(), probe in "[a-z]{0,3}") {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let r = RawJson::parse(Bytes::from(text)).unwrap();
            // What serde_json reads back (floats may not round-trip exactly).
            let v: serde_json::Value = r.decode().unwrap();
            match &v {
                serde_json::Value::Object(map) => {
                    for (k, want) in map {
                        let got: serde_json::Value = member(&r, k).unwrap().decode().unwrap();
                        prop_assert_eq!(&got, want);
                    }
                    prop_assert_eq!(member(&r, &probe).is_some(), map.contains_key(&probe));
                    let e = ObjectEdit::parse(&r).unwrap();
                    prop_assert_eq!(e.len(), map.len());
                    for (k, got) in e.iter() {
                        let got: serde_json::Value = got.decode().unwrap();
                        prop_assert_eq!(Some(&got), map.get(k));
                    }
                    prop_assert!(elements(&r).is_none());
                }
                serde_json::Value::Array(items) => {
                    let got = elements(&r).unwrap();
                    prop_assert_eq!(got.len(), items.len());
                    for (g, want) in got.iter().zip(items) {
                        let g: serde_json::Value = g.decode().unwrap();
                        prop_assert_eq!(&g, want);
                    }
                    prop_assert!(member(&r, "a").is_none() && ObjectEdit::parse(&r).is_err());
                }
                _ => {
                    prop_assert!(member(&r, "a").is_none() && elements(&r).is_none());
                    prop_assert!(ObjectEdit::parse(&r).is_err());
                }
            }
        }
    }

    #[test]
    fn escaped_keys_round_trip() {
        let r = raw(r#"{"a\"b":1,"c\n":"\u00e9"}"#);
        let e = ObjectEdit::parse(&r).unwrap();
        let back: serde_json::Value = e.to_raw().decode().unwrap();
        assert_eq!(back, serde_json::json!({"a\"b":1,"c\n":"é"}));
    }
}
