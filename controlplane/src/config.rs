//! `switchyard` configuration: a TOML file and flags (every option is
//! both), parsed once into [`Config`].

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Flags of `switchyard`.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: a self-hosted WebRTC SFU"
)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// HTTP listen address (signalling, demo page, health, stats).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// `spawn` (default: run and supervise a dataplane child) or
    /// `attach:<socket>` (use one that runs on its own).
    #[arg(long)]
    pub dataplane: Option<String>,
    /// Dataplane workers when spawning (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Media bind address when spawning.
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// UDP port of worker 0 when spawning (0: OS-assigned).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Control socket of the spawned dataplane.
    #[arg(long)]
    pub control_socket: Option<PathBuf>,
    /// Address browsers reach the media ports at (host candidates); for a
    /// server behind NAT its public address. Default: the media bind address
    /// (127.0.0.1 when that is unspecified).
    #[arg(long)]
    pub advertise: Option<IpAddr>,
    /// Log filter, e.g. "info,switchyard::dtls=debug".
    #[arg(long)]
    pub log: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<SocketAddr>,
    dataplane: Option<String>,
    workers: Option<usize>,
    bind: Option<IpAddr>,
    base_port: Option<u16>,
    control_socket: Option<PathBuf>,
    advertise: Option<IpAddr>,
    log: Option<String>,
}

/// How the control plane gets its dataplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataplaneMode {
    /// Run `switchyard dataplane …` as a supervised child.
    Spawn {
        /// Workers (default: available CPUs).
        workers: usize,
        /// Media bind address (default 127.0.0.1).
        bind: IpAddr,
        /// Worker 0's port (default 10000).
        base_port: u16,
        /// Control socket path.
        control_socket: PathBuf,
    },
    /// Attach to a dataplane that runs on its own.
    Attach(PathBuf),
}

/// The typed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// HTTP listen address (default 127.0.0.1:8080).
    pub http: SocketAddr,
    /// Dataplane mode (default spawn).
    pub dataplane: DataplaneMode,
    /// Address put in host candidates.
    pub advertise: IpAddr,
    /// Log filter (default "info").
    pub log: String,
}

impl Config {
    /// Reads the file (if any) and applies the flags.
    pub fn load(args: Args) -> Result<Config, String> {
        let file: FileConfig = match &args.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("reading {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("parsing {}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let mode = args
            .dataplane
            .or(file.dataplane)
            .unwrap_or_else(|| "spawn".into());
        let dataplane = if mode == "spawn" {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            DataplaneMode::Spawn {
                workers: args.workers.or(file.workers).unwrap_or(cpus),
                bind: args
                    .bind
                    .or(file.bind)
                    .unwrap_or(IpAddr::from([127, 0, 0, 1])),
                base_port: args.base_port.or(file.base_port).unwrap_or(10000),
                control_socket: args
                    .control_socket
                    .or(file.control_socket)
                    .unwrap_or_else(switchyard_dataplane::config::default_control_socket),
            }
        } else if let Some(path) = mode.strip_prefix("attach:") {
            DataplaneMode::Attach(PathBuf::from(path))
        } else {
            return Err(format!(
                "--dataplane must be `spawn` or `attach:<socket>`, not {mode:?}"
            ));
        };
        let bind = match &dataplane {
            DataplaneMode::Spawn { bind, .. } if !bind.is_unspecified() => *bind,
            _ => IpAddr::from([127, 0, 0, 1]),
        };
        let advertise = args.advertise.or(file.advertise).unwrap_or(bind);
        Ok(Config {
            advertise,
            http: args
                .http
                .or(file.http)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            dataplane,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_modes() {
        let c = Config::load(Args::default()).unwrap();
        assert_eq!(c.http, "127.0.0.1:8080".parse().unwrap());
        assert!(matches!(
            c.dataplane,
            DataplaneMode::Spawn {
                base_port: 10000,
                ..
            }
        ));
        let c = Config::load(Args {
            dataplane: Some("attach:/run/dp.sock".into()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.dataplane, DataplaneMode::Attach("/run/dp.sock".into()));
        assert!(
            Config::load(Args {
                dataplane: Some("elsewhere".into()),
                ..Args::default()
            })
            .is_err()
        );
    }
}
