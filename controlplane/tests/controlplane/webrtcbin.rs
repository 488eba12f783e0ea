//! A third WebRTC stack: GStreamer's webrtcbin (libnice for ICE), driven by
//! tests/webrtcbin/client.py — written from docs/signalling.md alone — holds
//! a call with an aiortc participant through Switchyard (issue #15 show 2).

use crate::aiortc::{TestClient, got_from, report_of, start_client};
use crate::netns::{NetnsPair, NsServer};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Starts tests/webrtcbin/client.py (the system's Python, with its
/// GStreamer bindings) as `name` in `room` with `args`; its output when it
/// ends (at most 240 s).
fn start_webrtcbin(
    net: &NetnsPair,
    server: &NsServer,
    room: &str,
    name: &str,
    args: &[&str],
) -> std::thread::JoinHandle<std::process::Output> {
    let client = TestClient {
        python: PathBuf::from("/usr/bin/python3"),
        stack: "webrtcbin",
        bound: Duration::from_secs(240),
    };
    client.start(net, server, room, name, args)
}

/// The remote named `name` in a client's report.
fn remote<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["remotes"]
        .as_object()
        .and_then(|r| r.values().find(|r| r["name"] == name))
}

/// Issue #15 show 2: webrtcbin with max-bundle and otherwise its defaults
/// (bundle-only audio line, libnice's binding-indication keepalives)
/// publishes VP8 and Opus to an aiortc participant and receives its: each
/// side has ≥ 200 video and ≥ 500 audio frames of the other within 15 s of
/// its first frame, and the call holds 120 s — media still arriving at the
/// end on both sides, webrtcbin's ICE still connected (libnice's keepalives
/// alone once lost consent at about 30 s). Two more aiortc participants
/// visit one after the other meanwhile, and webrtcbin and each decode the
/// other (each visit renegotiates webrtcbin's session twice).
#[test]
fn webrtcbin_publishes_and_receives_with_aiortc_and_stays_connected_120_s() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::new();
    let server = NsServer::start(&net, "webrtcbin");
    let counts = [
        "--remotes",
        "1",
        "--min-frames",
        "200",
        "--min-audio-frames",
        "500",
        "--timeout",
        "60",
    ];
    // aiortc reports while webrtcbin is still in the call: it holds 120 s
    // after its counts, webrtcbin 20 s longer
    let mut py_args = counts.to_vec();
    py_args.extend(["--size", "320x180", "--hold", "120"]);
    let py = start_client(&net, &server, "gst", "Py", &py_args);
    let mut gst_args = counts.to_vec();
    gst_args.extend(["--hold", "140"]);
    let gst = start_webrtcbin(&net, &server, "gst", "Gst", &gst_args);
    // meanwhile two visitors come and go, one after the other: each is a
    // server offer adding lines to webrtcbin, and one retiring them
    std::thread::sleep(Duration::from_secs(20));
    let visit = ["--remotes", "2", "--min-frames", "100", "--size", "320x180"];
    let mut visitors = Vec::new();
    for name in ["Visitor1", "Visitor2"] {
        let mut args = visit.to_vec();
        args.extend(["--timeout", "30", "--hold", "2"]);
        let out = start_client(&net, &server, "gst", name, &args)
            .join()
            .expect("visitor thread");
        visitors.push((name, report_of(&out, &server)));
    }
    let (py_out, gst_out) = (
        py.join().expect("aiortc thread"),
        gst.join().expect("webrtcbin thread"),
    );
    let (py, gst) = (report_of(&py_out, &server), report_of(&gst_out, &server));
    let context = || {
        format!(
            "aiortc: {py:#}\nwebrtcbin: {gst:#}\nwebrtcbin log:\n{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&gst_out.stderr),
            server.log()
        )
    };
    for r in [&py, &gst] {
        assert_eq!(
            r["errors"].as_array().map_or(1, Vec::len),
            0,
            "{}",
            context()
        );
    }
    for (who, report, from) in [("aiortc", &py, "Gst"), ("webrtcbin", &gst, "Py")] {
        let (video, audio) = got_from(report, from);
        let done = report["done_s"].as_f64();
        eprintln!(
            "{who} ← {from}: {video} video, {audio} audio frames; counts reached {done:?} s after the first frame"
        );
        assert!(video >= 200 && audio >= 500, "{who}\n{}", context());
        assert!(done.is_some_and(|s| s <= 15.0), "{who}\n{}", context());
    }
    for (name, visitor) in &visitors {
        let (seen, _) = got_from(visitor, "Gst");
        let (shown, _) = got_from(&gst, name);
        eprintln!("{name}: {seen} video frames of webrtcbin's; webrtcbin decoded {shown} of its");
        assert!(
            seen >= 100 && shown >= 100,
            "{name}: {visitor:#}\n{}",
            context()
        );
    }
    // 120 s after its counts aiortc still got webrtcbin's media
    let idle = remote(&py, "Gst").and_then(|r| r["idle_s"].as_f64());
    eprintln!("aiortc: webrtcbin's last frame {idle:?} s before the end");
    assert!(idle.is_some_and(|s| s < 2.0), "{}", context());
    // and webrtcbin, 140 s after its counts, is still connected
    assert!(
        ["connected", "completed"].contains(&gst["ice"].as_str().unwrap_or("")),
        "{}",
        context()
    );
}
