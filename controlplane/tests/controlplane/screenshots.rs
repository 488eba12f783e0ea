//! Issue #19 show 6: screenshots of the demo app — the pre-join screen, and
//! a call with a shared screen, the chat and the people list open — at a
//! desktop and a phone viewport, taken from real pages in headless
//! Chromium, each remote tile with its connection badge (resolution, frame
//! rate; loss and round trip when they matter). They go to the test's
//! directory; with
//! `SWITCHYARD_UPDATE_SCREENSHOTS=1` into docs/img, where the README and
//! docs show them. Each page must show what it is about and fit its
//! viewport's width (nothing to scroll sideways on a phone).

use crate::netns::{NetnsPair, NsServer, run_app_script};
use std::time::Duration;

#[test]
fn the_app_looks_right_on_desktops_and_phones() {
    let net = NetnsPair::new();
    let server = NsServer::start(&net, "shots");
    let out = match std::env::var_os("SWITCHYARD_UPDATE_SCREENSHOTS") {
        Some(_) => std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/img")),
        None => server.dir.clone(),
    };
    let out_arg = out.to_string_lossy().into_owned();
    let run = run_app_script(
        &net,
        &server,
        ("shots.mjs", "design-review", &["--out", &out_arg]),
        Duration::from_secs(150),
    );
    let r = &run.report;
    let context = &run.context;
    assert!(r.get("error").is_none(), "{context}");
    for name in [
        "app-prejoin-desktop",
        "app-prejoin-phone",
        "app-call-desktop",
        "app-call-phone",
    ] {
        let page = &r[name];
        let bytes = std::fs::metadata(out.join(format!("{name}.png"))).map_or(0, |m| m.len());
        eprintln!("{name}: {bytes} bytes, {page}");
        assert!(bytes > 10_000, "{name}: {context}");
        assert_eq!(
            page["width"], page["viewport"],
            "{name} fits its width: {context}"
        );
        assert_eq!(page["errors"], serde_json::json!([]), "{name}: {context}");
        if name.contains("prejoin") {
            assert!(
                page["preview_width"].as_u64().unwrap_or(0) > 0,
                "{name}: {context}"
            );
        } else {
            assert_eq!(page["screen_tile"], true, "{name}: {context}");
            assert!(
                page["tiles"].as_u64().unwrap_or(0) >= 3,
                "{name}: {context}"
            );
            assert_eq!(page["chat_lines"], 3, "{name}: {context}");
            assert_eq!(page["people"], 3, "{name}: {context}");
            // each remote video's tile says what arrives: Ada's camera and
            // screen, and the third participant's camera
            let quality = page["quality"].as_array().cloned().unwrap_or_default();
            assert_eq!(quality.len(), 3, "{name}: {context}");
            for q in &quality {
                assert!(q["height"].as_u64().unwrap_or(0) > 0, "{name}: {context}");
                assert!(q["rtt_ms"].as_u64().is_some(), "{name}: {context}");
                assert!(q["grade"].is_string(), "{name}: {context}");
            }
            assert_eq!(
                page["quality_badges"].as_array().map(Vec::len),
                Some(3),
                "{name}: {context}"
            );
        }
    }
}
