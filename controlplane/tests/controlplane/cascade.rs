//! Cascading (docs/cascading.md): one room over two bridges in different
//! regions, linked by an encrypted relay. A focus with `--cascade` and two
//! bridges, each in a network namespace of its own; four real browsers, two
//! per region, in a fifth.

use crate::browser::call_in_at;
use crate::cluster::{NsRole, get_in, secret_file, temp_dir, wait_bridges};
use crate::netns::NetnsPair;
use serde_json::Value;
use std::time::Duration;

/// The sum over every worker of a counter in a text exposition.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?.1,
                None => rest,
            };
            rest.trim().parse::<f64>().ok()
        })
        .sum()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

#[test]
fn two_regions_share_a_room_through_one_relay_that_carries_each_source_once() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::with_clients(3);
    let secret_dir = temp_dir("secret");
    let secret = secret_file(&secret_dir);
    let focus = NsRole::focus(&net.server_ns, &net.server_ip, &secret, &["--cascade"]);
    let bridges: Vec<NsRole> = ["A", "B"]
        .iter()
        .enumerate()
        .map(|(i, region)| {
            let c = &net.clients[i];
            let id = format!("b{region}");
            let extra = ["--region", region];
            NsRole::bridge(&c.ns, &id, &c.ip, &net.server_ip, &secret, &extra)
        })
        .collect();
    let logs = || {
        let mut s = format!("--- focus ---\n{}", focus.log());
        for b in &bridges {
            s.push_str(&format!("\n--- bridge ---\n{}", b.log()));
        }
        s
    };
    wait_bridges(&focus, 2, Duration::from_secs(20), &logs);
    let https = focus.https.clone().expect("the focus prints its HTTPS URL");
    let metrics = |b: &NsRole| get_in(&b.ns, &b.http, "/metrics").1;
    let before: Vec<String> = bridges.iter().map(metrics).collect();

    let r = call_in_at(
        &net.clients[2].ns,
        &https,
        &[
            "--room",
            "cascaded",
            "--names",
            "Ada,Bo,Cy,Di",
            "--regions",
            "A,A,B,B",
            "--min-frames",
            "100",
            "--timeout",
            "60",
            "--camera",
            "320x180",
            "--hold",
            "3",
        ],
        "cascade-call",
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let context = || format!("report: {r:#}\n{}", logs());

    // 1. everyone decodes and hears everyone, across the relay too
    for name in ["Ada", "Bo", "Cy", "Di"] {
        let p = &r["participants"][name];
        assert_eq!(p["state"], "connected", "{name}: {}", context());
        let remotes = p["remotes"].as_object().expect("remotes");
        assert_eq!(remotes.len(), 3, "{name} sees three others: {}", context());
        for (id, rx) in remotes {
            assert!(
                num(&rx["video_frames"]) >= 100.0,
                "{name} ← {id}: {}",
                context()
            );
            assert!(
                num(&rx["audio_packets"]) > 0.0,
                "{name} ← {id}: {}",
                context()
            );
        }
    }
    // the split is 2/2, as the focus saw it while the call ran
    let split = &r["stats_after"]["bridges"];
    let mut per_bridge: Vec<(String, f64)> = split
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["id"].as_str().unwrap_or("").to_string(),
                num(&b["participants"]),
            )
        })
        .collect();
    per_bridge.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        per_bridge,
        [("bA".to_string(), 2.0), ("bB".to_string(), 2.0)],
        "{}",
        context()
    );

    // 2. the link carries each source once: what bridge B received on the
    // relay is no more than 1.1 × what A's browsers sent to A (everything A
    // received from them, RTCP and STUN included), and most of it
    let after: Vec<String> = bridges.iter().map(metrics).collect();
    let delta = |i: usize, name: &str| counter(&after[i], name) - counter(&before[i], name);
    let relayed_to_b = delta(1, "switchyard_dataplane_relay_bytes_received_total");
    let from_a_browsers = delta(0, "switchyard_dataplane_bytes_received_total")
        - delta(0, "switchyard_dataplane_relay_bytes_received_total");
    let sent_by_a = delta(0, "switchyard_dataplane_relay_bytes_sent_total");
    eprintln!(
        "relay A→B: {relayed_to_b} bytes received by B, {sent_by_a} sent by A; A's browsers sent {from_a_browsers}"
    );
    assert!(
        relayed_to_b > 0.5 * from_a_browsers && relayed_to_b <= 1.1 * from_a_browsers,
        "relayed {relayed_to_b} of {from_a_browsers}\n{}",
        context()
    );
    assert!(relayed_to_b <= sent_by_a, "{}", context());
}
