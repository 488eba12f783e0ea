//! Packets of one incoming layer that did not arrive, asked for again until
//! they come (upstream NACKs, RFC 4585 §6.2.1).
//!
//! A gap is NACKed at once. A packet still missing one round trip later is
//! NACKed again, up to [`MAX_TRIES`] times in all, then given up (the
//! receivers' own keyframe requests take over). Asking once is not enough:
//! a retransmission crosses the same lossy path as the original, and with
//! 3 % loss one gap in 33 would stay a hole.
//!
//! The round trip is measured here, from a packet's first NACK to its
//! arrival; a packet asked for more than once gives no sample (which NACK
//! did it answer?), as in TCP's rule for retransmitted segments (RFC 6298
//! §3). Fixed capacity, no allocation: times are kept in milliseconds from
//! an epoch that restarts whenever the list empties.

#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// Packets remembered per layer; a longer burst NACKs its first ones.
pub const CAPACITY: usize = 64;
/// NACKs per packet, the first included.
pub const MAX_TRIES: u8 = 4;
/// The round trip assumed before the first sample.
const INITIAL_RTT_MS: u32 = 100;
/// Never ask again sooner than this after the last ask.
const MIN_WAIT_MS: u32 = 20;
/// A packet older than this is of no use to anyone: given up.
const MAX_AGE_MS: u32 = 1000;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    seq: u16,
    tries: u8,
    /// When it was first found missing and last asked for (ms from epoch).
    first_ms: u32,
    asked_ms: u32,
}

/// What a call to [`Missing::due`] decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// Sequence numbers to NACK again now (the first `asked` of the buffer).
    pub asked: usize,
    /// Packets given up (out of tries or too old).
    pub given_up: usize,
}

/// The missing packets of one incoming layer.
#[derive(Debug, Clone)]
pub struct Missing {
    entries: [Entry; CAPACITY],
    len: usize,
    epoch: Option<Instant>,
    /// Smoothed round trip in ms (RFC 6298 §2), once sampled.
    srtt_ms: Option<u32>,
}

impl Default for Missing {
    fn default() -> Self {
        Self {
            entries: [Entry::default(); CAPACITY],
            len: 0,
            epoch: None,
            srtt_ms: None,
        }
    }
}

impl Missing {
    /// Nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The measured round trip, once there is a sample.
    #[cfg(test)]
    pub fn rtt(&self) -> Option<Duration> {
        self.srtt_ms.map(|ms| Duration::from_millis(u64::from(ms)))
    }

    fn ms(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch)
            .as_millis()
            .min(u128::from(u32::MAX)) as u32
    }

    /// Records `lost` (just NACKed for the first time). When the list is
    /// full the oldest entries make room; returns how many were pushed out.
    pub fn gap(&mut self, now: Instant, lost: &[u16]) -> usize {
        if self.len == 0 {
            self.epoch = Some(now);
        }
        let at = self.ms(now);
        let mut pushed_out = 0;
        for &seq in lost.iter().take(CAPACITY) {
            if self.len == CAPACITY {
                self.remove(0);
                pushed_out += 1;
            }
            self.entries[self.len] = Entry {
                seq,
                tries: 1,
                first_ms: at,
                asked_ms: at,
            };
            self.len += 1;
        }
        pushed_out
    }

    /// A packet older than the highest arrived (retransmitted or late): it
    /// is no longer missing.
    pub fn arrived(&mut self, now: Instant, seq: u16) {
        let Some(i) = self.entries[..self.len].iter().position(|e| e.seq == seq) else {
            return;
        };
        let e = self.entries[i];
        self.remove(i);
        if e.tries == 1 {
            let sample = self.ms(now).saturating_sub(e.asked_ms);
            self.srtt_ms = Some(match self.srtt_ms {
                None => sample,
                Some(s) => (7 * s + sample) / 8,
            });
        }
        if self.len == 0 {
            self.epoch = None;
        }
    }

    /// Packets to ask for again at `now`, written to `out` in the order
    /// they went missing; packets out of tries or too old are dropped.
    pub fn due(&mut self, now: Instant, out: &mut [u16; CAPACITY]) -> Due {
        if self.len == 0 {
            return Due::default();
        }
        let at = self.ms(now);
        let rtt = self.srtt_ms.unwrap_or(INITIAL_RTT_MS);
        let wait = (rtt + rtt / 4).max(MIN_WAIT_MS);
        let mut result = Due::default();
        let mut i = 0;
        while i < self.len {
            let e = &mut self.entries[i];
            if at.saturating_sub(e.asked_ms) < wait {
                i += 1;
                continue;
            }
            if e.tries >= MAX_TRIES || at.saturating_sub(e.first_ms) >= MAX_AGE_MS {
                self.remove(i);
                result.given_up += 1;
                continue;
            }
            e.tries += 1;
            e.asked_ms = at;
            out[result.asked] = e.seq;
            result.asked += 1;
            i += 1;
        }
        if self.len == 0 {
            self.epoch = None;
        }
        result
    }

    fn remove(&mut self, i: usize) {
        self.entries.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: Instant, ms: u64) -> Instant {
        t + Duration::from_millis(ms)
    }

    #[test]
    fn a_packet_is_asked_for_again_each_round_trip_until_it_comes() {
        let t = Instant::now();
        let mut m = Missing::default();
        let mut out = [0; CAPACITY];
        m.gap(t, &[10, 11]);
        // before the assumed round trip (100 ms + a quarter) nothing is due
        assert_eq!(m.due(ms(t, 100), &mut out).asked, 0);
        let d = m.due(ms(t, 125), &mut out);
        assert_eq!((d.asked, &out[..2]), (2, &[10u16, 11][..]));
        m.arrived(ms(t, 130), 10);
        assert_eq!(m.rtt(), None, "a packet asked for twice gives no sample");
        let d = m.due(ms(t, 250), &mut out);
        assert_eq!((d.asked, out[0]), (1, 11));
        m.arrived(ms(t, 260), 11);
        assert!(m.is_empty());
    }

    #[test]
    fn the_wait_follows_the_measured_round_trip() {
        let t = Instant::now();
        let mut m = Missing::default();
        let mut out = [0; CAPACITY];
        m.gap(t, &[1]);
        m.arrived(ms(t, 40), 1);
        assert_eq!(m.rtt(), Some(Duration::from_millis(40)));
        m.gap(ms(t, 1000), &[2]);
        assert_eq!(m.due(ms(t, 1049), &mut out).asked, 0);
        assert_eq!(m.due(ms(t, 1050), &mut out).asked, 1);
        // smoothed, not replaced: 7/8 of 40 + 1/8 of 80
        m.gap(ms(t, 2000), &[3]);
        m.arrived(ms(t, 2080), 3);
        assert_eq!(m.rtt(), Some(Duration::from_millis(45)));
        // a tiny round trip still waits the floor
        let mut fast = Missing::default();
        fast.gap(t, &[5]);
        fast.arrived(ms(t, 1), 5);
        fast.gap(ms(t, 10), &[6]);
        assert_eq!(fast.due(ms(t, 29), &mut out).asked, 0);
        assert_eq!(fast.due(ms(t, 30), &mut out).asked, 1);
    }

    #[test]
    fn a_packet_is_given_up_after_its_last_try_or_when_too_old() {
        let t = Instant::now();
        let mut m = Missing::default();
        let mut out = [0; CAPACITY];
        m.gap(t, &[7]);
        let mut asked = 1;
        let mut given_up = 0;
        for step in 1..=20 {
            let d = m.due(ms(t, step * 130), &mut out);
            asked += d.asked;
            given_up += d.given_up;
        }
        assert_eq!((asked, given_up), (usize::from(MAX_TRIES), 1));
        assert!(m.is_empty());
        // one that keeps being asked for with a long round trip ages out
        let mut slow = Missing::default();
        slow.gap(t, &[1]);
        slow.arrived(ms(t, 600), 1);
        slow.gap(ms(t, 700), &[2]);
        let d1 = slow.due(ms(t, 700 + 750), &mut out);
        let d2 = slow.due(ms(t, 700 + 1500), &mut out);
        assert_eq!((d1.asked, d2.given_up), (1, 1));
    }

    #[test]
    fn a_full_list_pushes_out_its_oldest_and_memory_stays_fixed() {
        let t = Instant::now();
        let mut m = Missing::default();
        let lost: Vec<u16> = (0..CAPACITY as u16).collect();
        assert_eq!(m.gap(t, &lost), 0);
        assert_eq!(m.gap(t, &[65535, 200]), 2);
        let mut out = [0; CAPACITY];
        let d = m.due(ms(t, 200), &mut out);
        assert_eq!(d.asked, CAPACITY);
        assert_eq!(out[0], 2, "0 and 1 were pushed out");
        assert_eq!(&out[CAPACITY - 2..], &[65535, 200]);
        // an arrival that was never missing changes nothing
        m.arrived(ms(t, 210), 9999);
        assert_eq!(m.due(ms(t, 420), &mut out).asked, CAPACITY);
    }
}
