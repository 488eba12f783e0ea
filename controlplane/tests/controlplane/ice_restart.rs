//! The media path breaks mid-call (the browsers' old address stops carrying
//! UDP and a second network appears, while signalling survives): the demo
//! app restarts ICE, the server answers with new credentials on the same
//! DTLS association, and media resumes. (A dropped signalling connection is
//! resumed with its token: resume.rs.)

use crate::netns::{NetnsPair, NsServer, browser_dir};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn nft(ns: &str, script: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .expect("nft (scripts/test.sh installs nftables)");
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a two-browser call in client 0's namespace; once media flows,
/// `change` breaks the network; returns call.mjs's report with its watch
/// of the 40 s after.
fn call_through(net: &NetnsPair, server: &NsServer, tag: &str, change: impl FnOnce()) -> Value {
    let client = &net.clients[0];
    let base = std::env::temp_dir().join(format!("swyd-{tag}-{}", std::process::id()));
    let (ready, log) = (base.with_extension("ready"), base.with_extension("log"));
    let _ = std::fs::remove_file(&ready);
    let mut cmd = NetnsPair::command(&client.ns, "node");
    cmd.current_dir(browser_dir())
        .arg("call.mjs")
        .args(["--base", &server.https, "--room", tag, "--names", "Ada,Bo"])
        .args(["--min-frames", "50", "--timeout", "60", "--watch", "40"])
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let child = cmd.spawn().expect("node call.mjs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready.exists() {
        assert!(
            Instant::now() < deadline,
            "no media in 120 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    change();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_file(&ready);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "call.mjs: {text}\n{}\n--- server ---\n{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                server.log()
            )
        })
}

/// Both browsers restarted ICE, every remote video resumed, and each
/// endpoint kept its DTLS association (added to the dataplane once).
fn assert_media_resumed(report: &Value, server: &NsServer) {
    let context = || format!("report: {report:#}\n--- server ---\n{}", server.log());
    eprintln!("watch: {}", report["watch"]);
    let watch = report["watch"].as_object().expect("watch report");
    for name in ["Ada", "Bo"] {
        assert!(
            watch[name]["ice_restarts"].as_u64().unwrap_or(0) >= 1,
            "{name} did not restart ICE: {}",
            context()
        );
    }
    for (key, w) in watch.iter().filter(|(k, _)| k.contains("<-")) {
        assert_eq!(w["state"], "connected", "{key}: {}", context());
        let stall = w["stall_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(
            stall < 20_000,
            "{key}: media stalled {stall} ms: {}",
            context()
        );
        assert!(
            w["frames_gained"].as_u64().unwrap_or(0) > 100,
            "{key}: {}",
            context()
        );
    }
    let log = server.log();
    assert_eq!(log.matches("endpoint added").count(), 2, "{}", context());
    assert!(log.contains("ICE restart"), "{}", context());
}

#[test]
fn a_broken_media_path_is_restored_by_ice_restart() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::new();
    let server = NsServer::start(&net, "icerestart");
    let client = &net.clients[0];
    // a second network for the browsers, and no more UDP from the first
    // one (TCP, and so signalling, keeps working)
    let report = call_through(&net, &server, "pathloss", || {
        let new_ip = client
            .ip
            .rsplit_once('.')
            .map(|(n, _)| format!("{n}.200"))
            .unwrap();
        net.add_interface(0, &new_ip).unwrap();
        nft(
            &client.ns,
            &format!(
                "table inet pathloss {{\n chain out {{\n  type filter hook output priority 0;\n  ip saddr {} ip protocol udp drop\n }}\n}}\n",
                client.ip
            ),
        );
    });
    assert_media_resumed(&report, &server);
}
