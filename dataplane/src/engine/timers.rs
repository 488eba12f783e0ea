//! Periodic work: feedback and audio-level events, idle endpoints, receiver
//! reports to publishers, deferred keyframe requests.

use super::{Engine, Sink};
use crate::abi::Event;
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
