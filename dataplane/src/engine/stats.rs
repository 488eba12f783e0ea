//! Reception statistics of one incoming layer (RFC 3550 §6.4.1, A.3) for
//! the receiver reports the SFU sends to publishers, gap detection for
//! upstream NACKs, and duplicates: a packet of the last [`WINDOW`] already
//! received comes again when a retransmission follows a late original, or
//! when a sender pads with old packets (libwebrtc probes its own estimate
//! by resending recent packets on the RTX stream). Forwarded, a duplicate
//! costs the subscriber's bandwidth for nothing and is dropped by its SRTP
//! replay check, which its transport-wide feedback then reports as lost.

/// How many sequence numbers below the highest are remembered as
/// received or not (about 4 s of a 720p layer); older ones are stale.
pub const WINDOW: u16 = 1024;

/// Sequence tracking of one incoming stream.
#[derive(Debug, Clone, Default)]
pub struct SeqStats {
    started: bool,
    base: u32,
    /// Extended highest sequence number (cycles << 16 | seq).
    pub ext_highest: u32,
    /// Packets received (duplicates and stale ones not counted).
    pub received: u64,
    expected_prior: u32,
    received_prior: u64,
    /// Bit `seq % WINDOW`: that packet of the last [`WINDOW`] arrived.
    seen: [u64; WINDOW as usize / 64],
}

/// What a new sequence number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqUpdate {
    /// The next expected packet, or the first.
    InOrder,
    /// Newer than expected: `missing` packets were skipped just before it.
    Gap {
        /// First missing sequence number.
        first: u16,
        /// How many are missing.
        missing: u16,
    },
    /// Older than the highest and not received before (a late or
    /// retransmitted packet).
    Late,
    /// Received before (within [`WINDOW`]), or older than the window: not
    /// counted, nothing to forward.
    Duplicate,
}

impl SeqStats {
    /// Records a packet.
    pub fn update(&mut self, seq: u16) -> SeqUpdate {
        if !self.started {
            self.started = true;
            self.base = u32::from(seq);
            self.ext_highest = u32::from(seq);
            self.mark(seq);
            self.received += 1;
            return SeqUpdate::InOrder;
        }
        let high = self.ext_highest as u16;
        let delta = seq.wrapping_sub(high);
        if delta == 0 || delta >= 0x8000 {
            if high.wrapping_sub(seq) >= WINDOW || self.was_seen(seq) {
                return SeqUpdate::Duplicate;
            }
            self.mark(seq);
            self.received += 1;
            return SeqUpdate::Late;
        }
        // the numbers skipped are not received (yet); a jump past the
        // whole window forgets it all
        if delta > WINDOW {
            self.seen = Default::default();
        } else {
            for k in 1..delta {
                self.unmark(high.wrapping_add(k));
            }
        }
        self.mark(seq);
        self.received += 1;
        let mut cycles = self.ext_highest & 0xffff_0000;
        if seq < high {
            cycles = cycles.wrapping_add(0x1_0000);
        }
        self.ext_highest = cycles | u32::from(seq);
        if delta == 1 {
            SeqUpdate::InOrder
        } else {
            SeqUpdate::Gap {
                first: high.wrapping_add(1),
                missing: delta - 1,
            }
        }
    }

    fn slot(seq: u16) -> (usize, u64) {
        let i = seq % WINDOW;
        (usize::from(i / 64), 1 << (i % 64))
    }

    fn mark(&mut self, seq: u16) {
        let (w, bit) = Self::slot(seq);
        self.seen[w] |= bit;
    }

    fn unmark(&mut self, seq: u16) {
        let (w, bit) = Self::slot(seq);
        self.seen[w] &= !bit;
    }

    fn was_seen(&self, seq: u16) -> bool {
        let (w, bit) = Self::slot(seq);
        self.seen[w] & bit != 0
    }

    /// Fraction lost since the last call (1/256) and cumulative loss, as a
    /// receiver report carries them.
    pub fn report(&mut self) -> (u8, i32) {
        let expected = self.ext_highest.wrapping_sub(self.base).wrapping_add(1);
        let lost = i64::from(expected) - self.received as i64;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - received_interval as i64;
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        (fraction, lost.clamp(-0x80_0000, 0x7f_ffff) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_wraps_and_loss() {
        let mut s = SeqStats::default();
        assert_eq!(s.update(65533), SeqUpdate::InOrder);
        assert_eq!(s.update(65534), SeqUpdate::InOrder);
        assert_eq!(
            s.update(1),
            SeqUpdate::Gap {
                first: 65535,
                missing: 2
            }
        );
        assert_eq!(s.ext_highest, 0x1_0001);
        assert_eq!(s.update(0), SeqUpdate::Late);
        // expected 5 (65533..=1), received 4
        let (fraction, lost) = s.report();
        assert_eq!(lost, 1);
        assert_eq!(fraction, (256 / 5) as u8);
        assert_eq!(s.report(), (0, 1));
    }

    #[test]
    fn a_packet_received_twice_is_a_duplicate_and_not_counted() {
        let mut s = SeqStats::default();
        for seq in [100, 101, 103] {
            s.update(seq);
        }
        // the retransmission of the missing one is late; it again, and
        // one received in order, are duplicates (RTX payload padding)
        assert_eq!(s.update(102), SeqUpdate::Late);
        assert_eq!(s.update(102), SeqUpdate::Duplicate);
        assert_eq!(s.update(101), SeqUpdate::Duplicate);
        assert_eq!(s.update(103), SeqUpdate::Duplicate);
        assert_eq!(s.received, 4);
        assert_eq!(s.report(), (0, 0), "duplicates hide no loss");
    }

    #[test]
    fn the_window_slides_and_wraps() {
        let mut s = SeqStats::default();
        s.update(65_000);
        // a gap across the wrap: the skipped ones may still come
        assert!(matches!(s.update(10), SeqUpdate::Gap { missing: 545, .. }));
        assert_eq!(s.update(65_300), SeqUpdate::Late);
        assert_eq!(s.update(65_300), SeqUpdate::Duplicate);
        assert_eq!(s.update(65_000), SeqUpdate::Duplicate);
        // older than the window: stale
        s.update(1_100);
        assert_eq!(s.update(65_400), SeqUpdate::Duplicate);
        // a slot taken by a newer lap: the old packet is stale, not seen
        s.update(1_100 + WINDOW);
        assert_eq!(s.update(1_100), SeqUpdate::Duplicate, "stale");
        assert_eq!(s.update(1_101), SeqUpdate::Late, "just inside");
        assert_eq!(s.update(1_100 + WINDOW - 1), SeqUpdate::Late);
    }

    #[test]
    fn a_jump_past_the_window_forgets_it() {
        let mut s = SeqStats::default();
        s.update(0);
        s.update(1);
        s.update(5_000);
        // 4_999 was skipped, not seen: late, once
        assert_eq!(s.update(4_999), SeqUpdate::Late);
        assert_eq!(s.update(4_999), SeqUpdate::Duplicate);
    }
}
