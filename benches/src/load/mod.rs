//! The load generator behind `switchyard-pktgen`: rooms of simulated
//! browsers spread over threads — against Switchyard ([`client::Client`]),
//! Janus's videoroom ([`janus::JanusClient`]) or the plain forwarder that is
//! the baseline ([`plain::PlainClient`]), the same load shape — a
//! progress line per second, and a report of what every subscriber received
//! and, given the server's processes, what each forwarded packet cost it.

pub mod client;
pub mod cpu;
pub mod janus;
pub mod leg;
pub mod media;
pub mod output;
pub mod plain;
pub mod ramp;
pub mod stream;

use client::{Client, ClientError};
use hdrhistogram::Histogram;
use janus::{JanusClient, Seat};
use media::{Browser, Publish, Stats, Window};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The SFU under test.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Switchyard's control plane: `--server` is its HTTP address.
    Switchyard,
    /// Janus with the videoroom plugin: `--server` is its WebSocket API.
    Janus,
    /// `switchyard-plainfwd`, the baseline: `--server` is its UDP address.
    /// Each participant sends its audio and only its top video layer (what
    /// an SFU forwards of it), and all share one SRTP key.
    Plain,
}

/// One simulated browser, whichever SFU it talks to.
pub trait Participant: Send {
    /// Subscribes to the room members `others` (client indexes) where the
    /// SFU needs asking; Switchyard sends everyone without.
    fn subscribe(&mut self, _others: &[usize]) -> Result<(), ClientError> {
        Ok(())
    }
    /// A slice of work without blocking: signalling, received packets, due
    /// sends.
    fn tick(&mut self, now: Instant, window: &mut Window) -> Result<(), ClientError>;
    /// Its media state.
    fn browser(&self) -> &Browser;
    /// Its media state, to change.
    fn browser_mut(&mut self) -> &mut Browser;
    /// Its sockets (signalling and media), to wait on.
    fn fds(&self) -> Vec<std::os::fd::RawFd>;
    /// Stops sending (what is in flight still arrives).
    fn stop_sending(&mut self) {
        self.browser_mut().sender.stop();
    }
    /// Starts (again) sending, from now on, with a keyframe.
    fn resume_sending(&mut self, publish: Publish) {
        self.browser_mut().sender.resume(publish);
    }
    /// What it measured.
    fn stats(&self) -> &Stats {
        &self.browser().stats
    }
    /// When it next has a packet to send (`None` while not sending).
    fn next_due(&self) -> Option<Instant> {
        self.browser().sender.next_due()
    }
    /// Leaves the room.
    fn leave(&mut self);
}

/// A fixed load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The SFU under test.
    pub target: Target,
    /// Its signalling address.
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
    /// them off the SFU's cores.
    pub cores: Vec<usize>,
    /// Room name prefix.
    pub room_prefix: String,
    /// The SFU's processes, whose CPU time the report divides by the
    /// packets forwarded (empty: not measured).
    pub server_pids: Vec<u32>,
    /// Regions the participants of each room join from, in turn (the
    /// `region` of their `join`: with cascading, rooms span the bridges of
    /// these regions); empty: none.
    pub regions: Vec<String>,
    /// Media over ICE-TCP (the server's passive TCP candidate) instead of
    /// UDP (Switchyard only).
    pub tcp: bool,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// CPU time the SFU's processes used while media flowed, per packet
    /// forwarded (when their pids were given).
    pub cpu_ns_per_packet: Option<f64>,
    /// Their CPU use then, in cores (1.0 = one core busy).
    pub cpu_cores: Option<f64>,
    /// `cpu_ns_per_packet` split by process, in the order their pids were
    /// given (for Switchyard: control plane, dataplane — the control
    /// plane's share of each forwarded packet).
    #[serde(default)]
    pub cpu_ns_per_packet_by_process: Vec<f64>,
    /// The generator's own CPU use then, in cores: near its thread count,
    /// the generator, not the SFU, is what limits the run.
    pub generator_cores: Option<f64>,
    /// Rates each second of the run.
    pub timeline: Vec<Sample>,
}

/// One second of a run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// Seconds since the run began.
    pub t: f64,
    /// Packets/s the publishers sent.
    pub sent_pps: f64,
    /// Packets/s the subscribers received.
    pub received_pps: f64,
    /// One-way latency p99 of what arrived in this second, ms.
    pub p99_ms: f64,
    /// Packets/s seen missing on arrival (lost, or late).
    pub missing_pps: f64,
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
             keyframes asked  {}\n\
             server CPU       {}\n\
             generator CPU    {}\n",
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
            match (self.cpu_ns_per_packet, self.cpu_cores) {
                (Some(ns), Some(cores)) if self.cpu_ns_per_packet_by_process.len() > 1 => format!(
                    "{ns:.0} ns per forwarded packet ({cores:.2} cores); by process: {}",
                    self.cpu_ns_per_packet_by_process
                        .iter()
                        .map(|n| format!("{n:.0}"))
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
                (Some(ns), Some(cores)) =>
                    format!("{ns:.0} ns per forwarded packet ({cores:.2} cores)"),
                _ => "not measured (give --server-pid)".to_string(),
            },
            self.generator_cores
                .map_or_else(|| "not measured".to_string(), |c| format!("{c:.2} cores")),
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
    /// Which clients joined (and publish).
    joined: Mutex<Vec<bool>>,
    /// Threads done connecting, then done subscribing.
    connected_threads: AtomicUsize,
    subscribed_threads: AtomicUsize,
    /// When media starts, set once everyone is in.
    start: OnceLock<Instant>,
    /// Latency and gaps since the main thread last looked.
    window: Mutex<Window>,
}

struct ThreadResult {
    clients: Vec<(usize, Box<dyn Participant>)>,
    failed: Vec<String>,
}

/// CPU time of the server and of the generator, and packets received, at
/// one moment.
#[derive(Clone)]
struct Mark {
    at: Instant,
    cpu_ns: Option<u64>,
    by_process: Vec<Option<u64>>,
    own_cpu_ns: Option<u64>,
    received: u64,
}

/// Runs a fixed load; `progress` gets a line each second.
pub fn run(config: &LoadConfig, mut progress: impl FnMut(&str)) -> Report {
    let epoch = Instant::now();
    let total = config.rooms * config.participants;
    let threads = config.threads.max(1);
    let shared = Arc::new(Shared {
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
        joined: Mutex::new(vec![false; total]),
        connected_threads: AtomicUsize::new(0),
        subscribed_threads: AtomicUsize::new(0),
        start: OnceLock::new(),
        window: Mutex::new(Window::default()),
    });
    let run_id: u32 = rand::random();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let config = config.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("pktgen-{t}"))
                .spawn(move || drive(t, &config, &shared, epoch, run_id))
                .expect("spawn a generator thread")
        })
        .collect();
    let mark = |at: Instant| Mark {
        at,
        cpu_ns: cpu::total_ns(&config.server_pids),
        by_process: config
            .server_pids
            .iter()
            .map(|&p| cpu::process_ns(p))
            .collect(),
        own_cpu_ns: cpu::process_ns(std::process::id()),
        received: shared.received.load(Ordering::Relaxed),
    };
    let (mut media_start, mut media_end) = (None::<Mark>, None::<Mark>);
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut timeline = Vec::new();
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if let Some(&start) = shared.start.get() {
            if media_start.is_none() && now >= start {
                media_start = Some(mark(now));
            }
            if media_end.is_none() && now >= start + config.duration {
                media_end = Some(mark(now));
            }
        }
        if now.saturating_duration_since(last.0) < Duration::from_secs(1) {
            continue;
        }
        let (sent, received) = (
            shared.sent.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed),
        );
        let dt = now.saturating_duration_since(last.0).as_secs_f64();
        let window = shared
            .window
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        let sample = Sample {
            t: now.saturating_duration_since(epoch).as_secs_f64(),
            sent_pps: (sent - last.1) as f64 / dt,
            received_pps: (received - last.2) as f64 / dt,
            p99_ms: window.latency.value_at_quantile(0.99) as f64 / 1000.0,
            missing_pps: window.gaps as f64 / dt,
        };
        progress(&format!(
            "t={:>5.1}s clients {}/{} sent {:>8.0} pkt/s received {:>8.0} pkt/s p99 {:>6.2} ms missing {:>5.0}/s",
            sample.t,
            shared.connected.load(Ordering::Relaxed),
            total,
            sample.sent_pps,
            sample.received_pps,
            sample.p99_ms,
            sample.missing_pps,
        ));
        timeline.push(sample);
        last = (now, sent, received);
    }
    let results: Vec<ThreadResult> = handles.into_iter().filter_map(|t| t.join().ok()).collect();
    let mut r = report(config, results, config.duration.as_secs_f64());
    r.timeline = timeline;
    if let (Some(a), Some(b)) = (media_start, media_end) {
        let seconds = b.at.saturating_duration_since(a.at).as_secs_f64().max(1e-3);
        let cores =
            |c0: Option<u64>, c1: Option<u64>| Some(c1?.saturating_sub(c0?) as f64 / 1e9 / seconds);
        r.cpu_cores = cores(a.cpu_ns, b.cpu_ns);
        r.generator_cores = cores(a.own_cpu_ns, b.own_cpu_ns);
        let packets = b.received.saturating_sub(a.received) as f64;
        r.cpu_ns_per_packet = r
            .cpu_cores
            .filter(|_| packets > 0.0)
            .map(|c| c * seconds * 1e9 / packets);
        if packets > 0.0 {
            r.cpu_ns_per_packet_by_process = a
                .by_process
                .iter()
                .zip(&b.by_process)
                .map(|(x, y)| match (x, y) {
                    (Some(x), Some(y)) => y.saturating_sub(*x) as f64 / packets,
                    _ => f64::NAN,
                })
                .collect();
        }
    }
    r
}

/// Ticks `clients` until `counter` reaches `threads` (every thread got that
/// far), so nobody's connection idles meanwhile.
fn tick_until(counter: &AtomicUsize, threads: usize, clients: &mut [Slot], window: &mut Window) {
    while counter.load(Ordering::Acquire) < threads {
        tick_all(clients, window);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A slice of work for every client (setup: what fails here fails later
/// where it is counted).
fn tick_all(clients: &mut [Slot], window: &mut Window) {
    for (_, c, _) in clients.iter_mut() {
        let _ = c.tick(Instant::now(), window);
    }
}

/// A client, its index, and whether it failed.
type Slot = (usize, Box<dyn Participant>, bool);

fn connect(
    config: &LoadConfig,
    i: usize,
    run_id: u32,
    epoch: Instant,
) -> Result<Box<dyn Participant>, ClientError> {
    let name = format!("gen{i}");
    Ok(match config.target {
        Target::Switchyard => {
            let room = format!("{}{}", config.room_prefix, i / config.participants);
            let region = (!config.regions.is_empty())
                .then(|| config.regions[(i % config.participants) % config.regions.len()].as_str());
            Box::new(Client::connect(
                config.server,
                &room,
                &name,
                region,
                config.tcp,
                epoch,
            )?)
        }
        Target::Janus => {
            let seat = Seat {
                run: run_id,
                room: i / config.participants,
                client: i,
                room_size: config.participants,
            };
            Box::new(JanusClient::connect(config.server, seat, &name, epoch)?)
        }
        Target::Plain => {
            let room = format!("{}{}", config.room_prefix, i / config.participants);
            Box::new(plain::PlainClient::connect(config.server, &room, epoch)?)
        }
    })
}

fn drive(
    t: usize,
    config: &LoadConfig,
    shared: &Shared,
    epoch: Instant,
    run_id: u32,
) -> ThreadResult {
    if let Some(&core) = config.cores.get(t % config.cores.len().max(1)) {
        // like the dataplane: one thread per core
        let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
    }
    let threads = config.threads.max(1);
    let total = config.rooms * config.participants;
    let mut clients: Vec<Slot> = Vec::new();
    let mut failed = Vec::new();
    // what arrives before media starts (nothing, normally) is not counted
    let mut window = Window::default();
    for i in (t..total).step_by(threads) {
        // those already in keep their sessions alive and answer offers
        tick_all(&mut clients, &mut window);
        match connect(config, i, run_id, epoch) {
            Ok(c) => {
                shared.connected.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut joined) = shared.joined.lock() {
                    joined[i] = true;
                }
                clients.push((i, c, false));
            }
            Err(e) => failed.push(format!("gen{i}: {e}")),
        }
    }
    shared.connected_threads.fetch_add(1, Ordering::AcqRel);
    tick_until(
        &shared.connected_threads,
        threads,
        &mut clients,
        &mut window,
    );
    // everyone who could publishes now: subscribe where the SFU needs it
    let joined = shared.joined.lock().map(|j| j.clone()).unwrap_or_default();
    for k in 0..clients.len() {
        // the others keep their sessions alive meanwhile
        tick_all(&mut clients, &mut window);
        let (i, c, dead) = &mut clients[k];
        let room = *i / config.participants;
        let others: Vec<usize> = (room * config.participants..(room + 1) * config.participants)
            .filter(|&o| o != *i && joined.get(o) == Some(&true))
            .collect();
        if let Err(e) = c.subscribe(&others) {
            failed.push(format!("gen{i}: {e}"));
            *dead = true;
        }
    }
    shared.subscribed_threads.fetch_add(1, Ordering::AcqRel);
    tick_until(
        &shared.subscribed_threads,
        threads,
        &mut clients,
        &mut window,
    );
    // media starts for everyone together
    let start = *shared
        .start
        .get_or_init(|| Instant::now() + Duration::from_millis(500));
    let stop_sending = start + config.duration;
    let end = stop_sending + Duration::from_millis(700);
    while Instant::now() < start {
        tick_all(&mut clients, &mut window);
        std::thread::sleep(Duration::from_millis(5));
    }
    window.reset();
    window.latency_from_ns = (start + WARM_UP)
        .saturating_duration_since(epoch)
        .as_nanos() as u64;
    for (i, c, _) in &mut clients {
        c.resume_sending(Publish {
            stream_base: stream_base(*i),
            top_only: config.target == Target::Plain,
        });
    }
    media_loop(
        &mut clients,
        shared,
        &mut window,
        &mut failed,
        stop_sending,
        end,
    );
    for (_, c, _) in &mut clients {
        c.leave();
    }
    ThreadResult {
        clients: clients.into_iter().map(|(i, c, _)| (i, c)).collect(),
        failed,
    }
}

/// Media whose latency is not counted: every client starts with a keyframe.
const WARM_UP: Duration = Duration::from_secs(1);

/// How often every client is ticked whatever its sockets say: consent
/// checks, keepalives.
const HOUSEKEEPING: Duration = Duration::from_millis(50);

/// Drives `clients` while media flows. The thread sleeps until a socket has
/// data or a client has a packet due, and serves only those clients (every
/// client each [`HOUSEKEEPING`]): an idle client costs nothing, and a packet
/// waits in its socket only while the thread serves others.
fn media_loop(
    clients: &mut [Slot],
    shared: &Shared,
    window: &mut Window,
    failed: &mut Vec<String>,
    stop_sending: Instant,
    end: Instant,
) {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    // without epoll (never on Linux), every client every 300 µs
    let mut poll = Poll::new().ok();
    if let Some(p) = &poll {
        for (k, (_, c, _)) in clients.iter().enumerate() {
            for fd in c.fds() {
                let _ = p
                    .registry()
                    .register(&mut SourceFd(&fd), Token(k), Interest::READABLE);
            }
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut ready = vec![poll.is_none(); clients.len()];
    let (mut stopped, mut next_all, mut next_share) = (false, Instant::now(), Instant::now());
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !stopped && now >= stop_sending {
            stopped = true;
            for (_, c, _) in clients.iter_mut() {
                c.stop_sending();
            }
        }
        let all = now >= next_all;
        if all {
            next_all = now + HOUSEKEEPING;
        }
        let (mut sent, mut received, mut wake_at) = (0, 0, next_all.min(end));
        for (k, (i, c, dead)) in clients.iter_mut().enumerate() {
            if *dead {
                continue;
            }
            let due = c.next_due().is_some_and(|d| d <= now);
            if std::mem::replace(&mut ready[k], poll.is_none()) || all || due {
                let before = (c.stats().counts.sent, c.stats().counts.received);
                if let Err(e) = c.tick(Instant::now(), window) {
                    failed.push(format!("gen{i}: {e}"));
                    *dead = true;
                }
                sent += c.stats().counts.sent - before.0;
                received += c.stats().counts.received - before.1;
            }
            if let Some(d) = c.next_due() {
                wake_at = wake_at.min(d);
            }
        }
        shared.sent.fetch_add(sent, Ordering::Relaxed);
        shared.received.fetch_add(received, Ordering::Relaxed);
        if now >= next_share {
            next_share = now + Duration::from_millis(200);
            if let Ok(mut w) = shared.window.lock() {
                w.add(window);
            }
            window.reset();
        }
        let timeout = wake_at.saturating_duration_since(Instant::now());
        match &mut poll {
            Some(p) => {
                if p.poll(&mut events, Some(timeout)).is_ok() {
                    for e in events.iter() {
                        if let Some(r) = ready.get_mut(e.token().0) {
                            *r = true;
                        }
                    }
                }
            }
            None => std::thread::sleep(timeout.min(Duration::from_micros(300))),
        }
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
        cpu_ns_per_packet: None,
        cpu_cores: None,
        cpu_ns_per_packet_by_process: Vec::new(),
        generator_cores: None,
        timeline: Vec::new(),
    };
    let all: Vec<(usize, Box<dyn Participant>)> = results
        .into_iter()
        .flat_map(|t| {
            r.failed.extend(t.failed);
            t.clients
        })
        .collect();
    let present: Vec<usize> = all.iter().map(|(i, _)| *i).collect();
    for (i, c) in &all {
        r.clients += 1;
        r.sent += c.stats().counts.sent;
        r.received += c.stats().counts.received;
        r.bad += c.stats().counts.bad;
        r.keyframes_on_request += c.stats().counts.keyframes_on_request;
        let _ = latency.add(&c.stats().latency);
        for s in c.stats().streams.values() {
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
                if !c.stats().streams.contains_key(&stream) {
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
