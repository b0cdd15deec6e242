//! Raw JSON values that are carried, not decoded.
//!
//! A [`RawJson`] is a cheap, reference-counted slice of the bytes a message arrived in; it is
//! guaranteed to hold one syntactically valid JSON value. [`ObjectEdit`] changes a few members
//! of a JSON object (a tool name, a progress token) and leaves every other member's bytes
//! exactly as they were, so unknown and future fields survive the gateway.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{Deserializer, MapAccess, Visitor};
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
        struct V<'b>(&'b Bytes);
        impl<'de, 'b> Visitor<'de> for V<'b> {
            type Value = Vec<(JsonStr, RawJson)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    let v = RawJson(self.0.slice_ref(value.get().as_bytes()));
                    out.push((JsonStr::new(key.into_owned()), v));
                }
                Ok(out)
            }
        }
        let bytes = raw.bytes();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let entries = de.deserialize_map(V(bytes))?;
        de.end()?;
        Ok(ObjectEdit { entries })
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

/// Reads one member of a JSON object (raw) without decoding the others' contents.
pub fn member(raw: &RawJson, key: &str) -> Option<RawJson> {
    struct V<'b, 'k>(&'b Bytes, &'k str);
    impl<'de> Visitor<'de> for V<'_, '_> {
        type Value = Option<RawJson>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                let value: &'de RawValue = map.next_value()?;
                if found.is_none() && k == self.1 {
                    found = Some(RawJson(self.0.slice_ref(value.get().as_bytes())));
                }
            }
            Ok(found)
        }
    }
    if !raw.is_object() {
        return None;
    }
    let bytes = raw.bytes();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(V(bytes, key)).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn escaped_keys_round_trip() {
        let r = raw(r#"{"a\"b":1,"c\n":"\u00e9"}"#);
        let e = ObjectEdit::parse(&r).unwrap();
        let back: serde_json::Value = e.to_raw().decode().unwrap();
        assert_eq!(back, serde_json::json!({"a\"b":1,"c\n":"é"}));
    }
}
