//! Issue #17's show 8 with real processes: `benches/cascade.sh` with three
//! bridges (regions A, B, C; a focus with `--cascade`, every bridge its own
//! agent and dataplane process) and one room of six simulated browsers, two
//! per region, so the room spans all three bridges through three relays.
//! Every stream is delivered, next to nothing is lost (a debug build on a
//! busy 2-core machine has dropped a few dozen packets of 35 000 at the
//! start; the test prints the kernel's UDP receive-buffer drops beside the
//! figure), and each source crosses each link once: what a bridge receives on its relays is what the other
//! two bridges receive from their own participants (each of their sources
//! comes once), not more (a source relayed twice, or relayed on from a
//! relay, would double it).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use switchyard_benches::load::Report;

/// The sum over every worker of counter `name` in a text exposition.
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

/// The kernel's count of UDP datagrams dropped for a full receive buffer
/// (`Udp: RcvbufErrors` in /proc/net/snmp), 0 where it cannot be read.
fn udp_receive_buffer_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// What bridge `region`'s dataplane counted during the spanning run:
/// (bytes from its own participants, bytes from its relays).
fn bytes(out: &Path, region: char) -> (f64, f64) {
    let read = |when: &str| {
        let path = out.join(format!("b{region}.{when}.prom"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let (before, after) = (read("before"), read("after"));
    let delta = |name: &str| counter(&after, name) - counter(&before, name);
    let relay = delta("switchyard_dataplane_relay_bytes_received_total");
    let all = delta("switchyard_dataplane_bytes_received_total");
    (all - relay, relay)
}

#[test]
fn a_room_over_three_bridges_gets_every_stream_and_each_source_crosses_each_link_once() {
    let drops_before = udp_receive_buffer_drops();
    let out = std::env::temp_dir().join(format!("swyd-cascade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (status, table) = common::run_script(
        "cascade.sh",
        &out,
        &[
            ("BRIDGES", "3"),
            ("ROOMS", "1"),
            ("PARTICIPANTS", "6"),
            ("DURATION", "5"),
        ],
        Duration::from_secs(240),
    );
    eprintln!("{table}");
    assert!(status.success(), "cascade.sh failed: {status}");
    let text = std::fs::read_to_string(out.join("spanning.json")).expect("spanning.json");
    let r: Report = serde_json::from_str(&text).expect("a generator report");
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.clients, 6);
    // each of six hears audio and the top video layer of the five others
    assert_eq!(r.streams_expected, 6 * 5 * 2);
    assert_eq!(r.streams_missing, 0, "{}", r.table());
    let drops = udp_receive_buffer_drops().saturating_sub(drops_before);
    eprintln!(
        "lost {} of {} packets; the kernel dropped {drops} UDP datagrams for full receive buffers meanwhile",
        r.lost,
        r.received + r.lost
    );
    assert!(r.loss() < 0.005, "{}", r.table());

    let per_bridge: BTreeMap<char, (f64, f64)> =
        ['A', 'B', 'C'].map(|b| (b, bytes(&out, b))).into();
    eprintln!("per bridge (own participants' bytes, relay bytes): {per_bridge:?}");
    for (&b, &(_, relayed)) in &per_bridge {
        let others: f64 = per_bridge
            .iter()
            .filter(|(o, _)| **o != b)
            .map(|(_, (own, _))| own)
            .sum();
        // the participants' bytes include their RTCP and STUN, which stay
        // on their own bridge: most, not all, of them cross
        assert!(
            relayed > 0.5 * others && relayed <= 1.1 * others,
            "bridge {b} received {relayed} bytes on its relays; the other bridges' participants sent {others}"
        );
    }
    let left = common::left_running(&out);
    assert!(left.is_empty(), "left running: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
}
