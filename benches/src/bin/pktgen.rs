//! `switchyard-pktgen`: plays rooms of real clients against a running
//! Switchyard (or, to compare, Janus's videoroom) — signalling, ICE, DTLS, SRTP —
//! with browser-shaped audio and three-layer simulcast video, and measures
//! what every subscriber receives: loss, reordering, duplicates, one-way
//! latency.
//!
//!   switchyard-pktgen --server 127.0.0.1:8080 --rooms 2 --participants 4 --duration 10 [--json]
//!   switchyard-pktgen --ramp --rooms 2 --ramp-step 2 --duration 10      (until it falls behind)
//!   … --csv rates.csv --svg rates.svg                                   (time series and plot)
//!   switchyard-pktgen --target janus --server 10.0.0.2:8188 …            (the same load on Janus)
//!   switchyard-pktgen --target plain --server 10.0.0.2:10000 …           (on switchyard-plainfwd)
//!   switchyard-pktgen --transport tcp …                                  (media over ICE-TCP)
//!   switchyard-pktgen --compare switchyard.json,janus.json              (saved ramps side by side)

use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use switchyard_benches::load::ramp::{self, RampRun, ramp};
use switchyard_benches::load::{LoadConfig, Sample, Target, output, run};

#[derive(Parser)]
#[command(
    name = "switchyard-pktgen",
    version,
    about = "Switchyard's load generator: rooms of simulated browsers"
)]
struct Args {
    /// The SFU under test: Switchyard, or Janus's videoroom plugin (for
    /// comparison, over Janus's WebSocket API), or `plain`:
    /// switchyard-plainfwd, the plain UDP forwarder that is the baseline.
    #[arg(long, value_enum, default_value = "switchyard")]
    target: Target,
    /// Its signalling address (host:port): Switchyard's HTTP listener,
    /// Janus's WebSocket transport, or the plain forwarder's UDP port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// Process ids of the SFU (comma-separated, e.g. Switchyard's control
    /// plane and dataplane): the report then gives their CPU time per
    /// forwarded packet.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
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
    /// Threads driving the clients (default: one per --cores entry, else
    /// available CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// CPUs to pin the generator's threads to (comma-separated), e.g. the
    /// ones the dataplane does not use.
    #[arg(long, value_delimiter = ',')]
    cores: Vec<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Room name prefix (rooms are `<prefix>0`, `<prefix>1`, …).
    #[arg(long, default_value = "load")]
    room_prefix: String,
    /// Regions the participants of each room join from, in turn
    /// (comma-separated, e.g. `A,B`): against a focus with `--cascade`,
    /// rooms then span the bridges of those regions.
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// The media transport: `udp`, or `tcp` (ICE-TCP to the server's
    /// passive TCP candidate; Switchyard only).
    #[arg(long, value_enum, default_value = "udp")]
    transport: Transport,
    /// Ramp: start at --rooms and add --ramp-step rooms per step (each step
    /// --duration seconds) until loss > 0.1 % or p99 > 20 ms; report the knee.
    #[arg(long)]
    ramp: bool,
    /// Rooms added per ramp step.
    #[arg(long, default_value_t = 2)]
    ramp_step: usize,
    /// Most ramp steps.
    #[arg(long, default_value_t = 20)]
    ramp_steps: usize,
    /// Write the per-second series (rates, p99, missing packets; every step
    /// end to end when ramping) as CSV.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
    /// Write an SVG plot of the per-second series (with --compare: one per
    /// ramp, the SFU's name added to the file name).
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
    /// Run nothing: print ramps saved with `--ramp --json` (one file per SFU,
    /// comma-separated) side by side, the first against the others.
    #[arg(long, value_delimiter = ',')]
    compare: Vec<std::path::PathBuf>,
}

/// A media transport.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    /// UDP, as browsers use it when they can.
    Udp,
    /// ICE-TCP (RFC 6544).
    Tcp,
}

/// The side-by-side table of saved ramps.
fn compare(files: &[std::path::PathBuf], svg: Option<&std::path::Path>) -> ExitCode {
    let mut runs = Vec::new();
    // each run by its file's name (switchyard-xdp.json: "switchyard-xdp")
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().into_owned())
        })
        .collect();
    for f in files {
        let parsed = std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<RampRun>(&text).map_err(|e| e.to_string()));
        match parsed {
            Ok(run) => runs.push(run),
            Err(e) => {
                eprintln!("switchyard-pktgen: {}: {e}", f.display());
                return ExitCode::FAILURE;
            }
        }
    }
    for (run, name) in runs.iter().zip(&names) {
        println!(
            "{name} ({:?}), {} participants per room:",
            run.target, run.participants
        );
        println!("{}", output::ramp_table(&run.steps));
        if let Some(path) = svg {
            let stem = path
                .file_stem()
                .map_or("ramp".into(), |s| s.to_string_lossy());
            let title = format!("{name}: {} steps of the ramp", run.steps.len());
            let timeline = output::ramp_timeline(&run.steps);
            write_svg(
                &path.with_file_name(format!("{stem}-{name}.svg")),
                &timeline,
                &title,
            );
        }
    }
    print!("{}", output::compare_table(&runs, &names));
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.compare.is_empty() {
        return compare(&args.compare, args.svg.as_deref());
    }
    if args.transport == Transport::Tcp && args.target != Target::Switchyard {
        eprintln!("switchyard-pktgen: --transport tcp drives Switchyard only");
        return ExitCode::from(2);
    }
    let config = LoadConfig {
        target: args.target,
        server: args.server,
        server_pids: args.server_pid.clone(),
        rooms: args.rooms,
        participants: args.participants,
        duration: Duration::from_secs(args.duration),
        threads: args.threads.unwrap_or_else(|| {
            if args.cores.is_empty() {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                args.cores.len()
            }
        }),
        cores: args.cores.clone(),
        room_prefix: args.room_prefix.clone(),
        regions: args.regions.clone(),
        tcp: args.transport == Transport::Tcp,
    };
    eprintln!(
        "switchyard-pktgen: {} rooms × {} participants against {:?} at {} for {} s",
        config.rooms, config.participants, config.target, config.server, args.duration
    );
    if args.ramp {
        let steps = ramp(
            &config,
            args.rooms,
            args.ramp_step,
            args.ramp_steps,
            |line| eprintln!("{line}"),
        );
        if args.json {
            let run = RampRun {
                target: config.target,
                participants: config.participants,
                threads: config.threads,
                knee_rooms: ramp::knee(&steps).map(|s| s.rooms),
                steps: steps.clone(),
            };
            if !print_json(&run) {
                return ExitCode::FAILURE;
            }
        } else {
            print!("{}", output::ramp_table(&steps));
            match ramp::knee(&steps) {
                Some(k) => println!(
                    "knee: {} rooms, {:.0} packets/s forwarded",
                    k.rooms, k.report.received_pps
                ),
                None if steps.iter().all(|s| s.kept_up) => println!(
                    "no knee within {} steps: still keeping up at {} rooms",
                    steps.len(),
                    steps.last().map_or(0, |s| s.rooms)
                ),
                None => println!("no step kept up"),
            }
        }
        let title = format!(
            "switchyard-pktgen ramp against {:?}: {} steps",
            config.target,
            steps.len()
        );
        write_series(&args, &output::ramp_timeline(&steps), &title);
        return ExitCode::SUCCESS;
    }
    let report = run(&config, |line| eprintln!("{line}"));
    let title = format!(
        "switchyard-pktgen: {} clients, {:.0} packets/s forwarded",
        report.clients, report.received_pps
    );
    write_series(&args, &report.timeline, &title);
    if args.json {
        if !print_json(&report) {
            return ExitCode::FAILURE;
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

/// The optional CSV and SVG of a run's per-second rates.
/// Prints `value` as one line of JSON; whether it could.
fn print_json(value: &impl serde::Serialize) -> bool {
    match serde_json::to_string(value) {
        Ok(j) => {
            println!("{j}");
            true
        }
        Err(e) => {
            eprintln!("switchyard-pktgen: {e}");
            false
        }
    }
}

fn write_series(args: &Args, timeline: &[Sample], title: &str) {
    if let Some(path) = &args.csv
        && let Err(e) = std::fs::write(path, output::csv(timeline))
    {
        eprintln!("switchyard-pktgen: writing {}: {e}", path.display());
    }
    if let Some(path) = &args.svg {
        write_svg(path, timeline, title);
    }
}

fn write_svg(path: &std::path::Path, timeline: &[Sample], title: &str) {
    if let Err(e) = std::fs::write(path, output::svg(timeline, title)) {
        eprintln!("switchyard-pktgen: writing {}: {e}", path.display());
    }
}
