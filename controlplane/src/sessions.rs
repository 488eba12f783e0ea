//! Which signalling connection speaks for which participant, and what waits
//! for a participant whose connection dropped.
//!
//! A participant whose WebSocket closes without `leave` is *detached*, not
//! gone: its media keeps flowing, what the server sends it is kept (up to
//! [`BACKLOG`] frames), and for the resume grace a new connection can carry
//! on with `resume` and its token: it receives `resumed` and then the
//! backlog, in order. A detached participant not resumed in time, or whose
//! backlog overflows, is dropped by [`Sessions::expired`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Frames kept for a detached participant.
pub const BACKLOG: usize = 512;
/// Close code: the client does not read what the server sends.
pub const CLOSE_NOT_READING: u16 = 4008;
/// Close code: another connection resumed this participant.
pub const CLOSE_REPLACED: u16 = 4009;

/// A message for a session's writer: a frame, or a close frame with its
/// code and reason (after the frames queued before it).
pub enum ToSession {
    /// A text frame.
    Frame(String),
    /// A close frame.
    Close(u16, &'static str),
}

/// The normal close, after `leave` or an error that ends the session.
pub const BYE: ToSession = ToSession::Close(1000, "bye");

/// The handle on one connection's writer.
#[derive(Clone)]
pub struct SessionHandle {
    /// Frames to send.
    pub tx: mpsc::Sender<ToSession>,
    /// Set to a close code when the connection must end at once.
    pub kill: tokio::sync::watch::Sender<Option<u16>>,
    /// Tells this connection from others of the same participant.
    pub serial: u64,
}

impl SessionHandle {
    /// Queues a frame; a full queue means the client is not reading.
    pub fn deliver(&self, m: ToSession) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(m) {
            let _ = self.kill.send(Some(CLOSE_NOT_READING));
        }
    }
}

enum Slot {
    Attached(SessionHandle),
    Detached {
        until: Instant,
        backlog: VecDeque<String>,
        overflowed: bool,
    },
}

/// Every participant's connection, or what waits for it.
pub struct Sessions {
    slots: HashMap<u64, Slot>,
    grace: Duration,
}

impl Sessions {
    /// Detached participants wait `grace` for a `resume`.
    pub fn new(grace: Duration) -> Sessions {
        Sessions {
            slots: HashMap::new(),
            grace,
        }
    }

    /// A participant joined on `handle`.
    pub fn attach(&mut self, id: u64, handle: SessionHandle) {
        self.slots.insert(id, Slot::Attached(handle));
    }

    /// `handle` resumes participant `id`: an attached connection it
    /// replaces is closed (4009); `resumed` is queued first, then the
    /// backlog.
    pub fn resume(&mut self, id: u64, handle: SessionHandle, resumed: String) {
        handle.deliver(ToSession::Frame(resumed));
        match self.slots.insert(id, Slot::Attached(handle.clone())) {
            Some(Slot::Attached(old)) if old.serial != handle.serial => {
                old.deliver(ToSession::Close(CLOSE_REPLACED, "resumed elsewhere"));
            }
            Some(Slot::Detached { backlog, .. }) => {
                for frame in backlog {
                    handle.deliver(ToSession::Frame(frame));
                }
            }
            _ => {}
        }
    }

    /// A frame for participant `id`.
    pub fn deliver(&mut self, id: u64, frame: String) {
        match self.slots.get_mut(&id) {
            Some(Slot::Attached(h)) => h.deliver(ToSession::Frame(frame)),
            Some(Slot::Detached {
                backlog,
                overflowed,
                ..
            }) => {
                if backlog.len() < BACKLOG {
                    backlog.push_back(frame);
                } else {
                    *overflowed = true;
                }
            }
            None => {}
        }
    }

    /// The participant is gone (left, or its transport failed): close its
    /// connection, forget it.
    pub fn close(&mut self, id: u64) {
        if let Some(Slot::Attached(h)) = self.slots.remove(&id) {
            h.deliver(BYE);
        }
    }

    /// Connection `serial` of participant `id` ended without `leave`: the
    /// participant waits for a `resume` (unless another connection took it
    /// over already).
    pub fn detach(&mut self, id: u64, serial: u64, now: Instant) {
        if self.is_attached(id, serial)
            && let Some(slot) = self.slots.get_mut(&id)
        {
            *slot = Slot::Detached {
                until: now + self.grace,
                backlog: VecDeque::new(),
                overflowed: false,
            };
        }
    }

    /// A participant carried over from before a control-plane restart: it
    /// has no connection yet and waits for its `resume` like a dropped one.
    pub fn waiting(&mut self, id: u64, now: Instant) {
        self.slots.insert(
            id,
            Slot::Detached {
                until: now + self.grace,
                backlog: VecDeque::new(),
                overflowed: false,
            },
        );
    }

    /// Whether connection `serial` is the one speaking for `id`.
    pub fn is_attached(&self, id: u64, serial: u64) -> bool {
        matches!(self.slots.get(&id), Some(Slot::Attached(h)) if h.serial == serial)
    }

    /// Forgets participant `id` (nothing to send it).
    pub fn remove(&mut self, id: u64) {
        self.slots.remove(&id);
    }

    /// Detached participants whose grace ran out or whose backlog
    /// overflowed: forgotten here, to be disconnected by the caller.
    pub fn expired(&mut self, now: Instant) -> Vec<u64> {
        let gone: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                matches!(s, Slot::Detached { until, overflowed, .. } if *overflowed || *until <= now)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in &gone {
            self.slots.remove(id);
        }
        gone
    }

    /// Every detached participant, forgotten here (nobody can resume any
    /// more: the server is shutting down).
    pub fn drop_detached(&mut self) -> Vec<u64> {
        let gone: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Detached { .. }))
            .map(|(&id, _)| id)
            .collect();
        for id in &gone {
            self.slots.remove(id);
        }
        gone
    }

    /// The handles of every attached connection.
    pub fn attached(&self) -> impl Iterator<Item = &SessionHandle> {
        self.slots.values().filter_map(|s| match s {
            Slot::Attached(h) => Some(h),
            Slot::Detached { .. } => None,
        })
    }

    /// Participants waiting for a `resume`.
    pub fn detached(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::Detached { .. }))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(serial: u64) -> (SessionHandle, mpsc::Receiver<ToSession>) {
        let (tx, rx) = mpsc::channel(8);
        let (kill, _) = tokio::sync::watch::channel(None);
        (SessionHandle { tx, kill, serial }, rx)
    }

    fn frames(rx: &mut mpsc::Receiver<ToSession>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(match m {
                ToSession::Frame(f) => f,
                ToSession::Close(code, _) => format!("close {code}"),
            });
        }
        out
    }

    #[test]
    fn a_dropped_connection_resumes_with_what_it_missed() {
        let t = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(30));
        let (a, mut rx_a) = handle(1);
        s.attach(7, a);
        s.deliver(7, "one".into());
        s.detach(7, 1, t);
        s.deliver(7, "two".into());
        s.deliver(7, "three".into());
        assert_eq!(s.detached(), 1);
        let (b, mut rx_b) = handle(2);
        s.resume(7, b, "resumed".into());
        assert_eq!(frames(&mut rx_a), ["one"]);
        assert_eq!(frames(&mut rx_b), ["resumed", "two", "three"]);
        // the old connection's late close does not detach the new one
        s.detach(7, 1, t);
        assert_eq!(s.detached(), 0);
        assert!(s.expired(t + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn resuming_a_live_connection_closes_the_old_one() {
        let mut s = Sessions::new(Duration::from_secs(30));
        let (a, mut rx_a) = handle(1);
        s.attach(7, a);
        let (b, mut rx_b) = handle(2);
        s.resume(7, b, "resumed".into());
        assert_eq!(frames(&mut rx_a), ["close 4009"]);
        assert_eq!(frames(&mut rx_b), ["resumed"]);
    }

    #[test]
    fn grace_and_backlog_are_bounded() {
        let t = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(30));
        let (a, _rx) = handle(1);
        s.attach(1, a.clone());
        s.attach(2, SessionHandle { serial: 2, ..a });
        s.detach(1, 1, t);
        s.detach(2, 2, t);
        for i in 0..BACKLOG + 1 {
            s.deliver(2, format!("{i}"));
        }
        assert_eq!(s.expired(t + Duration::from_secs(1)), vec![2], "overflowed");
        assert!(s.expired(t + Duration::from_secs(29)).is_empty());
        assert_eq!(
            s.expired(t + Duration::from_secs(30)),
            vec![1],
            "grace over"
        );
        assert_eq!(s.detached(), 0);
    }
}
