//! What was sent with each transport-wide sequence number, so that
//! transport-cc feedback can be matched to send times and sizes. A fixed
//! ring: recording costs no allocation.

use std::time::Instant;

/// Packets remembered (feedback comes within a few hundred milliseconds;
/// 4096 packets is over a second at 3000 packets/s).
pub const HISTORY: usize = 4096;

#[derive(Clone, Copy)]
struct Slot {
    seq: u16,
    sent: Option<Instant>,
    size: u16,
    /// Sent to probe for bandwidth (padding), not media.
    probe: bool,
}

/// Send times by transport-wide sequence number.
pub struct SendHistory {
    slots: Box<[Slot; HISTORY]>,
}

impl Default for SendHistory {
    fn default() -> Self {
        SendHistory {
            slots: Box::new(
                [Slot {
                    seq: 0,
                    sent: None,
                    size: 0,
                    probe: false,
                }; HISTORY],
            ),
        }
    }
}

/// A sent packet found again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// When it left.
    pub at: Instant,
    /// Its size on the wire (bytes).
    pub size: u16,
    /// A probe rather than media.
    pub probe: bool,
}

impl SendHistory {
    /// Remembers a packet.
    pub fn record(&mut self, seq: u16, at: Instant, size: usize, probe: bool) {
        self.slots[usize::from(seq) % HISTORY] = Slot {
            seq,
            sent: Some(at),
            size: size.min(usize::from(u16::MAX)) as u16,
            probe,
        };
    }

    /// The packet sent with `seq`, if it is still remembered.
    pub fn get(&self, seq: u16) -> Option<Sent> {
        let s = &self.slots[usize::from(seq) % HISTORY];
        (s.seq == seq).then_some(())?;
        Some(Sent {
            at: s.sent?,
            size: s.size,
            probe: s.probe,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_lap() {
        let t = Instant::now();
        let mut h = SendHistory::default();
        assert_eq!(h.get(5), None);
        h.record(5, t, 1200, false);
        assert_eq!(h.get(5).map(|s| s.size), Some(1200));
        h.record(5 + HISTORY as u16, t, 100, true);
        assert_eq!(h.get(5), None, "overwritten by a newer lap");
        assert!(h.get(5 + HISTORY as u16).is_some_and(|s| s.probe));
    }
}
