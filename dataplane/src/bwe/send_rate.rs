//! What a sender sent lately, bursts and quiet moments together: the
//! bytes of the last full bucket and of the current one over the time
//! they cover (one to two buckets).

use std::time::{Duration, Instant};

/// The send rate over the last one to two seconds, in two
/// buckets of `SEND_BUCKET`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SendRate {
    start: Option<Instant>,
    current: u64,
    previous: u64,
}

const SEND_BUCKET: Duration = Duration::from_secs(1);

impl SendRate {
    /// `bytes` left now.
    pub fn add(&mut self, now: Instant, bytes: usize) {
        self.roll(now);
        self.current += bytes as u64;
    }

    fn roll(&mut self, now: Instant) {
        let start = *self.start.get_or_insert(now);
        let since = now.saturating_duration_since(start);
        if since >= 2 * SEND_BUCKET {
            (self.previous, self.current) = (0, 0);
            self.start = Some(now);
        } else if since >= SEND_BUCKET {
            (self.previous, self.current) = (self.current, 0);
            self.start = Some(start + SEND_BUCKET);
        }
    }

    /// Bit/s over the previous bucket and what passed of the current one.
    pub fn bps(&mut self, now: Instant) -> f64 {
        self.roll(now);
        let Some(start) = self.start else { return 0.0 };
        let span = SEND_BUCKET + now.saturating_duration_since(start);
        (self.previous + self.current) as f64 * 8.0 / span.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_spread_over_the_window() {
        let t = Instant::now();
        let mut r = SendRate::default();
        r.add(t, 60_000);
        for i in 1..=100u64 {
            r.add(t + Duration::from_millis(10 * i), 250);
        }
        // 85 kB over the 1 s bucket and the first 10 ms of the next
        let bps = r.bps(t + Duration::from_millis(1010));
        assert!((bps - 85_000.0 * 8.0 / 1.01).abs() < 1.0, "{bps}");
        // two buckets later nothing is left
        assert_eq!(r.bps(t + Duration::from_secs(3)), 0.0);
    }
}
