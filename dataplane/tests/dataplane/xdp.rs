//! The XDP program on a real interface (root; a veth pair to a network
//! namespace the test makes): in native and generic mode, ping, ARP, TCP,
//! other UDP ports and fragmented datagrams still reach the kernel, media
//! for a served port is counted as media (and, with no AF_XDP socket on the
//! queue yet, passes to the kernel too), over IPv4 and IPv6; an AF_XDP
//! socket takes media off the wire and answers; the dataplane with
//! `--io xdp` forwards as over the kernel; dropping the filter, SIGTERM or
//! SIGKILL to the dataplane leaves nothing attached, and the next start
//! attaches again; without XDP the fallback serves the same traffic.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_dataplane::io::xdp::socket::{Binding, XskConfig, XskSocket};
use switchyard_dataplane::io::xdp::{XdpFilter, XdpMode};

/// A namespace with one end of a veth pair; the other end stays here.
struct Link {
    ns: String,
    host: String,
    n: u32,
}

fn run(args: &[&str]) -> std::process::Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Link {
    fn new() -> Link {
        // a pair per test: tests of one process run side by side
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = (std::process::id() * 4 + seq) % 240 + 10;
        let (ns, host, peer) = (
            format!("swx{}-{seq}", std::process::id()),
            format!("swxa{n}"),
            format!("swxb{n}"),
        );
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &host]).output();
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip", "link", "add", &host, "type", "veth", "peer", "name", &peer,
        ]);
        run(&["ip", "link", "set", &peer, "netns", &ns]);
        // host .1 of each family, and a second address (.3) the tests
        // serve or not
        for host_part in [1, 3] {
            run(&[
                "ip",
                "addr",
                "add",
                &format!("10.231.{n}.{host_part}/24"),
                "dev",
                &host,
            ]);
            run(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("fd00:231:{n}::{host_part}/64"),
                "dev",
                &host,
                "nodad",
            ]);
        }
        run(&["ip", "link", "set", &host, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &ns];
            all.extend_from_slice(args);
            run(&all);
        };
        inside(&[
            "ip",
            "addr",
            "add",
            &format!("10.231.{n}.2/24"),
            "dev",
            &peer,
        ]);
        inside(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("fd00:231:{n}::2/64"),
            "dev",
            &peer,
            "nodad",
        ]);
        inside(&["ip", "link", "set", &peer, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        Link { ns, host, n }
    }

    fn v4(&self) -> String {
        format!("10.231.{}.1", self.n)
    }

    fn v6(&self) -> String {
        format!("fd00:231:{}::1", self.n)
    }

    /// The host end's second addresses (IPv4, IPv6).
    fn others(&self) -> (String, String) {
        (
            format!("10.231.{}.3", self.n),
            format!("fd00:231:{}::3", self.n),
        )
    }

    /// The host end's first addresses, as the filter takes them.
    fn served(&self) -> Vec<std::net::IpAddr> {
        vec![self.v4().parse().unwrap(), self.v6().parse().unwrap()]
    }

    /// Runs a shell command inside the namespace; its success.
    fn inside(&self, script: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "bash", "-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// Whether the host end has an XDP program attached.
    fn attached(&self) -> bool {
        let out = run(&["ip", "-d", "link", "show", "dev", &self.host]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.contains("prog/xdp") || text.contains(" xdp")
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// Datagrams waiting on `s` (reads until 300 ms pass without one).
fn drain(s: &UdpSocket) -> Vec<usize> {
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while let Ok(n) = s.recv(&mut buf) {
        got.push(n);
    }
    got
}

/// Sends `count` datagrams of `size` bytes from the namespace.
fn send_from(link: &Link, to: &str, port: u16, size: usize, count: usize) {
    let script = format!(
        "import socket; a=('{to}',{port}); s=socket.socket(socket.AF_INET6 if ':' in a[0] else socket.AF_INET, socket.SOCK_DGRAM)\n\
         for _ in range({count}): s.sendto(b'x'*{size}, a)"
    );
    assert!(link.inside(&format!("python3 -c \"{script}\"")), "send");
}

fn check_mode(link: &Link, mode: XdpMode) {
    let media = UdpSocket::bind(("::", 0)).unwrap();
    let port = media.local_addr().unwrap().port();
    let other = UdpSocket::bind(("::", 0)).unwrap();
    let other_port = other.local_addr().unwrap().port();
    let tcp = TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();

    let filter = XdpFilter::attach(&link.host, mode).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    assert!(link.attached(), "{mode:?}: attached");
    filter.serve_port(port, Some(0)).unwrap();
    assert!(filter.serve_addresses(&link.served()).unwrap());
    assert!(
        !filter.serve_addresses(&link.served()).unwrap(),
        "unchanged"
    );
    let before = filter.counts().unwrap();

    // ping (and the ARP before it) and a TCP connection reach the kernel
    assert!(
        link.inside(&format!("ping -c 2 -W 2 {}", link.v4())),
        "{mode:?}: ping"
    );
    assert!(
        link.inside(&format!("ping -6 -c 2 -W 2 {}", link.v6())),
        "{mode:?}: ping -6"
    );
    assert!(
        link.inside(&format!("echo hello > /dev/tcp/{}/{tcp_port}", link.v4())),
        "{mode:?}: TCP"
    );
    let (mut conn, _) = tcp.accept().unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello\n");

    // media over IPv4 and IPv6: counted as media, and (no socket on the
    // queue) still delivered by the kernel
    send_from(link, &link.v4(), port, 200, 10);
    send_from(link, &link.v6(), port, 200, 10);
    assert_eq!(drain(&media).len(), 20, "{mode:?}: media delivered");
    let after_media = filter.counts().unwrap();
    assert_eq!(
        after_media.media - before.media,
        20,
        "{mode:?}: {after_media:?}"
    );

    // the served port on the interface's other addresses: not ours, so
    // the kernel's — until they are served too
    let (other_v4, other_v6) = link.others();
    send_from(link, &other_v4, port, 200, 3);
    send_from(link, &other_v6, port, 200, 3);
    assert_eq!(drain(&media).len(), 6, "{mode:?}: other addresses");
    assert_eq!(filter.counts().unwrap().media, after_media.media);
    let all =
        switchyard_dataplane::io::xdp::addresses_for("::".parse().unwrap(), &link.host).unwrap();
    for ip in [link.v4(), link.v6(), other_v4.clone(), other_v6.clone()] {
        assert!(all.contains(&ip.parse().unwrap()), "{ip} in {all:?}");
    }
    filter.serve_addresses(&all).unwrap();
    send_from(link, &other_v4, port, 200, 3);
    send_from(link, &other_v6, port, 200, 3);
    assert_eq!(drain(&media).len(), 6, "{mode:?}: other addresses served");
    let after_media = filter.counts().unwrap();
    assert_eq!(after_media.media - before.media, 26, "{after_media:?}");
    filter.serve_addresses(&link.served()).unwrap();

    // another port, and 3000-byte datagrams in fragments: the kernel's
    send_from(link, &link.v4(), other_port, 200, 5);
    assert_eq!(drain(&other).len(), 5, "{mode:?}: other port");
    send_from(link, &link.v4(), port, 3000, 3);
    send_from(link, &link.v6(), port, 3000, 3);
    assert_eq!(drain(&media), [3000; 6], "{mode:?}: fragments reassembled");
    let end = filter.counts().unwrap();
    assert_eq!(end.media, after_media.media, "{mode:?}: {end:?}");
    assert!(end.passed > after_media.passed + 5, "{mode:?}: {end:?}");

    // a port served on another queue than the frames arrive on, or no
    // longer served, is the kernel's
    for queue in [Some(1), None] {
        filter.serve_port(port, queue).unwrap();
        send_from(link, &link.v4(), port, 200, 4);
        assert_eq!(drain(&media).len(), 4, "{mode:?} {queue:?}");
        assert_eq!(
            filter.counts().unwrap().media,
            end.media,
            "{mode:?} {queue:?}"
        );
    }

    drop(filter);
    assert!(!link.attached(), "{mode:?}: detached on drop");
}

#[test]
fn the_program_passes_the_kernel_its_traffic_and_counts_media_in_both_modes() {
    assert!(rustix::process::geteuid().is_root(), "XDP tests need root");
    let link = Link::new();
    check_mode(&link, XdpMode::Native);
    check_mode(&link, XdpMode::Generic);
}

/// Answers every media frame on `sock` with "echo:" and its payload, from
/// where it was sent to, until `want` were answered or `limit` passed.
fn echo(sock: &mut XskSocket, want: usize, limit: Duration) -> usize {
    use switchyard_wire::udp_frame::{Route, header_len, parse, write_headers};
    let deadline = Instant::now() + limit;
    let mut answered = 0;
    while answered < want && Instant::now() < deadline {
        let mut replies: Vec<(Route, Vec<u8>)> = Vec::new();
        sock.rx.recv(64, &mut |frame| {
            if let Ok(f) = parse(frame) {
                let route = Route {
                    src_mac: f.dst_mac,
                    dst_mac: f.src_mac,
                    src: f.dst,
                    dst: f.src,
                };
                replies.push((route, [b"echo:", f.payload].concat()));
            }
        });
        for (route, payload) in replies {
            let sent = sock.tx.send(|frame| {
                let at = header_len(route.src.ip());
                frame[at..at + payload.len()].copy_from_slice(&payload);
                write_headers(frame, &route, payload.len()).unwrap_or(0)
            });
            answered += usize::from(sent);
        }
        sock.tx.flush();
        std::thread::sleep(Duration::from_millis(1));
    }
    answered
}

#[test]
fn an_af_xdp_socket_takes_media_off_the_wire_and_answers_over_ipv4_and_ipv6() {
    assert!(rustix::process::geteuid().is_root(), "XDP tests need root");
    let link = Link::new();
    for mode in [XdpMode::Native, XdpMode::Generic] {
        echo_in(&link, mode);
    }
}

fn echo_in(link: &Link, mode: XdpMode) {
    let kernel = UdpSocket::bind(("::", 0)).unwrap();
    let port = kernel.local_addr().unwrap().port();
    let filter = XdpFilter::attach(&link.host, mode).unwrap();
    // veth has no zero-copy: asked for, it falls back to copy mode
    let mut sock = XskSocket::open(filter.ifindex(), 0, XskConfig::default(), true).unwrap();
    assert_eq!(sock.binding(), Binding::Copy);
    filter.set_socket(0, &sock).unwrap();
    filter.serve_port(port, Some(0)).unwrap();
    filter.serve_addresses(&link.served()).unwrap();
    for to in [link.v4(), link.v6()] {
        // the client sends five datagrams and prints each answer
        let script = format!(
            "import socket; a=('{to}',{port}); s=socket.socket(socket.AF_INET6 if ':' in a[0] else socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)\n\
             for i in range(5): s.sendto(b'ping%d' % i, a)\n\
             for i in range(5): print(s.recv(100).decode())"
        );
        let client = Command::new("ip")
            .args(["netns", "exec", &link.ns, "python3", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let answered = echo(&mut sock, 5, Duration::from_secs(5));
        let out = client.wait_with_output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(answered, 5, "{mode:?} {to}: {printed} {err}");
        let mut lines: Vec<&str> = printed.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "echo:ping0",
                "echo:ping1",
                "echo:ping2",
                "echo:ping3",
                "echo:ping4"
            ],
            "{mode:?} {to}: {err}"
        );
    }
    // none of it went through the kernel's socket
    assert!(drain(&kernel).is_empty(), "{mode:?}");
    assert_eq!(filter.counts().unwrap().media, 10, "{mode:?}");
}

/// The dataplane with `--io xdp` on the veth: worker 0 gets its AF_XDP
/// socket on queue 0, worker 1 (veth has one queue) falls back to the
/// kernel path, and the whole forwarding scenario of `forwarding.rs` —
/// layers, switches at keyframes, NACKs, PLIs, both workers — holds with
/// peers in the namespace; SIGTERM leaves nothing attached.
#[test]
fn the_dataplane_forwards_over_af_xdp_as_over_the_kernel() {
    assert!(rustix::process::geteuid().is_root(), "XDP tests need root");
    let link = Link::new();
    for mode in ["native", "generic"] {
        let dp = start_on(&link, &["--xdp-mode", mode]);
        // garbage first, on the AF_XDP worker's port: 2000 random datagrams
        // of 0-1500 bytes, over IPv4 and IPv6; the scenario below must
        // still hold
        let port = dp.attach().worker_port(0).unwrap();
        for to in [link.v4(), link.v6()] {
            let script = format!(
                "import os,random,socket; a=('{to}',{port}); s=socket.socket(socket.AF_INET6 if ':' in a[0] else socket.AF_INET, socket.SOCK_DGRAM)\n\
                 for _ in range(1000): s.sendto(os.urandom(random.randint(0,1500)), a)"
            );
            assert!(
                link.inside(&format!("python3 -c \"{script}\"")),
                "garbage sent"
            );
        }
        let net = crate::harness::PeerNet {
            ns: Some(link.ns.clone()),
            local: format!("10.231.{}.2", link.n).parse().unwrap(),
            server: link.v4().parse().unwrap(),
        };
        crate::forwarding::scenario_on(&dp, &net);
        assert!(link.attached());
        let log = dp.log();
        assert!(
            log.contains("packet I/O: AF_XDP") && log.contains("queue=0"),
            "{mode}: {log}"
        );
        // bound to one address: the program serves that one alone
        assert!(
            log.contains(&format!(
                "XDP program serves these addresses interface=\"{}\" addresses=[{}]",
                link.host,
                link.v4()
            )),
            "{mode}: {log}"
        );
        // zero-copy is asked for; veth refuses it, and that is said
        assert!(
            log.contains("zero-copy refused; AF_XDP in copy mode"),
            "{mode}: {log}"
        );
        assert!(
            log.contains("no AF_XDP socket for this worker"),
            "{mode}: {log}"
        );
        drop(dp);
        assert!(!link.attached(), "{mode}: detached after SIGTERM");
    }
}

/// The dataplane on the veth with `--io xdp` and `extra` flags, logging
/// at info.
fn start_on(link: &Link, extra: &[&str]) -> crate::harness::Dataplane {
    let v4 = link.v4();
    let mut args = vec![
        "--bind",
        &v4,
        "--xdp-interface",
        &link.host,
        "--log",
        "info",
    ];
    args.extend_from_slice(extra);
    crate::harness::Dataplane::start_with(2, "xdp", &args)
}

/// A dataplane bound to `::` serves the interface's addresses and follows
/// them: one added while it runs is served within a few seconds, and one
/// removed is dropped.
#[test]
fn a_wildcard_bind_follows_the_interface_s_addresses() {
    assert!(rustix::process::geteuid().is_root(), "XDP tests need root");
    let link = Link::new();
    let dp = crate::harness::Dataplane::start_with(
        1,
        "xdp",
        &[
            "--bind",
            "::",
            "--xdp-interface",
            &link.host,
            "--log",
            "info",
        ],
    );
    drop(dp.attach());
    let (other_v4, other_v6) = link.others();
    // the addresses the last such line lists
    let served = |log: &str| -> Vec<String> {
        let line = log
            .lines()
            .rfind(|l| l.contains("XDP program serves these addresses"))
            .unwrap_or_default();
        let list = line.split_once("addresses=[").map_or("", |(_, l)| l);
        let list = list.split(']').next().unwrap_or_default();
        list.split(", ").map(str::to_string).collect()
    };
    let first = served(&dp.log());
    for ip in [link.v4(), link.v6(), other_v4.clone(), other_v6] {
        assert!(first.contains(&ip), "{ip}: {first:?}");
    }
    let added = format!("10.231.{}.4", link.n);
    run(&[
        "ip",
        "addr",
        "add",
        &format!("{added}/24"),
        "dev",
        &link.host,
    ]);
    run(&[
        "ip",
        "addr",
        "del",
        &format!("{other_v4}/24"),
        "dev",
        &link.host,
    ]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut now = served(&dp.log());
    let followed = |now: &[String]| now.contains(&added) && !now.contains(&other_v4);
    while !followed(&now) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = served(&dp.log());
    }
    assert!(now.contains(&added), "{now:?}");
    assert!(!now.contains(&other_v4), "{now:?}");
    assert!(now.contains(&link.v4()), "{now:?}");
}

/// SIGKILL leaves nothing attached (the link dies with the process), and
/// the next start attaches again: five times in a row.
#[test]
fn a_killed_dataplane_leaves_no_program_and_the_next_start_attaches() {
    assert!(rustix::process::geteuid().is_root(), "XDP tests need root");
    let link = Link::new();
    for round in 0..5 {
        let mut dp = start_on(&link, &[]);
        // up: attaching comes before the control socket opens
        drop(dp.attach());
        assert!(link.attached(), "round {round}: {}", dp.log());
        assert!(dp.log().contains("XDP program attached"), "round {round}");
        dp.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while link.attached() {
            assert!(
                Instant::now() < deadline,
                "round {round}: attached after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// With XDP unavailable — here `lo`, which has no driver hook — the
/// dataplane says so and every worker serves the same traffic through the
/// kernel.
#[test]
fn without_xdp_the_fallback_serves_the_same_traffic() {
    let dp = crate::harness::Dataplane::start_with(
        2,
        "xdp",
        &["--xdp-interface", "lo", "--log", "info"],
    );
    crate::forwarding::scenario_on(&dp, &crate::harness::PeerNet::default());
    let log = dp.log();
    assert!(
        log.contains("AF_XDP unavailable; every worker uses auto"),
        "{log}"
    );
    assert!(!log.contains("packet I/O: AF_XDP"), "{log}");
}
