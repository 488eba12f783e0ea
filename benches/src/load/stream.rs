//! What the generator's publishers put in their RTP payloads, and what its
//! subscribers learn from them: a 24-byte stamp (magic, stream id, sequence,
//! send time) after the codec header, and per-stream loss, reordering,
//! duplicates and one-way latency.

use hdrhistogram::Histogram;

/// Marks a generator payload.
pub const MAGIC: u32 = 0x5359_4c47; // "SYLG"
/// Bytes of the stamp.
pub const STAMP_LEN: usize = 24;

/// The stamp in each payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Which stream (publisher, kind, layer) — unique in a run.
    pub stream: u32,
    /// Counts up from 0 per stream.
    pub seq: u64,
    /// Send time, nanoseconds of the run's clock.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp into `buf` (at least [`STAMP_LEN`] bytes).
    pub fn write(&self, buf: &mut [u8]) {
        buf[..4].copy_from_slice(&MAGIC.to_be_bytes());
        buf[4..8].copy_from_slice(&self.stream.to_be_bytes());
        buf[8..16].copy_from_slice(&self.seq.to_be_bytes());
        buf[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a stamp, if `buf` starts with one.
    pub fn read(buf: &[u8]) -> Option<Stamp> {
        let b = buf.get(..STAMP_LEN)?;
        if b[..4] != MAGIC.to_be_bytes() {
            return None;
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Some(Stamp {
            stream: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

/// What one subscriber saw of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Highest sequence number seen.
    pub highest: Option<u64>,
    /// Packets received (duplicates excluded).
    pub received: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// Packets seen twice.
    pub duplicates: u64,
    /// Recent sequence numbers, for duplicate detection (a bitmap window).
    window: u128,
    /// Sequence number of the first packet (streams are joined mid-way).
    pub first: Option<u64>,
}

impl StreamStats {
    /// A packet with sequence number `seq` arrived.
    pub fn packet(&mut self, seq: u64) {
        let first = *self.first.get_or_insert(seq);
        if seq < first {
            self.first = Some(seq);
        }
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.window = 1;
                self.received = 1;
            }
            Some(h) if seq > h => {
                let shift = seq - h;
                self.window = if shift >= 128 {
                    0
                } else {
                    self.window << shift
                };
                self.window |= 1;
                self.highest = Some(seq);
                self.received += 1;
            }
            Some(h) => {
                let back = h - seq;
                if back < 128 && self.window & (1 << back) != 0 {
                    self.duplicates += 1;
                    return;
                }
                if back < 128 {
                    self.window |= 1 << back;
                }
                self.reordered += 1;
                self.received += 1;
            }
        }
    }

    /// Packets the publisher sent in the span seen that never arrived.
    pub fn lost(&self) -> u64 {
        match (self.first, self.highest) {
            (Some(f), Some(h)) => (h - f + 1).saturating_sub(self.received),
            _ => 0,
        }
    }
}

/// One-way latency in microseconds, 1 µs to 10 s at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_others_are_not_stamps() {
        let s = Stamp {
            stream: 7,
            seq: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut buf = [0u8; 40];
        s.write(&mut buf);
        assert_eq!(Stamp::read(&buf), Some(s));
        assert_eq!(Stamp::read(&buf[..20]), None);
        buf[0] ^= 1;
        assert_eq!(Stamp::read(&buf), None);
    }

    #[test]
    fn loss_reordering_and_duplicates() {
        let mut st = StreamStats::default();
        for seq in [10, 11, 13, 12, 12, 15, 14, 20] {
            st.packet(seq);
        }
        assert_eq!(st.received, 7);
        assert_eq!(st.duplicates, 1);
        assert_eq!(st.reordered, 2);
        assert_eq!(st.lost(), 11 - 7, "16..19 never came");
        // far behind the window: counted as reordered, not lost
        let mut st = StreamStats::default();
        st.packet(1000);
        st.packet(500);
        assert_eq!((st.received, st.lost()), (2, 499));
    }
}
