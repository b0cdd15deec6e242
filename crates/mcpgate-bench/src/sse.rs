//! A small incremental `text/event-stream` reader: the bench needs event types and data only
//! (no ids, no `retry`), and must not copy a 100 KB event more than once.

/// One event: its type (`message` unless an `event:` line said otherwise) and its data lines
/// joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` by default.
    pub kind: String,
    /// The data.
    pub data: Vec<u8>,
}

/// Feeds chunks in with [`SseParser::push`], takes whole events out with
/// [`SseParser::next_event`].
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Start of the unparsed part of `buf`.
    pos: usize,
    /// Where the search for the next line end resumes (no `\n` before it past `pos`).
    scan: usize,
    kind: Option<String>,
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    /// An empty parser.
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.scan -= self.pos;
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.scan -= self.pos;
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if the bytes pushed so far hold one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let rel = self.buf[self.scan..].iter().position(|b| *b == b'\n');
            let Some(rel) = rel else {
                self.scan = self.buf.len();
                return None;
            };
            let end = self.scan + rel;
            let mut line = &self.buf[self.pos..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let event = if line.is_empty() {
                let dispatch = self.has_data || self.kind.is_some();
                let ev = dispatch.then(|| SseEvent {
                    kind: self.kind.take().unwrap_or_else(|| "message".to_owned()),
                    data: std::mem::take(&mut self.data),
                });
                self.has_data = false;
                ev
            } else {
                let (field, value) = match line.iter().position(|b| *b == b':') {
                    Some(0) => (&line[..0], &line[..0]),
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &line[..0]),
                };
                match field {
                    b"data" => {
                        if self.has_data {
                            self.data.push(b'\n');
                        }
                        self.data.extend_from_slice(value);
                        self.has_data = true;
                    }
                    b"event" => self.kind = Some(String::from_utf8_lossy(value).into_owned()),
                    _ => {}
                }
                None
            };
            self.pos = end + 1;
            self.scan = self.pos;
            if event.is_some() {
                return event;
            }
        }
    }
}

/// Every event in a complete body.
pub fn parse_all(body: &[u8]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    p.push(body);
    p.push(b"\n\n");
    std::iter::from_fn(|| p.next_event()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunks() {
        let mut p = SseParser::new();
        p.push(b": keep-alive\n\nevent: endpoint\ndata: /message?sessionId=ab");
        assert_eq!(p.next_event(), None);
        p.push(b"c\n\nid: 0-1\ndata: {\"a\":\ndata: 1}\r\n\r\n");
        let e = p.next_event().unwrap();
        assert_eq!(
            (e.kind.as_str(), e.data.as_slice()),
            ("endpoint", &b"/message?sessionId=abc"[..])
        );
        let e = p.next_event().unwrap();
        assert_eq!((e.kind.as_str(), e.data.as_slice()), ("message", &b"{\"a\":\n1}"[..]));
        assert_eq!(p.next_event(), None);
    }

    #[test]
    fn whole_body() {
        let evs = parse_all(b"id: 1\ndata:\n\ndata: x");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, b"");
        assert_eq!(evs[1].data, b"x");
    }
}
