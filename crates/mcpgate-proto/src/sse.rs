//! Server-Sent Events framing (WHATWG HTML "event stream interpretation").
//!
//! [`Decoder`] turns arbitrary byte chunks from an upstream into events, incrementally and
//! with a bound on event size; [`write_event`] frames one event for a downstream client,
//! splitting data on line breaks so any JSON text (which may contain whitespace line breaks)
//! survives.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `event:` field; `None` means the default type `message`.
    pub event: Option<String>,
    /// Concatenated `data:` lines joined with `\n`.
    pub data: Bytes,
    /// `id:` field, if this event carried one.
    pub id: Option<String>,
    /// `retry:` field in milliseconds, if this event carried one.
    pub retry: Option<u64>,
}

impl Event {
    /// The event type (`message` when none was given).
    pub fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// Why an event stream could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// An event (or a line) grew past the configured limit.
    #[error("SSE event larger than {0} bytes")]
    TooLarge(usize),
}

/// Incremental SSE decoder.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    data: BytesMut,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    seen_field: bool,
    skip_lf: bool,
    started: bool,
    max_event: usize,
}

impl Decoder {
    /// A decoder that rejects events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            data: BytesMut::new(),
            has_data: false,
            event: None,
            id: None,
            retry: None,
            seen_field: false,
            skip_lf: false,
            started: false,
            max_event,
        }
    }

    /// Feeds bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Returns the next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        loop {
            if !self.started {
                if self.buf.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.buf) {
                    return Ok(None);
                }
                if self.buf.starts_with(b"\xEF\xBB\xBF") {
                    self.buf.advance(3);
                }
                self.started = true;
            }
            if self.skip_lf && !self.buf.is_empty() {
                if self.buf[0] == b'\n' {
                    self.buf.advance(1);
                }
                self.skip_lf = false;
            }
            let Some(pos) = memchr::memchr2(b'\n', b'\r', &self.buf) else {
                if self.buf.len() + self.data.len() > self.max_event {
                    return Err(DecodeError::TooLarge(self.max_event));
                }
                return Ok(None);
            };
            let line = self.buf.split_to(pos);
            let term = self.buf[0];
            self.buf.advance(1);
            if term == b'\r' {
                self.skip_lf = true;
            }
            if line.is_empty() {
                if let Some(ev) = self.dispatch() {
                    return Ok(Some(ev));
                }
                continue;
            }
            self.field(&line)?;
        }
    }

    fn field(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        if line[0] == b':' {
            return Ok(());
        }
        let (name, mut value) = match memchr::memchr(b':', line) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        if value.first() == Some(&b' ') {
            value = &value[1..];
        }
        match name {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event {
                    return Err(DecodeError::TooLarge(self.max_event));
                }
                if self.has_data {
                    self.data.put_u8(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
                self.seen_field = true;
            }
            b"event" => {
                self.event = Some(String::from_utf8_lossy(value).into_owned());
                self.seen_field = true;
            }
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
                self.seen_field = true;
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
                self.seen_field = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Option<Event> {
        if !self.seen_field {
            return None;
        }
        self.seen_field = false;
        self.has_data = false;
        Some(Event {
            event: self.event.take(),
            data: self.data.split().freeze(),
            id: self.id.take(),
            retry: self.retry.take(),
        })
    }
}

/// Appends one event to `buf`. `data` may contain line breaks; each line becomes a `data:`
/// field so the receiver reassembles it joined with `\n`.
pub fn write_event(buf: &mut BytesMut, id: Option<&str>, event: Option<&str>, data: &[u8]) {
    buf.reserve(data.len() + 32);
    if let Some(event) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(event.as_bytes());
        buf.put_u8(b'\n');
    }
    if let Some(id) = id {
        buf.put_slice(b"id: ");
        buf.put_slice(id.as_bytes());
        buf.put_u8(b'\n');
    }
    let mut rest = data;
    loop {
        match memchr::memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                buf.put_slice(b"data: ");
                buf.put_slice(&rest[..i]);
                buf.put_u8(b'\n');
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
            }
            None => {
                buf.put_slice(b"data: ");
                buf.put_slice(rest);
                buf.put_u8(b'\n');
                break;
            }
        }
    }
    buf.put_u8(b'\n');
}

/// Appends a `retry:` field (as its own event block without data) — tells the client how
/// long to wait before reconnecting.
pub fn write_retry(buf: &mut BytesMut, id: Option<&str>, retry_ms: u64) {
    if let Some(id) = id {
        buf.put_slice(b"id: ");
        buf.put_slice(id.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_slice(format!("retry: {retry_ms}\n\n").as_bytes());
}

/// A comment line, used as a keep-alive.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::new(1 << 20);
        let mut out = vec![];
        for c in chunks {
            d.push(c);
            while let Some(e) = d.next_event().unwrap() {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn parses_fields_and_line_endings() {
        let evs = decode_all(&[
            b"\xEF\xBB\xBFevent: endpoint\r\ndata: /message?sessionId=1\r\n\r\n: comment\n\nid: 7\ndata:a\ndata: b\r",
            b"\nretry: 300\n\n",
        ]);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].kind(), "endpoint");
        assert_eq!(&evs[0].data[..], b"/message?sessionId=1");
        assert_eq!(evs[1].id.as_deref(), Some("7"));
        assert_eq!(&evs[1].data[..], b"a\nb");
        assert_eq!(evs[1].retry, Some(300));
    }

    #[test]
    fn priming_event_with_empty_data_is_reported() {
        let evs = decode_all(&[b"id: s1-0\ndata:\n\n"]);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].id.as_deref(), Some("s1-0"));
        assert!(evs[0].data.is_empty());
    }

    #[test]
    fn too_large() {
        let mut d = Decoder::new(8);
        d.push(b"data: 0123456789\n\n");
        assert_eq!(d.next_event(), Err(DecodeError::TooLarge(8)));
        let mut d = Decoder::new(8);
        d.push(b"data: 0123456789");
        assert_eq!(d.next_event(), Err(DecodeError::TooLarge(8)));
    }

    proptest! {
        #[test]
        fn write_then_decode_round_trips(data in "[ -~\n\r]{0,200}", id in "[a-z0-9-]{1,10}", split in 0usize..300) {
            let mut buf = BytesMut::new();
            write_event(&mut buf, Some(&id), Some("message"), data.as_bytes());
            let split = split.min(buf.len());
            let evs = decode_all(&[&buf[..split], &buf[split..]]);
            prop_assert_eq!(evs.len(), 1);
            let expected = data.replace("\r\n", "\n").replace('\r', "\n");
            prop_assert_eq!(std::str::from_utf8(&evs[0].data).unwrap(), expected.as_str());
            prop_assert_eq!(evs[0].id.as_deref(), Some(id.as_str()));
        }
    }
}
