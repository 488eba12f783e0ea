//! What was sent with each transport-wide sequence number, so that
//! transport-cc feedback can be matched to send times and sizes, and what
//! feedback said of it so far. A fixed ring: recording costs no allocation.
//!
//! Receivers' feedback is not always disjoint: libwebrtc starts its next
//! report at a late packet's sequence number when one arrives after its
//! range was reported, so packets already reported come again — as
//! "not received" once it has forgotten them. Counting every report as news
//! made a loaded but loss-free path look 20–50 % lossy. A packet's first
//! report counts; a later "received" for one first reported lost undoes
//! that loss; everything else repeats what is known.

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
    fate: Fate,
}

/// What feedback has said of a packet so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Unreported,
    Lost,
    Received,
}

/// What one report of a packet adds to what was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Its first report.
    First(Sent),
    /// Received after all, though first reported lost.
    LateArrival(Sent),
    /// Nothing new (a repeat), or a packet no longer remembered.
    Known,
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
                    fate: Fate::Unreported,
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
            fate: Fate::Unreported,
        };
    }

    /// Feedback says packet `seq` was `received` (or not): what that adds.
    pub fn report(&mut self, seq: u16, received: bool) -> Report {
        let Some(sent) = self.get(seq) else {
            return Report::Known;
        };
        let slot = &mut self.slots[usize::from(seq) % HISTORY];
        let (fate, report) = match (slot.fate, received) {
            (Fate::Unreported, true) => (Fate::Received, Report::First(sent)),
            (Fate::Unreported, false) => (Fate::Lost, Report::First(sent)),
            (Fate::Lost, true) => (Fate::Received, Report::LateArrival(sent)),
            (fate, _) => (fate, Report::Known),
        };
        slot.fate = fate;
        report
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

    #[test]
    fn only_the_first_report_and_a_late_arrival_are_news() {
        let t = Instant::now();
        let mut h = SendHistory::default();
        h.record(7, t, 1000, false);
        h.record(8, t, 1000, false);
        assert!(matches!(h.report(7, true), Report::First(_)));
        assert_eq!(h.report(7, false), Report::Known, "forgotten, not lost");
        assert_eq!(h.report(7, true), Report::Known);
        assert!(matches!(h.report(8, false), Report::First(_)));
        assert_eq!(h.report(8, false), Report::Known);
        assert!(matches!(h.report(8, true), Report::LateArrival(_)));
        assert_eq!(h.report(8, true), Report::Known);
        assert_eq!(h.report(9, true), Report::Known, "never sent");
        h.record(7, t, 1000, false);
        assert!(matches!(h.report(7, true), Report::First(_)), "a new lap");
    }
}
