//! Issue #16 show 2: browsers whose network lets no UDP through to the
//! bridge, nor TCP to its ICE-TCP port — only to the operator's TURN server
//! (Debian's coturn, in a namespace of its own) — hold their call through
//! it, with the time-limited credentials Switchyard hands out in `joined`.

use crate::browser::{ada_and_bo_in, assert_one_call_over};
use crate::netns::{NetnsPair, NsServer, block_tcp_to, block_udp_to, blocked};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A coturn process, stopped on drop.
struct Coturn {
    child: Child,
    log: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Coturn {
    /// coturn in namespace `ns` on `ip`:3478 (UDP and TCP, no TLS), taking
    /// Switchyard's credentials (`use-auth-secret`) and relaying only to
    /// `peer` — the configuration docs/deployment.md shows.
    fn start(ns: &str, ip: &str, peer: &str, secret: &str, dir: &std::path::Path) -> Coturn {
        let conf = dir.join("turnserver.conf");
        let log = dir.join("turnserver.log");
        std::fs::write(
            &conf,
            format!(
                "listening-ip={ip}\nrelay-ip={ip}\nlistening-port=3478\n\
                 min-port=49152\nmax-port=49999\n\
                 use-auth-secret\nstatic-auth-secret={secret}\nrealm=switchyard.test\n\
                 fingerprint\nno-tls\nno-dtls\nno-cli\nno-multicast-peers\n\
                 denied-peer-ip=0.0.0.0-255.255.255.255\nallowed-peer-ip={peer}\n\
                 pidfile={}\nsimple-log\nverbose\n",
                dir.join("turnserver.pid").display()
            ),
        )
        .unwrap();
        let child = NetnsPair::command(ns, "turnserver")
            .arg("-c")
            .arg(&conf)
            .args(["--log-file", "stdout"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (Debian's coturn)");
        let c = Coturn {
            child,
            log,
            dir: dir.to_path_buf(),
        };
        // listening once its log says so
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.log().contains("Total General servers") {
            assert!(
                Instant::now() < deadline,
                "coturn did not start:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two browsers behind a firewall that drops UDP to the server
/// (`all_udp`: all UDP), given the TURN server's URLs for `transports`:
/// they connect through it (over `protocol` to the TURN server), decode
/// ≥ 100 frames of each other and hear each other.
fn call_through_turn(room: &str, all_udp: bool, transports: &[&str], protocol: &str) {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::with_clients(2);
    let (browsers, relay) = (&net.clients[0], &net.clients[1]);
    let dir = std::env::temp_dir().join(format!(
        "swyd-turn-{}-{}",
        std::process::id(),
        crate::rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = format!("turn-secret-{:032x}", crate::rand_suffix());
    let secret_file = dir.join("turn.secret");
    std::fs::write(&secret_file, &secret).unwrap();
    let mut args: Vec<String> = transports
        .iter()
        .flat_map(|t| {
            [
                "--turn-url".to_string(),
                format!("turn:{}:3478?transport={t}", relay.ip),
            ]
        })
        .collect();
    args.push("--turn-secret-file".into());
    args.push(secret_file.to_string_lossy().into_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = NsServer::start_with(&net, room, &args);
    let coturn = Coturn::start(&relay.ns, &relay.ip, &net.server_ip, &secret, &dir);
    block_udp_to(&browsers.ns, (!all_udp).then_some(net.server_ip.as_str()));
    // and no ICE-TCP to the bridge: only the relay is left
    block_tcp_to(&browsers.ns, &net.server_ip, 4443);
    let r = ada_and_bo_in(&browsers.ns, &server, room, "640x360");
    let context = || {
        format!(
            "report: {r:#}\n--- coturn ---\n{}\n--- server ---\n{}",
            coturn.log(),
            server.log()
        )
    };
    for name in ["Ada", "Bo"] {
        let p = &r["participants"][name];
        // the media went through the relay: the browser's end of the pair
        // is a relay candidate, and the server's end its own host address
        assert_eq!(p["path"]["local"], "relay", "{name}: {}", context());
        assert_eq!(
            p["path"]["relay_protocol"],
            protocol,
            "{name}: {}",
            context()
        );
        let how = format!("through the relay ({protocol})");
        assert_one_call_over(p, name, &net.server_ip, &how, &context);
    }
    // the firewall was in the way (Chrome tried its host candidates), and
    // the server's endpoints are the relay's addresses
    assert!(blocked(&browsers.ns) > 0, "{}", context());
    let log = server.log();
    assert!(log.matches("media connected").count() >= 2, "{}", context());
    // coturn took Switchyard's credentials (a session per browser)
    assert!(
        coturn.log().matches("ALLOCATE processed, success").count() >= 2,
        "{}",
        context()
    );
}

#[test]
fn browsers_whose_udp_to_the_server_is_blocked_call_through_turn_over_udp() {
    // (given TCP too, Chromium nominates whichever relay pair answers first:
    // TCP in one CI run)
    call_through_turn("turnudp", false, &["udp"], "udp");
}

#[test]
fn browsers_with_no_udp_at_all_call_through_turn_over_tcp() {
    // both offered, as an operator would: only TCP gets through
    call_through_turn("turntcp", true, &["udp", "tcp"], "tcp");
}

/// Credentials go out only when both flags are set; a TURN URL without a
/// secret (or the other way round) is refused at start, not discovered
/// when a browser fails to allocate.
#[test]
fn turn_settings_come_in_pairs() {
    // (bounded: were the flags taken, it would start serving)
    let out = Command::new("timeout")
        .args(["20", env!("CARGO_BIN_EXE_switchyard")])
        .args(["--turn-url", "turn:192.0.2.1:3478"])
        .stdin(Stdio::null())
        .output()
        .expect("switchyard");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--turn-url and --turn-secret-file"), "{err}");
}
