//! The delay-based half of the estimator, after Google Congestion Control
//! (draft-ietf-rmcat-gcc, the "trendline" variant): packets are grouped in
//! 5 ms bursts by send time; the growth of one-way delay between groups is
//! accumulated and smoothed, a least-squares slope over the last groups
//! says whether a queue is building, and an adaptive threshold turns that
//! slope into overuse, normal or underuse.

/// What the path's queue is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Delay steady: room to grow.
    Normal,
    /// Delay growing: a queue is building, send less.
    Overuse,
    /// Delay shrinking: a queue is draining, hold.
    Underuse,
}

/// Packets sent within this of a group's first belong to it (µs).
const BURST_US: u64 = 5_000;
/// Groups in the regression window.
const WINDOW: usize = 20;
/// Smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// Slope gain before comparing with the threshold.
const GAIN: f64 = 4.0;
/// Overuse must last this long (ms) before it is signalled.
const OVERUSE_TIME_MS: f64 = 10.0;

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send_us: u64,
    last_send_us: u64,
    last_arrival_us: i64,
}

/// The trendline detector. Feed packets in send order with
/// [`DelayDetector::packet`]; read [`DelayDetector::usage`].
#[derive(Debug)]
pub struct DelayDetector {
    current: Option<Group>,
    previous: Option<Group>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    first_arrival_us: Option<i64>,
    window: [(f64, f64); WINDOW],
    filled: usize,
    next: usize,
    deltas: u32,
    threshold: f64,
    last_threshold_update_ms: Option<f64>,
    time_over_ms: f64,
    overuse_count: u32,
    previous_slope: f64,
    usage: Usage,
}

impl Default for DelayDetector {
    fn default() -> Self {
        DelayDetector {
            current: None,
            previous: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            first_arrival_us: None,
            window: [(0.0, 0.0); WINDOW],
            filled: 0,
            next: 0,
            deltas: 0,
            threshold: 12.5,
            last_threshold_update_ms: None,
            time_over_ms: -1.0,
            overuse_count: 0,
            previous_slope: 0.0,
            usage: Usage::Normal,
        }
    }
}

impl DelayDetector {
    /// The current verdict.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// A received packet: its send time (µs, sender clock) and arrival time
    /// (µs, receiver clock). Packets must come in send order.
    pub fn packet(&mut self, send_us: u64, arrival_us: i64) {
        let Some(cur) = self.current.as_mut() else {
            self.current = Some(Group {
                first_send_us: send_us,
                last_send_us: send_us,
                last_arrival_us: arrival_us,
            });
            return;
        };
        if send_us < cur.first_send_us {
            return; // reordered before this group: ignore
        }
        if send_us - cur.first_send_us <= BURST_US {
            cur.last_send_us = cur.last_send_us.max(send_us);
            cur.last_arrival_us = cur.last_arrival_us.max(arrival_us);
            return;
        }
        let done = *cur;
        *cur = Group {
            first_send_us: send_us,
            last_send_us: send_us,
            last_arrival_us: arrival_us,
        };
        if let Some(prev) = self.previous {
            let send_delta = done.last_send_us.saturating_sub(prev.last_send_us) as f64 / 1000.0;
            let arrival_delta = (done.last_arrival_us - prev.last_arrival_us) as f64 / 1000.0;
            if arrival_delta >= 0.0 {
                self.update(arrival_delta - send_delta, send_delta, done.last_arrival_us);
            }
        }
        self.previous = Some(done);
    }

    fn update(&mut self, delay_variation_ms: f64, send_delta_ms: f64, arrival_us: i64) {
        self.deltas = self.deltas.saturating_add(1);
        self.accumulated_ms += delay_variation_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let first = *self.first_arrival_us.get_or_insert(arrival_us);
        let x = (arrival_us - first) as f64 / 1000.0;
        self.window[self.next] = (x, self.smoothed_ms);
        self.next = (self.next + 1) % WINDOW;
        self.filled = (self.filled + 1).min(WINDOW);
        if self.filled < WINDOW {
            return;
        }
        let slope = slope(&self.window).unwrap_or(self.previous_slope);
        self.detect(slope, send_delta_ms, x);
        self.previous_slope = slope;
    }

    fn detect(&mut self, slope: f64, send_delta_ms: f64, now_ms: f64) {
        let modified = slope * f64::from(self.deltas.min(60)) * GAIN;
        if modified > self.threshold {
            if self.time_over_ms < 0.0 {
                self.time_over_ms = send_delta_ms / 2.0;
            } else {
                self.time_over_ms += send_delta_ms;
            }
            self.overuse_count += 1;
            if self.time_over_ms > OVERUSE_TIME_MS
                && self.overuse_count > 1
                && slope >= self.previous_slope
            {
                self.time_over_ms = 0.0;
                self.overuse_count = 0;
                self.usage = Usage::Overuse;
            }
        } else if modified < -self.threshold {
            self.time_over_ms = -1.0;
            self.overuse_count = 0;
            self.usage = Usage::Underuse;
        } else {
            self.time_over_ms = -1.0;
            self.overuse_count = 0;
            self.usage = Usage::Normal;
        }
        self.adapt_threshold(modified, now_ms);
    }

    /// The threshold follows |modified| slowly upwards and faster down, so
    /// that competing flows do not starve us (GCC §5.4).
    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_threshold_update_ms.get_or_insert(now_ms);
        if modified.abs() > self.threshold + 15.0 {
            // a spike: do not chase it
            self.last_threshold_update_ms = Some(now_ms);
            return;
        }
        let k = if modified.abs() < self.threshold {
            0.039
        } else {
            0.0087
        };
        let dt = (now_ms - last).clamp(0.0, 100.0);
        self.threshold =
            (self.threshold + k * (modified.abs() - self.threshold) * dt).clamp(6.0, 600.0);
        self.last_threshold_update_ms = Some(now_ms);
    }
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets every 10 ms whose one-way delay grows by `growth_us` each.
    fn run(growth_us: i64, packets: u64) -> DelayDetector {
        let mut d = DelayDetector::default();
        for i in 0..packets {
            let send = i * 10_000;
            d.packet(send, 50_000 + send as i64 + growth_us * i as i64);
        }
        d
    }

    #[test]
    fn steady_delay_is_normal() {
        assert_eq!(run(0, 200).usage(), Usage::Normal);
    }

    #[test]
    fn a_growing_queue_is_overuse() {
        assert_eq!(run(1_000, 200).usage(), Usage::Overuse);
    }

    #[test]
    fn a_draining_queue_is_underuse() {
        let mut d = run(1_000, 100);
        for i in 100..200u64 {
            let send = i * 10_000;
            // delay falls by 2 ms per packet until it is back to its base
            let queued = (100_000i64 - 2_000 * (i as i64 - 100)).max(0);
            d.packet(send, 50_000 + send as i64 + queued);
            if i == 130 {
                assert_eq!(d.usage(), Usage::Underuse);
            }
        }
    }

    #[test]
    fn slope_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 1.0))
            .collect();
        assert!((slope(&pts).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }
}
