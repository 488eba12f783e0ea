//! Periodic work: feedback and audio-level events, idle endpoints, receiver
//! reports to publishers, deferred keyframe requests.

use super::{Engine, Sink};
use crate::abi::{Counter, Event};
use std::time::{Duration, Instant};
use switchyard_wire::rtcp::{ReceiverReportRepr, ReportBlock};

/// True (and re-arms) when a periodic deadline has passed.
fn due(next: &mut Option<Instant>, now: Instant, every: Duration) -> bool {
    match next {
        Some(t) if now < *t => false,
        _ => {
            *next = Some(now + every);
            true
        }
    }
}

impl Engine {
    /// Runs whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, sink: &mut dyn Sink) {
        if due(&mut self.next_feedback, now, self.config.feedback_interval) {
            for (_, ep) in self.endpoints.iter_mut() {
                let f = std::mem::take(&mut ep.feedback);
                if f.any {
                    sink.event(Event::Feedback {
                        endpoint: ep.id,
                        nacks: f.nacks,
                        retransmitted: f.retransmitted,
                        keyframe_requests: f.keyframe_requests,
                        remb_bps: f.remb_bps,
                        twcc_reported: f.twcc_reported,
                        twcc_lost: f.twcc_lost,
                        fraction_lost: f.fraction_lost,
                    });
                }
            }
        }
        if due(&mut self.next_audio, now, self.config.audio_level_interval) {
            for (_, src) in self.sources.iter_mut() {
                if let Some((level, voice)) = src.audio_level.take() {
                    sink.event(Event::AudioLevel {
                        source: src.spec.id,
                        level,
                        voice,
                    });
                }
            }
        }
        if due(&mut self.next_idle_check, now, Duration::from_millis(500)) {
            let idle_after = self.config.idle_after;
            for (_, ep) in self.endpoints.iter_mut() {
                let idle = now.saturating_duration_since(ep.last_rx);
                if idle >= idle_after && !ep.idle_reported {
                    ep.idle_reported = true;
                    sink.event(Event::EndpointIdle {
                        endpoint: ep.id,
                        idle_ms: idle.as_millis() as u64,
                    });
                }
            }
        }
        if due(&mut self.next_rtcp, now, self.config.rtcp_interval) {
            self.send_receiver_reports(now, sink);
            self.report_source_rates(now, sink);
        }
        if due(
            &mut self.next_bandwidth,
            now,
            self.config.bandwidth_interval,
        ) {
            for (_, ep) in self.endpoints.iter_mut() {
                ep.bwe.on_tick(now);
                if !ep.bwe.has_feedback() {
                    continue;
                }
                sink.event(Event::Bandwidth {
                    endpoint: ep.id,
                    estimate_bps: ep.bwe.target_bps(),
                    acked_bps: ep.bwe.acked_bps().unwrap_or(0),
                    loss: (ep.bwe.loss() * 256.0).clamp(0.0, 255.0) as u8,
                    probing: ep.bwe.probing(now),
                });
            }
        }
        self.pad_probes(now, sink);
        if due(
            &mut self.next_twcc,
            now,
            crate::bwe::feedback::FEEDBACK_INTERVAL,
        ) {
            self.send_transport_feedback(sink);
        }
        // requests deferred by the throttle go out when their window ends
        let window = self.config.keyframe_window;
        for s in 0..self.sources.bound() {
            let Some(layers) = self.sources.get(s).map(|src| src.spec.layer_count) else {
                continue;
            };
            for l in 0..layers {
                let due = self
                    .sources
                    .get_mut(s)
                    .is_some_and(|src| src.layers[l as usize].throttle.due(now, window));
                if due {
                    self.send_keyframe_request(now, s, l, sink);
                }
            }
        }
        self.nack_again(now, sink);
    }

    /// Asks publishers and relays again for packets still missing a round
    /// trip after the last request.
    fn nack_again(&mut self, now: Instant, sink: &mut dyn Sink) {
        let mut lost = [0u16; super::missing::CAPACITY];
        for s in 0..self.sources.bound() {
            let Some(src) = self.sources.get_mut(s) else {
                continue;
            };
            let Some(e) = src.publisher else { continue };
            for l in 0..src.spec.layer_count as usize {
                let Some(src) = self.sources.get_mut(s) else {
                    break;
                };
                let layer = &mut src.layers[l];
                if layer.missing.is_empty() {
                    continue;
                }
                let due = layer.missing.due(now, &mut lost);
                let ssrc = layer.ssrc;
                self.counters
                    .add(Counter::UpstreamLossGivenUp, due.given_up as u64);
                if due.asked > 0 {
                    self.counters
                        .add(Counter::UpstreamNackRetries, due.asked as u64);
                    self.nack_upstream(e, ssrc, &lost[..due.asked], sink);
                }
            }
        }
    }

    /// Transport-cc feedback to every endpoint that sent stamped packets
    /// since the last round.
    fn send_transport_feedback(&mut self, sink: &mut dyn Sink) {
        let ssrc = self.config.rtcp_ssrc;
        for e in 0..self.endpoints.bound() {
            let mut report = [0u8; super::MAX_DATAGRAM - 32];
            let Some(n) = self.endpoints.get_mut(e).and_then(|ep| {
                let media = ep
                    .published
                    .first()
                    .and_then(|&s| self.sources.get(s))
                    .map_or(0, |src| src.layers[0].ssrc);
                ep.arrivals.feedback(ssrc, media, &mut report)
            }) else {
                continue;
            };
            self.send_rtcp(e, sink, |buf| {
                buf.get_mut(..n)?.copy_from_slice(&report[..n]);
                Some(n)
            });
        }
    }

    /// What each local source's layers carried since the last report.
    fn report_source_rates(&mut self, now: Instant, sink: &mut dyn Sink) {
        let since = self.last_rates.replace(now);
        let Some(since) = since else { return };
        let secs = now.saturating_duration_since(since).as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        for (_, src) in self.sources.iter_mut() {
            if src.publisher.is_none() {
                continue;
            }
            let mut layer_bps = [0u32; 3];
            for (bps, l) in layer_bps.iter_mut().zip(src.layers.iter_mut()) {
                *bps = (std::mem::take(&mut l.bytes) as f64 * 8.0 / secs).min(f64::from(u32::MAX))
                    as u32;
            }
            sink.event(Event::SourceRates {
                source: src.spec.id,
                layer_bps,
            });
        }
    }

    /// Tops up the streams of subscribers being probed with RTX copies of
    /// their newest packets, so that what they receive reaches the probe's
    /// rate (paced in timer ticks).
    fn pad_probes(&mut self, now: Instant, sink: &mut dyn Sink) {
        for e in 0..self.endpoints.bound() {
            let Some(ep) = self.endpoints.get_mut(e) else {
                continue;
            };
            let Some(target) = ep.bwe.probe_target(now) else {
                ep.probe_tick = None;
                continue;
            };
            let last = ep.probe_tick.replace(now).unwrap_or(now);
            let dt = now.saturating_duration_since(last).as_secs_f64();
            let per_tick = target as f64 / 8.0 * dt;
            // credit: what the probe rate allows minus what media already used
            ep.probe_credit = (ep.probe_credit + per_tick
                - std::mem::take(&mut ep.sent_bytes) as f64)
                .clamp(-per_tick, 2.0 * per_tick);
            let mut budget = ep.probe_credit;
            let mut sent_any = true;
            while budget > 0.0 && sent_any {
                sent_any = false;
                let count = self.endpoints.get(e).map_or(0, |ep| ep.streams.len());
                for k in 0..count {
                    let Some(o) = self
                        .endpoints
                        .get(e)
                        .and_then(|ep| ep.streams.get(k).copied())
                    else {
                        break;
                    };
                    let Some(seq) = self.streams.get(o).and_then(|out| out.newest) else {
                        continue;
                    };
                    let before = self.endpoints.get(e).map_or(0, |ep| ep.sent_bytes);
                    if self.retransmit(now, o, seq, true, sink) {
                        sent_any = true;
                        let after = self.endpoints.get(e).map_or(0, |ep| ep.sent_bytes);
                        budget -= after.saturating_sub(before) as f64;
                    }
                    if budget <= 0.0 {
                        break;
                    }
                }
            }
            if let Some(ep) = self.endpoints.get_mut(e) {
                // what the padding sent is accounted now, not next tick
                ep.probe_credit = budget;
                ep.sent_bytes = 0;
            }
        }
    }

    /// One receiver report per local source to its publisher (RFC 3550
    /// §6.4.2), with loss and LSR/DLSR so the publisher can compute RTT.
    fn send_receiver_reports(&mut self, now: Instant, sink: &mut dyn Sink) {
        for s in 0..self.sources.bound() {
            let Some(src) = self.sources.get_mut(s) else {
                continue;
            };
            let Some(p) = src.publisher else { continue };
            let mut blocks = [ReportBlock::default(); crate::abi::command::MAX_LAYERS];
            let mut n = 0;
            for l in src.layers[..src.spec.layer_count as usize].iter_mut() {
                if l.ssrc == 0 || l.stats.received == 0 {
                    continue;
                }
                let (fraction_lost, cumulative_lost) = l.stats.report();
                let (last_sr, delay) = match l.last_sr {
                    Some((ntp, _, at)) => {
                        let d = now.saturating_duration_since(at);
                        (
                            (ntp >> 16) as u32,
                            (d.as_micros() as u64 * 65_536 / 1_000_000) as u32,
                        )
                    }
                    None => (0, 0),
                };
                blocks[n] = ReportBlock {
                    ssrc: l.ssrc,
                    fraction_lost,
                    cumulative_lost,
                    extended_highest_seq: l.stats.ext_highest,
                    jitter: 0,
                    last_sr,
                    delay_since_last_sr: delay,
                };
                n += 1;
            }
            if n > 0 {
                let rr = ReceiverReportRepr {
                    ssrc: self.config.rtcp_ssrc,
                    report_blocks: &blocks[..n],
                };
                self.send_rtcp(p, sink, |buf| rr.emit(buf).ok());
            }
        }
    }
}
