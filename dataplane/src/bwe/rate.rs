//! Turning the delay verdict and the loss rate into a bitrate: AIMD on the
//! delay side (GCC §6: multiplicative increase far from the last
//! congestion point, additive near it, 0.85 × the acknowledged rate on
//! overuse), and the loss-based controller (GCC §6.3: grow under 2 % loss,
//! hold up to 10 %, cut by half the loss above).

use super::delay::Usage;

/// Multiplicative increase per second far from convergence.
const GROWTH_PER_S: f64 = 1.08;
/// Additive increase near convergence, bit/s per second.
const ADDITIVE_BPS_PER_S: f64 = 50_000.0;
/// Overuse backs off to this fraction of the acknowledged rate.
const BACKOFF: f64 = 0.85;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// The delay-based rate.
#[derive(Debug)]
pub struct DelayRate {
    rate: f64,
    state: State,
    /// The acknowledged rate at the last backoff: where the link was full.
    congestion_point: Option<f64>,
    min: f64,
    max: f64,
}

impl DelayRate {
    /// Starts at `initial` bit/s, kept within `min..=max`.
    pub fn new(initial: f64, min: f64, max: f64) -> DelayRate {
        DelayRate {
            rate: initial.clamp(min, max),
            state: State::Increase,
            congestion_point: None,
            min,
            max,
        }
    }

    /// The current rate (bit/s).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// One update: `dt_s` since the last, the detector's verdict, and the
    /// throughput the receiver acknowledged (bit/s) if known.
    pub fn update(&mut self, dt_s: f64, usage: Usage, acked: Option<f64>) {
        self.state = match (usage, self.state) {
            (Usage::Overuse, _) => State::Decrease,
            (Usage::Underuse, _) => State::Hold,
            (Usage::Normal, State::Hold | State::Decrease) => State::Increase,
            (Usage::Normal, State::Increase) => State::Increase,
        };
        match self.state {
            State::Increase => {
                // an app-limited sender cannot learn more than it sends:
                // stay within reach of what got through (probing raises it)
                if acked.is_some_and(|a| self.rate > 1.5 * a + 10_000.0) {
                    return;
                }
                let near = match (self.congestion_point, acked) {
                    (Some(c), Some(a)) => (a - c).abs() < 0.25 * c,
                    _ => false,
                };
                if near {
                    self.rate += ADDITIVE_BPS_PER_S * dt_s;
                } else {
                    self.rate *= GROWTH_PER_S.powf(dt_s.min(1.0));
                }
            }
            State::Decrease => {
                let base = acked.unwrap_or(self.rate);
                let backed_off = BACKOFF * base;
                if backed_off < self.rate {
                    self.rate = backed_off;
                }
                self.congestion_point = Some(base);
                self.state = State::Hold;
            }
            State::Hold => {}
        }
        self.rate = self.rate.clamp(self.min, self.max);
    }

    /// After a successful probe: the link carried `bps`, start from there.
    pub fn raise_to(&mut self, bps: f64) {
        if bps > self.rate {
            self.rate = bps.clamp(self.min, self.max);
            self.congestion_point = None;
        }
    }
}

/// The loss-based rate.
#[derive(Debug)]
pub struct LossRate {
    rate: f64,
    min: f64,
    max: f64,
    since_cut_s: f64,
}

impl LossRate {
    /// Starts at `initial` bit/s, kept within `min..=max`.
    pub fn new(initial: f64, min: f64, max: f64) -> LossRate {
        LossRate {
            rate: initial.clamp(min, max),
            min,
            max,
            since_cut_s: f64::MAX,
        }
    }

    /// The current rate (bit/s).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// One update with the fraction of packets lost since the last.
    pub fn update(&mut self, dt_s: f64, loss: f64, acked: Option<f64>) {
        self.since_cut_s += dt_s;
        if loss < 0.02 {
            if acked.is_none_or(|a| self.rate <= 1.5 * a + 10_000.0) {
                self.rate *= GROWTH_PER_S.powf(dt_s.min(1.0));
            }
        } else if loss > 0.10 && self.since_cut_s > 0.3 {
            self.rate *= 1.0 - 0.5 * loss;
            self.since_cut_s = 0.0;
        }
        self.rate = self.rate.clamp(self.min, self.max);
    }

    /// After a successful probe.
    pub fn raise_to(&mut self, bps: f64) {
        if bps > self.rate {
            self.rate = bps.clamp(self.min, self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_backs_off_and_holds() {
        let mut r = DelayRate::new(300_000.0, 30_000.0, 10_000_000.0);
        for _ in 0..10 {
            r.update(0.1, Usage::Normal, Some(300_000.0));
        }
        assert!(r.rate() > 300_000.0 * 1.07, "{}", r.rate());
        let before = r.rate();
        r.update(0.1, Usage::Overuse, Some(280_000.0));
        assert!((r.rate() - 0.85 * 280_000.0).abs() < 1.0);
        r.update(0.1, Usage::Underuse, Some(200_000.0));
        assert!((r.rate() - 0.85 * 280_000.0).abs() < 1.0, "underuse holds");
        assert!(r.rate() < before);
    }

    #[test]
    fn an_app_limited_sender_does_not_run_away() {
        let mut r = DelayRate::new(120_000.0, 30_000.0, 10_000_000.0);
        for _ in 0..600 {
            r.update(0.1, Usage::Normal, Some(100_000.0));
        }
        // within one step of 1.5 × acknowledged + 10 kbit/s
        assert!(
            r.rate() <= 1.01 * (1.5 * 100_000.0 + 10_000.0),
            "{}",
            r.rate()
        );
    }

    #[test]
    fn loss_cuts_above_ten_percent_and_holds_between() {
        let mut l = LossRate::new(1_000_000.0, 30_000.0, 10_000_000.0);
        l.update(1.0, 0.05, None);
        assert_eq!(l.rate(), 1_000_000.0);
        l.update(1.0, 0.20, None);
        assert!((l.rate() - 900_000.0).abs() < 1.0);
        l.update(0.1, 0.20, None);
        assert!((l.rate() - 900_000.0).abs() < 1.0, "one cut per 300 ms");
        l.update(1.0, 0.0, None);
        assert!(l.rate() > 900_000.0);
    }
}
