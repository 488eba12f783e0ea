//! `switchyard` configuration: a TOML file and flags (every option is
//! both), parsed once into [`Config`].

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

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
    /// HTTP listen address (signalling, demo page, health, stats); default
    /// 127.0.0.1:8080.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// `spawn` (default: run and supervise a dataplane child) or
    /// `attach:<socket>` (use one that runs on its own).
    #[arg(long)]
    pub dataplane: Option<String>,
    /// Dataplane workers when spawning (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Media bind address when spawning (default 127.0.0.1).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// UDP port of worker 0 when spawning (default 10000; 0: OS-assigned).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// TCP port for ICE-TCP when spawning (RFC 6544: browsers that cannot
    /// use UDP reach the media over TCP), or `off`. Default 4443; 0: the OS
    /// picks.
    #[arg(long, value_parser = switchyard_dataplane::config::parse_port_or_off)]
    pub ice_tcp_port: Option<switchyard_dataplane::config::PortOrOff>,
    /// Packet I/O of the spawned dataplane: `auto` (io_uring, else mmsg),
    /// `uring`, `mmsg`, or `xdp` (AF_XDP on `--xdp-interface`; docs/dataplane.md).
    #[arg(long, value_enum)]
    pub io: Option<switchyard_dataplane::io::IoChoice>,
    /// With `--io xdp`: the interface the media address is on.
    #[arg(long)]
    pub xdp_interface: Option<String>,
    /// With `--io xdp`: `native` (default) or `generic`.
    #[arg(long, value_enum)]
    pub xdp_mode: Option<switchyard_dataplane::io::xdp::XdpMode>,
    /// Control socket of the spawned dataplane.
    #[arg(long)]
    pub control_socket: Option<PathBuf>,
    /// Addresses browsers reach the media ports at, one host candidate
    /// each (comma-separated or repeated); for a server behind NAT its
    /// public address. Default: the media bind address (127.0.0.1 when that
    /// is unspecified).
    #[arg(long, value_delimiter = ',')]
    pub advertise: Vec<IpAddr>,
    /// Log filter, e.g. "info,switchyard::dtls=debug".
    #[arg(long)]
    pub log: Option<String>,
    /// HTTPS listen address (browsers need HTTPS for camera and microphone
    /// anywhere but on localhost), or `off`. Default: port 8443 on the media
    /// bind address (127.0.0.1 unless `--bind` says otherwise), so the page
    /// is served where the calls work.
    #[arg(long)]
    pub https: Option<String>,
    /// PEM certificate chain for HTTPS (with `--tls-key`). Without both, a
    /// self-signed certificate is generated on first start and kept in
    /// `--state-dir`.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Where generated state (the self-signed certificate) is kept.
    /// Default `$XDG_DATA_HOME/switchyard`, else `~/.local/share/switchyard`.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Require room tokens signed with this HS256 secret (better from the
    /// environment or the config file than on a command line others see).
    #[arg(long, env = "SWITCHYARD_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// Require room tokens signed by the holder of this RS256 public key
    /// (PEM file).
    #[arg(long)]
    pub token_public_key: Option<PathBuf>,
    /// Most participants in one room.
    #[arg(long)]
    pub max_participants: Option<usize>,
    /// Most rooms on this server.
    #[arg(long)]
    pub max_rooms: Option<usize>,
    /// Sustained joins per second (burst: twice this).
    #[arg(long)]
    pub joins_per_second: Option<f64>,
    /// Open signalling connections on this server (default 10000).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Open signalling connections from one client address, an IPv6 /64
    /// counting as one (default 100).
    #[arg(long)]
    pub max_connections_per_address: Option<usize>,
    /// Sustained joins per second from one client address (default 5;
    /// burst: twice this).
    #[arg(long)]
    pub joins_per_second_per_address: Option<f64>,
    /// Seconds a new signalling connection has to join a room before it is
    /// closed with code 4001 (default 10).
    #[arg(long)]
    pub join_deadline: Option<f64>,
    /// On SIGTERM, how long to wait for the rooms to empty before ending the
    /// calls left, e.g. `60s`, `2m` or `30` (seconds; default 60s).
    #[arg(long)]
    pub drain_timeout: Option<String>,
    /// How long a participant whose signalling connection dropped may come
    /// back with `resume` before it leaves its room (default 30s).
    #[arg(long)]
    pub resume_grace: Option<String>,
    /// Packets per second (in + out) one dataplane worker carries at full
    /// load; `/stats` reports the stress level against it. Default 300000
    /// (measured, docs/benchmarks.md).
    #[arg(long)]
    pub worker_capacity_pps: Option<f64>,
    /// Forward at most this many videos to each receiver, chosen by pins,
    /// stage and speaker order; audio is never limited. Default: all.
    #[arg(long)]
    pub last_n: Option<usize>,
    /// Let anyone who reaches a non-loopback listener join any room without
    /// a token. Without it, and without `--token-secret` or
    /// `--token-public-key`, `switchyard` refuses to listen beyond loopback.
    #[arg(long)]
    pub open_rooms: bool,
    /// File holding the cluster secret (at least 16 bytes) that the focus
    /// and its bridge agents share (docs/cluster.md). On a focus, or on a
    /// plain `switchyard` that takes remote bridges too, it opens
    /// `/cluster`; a bridge needs it to join.
    #[arg(long)]
    pub cluster_secret_file: Option<PathBuf>,
    /// A TURN server for browsers that cannot reach the bridge directly,
    /// e.g. `turn:turn.example.com:3478?transport=udp` or
    /// `turns:turn.example.com:443?transport=tcp`; given more than once,
    /// all of them (one TURN service, one secret). Needs
    /// `--turn-secret-file`; each participant gets time-limited
    /// credentials in `joined` (docs/deployment.md, "TURN").
    #[arg(long)]
    pub turn_url: Vec<String>,
    /// File holding the secret shared with the TURN server (coturn's
    /// `static-auth-secret`; at least 16 bytes).
    #[arg(long)]
    pub turn_secret_file: Option<PathBuf>,
    /// How long TURN credentials stay valid, e.g. `12h` (default 24h).
    #[arg(long)]
    pub turn_ttl: Option<String>,
    /// Bridge only: a focus's cluster URL, e.g.
    /// `ws://10.0.0.1:8080/cluster`; given more than once, the bridge
    /// serves every one of them (shards sharing bridges). With
    /// `--registry` it also finds every live shard's focus there.
    #[arg(long)]
    pub focus: Vec<String>,
    /// Bridge only: this bridge's id in the cluster (default: the host
    /// name).
    #[arg(long)]
    pub bridge_id: Option<String>,
    /// Bridge only: its region, for placement near participants.
    #[arg(long)]
    pub region: Option<String>,
    /// Focus: bridges at or above this stress take no new rooms while
    /// another can (default 0.8).
    #[arg(long)]
    pub stress_threshold: Option<f64>,
    /// Focus: let a room span bridges (docs/cascading.md): joiners go to a
    /// bridge of their region, or to another bridge when the room's are
    /// full, linked by encrypted relays.
    #[arg(long)]
    pub cascade: bool,
    /// Focus with `--cascade`: at most this many of a room's participants
    /// on one bridge before the room spreads to another (default 50).
    #[arg(long)]
    pub room_cap_per_bridge: Option<usize>,
    /// The registry the shards of a cluster share (docs/cluster.md,
    /// "Shards"): `redis://[:password@]host[:port][/db]`. Default: none,
    /// this process is the only shard.
    #[arg(long, env = "SWITCHYARD_REGISTRY", hide_env_values = true)]
    pub registry: Option<String>,
    /// Prefix of this cluster's keys in the registry (default
    /// `switchyard:`).
    #[arg(long)]
    pub registry_prefix: Option<String>,
    /// Proxies (e.g. HAProxy in front of several shards) whose
    /// `X-Forwarded-For` names the client: per-address limits then count
    /// the client's address, not the proxy's. Comma-separated addresses.
    #[arg(long, value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
    /// This shard's id in the cluster (default: the host name).
    #[arg(long)]
    pub shard_id: Option<String>,
    /// The signalling URL clients are redirected to for rooms this shard
    /// holds, e.g. `wss://meet.example.com/ws?shard=a` (default: this
    /// process's own HTTPS, or HTTP, listener).
    #[arg(long)]
    pub shard_url: Option<String>,
    /// The cluster URL bridges that find this shard in the registry link
    /// to, e.g. `ws://10.0.0.1:8080/cluster` (default: this process's own
    /// HTTP listener, when `--cluster-secret-file` opens `/cluster`).
    #[arg(long)]
    pub cluster_url: Option<String>,
    /// What this process runs (set from the subcommand).
    #[arg(skip)]
    pub role: RoleKind,
}

/// The subcommand: which roles this process plays.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Plain `switchyard`: focus and bridge in one process.
    #[default]
    All,
    /// `switchyard focus`.
    Focus,
    /// `switchyard bridge`.
    Bridge,
}

/// What this process runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Focus and bridge in one process (plain `switchyard`).
    All,
    /// A focus: signalling and rooms, no dataplane.
    Focus,
    /// A bridge agent beside its dataplane, driven by a focus.
    Bridge(BridgeRole),
}

/// A bridge agent's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeRole {
    /// The cluster URLs (`ws://…/cluster`) of the focuses it serves
    /// whatever the registry says (it may be empty when the registry
    /// names them).
    pub focus: Vec<String>,
    /// This bridge's id.
    pub id: String,
    /// Its region.
    pub region: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<SocketAddr>,
    dataplane: Option<String>,
    workers: Option<usize>,
    bind: Option<IpAddr>,
    base_port: Option<u16>,
    ice_tcp_port: Option<switchyard_dataplane::config::PortOrOff>,
    io: Option<switchyard_dataplane::io::IoChoice>,
    xdp_interface: Option<String>,
    xdp_mode: Option<switchyard_dataplane::io::xdp::XdpMode>,
    control_socket: Option<PathBuf>,
    advertise: Option<Vec<IpAddr>>,
    log: Option<String>,
    https: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    token_secret: Option<String>,
    token_public_key: Option<PathBuf>,
    max_participants: Option<usize>,
    max_rooms: Option<usize>,
    joins_per_second: Option<f64>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    joins_per_second_per_address: Option<f64>,
    join_deadline: Option<f64>,
    drain_timeout: Option<String>,
    resume_grace: Option<String>,
    worker_capacity_pps: Option<f64>,
    last_n: Option<usize>,
    open_rooms: Option<bool>,
    cluster_secret_file: Option<PathBuf>,
    turn_url: Option<OneOrMany>,
    turn_secret_file: Option<PathBuf>,
    turn_ttl: Option<String>,
    focus: Option<OneOrMany>,
    bridge_id: Option<String>,
    region: Option<String>,
    stress_threshold: Option<f64>,
    cascade: Option<bool>,
    room_cap_per_bridge: Option<usize>,
    registry: Option<String>,
    registry_prefix: Option<String>,
    trusted_proxies: Option<Vec<IpAddr>>,
    shard_id: Option<String>,
    shard_url: Option<String>,
    cluster_url: Option<String>,
}

/// A setting given as one value or a list (`focus = "ws://…"` or
/// `focus = ["ws://…", "ws://…"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The spawned dataplane's packet I/O flags; `xdp` needs its interface.
fn io_flags(
    io: Option<switchyard_dataplane::io::IoChoice>,
    interface: Option<String>,
    mode: Option<switchyard_dataplane::io::xdp::XdpMode>,
) -> Result<Vec<String>, String> {
    // a value as its flag spells it
    fn name(v: impl clap::ValueEnum) -> String {
        v.to_possible_value()
            .map(|p| p.get_name().to_string())
            .unwrap_or_default()
    }
    let mut flags = Vec::new();
    if let Some(io) = io {
        flags.extend(["--io".to_string(), name(io)]);
        // checked here too, so that a missing interface stops `switchyard`
        // at start rather than its dataplane child at every restart
        if io == switchyard_dataplane::io::IoChoice::Xdp {
            let interface =
                interface.ok_or("--io xdp needs the interface to attach to: --xdp-interface")?;
            flags.extend(["--xdp-interface".to_string(), interface]);
            if let Some(mode) = mode {
                flags.extend(["--xdp-mode".to_string(), name(mode)]);
            }
        }
    }
    Ok(flags)
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
        /// The ICE-TCP port (default 4443; `None`: off).
        ice_tcp_port: Option<u16>,
        /// Control socket path.
        control_socket: PathBuf,
        /// The dataplane's packet I/O flags (`--io`, `--xdp-interface`,
        /// `--xdp-mode`), passed on as given.
        io: Vec<String>,
    },
    /// Attach to a dataplane that runs on its own.
    Attach(PathBuf),
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Given PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Self-signed, generated once into this directory.
    SelfSigned(PathBuf),
}

/// How joins are authorised (the key material stays out of `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub enum Tokens {
    /// Rooms are open.
    Open,
    /// HS256 with this secret.
    Secret(zeroize::Zeroizing<String>),
    /// RS256 with the public key in this PEM file.
    PublicKey(PathBuf),
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokens::Open => f.write_str("Open"),
            Tokens::Secret(_) => f.write_str("Secret(…)"),
            Tokens::PublicKey(p) => write!(f, "PublicKey({})", p.display()),
        }
    }
}

impl Tokens {
    /// The auth mode's name, as `/health` shows it: `open`, `hs256`, `rs256`.
    pub fn mode(&self) -> &'static str {
        match self {
            Tokens::Open => "open",
            Tokens::Secret(_) => "hs256",
            Tokens::PublicKey(_) => "rs256",
        }
    }

    /// The policy the hub applies.
    pub fn policy(&self) -> Result<crate::auth::TokenPolicy, String> {
        match self {
            Tokens::Open => Ok(crate::auth::TokenPolicy::Open),
            Tokens::Secret(s) => Ok(crate::auth::TokenPolicy::hs256(s.as_bytes())),
            Tokens::PublicKey(p) => {
                let pem = std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
                crate::auth::TokenPolicy::rs256(&pem)
            }
        }
    }
}

/// The typed configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// HTTP listen address (default 127.0.0.1:8080).
    pub http: SocketAddr,
    /// Dataplane mode (default spawn).
    pub dataplane: DataplaneMode,
    /// Addresses put in host candidates (at least one).
    pub advertise: Vec<IpAddr>,
    /// Log filter (default "info").
    pub log: String,
    /// HTTPS listen address (default 0.0.0.0:8443), `None` when off.
    pub https: Option<SocketAddr>,
    /// The HTTPS certificate.
    pub tls: TlsSource,
    /// Room tokens.
    pub tokens: Tokens,
    /// Admission limits.
    pub limits: crate::limits::Limits,
    /// Packets per second one worker carries at full load (stress level).
    pub worker_capacity_pps: f64,
    /// Videos forwarded to each receiver at most.
    pub last_n: Option<usize>,
    /// Rooms opened explicitly beyond loopback (`--open-rooms`).
    pub open_rooms: bool,
    /// How long a SIGTERM waits for the rooms to empty (default 60 s).
    pub drain_timeout: std::time::Duration,
    /// How long a dropped participant may `resume` (default 30 s).
    pub resume_grace: std::time::Duration,
    /// What this process runs.
    pub role: Role,
    /// The cluster secret.
    pub cluster_secret: Option<crate::cluster::auth::Secret>,
    /// Placement rules.
    pub placement: crate::focus::placement::Rules,
    /// This process as a shard of a cluster.
    pub shard: ShardSettings,
    /// Proxies trusted to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<IpAddr>,
    /// TURN servers whose credentials participants get.
    pub turn: Option<crate::turn::Turn>,
}

/// This process as one shard of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSettings {
    /// Its id.
    pub id: String,
    /// Where clients are redirected for its rooms (`None`: its own
    /// listener, known once bound).
    pub url: Option<String>,
    /// Where bridges that find it in the registry link to (`None`: its own
    /// HTTP listener, when it opens `/cluster`).
    pub cluster_url: Option<String>,
    /// The registry it shares (a bridge: where it finds the shards).
    pub registry: RegistrySource,
}

/// Where the registry is.
#[derive(Clone, PartialEq)]
pub enum RegistrySource {
    /// In this process: one shard alone.
    Memory,
    /// In Redis.
    Redis {
        /// `redis://…` (may hold a password: never logged).
        url: String,
        /// Key prefix.
        prefix: String,
    },
}

impl std::fmt::Debug for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistrySource::Memory => f.write_str("Memory"),
            RegistrySource::Redis { prefix, .. } => write!(f, "Redis {{ prefix: {prefix:?} }}"),
        }
    }
}

impl RegistrySource {
    /// Opens it.
    pub fn open(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::registry::Registry>, crate::registry::RegistryError> {
        Ok(match self {
            RegistrySource::Memory => {
                std::sync::Arc::new(crate::registry::memory::MemoryRegistry::new())
            }
            RegistrySource::Redis { url, prefix } => {
                std::sync::Arc::new(crate::registry::redis::RedisRegistry::new(url, prefix)?)
            }
        })
    }
}

/// A shard id made of a host name: characters a token cannot hold become
/// `-`, at most 64 of them, `switchyard` for an empty name.
fn shard_id_from_host(host: &str) -> String {
    let id: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        "switchyard".into()
    } else {
        id
    }
}

/// A secret file's bytes, zeroized when dropped.
fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The TURN settings: none, or URLs, a secret file and a lifetime.
fn turn_settings(
    urls: Vec<String>,
    secret_file: Option<PathBuf>,
    ttl: Option<String>,
) -> Result<Option<crate::turn::Turn>, String> {
    let secret_file = match (urls.is_empty(), secret_file) {
        (true, None) => return Ok(None),
        (false, Some(p)) => p,
        _ => return Err(crate::turn::TurnError::Incomplete.to_string()),
    };
    let ttl = match ttl {
        Some(t) => parse_duration(&t).map_err(|e| format!("--turn-ttl: {e}"))?,
        None => crate::turn::DEFAULT_TTL,
    };
    let secret = read_secret(&secret_file)?;
    crate::turn::Turn::new(urls, &secret, ttl)
        .map(Some)
        .map_err(|e| format!("{}: {e}", secret_file.display()))
}

/// Parses `60s`, `2m`, `1h` or plain seconds (`30`, `2.5`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| std::time::Duration::try_from_secs_f64(n * scale).ok())
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 60s, 2m, 30)"))
}

fn default_state_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    data.join("switchyard")
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
                ice_tcp_port: args
                    .ice_tcp_port
                    .or(file.ice_tcp_port)
                    .map_or(Some(4443), |p| p.port()),
                control_socket: args
                    .control_socket
                    .or(file.control_socket)
                    .unwrap_or_else(switchyard_dataplane::config::default_control_socket),
                io: io_flags(
                    args.io.or(file.io),
                    args.xdp_interface.or(file.xdp_interface),
                    args.xdp_mode.or(file.xdp_mode),
                )?,
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
        let advertise = if args.advertise.is_empty() {
            file.advertise.unwrap_or_default()
        } else {
            args.advertise
        };
        let advertise = if advertise.is_empty() {
            vec![bind]
        } else {
            advertise
        };
        if let Some(a) = advertise.iter().find(|a| a.is_unspecified()) {
            return Err(format!(
                "--advertise needs addresses browsers can reach, not {a}"
            ));
        }
        // The page is served where the media is: the media bind address in
        // spawn mode; beside a separate dataplane, every interface when the
        // advertised addresses are not loopback.
        let https_host = match &dataplane {
            DataplaneMode::Spawn { bind, .. } => *bind,
            DataplaneMode::Attach(_) if advertise.iter().all(IpAddr::is_loopback) => {
                IpAddr::from([127, 0, 0, 1])
            }
            DataplaneMode::Attach(_) => IpAddr::from([0, 0, 0, 0]),
        };
        let https = match args.https.or(file.https).as_deref() {
            None => Some(SocketAddr::new(https_host, 8443)),
            Some("off") => None,
            Some(a) => Some(
                a.parse()
                    .map_err(|e| format!("--https must be an address or `off`, not {a:?}: {e}"))?,
            ),
        };
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            (None, None) => TlsSource::SelfSigned(
                args.state_dir
                    .or(file.state_dir)
                    .unwrap_or_else(default_state_dir),
            ),
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        let tokens = match (
            args.token_secret.or(file.token_secret),
            args.token_public_key.or(file.token_public_key),
        ) {
            (None, None) => Tokens::Open,
            (Some(s), None) if !s.is_empty() => Tokens::Secret(zeroize::Zeroizing::new(s)),
            (Some(_), None) => return Err("--token-secret must not be empty".into()),
            (None, Some(p)) => Tokens::PublicKey(p),
            (Some(_), Some(_)) => {
                return Err("choose one of --token-secret and --token-public-key".into());
            }
        };
        let worker_capacity_pps = args
            .worker_capacity_pps
            .or(file.worker_capacity_pps)
            .unwrap_or(300_000.0);
        if !(worker_capacity_pps.is_finite() && worker_capacity_pps > 0.0) {
            return Err(format!(
                "--worker-capacity-pps must be positive, not {worker_capacity_pps}"
            ));
        }
        let mut limits = crate::limits::Limits::default();
        if let Some(n) = args.max_participants.or(file.max_participants) {
            limits.participants_per_room = n;
        }
        if let Some(n) = args.max_rooms.or(file.max_rooms) {
            limits.rooms = n;
        }
        if let Some(r) = args.joins_per_second.or(file.joins_per_second) {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!("--joins-per-second must be positive, not {r}"));
            }
            limits.joins_per_second = r;
            limits.join_burst = 2.0 * r;
        }
        if let Some(n) = args.max_connections.or(file.max_connections) {
            limits.connections = n;
        }
        if let Some(n) = args
            .max_connections_per_address
            .or(file.max_connections_per_address)
        {
            limits.connections_per_address = n;
        }
        if let Some(r) = args
            .joins_per_second_per_address
            .or(file.joins_per_second_per_address)
        {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!(
                    "--joins-per-second-per-address must be positive, not {r}"
                ));
            }
            limits.joins_per_second_per_address = r;
        }
        if let Some(secs) = args.join_deadline.or(file.join_deadline) {
            limits.join_deadline = std::time::Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--join-deadline must be positive seconds, not {secs}"))?;
        }
        let cluster_secret = match args.cluster_secret_file.or(file.cluster_secret_file) {
            Some(p) => {
                let bytes = read_secret(&p)?;
                Some(
                    crate::cluster::auth::Secret::new(&bytes)
                        .map_err(|e| format!("{}: {e}", p.display()))?,
                )
            }
            None => None,
        };
        let role = match args.role {
            RoleKind::All => Role::All,
            RoleKind::Focus => Role::Focus,
            RoleKind::Bridge => {
                let focus = if args.focus.is_empty() {
                    file.focus.map(OneOrMany::into_vec).unwrap_or_default()
                } else {
                    args.focus
                };
                if focus.is_empty() && args.registry.is_none() && file.registry.is_none() {
                    return Err(
                        "switchyard bridge needs --focus ws://<focus>/cluster or --registry".into(),
                    );
                }
                if let Some(f) = focus.iter().find(|f| !f.starts_with("ws://")) {
                    return Err(format!(
                        "--focus must be a ws:// URL (wss:// is not supported yet), not {f:?}"
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(f) = focus.iter().find(|f| !seen.insert(f.as_str())) {
                    return Err(format!("--focus {f:?} is given twice"));
                }
                let id = match args.bridge_id.or(file.bridge_id) {
                    Some(id) => id,
                    None => rustix::system::uname()
                        .nodename()
                        .to_string_lossy()
                        .into_owned(),
                };
                crate::cluster::wire::check_name(&id, "--bridge-id").map_err(|e| e.to_string())?;
                let region = args.region.or(file.region);
                if let Some(r) = &region {
                    crate::cluster::wire::check_name(r, "--region").map_err(|e| e.to_string())?;
                }
                Role::Bridge(BridgeRole { focus, id, region })
            }
        };
        if role != Role::All && cluster_secret.is_none() {
            return Err(
                "a focus and its bridges need --cluster-secret-file (the same file on each)".into(),
            );
        }
        let stress_threshold = args
            .stress_threshold
            .or(file.stress_threshold)
            .unwrap_or(crate::focus::placement::DEFAULT_STRESS_THRESHOLD);
        if !(stress_threshold.is_finite() && stress_threshold > 0.0) {
            return Err(format!(
                "--stress-threshold must be positive, not {stress_threshold}"
            ));
        }
        let room_cap_per_bridge = args
            .room_cap_per_bridge
            .or(file.room_cap_per_bridge)
            .unwrap_or(crate::focus::placement::DEFAULT_ROOM_CAP_PER_BRIDGE);
        if room_cap_per_bridge == 0 {
            return Err("--room-cap-per-bridge must be at least 1".into());
        }
        let cascade = args.cascade || file.cascade.unwrap_or(false);
        let shard = {
            let id = match args.shard_id.or(file.shard_id) {
                Some(id) => id,
                // (any host name starts: what a token cannot hold becomes -)
                None => shard_id_from_host(&rustix::system::uname().nodename().to_string_lossy()),
            };
            // it goes into registry keys and URLs (?shard=): a plain token
            if !crate::signalling::valid_room(&id) {
                return Err(format!(
                    "--shard-id must be 1-64 of A-Z a-z 0-9 - _ . (the host name otherwise), not {id:?}"
                ));
            }
            let url = args.shard_url.or(file.shard_url);
            if let Some(u) = &url
                && !(u.starts_with("wss://") || u.starts_with("ws://"))
            {
                return Err(format!(
                    "--shard-url must be a ws:// or wss:// URL, not {u:?}"
                ));
            }
            let registry = match args.registry.or(file.registry) {
                None => RegistrySource::Memory,
                Some(url) if url.starts_with("redis://") => RegistrySource::Redis {
                    url,
                    prefix: args
                        .registry_prefix
                        .or(file.registry_prefix)
                        .unwrap_or_else(|| "switchyard:".into()),
                },
                Some(_) => {
                    return Err(
                        "--registry must be a redis:// URL (rediss:// is not supported yet)".into(),
                    );
                }
            };
            let cluster_url = args.cluster_url.or(file.cluster_url);
            if let Some(u) = &cluster_url
                && !u.starts_with("ws://")
            {
                return Err(format!(
                    "--cluster-url must be a ws:// URL (wss:// is not supported yet), not {u:?}"
                ));
            }
            ShardSettings {
                id,
                url,
                cluster_url,
                registry,
            }
        };
        let trusted_proxies = if args.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            args.trusted_proxies
        };
        let turn = turn_settings(
            if args.turn_url.is_empty() {
                file.turn_url.map(OneOrMany::into_vec).unwrap_or_default()
            } else {
                args.turn_url
            },
            args.turn_secret_file.or(file.turn_secret_file),
            args.turn_ttl.or(file.turn_ttl),
        )?;
        let config = Config {
            turn,
            trusted_proxies,
            shard,
            role,
            cluster_secret,
            placement: crate::focus::placement::Rules {
                stress_threshold,
                cascade,
                room_cap_per_bridge,
            },
            advertise,
            http: args
                .http
                .or(file.http)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            dataplane,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            https,
            tls,
            tokens,
            limits,
            worker_capacity_pps,
            last_n: args.last_n.or(file.last_n),
            open_rooms: args.open_rooms || file.open_rooms.unwrap_or(false),
            drain_timeout: match args.drain_timeout.or(file.drain_timeout) {
                Some(t) => parse_duration(&t).map_err(|e| format!("--drain-timeout: {e}"))?,
                None => std::time::Duration::from_secs(60),
            },
            resume_grace: match args.resume_grace.or(file.resume_grace) {
                Some(t) => parse_duration(&t).map_err(|e| format!("--resume-grace: {e}"))?,
                None => std::time::Duration::from_secs(30),
            },
        };
        let mut config = config;
        if matches!(config.role, Role::Bridge(_)) {
            // a bridge serves no rooms and no page: health and stats only
            config.https = None;
        }
        if config.tokens == Tokens::Open
            && !matches!(config.role, Role::Bridge(_))
            && !config.open_rooms
            && let Some(exposed) = config.exposed_listener()
        {
            return Err(format!(
                "refusing to serve open rooms on {exposed}: anyone who reaches it could join any room. \
                 Require room tokens (--token-secret or --token-public-key), listen on loopback only, \
                 or pass --open-rooms to allow it"
            ));
        }
        Ok(config)
    }

    /// The first HTTP or HTTPS listener that others than this host can reach.
    pub fn exposed_listener(&self) -> Option<SocketAddr> {
        [Some(self.http), self.https]
            .into_iter()
            .flatten()
            .find(|a| !a.ip().is_loopback())
    }

    /// What an operator must know about this configuration: logged at start,
    /// listed by `/health`, shown on the demo page.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(exposed) = self.exposed_listener() {
            if self.tokens == Tokens::Open {
                out.push(format!(
                    "rooms are open: anyone who reaches {exposed} can join any room (--open-rooms)"
                ));
            }
            // (a focus's media is on its bridges, which say where)
            if self.role == Role::All && self.advertise.iter().all(IpAddr::is_loopback) {
                out.push(format!(
                    "the page is served on {exposed} but media only on {}: calls from other machines \
                     will fail; start with --bind <address of this host> (or --advertise <public address>)",
                    self.advertise
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dataplane_gets_the_io_flags_as_given_and_xdp_needs_its_interface() {
        use switchyard_dataplane::io::{IoChoice, xdp::XdpMode};
        assert!(
            io_flags(None, Some("eth0".into()), None)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            io_flags(Some(IoChoice::Mmsg), None, None).unwrap(),
            ["--io", "mmsg"]
        );
        assert_eq!(
            io_flags(
                Some(IoChoice::Xdp),
                Some("eth0".into()),
                Some(XdpMode::Generic)
            )
            .unwrap(),
            [
                "--io",
                "xdp",
                "--xdp-interface",
                "eth0",
                "--xdp-mode",
                "generic"
            ]
        );
        assert!(io_flags(Some(IoChoice::Xdp), None, None).is_err());
    }

    #[test]
    fn durations() {
        let d = |t| parse_duration(t).unwrap().as_millis();
        assert_eq!(
            (d("20s"), d("2m"), d("30"), d("1.5"), d("250ms")),
            (20_000, 120_000, 30_000, 1_500, 250)
        );
        for bad in ["", "s", "10 parsecs", "-5s", "x1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn open_rooms_beyond_loopback_need_consent() {
        let bind: IpAddr = "192.0.2.7".parse().unwrap();
        let err = Config::load(Args {
            bind: Some(bind),
            ..Args::default()
        })
        .unwrap_err();
        assert!(
            err.contains("192.0.2.7:8443") && err.contains("--open-rooms"),
            "{err}"
        );
        // the page follows the media bind address
        let c = Config::load(Args {
            bind: Some(bind),
            open_rooms: true,
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.https, Some(SocketAddr::new(bind, 8443)));
        assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
        assert!(c.warnings()[0].contains("rooms are open"));
        let c = Config::load(Args {
            bind: Some(bind),
            token_secret: Some("s".into()),
            ..Args::default()
        })
        .unwrap();
        assert!(c.warnings().is_empty());
        assert_eq!(c.tokens.mode(), "hs256");
        // a page on every interface over media on loopback: a loud warning
        let c = Config::load(Args {
            https: Some("0.0.0.0:8443".into()),
            open_rooms: true,
            ..Args::default()
        })
        .unwrap();
        assert!(
            c.warnings()
                .iter()
                .any(|w| w.contains("media only on 127.0.0.1")),
            "{:?}",
            c.warnings()
        );
        let toml: FileConfig = toml::from_str("open_rooms = true").unwrap();
        assert_eq!(toml.open_rooms, Some(true));
    }

    #[test]
    fn turn_needs_urls_and_a_secret_file_together() {
        let dir = std::env::temp_dir().join(format!("swyd-cfg-turn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("turn.secret");
        std::fs::write(&secret, "a turn secret of enough bytes\n").unwrap();
        let load = |urls: &[&str], file: Option<&PathBuf>, ttl: Option<&str>| {
            Config::load(Args {
                turn_url: urls.iter().map(|u| u.to_string()).collect(),
                turn_secret_file: file.cloned(),
                turn_ttl: ttl.map(String::from),
                ..Args::default()
            })
        };
        assert_eq!(load(&[], None, None).unwrap().turn, None);
        let url = "turn:10.0.0.9:3478?transport=udp";
        let turn = load(&[url], Some(&secret), Some("2h"))
            .unwrap()
            .turn
            .unwrap();
        let now = std::time::SystemTime::now();
        let c = turn.credentials("p1", now);
        assert_eq!(c.urls, [url]);
        let expiry: u64 = c.username.split(':').next().unwrap().parse().unwrap();
        let in_2h = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 7200;
        assert!(expiry.abs_diff(in_2h) <= 1, "{expiry} vs {in_2h}");
        for err in [
            load(&[url], None, None).unwrap_err(),
            load(&[], Some(&secret), None).unwrap_err(),
        ] {
            assert!(err.contains("--turn-url and --turn-secret-file"), "{err}");
        }
        assert!(
            load(&["stun:x"], Some(&secret), None)
                .unwrap_err()
                .contains("not a TURN URL")
        );
        assert!(load(&[url], Some(&dir.join("missing")), None).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shard_settings() {
        assert_eq!(shard_id_from_host("media-1.example"), "media-1.example");
        assert_eq!(shard_id_from_host("höst name"), "h-st-name");
        assert_eq!(shard_id_from_host(&"a".repeat(100)).len(), 64);
        assert_eq!(shard_id_from_host(""), "switchyard");
        let c = Config::load(Args::default()).unwrap();
        assert_eq!(c.shard.registry, RegistrySource::Memory);
        assert!(!c.shard.id.is_empty(), "the host name by default");
        let c = Config::load(Args {
            registry: Some("redis://:hunter2@10.0.0.30:6379/0".into()),
            shard_id: Some("a".into()),
            shard_url: Some("wss://meet.example.com/ws?shard=a".into()),
            trusted_proxies: vec!["10.0.0.5".parse().unwrap()],
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.shard.id, "a");
        assert!(
            matches!(&c.shard.registry, RegistrySource::Redis { prefix, .. } if prefix == "switchyard:")
        );
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "the password stays out of logs"
        );
        assert_eq!(c.trusted_proxies.len(), 1);
        // the file form docs/cluster.md shows
        let dir = std::env::temp_dir().join(format!("swyd-cfg-shard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("switchyard.toml");
        std::fs::write(
            &file,
            "shard_id = \"a\"\nshard_url = \"wss://meet.example.com/ws?shard=a\"\ntrusted_proxies = [\"10.0.0.5\"]\nhttps = \"off\"\nhttp = \"127.0.0.1:8080\"\nregistry = \"redis://127.0.0.1:6379/0\"\nregistry_prefix = \"c1:\"\n",
        )
        .unwrap();
        let c = Config::load(Args {
            config: Some(file),
            ..Args::default()
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(c.shard.id, "a");
        assert_eq!(
            c.trusted_proxies,
            vec!["10.0.0.5".parse::<IpAddr>().unwrap()]
        );
        assert!(
            matches!(&c.shard.registry, RegistrySource::Redis { prefix, .. } if prefix == "c1:")
        );
        for bad in [
            Args {
                registry: Some("http://10.0.0.30".into()),
                ..Args::default()
            },
            Args {
                shard_id: Some("a b".into()),
                ..Args::default()
            },
            Args {
                shard_url: Some("https://x/ws".into()),
                ..Args::default()
            },
        ] {
            assert!(Config::load(bad).is_err());
        }
    }

    #[test]
    fn a_bridge_serves_the_focuses_named_or_those_in_the_registry() {
        let dir = std::env::temp_dir().join(format!("swyd-cfg-bridge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("cluster.secret");
        std::fs::write(&secret, "a cluster secret of enough bytes").unwrap();
        let bridge = |focus: &[&str], registry: Option<&str>, file: Option<&str>| {
            let config = file.map(|text| {
                let f = dir.join("bridge.toml");
                std::fs::write(&f, text).unwrap();
                f
            });
            Config::load(Args {
                role: RoleKind::Bridge,
                cluster_secret_file: Some(secret.clone()),
                bridge_id: Some("media-1".into()),
                focus: focus.iter().map(|s| s.to_string()).collect(),
                registry: registry.map(str::to_string),
                config,
                ..Args::default()
            })
        };
        let focuses = |c: Result<Config, String>| match c.map(|c| c.role) {
            Ok(Role::Bridge(b)) => Ok(b.focus),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let (a, b) = ("ws://10.0.0.1:8080/cluster", "ws://10.0.0.2:8080/cluster");
        assert_eq!(
            focuses(bridge(&[a, b], None, None)),
            Ok(vec![a.into(), b.into()])
        );
        // only the registry: every shard listed there
        let c = bridge(&[], Some("redis://10.0.0.30:6379/0"), None).unwrap();
        assert!(matches!(&c.role, Role::Bridge(b) if b.focus.is_empty()));
        assert!(matches!(c.shard.registry, RegistrySource::Redis { .. }));
        // the file takes one or a list
        let list = format!("focus = [\"{a}\", \"{b}\"]\n");
        assert_eq!(
            focuses(bridge(&[], None, Some(&list))),
            Ok(vec![a.into(), b.into()])
        );
        let one = format!("focus = \"{a}\"\n");
        assert_eq!(focuses(bridge(&[], None, Some(&one))), Ok(vec![a.into()]));
        for (bad, why) in [
            (bridge(&[], None, None), "--registry"),
            (bridge(&[a, a], None, None), "twice"),
            (bridge(&["wss://x/cluster"], None, None), "ws://"),
        ] {
            let err = bad.err().unwrap_or_default();
            assert!(err.contains(why), "{err}");
        }
        let err = Config::load(Args {
            cluster_url: Some("http://x/cluster".into()),
            ..Args::default()
        })
        .unwrap_err();
        assert!(err.contains("--cluster-url"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn https_tokens_and_limits() {
        let c = Config::load(Args::default()).unwrap();
        assert_eq!(c.https, Some("127.0.0.1:8443".parse().unwrap()));
        assert!(c.warnings().is_empty());
        assert!(matches!(c.tls, TlsSource::SelfSigned(_)));
        assert_eq!(c.tokens, Tokens::Open);
        let c = Config::load(Args {
            https: Some("off".into()),
            token_secret: Some("s3cret".into()),
            max_participants: Some(4),
            joins_per_second: Some(2.0),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.https, None);
        assert!(matches!(c.tokens, Tokens::Secret(_)));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "secrets stay out of logs"
        );
        assert_eq!(
            (c.limits.participants_per_room, c.limits.join_burst),
            (4, 4.0)
        );
        for bad in [
            Args {
                https: Some("nowhere".into()),
                ..Args::default()
            },
            Args {
                tls_cert: Some("c.pem".into()),
                ..Args::default()
            },
            Args {
                token_secret: Some("a".into()),
                token_public_key: Some("k.pem".into()),
                ..Args::default()
            },
            Args {
                joins_per_second: Some(f64::NAN),
                ..Args::default()
            },
        ] {
            assert!(Config::load(bad).is_err());
        }
        let c = Config::load(Args {
            advertise: vec![
                "198.51.100.4".parse().unwrap(),
                "2001:db8::4".parse().unwrap(),
            ],
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.advertise.len(), 2);
        assert_eq!(
            Config::load(Args::default()).unwrap().advertise,
            vec![IpAddr::from([127, 0, 0, 1])]
        );
        assert!(
            Config::load(Args {
                advertise: vec!["0.0.0.0".parse().unwrap()],
                ..Args::default()
            })
            .is_err()
        );
        // the file takes the same keys
        let dir = std::env::temp_dir().join(format!("swyd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("switchyard.toml");
        std::fs::write(
            &file,
            "https = \"127.0.0.1:9443\"\nmax_rooms = 3\ntls_cert = \"a.pem\"\ntls_key = \"b.pem\"\nadvertise = [\"203.0.113.9\"]\n",
        )
        .unwrap();
        let c = Config::load(Args {
            config: Some(file),
            ..Args::default()
        })
        .unwrap();
        assert_eq!(c.https, Some("127.0.0.1:9443".parse().unwrap()));
        assert_eq!(c.limits.rooms, 3);
        assert!(matches!(c.tls, TlsSource::Files { .. }));
        assert_eq!(c.advertise, vec![IpAddr::from([203, 0, 113, 9])]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn defaults_and_modes() {
        let c = Config::load(Args::default()).unwrap();
        assert_eq!(c.http, "127.0.0.1:8080".parse().unwrap());
        assert!(matches!(
            c.dataplane,
            DataplaneMode::Spawn {
                base_port: 10000,
                ice_tcp_port: Some(4443),
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
