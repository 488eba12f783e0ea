//! The load generator behind `switchyard-pktgen`: rooms of simulated
//! browsers ([`client::Client`]) spread over threads, a progress line per
//! second, and a report of what every subscriber received.

pub mod client;
pub mod output;
pub mod ramp;
pub mod stream;

use client::{Client, Publish};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fixed load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The control plane's HTTP address.
    pub server: SocketAddr,
    /// Rooms.
    pub rooms: usize,
    /// Participants per room (all publish, all subscribe).
    pub participants: usize,
    /// How long media flows.
    pub duration: Duration,
    /// Threads driving the clients.
    pub threads: usize,
    /// CPUs to pin the threads to, round robin (empty: not pinned) — keep
    /// them off the dataplane's cores.
    pub cores: Vec<usize>,
    /// Room name prefix.
    pub room_prefix: String,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Clients that joined and connected.
    pub clients: usize,
    /// Clients that failed to connect, with why.
    pub failed: Vec<String>,
    /// Seconds media flowed.
    pub seconds: f64,
    /// RTP packets the publishers sent.
    pub sent: u64,
    /// RTP packets the subscribers received (stamped media).
    pub received: u64,
    /// Of the spans each subscriber saw, packets missing.
    pub lost: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// Streams (audio + top video layer of every other room member) each
    /// subscriber should get, in total.
    pub streams_expected: usize,
    /// Of those, never received.
    pub streams_missing: usize,
    /// Packets that failed to decrypt or parse.
    pub bad: u64,
    /// Packets/s forwarded to subscribers (received / seconds).
    pub received_pps: f64,
    /// One-way latency percentiles, µs: p50, p99, p99.9, max.
    pub latency_us: [u64; 4],
    /// Keyframes the publishers sent because the SFU asked.
    pub keyframes_on_request: u64,
    /// Rates each second of the run.
    pub timeline: Vec<Sample>,
}

/// One second of a run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    /// Seconds since the run began.
    pub t: f64,
    /// Packets/s the publishers sent.
    pub sent_pps: f64,
    /// Packets/s the subscribers received.
    pub received_pps: f64,
}

impl Report {
    /// Fraction of packets lost.
    pub fn loss(&self) -> f64 {
        let all = self.received + self.lost;
        if all == 0 {
            0.0
        } else {
            self.lost as f64 / all as f64
        }
    }

    /// A table for people.
    pub fn table(&self) -> String {
        format!(
            "clients          {} ({} failed)\n\
             seconds          {:.1}\n\
             sent             {} packets\n\
             received         {} packets ({:.0} packets/s)\n\
             lost             {} ({:.4} %)\n\
             duplicates       {}\n\
             reordered        {}\n\
             streams          {} of {} received\n\
             latency (one-way) p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms\n\
             keyframes asked  {}\n",
            self.clients,
            self.failed.len(),
            self.seconds,
            self.sent,
            self.received,
            self.received_pps,
            self.lost,
            self.loss() * 100.0,
            self.duplicates,
            self.reordered,
            self.streams_expected - self.streams_missing,
            self.streams_expected,
            self.latency_us[0] as f64 / 1000.0,
            self.latency_us[1] as f64 / 1000.0,
            self.latency_us[2] as f64 / 1000.0,
            self.latency_us[3] as f64 / 1000.0,
            self.keyframes_on_request,
        )
    }
}

/// Stream ids of a client: audio at `base`, video layers at `base + 1..=3`.
fn stream_base(client: usize) -> u32 {
    (client as u32) * 8
}

struct Shared {
    sent: AtomicU64,
    received: AtomicU64,
    connected: AtomicUsize,
}

struct ThreadResult {
    clients: Vec<(usize, Client)>,
    failed: Vec<String>,
}

/// Runs a fixed load; `progress` gets a line each second.
pub fn run(config: &LoadConfig, mut progress: impl FnMut(&str)) -> Report {
    let epoch = Instant::now();
    let total = config.rooms * config.participants;
    let shared = Arc::new(Shared {
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
    });
    // media starts for everyone together, once all had time to connect
    let setup = Duration::from_secs(3)
        + Duration::from_millis(150 * total as u64 / config.threads.max(1) as u64);
    let start = epoch + setup;
    let stop_sending = start + config.duration;
    let end = stop_sending + Duration::from_millis(700);
    let threads: Vec<_> = (0..config.threads.max(1))
        .map(|t| {
            let config = config.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("pktgen-{t}"))
                .spawn(move || drive(t, &config, &shared, epoch, start, stop_sending, end))
                .expect("spawn a generator thread")
        })
        .collect();
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut timeline = Vec::new();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_secs(1));
        let now = Instant::now();
        let (sent, received) = (
            shared.sent.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed),
        );
        let dt = now
            .saturating_duration_since(last.0)
            .as_secs_f64()
            .max(1e-3);
        let sample = Sample {
            t: now.saturating_duration_since(epoch).as_secs_f64(),
            sent_pps: (sent - last.1) as f64 / dt,
            received_pps: (received - last.2) as f64 / dt,
        };
        progress(&format!(
            "t={:>5.1}s clients {}/{} sent {:>8.0} pkt/s received {:>8.0} pkt/s",
            sample.t,
            shared.connected.load(Ordering::Relaxed),
            total,
            sample.sent_pps,
            sample.received_pps,
        ));
        timeline.push(sample);
        last = (now, sent, received);
    }
    let results: Vec<ThreadResult> = threads.into_iter().filter_map(|t| t.join().ok()).collect();
    let mut r = report(config, results, config.duration.as_secs_f64());
    r.timeline = timeline;
    r
}

fn drive(
    t: usize,
    config: &LoadConfig,
    shared: &Shared,
    epoch: Instant,
    start: Instant,
    stop_sending: Instant,
    end: Instant,
) -> ThreadResult {
    if let Some(&core) = config.cores.get(t % config.cores.len().max(1)) {
        // like the dataplane: one thread per core
        let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
    }
    let total = config.rooms * config.participants;
    let mut clients = Vec::new();
    let mut failed = Vec::new();
    for i in (t..total).step_by(config.threads.max(1)) {
        let room = format!("{}{}", config.room_prefix, i / config.participants);
        let name = format!("gen{i}");
        match Client::connect(config.server, &room, &name, None, epoch) {
            Ok(mut c) => {
                c.stop_sending(); // until everyone is in
                shared.connected.fetch_add(1, Ordering::Relaxed);
                clients.push((i, c, None::<()>));
            }
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    // wait for the common start, answering offers meanwhile
    while Instant::now() < start {
        for (_, c, _) in &mut clients {
            let _ = c.tick(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, c, _) in &mut clients {
        c.resume_sending(Some(Publish {
            stream_base: stream_base(*i),
        }));
    }
    let mut stopped = false;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !stopped && now >= stop_sending {
            stopped = true;
            for (_, c, _) in &mut clients {
                c.stop_sending();
            }
        }
        let (s0, r0): (u64, u64) = clients
            .iter()
            .map(|(_, c, _)| (c.counts.sent, c.counts.received))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        for (i, c, dead) in &mut clients {
            if dead.is_some() {
                continue;
            }
            if let Err(e) = c.tick(now) {
                failed.push(format!("gen{i}: {e}"));
                *dead = Some(());
            }
        }
        let (s1, r1): (u64, u64) = clients
            .iter()
            .map(|(_, c, _)| (c.counts.sent, c.counts.received))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        shared.sent.fetch_add(s1 - s0, Ordering::Relaxed);
        shared.received.fetch_add(r1 - r0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(300));
    }
    ThreadResult {
        clients: clients.into_iter().map(|(i, c, _)| (i, c)).collect(),
        failed,
    }
}

fn report(config: &LoadConfig, results: Vec<ThreadResult>, seconds: f64) -> Report {
    let mut latency: Histogram<u64> = stream::latency_histogram();
    let mut r = Report {
        clients: 0,
        failed: Vec::new(),
        seconds,
        sent: 0,
        received: 0,
        lost: 0,
        duplicates: 0,
        reordered: 0,
        streams_expected: 0,
        streams_missing: 0,
        bad: 0,
        received_pps: 0.0,
        latency_us: [0; 4],
        keyframes_on_request: 0,
        timeline: Vec::new(),
    };
    let all: Vec<(usize, Client)> = results
        .into_iter()
        .flat_map(|t| {
            r.failed.extend(t.failed);
            t.clients
        })
        .collect();
    let present: Vec<usize> = all.iter().map(|(i, _)| *i).collect();
    for (i, c) in &all {
        r.clients += 1;
        r.sent += c.counts.sent;
        r.received += c.counts.received;
        r.bad += c.counts.bad;
        r.keyframes_on_request += c.counts.keyframes_on_request;
        let _ = latency.add(&c.latency);
        for s in c.streams.values() {
            r.lost += s.lost();
            r.duplicates += s.duplicates;
            r.reordered += s.reordered;
        }
        // every other connected member of the room: audio and the top layer
        let room = i / config.participants;
        for o in present
            .iter()
            .filter(|&&o| o != *i && o / config.participants == room)
        {
            for stream in [stream_base(*o), stream_base(*o) + 3] {
                r.streams_expected += 1;
                if !c.streams.contains_key(&stream) {
                    r.streams_missing += 1;
                }
            }
        }
    }
    r.received_pps = r.received as f64 / seconds.max(1e-3);
    r.latency_us = [
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max(),
    ];
    r
}
