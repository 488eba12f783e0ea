//! The media path breaks mid-call (the browsers' old address stops carrying
//! UDP and a second network appears, while signalling survives): the demo
//! app restarts ICE, the server answers with new credentials on the same
//! DTLS association, and media resumes. (A dropped signalling connection is
//! resumed with its token: resume.rs.)

use crate::browser::call_through;
use crate::netns::{NetnsPair, NsServer};
use serde_json::Value;
use std::process::{Command, Stdio};

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
    let report = call_through(
        &net,
        &server.https,
        &|| server.log(),
        "pathloss",
        "Ada,Bo",
        (40, 0),
        || {
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
        },
    );
    assert_media_resumed(&report, &server);
}
