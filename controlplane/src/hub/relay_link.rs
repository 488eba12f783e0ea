//! A relay's link as its sending end sees it, and what crosses it when it
//! is congested (docs/cascading.md, "Bandwidth").
//!
//! The sending dataplane estimates each relay from the far bridge's
//! transport-wide feedback, as it does for browsers. That estimate is a
//! poor budget for a link that is fine: it starts at the estimator's
//! initial rate, never rises above one and a half times what is acknowledged
//! without probes, and is capped at the estimator's maximum, which a relay of
//! a large room exceeds. So a relay carries what its far receivers use (the
//! rule of "What crosses") until the link shows congestion — the estimate
//! fell *and* packets were lost, the allocator's own test for a browser.
//! Then what crosses is held to the estimate: the top layers leave, the
//! costliest first, never a video's lowest layer and never audio. The hold
//! is lifted once the link has shown no congestion for [`HOLD`]; on a link
//! that is still too narrow the layers that come back congest it again, and
//! each relapse within [`RELAPSE`] of a lift holds twice as long (up to
//! [`HOLD_MAX`]), so a narrow link is tried again rarely.

use super::allocation::RecentEstimates;
use std::time::{Duration, Instant};

/// A held link is freed this long after it last showed congestion.
pub(super) const HOLD: Duration = Duration::from_secs(5);
/// The longest hold.
const HOLD_MAX: Duration = Duration::from_secs(80);
/// Congestion this soon after a lift is a relapse: the next hold doubles.
const RELAPSE: Duration = Duration::from_secs(30);

/// What happened to a link's hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Congestion: what crosses is held to the estimate from now on.
    Held,
    /// No congestion for the hold: the link carries what is used again.
    Freed,
}

/// One sending end's view of its relay link.
#[derive(Debug, Clone)]
pub(super) struct RelayLink {
    recent: RecentEstimates,
    estimate: Option<u64>,
    /// While held: when the link last showed congestion.
    held: Option<Instant>,
    /// How long the next hold lasts.
    hold: Duration,
    /// When the last hold was lifted.
    freed: Option<Instant>,
}

impl Default for RelayLink {
    fn default() -> Self {
        RelayLink {
            recent: RecentEstimates::default(),
            estimate: None,
            held: None,
            hold: HOLD,
            freed: None,
        }
    }
}

impl RelayLink {
    /// A new estimate of the link (bit/s) and the loss (fraction) reported
    /// with it. `Some(Held)` when this starts a hold.
    pub(super) fn on_estimate(&mut self, now: Instant, estimate: u64, loss: f64) -> Option<Change> {
        self.recent.record(now, estimate, loss);
        self.estimate = Some(estimate);
        if !self.recent.congested(now) {
            return None;
        }
        let started = self.held.is_none();
        if started {
            let relapse = self
                .freed
                .is_some_and(|t| now.saturating_duration_since(t) < RELAPSE);
            self.hold = match relapse {
                true => (self.hold * 2).min(HOLD_MAX),
                false => HOLD,
            };
        }
        self.held = Some(now);
        started.then_some(Change::Held)
    }

    /// Frees a hold that has lasted its time: `Some(Freed)` when it did.
    pub(super) fn free_if_due(&mut self, now: Instant) -> Option<Change> {
        let last = self.held?;
        if now.saturating_duration_since(last) < self.hold {
            return None;
        }
        self.held = None;
        self.freed = Some(now);
        Some(Change::Freed)
    }

    /// What may cross while the link is held (its estimate, bit/s); `None`
    /// while it is not.
    pub(super) fn budget(&self) -> Option<u64> {
        self.held.and(self.estimate)
    }

    /// How long the current (or next) hold lasts.
    pub(super) fn hold(&self) -> Duration {
        self.hold
    }

    /// The last estimate (bit/s), if any came.
    pub(super) fn estimate(&self) -> Option<u64> {
        self.estimate
    }

    /// Whether what crosses is held to the estimate now.
    pub(super) fn is_held(&self) -> bool {
        self.held.is_some()
    }
}

/// A source crossing a held link.
#[derive(Debug, Clone, Copy)]
pub(super) struct Crossing {
    /// The layers its far receivers use.
    pub(super) need: u8,
    /// What each layer costs (bit/s).
    pub(super) costs: [u64; 3],
    /// Video (layers may leave) or audio (always crosses).
    pub(super) video: bool,
}

/// How many layers of each crossing fit `budget_bps`: all they need when
/// that fits; else top layers leave, the costliest first, until it fits or
/// every video is down to its lowest layer.
pub(super) fn fit(crossings: &[Crossing], budget_bps: u64) -> Vec<u8> {
    let cost = |c: &Crossing, n: u8| -> u64 { c.costs.iter().take(usize::from(n)).sum() };
    let mut layers: Vec<u8> = crossings.iter().map(|c| c.need).collect();
    let mut total: u64 = crossings
        .iter()
        .zip(&layers)
        .map(|(c, &n)| cost(c, n))
        .sum();
    while total > budget_bps {
        let top = |i: usize| crossings[i].costs[usize::from(layers[i]).min(3) - 1];
        let Some(i) = (0..crossings.len())
            .filter(|&i| crossings[i].video && layers[i] > 1)
            .max_by_key(|&i| top(i))
        else {
            break;
        };
        total = total.saturating_sub(top(i));
        layers[i] -= 1;
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIDEO: [u64; 3] = [100_000, 300_000, 1_000_000];

    fn video(need: u8) -> Crossing {
        Crossing {
            need,
            costs: VIDEO,
            video: true,
        }
    }

    #[test]
    fn what_fits_keeps_every_layer_used_and_the_costliest_tops_leave_first() {
        let audio = Crossing {
            need: 1,
            costs: [40_000, 0, 0],
            video: false,
        };
        let all = [video(3), video(2), audio];
        assert_eq!(fit(&all, 10_000_000), [3, 2, 1]);
        // 1.84 Mbit/s of use, 1.5 allowed: the 720p layer leaves
        assert_eq!(fit(&all, 1_500_000), [2, 2, 1]);
        // 0.7 allowed: then a 360p one (of two that cost the same, the
        // later one)
        assert_eq!(fit(&all, 700_000), [2, 1, 1]);
        // nothing fits: every video keeps its lowest layer, audio stays
        assert_eq!(fit(&all, 1_000), [1, 1, 1]);
        // a source nobody uses stays out
        assert_eq!(fit(&[video(0), audio], 1_000), [0, 1]);
    }

    #[test]
    fn a_link_is_held_on_congestion_and_freed_after_the_hold_doubling_on_relapse() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut l = RelayLink::default();
        // a steady estimate, and a fall without loss: no hold
        assert_eq!(l.on_estimate(at(0), 3_000_000, 0.0), None);
        assert_eq!(l.on_estimate(at(500), 2_000_000, 0.0), None);
        assert_eq!(l.budget(), None);
        // loss with the fall: held to the estimate
        assert_eq!(l.on_estimate(at(1000), 1_800_000, 0.1), Some(Change::Held));
        assert_eq!(l.budget(), Some(1_800_000));
        assert_eq!(l.on_estimate(at(1500), 1_900_000, 0.0), None);
        assert_eq!(
            l.budget(),
            Some(1_900_000),
            "the budget follows the estimate"
        );
        // congestion counts for FALL_MEMORY (10 s) after the loss; then the
        // hold runs
        let last = 1000 + crate::allocator::FALL_MEMORY.as_millis() as u64 - 100;
        l.on_estimate(at(last), 1_900_000, 0.0);
        assert_eq!(l.free_if_due(at(last + 4_900)), None);
        assert_eq!(l.free_if_due(at(last + 5_000)), Some(Change::Freed));
        assert_eq!(l.budget(), None);
        // congested again soon after: a relapse, held twice as long
        let again = last + 10_000;
        l.on_estimate(at(again), 3_000_000, 0.0);
        assert_eq!(
            l.on_estimate(at(again + 500), 1_000_000, 0.2),
            Some(Change::Held)
        );
        assert_eq!(l.hold(), 2 * HOLD);
        // a long quiet time after a lift: the hold starts short again
        let mut quiet = RelayLink::default();
        quiet.on_estimate(at(0), 3_000_000, 0.0);
        quiet.on_estimate(at(100), 1_000_000, 0.2);
        assert_eq!(quiet.free_if_due(at(20_000)), Some(Change::Freed));
        quiet.on_estimate(at(60_000), 3_000_000, 0.0);
        quiet.on_estimate(at(60_100), 1_000_000, 0.2);
        assert_eq!(quiet.hold(), HOLD);
    }
}
