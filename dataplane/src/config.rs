//! Dataplane configuration: a TOML file and command-line flags, parsed once
//! into [`Config`]. Flags override the file; the file overrides defaults.

use crate::io::IoChoice;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Command-line flags of `switchyard-dataplane`.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "switchyard-dataplane",
    version,
    about = "Switchyard's media forwarding process"
)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of workers (one UDP socket and thread each).
    #[arg(long)]
    pub workers: Option<usize>,
    /// CPUs to pin workers to, comma separated (worker i → i-th CPU).
    #[arg(long, value_delimiter = ',')]
    pub cores: Option<Vec<usize>>,
    /// Address the media sockets bind to.
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// UDP port of worker 0; worker i uses base + i. 0 lets the OS pick.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// TCP port for ICE-TCP (RFC 6544), or `off` (the default); 0 lets
    /// the OS pick.
    #[arg(long, value_parser = parse_port_or_off)]
    pub ice_tcp_port: Option<PortOrOff>,
    /// Packet I/O backend (also SWITCHYARD_IO=uring|mmsg).
    #[arg(long, value_enum)]
    pub io: Option<IoChoice>,
    /// The interface `--io xdp` attaches to (the one the media address
    /// is on).
    #[arg(long)]
    pub xdp_interface: Option<String>,
    /// Where the XDP program runs: `native` (in the driver; the default)
    /// or `generic` (any interface, no gain in speed).
    #[arg(long, value_enum)]
    pub xdp_mode: Option<crate::io::xdp::XdpMode>,
    /// Unix socket where control clients attach.
    #[arg(long)]
    pub control_socket: Option<PathBuf>,
    /// Log filter (tracing env-filter syntax), e.g. "info,switchyard::io=debug".
    #[arg(long)]
    pub log: Option<String>,
    /// Stop when the parent process dies (set by `switchyard` for its child).
    #[arg(long)]
    pub exit_with_parent: bool,
    /// Host tuning profile to compare this host with at start (`1g`,
    /// `10g`, or `none`); shortfalls are logged as a warning.
    #[arg(long)]
    pub tuning_profile: Option<String>,
}

/// A port number, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortOrOff {
    /// A port (0: the OS picks).
    Port(u16),
    /// The string `off`.
    Off(Off),
}

/// The word `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Off {
    /// Off.
    Off,
}

impl PortOrOff {
    /// The port, `None` for `off`.
    pub fn port(self) -> Option<u16> {
        match self {
            PortOrOff::Port(p) => Some(p),
            PortOrOff::Off(_) => None,
        }
    }
}

/// Parses a port number or `off`.
pub fn parse_port_or_off(s: &str) -> Result<PortOrOff, String> {
    if s == "off" {
        return Ok(PortOrOff::Off(Off::Off));
    }
    s.parse()
        .map(PortOrOff::Port)
        .map_err(|_| format!("expected a port number or `off`, not `{s}`"))
}

/// The file format; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    workers: Option<usize>,
    cores: Option<Vec<usize>>,
    bind: Option<IpAddr>,
    base_port: Option<u16>,
    ice_tcp_port: Option<PortOrOff>,
    ice_tcp_max_connections: Option<usize>,
    io: Option<IoChoice>,
    xdp_interface: Option<String>,
    xdp_mode: Option<crate::io::xdp::XdpMode>,
    control_socket: Option<PathBuf>,
    recv_buffer: Option<usize>,
    send_buffer: Option<usize>,
    batch: Option<usize>,
    endpoint_capacity: Option<u32>,
    log: Option<String>,
    tuning_profile: Option<String>,
}

/// The typed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Workers (default: one per available CPU).
    pub workers: usize,
    /// CPU of each worker (default 0, 1, …); `None` entries are not pinned.
    pub cores: Vec<Option<usize>>,
    /// Bind address (default 127.0.0.1, loopback-friendly; use 0.0.0.0 or
    /// a public address in production).
    pub bind: IpAddr,
    /// Port of worker 0 (default 10000; 0 = OS-assigned per worker).
    pub base_port: u16,
    /// ICE-TCP port (default none; 0 = OS-assigned).
    pub ice_tcp_port: Option<u16>,
    /// Open ICE-TCP connections at most (default 2048).
    pub ice_tcp_max_connections: usize,
    /// I/O backend (default auto).
    pub io: IoChoice,
    /// With `io = xdp`: the interface and the program's mode.
    pub xdp: Option<(String, crate::io::xdp::XdpMode)>,
    /// Control socket path (default `$XDG_RUNTIME_DIR/switchyard/dataplane.sock`,
    /// else `$TMPDIR/switchyard-$UID/dataplane.sock`); its directory must be
    /// private to this user (mode 0700), and is made so when missing.
    pub control_socket: PathBuf,
    /// SO_RCVBUF per socket (default 8 MiB).
    pub recv_buffer: usize,
    /// SO_SNDBUF per socket (default 8 MiB).
    pub send_buffer: usize,
    /// Datagrams per receive / send batch (default 64).
    pub batch: usize,
    /// Endpoint table capacity (default 4096).
    pub endpoint_capacity: u32,
    /// Log filter (default "info").
    pub log: String,
    /// Tuning profile checked at start (default "1g"; `None` for "none").
    pub tuning_profile: Option<String>,
}

/// Why the configuration was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("parsing {path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Default control socket path: `$XDG_RUNTIME_DIR/switchyard/dataplane.sock`,
/// else `$TMPDIR/switchyard-$UID/dataplane.sock` (`/tmp` without `TMPDIR`).
/// Either directory is made private to this user, and refused when it
/// already exists with another owner or a wider mode.
pub fn default_control_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Path::new(&dir).join("switchyard").join("dataplane.sock"),
        None => std::env::temp_dir()
            .join(format!(
                "switchyard-{}",
                rustix::process::geteuid().as_raw()
            ))
            .join("dataplane.sock"),
    }
}

impl Config {
    /// Reads the file named by `--config` (if any) and applies the flags.
    pub fn load(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            None => FileConfig::default(),
        };
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = args.workers.or(file.workers).unwrap_or(cpus);
        if !(1..=crate::abi::layout::MAX_WORKERS).contains(&workers) {
            return Err(ConfigError::Invalid(format!(
                "workers must be 1–64, not {workers}"
            )));
        }
        let cores: Vec<Option<usize>> = match args.cores.or(file.cores) {
            Some(list) => (0..workers).map(|i| list.get(i).copied()).collect(),
            None => (0..workers).map(|i| (i < cpus).then_some(i)).collect(),
        };
        let base_port = args.base_port.or(file.base_port).unwrap_or(10000);
        if base_port != 0 && usize::from(base_port) + workers > 65536 {
            return Err(ConfigError::Invalid(format!(
                "base port {base_port} + {workers} workers exceeds 65535"
            )));
        }
        let batch = file.batch.unwrap_or(64);
        if !(1..=1024).contains(&batch) {
            return Err(ConfigError::Invalid(format!(
                "batch must be 1–1024, not {batch}"
            )));
        }
        let io = args.io.or(file.io).unwrap_or(IoChoice::Auto);
        let xdp = match (io, args.xdp_interface.or(file.xdp_interface)) {
            (IoChoice::Xdp, Some(name)) => Some((
                name,
                args.xdp_mode
                    .or(file.xdp_mode)
                    .unwrap_or(crate::io::xdp::XdpMode::Native),
            )),
            (IoChoice::Xdp, None) => {
                return Err(ConfigError::Invalid(
                    "io = xdp needs the interface to attach to: --xdp-interface (xdp_interface)"
                        .into(),
                ));
            }
            _ => None,
        };
        Ok(Config {
            workers,
            cores,
            bind: args
                .bind
                .or(file.bind)
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            base_port,
            ice_tcp_port: args
                .ice_tcp_port
                .or(file.ice_tcp_port)
                .and_then(PortOrOff::port),
            ice_tcp_max_connections: match file.ice_tcp_max_connections.unwrap_or(2048) {
                n @ 1..=65536 => n,
                n => {
                    return Err(ConfigError::Invalid(format!(
                        "ice_tcp_max_connections must be 1–65536, not {n}"
                    )));
                }
            },
            io,
            xdp,
            control_socket: args
                .control_socket
                .or(file.control_socket)
                .unwrap_or_else(default_control_socket),
            recv_buffer: file.recv_buffer.unwrap_or(8 << 20),
            send_buffer: file.send_buffer.unwrap_or(8 << 20),
            batch,
            endpoint_capacity: file.endpoint_capacity.unwrap_or(4096),
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            tuning_profile: match args.tuning_profile.or(file.tuning_profile) {
                None => Some("1g".into()),
                Some(p) if p == "none" => None,
                Some(p) => Some(p),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("swyd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dp.toml");
        std::fs::write(
            &path,
            "workers = 3\nbase_port = 20000\nio = \"mmsg\"\ncores = [1, 0]\nice_tcp_port = 4443\n",
        )
        .unwrap();
        let c = Config::load(Args {
            config: Some(path.clone()),
            workers: Some(2),
            ..Args::default()
        })
        .unwrap();
        assert_eq!((c.workers, c.base_port, c.io), (2, 20000, IoChoice::Mmsg));
        assert_eq!(c.cores, vec![Some(1), Some(0)]);
        assert_eq!(c.ice_tcp_port, Some(4443));
        let off = Config::load(Args {
            config: Some(path.clone()),
            ice_tcp_port: Some(parse_port_or_off("off").unwrap()),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(off.ice_tcp_port, None);
        assert!(parse_port_or_off("4443x").is_err());
        std::fs::write(&path, "workerz = 1\n").unwrap();
        assert!(matches!(
            Config::load(Args {
                config: Some(path),
                ..Args::default()
            }),
            Err(ConfigError::Parse { .. })
        ));
        assert!(
            Config::load(Args {
                workers: Some(0),
                ..Args::default()
            })
            .is_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
