//! Calls survive their dataplane: `kill -9` of the dataplane mid-call, and
//! the control plane gives a new one every endpoint, key, source and
//! subscription back, carrying sequence numbers and SRTP indices on from
//! the continuity records the dead one left (docs/abi.md), so the
//! browsers' SRTP contexts and jitter buffers accept what follows without
//! any action of theirs.

use crate::browser::call_through;
use crate::netns::{NetnsPair, NsServer};
use std::time::{Duration, Instant};

fn kill9(pid: u32) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
}

#[test]
fn a_killed_dataplane_is_rebuilt_and_every_browser_sees_media_again() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::new();
    let server = NsServer::start(&net, "dpcrash");
    let mut killed = None;
    // the watch starts when media flows; the kill follows within 50 ms, so
    // the 5 s watch is the 5 s after the kill
    let report = call_through(&net, &server, "dpcrash", "Ada,Bo,Cy", 5, || {
        let pid = server.dataplane_pid().expect("the dataplane runs");
        kill9(pid);
        killed = Some((pid, Instant::now()));
    });
    let (pid, _) = killed.unwrap();
    let context = || format!("report: {report:#}\n--- server ---\n{}", server.log());
    eprintln!("watch: {}", report["watch"]);
    let watch = report["watch"].as_object().expect("watch report");
    let streams: Vec<_> = watch.iter().filter(|(k, _)| k.contains("<-")).collect();
    assert_eq!(streams.len(), 6, "{}", context());
    for (key, w) in streams {
        assert_eq!(w["state"], "connected", "{key}: {}", context());
        let frames = w["frames_gained"].as_u64().unwrap_or(0);
        assert!(
            frames >= 50,
            "{key}: {frames} frames in the 5 s after the kill: {}",
            context()
        );
        assert!(
            w["audio_gained"].as_u64().unwrap_or(0) > 50,
            "{key}: {}",
            context()
        );
        let stall = w["stall_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(
            stall < 2_500,
            "{key}: video stalled {stall} ms: {}",
            context()
        );
    }
    for name in ["Ada", "Bo", "Cy"] {
        let before = &report["participants"][name]["me"];
        assert!(before.is_string(), "{}", context());
        assert_eq!(
            &watch[name]["me"],
            before,
            "{name} changed id: {}",
            context()
        );
        assert_eq!(watch[name]["rejoins"], 0, "{name}: {}", context());
    }
    // a new dataplane, given the old one's state
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.dataplane_pid() == Some(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(server.dataplane_pid(), Some(pid));
    let log = server.log();
    assert!(
        log.contains("restoring the dataplane's state"),
        "{}",
        context()
    );
}
