//! `benches/compare.sh` end to end, shortened to one step: the real
//! Switchyard and the real Janus (Debian's, videoroom plugin), each in the
//! network namespace the script makes, one room of three simulated browsers
//! for five seconds. Every stream arrives, nothing is lost, both servers'
//! CPU is measured, and the side-by-side table is printed. Needs root and
//! `janus` (scripts/test.sh installs it).

mod common;

use std::path::Path;
use std::time::Duration;
use switchyard_benches::load::Target;
use switchyard_benches::load::ramp::RampRun;

fn ramp(out: &Path, name: &str) -> RampRun {
    let text = std::fs::read_to_string(out.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name}.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}"))
}

/// What compare.sh counted through the server namespace's UDP stack in the
/// ramp `name`.
fn kernel_udp(out: &Path, name: &str) -> u64 {
    std::fs::read_to_string(out.join(format!("{name}.kernel-udp")))
        .unwrap_or_else(|e| panic!("{name}.kernel-udp: {e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{name}.kernel-udp: {e}"))
}

#[test]
fn switchyard_and_janus_side_by_side() {
    let out = std::env::temp_dir().join(format!("swyd-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // bounded: two servers, one short step each
    let (status, table) = common::run_script(
        "compare.sh",
        &out,
        &[
            ("ROOMS", "1"),
            ("STEP", "1"),
            ("STEPS", "1"),
            ("PARTICIPANTS", "3"),
            ("DURATION", "5"),
            ("SERVER_CPU", "0"),
            ("GEN_CPU", if cpus > 1 { "1" } else { "0" }),
        ],
        Duration::from_secs(240),
    );
    eprintln!("{table}");
    assert!(status.success(), "compare.sh failed: {status}");
    for (name, target) in [("switchyard", Target::Switchyard), ("janus", Target::Janus)] {
        let run = ramp(&out, name);
        assert_eq!(run.target, target);
        assert_eq!(run.steps.len(), 1, "{name}");
        let r = &run.steps[0].report;
        assert!(r.failed.is_empty(), "{name}: {:?}", r.failed);
        assert_eq!(r.clients, 3, "{name}");
        // each of 3 hears audio and the top video layer of the 2 others
        assert_eq!(r.streams_expected, 12, "{name}");
        assert_eq!(r.streams_missing, 0, "{name}: {}", r.table());
        assert_eq!(r.lost, 0, "{name}: {}", r.table());
        assert!(r.received_pps > 1000.0, "{name}: {}", r.table());
        let ns = r.cpu_ns_per_packet.expect("server CPU measured");
        assert!(ns > 0.0, "{name}: {}", r.table());
        assert!(
            Path::new(&out).join(format!("{name}.svg")).exists(),
            "{name}.svg"
        );
    }
    for row in [
        "knee, forwarded packets/s",
        "CPU ns per forwarded packet",
        "what ended the ramp",
    ] {
        assert!(table.contains(row), "no {row:?} in\n{table}");
    }
    assert!(table.contains("Switchyard") && table.contains("Janus"));
    // over the kernel's sockets every datagram passes its UDP stack (the
    // count the AF_XDP test below needs near zero)
    let through_kernel = kernel_udp(&out, "switchyard");
    assert!(through_kernel > 1000, "{through_kernel}\n{table}");
    // the servers are gone (their command lines name the results directory)
    let left = common::left_running(&out);
    assert!(left.is_empty(), "left running: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
}

/// Issue #20: a packet-generator room served over AF_XDP (`IOS=xdp`: the
/// dataplane's AF_XDP socket on the namespace's end of the veth, native
/// mode, copy mode as veth offers no zero-copy), over IPv4 and over IPv6.
/// Every stream arrives and nothing is lost, and the media went around the
/// kernel: the namespace's UDP stack received a handful of datagrams
/// against the thousands the room exchanged.
#[test]
fn a_generator_room_over_af_xdp_on_ipv4_and_ipv6() {
    for family in ["4", "6"] {
        let out =
            std::env::temp_dir().join(format!("swyd-compare-xdp{family}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (status, table) = common::run_script(
            "compare.sh",
            &out,
            &[
                ("IOS", "xdp"),
                ("ONLY", "switchyard"),
                ("BASELINE", "0"),
                ("FAMILY", family),
                ("ROOMS", "1"),
                ("STEP", "1"),
                ("STEPS", "1"),
                ("PARTICIPANTS", "3"),
                ("DURATION", "5"),
                ("SERVER_CPU", "0"),
                ("GEN_CPU", if cpus > 1 { "1" } else { "0" }),
            ],
            Duration::from_secs(120),
        );
        eprintln!("IPv{family}:\n{table}");
        assert!(status.success(), "IPv{family}: compare.sh failed: {status}");
        let run = ramp(&out, "switchyard-xdp");
        let r = &run.steps[0].report;
        assert!(r.failed.is_empty(), "IPv{family}: {:?}", r.failed);
        assert_eq!(r.clients, 3, "IPv{family}");
        assert_eq!(r.streams_expected, 12, "IPv{family}");
        assert_eq!(r.streams_missing, 0, "IPv{family}: {}", r.table());
        assert_eq!(r.lost, 0, "IPv{family}: {}", r.table());
        assert!(r.received_pps > 1000.0, "IPv{family}: {}", r.table());
        let through_kernel = kernel_udp(&out, "switchyard-xdp");
        eprintln!("IPv{family}: {through_kernel} datagrams through the kernel's UDP stack");
        assert!(
            through_kernel < 50,
            "IPv{family}: {through_kernel} datagrams through the kernel\n{table}"
        );
        assert!(
            table.contains("switchyard-xdp: "),
            "the count is in the table:\n{table}"
        );
        let left = common::left_running(&out);
        assert!(left.is_empty(), "left running: {left:?}");
        let _ = std::fs::remove_dir_all(&out);
    }
}
