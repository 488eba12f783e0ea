//! Throttling keyframe requests to a publisher: many subscribers may ask at
//! once (PLI, FIR, layer switches); the publisher gets one request per
//! window per layer, and a request arriving inside the window is remembered
//! and sent when the window ends.

use std::time::{Duration, Instant};

/// Throttle state of one layer.
#[derive(Debug, Clone, Default)]
pub struct KeyframeThrottle {
    last_sent: Option<Instant>,
    pending: bool,
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
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// True if a deferred request is due now (and marks it sent).
    pub fn due(&mut self, now: Instant, window: Duration) -> bool {
        if self.pending
            && self
                .last_sent
                .is_none_or(|t| now.saturating_duration_since(t) >= window)
        {
            self.pending = false;
            self.last_sent = Some(now);
            return true;
        }
        false
    }

    /// A keyframe arrived: any deferred request is answered.
    pub fn satisfied(&mut self) {
        self.pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_window_with_deferral() {
        let w = Duration::from_millis(500);
        let t = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t, w));
        assert!(!k.request(t + Duration::from_millis(10), w));
        assert!(!k.request(t + Duration::from_millis(20), w));
        assert!(!k.due(t + Duration::from_millis(499), w));
        assert!(k.due(t + w, w));
        assert!(!k.due(t + w, w));
        assert!(!k.request(t + w + Duration::from_millis(1), w));
        k.satisfied();
        assert!(!k.due(t + w * 3, w));
    }
}
