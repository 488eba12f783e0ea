//! The estimator against a simulated path: a bottleneck of some capacity
//! with a drop-tail queue, random loss, and a receiver that reports every
//! 50 ms. The sender paces 1200-byte packets at what the estimator allows
//! (optionally capped, as an SFU is, by what it has to send).

use super::*;
use switchyard_wire::rtcp::TransportCcRepr;

struct Path {
    capacity_bps: f64,
    base_delay_us: f64,
    max_queue_us: f64,
    loss: f64,
    queue_free_us: f64,
    /// A receiver busy for `.1` µs every `.0` µs: what arrives meanwhile is
    /// stamped when it looks again (a loaded machine decoding a keyframe).
    stalls: Option<(f64, f64)>,
    rng: u64,
}

impl Path {
    fn new(capacity_bps: f64) -> Path {
        Path {
            capacity_bps,
            base_delay_us: 20_000.0,
            max_queue_us: 300_000.0,
            loss: 0.0,
            queue_free_us: 0.0,
            stalls: None,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: deterministic runs
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// When a packet sent at `send_us` arrives, or `None` if dropped.
    fn carry(&mut self, send_us: f64, size: u16) -> Option<f64> {
        if self.random() < self.loss {
            return None;
        }
        let start = send_us.max(self.queue_free_us);
        if start - send_us > self.max_queue_us {
            return None;
        }
        self.queue_free_us = start + f64::from(size) * 8.0 * 1e6 / self.capacity_bps;
        let arrival = self.queue_free_us + self.base_delay_us;
        Some(match self.stalls {
            Some((every, busy)) if arrival % every < busy => arrival - arrival % every + busy,
            _ => arrival,
        })
    }
}

struct Sim {
    t0: Instant,
    now_us: f64,
    next_send_us: f64,
    seq: u16,
    est: Estimator,
    path: Path,
    /// (seq, send time µs, arrival) not yet reported
    in_flight: Vec<(u16, f64, Option<f64>)>,
    /// The sender has no more than this to send (bit/s); None: unlimited.
    app_limit: Option<f64>,
    /// Probe every this often (µs) when app-limited.
    probe_every_us: Option<f64>,
    next_probe_us: f64,
    /// Every `.0` µs, `.1` packets at once besides (a keyframe).
    bursts: Option<(f64, u32)>,
    next_burst_us: f64,
    /// Estimate every 100 ms: (seconds, bit/s).
    trace: Vec<(f64, f64)>,
}

impl Sim {
    fn new(capacity_bps: f64) -> Sim {
        Sim::starting_at(capacity_bps, 300_000)
    }

    fn starting_at(capacity_bps: f64, initial_bps: u64) -> Sim {
        Sim {
            t0: Instant::now(),
            now_us: 0.0,
            next_send_us: 0.0,
            seq: 0,
            est: Estimator::new(BweConfig {
                initial_bps,
                ..BweConfig::default()
            }),
            path: Path::new(capacity_bps),
            in_flight: Vec::new(),
            app_limit: None,
            probe_every_us: None,
            next_probe_us: 0.0,
            bursts: None,
            next_burst_us: 0.0,
            trace: Vec::new(),
        }
    }

    fn at(&self, us: f64) -> Instant {
        self.t0 + Duration::from_micros(us as u64)
    }

    fn run(&mut self, seconds: f64) {
        let end = self.now_us + seconds * 1e6;
        let mut next_feedback = self.now_us + 50_000.0;
        let mut next_trace = self.now_us;
        while self.now_us < end {
            let now = self.at(self.now_us);
            let probe = self.est.probe_target(now);
            let probing = probe.is_some();
            if let (Some(every), Some(limit)) = (self.probe_every_us, self.app_limit)
                && self.now_us >= self.next_probe_us
            {
                self.next_probe_us = self.now_us + every;
                let target = (self.est.target_bps() as f64).max(limit) * 2.0;
                self.est
                    .start_probe(now, target as u64, Duration::from_millis(300));
            }
            let rate = match (self.app_limit, probe) {
                (_, Some(p)) => p as f64,
                (Some(limit), None) => (self.est.target_bps() as f64).min(limit),
                (None, None) => self.est.target_bps() as f64,
            };
            let size = 1200u16;
            if self.now_us >= self.next_send_us {
                self.send(now, size, probing);
                self.next_send_us += f64::from(size) * 8.0 * 1e6 / rate.max(10_000.0);
            }
            if let Some((every, n)) = self.bursts
                && self.now_us >= self.next_burst_us
            {
                self.next_burst_us = self.now_us + every;
                for _ in 0..n {
                    self.send(now, size, false);
                }
            }
            if self.now_us >= next_feedback {
                next_feedback += 50_000.0;
                self.feedback(now);
            }
            if self.now_us >= next_trace {
                next_trace += 100_000.0;
                self.trace
                    .push((self.now_us / 1e6, self.est.target_bps() as f64));
            }
            self.now_us += 1_000.0;
        }
    }

    fn send(&mut self, now: Instant, size: u16, probing: bool) {
        self.est.on_sent(self.seq, now, usize::from(size), probing);
        let arrival = self.path.carry(self.now_us, size);
        self.in_flight.push((self.seq, self.now_us, arrival));
        self.seq = self.seq.wrapping_add(1);
    }

    /// Reports everything that has arrived, and what is lost behind it.
    fn feedback(&mut self, now: Instant) {
        let now_us = self.now_us;
        let reported = self
            .in_flight
            .iter()
            .rposition(|&(_, _, a)| a.is_some_and(|a| a <= now_us));
        let Some(last) = reported else { return };
        for (seq, _, arrival) in self.in_flight.drain(..=last) {
            let sent = self.est.history.get(seq);
            let arrival = arrival.filter(|&a| a <= now_us).map(|a| a as i64);
            self.est.packet(sent, arrival);
        }
        self.est.update(now);
    }

    /// Mean estimate over the trace's last `seconds`.
    fn mean_last(&self, seconds: f64) -> f64 {
        let end = self.trace.last().map_or(0.0, |t| t.0);
        let xs: Vec<f64> = self
            .trace
            .iter()
            .filter(|t| t.0 > end - seconds)
            .map(|t| t.1)
            .collect();
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    }

    /// The lowest estimate of the trace.
    fn lowest(&self) -> f64 {
        self.trace.iter().map(|t| t.1).fold(f64::MAX, f64::min)
    }

    /// Seconds from `from` until the estimate first satisfies `f`.
    fn time_until(&self, from: f64, f: impl Fn(f64) -> bool) -> Option<f64> {
        self.trace
            .iter()
            .find(|t| t.0 >= from && f(t.1))
            .map(|t| t.0 - from)
    }
}

#[test]
fn a_steady_link_is_found_and_kept() {
    let mut s = Sim::new(2_000_000.0);
    s.run(30.0);
    let mean = s.mean_last(10.0);
    assert!(
        (1_300_000.0..=2_300_000.0).contains(&mean),
        "mean over the last 10 s {mean}"
    );
}

#[test]
fn a_step_down_is_followed_within_seconds() {
    let mut s = Sim::new(2_500_000.0);
    s.run(20.0);
    s.path.capacity_bps = 500_000.0;
    let at = s.now_us / 1e6;
    s.run(15.0);
    let down = s.time_until(at, |b| b <= 600_000.0);
    assert!(down.is_some_and(|d| d < 5.0), "took {down:?} s");
    let mean = s.mean_last(5.0);
    assert!((300_000.0..=650_000.0).contains(&mean), "settled at {mean}");
}

#[test]
fn a_step_up_is_found_with_probes_by_an_app_limited_sender() {
    // an SFU sending 400 kbit/s of video whose path opens from 500 kbit/s
    // to 4 Mbit/s: probes show the room for the higher layer
    let mut s = Sim::new(500_000.0);
    s.app_limit = Some(400_000.0);
    s.probe_every_us = Some(2_000_000.0);
    s.run(10.0);
    assert!(s.mean_last(3.0) < 900_000.0);
    s.path.capacity_bps = 4_000_000.0;
    s.app_limit = Some(1_500_000.0);
    let at = s.now_us / 1e6;
    s.run(15.0);
    let up = s.time_until(at, |b| b >= 1_500_000.0);
    assert!(up.is_some_and(|d| d < 12.0), "took {up:?} s");
}

#[test]
fn a_busy_receiver_does_not_collapse_an_app_limited_estimate() {
    // an SFU sending a 180p layer (200 kbit/s) over a wide path to a
    // receiver that stops reading for 40 ms every 2 s: the queue those
    // stalls show is not the path's, and everything sent got through at
    // the rate it was sent — the estimate must leave room for 720p
    let mut s = Sim::starting_at(10_000_000.0, 2_500_000);
    s.app_limit = Some(200_000.0);
    s.path.stalls = Some((2_000_000.0, 150_000.0));
    s.run(20.0);
    let low = s.lowest();
    assert!(low >= 1_000_000.0, "fell to {low}");
}

#[test]
fn keyframe_bursts_do_not_collapse_an_app_limited_estimate() {
    // 200 kbit/s with a 72 kB keyframe every 2 s, sent at once into a
    // 2 Mbit/s path: each burst queues for about 290 ms (and fits the
    // path's 300 ms queue: no loss)
    let mut s = Sim::starting_at(2_000_000.0, 2_500_000);
    s.app_limit = Some(200_000.0);
    s.bursts = Some((2_000_000.0, 60));
    s.run(20.0);
    let low = s.lowest();
    assert!(low >= 1_000_000.0, "fell to {low}");
}

#[test]
fn an_app_limited_sender_over_a_narrower_path_comes_down_at_once() {
    // an estimate that starts too high: the SFU sends 800 kbit/s where the
    // path carries 400 — what arrives is well under what was sent
    let mut s = Sim::starting_at(400_000.0, 2_500_000);
    s.app_limit = Some(800_000.0);
    s.run(10.0);
    let down = s.time_until(0.0, |b| b <= 500_000.0);
    assert!(down.is_some_and(|d| d < 2.0), "took {down:?} s");
}

#[test]
fn loss_bursts_cut_the_rate_and_it_recovers() {
    let mut s = Sim::new(2_000_000.0);
    s.run(20.0);
    let before = s.mean_last(3.0);
    s.path.loss = 0.2;
    s.run(3.0);
    let during = s.mean_last(1.0);
    assert!(during < 0.7 * before, "{before} → {during}");
    s.path.loss = 0.0;
    s.run(20.0);
    let after = s.mean_last(5.0);
    assert!(after > 0.65 * before, "recovered to {after} of {before}");
    assert!(s.est.loss() < 0.02);
}

#[test]
fn remb_rules_without_transport_cc() {
    let mut e = Estimator::new(BweConfig::default());
    e.on_remb(700_000);
    assert_eq!(e.target_bps(), 700_000);
    // and the loss is the receiver reports'
    e.on_report_loss(26);
    assert!((e.loss() - 26.0 / 256.0).abs() < 1e-9);
}

#[test]
fn transport_cc_packets_feed_it() {
    // 40 packets 10 ms apart, each reported 20 ms after sending, then
    // the same through a real feedback packet: the same verdict
    let t = Instant::now();
    let mut direct = Estimator::new(BweConfig::default());
    let mut parsed = Estimator::new(BweConfig::default());
    let mut statuses = Vec::new();
    for i in 0..40u16 {
        let at = t + Duration::from_millis(10 * u64::from(i));
        direct.on_sent(i, at, 1000, false);
        parsed.on_sent(i, at, 1000, false);
        statuses.push(if i == 7 {
            PacketStatus::NotReceived
        } else {
            // 10 ms apart in 250 µs ticks; the first is at the reference time
            PacketStatus::Received(if i == 0 {
                0
            } else if i == 8 {
                80
            } else {
                40
            })
        });
    }
    let repr = TransportCcRepr {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence: 0,
        reference_time: 100,
        feedback_count: 0,
        packets: &statuses,
    };
    let mut buf = vec![0u8; repr.len()];
    repr.emit(&mut buf).unwrap();
    let fb = TransportCc::new_checked(&buf).unwrap();
    let now = t + Duration::from_millis(420);
    parsed.on_transport_cc(now, &fb);
    let mut arrival = 100 * 64_000i64;
    for (i, s) in statuses.iter().enumerate() {
        let sent = direct.history.get(i as u16);
        match s {
            PacketStatus::NotReceived => direct.packet(sent, None),
            PacketStatus::Received(d) => {
                arrival += i64::from(*d) * 250;
                direct.packet(sent, Some(arrival));
            }
        }
    }
    direct.update(now);
    assert_eq!(parsed.loss(), 1.0 / 40.0);
    assert_eq!(parsed.loss(), direct.loss());
    assert_eq!(parsed.target_bps(), direct.target_bps());
}

/// A feedback packet over packets `base..base + statuses.len()`.
fn feedback_packet(base: u16, statuses: &[PacketStatus]) -> Vec<u8> {
    let repr = TransportCcRepr {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence: base,
        reference_time: 100,
        feedback_count: 0,
        packets: statuses,
    };
    let mut buf = vec![0u8; repr.len()];
    repr.emit(&mut buf).unwrap();
    buf
}

#[test]
fn repeated_reports_are_not_losses_and_a_late_arrival_undoes_one() {
    // 40 packets all received; then libwebrtc, after a late packet, starts
    // its next report back at 20 and says "not received" for the packets
    // it already reported and forgot: no loss
    let t = Instant::now();
    let mut e = Estimator::new(BweConfig::default());
    for i in 0..80u16 {
        e.on_sent(i, t + Duration::from_millis(5 * u64::from(i)), 1000, false);
    }
    let received = vec![PacketStatus::Received(20); 40];
    let fb = feedback_packet(0, &received);
    e.on_transport_cc(
        t + Duration::from_millis(250),
        &TransportCc::new_checked(&fb).unwrap(),
    );
    assert_eq!(e.loss(), 0.0);
    let mut again = vec![PacketStatus::NotReceived; 20];
    again.extend(vec![PacketStatus::Received(20); 20]);
    let fb = feedback_packet(20, &again);
    e.on_transport_cc(
        t + Duration::from_millis(400),
        &TransportCc::new_checked(&fb).unwrap(),
    );
    assert_eq!(e.loss(), 0.0, "repeats of received packets are not losses");
    // 60..80: 65 first reported lost, then received in the next report
    let mut some = [PacketStatus::Received(20); 20];
    some[5] = PacketStatus::NotReceived;
    let fb = feedback_packet(60, &some[..10]);
    e.on_transport_cc(
        t + Duration::from_millis(450),
        &TransportCc::new_checked(&fb).unwrap(),
    );
    let mut rest = vec![PacketStatus::Received(20); 15];
    rest[0] = PacketStatus::Received(40); // 65, late
    let fb = feedback_packet(65, &rest);
    e.on_transport_cc(
        t + Duration::from_millis(500),
        &TransportCc::new_checked(&fb).unwrap(),
    );
    assert_eq!(e.loss(), 0.0, "the late arrival took its loss back");
}

#[test]
fn a_probe_with_a_stray_loss_still_counts_and_a_half_lost_one_does_not() {
    // 20 probe packets of 1000 bytes 5 ms apart (1.6 Mbit/s), arriving as
    // sent, then one after the probe; `lost` of them not received
    let run = |lost: &[u16]| {
        let t = Instant::now();
        let mut e = Estimator::new(BweConfig {
            initial_bps: 300_000,
            ..BweConfig::default()
        });
        e.start_probe(t, 1_600_000, Duration::from_millis(100));
        for i in 0..21u16 {
            let at = t + Duration::from_millis(5 * u64::from(i));
            e.on_sent(i, at, 1000, i < 20);
        }
        let statuses: Vec<PacketStatus> = (0..21u16)
            .map(|i| {
                if lost.contains(&i) {
                    PacketStatus::NotReceived
                } else {
                    PacketStatus::Received(20)
                }
            })
            .collect();
        let fb = feedback_packet(0, &statuses);
        e.on_transport_cc(
            t + Duration::from_millis(150),
            &TransportCc::new_checked(&fb).unwrap(),
        );
        e.target_bps()
    };
    assert!(run(&[]) > 1_000_000, "{}", run(&[]));
    assert!(run(&[7]) > 1_000_000, "one of 20 lost: {}", run(&[7]));
    let half: Vec<u16> = (0..20).step_by(2).collect();
    assert!(run(&half) < 1_000_000, "half lost: {}", run(&half));
}
