//! Packet index estimation (RFC 3711 §3.3.1 and Appendix A).
//!
//! The 48-bit SRTP index is `ROC · 2^16 + SEQ`. A receiver keeps the highest
//! sequence number `s_l` and its rollover counter `ROC`, and guesses the
//! ROC of a new packet as the one that puts it closest to `s_l`.

/// Rollover state of one RTP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RolloverState {
    /// Rollover counter of `s_l`.
    pub roc: u32,
    /// Highest sequence number seen (`None` before the first packet).
    pub s_l: Option<u16>,
}

impl RolloverState {
    /// Starts a stream whose first packets use this ROC (normally 0).
    pub fn with_roc(roc: u32) -> Self {
        RolloverState { roc, s_l: None }
    }

    /// The estimated index of a packet with this sequence number
    /// (RFC 3711 Appendix A). `None` when the estimate would precede index 0.
    pub fn estimate(&self, seq: u16) -> Option<u64> {
        let Some(s_l) = self.s_l else {
            return Some(u64::from(self.roc) << 16 | u64::from(seq));
        };
        let v: i64 = if s_l < 0x8000 {
            if i64::from(seq) - i64::from(s_l) > 0x8000 {
                i64::from(self.roc) - 1
            } else {
                i64::from(self.roc)
            }
        } else if i64::from(s_l) - 0x8000 > i64::from(seq) {
            i64::from(self.roc) + 1
        } else {
            i64::from(self.roc)
        };
        if !(0..=i64::from(u32::MAX)).contains(&v) {
            return None;
        }
        Some((v as u64) << 16 | u64::from(seq))
    }

    /// Records an authenticated packet's index (RFC 3711 §3.3.1 update rule).
    pub fn update(&mut self, index: u64) {
        let (roc, seq) = ((index >> 16) as u32, index as u16);
        match self.s_l {
            None => {
                self.roc = roc;
                self.s_l = Some(seq);
            }
            Some(s_l) => {
                if roc > self.roc || (roc == self.roc && seq > s_l) {
                    self.roc = roc;
                    self.s_l = Some(seq);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_over_and_back() {
        let mut s = RolloverState::default();
        assert_eq!(s.estimate(65534), Some(65534));
        s.update(65534);
        // forward across the wrap: ROC + 1
        assert_eq!(s.estimate(2), Some(0x1_0002));
        s.update(0x1_0002);
        assert_eq!(s.roc, 1);
        // a late packet from before the wrap: ROC − 1
        assert_eq!(s.estimate(65535), Some(0xffff));
        // does not move s_l back
        s.update(0xffff);
        assert_eq!((s.roc, s.s_l), (1, Some(2)));
    }

    #[test]
    fn no_negative_roc() {
        let mut s = RolloverState::default();
        s.update(5);
        assert_eq!(s.estimate(60000), None);
        assert_eq!(RolloverState::with_roc(7).estimate(1), Some(7 << 16 | 1));
    }
}
