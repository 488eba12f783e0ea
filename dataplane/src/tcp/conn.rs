//! One ICE-TCP connection's state, without I/O: its receive buffer, its
//! bounded send queue, and the rules that close it.
//!
//! A connection is *pending* from accept until the worker answers one of its
//! Binding requests with a success response (the control plane checked the
//! request's MESSAGE-INTEGRITY first), then *answered*. Pending connections
//! count against their source's cap and must be answered within
//! [`Limits::answer_within`]; every connection closes when its peer sends
//! nothing for [`Limits::idle`] (a browser's consent checks come every few
//! seconds) or its send queue stays non-empty for [`Limits::stalled`] (a
//! reader that does not keep up).

use super::route::{NoRoute, is_binding_success, route};
use std::time::{Duration, Instant};
use switchyard_wire::framing::{self, PREFIX_LEN};

/// The bounds every connection lives within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest packet accepted (a larger length prefix closes the connection).
    pub max_packet: usize,
    /// Receive buffer per connection (at least two prefixed packets).
    pub recv_buffer: usize,
    /// Send queue per answered connection, bytes; packets that do not fit
    /// are dropped and counted.
    pub send_queue: usize,
    /// A connection must be answered this soon after accept.
    pub answer_within: Duration,
    /// Closed after this long without a byte from the peer.
    pub idle: Duration,
    /// Closed when its send queue has not emptied for this long.
    pub stalled: Duration,
    /// Open connections on the host.
    pub max_connections: usize,
    /// Pending connections per source (an IPv4 address or IPv6 /64).
    pub max_pending_per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet: crate::engine::MAX_DATAGRAM,
            recv_buffer: 16 << 10,
            send_queue: 64 << 10,
            answer_within: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            stalled: Duration::from_secs(10),
            max_connections: 2048,
            max_pending_per_source: 32,
        }
    }
}

/// Why a connection was closed (or refused). Each has a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Refused at accept: the host's connection cap was reached.
    ConnectionCap = 0,
    /// Refused at accept: its source had too many pending connections.
    SourceCap = 1,
    /// Its first packet was not a Binding request naming a worker.
    NotIce = 2,
    /// A length prefix above the largest packet.
    FrameTooLong = 3,
    /// No Binding success response came within the answer deadline.
    Unanswered = 4,
    /// Nothing received for the idle timeout.
    Idle = 5,
    /// Its send queue did not empty for the stall timeout.
    StalledReader = 6,
    /// The peer closed or reset it.
    PeerClosed = 7,
    /// A socket error.
    Error = 8,
}

impl CloseReason {
    /// Every reason, in index order.
    pub const ALL: [CloseReason; 9] = [
        CloseReason::ConnectionCap,
        CloseReason::SourceCap,
        CloseReason::NotIce,
        CloseReason::FrameTooLong,
        CloseReason::Unanswered,
        CloseReason::Idle,
        CloseReason::StalledReader,
        CloseReason::PeerClosed,
        CloseReason::Error,
    ];

    /// Name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::ConnectionCap => "connection_cap",
            CloseReason::SourceCap => "source_cap",
            CloseReason::NotIce => "not_ice",
            CloseReason::FrameTooLong => "frame_too_long",
            CloseReason::Unanswered => "unanswered",
            CloseReason::Idle => "idle",
            CloseReason::StalledReader => "stalled_reader",
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::Error => "error",
        }
    }
}

/// What to do with a packet the peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// The connection's first packet: link it to this worker, then send.
    Link(usize),
    /// Send it to the connection's worker.
    Forward,
}

/// The timers and phase of a connection.
#[derive(Debug, Clone)]
pub struct ConnState {
    accepted: Instant,
    last_in: Instant,
    worker: Option<usize>,
    answered: bool,
    queued_since: Option<Instant>,
}

impl ConnState {
    /// A connection accepted at `now`.
    pub fn new(now: Instant) -> ConnState {
        ConnState {
            accepted: now,
            last_in: now,
            worker: None,
            answered: false,
            queued_since: None,
        }
    }

    /// Bytes arrived from the peer.
    pub fn received(&mut self, now: Instant) {
        self.last_in = now;
    }

    /// A whole packet from the peer.
    pub fn on_packet(&mut self, packet: &[u8]) -> Result<Inbound, CloseReason> {
        if self.worker.is_some() {
            return Ok(Inbound::Forward);
        }
        match route(packet) {
            Ok(w) => {
                self.worker = Some(w);
                Ok(Inbound::Link(w))
            }
            Err(NoRoute::NotBindingRequest | NoRoute::BadUsername) => Err(CloseReason::NotIce),
        }
    }

    /// A packet from the worker, for the peer; true when it made the
    /// connection answered.
    pub fn on_reply(&mut self, packet: &[u8]) -> bool {
        if !self.answered && is_binding_success(packet) {
            self.answered = true;
            return true;
        }
        false
    }

    /// Whether the worker has answered it.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// The send queue's state after a write attempt.
    pub fn queue_is(&mut self, now: Instant, empty: bool) {
        if empty {
            self.queued_since = None;
        } else if self.queued_since.is_none() {
            self.queued_since = Some(now);
        }
    }

    /// Why it must close now, if it must.
    pub fn expired(&self, now: Instant, limits: &Limits) -> Option<CloseReason> {
        let since = |t: Instant| now.saturating_duration_since(t);
        if !self.answered && since(self.accepted) >= limits.answer_within {
            Some(CloseReason::Unanswered)
        } else if since(self.last_in) >= limits.idle {
            Some(CloseReason::Idle)
        } else if self
            .queued_since
            .is_some_and(|t| since(t) >= limits.stalled)
        {
            Some(CloseReason::StalledReader)
        } else {
            None
        }
    }
}

/// Bytes read from the peer and not yet split into packets.
pub struct RecvBuffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    max_packet: usize,
}

impl RecvBuffer {
    /// A buffer of `limits.recv_buffer` bytes (at least two largest frames).
    pub fn new(limits: &Limits) -> RecvBuffer {
        let len = limits.recv_buffer.max(2 * (PREFIX_LEN + limits.max_packet));
        RecvBuffer {
            buf: vec![0; len].into_boxed_slice(),
            start: 0,
            end: 0,
            max_packet: limits.max_packet,
        }
    }

    /// Free space to read into (never empty: a partial frame is at most
    /// half the buffer, and is moved to the front first).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 && self.buf.len() - self.end < PREFIX_LEN + self.max_packet {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`RecvBuffer::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next whole packet, `Ok(None)` until one is there.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, CloseReason> {
        match framing::next_frame(&self.buf[self.start..self.end], self.max_packet) {
            Err(_) => Err(CloseReason::FrameTooLong),
            Ok(None) => {
                if self.start == self.end {
                    (self.start, self.end) = (0, 0);
                }
                Ok(None)
            }
            Ok(Some(f)) => {
                let at = self.start + PREFIX_LEN;
                let len = f.packet.len();
                self.start += f.consumed;
                Ok(Some(&self.buf[at..at + len]))
            }
        }
    }
}

/// Prefixed packets waiting for the peer to read them: a ring of fixed
/// size, allocated when the connection is linked.
pub struct SendQueue {
    buf: Box<[u8]>,
    head: usize,
    len: usize,
}

impl SendQueue {
    /// A queue of `bytes`.
    pub fn new(bytes: usize) -> SendQueue {
        SendQueue {
            buf: vec![0; bytes.max(PREFIX_LEN + 1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// Queues a packet with its prefix; false (nothing queued) when it does
    /// not fit whole.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        let need = PREFIX_LEN + packet.len();
        if packet.len() > usize::from(u16::MAX) || self.buf.len() - self.len < need {
            return false;
        }
        let prefix = (packet.len() as u16).to_be_bytes();
        self.put(&prefix);
        self.put(packet);
        true
    }

    fn put(&mut self, bytes: &[u8]) {
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        let first = bytes.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&bytes[..first]);
        self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        self.len += bytes.len();
    }

    /// The queued bytes that are contiguous from the head.
    pub fn front(&self) -> &[u8] {
        let end = (self.head + self.len).min(self.buf.len());
        &self.buf[self.head..end]
    }

    /// `n` bytes of [`SendQueue::front`] were written.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % self.buf.len();
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn packets_split_across_reads_come_out_whole() {
        let mut r = RecvBuffer::new(&limits());
        let stream: Vec<u8> = [&[0u8, 3][..], b"abc", &[0, 1], b"z", &[0, 2], b"q"].concat();
        let mut got = Vec::new();
        for chunk in stream.chunks(2) {
            r.spare()[..chunk.len()].copy_from_slice(chunk);
            r.filled(chunk.len());
            while let Some(p) = r.next_packet().unwrap() {
                got.push(p.to_vec());
            }
        }
        assert_eq!(got, vec![b"abc".to_vec(), b"z".to_vec()]);
        // a prefix above the largest packet closes at once
        let mut r = RecvBuffer::new(&limits());
        r.spare()[..2].copy_from_slice(&[0xff, 0xff]);
        r.filled(2);
        assert_eq!(r.next_packet(), Err(CloseReason::FrameTooLong));
    }

    #[test]
    fn a_long_stream_of_largest_packets_never_runs_out_of_room() {
        let l = limits();
        let mut r = RecvBuffer::new(&l);
        let frame: Vec<u8> = [
            &(l.max_packet as u16).to_be_bytes()[..],
            &vec![7; l.max_packet],
        ]
        .concat();
        let stream: Vec<u8> = frame.repeat(40);
        let (mut at, mut packets) = (0, 0);
        while at < stream.len() {
            let spare = r.spare();
            assert!(!spare.is_empty());
            let n = spare.len().min(stream.len() - at).min(999);
            spare[..n].copy_from_slice(&stream[at..at + n]);
            r.filled(n);
            at += n;
            while let Some(p) = r.next_packet().unwrap() {
                assert_eq!(p.len(), l.max_packet);
                packets += 1;
            }
        }
        assert_eq!(packets, 40);
    }

    #[test]
    fn the_send_queue_keeps_packets_whole_and_wraps() {
        let mut q = SendQueue::new(10);
        assert!(q.push(b"abcd"));
        assert!(!q.push(b"efgh"), "6 + 6 > 10: refused whole");
        assert_eq!(q.front(), &[0, 4, b'a', b'b', b'c', b'd']);
        q.consume(4);
        assert!(q.push(b"efgh"));
        let mut out = Vec::new();
        while !q.is_empty() {
            let f = q.front().to_vec();
            out.extend_from_slice(&f[..f.len().min(3)]);
            q.consume(f.len().min(3));
        }
        assert_eq!(out, [b'c', b'd', 0, 4, b'e', b'f', b'g', b'h']);
    }

    #[test]
    fn a_connection_must_be_answered_then_keep_talking_and_reading() {
        let l = limits();
        let t = Instant::now();
        let mut c = ConnState::new(t);
        assert_eq!(c.on_packet(b"GET / HTTP/1.1\r\n"), Err(CloseReason::NotIce));
        assert_eq!(
            c.expired(t + l.answer_within, &l),
            Some(CloseReason::Unanswered)
        );
        let mut c = ConnState::new(t);
        c.on_reply(b"not stun");
        assert!(!c.answered());
        let mut success = [0u8; 64];
        let n = {
            let mut w =
                switchyard_wire::stun::StunWriter::new(&mut success, 0x0101, &[1; 12]).unwrap();
            w.add_fingerprint().unwrap();
            w.finish()
        };
        assert!(c.on_reply(&success[..n]));
        assert_eq!(c.expired(t + l.answer_within, &l), None);
        assert_eq!(c.expired(t + l.idle, &l), Some(CloseReason::Idle));
        c.received(t + l.idle);
        c.queue_is(t + l.idle, false);
        assert_eq!(c.expired(t + l.idle + l.stalled / 2, &l), None);
        assert_eq!(
            c.expired(t + l.idle + l.stalled, &l),
            Some(CloseReason::StalledReader)
        );
        c.queue_is(t + l.idle + l.stalled, true);
        assert_eq!(c.expired(t + l.idle + l.stalled, &l), None);
    }
}
