//! `switchyard-pktgen`: plays rooms of real clients against a running
//! Switchyard — signalling over its WebSocket protocol, ICE, DTLS, SRTP —
//! with browser-shaped audio and three-layer simulcast video, and measures
//! what every subscriber receives: loss, reordering, duplicates, one-way
//! latency.
//!
//!   switchyard-pktgen --server 127.0.0.1:8080 --rooms 2 --participants 4 --duration 10 [--json]

use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use switchyard_benches::load::{LoadConfig, run};

#[derive(Parser)]
#[command(
    name = "switchyard-pktgen",
    version,
    about = "Switchyard's load generator: rooms of simulated browsers"
)]
struct Args {
    /// The control plane's HTTP address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// Rooms.
    #[arg(long, default_value_t = 2)]
    rooms: usize,
    /// Participants per room; each publishes audio and three video layers
    /// and receives everyone else.
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// Seconds of media.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Threads driving the clients (default: available CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Room name prefix (rooms are <prefix>0, <prefix>1, …).
    #[arg(long, default_value = "load")]
    room_prefix: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = LoadConfig {
        server: args.server,
        rooms: args.rooms,
        participants: args.participants,
        duration: Duration::from_secs(args.duration),
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        room_prefix: args.room_prefix,
    };
    eprintln!(
        "switchyard-pktgen: {} rooms × {} participants against {} for {} s",
        config.rooms, config.participants, config.server, args.duration
    );
    let report = run(&config, |line| eprintln!("{line}"));
    if args.json {
        match serde_json::to_string(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("switchyard-pktgen: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.table());
        for f in &report.failed {
            println!("failed: {f}");
        }
    }
    if report.clients == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
