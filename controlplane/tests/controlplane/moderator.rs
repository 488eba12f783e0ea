//! Issue #19 show 3: a moderator, in headless Chromium. With room tokens
//! required, M's token says `moderator: true`, B's and C's do not. B's
//! attempt to remove C is refused with `forbidden`; M mutes B's microphone
//! from the people list and the server stops forwarding it (even when B's
//! page turns the track back on without unmuting), until B unmutes itself;
//! M removes C, whose page says so and stays out.

use crate::netns::app_test;
use std::time::Duration;

const SECRET: &str = "moderator-test-secret";

fn token(room: &str, moderator: bool) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = switchyard_controlplane::auth::RoomClaims {
        room: room.into(),
        exp,
        sub: None,
        moderator,
    };
    switchyard_controlplane::auth::hs256_token(SECRET.as_bytes(), &claims).unwrap()
}

#[test]
fn a_moderator_mutes_and_removes_and_others_may_not() {
    let room = "mod";
    let tokens = format!(
        "M={},B={},C={}",
        token(room, true),
        token(room, false),
        token(room, false)
    );
    let run = app_test(
        "moderator",
        &["--token-secret", SECRET],
        ("moderator.mjs", room, &["--tokens", &tokens]),
        Duration::from_secs(150),
    );
    let r = &run.report;
    let context = &run.context;
    let packets = |k: &str| r[k].as_i64().unwrap_or(-1);
    eprintln!(
        "C got of B's microphone, per 2 s: {} before, {} while muted, {} with B's track on behind the \
         server's back, {} after B unmuted",
        packets("before"),
        packets("during_mute"),
        packets("bypass"),
        packets("after_unmute")
    );
    // Opus at 50 packets a second
    assert!(packets("before") >= 60, "{context}");
    assert!((0..=5).contains(&packets("during_mute")), "{context}");
    assert!(
        (0..=5).contains(&packets("bypass")),
        "held by the server: {context}"
    );
    assert!(packets("after_unmute") >= 60, "{context}");
    // B, not a moderator: no buttons, refused, shown
    let b = &r["B_refused"];
    assert_eq!(b["moderator"], false, "{context}");
    assert_eq!(b["moderate_buttons"], 0, "{context}");
    assert!(
        b["notices"].as_array().is_some_and(|n| n
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("Not allowed")))),
        "{context}"
    );
    assert_eq!(r["C_after_refusal"]["left"], false, "{context}");
    // B's page was told and shows its microphone off
    let muted = &r["B_muted"];
    assert_eq!(
        muted["force_muted"],
        serde_json::json!([{"kind": "audio", "name": "M"}]),
        "{context}"
    );
    assert_eq!(
        muted["mic_enabled"],
        serde_json::json!([false]),
        "{context}"
    );
    assert_eq!(muted["mic_pressed"], "true", "{context}");
    assert!(
        r["M_sees_B"].as_array().is_some_and(|p| p.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.starts_with('B') && l.contains("mic muted")))),
        "{context}"
    );
    // C was removed and stays out; the others saw it go
    let c = &r["C_removed"];
    assert_eq!(c["removed_by"], "M", "{context}");
    assert_eq!(c["left"], true, "{context}");
    assert_eq!(c["reconnects"], 0, "{context}");
    assert!(
        c["notices"].as_array().is_some_and(|n| n
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("removed you")))),
        "{context}"
    );
    for who in ["M_after", "B_after"] {
        assert_eq!(
            r[who]["participants"].as_array().map(Vec::len),
            Some(1),
            "{who}: {context}"
        );
        assert_eq!(r[who]["errors"], serde_json::json!([]), "{who}: {context}");
    }
    assert_eq!(r["M_after"]["moderator"], true, "{context}");
}
