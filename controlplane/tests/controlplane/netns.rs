//! Network namespaces for tests with real browsers: the server in one, the
//! clients in another, joined by a veth pair with its own /24. Browsers
//! gather no host candidates with only `lo`, and the tests must not touch
//! the machine's real interfaces; each test gets its own pair of
//! namespaces, so fixed ports inside them never collide.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Held by tests that run browsers or load the machine (floods, latency
/// measurements): on a 2-core CI machine they take turns rather than starve
/// each other's encoders or skew each other's timings.
pub static BROWSERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A server namespace with a bridge, and client namespaces each joined to
/// it by a veth pair (one /24); removed on drop. Shaping a client's veth in
/// the server namespace limits what that client receives, and only that.
pub struct NetnsPair {
    pub server_ns: String,
    /// The server's address (on the bridge).
    pub server_ip: String,
    /// Its IPv6 address too, in a dual-stack pair.
    pub server_ip6: Option<String>,
    /// A second IPv4 address of the server, in a subnet of its own (the
    /// clients reach it through their default route): in a multi-homed
    /// pair, the server binds the wildcard and advertises only this one.
    pub media_ip: Option<String>,
    /// The client namespaces; the first is `client_ns`.
    pub clients: Vec<ClientNs>,
    /// The first client namespace.
    pub client_ns: String,
    /// The bridge in the server namespace the clients' veths join.
    pub bridge: String,
    /// Distinguishes this pair's interface names.
    tag: String,
}

/// The address families of a [`NetnsPair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
    Dual,
}

/// One client namespace.
pub struct ClientNs {
    /// Its name.
    pub ns: String,
    /// Its address.
    pub ip: String,
    /// The server-side end of its veth (egress = what it receives).
    pub server_veth: String,
    /// Its own end of the veth (inside the namespace).
    pub veth: String,
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Turns IPv6 off in namespace `ns` for interfaces made from now on. The
/// tests use IPv4; an IPv6 link-local address finishing duplicate-address
/// detection a second or two after a link comes up is a "network change"
/// to Chromium, which then fails the page's requests in flight
/// (`net::ERR_NETWORK_CHANGED`). Best effort: a kernel without IPv6 has
/// nothing to turn off.
///
/// With `v6`, the other way round: IPv6 on, without duplicate-address
/// detection (for the same reason: no address appears late).
fn one_family(ns: &str, v6: bool) {
    if v6 {
        let _ = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c"])
            .arg(
                "for k in all default; do \
                 echo 0 > /proc/sys/net/ipv6/conf/$k/disable_ipv6; \
                 echo 0 > /proc/sys/net/ipv6/conf/$k/accept_dad; done; true",
            )
            .stdin(Stdio::null())
            .output();
        return;
    }
    let _ = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c"])
        .arg(
            "for k in all default; do \
             [ -w /proc/sys/net/ipv6/conf/$k/disable_ipv6 ] && \
             echo 1 > /proc/sys/net/ipv6/conf/$k/disable_ipv6; done; true",
        )
        .stdin(Stdio::null())
        .output();
}

impl NetnsPair {
    /// A server and one client namespace.
    pub fn new() -> NetnsPair {
        NetnsPair::with_clients(1)
    }

    /// A server and `k` client namespaces, or a panic that says why not
    /// (these tests need root and iproute2).
    pub fn with_clients(k: usize) -> NetnsPair {
        NetnsPair::build(k, Family::V4)
    }

    /// A server and `k` client namespaces with IPv6 addresses only (a
    /// /64 of their own; no IPv4 but loopback's).
    pub fn ipv6_only(k: usize) -> NetnsPair {
        NetnsPair::build(k, Family::V6)
    }

    /// A server with an IPv4 and an IPv6 address ([`NetnsPair::server_ip`],
    /// [`NetnsPair::server_ip6`]) and `k` clients, the even ones with IPv4
    /// only, the odd ones with IPv6 only.
    pub fn dual_stack(k: usize) -> NetnsPair {
        NetnsPair::build(k, Family::Dual)
    }

    /// A server with a second address ([`NetnsPair::media_ip`]) and `k`
    /// IPv4 clients: replies to them leave from the first address unless
    /// the server picks the source per packet.
    pub fn multi_homed(k: usize) -> NetnsPair {
        let mut pair = NetnsPair::build(k, Family::V4);
        let octets: Vec<&str> = pair.server_ip.split('.').collect();
        let media = format!("10.250.{}.1", octets[2]);
        let added = ip(&[
            "-n",
            &pair.server_ns,
            "addr",
            "add",
            &format!("{media}/32"),
            "dev",
            &pair.bridge,
        ]);
        if let Err(e) = added {
            panic!("a second server address: {e}");
        }
        pair.media_ip = Some(media);
        pair
    }

    fn build(k: usize, family: Family) -> NetnsPair {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let net4 = format!("10.{}.{}.", 100 + n % 100, std::process::id() % 250);
        let net6 = format!("fd5e:{:x}:{n:x}::", std::process::id() % 0xffff);
        // each client's family: IPv6 when the pair is, alternating when dual
        let v6_client = |i: usize| match family {
            Family::V4 => false,
            Family::V6 => true,
            Family::Dual => i % 2 == 1,
        };
        let clients: Vec<ClientNs> = (0..k)
            .map(|i| ClientNs {
                ns: format!("sycli{tag}x{i}"),
                ip: format!("{}{}", if v6_client(i) { &net6 } else { &net4 }, 2 + i),
                server_veth: format!("sys{tag}x{i}"),
                veth: format!("syc{tag}x{i}"),
            })
            .collect();
        let bridge = format!("sybr{tag}");
        let pair = NetnsPair {
            server_ns: format!("sysrv{tag}"),
            server_ip: match family {
                Family::V6 => format!("{net6}1"),
                _ => format!("{net4}1"),
            },
            server_ip6: (family == Family::Dual).then(|| format!("{net6}1")),
            media_ip: None,
            client_ns: clients[0].ns.clone(),
            clients,
            bridge: bridge.clone(),
            tag: tag.clone(),
        };
        let with_prefix = |a: &str| match a.contains(':') {
            true => format!("{a}/64"),
            false => format!("{a}/24"),
        };
        let setup = || -> Result<(), String> {
            let srv = pair.server_ns.as_str();
            ip(&["netns", "add", srv])?;
            one_family(srv, family != Family::V4);
            ip(&["-n", srv, "link", "set", "lo", "up"])?;
            ip(&["-n", srv, "link", "add", &bridge, "type", "bridge"])?;
            ip(&[
                "-n",
                srv,
                "addr",
                "add",
                &with_prefix(&pair.server_ip),
                "dev",
                &bridge,
            ])?;
            if let Some(v6) = &pair.server_ip6 {
                ip(&["-n", srv, "addr", "add", &with_prefix(v6), "dev", &bridge])?;
            }
            ip(&["-n", srv, "link", "set", &bridge, "up"])?;
            for (i, c) in pair.clients.iter().enumerate() {
                let peer = &c.veth;
                ip(&["netns", "add", &c.ns])?;
                one_family(&c.ns, v6_client(i));
                ip(&[
                    "link",
                    "add",
                    &c.server_veth,
                    "netns",
                    srv,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    peer,
                    "netns",
                    &c.ns,
                ])?;
                ip(&["-n", srv, "link", "set", &c.server_veth, "master", &bridge])?;
                ip(&["-n", srv, "link", "set", &c.server_veth, "up"])?;
                ip(&["-n", &c.ns, "addr", "add", &with_prefix(&c.ip), "dev", peer])?;
                ip(&["-n", &c.ns, "link", "set", peer, "up"])?;
                ip(&["-n", &c.ns, "link", "set", "lo", "up"])?;
                // a default route: without one Chromium counts itself
                // offline after a network change (ERR_INTERNET_DISCONNECTED)
                ip(&[
                    "-n",
                    &c.ns,
                    "route",
                    "add",
                    "default",
                    "via",
                    match (v6_client(i), &pair.server_ip6) {
                        (true, Some(v6)) => v6,
                        _ => &pair.server_ip,
                    },
                ])?;
            }
            Ok(())
        };
        if let Err(e) = setup() {
            drop(pair);
            panic!(
                "cannot create the test's network namespaces ({e}); these tests need root \
                 and iproute2 (scripts/test.sh runs them as root)"
            );
        }
        pair
    }

    /// Gives client `i` a second interface on the bridge with address `addr`
    /// (the same /24): a second network for its browsers.
    pub fn add_interface(&self, i: usize, addr: &str) -> Result<String, String> {
        let c = &self.clients[i];
        let (ours, theirs) = (
            format!("syd{}x{i}", self.tag),
            format!("sye{}x{i}", self.tag),
        );
        ip(&[
            "link",
            "add",
            &theirs,
            "netns",
            &self.server_ns,
            "type",
            "veth",
            "peer",
            "name",
            &ours,
            "netns",
            &c.ns,
        ])?;
        ip(&[
            "-n",
            &self.server_ns,
            "link",
            "set",
            &theirs,
            "master",
            &self.bridge,
        ])?;
        ip(&["-n", &self.server_ns, "link", "set", &theirs, "up"])?;
        ip(&[
            "-n",
            &c.ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &ours,
        ])?;
        ip(&["-n", &c.ns, "link", "set", &ours, "up"])?;
        Ok(ours)
    }

    /// A command run inside namespace `ns`.
    pub fn command(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // deleting a namespace deletes its ends of the veths and the bridge
        for c in &self.clients {
            let _ = ip(&["netns", "del", &c.ns]);
        }
        let _ = ip(&["netns", "del", &self.server_ns]);
    }
}

/// `switchyard` inside the server namespace, on the veth address:
/// HTTP on 8080, HTTPS on 8443, media on UDP 10000. Stopped on drop.
pub struct NsServer {
    child: Child,
    pub https: String,
    pub dir: PathBuf,
    /// How it was started, to start it again.
    ns: String,
    args: Vec<String>,
}

impl NsServer {
    pub fn start(net: &NetnsPair, name: &str) -> NsServer {
        NsServer::start_with(net, name, &[])
    }

    /// With extra flags, e.g. `["--last-n", "2"]`.
    pub fn start_with(net: &NetnsPair, name: &str, extra: &[&str]) -> NsServer {
        let dir = std::env::temp_dir().join(format!(
            "swyd-ns-{name}-{}-{}",
            std::process::id(),
            super::rand_suffix()
        ));
        switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
        // dual stack: the IPv6 wildcard (which takes IPv4 too), both
        // addresses advertised; multi-homed: media on the IPv4 wildcard,
        // the page on the first address
        let (addr, bind) = match (&net.server_ip6, &net.media_ip) {
            (Some(_), _) => ("::", "::"),
            (None, Some(_)) => (net.server_ip.as_str(), "0.0.0.0"),
            (None, None) => (net.server_ip.as_str(), net.server_ip.as_str()),
        };
        // host:port, bracketed for IPv6
        let at = |port: u16| match addr.contains(':') {
            true => format!("[{addr}]:{port}"),
            false => format!("{addr}:{port}"),
        };
        let mut args: Vec<String> = [
            "--http",
            &at(8080),
            "--https",
            &at(8443),
            "--bind",
            bind,
            "--base-port",
            "10000",
            "--workers",
            "1",
            "--open-rooms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // SWITCHYARD_TEST_LOG: another filter, to look closer at a run
        args.push("--log".into());
        args.push(
            std::env::var("SWITCHYARD_TEST_LOG")
                .unwrap_or_else(|_| "info,switchyard::io=warn,switchyard::alloc=debug".into()),
        );
        if let Some(v6) = &net.server_ip6 {
            args.push("--advertise".into());
            args.push(format!("{},{v6}", net.server_ip));
        }
        if let Some(media) = &net.media_ip {
            args.push("--advertise".into());
            args.push(media.clone());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        for (flag, path) in [
            ("--state-dir", dir.clone()),
            ("--control-socket", dir.join("dp.sock")),
        ] {
            args.push(flag.into());
            args.push(path.to_string_lossy().into_owned());
        }
        let (child, https) = NsServer::spawn(&net.server_ns, &args, &dir);
        NsServer {
            child,
            https,
            dir,
            ns: net.server_ns.clone(),
            args,
        }
    }

    /// Starts `switchyard` with `args`, its log appended to `dir`/server.log;
    /// returns it once it printed its HTTPS URL.
    fn spawn(ns: &str, args: &[String], dir: &Path) -> (Child, String) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let mut child = NetnsPair::command(ns, env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start switchyard in the namespace");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut https = String::new();
        for _ in 0..2 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(rest) = line.split("https://").nth(1) {
                https = format!("https://{}", rest.split('/').next().unwrap_or(""));
            }
        }
        assert!(!https.is_empty(), "no HTTPS URL printed");
        (child, https)
    }

    /// `kill -9` of `switchyard` (its dataplane keeps running).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts `switchyard` again as it was started (after [`NsServer::kill9`]).
    pub fn restart(&mut self) {
        let (child, https) = NsServer::spawn(&self.ns, &self.args, &self.dir);
        self.child = child;
        self.https = https;
    }

    /// The process id of its dataplane (the `switchyard dataplane` whose
    /// control socket is in this server's directory).
    /// `GET path` of its plain HTTP listener: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let http = self
            .args
            .iter()
            .skip_while(|a| *a != "--http")
            .nth(1)
            .cloned()
            .unwrap_or_default();
        crate::cluster::get_in(&self.ns, &http, path)
    }

    pub fn dataplane_pid(&self) -> Option<u32> {
        dataplane_in(&self.dir)
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for NsServer {
    fn drop(&mut self) {
        // `ip netns exec` execs switchyard, so this is its pid
        super::stop(&mut self.child);
        if let Some(keep) = std::env::var_os("SWITCHYARD_KEEP_LOGS") {
            // for looking into a run that passed
            let name = self.dir.file_name().unwrap_or_default().to_owned();
            let _ = std::fs::copy(
                self.dir.join("server.log"),
                std::path::Path::new(&keep).join(name).with_extension("log"),
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The pid of the `switchyard dataplane` whose control socket is
/// `dir`/dp.sock.
pub fn dataplane_in(dir: &Path) -> Option<u32> {
    let socket = dir.join("dp.sock");
    let socket = socket.to_string_lossy();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        (args.get(1) == Some(&&b"dataplane"[..]) && args.iter().any(|a| *a == socket.as_bytes()))
            .then_some(pid)
    })
}

/// Runs `cmd` with a time bound; its stderr goes to `log`.
pub fn run_bounded(mut cmd: Command, limit: Duration, log: &Path) -> Output {
    let err = std::fs::File::create(log).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut BufReader::new(stdout), &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            panic!(
                "{cmd:?} ran over {limit:?}; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: std::fs::read(log).unwrap_or_default(),
    }
}

/// What a script that drives the demo app reported (its last JSON line),
/// and, for a failure's message, its log and the server's.
pub struct AppRun {
    pub report: serde_json::Value,
    pub context: String,
}

/// Runs `node <script> --base <server> --room <room> <extra>` in `net`'s
/// client namespace (one browser process at a time, `BROWSERS`), within
/// `limit`.
pub fn run_app_script(
    net: &NetnsPair,
    server: &NsServer,
    (script, room, extra): (&str, &str, &[&str]),
    limit: Duration,
) -> AppRun {
    let _browsers = BROWSERS.lock().unwrap_or_else(|p| p.into_inner());
    let log = server.dir.join(format!("{script}.log"));
    let out = run_bounded(
        {
            let mut cmd = NetnsPair::command(&net.client_ns, "node");
            cmd.current_dir(browser_dir())
                .args([script, "--base", &server.https, "--room", room])
                .args(extra)
                .stdin(Stdio::null());
            cmd
        },
        limit,
        &log,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let script_log = std::fs::read_to_string(&log).unwrap_or_default();
    let report = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{script}: {text}\n{script_log}"));
    let context = format!(
        "report: {report:#}\n--- {script} ---\n{script_log}\n--- server ---\n{}",
        server.log()
    );
    AppRun { report, context }
}

/// A test of the demo app: a server of its own (`server_args` for it) in
/// namespaces of their own, and `script` run against it (see
/// [`run_app_script`]). A script that ended in an error fails the test here,
/// with its report and both logs.
pub fn app_test(
    name: &str,
    server_args: &[&str],
    script: (&str, &str, &[&str]),
    limit: Duration,
) -> AppRun {
    let net = NetnsPair::new();
    let server = NsServer::start_with(&net, name, server_args);
    let run = run_app_script(&net, &server, script, limit);
    assert!(run.report.get("error").is_none(), "{}", run.context);
    run
}

/// Where the browser driver lives, with its node_modules installed.
pub fn browser_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/test.sh (it runs `npm ci` in {})",
        dir.display()
    );
    assert!(
        Path::new(&std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
            .exists(),
        "chromium is not installed: run scripts/test.sh (it runs `apt-get install -y chromium`)"
    );
    dir
}

/// Drops every UDP datagram namespace `ns` sends to `to` (`None`: to
/// anyone) — a firewall that lets only TCP out: signalling passes, media
/// must take a TURN relay or ICE-TCP. The rule goes with the namespace.
pub fn block_udp_to(ns: &str, to: Option<&str>) {
    let to = to.map(|ip| format!("ip daddr {ip} ")).unwrap_or_default();
    drop_in(ns, "out", &format!("{to}meta l4proto udp"));
}

/// Drops the TCP connections namespace `ns` opens to `ip`:`port` (e.g. the
/// bridge's ICE-TCP port, for browsers that must go through a relay). The
/// rule joins [`block_udp_to`]'s.
pub fn block_tcp_to(ns: &str, ip: &str, port: u16) {
    drop_in(ns, "out", &format!("ip daddr {ip} tcp dport {port}"));
}

/// The datagrams the rule of [`block_udp_to`] dropped.
pub fn blocked(ns: &str) -> u64 {
    let out = NetnsPair::command(ns, "nft")
        .args(["list", "chain", "inet", "swyd_fw", "out"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Drops every TCP segment namespace `ns` receives from `ip`:`port` — a
/// peer that stops reading what that server sends it. The rule goes with
/// the namespace.
pub fn drop_tcp_from(ns: &str, ip: &str, port: u16) {
    drop_in(ns, "in", &format!("ip saddr {ip} tcp sport {port}"));
}

/// Adds an nftables rule in namespace `ns` that counts and drops what
/// `matches` on the `out` (output hook, table `swyd_fw`) or `in` (input
/// hook, table `swyd_in`) side; table and chain are made when missing.
fn drop_in(ns: &str, side: &str, matches: &str) {
    let (table, hook) = match side {
        "out" => ("swyd_fw", "output"),
        _ => ("swyd_in", "input"),
    };
    let out = NetnsPair::command(ns, "nft")
        .arg(format!(
            "add table inet {table}; \
             add chain inet {table} {side} {{ type filter hook {hook} priority 0; policy accept; }}; \
             add rule inet {table} {side} {matches} counter drop"
        ))
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
