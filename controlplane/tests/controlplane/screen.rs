//! Issue #19 show 1: screen sharing in the demo app, in headless Chromium.
//! A shares its screen (Chromium's fake display capture, 1280×720): B and C
//! decode ≥ 50 frames of it at its full width, on a tile of its own, while
//! A's camera keeps coming; stopping the share — with the app's button, then
//! as the browser's own "Stop sharing" does — takes the tile away from both
//! within 2 s.

use crate::netns::app_test;
use serde_json::Value;
use std::time::Duration;

#[test]
fn a_shared_screen_reaches_the_room_in_full_and_leaves_when_stopped() {
    let run = app_test(
        "screen",
        &[],
        ("screen.mjs", "screen", &[]),
        Duration::from_secs(180),
    );
    let r = &run.report;
    let context = &run.context;
    let shares = r["shares"].as_array().cloned().unwrap_or_default();
    assert_eq!(shares.len(), 2, "{context}");
    let ms = |v: &Value| v.as_i64().unwrap_or(i64::MAX);
    for (share, frames) in shares.iter().zip([50, 20]) {
        let stop = share["stop"].as_str().unwrap_or("?");
        for name in ["B", "C"] {
            let seen = &share["seen"][name];
            eprintln!(
                "share stopped by {stop}: {name} decoded {} frames {} px wide ({} ms after the click), \
                 {} camera frames meanwhile; tile gone {} ms after the stop",
                seen["screen_frames"],
                seen["screen_width"],
                share["shown_ms"][name],
                share["camera_frames_during"][name],
                share["removed_ms"][name]
            );
            assert!(
                seen["screen_frames"].as_u64().unwrap_or(0) >= frames,
                "{name}: {context}"
            );
            assert!(
                seen["screen_width"].as_u64().unwrap_or(0) >= 1280
                    && seen["tile_width"].as_u64().unwrap_or(0) >= 1280,
                "{name}: the screen at its full width: {context}"
            );
            assert_eq!(seen["tile"], true, "{name}: {context}");
            // A's camera went on beside it
            assert!(
                share["camera_frames_during"][name].as_i64().unwrap_or(0) >= 20,
                "{name}: {context}"
            );
            // on stage by itself (nothing else was pinned)
            assert_eq!(seen["pinned"], seen["screen_source"], "{name}: {context}");
            assert!(
                ms(&share["removed_ms"][name]) <= 2000,
                "{name}: the tile must go within 2 s: {context}"
            );
            assert_eq!(
                share["after"][name]["errors"],
                serde_json::json!([]),
                "{context}"
            );
        }
        assert_eq!(share["a_tile_left"], true, "{context}");
    }
    assert_eq!(r["a_errors"], serde_json::json!([]), "{context}");
}
