//! How long packets wait in the path's queue now: the one-way delay of the
//! latest packet above the lowest one seen lately. The two clocks (send
//! time ours, arrival time the receiver's) differ by an unknown offset that
//! the subtraction removes; the lowest delay is kept over two periods, so
//! that a route change or clock drift is forgotten within
//! 2 × `PERIOD_US`.

/// The lowest delay is renewed every this long (µs of the receiver's clock).
const PERIOD_US: i64 = 5_000_000;

/// One-way delay above its recent floor.
#[derive(Debug, Default, Clone, Copy)]
pub struct QueueDelay {
    latest: Option<i64>,
    /// Lowest delay of the current period and of the one before.
    floors: (Option<i64>, Option<i64>),
    period_start: Option<i64>,
}

impl QueueDelay {
    /// A packet sent at `send_us` (own clock) arrived at `arrival_us`
    /// (receiver's clock).
    pub fn packet(&mut self, send_us: u64, arrival_us: i64) {
        let delay = arrival_us.saturating_sub(send_us as i64);
        let start = *self.period_start.get_or_insert(arrival_us);
        if arrival_us - start >= PERIOD_US {
            self.floors = (None, self.floors.0);
            self.period_start = Some(arrival_us);
        }
        self.floors.0 = Some(self.floors.0.map_or(delay, |f| f.min(delay)));
        self.latest = Some(delay);
    }

    /// Milliseconds the latest packet waited above the floor.
    pub fn queued_ms(&self) -> f64 {
        let floor = match self.floors {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return 0.0,
        };
        self.latest
            .map_or(0.0, |d| (d - floor).max(0) as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_offset_cancels_and_a_queue_shows() {
        let mut q = QueueDelay::default();
        // receiver's clock 7 s ahead, 20 ms path
        let offset = 7_000_000;
        q.packet(1_000, 1_000 + offset + 20_000);
        assert_eq!(q.queued_ms(), 0.0);
        q.packet(2_000, 2_000 + offset + 20_000 + 35_000);
        assert!((q.queued_ms() - 35.0).abs() < 1e-9);
        q.packet(3_000, 3_000 + offset + 20_000);
        assert_eq!(q.queued_ms(), 0.0);
    }

    #[test]
    fn an_old_floor_is_forgotten() {
        let mut q = QueueDelay::default();
        q.packet(0, 10_000);
        // the route gets 30 ms longer for good
        for i in 1..=30u64 {
            let send = i * 500_000;
            q.packet(send, send as i64 + 40_000);
        }
        assert_eq!(
            q.queued_ms(),
            0.0,
            "after two periods the new delay is the floor"
        );
    }
}
