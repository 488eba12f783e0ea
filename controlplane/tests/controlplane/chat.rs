//! Issue #19 show 2: chat in the demo app, in headless Chromium. A message
//! from A shows in B's and C's pages within 500 ms, its markup as text (no
//! element made, no script run); a flood from A is cut by the server's rate
//! limit and A's page says so; D, joining later, sees the room's last
//! messages.

use crate::netns::app_test;
use serde_json::Value;
use std::time::Duration;

#[test]
fn chat_reaches_the_room_as_text_is_rate_limited_and_greets_late_joiners() {
    let run = app_test(
        "chat",
        &[],
        ("chat.mjs", "chat", &[]),
        Duration::from_secs(120),
    );
    let r = &run.report;
    let context = || run.context.clone();
    let markup =
        "hello <script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"> & welcome";
    for name in ["B", "C"] {
        let p = &r[name];
        let ms = r["delivery_ms"][name].as_i64().unwrap_or(i64::MAX);
        eprintln!("{name} showed A's message {ms} ms after A sent it");
        assert!((0..500).contains(&ms), "{name}: {ms} ms: {}", context());
        // shown as typed, as text
        assert!(
            p["lines"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| *l == format!("A: {markup}"))),
            "{name}: {}",
            context()
        );
        assert_eq!(p["scripts_in_log"], 0, "{name}: {}", context());
        assert_eq!(p["pwned"], Value::Null, "{name}: {}", context());
    }
    // the flood: A's page says the rest was not sent, and B got less than
    // all of it
    let a = &r["A"];
    assert!(
        a["notice"].as_str().is_some_and(|n| n.contains("Not sent")),
        "{}",
        context()
    );
    let floods = |p: &Value| {
        p["chat"].as_array().map_or(0, |c| {
            c.iter()
                .filter(|l| l["text"].as_str().is_some_and(|t| t.starts_with("flood ")))
                .count()
        })
    };
    let got = floods(&r["B_after_flood"]);
    assert!((1..12).contains(&got), "B got {got} of 12: {}", context());
    // nobody's call broke on it
    for name in ["A", "B_after_flood"] {
        assert_eq!(
            r[name]["errors"],
            serde_json::json!([]),
            "{name}: {}",
            context()
        );
    }
    // D, later: the room's messages, the first one among them
    let d = &r["D"];
    assert!(
        d["chat"]
            .as_array()
            .is_some_and(|c| c.iter().any(|l| l["text"] == markup)),
        "{}",
        context()
    );
    assert_eq!(floods(d), got, "D sees what B saw: {}", context());
    assert_eq!(d["scripts_in_log"], 0, "{}", context());
}
