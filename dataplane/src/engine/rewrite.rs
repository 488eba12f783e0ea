//! Keeping an outgoing stream continuous while its source layer changes.
//!
//! A subscriber sees one SSRC whose sequence numbers, timestamps and (VP8)
//! picture ids / TL0PICIDX advance without jumps, although the packets come
//! from different simulcast layers over time. At a switch (always on a
//! keyframe of the new layer) the rewriter computes offsets so the first
//! packet of the new layer follows the highest value sent so far; after
//! that every field is `incoming + offset` (wrapping), which also holds for
//! reordered packets of the same layer. Packets of the new layer older than
//! the switch point are refused, since their numbers were already used.

use std::time::{Duration, Instant};

/// Rewritten header fields of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// VP8 picture id (15 bits), if the packet has one.
    pub picture_id: Option<u16>,
    /// VP8 TL0PICIDX, if the packet has one.
    pub tl0_pic_idx: Option<u8>,
}

/// Incoming header fields of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// VP8 picture id (7 or 15 bits).
    pub picture_id: Option<u16>,
    /// VP8 TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
}

/// `a` is newer than `b` in a wrapping 16-bit space.
fn newer16(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}
fn newer32(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}
fn newer15(a: u16, b: u16) -> bool {
    a != b && (a.wrapping_sub(b) & 0x7fff) < 0x4000
}
fn newer8(a: u8, b: u8) -> bool {
    a != b && a.wrapping_sub(b) < 0x80
}

/// The rewrite state of one outgoing stream.
#[derive(Debug, Clone)]
pub struct Rewriter {
    clock_rate: u32,
    started: bool,
    seq_offset: u16,
    ts_offset: u32,
    pid_offset: u16,
    tl0_offset: u8,
    /// First incoming sequence number of the current layer.
    switch_seq: u16,
    /// Refuse packets older than `switch_seq` (until the layer has moved
    /// far past it; after that the check would misfire at the wrap).
    guard: bool,
    high_seq: u16,
    high_ts: u32,
    high_pid: u16,
    high_tl0: u8,
    last_sent: Option<Instant>,
}

impl Rewriter {
    /// A rewriter for a stream with this RTP clock rate; `first_seq` is the
    /// sequence number the subscriber will see first.
    pub fn new(clock_rate: u32, first_seq: u16) -> Self {
        Rewriter {
            clock_rate: clock_rate.max(1),
            started: false,
            seq_offset: 0,
            ts_offset: 0,
            pid_offset: 0,
            tl0_offset: 0,
            switch_seq: 0,
            guard: false,
            high_seq: first_seq.wrapping_sub(1),
            high_ts: 0,
            high_pid: 0x7fff,
            high_tl0: 255,
            last_sent: None,
        }
    }

    /// Whether any packet was sent yet.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Highest sequence number sent.
    pub fn highest_seq(&self) -> u16 {
        self.high_seq
    }

    /// The timestamp offset in use (for translating sender reports).
    pub fn timestamp_offset(&self) -> u32 {
        self.ts_offset
    }

    /// The highest values sent (sequence number, timestamp, picture id,
    /// TL0PICIDX) and when the last packet left, for a dataplane started
    /// after this one to carry on from; `None` before the first packet.
    pub fn high_water(&self) -> Option<(Rewritten, Instant)> {
        let last = self.last_sent.filter(|_| self.started)?;
        Some((
            Rewritten {
                seq: self.high_seq,
                timestamp: self.high_ts,
                picture_id: Some(self.high_pid),
                tl0_pic_idx: Some(self.high_tl0),
            },
            last,
        ))
    }

    /// Carries on from another rewriter's high water mark (see
    /// [`Rewriter::high_water`]); the caller then waits for a keyframe and
    /// switches: the switch continues after `high`, its timestamp moved on
    /// by the wall-clock time since `last_sent`.
    pub fn resume(&mut self, high: Rewritten, last_sent: Instant) {
        self.high_seq = high.seq;
        self.high_ts = high.timestamp;
        self.high_pid = high.picture_id.unwrap_or(self.high_pid) & 0x7fff;
        self.high_tl0 = high.tl0_pic_idx.unwrap_or(self.high_tl0);
        self.last_sent = Some(last_sent);
        self.started = true;
    }

    /// Starts forwarding a new layer at `first` (a keyframe's first packet).
    pub fn switch(&mut self, now: Instant, first: Incoming) {
        let out_seq = self.high_seq.wrapping_add(1);
        self.seq_offset = out_seq.wrapping_sub(first.seq);
        self.switch_seq = first.seq;
        self.guard = true;
        let out_ts = if self.started {
            // Advance by the wall-clock time since the last packet (at least 1 tick).
            let elapsed = self
                .last_sent
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let ticks =
                (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000).max(1);
            self.high_ts.wrapping_add(ticks as u32)
        } else {
            first.timestamp
        };
        self.ts_offset = out_ts.wrapping_sub(first.timestamp);
        if let Some(pid) = first.picture_id {
            let out_pid = self.high_pid.wrapping_add(1) & 0x7fff;
            self.pid_offset = out_pid.wrapping_sub(pid) & 0x7fff;
        }
        if let Some(tl0) = first.tl0_pic_idx {
            self.tl0_offset = self.high_tl0.wrapping_add(1).wrapping_sub(tl0);
        }
        self.started = true;
    }

    /// Rewrites one packet of the current layer, or `None` if it predates
    /// the switch to this layer.
    pub fn rewrite(&mut self, now: Instant, p: Incoming) -> Option<Rewritten> {
        if !self.started {
            return None;
        }
        if self.guard {
            if newer16(self.switch_seq, p.seq) {
                return None;
            }
            if p.seq.wrapping_sub(self.switch_seq) > 0x4000 {
                self.guard = false;
            }
        }
        let out = Rewritten {
            seq: p.seq.wrapping_add(self.seq_offset),
            timestamp: p.timestamp.wrapping_add(self.ts_offset),
            picture_id: p
                .picture_id
                .map(|pid| pid.wrapping_add(self.pid_offset) & 0x7fff),
            tl0_pic_idx: p.tl0_pic_idx.map(|t| t.wrapping_add(self.tl0_offset)),
        };
        if newer16(out.seq, self.high_seq) {
            self.high_seq = out.seq;
        }
        if newer32(out.timestamp, self.high_ts) {
            self.high_ts = out.timestamp;
        }
        if let Some(pid) = out.picture_id.filter(|&pid| newer15(pid, self.high_pid)) {
            self.high_pid = pid;
        }
        if let Some(t) = out.tl0_pic_idx.filter(|&t| newer8(t, self.high_tl0)) {
            self.high_tl0 = t;
        }
        self.last_sent = Some(now);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, pid: u16, tl0: u8) -> Incoming {
        Incoming {
            seq,
            timestamp: ts,
            picture_id: Some(pid),
            tl0_pic_idx: Some(tl0),
        }
    }

    #[test]
    fn continuous_across_a_layer_switch() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000, 1000);
        r.switch(t0, pkt(50, 9000, 300, 7));
        let a = r.rewrite(t0, pkt(50, 9000, 300, 7)).unwrap();
        assert_eq!(
            (a.seq, a.timestamp, a.picture_id, a.tl0_pic_idx),
            (1000, 9000, Some(0), Some(0))
        );
        let b = r.rewrite(t0, pkt(51, 12000, 301, 7)).unwrap();
        assert_eq!((b.seq, b.picture_id), (1001, Some(1)));
        // the other layer has unrelated numbers; switch 33 ms later
        let t1 = t0 + Duration::from_millis(33);
        r.switch(t1, pkt(60000, 4_000_000_000, 32000, 200));
        let c = r
            .rewrite(t1, pkt(60000, 4_000_000_000, 32000, 200))
            .unwrap();
        assert_eq!(c.seq, 1002);
        assert_eq!(c.timestamp, 12000 + 2970);
        assert_eq!((c.picture_id, c.tl0_pic_idx), (Some(2), Some(1)));
        // later packets of the new layer wrap their own counters; ours continue
        let d = r
            .rewrite(t1, pkt(60001, 4_000_003_000, 32767, 200))
            .unwrap();
        let e = r.rewrite(t1, pkt(60002, 4_000_006_000, 0, 201)).unwrap();
        assert_eq!((d.seq, d.picture_id), (1003, Some((2 + 767) & 0x7fff)));
        assert_eq!(
            (e.seq, e.picture_id, e.tl0_pic_idx),
            (1004, Some(770), Some(2))
        );
        // a straggler of the new layer from before the switch is refused
        assert_eq!(r.rewrite(t1, pkt(59999, 0, 0, 0)), None);
    }

    #[test]
    fn a_long_stream_wraps_its_incoming_sequence_numbers() {
        // regression: the switch-point guard refused every packet once the
        // incoming sequence numbers had moved 32768 past the switch
        let t = Instant::now();
        let mut r = Rewriter::new(90_000, 7);
        r.switch(t, pkt(100, 0, 0, 0));
        let mut expected = 7u16;
        for i in 0..200_000u32 {
            let seq = 100u16.wrapping_add(i as u16);
            let out = r
                .rewrite(t, pkt(seq, i * 3000, i as u16 & 0x7fff, (i / 10) as u8))
                .expect("forwarded");
            assert_eq!(out.seq, expected);
            expected = expected.wrapping_add(1);
        }
    }

    #[test]
    fn reordering_within_a_layer_and_wraparound() {
        let t = Instant::now();
        let mut r = Rewriter::new(48_000, 65534);
        let no_vp8 = |seq, ts| Incoming {
            seq,
            timestamp: ts,
            picture_id: None,
            tl0_pic_idx: None,
        };
        r.switch(t, no_vp8(10, 100));
        assert_eq!(r.rewrite(t, no_vp8(10, 100)).unwrap().seq, 65534);
        assert_eq!(r.rewrite(t, no_vp8(12, 2020)).unwrap().seq, 0);
        assert_eq!(r.rewrite(t, no_vp8(11, 1060)).unwrap().seq, 65535);
        assert_eq!(r.highest_seq(), 0);
        assert!(!Rewriter::new(90_000, 1).started());
        assert_eq!(Rewriter::new(90_000, 1).rewrite(t, no_vp8(1, 1)), None);
    }

    #[test]
    fn a_resumed_rewriter_carries_on_after_the_old_one() {
        let t0 = Instant::now();
        let mut old = Rewriter::new(90_000, 65_500);
        old.switch(t0, pkt(10, 1000, 5, 1));
        for i in 0..40u16 {
            old.rewrite(
                t0,
                pkt(10 + i, 1000 + 3000 * u32::from(i / 4), 5 + i / 4, 1),
            )
            .unwrap();
        }
        let (high, last) = old.high_water().unwrap();
        assert_eq!(high.seq, 65_500u16.wrapping_add(39));
        // a new rewriter half a second later, moved on by a margin
        let mut new = Rewriter::new(90_000, 7);
        let moved = Rewritten {
            seq: high.seq.wrapping_add(512),
            ..high
        };
        new.resume(moved, last);
        let t1 = t0 + Duration::from_millis(500);
        new.switch(t1, pkt(9000, 77, 300, 9));
        let first = new.rewrite(t1, pkt(9000, 77, 300, 9)).unwrap();
        assert_eq!(first.seq, moved.seq.wrapping_add(1));
        assert_eq!(first.timestamp, high.timestamp + 45_000);
        assert_eq!(
            first.picture_id,
            Some((high.picture_id.unwrap() + 1) & 0x7fff)
        );
        assert_eq!(
            first.tl0_pic_idx,
            Some(high.tl0_pic_idx.unwrap().wrapping_add(1))
        );
        assert!(Rewriter::new(90_000, 1).high_water().is_none());
    }
}
