//! The hub's side of layer allocation: receivers' wishes from
//! `constraints`, their bandwidth estimates and the sources' layer rates
//! from the dataplane, the room's speaker order — turned by
//! [`crate::allocator::allocate`] into target layers (and probes) for the
//! dataplane.

use super::{Hub, parse_sid};
use crate::allocator::{
    AUDIO_OVERHEAD_BPS, NOMINAL_AUDIO_BPS, ReceiverView, SourceView, Target, allocate,
};
use crate::signalling::ProtocolError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::Command;
use switchyard_dataplane::abi::command::PAUSED;
use webrtc_sdp::media_type::SdpMediaValue;

/// A receiver's `constraints`.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Wishes {
    max_height: BTreeMap<u64, u32>,
    selected: Vec<u64>,
    on_stage: Vec<u64>,
}

/// Probes toward a receiver start this far apart; each probe that does
/// not raise the estimate doubles the gap (up to [`PROBE_GAP_MAX`]), so a
/// path that is really full is not hammered, and one that raised it by a
/// fifth or more is followed at once.
pub(super) const PROBE_GAP: Duration = Duration::from_secs(2);
const PROBE_GAP_MAX: Duration = Duration::from_secs(6);
/// A probe asks for at most this multiple of the current estimate.
pub(super) const PROBE_STEP: u64 = 4;
/// How long a probe pads.
pub(super) const PROBE_MS: u32 = 400;
/// A probe aims this far above what the wishes cost, so that an upgrade
/// has its headroom once the probe succeeds.
pub(super) const PROBE_OVERSHOOT: f64 = 1.25;

/// A receiver's estimates of the last [`crate::allocator::PAUSE_HOLD`], and
/// when the estimate last fell and when the receiver last lost packets.
#[derive(Debug, Clone, Default)]
pub(super) struct RecentEstimates {
    window: std::collections::VecDeque<(Instant, u64)>,
    last_fall: Option<Instant>,
    last_loss: Option<Instant>,
}

impl RecentEstimates {
    /// A new estimate and the loss reported with it; estimates older than
    /// the hold are forgotten.
    pub(super) fn record(&mut self, now: Instant, estimate: u64, loss: f64) {
        use crate::allocator::{CONGESTION_LOSS, FALL_FRACTION, PAUSE_HOLD};
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > PAUSE_HOLD)
        {
            self.window.pop_front();
        }
        if self
            .max()
            .is_some_and(|m| (estimate as f64) < FALL_FRACTION * m as f64)
        {
            self.last_fall = Some(now);
        }
        if loss >= CONGESTION_LOSS {
            self.last_loss = Some(now);
        }
        self.window.push_back((now, estimate));
    }

    /// The estimate fell within `d` of `now`.
    pub(super) fn fell_within(&self, now: Instant, d: Duration) -> bool {
        self.last_fall
            .is_some_and(|t| now.saturating_duration_since(t) < d)
    }

    /// The highest of them.
    fn max(&self) -> Option<u64> {
        self.window.iter().map(|(_, e)| *e).max()
    }

    /// Within [`crate::allocator::FALL_MEMORY`] of `now` the estimate fell
    /// and the receiver lost packets.
    pub(super) fn congested(&self, now: Instant) -> bool {
        let lately = |t: Option<Instant>| {
            t.is_some_and(|t| now.saturating_duration_since(t) < crate::allocator::FALL_MEMORY)
        };
        lately(self.last_fall) && lately(self.last_loss)
    }
}

/// Probing state of one receiver.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probing {
    last: Option<Instant>,
    gap: Duration,
    /// The estimate when the last probe started, until it is judged.
    estimate_before: Option<u64>,
}

impl Default for Probing {
    fn default() -> Self {
        Probing {
            last: None,
            gap: PROBE_GAP,
            estimate_before: None,
        }
    }
}

impl Probing {
    /// A new estimate arrived: judge the last probe once it is over.
    pub(super) fn on_estimate(&mut self, now: Instant, estimate: u64) {
        let (Some(before), Some(last)) = (self.estimate_before, self.last) else {
            return;
        };
        if now.saturating_duration_since(last) < Duration::from_millis(u64::from(PROBE_MS) + 600) {
            return;
        }
        self.estimate_before = None;
        if estimate as f64 >= 1.2 * before as f64 {
            // the path had room: while the wishes still do not fit, the
            // next probe follows at once (from the higher estimate, so the
            // ramp is geometric) rather than after the gap
            self.last = None;
            self.gap = PROBE_GAP;
        } else {
            self.gap = (self.gap * 2).min(PROBE_GAP_MAX);
        }
    }

    /// The receiver's wishes changed: the next probe need not wait for the
    /// gap (but not while one is still running).
    fn wishes_changed(&mut self, now: Instant) {
        let running = self.last.is_some_and(|t| {
            now.saturating_duration_since(t) < Duration::from_millis(u64::from(PROBE_MS))
        });
        if !running {
            self.last = None;
            self.gap = PROBE_GAP;
        }
    }

    /// Whether a probe may start now (and records it if so).
    pub(super) fn start(&mut self, now: Instant, estimate: u64) -> bool {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < self.gap)
        {
            return false;
        }
        self.last = Some(now);
        self.estimate_before = Some(estimate);
        true
    }
}

fn ids(list: &[String]) -> Vec<u64> {
    list.iter().filter_map(|s| parse_sid(s)).collect()
}

impl Hub {
    pub(super) fn on_constraints(
        &mut self,
        now: Instant,
        id: u64,
        max_height: &BTreeMap<String, u32>,
        selected: &[String],
        on_stage: &[String],
    ) -> Result<(), ProtocolError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        p.wishes = Wishes {
            max_height: max_height
                .iter()
                .filter_map(|(s, &h)| Some((parse_sid(s)?, h)))
                .collect(),
            selected: ids(selected),
            on_stage: ids(on_stage),
        };
        p.probing.wishes_changed(now);
        self.reallocate(now, id);
        Ok(())
    }

    /// What receiver `id` sees: its video subscriptions with their wishes,
    /// speaker ranks and layer rates.
    fn receiver_view(&self, now: Instant, id: u64) -> Option<ReceiverView> {
        let p = self.participants.get(&id)?;
        let speakers = self
            .rooms
            .get(&p.room)
            .map(|r| r.speakers.as_slice())
            .unwrap_or(&[]);
        let sources = p
            .subscriptions
            .iter()
            .filter_map(|sub| {
                let publisher = self.participants.get(&sub.publisher)?;
                let published = publisher
                    .published
                    .iter()
                    .find(|s| s.source == sub.source)?;
                (published.kind == SdpMediaValue::Video).then(|| SourceView {
                    source: sub.source,
                    speaker_rank: speakers.iter().position(|&s| s == sub.publisher),
                    selected: p.wishes.selected.contains(&sub.source),
                    on_stage: p.wishes.on_stage.contains(&sub.source),
                    // a video a moderator muted is drawn nowhere
                    max_height: match published.held {
                        true => Some(0),
                        false => p.wishes.max_height.get(&sub.source).copied(),
                    },
                    layer_bps: self
                        .layer_rates
                        .get(&sub.source)
                        .map(|r| r.costs())
                        .unwrap_or_default(),
                    layers: published.layers,
                    screen: published.content == crate::signalling::Content::Screen,
                })
            })
            .collect();
        // its audio subscriptions at their reported rates, on the wire
        let audio_bps = p
            .subscriptions
            .iter()
            .filter(|sub| {
                self.participants
                    .get(&sub.publisher)
                    .is_some_and(|publisher| {
                        publisher
                            .published
                            .iter()
                            .any(|s| s.source == sub.source && s.kind == SdpMediaValue::Audio)
                    })
            })
            .map(|sub| {
                let reported = self
                    .layer_rates
                    .get(&sub.source)
                    .map_or(0, |r| r.costs()[0]);
                let bps = match reported {
                    0 => NOMINAL_AUDIO_BPS,
                    bps => u64::from(bps),
                };
                bps + AUDIO_OVERHEAD_BPS
            })
            .sum();
        Some(ReceiverView {
            estimate_bps: p.estimate,
            recent_max_bps: p.recent_estimates.max(),
            congested: p.recent_estimates.congested(now),
            audio_bps,
            last_n: self.config.last_n,
            sources,
        })
    }

    /// Recomputes receiver `id`'s layers; sends what changed to the
    /// dataplane, and a probe when its wishes do not fit its estimate.
    pub(super) fn reallocate(&mut self, now: Instant, id: u64) {
        let Some(view) = self.receiver_view(now, id) else {
            return;
        };
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let next = allocate(&view, &p.allocation);
        let changed: Vec<(u64, Target)> = next
            .targets
            .iter()
            .filter(|(s, t)| p.allocation.targets.get(s) != Some(t))
            .map(|(&s, &t)| (s, t))
            .collect();
        let probe = match view.estimate_bps {
            Some(estimate)
                if next.wanted_bps > next.cost_bps
                    && p.connected
                    // none within the gap of a fall of the estimate: the
                    // path's queue is still full then, and padding on top
                    // of it is lost along with media (a probe to 590 kbit/s
                    // sent as a 400 kbit/s path's estimate fell lost up to
                    // 73 % of a fifth of a second's packets, the new
                    // layer's keyframe among them)
                    && !p.recent_estimates.fell_within(now, PROBE_GAP)
                    && p.probing.start(now, estimate) =>
            {
                // the probe's target is all that is sent, audio included
                let aim = ((next.wanted_bps + view.audio_bps) as f64 * PROBE_OVERSHOOT) as u64;
                Some(aim.min(PROBE_STEP * estimate.max(next.cost_bps)))
            }
            _ => None,
        };
        if !changed.is_empty() || probe.is_some() {
            tracing::debug!(target: "switchyard::alloc", participant = id, estimate = ?view.estimate_bps, cost = next.cost_bps, wanted = next.wanted_bps, ?changed, ?probe, "allocation");
        }
        p.allocation = next;
        let room = (!changed.is_empty()).then(|| p.room.clone());
        for (source, target) in changed {
            let layer = match target {
                Target::Paused => PAUSED,
                Target::Layer(l) => l,
            };
            self.for_endpoint(
                id,
                Command::SetTargetLayer {
                    endpoint: id,
                    source,
                    layer,
                },
            );
        }
        if let Some(room) = room {
            // a far receiver given a higher layer: the relay carries it now
            self.fit_relays(&room, None);
        }
        if let Some(target_bps) = probe {
            // the probe's padding rides on top of the allocated media
            self.for_endpoint(
                id,
                Command::Probe {
                    endpoint: id,
                    target_bps: target_bps.max(1),
                    duration_ms: PROBE_MS,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RecentEstimates;
    use std::time::{Duration, Instant};

    #[test]
    fn a_fall_of_the_estimate_with_loss_is_congestion_for_a_while() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        let mut r = RecentEstimates::default();
        // a REMB climbing 8 % a second, with a few percent of noise
        for (i, e) in [44_000, 43_000, 46_000, 50_000, 49_000, 54_000]
            .iter()
            .enumerate()
        {
            r.record(at(500 * i as u64), *e, 0.0);
        }
        assert!(!r.congested(at(3000)));
        // a backoff to 0.85 × what arrived, no loss: a late reader
        r.record(at(3000), 40_000, 0.0);
        assert!(!r.congested(at(3000)));
        // and loss (still below the window's 54k: a fall too)
        r.record(at(3500), 40_000, 0.08);
        assert!(r.congested(at(3500)));
        assert!(r.congested(at(13_499)));
        assert!(!r.congested(at(13_500)));
        // loss alone, the estimate steady
        r.record(at(20_000), 40_000, 0.2);
        assert!(!r.congested(at(20_000)));
    }
}
