//! `switchyard-fwdbench`: CPU cost and capacity of the dataplane's
//! forwarding path over loopback.
//!
//! Starts the release `switchyard-dataplane` (next to this binary) with one
//! worker pinned to CPU 0, attaches through `abi::Client`, adds a publisher
//! and N subscribers (AES-128-GCM), and sends 1200-byte VP8 packets from a
//! thread pinned to CPU 1 at increasing rates. For each rate it reports the
//! dataplane's CPU time per egress packet (from `/proc/<pid>/task/*/schedstat`)
//! and whether packets were lost (received by the worker < sent, or
//! forwarded < received × N).
//!
//! `cargo build --release -p switchyard-dataplane -p switchyard-benches &&
//!  target/release/switchyard-fwdbench [--subscribers 1,10,50] [--io uring,mmsg] [--seconds 2]`

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_benches::vp8_packet;
use switchyard_dataplane::abi::{
    Client, Codec, Command as Cmd, Counter, EndpointSpec, LayerSpec, MediaKind, SourceSpec,
    SrtpKeys, SubscriptionSpec,
};
use switchyard_srtp::{MasterKey, Profile, Session};
use switchyard_wire::rtp::ExtensionIds;

const PROFILE: Profile = Profile::AeadAes128Gcm;
const SSRC: u32 = 0x1234;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn keys(id: u8) -> SrtpKeys {
    SrtpKeys {
        profile: PROFILE,
        rx: MasterKey::new(PROFILE, &[id; 16], &[1; 12]).expect("key"),
        tx: MasterKey::new(PROFILE, &[id ^ 0x80; 16], &[2; 12]).expect("key"),
    }
}

/// CPU nanoseconds used so far by every thread of `pid`.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

struct Dataplane {
    child: Child,
    dir: PathBuf,
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(io: &str) -> Result<(Dataplane, Client), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe.with_file_name("switchyard-dataplane");
    if !bin.exists() {
        return Err(format!(
            "{} not found: cargo build --release -p switchyard-dataplane",
            bin.display()
        ));
    }
    let dir = std::env::temp_dir().join(format!("swyd-fwdbench-{}", std::process::id()));
    switchyard_dataplane::abi::access::prepare_socket_dir(&dir).map_err(|e| e.to_string())?;
    let socket = dir.join("dp.sock");
    let child = Command::new(bin)
        .args([
            "--workers",
            "1",
            "--cores",
            "0",
            "--base-port",
            "0",
            "--io",
            io,
            "--log",
            "error",
        ])
        .arg("--control-socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let dp = Dataplane { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect(&socket) {
            Ok(c) => return Ok((dp, c)),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("dataplane did not start: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

struct Outcome {
    drops: String,
    elapsed: f64,
    rate: u64,
    sent: u64,
    received: u64,
    egress: u64,
    cpu_ns: u64,
}

fn run(io: &str, subscribers: usize, rates: &[u64], seconds: f64) -> Result<Vec<Outcome>, String> {
    let (dp, mut client) = start(io)?;
    let server = SocketAddr::from(([127, 0, 0, 1], client.worker_port(0).ok_or("no port")?));
    let publisher = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let ext = ExtensionIds {
        mid: Some(4),
        transport_cc: Some(3),
        abs_send_time: Some(2),
        ..Default::default()
    };
    let send = |client: &mut Client, cmd: Cmd| client.send(0, &cmd).map_err(|e| e.to_string());
    let add = |id: u64, remote| {
        Cmd::AddEndpoint(EndpointSpec {
            id,
            remote,
            keys: keys(id as u8),
            ext,
            user_data: [0; 32],
        })
    };
    send(
        &mut client,
        add(1, publisher.local_addr().map_err(|e| e.to_string())?),
    )?;
    // subscribers: bound, never read; the kernel drops what overflows
    let sinks: Vec<UdpSocket> = (0..subscribers)
        .filter_map(|_| UdpSocket::bind("127.0.0.1:0").ok())
        .collect();
    for (i, s) in sinks.iter().enumerate() {
        send(
            &mut client,
            add(10 + i as u64, s.local_addr().map_err(|e| e.to_string())?),
        )?;
    }
    let layer = LayerSpec {
        ssrc: SSRC,
        ..LayerSpec::default()
    };
    client
        .add_source(&SourceSpec {
            id: 1,
            endpoint: 1,
            kind: MediaKind::Video,
            codec: Codec::Vp8,
            clock_rate: 90_000,
            payload_type: 96,
            rtx_payload_type: 0,
            layer_count: 1,
            layers: [layer; 3],
        })
        .map_err(|e| e.to_string())?;
    for i in 0..sinks.len() {
        let spec = SubscriptionSpec {
            endpoint: 10 + i as u64,
            source: 1,
            ssrc: 0x5000 + i as u32,
            rtx_ssrc: 0,
            payload_type: 96,
            rtx_payload_type: 0,
            target_layer: 0,
            mid: [b'0'; 16],
            mid_len: 1,
        };
        send(&mut client, Cmd::Subscribe(spec))?;
    }
    std::thread::sleep(Duration::from_millis(200));
    let pid = dp.child.id();
    let mut session = Session::new(PROFILE, &keys(1).rx, switchyard_srtp::Config::default())
        .map_err(|e| e.to_string())?;
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
    let mut seq = 0u16;
    let mut outcomes = Vec::new();
    let mut buf = vec![0u8; 1500];
    for &rate in rates {
        let before = client.counters(0).ok_or("counters")?;
        let cpu_before = cpu_ns(pid);
        let total = (rate as f64 * seconds) as u64;
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < total {
            // pace in 1 ms slices
            let due = ((start.elapsed().as_secs_f64()) * rate as f64) as u64 + 1;
            while sent < due.min(total) {
                let pkt = vp8_packet(seq, SSRC, 1200 - 16);
                buf[..pkt.len()].copy_from_slice(&pkt);
                let n = session
                    .protect_rtp(&mut buf, pkt.len())
                    .map_err(|e| e.to_string())?;
                let _ = publisher.send_to(&buf[..n], server);
                seq = seq.wrapping_add(1);
                sent += 1;
            }
            std::thread::yield_now();
        }
        let elapsed = start.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(200));
        let after = client.counters(0).ok_or("counters")?;
        let drops: Vec<String> = switchyard_dataplane::abi::DropReason::ALL
            .iter()
            .filter_map(|&r| {
                let d = after.drops(r) - before.drops(r);
                (d > 0).then(|| format!("{}={d}", r.name()))
            })
            .collect();
        outcomes.push(Outcome {
            drops: drops.join(","),
            elapsed,
            rate,
            sent,
            received: after.get(Counter::RxPackets) - before.get(Counter::RxPackets),
            egress: after.get(Counter::TxPackets) - before.get(Counter::TxPackets),
            cpu_ns: cpu_ns(pid) - cpu_before,
        });
    }
    Ok(outcomes)
}

fn main() {
    let subs: Vec<usize> = arg("--subscribers", "1,10,50")
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let ios: Vec<String> = arg("--io", "uring,mmsg")
        .split(',')
        .map(String::from)
        .collect();
    let seconds: f64 = arg("--seconds", "2").parse().unwrap_or(2.0);
    println!(
        "switchyard-fwdbench: 1 worker on CPU 0, sender on CPU 1, 1200-byte VP8, AES-128-GCM, {seconds} s per rate"
    );
    println!(
        "{:<9} {:>5} {:>10} {:>10} {:>10} {:>12} {:>10} {:>6}",
        "io", "subs", "target pps", "sent pps", "rx pps", "egress pps", "ns/egress", "loss"
    );
    for io in &ios {
        for &n in &subs {
            // ingress rates chosen so egress spans ~25k to ~1.6M packets/s
            let rates: Vec<u64> = [25_000u64, 100_000, 200_000, 400_000, 800_000, 1_600_000]
                .iter()
                .map(|e| (e / n as u64).max(1000))
                .collect();
            match run(io, n, &rates, seconds) {
                Ok(outcomes) => {
                    for o in outcomes {
                        let lost = o.received < o.sent * 999 / 1000
                            || o.egress < o.received * n as u64 * 999 / 1000;
                        println!(
                            "{:<9} {:>5} {:>10} {:>10} {:>10} {:>12.0} {:>10.0} {:>6} {}",
                            io,
                            n,
                            o.rate,
                            (o.sent as f64 / o.elapsed) as u64,
                            (o.received as f64 / o.elapsed) as u64,
                            o.egress as f64 / o.elapsed,
                            o.cpu_ns as f64 / o.egress.max(1) as f64,
                            if lost { "yes" } else { "no" },
                            o.drops
                        );
                    }
                }
                Err(e) => println!("{io:<9} {n:>5} error: {e}"),
            }
        }
    }
}
