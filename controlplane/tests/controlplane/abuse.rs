//! Abusive signalling clients (tests/abuse/flood.py) against the real
//! server: one address holding idle sockets and joining in bursts, a client
//! flooding bad frames without reading, one sending 64 KiB offers in a loop,
//! a socket that never joins. Everyone else must not notice.

use crate::Server;
use crate::aiortc::python;
use crate::browser::call_in;
use crate::netns::{NetnsPair, NsServer};
use crate::signalling::{CHROME, connect, expect, join, send};
use futures_util::StreamExt;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub fn flood_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/abuse/flood.py")
}

/// Starts flood.py with `args`; its JSON report comes from `finish`.
fn flood(mut cmd: Command, args: &[&str]) -> Child {
    cmd.arg(flood_script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flood.py")
}

fn finish(child: Child, limit: Duration) -> Value {
    let started = Instant::now();
    let mut child = child;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "flood.py said nothing useful ({}): {text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn one_address_cannot_lock_the_others_out() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let python = python();
    let net = NetnsPair::with_clients(2);
    let server = NsServer::start(&net, "abuse");
    let url = format!("ws://{}:8080/ws", net.server_ip);
    let abuser = &net.clients[0].ns;
    // 1000 sockets that never join, held for 25 s, and 300 joins at once,
    // all from the first client's address
    let idle = flood(
        NetnsPair::command(abuser, &python),
        &["idle", &url, "1000", "25"],
    );
    let joins = flood(NetnsPair::command(abuser, &python), &["joins", &url, "300"]);
    let joins = finish(joins, Duration::from_secs(60));
    // meanwhile two browsers from the second address hold a call
    let r = call_in(
        &net.clients[1].ns,
        &server,
        &[
            "--room",
            "victims",
            "--names",
            "Ada,Bo",
            "--min-frames",
            "100",
            "--timeout",
            "30",
        ],
        "abuse-call",
    );
    let idle = finish(idle, Duration::from_secs(60));
    let context = || {
        format!(
            "idle: {idle}\njoins: {joins}\nreport: {r:#}\n--- server log ---\n{}",
            server.log()
        )
    };
    eprintln!("abuser: idle {idle}, joins {joins}");
    for name in ["Ada", "Bo"] {
        let p = &r["participants"][name];
        assert_eq!(p["state"], "connected", "{name}: {}", context());
        let remotes = p["remotes"].as_object().expect("remotes");
        assert_eq!(remotes.len(), 1, "{name}: {}", context());
        for rx in remotes.values() {
            assert!(num(&rx["video_frames"]) >= 100, "{name}: {}", context());
        }
    }
    // the abuser got its share and no more: 100 sockets, a burst of joins
    assert!(num(&idle["accepted"]) <= 100, "{}", context());
    assert!(num(&idle["refused"]["429"]) >= 800, "{}", context());
    assert!(
        num(&idle["close_codes"]["4001"]) > 0,
        "idle sockets closed at the join deadline: {}",
        context()
    );
    assert!(num(&joins["joined"]) <= 20, "{}", context());
}

#[test]
fn a_client_that_floods_without_reading_is_closed_and_memory_stays_bounded() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let server = Server::start();
    server.healthy(Duration::from_secs(30));
    let pid = server.child.id();
    let before = rss_kib(pid);
    let url = format!("ws://{}/ws", server.http);
    let mut cmd = Command::new(python());
    cmd.env("PYTHONUNBUFFERED", "1");
    let report = finish(flood(cmd, &["bad", &url, "30"]), Duration::from_secs(90));
    let after = rss_kib(pid);
    assert!(
        report["closed"] == true,
        "the server kept a client that never reads: {report}"
    );
    assert!(
        after < before + 50 * 1024,
        "RSS grew from {before} to {after} KiB: {report}"
    );
    // and it still serves others
    server.healthy(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_joins_is_closed_at_the_deadline() {
    let server = tokio::task::spawn_blocking(|| Server::start_with(&["--join-deadline", "2"]))
        .await
        .unwrap();
    tokio::task::block_in_place(|| server.healthy(Duration::from_secs(30)));
    let started = Instant::now();
    let mut ws = connect(&server).await;
    let code = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(frame) = m {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed within 20 s");
    assert_eq!(code, Some(4001));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed before the deadline: {:?}",
        started.elapsed()
    );
}

#[test]
fn large_offers_in_one_room_do_not_delay_another() {
    // a latency measurement: alone on the machine
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(ping_while_large_offers_flow());
}

async fn ping_while_large_offers_flow() {
    let server = tokio::task::spawn_blocking(Server::start).await.unwrap();
    tokio::task::block_in_place(|| server.healthy(Duration::from_secs(30)));
    let url = format!("ws://{}/ws", server.http);
    // the offer flooder: CHROME's offer padded to 64 KiB, in a loop
    let sdp_file = std::env::temp_dir().join(format!("swyd-offer-{}.sdp", std::process::id()));
    std::fs::write(&sdp_file, CHROME).unwrap();
    let flooder = flood(
        Command::new(python()),
        &["offers", &url, "12", sdp_file.to_str().unwrap()],
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut calm, _) = join(&server, "calm", "Ada").await;
    let mut rtts = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        send(&mut calm, serde_json::json!({"v":1,"type":"ping"})).await;
        expect(&mut calm, "pong").await;
        rtts.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = tokio::task::block_in_place(|| finish(flooder, Duration::from_secs(60)));
    let _ = std::fs::remove_file(&sdp_file);
    rtts.sort();
    let p99 = rtts[rtts.len() * 99 / 100 - 1];
    eprintln!(
        "ping p50 {:?} p99 {p99:?} max {:?} during {report}",
        rtts[rtts.len() / 2],
        rtts[rtts.len() - 1]
    );
    assert!(
        num(&report["sent"]) >= 50,
        "the flooder barely ran: {report}"
    );
    assert!(
        num(&report["answers"]) > 0,
        "the padded offers were answered (real work): {report}"
    );
    assert!(
        p99 < Duration::from_millis(50),
        "ping p99 {p99:?} while 64 KiB offers flowed: {report}"
    );
}

#[test]
fn a_flood_of_forged_checks_does_not_stop_handshakes_or_grow_state() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let python = python();
    let net = NetnsPair::with_clients(2);
    let server = NsServer::start(&net, "stunflood");
    let sdp_file = std::env::temp_dir().join(format!("swyd-flood-{}.sdp", std::process::id()));
    std::fs::write(&sdp_file, CHROME).unwrap();
    // 50 000 forged checks a second naming a real ufrag, from 1000 ports,
    // for as long as the browsers take to join and call
    let mut cmd = NetnsPair::command(&net.clients[0].ns, &python);
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/abuse/stun_flood.py"))
        .arg(format!("http://{}:8080", net.server_ip))
        .arg(&sdp_file)
        .args(["50000", "20", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let flooder = cmd.spawn().expect("start stun_flood.py");
    std::thread::sleep(Duration::from_secs(2)); // the flood is under way
    let r = call_in(
        &net.clients[1].ns,
        &server,
        &[
            "--room",
            "handshakes",
            "--names",
            "Ada,Bo",
            "--min-frames",
            "100",
            "--timeout",
            "25",
            "--hold",
            "15",
        ],
        "stunflood-call",
    );
    let flood = finish(flooder, Duration::from_secs(90));
    let _ = std::fs::remove_file(&sdp_file);
    let stats = &flood["stats"];
    let context = || {
        format!(
            "flood: sent {} at {} pkt/s\nstats: {stats:#}\nreport: {r:#}\n--- server log ---\n{}",
            flood["sent"],
            flood["pps"],
            server.log()
        )
    };
    eprintln!(
        "flood {} pkt/s, signalling {}",
        flood["pps"], stats["signalling"]
    );
    // the flooder is Python sharing two cores with the server and two
    // browsers: one run here reached 34 900 a second of the 50 000 asked
    // (earlier ones passed 35 000); below 25 000 the test would not show
    // what it means to
    assert!(
        num(&flood["pps"]) >= 25_000,
        "the flood fell short: {}",
        context()
    );
    for name in ["Ada", "Bo"] {
        let p = &r["participants"][name];
        assert_eq!(p["state"], "connected", "{name}: {}", context());
        for rx in p["remotes"].as_object().expect("remotes").values() {
            assert!(num(&rx["video_frames"]) >= 100, "{name}: {}", context());
        }
    }
    // read while the browsers were still in the call (--hold): only their
    // own checks taught the server addresses
    assert!(
        num(&stats["participants"]) >= 2,
        "stats were read after the call: {}",
        context()
    );
    assert!(
        num(&stats["signalling"]["learned_addresses"]) <= 4,
        "{}",
        context()
    );
    let budget_drops: u64 = stats["dataplane"]["workers"].as_array().map_or(0, |w| {
        w.iter().map(|w| num(&w["drops"]["exception_budget"])).sum()
    });
    assert!(budget_drops > 0, "no exception-budget drops: {}", context());
}
