//! Send-side bandwidth estimation per receiver, sans-IO: the engine tells
//! it what it sent ([`Estimator::on_sent`], with the transport-wide
//! sequence number it stamped) and hands it the receiver's transport-cc
//! feedback ([`Estimator::on_transport_cc`]) or REMB
//! ([`Estimator::on_remb`]); [`Estimator::target_bps`] is what the receiver's
//! path carries. Delay-based ([`delay`], trendline) and loss-based
//! ([`rate::LossRate`]) estimates are combined as in GCC: the lower wins.
//! Probes ([`Estimator::start_probe`]: padding sent above the media rate)
//! let an app-limited sender find out whether a higher layer fits.
//!
//! The other direction, [`feedback::ReceiveRecorder`], reports to
//! publishers when their packets arrived, so that their own estimators let
//! them send every simulcast layer.

pub mod delay;
pub mod feedback;
pub mod history;
pub mod queue;
pub mod rate;
pub mod send_rate;

use delay::DelayDetector;
use history::{Report, SendHistory, Sent};
use queue::QueueDelay;
use rate::{DelayRate, LossRate};
use send_rate::SendRate;
use std::time::{Duration, Instant};
use switchyard_wire::rtcp::{PacketStatus, TransportCc};

/// Settings of an estimator.
#[derive(Debug, Clone, Copy)]
pub struct BweConfig {
    /// Where it starts (bit/s).
    pub initial_bps: u64,
    /// Never below (bit/s).
    pub min_bps: u64,
    /// Never above (bit/s).
    pub max_bps: u64,
}

impl Default for BweConfig {
    fn default() -> Self {
        BweConfig {
            // like Jitsi's: start where a 720p layer fits, and come down
            // fast when the path says otherwise
            initial_bps: 2_500_000,
            min_bps: 50_000,
            max_bps: 20_000_000,
        }
    }
}

/// Loss is judged over at least this many reported packets.
const LOSS_SAMPLE: u32 = 20;
/// Throughput is measured over at least this much arrival time (µs).
const THROUGHPUT_SPAN_US: i64 = 250_000;
/// A probe counts when at least this share of its packets arrived…
const PROBE_MIN_ARRIVED: f64 = 0.9;
/// …and at least this many.
const PROBE_MIN_PACKETS: u32 = 5;
/// Sending less than this share of the estimate, a sender is app-limited:
/// what gets through is what it chose to send.
const APP_LIMITED: f64 = 0.5;
/// A queue of at most this (ms) counts as drained.
const DRAINED_MS: f64 = 10.0;
/// An app-limited sender believes overuse once the queue has stayed this
/// long (a 72 kB keyframe takes about 290 ms through 2 Mbit/s).
const QUEUE_PERSIST: Duration = Duration::from_millis(500);
/// Without transport-cc feedback for this long, REMB (if any) rules.
const TWCC_STALE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Probe {
    start: Instant,
    end: Instant,
    target_bps: f64,
    bytes: u64,
    first_arrival: Option<i64>,
    last_arrival: i64,
    received: u32,
    lost: u32,
    done_sending_seen: bool,
}

/// One receiver's estimator.
pub struct Estimator {
    config: BweConfig,
    history: SendHistory,
    delay: DelayDetector,
    queue: QueueDelay,
    /// Since when the queue has not drained.
    queued_since: Option<Instant>,
    delay_rate: DelayRate,
    loss_rate: LossRate,
    epoch: Option<Instant>,
    /// Unwrapped transport-cc reference time (64 ms units).
    reference: Option<(u32, i64)>,
    throughput: (u64, Option<i64>, i64),
    acked_bps: Option<f64>,
    /// The last throughput span alone.
    acked_latest: Option<f64>,
    /// What left lately, keyframes and quiet moments together.
    sending: SendRate,
    loss_counts: (u32, u32),
    last_loss: f64,
    last_update: Option<Instant>,
    last_loss_update: Option<Instant>,
    last_twcc: Option<Instant>,
    remb_bps: Option<u64>,
    probe: Option<Probe>,
}

impl Estimator {
    /// A fresh estimator.
    pub fn new(config: BweConfig) -> Estimator {
        let (i, lo, hi) = (
            config.initial_bps as f64,
            config.min_bps as f64,
            config.max_bps as f64,
        );
        Estimator {
            config,
            history: SendHistory::default(),
            delay: DelayDetector::default(),
            queue: QueueDelay::default(),
            queued_since: None,
            delay_rate: DelayRate::new(i, lo, hi),
            loss_rate: LossRate::new(i, lo, hi),
            epoch: None,
            reference: None,
            throughput: (0, None, 0),
            acked_bps: None,
            acked_latest: None,
            sending: SendRate::default(),
            loss_counts: (0, 0),
            last_loss: 0.0,
            last_update: None,
            last_loss_update: None,
            last_twcc: None,
            remb_bps: None,
            probe: None,
        }
    }

    /// The estimate (bit/s).
    pub fn target_bps(&self) -> u64 {
        let twcc_fresh = self.last_twcc.is_some();
        match (twcc_fresh, self.remb_bps) {
            (false, Some(remb)) => remb.clamp(self.config.min_bps, self.config.max_bps),
            _ => self.delay_rate.rate().min(self.loss_rate.rate()) as u64,
        }
    }

    /// Whether any feedback (transport-cc or REMB) has arrived.
    pub fn has_feedback(&self) -> bool {
        self.last_update.is_some() || self.remb_bps.is_some()
    }

    /// Throughput the receiver acknowledged lately (bit/s).
    pub fn acked_bps(&self) -> Option<u64> {
        self.acked_bps.map(|b| b as u64)
    }

    /// How long (ms) the latest reported packet waited in the path's queue
    /// beyond the lowest delay seen lately.
    pub fn queued_ms(&self) -> f64 {
        self.queue.queued_ms()
    }

    /// Fraction of packets lost in the last loss sample.
    pub fn loss(&self) -> f64 {
        self.last_loss
    }

    /// A probe is running.
    pub fn probing(&self, now: Instant) -> bool {
        self.probe_target(now).is_some()
    }

    /// While a probe runs, the rate (bit/s) to send at in total: the
    /// caller pads up to it.
    pub fn probe_target(&self, now: Instant) -> Option<u64> {
        self.probe
            .filter(|p| now < p.end)
            .map(|p| p.target_bps as u64)
    }

    /// A packet stamped with transport-wide sequence number `seq` left now
    /// (`probe`: padding sent to probe).
    pub fn on_sent(&mut self, seq: u16, now: Instant, size: usize, probe: bool) {
        self.epoch.get_or_insert(now);
        self.history.record(seq, now, size, probe);
        self.sending.add(now, size);
    }

    /// Starts a probe: the caller sends padding so that the total reaches
    /// `target_bps` until `now + duration`; the feedback on those packets
    /// says whether the path carries it.
    pub fn start_probe(&mut self, now: Instant, target_bps: u64, duration: Duration) {
        self.probe = Some(Probe {
            start: now,
            end: now + duration,
            target_bps: target_bps as f64,
            bytes: 0,
            first_arrival: None,
            last_arrival: 0,
            received: 0,
            lost: 0,
            done_sending_seen: false,
        });
    }

    /// A REMB from the receiver (used when transport-cc is not negotiated).
    pub fn on_remb(&mut self, bps: u64) {
        self.remb_bps = Some(bps);
    }

    /// The highest fraction lost (of 256) in a receiver report: without
    /// transport-cc, the loss [`Estimator::loss`] gives.
    pub fn on_report_loss(&mut self, fraction_lost: u8) {
        if self.last_twcc.is_none() {
            self.last_loss = f64::from(fraction_lost) / 256.0;
        }
    }

    /// Lets transport-cc go stale (called periodically).
    pub fn on_tick(&mut self, now: Instant) {
        if self
            .last_twcc
            .is_some_and(|t| now.saturating_duration_since(t) > TWCC_STALE)
        {
            self.last_twcc = None;
        }
    }

    /// A transport-cc feedback packet from the receiver.
    pub fn on_transport_cc(&mut self, now: Instant, fb: &TransportCc<'_>) {
        let mut arrival = self.unwrap_reference(fb.reference_time()) * 64_000;
        for (seq, status) in fb.packets() {
            let at = match status {
                PacketStatus::NotReceived => None,
                PacketStatus::Received(delta) => {
                    arrival += i64::from(delta) * 250;
                    Some(arrival)
                }
            };
            match self.history.report(seq, at.is_some()) {
                Report::First(sent) => self.packet(Some(sent), at),
                Report::LateArrival(sent) => self.late_arrival(sent),
                Report::Known => {}
            }
        }
        self.update(now);
    }

    /// A packet first reported lost arrived after all: one loss is taken
    /// back from the current sample (the one that counted it, or the next,
    /// so that over two samples the count is right). Its arrival time is
    /// out of order and stays out of the delay detector.
    fn late_arrival(&mut self, sent: Sent) {
        self.loss_counts.1 = self.loss_counts.1.saturating_sub(1);
        if let Some(p) = self.probe.as_mut()
            && sent.at >= p.start
            && sent.at < p.end
        {
            p.lost = p.lost.saturating_sub(1);
            p.received += 1;
        }
    }

    /// One packet's fate from feedback: its send record (if still known)
    /// and arrival time in µs of the receiver's clock (`None`: lost).
    pub fn packet(&mut self, sent: Option<Sent>, arrival_us: Option<i64>) {
        let Some(sent) = sent else { return };
        let epoch = *self.epoch.get_or_insert(sent.at);
        let send_us = sent.at.saturating_duration_since(epoch).as_micros() as u64;
        self.loss_counts.0 += 1;
        if let Some(p) = self.probe.as_mut()
            && sent.at >= p.start
        {
            if sent.at >= p.end {
                p.done_sending_seen = true;
            } else if let Some(a) = arrival_us {
                p.bytes += u64::from(sent.size);
                p.received += 1;
                p.first_arrival.get_or_insert(a);
                p.last_arrival = p.last_arrival.max(a);
            } else {
                p.lost += 1;
            }
        }
        let Some(a) = arrival_us else {
            self.loss_counts.1 += 1;
            return;
        };
        let (bytes, first, last) = &mut self.throughput;
        *bytes += u64::from(sent.size);
        first.get_or_insert(a);
        *last = (*last).max(a);
        self.delay.packet(send_us, a);
        self.queue.packet(send_us, a);
    }

    /// Applies what the packets since the last update said.
    pub fn update(&mut self, now: Instant) {
        self.last_twcc = Some(now);
        let (bytes, first, last) = self.throughput;
        if let Some(first) = first
            && last - first >= THROUGHPUT_SPAN_US
        {
            let bps = bytes as f64 * 8.0 * 1e6 / (last - first) as f64;
            self.acked_bps = Some(match self.acked_bps {
                Some(old) => 0.5 * old + 0.5 * bps,
                None => bps,
            });
            self.acked_latest = Some(bps);
            self.throughput = (0, None, 0);
        }
        let dt = self
            .last_update
            .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
        self.last_update = Some(now);
        // backing off, the latest span counts more than the average: when a
        // path narrows at once, what got through just now is what it carries
        let usage = self.judge(now, self.delay.usage());
        let acked = match (usage, self.acked_bps, self.acked_latest) {
            (delay::Usage::Overuse, Some(avg), Some(latest)) => Some(avg.min(latest)),
            _ => self.acked_bps,
        };
        self.delay_rate.update(dt, usage, acked);
        let (reported, lost) = self.loss_counts;
        if reported >= LOSS_SAMPLE {
            self.last_loss = f64::from(lost) / f64::from(reported);
            let dt = self
                .last_loss_update
                .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
            self.last_loss_update = Some(now);
            self.loss_rate.update(dt, self.last_loss, self.acked_bps);
            self.loss_counts = (0, 0);
        }
        self.finish_probe();
    }

    /// The detector's verdict as the rate takes it. A sender filling its
    /// estimate believes overuse at once. One sending well under it (an
    /// SFU forwarding a low layer) meets queues of its own making — a
    /// keyframe sent in one burst, a receiver too busy to read for a
    /// moment — that drain by themselves, and backing off to 0.85 × what
    /// it chose to send would take its receivers' high layers away for
    /// nothing: it holds until the queue has stayed [`QUEUE_PERSIST`],
    /// then backs off as usual.
    fn judge(&mut self, now: Instant, usage: delay::Usage) -> delay::Usage {
        if self.queue.queued_ms() <= DRAINED_MS {
            self.queued_since = None;
        } else {
            self.queued_since.get_or_insert(now);
        }
        let app_limited = self.sending.bps(now) < APP_LIMITED * self.delay_rate.rate();
        let passing = self
            .queued_since
            .is_none_or(|t| now.saturating_duration_since(t) < QUEUE_PERSIST);
        if usage == delay::Usage::Overuse && app_limited && passing {
            delay::Usage::Underuse // the rate holds: neither cut nor grown
        } else {
            usage
        }
    }

    /// Once every probe packet is reported: if the path carried the probe
    /// without a queue building and most of it arrived, both rates start
    /// from what arrived per second. A stray loss (a receiver busy for a
    /// moment) does not void a probe — the rate counts only what got
    /// through, so a path that drops a probe's excess measures as narrow.
    fn finish_probe(&mut self) {
        let Some(p) = self.probe else { return };
        if !p.done_sending_seen {
            return;
        }
        self.probe = None;
        let Some(first) = p.first_arrival else { return };
        let span = p.last_arrival - first;
        if span <= 0 {
            return;
        }
        let carried = p.bytes as f64 * 8.0 * 1e6 / span as f64;
        let arrived = p.received >= PROBE_MIN_PACKETS
            && f64::from(p.received) >= PROBE_MIN_ARRIVED * f64::from(p.received + p.lost);
        let clean = self.delay.usage() != delay::Usage::Overuse && arrived;
        if clean {
            let bps = carried.min(p.target_bps);
            self.delay_rate.raise_to(bps);
            self.loss_rate.raise_to(bps);
        }
    }

    /// Unwraps the 24-bit reference time against the previous one.
    fn unwrap_reference(&mut self, r: u32) -> i64 {
        let value = match self.reference {
            None => i64::from(r),
            Some((last, value)) => {
                let mut d = i64::from(r) - i64::from(last);
                if d > 1 << 23 {
                    d -= 1 << 24;
                } else if d < -(1 << 23) {
                    d += 1 << 24;
                }
                value + d
            }
        };
        self.reference = Some((r, value));
        value
    }
}

#[cfg(test)]
mod tests;
