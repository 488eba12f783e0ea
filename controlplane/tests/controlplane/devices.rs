//! Issue #19 show 4: devices in the demo app, in headless Chromium with
//! three fake cameras. Switching the camera (then the microphone) mid-call keeps
//! the other side decoding — frames keep increasing, no stall — without a
//! renegotiation; before joining, the pre-join screen previews the camera,
//! lists the devices, and the call sends the one picked there.

use crate::netns::app_test;
use serde_json::json;
use std::time::Duration;

#[test]
fn switching_devices_mid_call_keeps_the_others_decoding_without_renegotiation() {
    let run = app_test(
        "devices",
        &[],
        ("devices.mjs", "devices", &[]),
        Duration::from_secs(120),
    );
    let r = &run.report;
    let context = &run.context;
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(-1);
    eprintln!(
        "B got of A: {} frames in 2 s before; after the camera switch to {}: {} frames in 4 s (longest stall \
         {} ms); after the microphone switch to {}: {} audio packets in 3 s",
        r["before"]["frames"],
        r["camera_picked"],
        r["after_camera"]["frames"],
        r["after_camera"]["longest_stall_ms"],
        r["mic_picked"],
        r["after_mic"]["audio"]
    );
    assert!(n(&r["before"]["frames"]) >= 20, "{context}");
    // the fake cameras send 20 frames a second here; half is plenty
    assert!(n(&r["after_camera"]["frames"]) >= 40, "{context}");
    assert!(
        (0..1000).contains(&n(&r["after_camera"]["longest_stall_ms"])),
        "{context}"
    );
    assert!(n(&r["after_mic"]["audio"]) >= 100, "{context}");
    assert!(n(&r["after_mic"]["frames"]) >= 30, "{context}");
    let (before, after) = (&r["sender_before"], &r["sender_after"]);
    assert_eq!(
        before["offers_sent"], after["offers_sent"],
        "no renegotiation: {context}"
    );
    assert_eq!(after["signaling"], "stable", "{context}");
    assert_eq!(after["switches"], 2, "{context}");
    // the senders carry the picked devices, which are what the page holds
    let camera = r["camera_picked"].as_str().unwrap_or("?");
    let mic = r["mic_picked"].as_str().unwrap_or("?");
    assert!(
        after["sending"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(camera)) && s.contains(&json!(mic))),
        "{context}"
    );
    assert_eq!(after["sending"], after["local"], "{context}");
    assert_ne!(before["sending"], after["sending"], "{context}");
    assert_eq!(after["errors"], json!([]), "{context}");
    // before joining: a live preview, the cameras listed, and the call
    // sends the one picked there
    let pre = &r["prejoin"];
    assert_eq!(
        pre["cameras"].as_array().map(Vec::len),
        Some(3),
        "{context}"
    );
    assert!(n(&pre["preview_width"]) > 0, "{context}");
    assert_eq!(pre["preview_camera"], pre["picked"], "{context}");
    assert!(
        pre["sending"]
            .as_array()
            .is_some_and(|s| s.contains(&pre["picked"])),
        "{context}"
    );
}
