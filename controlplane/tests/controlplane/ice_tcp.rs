//! Issue #16 shows 1 and 5: ICE-TCP. Browsers whose UDP to the server is
//! dropped (an nftables rule in their namespace) call over TCP port 4443
//! (RFC 6544 passive candidates, RFC 4571 framing) and meet browsers on
//! UDP; bad input on the TCP port is closed or capped with a counted reason
//! while a call on the same bridge keeps decoding.

use crate::browser::{MediaPath, assert_call_over, call_in_at, call_through_in};
use crate::netns::{NetnsPair, NsServer, block_udp_to, blocked};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A sample of a text exposition (`name` with its labels), NaN if absent.
fn sample(text: &str, name: &str) -> f64 {
    crate::shards::metric(text, name)
}

fn closed(text: &str, reason: &str) -> f64 {
    sample(
        text,
        &format!("switchyard_ice_tcp_connections_closed_total{{reason=\"{reason}\"}}"),
    )
}

#[test]
fn browsers_without_udp_call_over_ice_tcp_and_meet_a_browser_on_udp() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::with_clients(2);
    let server = NsServer::start(&net, "icetcp");
    // Ada and Bo: no UDP to the server at all; Cy: UDP as usual
    block_udp_to(&net.clients[0].ns, Some(&net.server_ip));
    let pages = [
        (net.clients[0].ns.clone(), "Ada,Bo", "tcp"),
        (net.clients[1].ns.clone(), "Cy", "udp"),
    ];
    let runs: Vec<_> = pages
        .iter()
        .map(|(ns, names, _)| {
            let (ns, names, https) = (ns.clone(), names.to_string(), server.https.clone());
            std::thread::spawn(move || {
                call_in_at(
                    &ns,
                    &https,
                    &[
                        "--room",
                        "icetcp",
                        "--names",
                        &names,
                        "--remotes",
                        "2",
                        "--camera",
                        "320x180",
                        "--min-frames",
                        "100",
                        "--timeout",
                        "90",
                        // stay while the others count their frames
                        "--hold",
                        "10",
                    ],
                    &format!("icetcp-{}", names.replace(',', "")),
                )
            })
        })
        .collect();
    let reports: Vec<_> = runs.into_iter().map(|h| h.join().unwrap()).collect();
    let metrics = server.get("/metrics").1;
    let context = || {
        format!(
            "reports: {reports:#?}\n--- metrics ---\n{}\n--- server ---\n{}",
            metrics
                .lines()
                .filter(|l| l.contains("ice_tcp"))
                .collect::<Vec<_>>()
                .join("\n"),
            server.log()
        )
    };
    for ((_, names, protocol), r) in pages.iter().zip(&reports) {
        let r = r.as_ref().unwrap_or_else(|e| panic!("{e}\n{}", context()));
        for name in names.split(',') {
            let path = MediaPath {
                ip: &net.server_ip,
                port: if *protocol == "tcp" { 4443 } else { 10000 },
                protocol,
            };
            let how = format!("over {protocol}");
            assert_call_over(&r["participants"][name], name, &path, 2, &how, &context);
        }
    }
    // the firewall was in the way, and two connections carried the media
    assert!(blocked(&net.clients[0].ns) > 0, "{}", context());
    let answered = sample(&metrics, "switchyard_ice_tcp_connections_answered_total");
    assert!(answered >= 2.0, "{}", context());
    let packets = sample(&metrics, "switchyard_ice_tcp_packets_received_total");
    assert!(packets > 1000.0, "{}", context());
}

/// Opens a connection to the server's ICE-TCP port from inside `ns`.
fn connect(to: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Whether the server has closed `s` (end of stream or reset), waiting up
/// to `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// The abuse of show 5, from inside `ns` against `to`; what each part saw.
fn abuse_ice_tcp(ns: &str, to: SocketAddr) -> Value {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        crate::cluster::enter(&ns);
        // 1000 connections need more descriptors than the default 1024
        let mut limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        limit.current = limit.maximum;
        let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, limit);
        // garbage: an HTTP request (its first two bytes read as a length
        // far above any packet's), and a well-framed packet that is no
        // STUN Binding request
        let mut http = connect(to);
        http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let http_closed = closed_by_server(&mut http, Duration::from_secs(5));
        let mut junk = connect(to);
        junk.write_all(&[0x00, 0x10]).unwrap();
        junk.write_all(&[0x80; 16]).unwrap();
        let junk_closed = closed_by_server(&mut junk, Duration::from_secs(5));
        // a 64 KiB length prefix with nothing behind it
        let mut big = connect(to);
        big.write_all(&[0xff, 0xff]).unwrap();
        let big_closed = closed_by_server(&mut big, Duration::from_secs(5));
        // a slowloris: the start of a frame, then a byte a second
        let mut slow = connect(to);
        slow.write_all(&[0x00, 0x60]).unwrap();
        // 1000 idle connections
        let started = Instant::now();
        let mut idle: Vec<TcpStream> = (0..1000)
            .filter_map(|_| TcpStream::connect_timeout(&to, Duration::from_secs(5)).ok())
            .collect();
        let opened = idle.len();
        let mut slow_closed = false;
        while started.elapsed() < Duration::from_secs(20) && !slow_closed {
            let _ = slow.write_all(&[0x00]);
            slow_closed = closed_by_server(&mut slow, Duration::from_secs(1));
        }
        for s in &idle {
            s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        }
        let still_open = |idle: &mut Vec<TcpStream>| {
            idle.retain_mut(|s| !closed_by_server(s, Duration::from_millis(20)));
            idle.len()
        };
        let mut open = still_open(&mut idle);
        while open > 0 && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(500));
            open = still_open(&mut idle);
        }
        serde_json::json!({
            "http_closed": http_closed,
            "junk_closed": junk_closed,
            "big_prefix_closed": big_closed,
            "slowloris_closed": slow_closed,
            "idle_opened": opened,
            "idle_still_open": open,
            "idle_all_closed_s": started.elapsed().as_secs_f64(),
        })
    })
    .join()
    .expect("the abuse thread")
}

/// Show 5: a call (Bo and Cy, on UDP) keeps decoding while, from another
/// namespace, a listen-only participant on ICE-TCP stops reading and the
/// TCP port gets garbage, a 64 KiB length prefix with nothing behind it,
/// a slowloris and 1000 idle connections: each is closed or capped, and
/// counted by reason.
#[test]
fn bad_input_on_the_ice_tcp_port_is_closed_and_counted_while_a_call_keeps_decoding() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::with_clients(2);
    let server = NsServer::start(&net, "icetcpbad");
    let attacker = net.clients[1].ns.clone();
    block_udp_to(&attacker, Some(&net.server_ip));
    let port: SocketAddr = format!("{}:4443", net.server_ip).parse().unwrap();
    let metrics = || server.get("/metrics").1;
    let mut abuse = Value::Null;
    let mut listener = None;
    let report = call_through_in(
        &net.clients[0].ns,
        &server.https,
        &|| server.log(),
        "icetcpbad",
        "Bo,Cy",
        (60, 60),
        || {
            // Ada: listen-only over ICE-TCP, in the same room
            let (ns, https) = (attacker.clone(), server.https.clone());
            listener = Some(std::thread::spawn(move || {
                call_in_at(
                    &ns,
                    &https,
                    &[
                        "--room",
                        "icetcpbad",
                        "--names",
                        "Ada",
                        "--no-devices",
                        "Ada",
                        "--remotes",
                        "2",
                        "--min-frames",
                        "50",
                        "--timeout",
                        "60",
                        "--hold",
                        "45",
                    ],
                    "icetcpbad-Ada",
                )
            }));
            // her connection carries the call before the abuse starts
            let deadline = Instant::now() + Duration::from_secs(40);
            while absent_or_below(
                sample(&metrics(), "switchyard_ice_tcp_packets_sent_total"),
                500.0,
            ) {
                assert!(
                    Instant::now() < deadline,
                    "Ada's media never went over TCP:\n{}",
                    server.log()
                );
                std::thread::sleep(Duration::from_millis(250));
            }
            abuse = abuse_ice_tcp(&attacker, port);
            // then she stops reading: the server's packets to her are
            // dropped in her namespace, her queue fills, and it is closed
            crate::netns::drop_tcp_from(&attacker, &net.server_ip, 4443);
            let stopped = Instant::now();
            let deadline = stopped + Duration::from_secs(30);
            while absent_or_below(closed(&metrics(), "stalled_reader"), 1.0) {
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            eprintln!(
                "the stopped reader was closed after {:?}",
                stopped.elapsed()
            );
        },
    );
    let ada = listener.map(|h| h.join().unwrap());
    let text = metrics();
    let context = || {
        format!(
            "abuse: {abuse:#}\nwatch: {:#}\nAda: {ada:?}\n--- metrics ---\n{}\n--- server ---\n{}",
            report["watch"],
            text.lines()
                .filter(|l| l.contains("ice_tcp"))
                .collect::<Vec<_>>()
                .join("\n"),
            server.log()
        )
    };
    eprintln!("abuse: {abuse}");
    // each abuse closed, and counted by its reason
    for part in [
        "http_closed",
        "junk_closed",
        "big_prefix_closed",
        "slowloris_closed",
    ] {
        assert_eq!(abuse[part], true, "{part}: {}", context());
    }
    assert_eq!(abuse["idle_opened"], 1000, "{}", context());
    assert_eq!(abuse["idle_still_open"], 0, "{}", context());
    assert!(closed(&text, "not_ice") >= 1.0, "{}", context());
    assert!(closed(&text, "frame_too_long") >= 2.0, "{}", context());
    // past the source's pending cap at once, the rest when their answer
    // deadline passed (the slowloris among them)
    assert!(closed(&text, "source_cap") >= 900.0, "{}", context());
    assert!(closed(&text, "unanswered") >= 1.0, "{}", context());
    // the reader that stopped: its packets dropped, then closed
    let queue_full = sample(
        &text,
        "switchyard_ice_tcp_packets_dropped_total{reason=\"queue_full\"}",
    );
    assert!(queue_full > 0.0, "{}", context());
    assert!(closed(&text, "stalled_reader") >= 1.0, "{}", context());
    assert!(
        sample(&text, "switchyard_ice_tcp_connections_open") <= 1.0,
        "{}",
        context()
    );
    // and the call on the same bridge decoded throughout
    let watch = report["watch"].as_object().expect("watch report");
    // (Ada, listen-only, is a remote too: her streams have no video)
    let publishers: Vec<&str> = ["Bo", "Cy"]
        .iter()
        .filter_map(|n| watch.get(*n)?["me"].as_str())
        .collect();
    let streams: Vec<_> = watch
        .iter()
        .filter(|(k, _)| {
            k.split_once("<-")
                .is_some_and(|(_, from)| publishers.contains(&from))
        })
        .collect();
    assert_eq!(streams.len(), 2, "{}", context());
    for (key, w) in streams {
        let frames = w["frames_gained"].as_u64().unwrap_or(0);
        assert!(
            frames >= 300,
            "{key}: {frames} frames in 60 s: {}",
            context()
        );
        let stall = w["stall_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(
            stall < 1_500,
            "{key}: video stalled {stall} ms: {}",
            context()
        );
    }
}

/// A sample is absent (NaN) or below `bound`.
fn absent_or_below(v: f64, bound: f64) -> bool {
    v.is_nan() || v < bound
}
