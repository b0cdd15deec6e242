//! SSE streams of one downstream session: event ids, bounded replay buffers for
//! `Last-Event-ID` resumption, and the live connection each stream is attached to.
//!
//! Stream 0 is the session's general stream (the Streamable HTTP GET stream, or the legacy
//! SSE stream); each POST answered with SSE gets the next number. Event ids are
//! `<stream>-<seq>`, unique within the session and naming the stream they belong to, as the
//! 2025-11-25 transport asks, so a `Last-Event-ID` resumes exactly the stream that broke.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mcpgate_core::Outbound;
use mcpgate_proto::{Message, sse};
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// Capacity of the channel between a stream and its HTTP response body.
const LIVE_CAPACITY: usize = 256;

/// All streams of one session.
pub struct SessionStreams {
    state: Mutex<State>,
    resume_buffer: usize,
    /// Legacy SSE sessions get `event: message` frames without ids.
    legacy: bool,
    /// Open GET connections (general stream and resumptions), for
    /// `listen.max_streams_per_session`.
    open_gets: Arc<std::sync::atomic::AtomicUsize>,
}

/// One counted GET connection of a session; released when its response body is dropped.
pub struct GetSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for GetSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[derive(Default)]
struct State {
    next_stream: u32,
    streams: HashMap<u32, StreamBuf>,
    closed: bool,
}

#[derive(Default)]
struct StreamBuf {
    /// Recent events `(seq, frame)` for replay.
    events: VecDeque<(u64, Bytes)>,
    next_seq: u64,
    /// Highest seq handed to a live connection.
    delivered: Option<u64>,
    live: Option<mpsc::Sender<Bytes>>,
    /// The response was written: nothing more will come.
    done: bool,
}

/// A receiver of frames for one HTTP response body.
pub type Live = mpsc::Receiver<Bytes>;

impl SessionStreams {
    /// Streams for a session.
    pub fn new(resume_buffer: usize, legacy: bool) -> Arc<Self> {
        let mut state = State {
            next_stream: 1,
            ..Default::default()
        };
        state.streams.insert(0, StreamBuf::default());
        Arc::new(SessionStreams {
            state: Mutex::new(state),
            resume_buffer,
            legacy,
            open_gets: Default::default(),
        })
    }

    /// Counts a new GET connection, unless `max` are open already.
    pub fn open_get(&self, max: usize) -> Option<GetSlot> {
        use std::sync::atomic::Ordering;
        let n = self.open_gets.fetch_add(1, Ordering::AcqRel);
        if n >= max {
            self.open_gets.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(GetSlot(self.open_gets.clone()))
    }

    /// Opens a new POST stream; returns its number and the body's receiver.
    pub fn open_post_stream(&self) -> (u32, Live) {
        let (tx, rx) = mpsc::channel(LIVE_CAPACITY);
        let mut st = self.state.lock();
        let n = st.next_stream;
        st.next_stream += 1;
        st.streams.insert(
            n,
            StreamBuf {
                live: Some(tx),
                ..Default::default()
            },
        );
        (n, rx)
    }

    /// Writes a message on stream `n`. `last` marks the response that completes the stream.
    pub fn write(&self, n: u32, msg: &Message, last: bool) {
        let mut data = BytesMut::new();
        msg.write(&mut data);
        self.write_data(n, &data, last);
    }

    /// Writes a priming event (id, empty data) so the client can resume from the start.
    pub fn prime(&self, n: u32) {
        self.write_data(n, b"", false);
    }

    fn write_data(&self, n: u32, data: &[u8], last: bool) {
        let mut st = self.state.lock();
        let legacy = self.legacy;
        let cap = self.resume_buffer;
        let Some(s) = st.streams.get_mut(&n) else { return };
        let seq = s.next_seq;
        s.next_seq += 1;
        let mut frame = BytesMut::with_capacity(data.len() + 40);
        if legacy {
            sse::write_event(&mut frame, None, Some("message"), data);
        } else {
            let id = format!("{n}-{seq}");
            sse::write_event(&mut frame, Some(&id), None, data);
        }
        let frame = frame.freeze();
        if !legacy {
            s.events.push_back((seq, frame.clone()));
            while s.events.len() > cap {
                s.events.pop_front();
            }
        }
        if let Some(live) = &s.live {
            match live.try_send(frame) {
                Ok(()) => s.delivered = Some(seq),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // The client is not reading: drop the connection; it can resume.
                    tracing::debug!(stream = n, "SSE client too slow; closing its connection (resumable).");
                    s.live = None;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => s.live = None,
            }
        }
        if last {
            s.done = true;
            s.live = None;
            if n != 0 && s.events.is_empty() {
                st.streams.remove(&n);
            }
        }
    }

    /// Attaches a GET connection to stream 0 (replacing any previous one) and queues every
    /// event it has not delivered yet.
    pub fn attach_general(&self) -> Live {
        let (tx, rx) = mpsc::channel(LIVE_CAPACITY);
        let mut st = self.state.lock();
        let s = st.streams.entry(0).or_default();
        for (seq, frame) in &s.events {
            if s.delivered.is_none_or(|d| *seq > d) {
                let _ = tx.try_send(frame.clone());
            }
        }
        if let Some((seq, _)) = s.events.back() {
            s.delivered = Some(*seq);
        }
        s.live = Some(tx);
        rx
    }

    /// Resumes the stream named by a `Last-Event-ID`: replays what followed it and attaches
    /// the connection if the stream is still open. `None` when the id is unknown here.
    pub fn resume(&self, last_event_id: &str) -> Option<Live> {
        let (n, seq) = last_event_id.split_once('-')?;
        let (n, seq): (u32, u64) = (n.parse().ok()?, seq.parse().ok()?);
        let (tx, rx) = mpsc::channel(LIVE_CAPACITY.max(self.resume_buffer + 1));
        let mut st = self.state.lock();
        let s = st.streams.get_mut(&n)?;
        for (s_seq, frame) in &s.events {
            if *s_seq > seq {
                let _ = tx.try_send(frame.clone());
            }
        }
        if let Some((last, _)) = s.events.back() {
            s.delivered = Some(*last);
        }
        if !s.done {
            s.live = Some(tx);
        }
        Some(rx)
    }

    /// Forgets finished POST streams whose events were all delivered long ago: called when
    /// a new POST stream opens so buffers stay bounded.
    pub fn prune(&self, keep: usize) {
        let mut st = self.state.lock();
        let mut done: Vec<u32> = st
            .streams
            .iter()
            .filter(|(n, s)| **n != 0 && s.done)
            .map(|(n, _)| *n)
            .collect();
        if done.len() > keep {
            done.sort_unstable();
            for n in &done[..done.len() - keep] {
                st.streams.remove(n);
            }
        }
    }

    /// Ends every stream (session closed).
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        for s in st.streams.values_mut() {
            s.live = None;
        }
    }

    /// Is stream 0 attached to a live connection?
    pub fn general_attached(&self) -> bool {
        self.state
            .lock()
            .streams
            .get(&0)
            .is_some_and(|s| s.live.as_ref().is_some_and(|l| !l.is_closed()))
    }
}

/// The session's [`Outbound`]: stream 0.
pub struct GeneralStream(pub Arc<SessionStreams>);

impl Outbound for GeneralStream {
    fn send(&self, msg: Message) -> bool {
        if self.0.state.lock().closed {
            return false;
        }
        self.0.write(0, &msg, false);
        true
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_proto::RawJson;

    fn note(i: u64) -> Message {
        Message::notification(
            "notifications/message",
            Some(RawJson::from_value(&serde_json::json!({ "i": i }))),
        )
    }

    #[test]
    fn general_stream_buffers_until_attached_then_resumes() {
        let s = SessionStreams::new(8, false);
        let out = GeneralStream(s.clone());
        out.send(note(1));
        let mut rx = s.attach_general();
        let first = rx.try_recv().unwrap();
        assert!(std::str::from_utf8(&first).unwrap().starts_with("id: 0-0\n"));
        out.send(note(2));
        out.send(note(3));
        drop(rx);
        out.send(note(4));
        // Resume after 0-1: replays 0-2 and 0-3.
        let mut rx = s.resume("0-1").unwrap();
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("id: 0-2\n") && got[1].starts_with("id: 0-3\n"));
        assert!(s.resume("9-0").is_none());
    }

    #[test]
    fn post_stream_completes_and_replays() {
        let s = SessionStreams::new(8, false);
        let (n, rx) = s.open_post_stream();
        drop(rx);
        s.write(n, &note(1), false);
        s.write(
            n,
            &Message::response(RawJson::from_static("1"), RawJson::from_static("{}")),
            true,
        );
        let mut rx = s.resume(&format!("{n}-0")).unwrap();
        let frame = rx.try_recv().unwrap();
        assert!(std::str::from_utf8(&frame).unwrap().contains("\"result\""));
        assert!(rx.try_recv().is_err());
    }
}
