//! The receiving side of transport-wide congestion control: the dataplane
//! records when each packet from a publisher arrived (by the
//! transport-wide sequence number the publisher stamped) and reports it
//! back in transport-cc feedback, so that the publisher's own estimator
//! (Chrome's GCC) learns how much it may send — and turns on its higher
//! simulcast layers. Fixed arrays: no allocation per packet or report.

use std::time::{Duration, Instant};
use switchyard_wire::rtcp::{PacketStatus, TransportCcRepr};

/// Packets one feedback can cover (reports go every 50 ms, so about 10 000
/// packets/s; at most 512 two-byte deltas keep a report within one
/// datagram).
pub const SPAN: usize = 512;

/// 250 µs delta ticks, 64 ms reference ticks (RFC draft-holmer-rmcat-
/// transport-wide-cc-extensions-01 §3.1).
const DELTA_TICK_US: i64 = 250;
const REFERENCE_TICK_US: i64 = 64_000;

/// Arrival times of a publisher's packets not yet reported.
pub struct ReceiveRecorder {
    arrivals: Box<[Option<(u16, Instant)>; SPAN]>,
    /// The first sequence number the next feedback reports.
    base: Option<u16>,
    /// The highest sequence number seen (by wrapping order).
    highest: u16,
    epoch: Option<Instant>,
    feedback_count: u8,
    statuses: Box<[PacketStatus; SPAN]>,
}

impl Default for ReceiveRecorder {
    fn default() -> Self {
        ReceiveRecorder {
            arrivals: Box::new([None; SPAN]),
            base: None,
            highest: 0,
            epoch: None,
            feedback_count: 0,
            statuses: Box::new([PacketStatus::NotReceived; SPAN]),
        }
    }
}

fn ahead(a: u16, b: u16) -> i32 {
    // how far a is ahead of b in wrapping order
    i32::from(a.wrapping_sub(b) as i16)
}

impl ReceiveRecorder {
    /// A packet with transport-wide sequence number `seq` arrived.
    pub fn record(&mut self, seq: u16, now: Instant) {
        self.epoch.get_or_insert(now);
        match self.base {
            None => {
                self.base = Some(seq);
                self.highest = seq;
            }
            Some(base) => {
                if ahead(seq, base) < 0 {
                    return; // already reported
                }
                if ahead(seq, self.highest) > 0 {
                    self.highest = seq;
                }
                if ahead(self.highest, base) >= SPAN as i32 {
                    // too much unreported: drop the oldest
                    self.base = Some(self.highest.wrapping_sub(SPAN as u16 - 1));
                }
            }
        }
        self.arrivals[usize::from(seq) % SPAN] = Some((seq, now));
    }

    /// Writes a feedback packet for everything since the last one into
    /// `buf`; returns its length, or `None` when there is nothing new.
    pub fn feedback(&mut self, sender_ssrc: u32, media_ssrc: u32, buf: &mut [u8]) -> Option<usize> {
        let base = self.base?;
        let epoch = self.epoch?;
        let count = (ahead(self.highest, base) + 1).clamp(0, SPAN as i32) as usize;
        if count == 0 {
            return None;
        }
        let at = |seq: u16, slots: &[Option<(u16, Instant)>; SPAN]| {
            slots[usize::from(seq) % SPAN]
                .filter(|(s, _)| *s == seq)
                .map(|(_, t)| t.saturating_duration_since(epoch).as_micros() as i64)
        };
        let first = (0..count).find_map(|i| at(base.wrapping_add(i as u16), &self.arrivals))?;
        let reference = first / REFERENCE_TICK_US;
        let mut previous = reference * REFERENCE_TICK_US;
        for i in 0..count {
            let seq = base.wrapping_add(i as u16);
            self.statuses[i] = match at(seq, &self.arrivals) {
                Some(t) => {
                    let ticks = ((t - previous) / DELTA_TICK_US)
                        .clamp(i64::from(i16::MIN), i64::from(i16::MAX));
                    // keep the receiver's clock in step with what we report
                    previous += ticks * DELTA_TICK_US;
                    PacketStatus::Received(ticks as i16)
                }
                None => PacketStatus::NotReceived,
            };
        }
        let repr = TransportCcRepr {
            sender_ssrc,
            media_ssrc,
            base_sequence: base,
            reference_time: (reference as u32) & 0x00ff_ffff,
            feedback_count: self.feedback_count,
            packets: &self.statuses[..count],
        };
        let n = repr.emit(buf).ok()?;
        self.feedback_count = self.feedback_count.wrapping_add(1);
        for i in 0..count {
            self.arrivals[usize::from(base.wrapping_add(i as u16)) % SPAN] = None;
        }
        self.base = Some(self.highest.wrapping_add(1));
        Some(n)
    }
}

/// How often publishers get feedback.
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_wire::rtcp::TransportCc;

    #[test]
    fn reports_arrivals_and_losses_then_only_new_packets() {
        let t = Instant::now();
        let mut r = ReceiveRecorder::default();
        let mut buf = [0u8; 1500];
        assert_eq!(r.feedback(1, 2, &mut buf), None);
        // 65534, 65535, (0 lost), 1 — across the wrap, 10 ms apart
        for (i, seq) in [65534u16, 65535, 1].iter().enumerate() {
            let k = if *seq == 1 { 3 } else { i as u64 };
            r.record(*seq, t + Duration::from_millis(10 * k));
        }
        let n = r.feedback(1, 2, &mut buf).unwrap();
        let fb = TransportCc::new_checked(&buf[..n]).unwrap();
        assert_eq!(fb.base_sequence(), 65534);
        let got: Vec<(u16, PacketStatus)> = fb.packets().collect();
        assert_eq!(
            got,
            [
                (65534, PacketStatus::Received(0)),
                (65535, PacketStatus::Received(40)),
                (0, PacketStatus::NotReceived),
                (1, PacketStatus::Received(80)),
            ]
        );
        // nothing new: nothing sent; a late 0 is not reported again
        r.record(0, t + Duration::from_millis(40));
        assert_eq!(r.feedback(1, 2, &mut buf), None);
        r.record(2, t + Duration::from_millis(50));
        let n = r.feedback(1, 2, &mut buf).unwrap();
        let fb = TransportCc::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            (fb.base_sequence(), fb.status_count(), fb.feedback_count()),
            (2, 1, 1)
        );
    }

    #[test]
    fn a_long_gap_keeps_the_newest_span() {
        let t = Instant::now();
        let mut r = ReceiveRecorder::default();
        r.record(0, t);
        r.record(5000, t + Duration::from_millis(1));
        let mut buf = [0u8; 4096];
        let n = r.feedback(1, 2, &mut buf).unwrap();
        let fb = TransportCc::new_checked(&buf[..n]).unwrap();
        assert_eq!(usize::from(fb.status_count()), SPAN);
        assert_eq!(fb.base_sequence(), 5000 - (SPAN as u16 - 1));
    }
}
