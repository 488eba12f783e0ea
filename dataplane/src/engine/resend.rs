//! How much a subscriber's NACKs may make the dataplane send again.
//!
//! A receiver asks again for a packet each time its own round-trip estimate
//! passes without it — libwebrtc every 20 ms or so on a LAN, up to ten
//! times. When the path has narrowed, the retransmission waits in the same
//! queue as the media and each new request brings another copy: on a
//! 400 kbit/s path with a 0.4 s queue, Chromium's NACKs made the dataplane
//! send 5.7 Mbit/s of retransmissions for half a second, 80 % of the path's
//! packets were lost, and the switch to a lower layer, decided at once, took
//! two seconds to show. Two rules, as libwebrtc and mediasoup have them:
//!
//! - a packet is sent again at most once per [`gap`]: a bit more than the
//!   round trip of a clean path, plus the delay the path's queue adds now;
//! - retransmissions take at most [`SHARE`] of the subscriber's estimate
//!   (a token bucket holding [`BURST`] of it).
//!
//! A NACK they refuse is counted (`RetransmissionsWithheld`); the receiver
//! asks again if it still wants the packet.

use std::time::{Duration, Instant};

/// The shortest time between two retransmissions of one packet.
pub const MIN_GAP: Duration = Duration::from_millis(50);

/// Longest [`gap`]: past this the packet is usually too late to play.
pub const MAX_GAP: Duration = Duration::from_millis(1000);

/// Share of the estimate retransmissions may take.
pub const SHARE: f64 = 0.5;

/// How much unused budget is kept (of the retransmission rate)…
pub const BURST: Duration = Duration::from_millis(250);

/// …but never less than one full packet, so that a path at the estimate's
/// floor still gets a retransmission now and then.
pub const MIN_BURST_BYTES: f64 = 1500.0;

/// The time before a packet may go again: [`MIN_GAP`] plus what the path's
/// queue delays it now (`queued_ms`, from the transport-wide feedback), so
/// that a copy still queued is not joined by another.
pub fn gap(queued_ms: f64) -> Duration {
    let queued = Duration::from_micros((queued_ms.max(0.0) * 1000.0) as u64);
    (MIN_GAP + queued).min(MAX_GAP)
}

/// One subscriber's retransmission budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    /// Bytes that may be sent now.
    credit: f64,
    last: Option<Instant>,
}

impl Budget {
    /// Takes `bytes` from the budget of a path estimated at `estimate_bps`;
    /// false (nothing taken) when they do not fit.
    pub fn take(&mut self, now: Instant, estimate_bps: u64, bytes: usize) -> bool {
        let rate = estimate_bps as f64 / 8.0 * SHARE;
        let cap = (rate * BURST.as_secs_f64()).max(MIN_BURST_BYTES);
        self.credit = match self.last {
            // a fresh budget is full
            None => cap,
            Some(t) => {
                let elapsed = now.saturating_duration_since(t).as_secs_f64();
                (self.credit + rate * elapsed).min(cap)
            }
        };
        self.last = Some(now);
        if (bytes as f64) > self.credit {
            return false;
        }
        self.credit -= bytes as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_grows_with_the_queue() {
        assert_eq!(gap(0.0), MIN_GAP);
        assert_eq!(gap(-3.0), MIN_GAP);
        assert_eq!(gap(400.0), Duration::from_millis(450));
        assert_eq!(gap(5000.0), MAX_GAP);
    }

    #[test]
    fn retransmissions_take_half_the_estimate() {
        let t = Instant::now();
        let mut b = Budget::default();
        // 400 kbit/s: 25 kB/s for retransmissions, 6250 bytes held at most
        let mut sent = 0;
        while b.take(t, 400_000, 1000) {
            sent += 1000;
        }
        assert_eq!(sent, 6000, "the burst");
        // over one second of NACKs every 10 ms for 1000-byte packets
        for ms in (10..=1000).step_by(10) {
            if b.take(t + Duration::from_millis(ms), 400_000, 1000) {
                sent += 1000;
            }
        }
        assert!((29_000..=31_250).contains(&sent), "{sent}");
    }

    #[test]
    fn a_path_at_the_floor_still_gets_a_packet_now_and_then() {
        let t = Instant::now();
        let mut b = Budget::default();
        // 50 kbit/s: 3125 bytes a second, the burst one full packet
        assert!(b.take(t, 50_000, 1200));
        assert!(!b.take(t, 50_000, 1200), "300 bytes left");
        assert!(!b.take(t + Duration::from_millis(200), 50_000, 1200));
        assert!(b.take(t + Duration::from_millis(400), 50_000, 1200));
    }
}
