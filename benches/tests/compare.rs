//! `benches/compare.sh` end to end, shortened to one step: the real
//! Switchyard and the real Janus (Debian's, videoroom plugin), each in the
//! network namespace the script makes, one room of three simulated browsers
//! for five seconds. Every stream arrives, nothing is lost, both servers'
//! CPU is measured, and the side-by-side table is printed. Needs root and
//! `janus` (scripts/test.sh installs it).

mod common;

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;
use switchyard_benches::load::ramp::RampRun;
use switchyard_benches::load::{Report, Target};

fn ramp(out: &Path, name: &str) -> RampRun {
    let text = std::fs::read_to_string(out.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name}.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}"))
}

/// Runs compare.sh shortened to one step of one room of three for 5 s,
/// the servers on CPU 0 and the generator on CPU 1 (if there is one), with
/// `env` added; its exit status and table.
fn one_room_of_three(out: &Path, env: &[(&str, &str)], bound: Duration) -> (ExitStatus, String) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut all = vec![
        ("ROOMS", "1"),
        ("STEP", "1"),
        ("STEPS", "1"),
        ("PARTICIPANTS", "3"),
        ("DURATION", "5"),
        ("SERVER_CPU", "0"),
        ("GEN_CPU", if cpus > 1 { "1" } else { "0" }),
    ];
    all.extend_from_slice(env);
    common::run_script("compare.sh", out, &all, bound)
}

/// The step of a room of three, by `name`: every client joined, each of 3
/// heard audio and the top video layer of the 2 others, nothing was lost.
fn assert_room_of_three_got_everything(r: &Report, name: &str) {
    assert!(r.failed.is_empty(), "{name}: {:?}", r.failed);
    assert_eq!(r.clients, 3, "{name}");
    assert_eq!(r.streams_expected, 12, "{name}");
    assert_eq!(r.streams_missing, 0, "{name}: {}", r.table());
    assert_eq!(r.lost, 0, "{name}: {}", r.table());
    assert!(r.received_pps > 1000.0, "{name}: {}", r.table());
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
    // bounded: two servers, one short step each
    let (status, table) = one_room_of_three(&out, &[], Duration::from_secs(240));
    eprintln!("{table}");
    assert!(status.success(), "compare.sh failed: {status}");
    for (name, target) in [("switchyard", Target::Switchyard), ("janus", Target::Janus)] {
        let run = ramp(&out, name);
        assert_eq!(run.target, target);
        assert_eq!(run.steps.len(), 1, "{name}");
        let r = &run.steps[0].report;
        assert_room_of_three_got_everything(r, name);
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
        let (status, table) = one_room_of_three(
            &out,
            &[
                ("IOS", "xdp"),
                ("ONLY", "switchyard"),
                ("BASELINE", "0"),
                ("FAMILY", family),
            ],
            Duration::from_secs(120),
        );
        eprintln!("IPv{family}:\n{table}");
        assert!(status.success(), "IPv{family}: compare.sh failed: {status}");
        let run = ramp(&out, "switchyard-xdp");
        assert_room_of_three_got_everything(&run.steps[0].report, &format!("IPv{family}"));
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
