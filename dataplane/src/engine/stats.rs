//! Reception statistics of one incoming layer (RFC 3550 §6.4.1, A.3) for
//! the receiver reports the SFU sends to publishers, and gap detection for
//! upstream NACKs.

/// Sequence tracking of one incoming stream.
#[derive(Debug, Clone, Default)]
pub struct SeqStats {
    started: bool,
    base: u32,
    /// Extended highest sequence number (cycles << 16 | seq).
    pub ext_highest: u32,
    /// Packets received.
    pub received: u64,
    expected_prior: u32,
    received_prior: u64,
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
    /// Older than the highest (a late or retransmitted packet).
    Late,
}

impl SeqStats {
    /// Records a packet.
    pub fn update(&mut self, seq: u16) -> SeqUpdate {
        self.received += 1;
        if !self.started {
            self.started = true;
            self.base = u32::from(seq);
            self.ext_highest = u32::from(seq);
            return SeqUpdate::InOrder;
        }
        let high = self.ext_highest as u16;
        let delta = seq.wrapping_sub(high);
        if delta == 0 || delta >= 0x8000 {
            return SeqUpdate::Late;
        }
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
}
