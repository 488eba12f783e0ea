//! `switchyard`: the command people run — focus and bridge in one process.
//! `switchyard focus …` runs only the focus, `switchyard bridge …` a bridge
//! agent beside its dataplane (docs/cluster.md), and `switchyard dataplane
//! …` the dataplane (the control plane starts itself that way as its
//! child).

use clap::Parser;
use std::process::ExitCode;
use switchyard_controlplane::config::{Args, Config, Role, RoleKind};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("dataplane") {
        args.next();
        return switchyard_dataplane::runtime::main_with_args(args);
    }
    let role = match args.peek().map(String::as_str) {
        Some("focus") => RoleKind::Focus,
        Some("bridge") => RoleKind::Bridge,
        _ => RoleKind::All,
    };
    let name = match role {
        RoleKind::All => "switchyard".to_string(),
        _ => format!("switchyard {}", args.next().unwrap_or_default()),
    };
    let mut parsed = Args::parse_from(std::iter::once(name).chain(args));
    parsed.role = role;
    let config = match Config::load(parsed) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(&config.log)));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchyard: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The log filter: `--log` plus silence for the SDP parser, which writes a
/// warning with the whole line for every attribute it does not know, so a
/// client could fill the disk with padded offers (ours report bad SDP as a
/// signalling error instead). Naming `webrtc_sdp` in `--log` overrides it.
fn log_filter(log: &str) -> String {
    if log.contains("webrtc_sdp") {
        log.to_string()
    } else {
        format!("{log},webrtc_sdp=off")
    }
}

/// Every signalling connection is a descriptor: take the hard limit as the
/// soft one (1024 by default on Debian) so the connection limits, not the
/// descriptor limit, decide who is refused.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(target: "switchyard::config", error = %e, "could not raise the open file limit");
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|e| format!("binding HTTP {}: {e}", config.http))?;
    let shutdown = switchyard_controlplane::app::Shutdown::on_signals();
    match (config.role.clone(), config.cluster_secret.clone()) {
        (Role::Bridge(role), Some(secret)) => {
            switchyard_controlplane::agent::bridge::serve(config, role, secret, listener, shutdown)
                .await
        }
        _ => switchyard_controlplane::app::serve(config, listener, shutdown).await,
    }
}
