//! A bound on log lines caused by outside input: at most `burst` lines per
//! window, then silence until the window ends, when the next line reports how
//! many were suppressed. Whoever sends bad input cannot fill the disk through
//! our logs. Sans-IO: the caller passes the time.

use std::time::{Duration, Instant};

/// A per-window budget of log lines.
#[derive(Debug, Clone)]
pub struct LogBudget {
    window: Duration,
    burst: u32,
    started: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    /// At most `burst` lines each `window`.
    pub const fn new(window: Duration, burst: u32) -> LogBudget {
        LogBudget {
            window,
            burst,
            started: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Ten lines a minute: the default for lines about bad input.
    pub const fn per_minute() -> LogBudget {
        LogBudget::new(Duration::from_secs(60), 10)
    }

    /// `Some(n)` when a line may be written now (`n` lines were suppressed
    /// since the last one written), `None` when it must be dropped.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let expired = self
            .started
            .is_none_or(|s| now.saturating_duration_since(s) >= self.window);
        if expired {
            self.started = Some(now);
            self.used = 0;
        }
        if self.used < self.burst {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_silence_then_a_count() {
        let mut b = LogBudget::new(Duration::from_secs(10), 2);
        let t = Instant::now();
        assert_eq!(b.allow(t), Some(0));
        assert_eq!(b.allow(t), Some(0));
        for _ in 0..1000 {
            assert_eq!(b.allow(t + Duration::from_secs(1)), None);
        }
        assert_eq!(b.allow(t + Duration::from_secs(10)), Some(1000));
        assert_eq!(b.allow(t + Duration::from_secs(10)), Some(0));
    }
}
