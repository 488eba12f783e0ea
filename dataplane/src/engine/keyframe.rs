//! Throttling keyframe requests to a publisher: many subscribers may ask at
//! once (PLI, FIR, layer switches); the publisher gets one request per
//! window per layer, and a request arriving inside the window is remembered
//! and sent when the window ends. A request that no keyframe answers is
//! sent again every [`RETRY_WINDOWS`] windows, at most [`RETRIES`] times: a
//! PLI can be lost, sent before the publisher's path was up, or ignored by a
//! busy encoder, and a publisher that makes keyframes only when asked (most
//! non-browser stacks) would otherwise leave its new receivers black.

use std::time::{Duration, Instant};

/// Requests sent again after the first while no keyframe arrives.
pub const RETRIES: u8 = 3;
/// Windows between a request and its retry.
pub const RETRY_WINDOWS: u32 = 2;

/// Throttle state of one layer.
#[derive(Debug, Clone, Default)]
pub struct KeyframeThrottle {
    last_sent: Option<Instant>,
    pending: bool,
    /// Requests sent since the last keyframe of the current attempt (the
    /// first and its retries); 0 when none is outstanding.
    unanswered: u8,
}

impl KeyframeThrottle {
    /// Records a request; true if one should be sent now.
    pub fn request(&mut self, now: Instant, window: Duration) -> bool {
        match self.last_sent {
            Some(t) if now.saturating_duration_since(t) < window => {
                self.pending = true;
                false
            }
            _ => {
                self.sent(now, 1);
                true
            }
        }
    }

    /// True if a request is due now — one deferred by the window, or a
    /// retry of one no keyframe answered — and marks it sent.
    pub fn due(&mut self, now: Instant, window: Duration) -> bool {
        let since = self
            .last_sent
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        if self.pending && since >= window {
            self.sent(now, 1);
            return true;
        }
        if (1..=RETRIES).contains(&self.unanswered) && since >= window * RETRY_WINDOWS {
            self.sent(now, self.unanswered + 1);
            return true;
        }
        false
    }

    /// A keyframe arrived: any deferred request or retry is answered.
    pub fn satisfied(&mut self) {
        self.pending = false;
        self.unanswered = 0;
    }

    fn sent(&mut self, now: Instant, unanswered: u8) {
        self.last_sent = Some(now);
        self.pending = false;
        self.unanswered = unanswered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: Instant, n: u64) -> Instant {
        t + Duration::from_millis(n)
    }

    #[test]
    fn one_per_window_with_deferral() {
        let w = Duration::from_millis(500);
        let t = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t, w));
        assert!(!k.request(ms(t, 10), w));
        assert!(!k.request(ms(t, 20), w));
        assert!(!k.due(ms(t, 499), w));
        assert!(k.due(ms(t, 500), w));
        assert!(!k.due(ms(t, 500), w));
        assert!(!k.request(ms(t, 501), w));
        k.satisfied();
        assert!(!k.due(ms(t, 1500), w));
    }

    #[test]
    fn an_unanswered_request_is_sent_again_a_bounded_number_of_times() {
        let w = Duration::from_millis(500);
        let t = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t, w));
        assert!(!k.due(ms(t, 999), w));
        let sent: Vec<u64> = (1000..=10_000)
            .step_by(10)
            .filter(|&n| k.due(ms(t, n), w))
            .collect();
        assert_eq!(sent, [1000, 2000, 3000]);
        // a new request after the retries gave up starts a new attempt
        assert!(k.request(ms(t, 10_000), w));
        assert!(k.due(ms(t, 11_000), w));
    }

    #[test]
    fn a_keyframe_stops_the_retries() {
        let w = Duration::from_millis(500);
        let t = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t, w));
        assert!(k.due(ms(t, 1000), w));
        k.satisfied();
        assert!((1000..=10_000).step_by(10).all(|n| !k.due(ms(t, n), w)));
    }
}
