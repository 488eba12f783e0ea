//! `benches/compare.sh` end to end, shortened to one step: the real
//! Switchyard and the real Janus (Debian's, videoroom plugin), each in the
//! network namespace the script makes, one room of three simulated browsers
//! for five seconds. Every stream arrives, nothing is lost, both servers'
//! CPU is measured, and the side-by-side table is printed. Needs root and
//! `janus` (scripts/test.sh installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use switchyard_benches::load::Target;
use switchyard_benches::load::ramp::RampRun;

/// target/<profile>, with the servers' binaries built: `cargo test -p
/// switchyard-benches` builds only this crate's.
fn bin_dir() -> PathBuf {
    let pktgen = PathBuf::from(env!("CARGO_BIN_EXE_switchyard-pktgen"));
    let dir = pktgen.parent().unwrap().to_path_buf();
    if !dir.join("switchyard").exists() || !dir.join("switchyard-dataplane").exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-p",
            "switchyard-controlplane",
            "-p",
            "switchyard-dataplane",
        ]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("run cargo build");
        assert!(
            out.status.success(),
            "building the servers: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

fn ramp(out: &Path, name: &str) -> RampRun {
    let text = std::fs::read_to_string(out.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name}.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}"))
}

#[test]
fn switchyard_and_janus_side_by_side() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::env::temp_dir().join(format!("swyd-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut child = Command::new("bash")
        .arg(root.join("benches/compare.sh"))
        .env("BIN_DIR", bin_dir())
        .env("OUT", &out)
        .env("ROOMS", "1")
        .env("STEP", "1")
        .env("STEPS", "1")
        .env("PARTICIPANTS", "3")
        .env("DURATION", "5")
        .env("SERVER_CPU", "0")
        .env("GEN_CPU", if cpus > 1 { "1" } else { "0" })
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run benches/compare.sh");
    // bounded: two servers, one short step each
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("compare.sh still running after 240 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut table = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut table)
        .unwrap();
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
    // the servers are gone (their command lines name the results directory)
    let out_text = out.to_string_lossy().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&out_text))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
}
