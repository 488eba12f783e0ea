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
//! Then the link is *held*: what crosses is fitted to the estimate (the top
//! layers leave, the costliest first, never a video's lowest layer and never
//! audio). While what the far receivers use does not fit, the link is
//! probed (padding up to what they use, as for a browser) rather than given
//! the layers back to find out: layers that do not fit freeze every far
//! receiver of them when they congest the link again. The hold ends when the
//! estimate covers what is used and the link has shown no congestion for
//! [`HOLD`].

use super::allocation::{PROBE_GAP, PROBE_OVERSHOOT, PROBE_STEP, Probing, RecentEstimates};
use std::time::{Duration, Instant};

/// A held link is freed no sooner than this after it last showed
/// congestion.
pub(super) const HOLD: Duration = Duration::from_secs(5);

/// What happened to a link's hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Congestion: what crosses is held to the estimate from now on.
    Held,
    /// The estimate covers what is used and no congestion for the hold:
    /// the link carries what is used again.
    Freed,
}

/// One sending end's view of its relay link.
#[derive(Debug, Clone, Default)]
pub(super) struct RelayLink {
    recent: RecentEstimates,
    estimate: Option<u64>,
    /// While held: when the link last showed congestion.
    held: Option<Instant>,
    probing: Probing,
}

impl RelayLink {
    /// A new estimate of the link (bit/s) and the loss (fraction) reported
    /// with it. `Some(Held)` when this starts a hold.
    pub(super) fn on_estimate(&mut self, now: Instant, estimate: u64, loss: f64) -> Option<Change> {
        self.recent.record(now, estimate, loss);
        self.estimate = Some(estimate);
        self.probing.on_estimate(now, estimate);
        if !self.recent.congested(now) {
            return None;
        }
        let started = self.held.is_none();
        self.held = Some(now);
        started.then_some(Change::Held)
    }

    /// Frees a hold once the estimate covers `used_bps` (what the far
    /// receivers use) and the link has shown no congestion for [`HOLD`].
    pub(super) fn free_if_due(&mut self, now: Instant, used_bps: u64) -> Option<Change> {
        let last = self.held?;
        if now.saturating_duration_since(last) < HOLD || self.estimate? < used_bps {
            return None;
        }
        self.held = None;
        Some(Change::Freed)
    }

    /// The rate to probe a held link at now (bit/s), when what the far
    /// receivers use (`used_bps`) does not fit its estimate: above it by the
    /// allocator's overshoot, at most [`PROBE_STEP`] × the estimate; none
    /// within [`PROBE_GAP`] of a fall (the queue is still full then), and
    /// the gap between probes doubling while they do not raise the estimate.
    pub(super) fn probe(&mut self, now: Instant, used_bps: u64) -> Option<u64> {
        let estimate = self.budget()?;
        if estimate >= used_bps || self.recent.fell_within(now, PROBE_GAP) {
            return None;
        }
        if !self.probing.start(now, estimate) {
            return None;
        }
        let aim = (used_bps as f64 * PROBE_OVERSHOOT) as u64;
        Some(aim.min(PROBE_STEP * estimate).max(1))
    }

    /// What may cross while the link is held (its estimate, bit/s); `None`
    /// while it is not.
    pub(super) fn budget(&self) -> Option<u64> {
        self.held.and(self.estimate)
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

/// What the crossings cost with `layers` of each.
pub(super) fn cost(crossings: &[Crossing], layers: impl IntoIterator<Item = u8>) -> u64 {
    crossings
        .iter()
        .zip(layers)
        .map(|(c, n)| c.costs.iter().take(usize::from(n)).sum::<u64>())
        .sum()
}

/// How many layers of each crossing fit `budget_bps`: all they need when
/// that fits; else top layers leave, the costliest first, until it fits or
/// every video is down to its lowest layer.
pub(super) fn fit(crossings: &[Crossing], budget_bps: u64) -> Vec<u8> {
    let mut layers: Vec<u8> = crossings.iter().map(|c| c.need).collect();
    let mut total = cost(crossings, layers.iter().copied());
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
    fn a_link_is_held_on_congestion_probed_and_freed_once_the_estimate_covers_the_use() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let used = 1_500_000;
        let mut l = RelayLink::default();
        // a steady estimate, and a fall without loss: no hold
        assert_eq!(l.on_estimate(at(0), 3_000_000, 0.0), None);
        assert_eq!(l.on_estimate(at(500), 2_000_000, 0.0), None);
        assert_eq!((l.budget(), l.probe(at(500), used)), (None, None));
        // loss with the fall: held to the estimate
        assert_eq!(l.on_estimate(at(1000), 800_000, 0.1), Some(Change::Held));
        assert_eq!(l.budget(), Some(800_000));
        assert_eq!(l.on_estimate(at(1500), 900_000, 0.0), None);
        assert_eq!(l.budget(), Some(900_000), "the budget follows the estimate");
        // no probe while the queue the fall showed drains (the last fall
        // was at 1.5 s: 0.9 is below 0.85 × the 3.0 of the last 2 s)
        assert_eq!(l.probe(at(3400), used), None);
        // then one toward what is used, 1.25 × over
        assert_eq!(l.probe(at(3600), used), Some(1_875_000));
        // it did not raise the estimate: the next waits twice the gap
        l.on_estimate(at(4700), 900_000, 0.0);
        assert_eq!(l.probe(at(7500), used), None);
        assert_eq!(l.probe(at(7700), used), Some(1_875_000));
        // congestion counts for FALL_MEMORY (10 s) after the loss; the hold
        // is not freed while the estimate does not cover the use
        l.on_estimate(at(10_900), 900_000, 0.0);
        assert_eq!(l.free_if_due(at(16_000), used), None);
        assert!(l.is_held());
        // a probe raised it: freed after the hold
        l.on_estimate(at(16_100), 1_600_000, 0.0);
        assert_eq!(l.probe(at(16_200), used), None, "covered: no probe");
        assert_eq!(l.free_if_due(at(16_200), used), Some(Change::Freed));
        assert_eq!(l.budget(), None);
        // within the hold after congestion, even a covering estimate waits
        let mut short = RelayLink::default();
        short.on_estimate(at(0), 3_000_000, 0.0);
        short.on_estimate(at(100), 1_000_000, 0.2);
        short.on_estimate(at(200), 2_000_000, 0.0);
        assert_eq!(short.free_if_due(at(3_000), used), None);
    }
}
