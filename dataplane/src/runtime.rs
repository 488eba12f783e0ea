//! The dataplane process: binds one UDP socket per worker, creates the
//! shared-memory region, starts the workers pinned to their CPUs, and
//! serves the region on the control socket until SIGTERM or SIGINT.
//!
//! Used by `switchyard-dataplane` and by `switchyard dataplane` (the control
//! plane runs itself as its dataplane child, so one build provides both).

use crate::abi::layout::Params;
use crate::abi::server::Server;
use crate::config::{Args, Config};
use crate::engine::{Engine, EngineConfig};
use crate::io::{self, wake::Wake};
use crate::worker::{Mesh, Worker};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Parses flags (`args` without the program name), sets up logging and runs
/// until stopped. The exit code of the process.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> ExitCode {
    use clap::Parser;
    let args =
        match Args::try_parse_from(std::iter::once("switchyard-dataplane".to_string()).chain(args))
        {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(2);
            }
        };
    if args.exit_with_parent {
        // the supervising control plane may die without stopping us
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
    }
    let config = match Config::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard-dataplane: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the dataplane until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), String> {
    if let Some(name) = &config.tuning_profile {
        warn_if_untuned(name);
    }
    // Checked first: a control socket directory another user could tamper
    // with stops the start before any port is bound.
    if let Some(dir) = config.control_socket.parent() {
        crate::abi::access::prepare_socket_dir(dir).map_err(|e| e.to_string())?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| format!("installing signal handler: {e}"))?;
    }
    let mut sockets = Vec::new();
    for i in 0..config.workers {
        let port = if config.base_port == 0 {
            0
        } else {
            config.base_port + i as u16
        };
        let addr = std::net::SocketAddr::new(config.bind, port);
        let socket = io::socket::bind_udp(addr, config.recv_buffer, config.send_buffer)
            .map_err(|e| format!("binding worker {i} to {addr}: {e}"))?;
        sockets.push(socket);
    }
    let ice_tcp = match config.ice_tcp_port {
        Some(port) => {
            let addr = std::net::SocketAddr::new(config.bind, port);
            let listener = io::socket::bind_tcp(addr)
                .map_err(|e| format!("binding the ICE-TCP port {addr}: {e}"))?;
            raise_file_limit();
            Some(listener)
        }
        None => None,
    };
    let ports: Vec<u16> = sockets
        .iter()
        .map(|s| s.local_addr().map_or(0, |a| a.port()))
        .collect();
    let params = Params {
        workers: config.workers as u32,
        endpoint_capacity: config.endpoint_capacity,
        continuity_capacity: config
            .endpoint_capacity
            .saturating_mul(crate::abi::layout::CONTINUITY_PER_ENDPOINT),
        ..Params::default()
    };
    let (server, rings) =
        Server::create(params, &ports).map_err(|e| format!("creating shared memory: {e}"))?;
    let front_ip = ice_tcp
        .as_ref()
        .map(|_| crate::tcp::worker_route(config.bind, 0).1);
    let mut front = None;
    if let Some(listener) = ice_tcp {
        let tcp_config = crate::tcp::FrontConfig {
            workers: ports
                .iter()
                .map(|&p| crate::tcp::worker_route(config.bind, p).0)
                .collect(),
            local_ip: crate::tcp::worker_route(config.bind, 0).1,
            limits: crate::tcp::Limits {
                max_connections: config.ice_tcp_max_connections,
                ..crate::tcp::Limits::default()
            },
        };
        let f = crate::tcp::Front::new(listener, tcp_config, Some(server.region().clone()))
            .map_err(|e| format!("starting ICE-TCP: {e}"))?;
        let port = f.local_addr().map_or(0, |a| a.port());
        server.set_ice_tcp_port(port);
        let stop = stop.clone();
        front = Some((
            port,
            std::thread::Builder::new()
                .name("sy-ice-tcp".into())
                .spawn(move || f.run(&stop))
                .map_err(|e| format!("starting ICE-TCP: {e}"))?,
        ));
    }
    let wakes: Vec<Arc<Wake>> = (0..config.workers)
        .map(|_| Wake::new().map(Arc::new))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let client_wake = Arc::new(crate::abi::wakeup::ClientWake::default());
    let mesh = Mesh::new(wakes.clone(), client_wake.clone());
    // the XDP program, attached while this function runs (dropped at its
    // end, or with the process: detached)
    let filter = config.xdp.as_ref().and_then(|(interface, mode)| {
        let attached = io::xdp::XdpFilter::attach(interface, *mode)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                io::xdp::serve_interface(&f, interface, config.bind)?;
                Ok(Arc::new(f))
            });
        match attached {
            Ok(f) => Some((f, interface.clone())),
            Err(e) => {
                tracing::warn!(target: "switchyard::io", error = %e, "AF_XDP unavailable; every worker uses auto");
                None
            }
        }
    });
    // a wildcard bind follows the interface's addresses as they change
    let follower = match &filter {
        Some((f, interface)) if config.bind.is_unspecified() => {
            let (f, interface, stop, bind) =
                (f.clone(), interface.clone(), stop.clone(), config.bind);
            Some(
                std::thread::Builder::new()
                    .name("sy-xdp-addrs".into())
                    .spawn(move || io::xdp::follow_addresses(&f, &interface, bind, &stop))
                    .map_err(|e| format!("starting the XDP address follower: {e}"))?,
            )
        }
        _ => None,
    };
    // Each worker opens its packet I/O on its own thread: an io_uring's
    // requests belong to the thread that submits them, and the kernel runs
    // their completion work on that thread — opened here, every received
    // packet would interrupt this (control socket) thread.
    let mut threads = Vec::new();
    let (opened_tx, opened) = std::sync::mpsc::channel::<Result<(), String>>();
    for ((i, socket), rings) in sockets.into_iter().enumerate().zip(rings) {
        let filter = filter.as_ref().map(|(f, _)| f.clone());
        let (wake, mesh, stop, opened_tx) = (
            wakes[i].clone(),
            mesh.clone(),
            stop.clone(),
            opened_tx.clone(),
        );
        let (io_choice, batch, port) = (config.io, config.batch, ports[i]);
        let core = config.cores.get(i).copied().flatten();
        let handle = std::thread::Builder::new()
            .name(format!("sy-worker-{i}"))
            .spawn(move || {
                if let Some(core) = core
                    && !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        tracing::warn!(target: "switchyard::worker", worker = i, core, "could not pin to CPU");
                    }
                let io = match open_io(filter.as_deref(), i, socket, io_choice, &wake, batch) {
                    Ok(io) => io,
                    Err(e) => {
                        let _ = opened_tx.send(Err(format!("worker {i} packet I/O: {e}")));
                        return;
                    }
                };
                let engine = Engine::new(EngineConfig {
                    worker: i as u16,
                    tcp_front: front_ip,
                    ..EngineConfig::default()
                });
                let worker = Worker::new(engine, io, rings, mesh, wake, stop, port);
                let _ = opened_tx.send(Ok(()));
                worker.run();
            })
            .map_err(|e| format!("starting worker {i}: {e}"))?;
        threads.push(handle);
    }
    drop(opened_tx);
    let failed = (0..threads.len())
        .map(|_| {
            opened
                .recv()
                .unwrap_or_else(|_| Err("a worker died starting".into()))
        })
        .find_map(Result::err);
    if let Some(e) = failed {
        stop.store(true, Ordering::Relaxed);
        for w in &wakes {
            w.set_sleeping(true);
            w.wake();
        }
        for t in threads {
            let _ = t.join();
        }
        return Err(e);
    }
    tracing::info!(
        target: "switchyard::dataplane",
        version = crate::VERSION,
        workers = config.workers,
        ports = ?ports,
        ice_tcp_port = front.as_ref().map(|f| f.0),
        control_socket = %config.control_socket.display(),
        "dataplane ready"
    );
    let wakeups = crate::abi::server::Wakeups {
        workers: wakes.clone(),
        client: client_wake,
    };
    let served = server.serve(&config.control_socket, &wakeups, || {
        stop.load(Ordering::Relaxed)
    });
    stop.store(true, Ordering::Relaxed);
    for w in &wakes {
        w.set_sleeping(true);
        w.wake();
    }
    for t in threads
        .into_iter()
        .chain(front.map(|f| f.1))
        .chain(follower)
    {
        let _ = t.join();
    }
    tracing::info!(target: "switchyard::dataplane", "dataplane stopped");
    served.map_err(|e| format!("control socket: {e}"))
}

/// A worker's packet I/O: its AF_XDP socket when the XDP program is
/// attached (else, or when that fails, `auto`), or the configured backend.
fn open_io(
    filter: Option<&io::xdp::XdpFilter>,
    i: usize,
    socket: std::net::UdpSocket,
    choice: io::IoChoice,
    wake: &Wake,
    batch: usize,
) -> std::io::Result<Box<dyn io::PacketIo>> {
    match filter {
        Some(f) => {
            let fallback = socket.try_clone()?;
            io::open_xdp(f, i as u32, socket, wake, batch).or_else(|e| {
                tracing::warn!(target: "switchyard::io", worker = i, error = %e, "no AF_XDP socket for this worker; it uses auto");
                io::open(io::IoChoice::Auto, fallback, wake, batch)
            })
        }
        None => io::open(choice, socket, wake, batch),
    }
}

/// Raises the soft limit on open files to the hard one: every ICE-TCP
/// connection takes two descriptors.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(target: "switchyard::tcp", error = %e, "could not raise the open-file limit");
        }
    }
}

/// Logs a warning when this host falls short of a tuning profile.
fn warn_if_untuned(name: &str) {
    let profile = match switchyard_tuning::profile(name) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(target: "switchyard::tuning", "{e}");
            return;
        }
    };
    let short: Vec<String> = switchyard_tuning::check(&profile, std::path::Path::new("/"))
        .into_iter()
        .filter(|f| f.needs_attention() && f.setting.apply)
        .map(|f| {
            let have = match f.status {
                switchyard_tuning::Status::Ok(v) | switchyard_tuning::Status::Differs(v) => v,
                switchyard_tuning::Status::Missing => "absent".into(),
            };
            format!(
                "{} = {} (want {})",
                f.setting.name(),
                have.replace('\t', " "),
                f.setting.want
            )
        })
        .collect();
    if !short.is_empty() {
        tracing::warn!(
            target: "switchyard::tuning",
            profile = name,
            "this host falls short of the tuning profile: {}; see `switchyard-tune check --profile {name}`",
            short.join(", ")
        );
    }
}
