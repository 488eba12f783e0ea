//! `switchyard-tune` against fake roots: a host that falls short, the
//! commands that would fix it, applying them, and a compliant host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tune(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard-tune"))
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

fn fake_host(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("swyd-tune-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in [
        ("proc/sys/net/core/rmem_max", "212992"),
        ("proc/sys/net/core/wmem_max", "212992"),
        ("proc/sys/net/core/rmem_default", "212992"),
        ("proc/sys/net/core/wmem_default", "212992"),
        ("proc/sys/net/core/netdev_max_backlog", "1000"),
        ("proc/sys/net/ipv4/udp_mem", "188040\t250720\t376080"),
        ("proc/sys/net/ipv4/udp_rmem_min", "4096"),
        (
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "schedutil",
        ),
        (
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
            "schedutil",
        ),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{text}\n")).unwrap();
    }
    root
}

#[test]
fn a_default_host_falls_short_and_apply_fixes_it() {
    let root = fake_host("short");
    let out = tune(&["check", "--profile", "1g"], &root);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("LOW     net.core.rmem_max = 212992 (want ≥ 8388608)"),
        "{text}"
    );
    assert!(
        text.contains("50 ms of a full 1 Gbit/s link"),
        "reasons are printed: {text}"
    );
    assert!(
        text.contains("/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor = schedutil"),
        "{text}"
    );
    assert!(text.contains("9 of 9 need attention"), "{text}");

    let diff =
        String::from_utf8_lossy(&tune(&["diff", "--profile", "1g"], &root).stdout).to_string();
    assert!(
        diff.contains("sysctl -w net.core.rmem_max=\"8388608\""),
        "{diff}"
    );
    assert!(
        diff.contains("sysctl -w net.ipv4.udp_mem=\"262144 524288 1048576\""),
        "{diff}"
    );
    assert!(diff.contains("echo performance > "), "{diff}");

    let out = tune(&["apply", "--profile", "1g"], &root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // now compliant
    let out = tune(&["check", "--profile", "1g"], &root);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("0 of 9 need attention"), "{text}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn advice_is_reported_but_not_written() {
    let root = fake_host("advice");
    std::fs::write(root.join("proc/cmdline"), "BOOT_IMAGE=/vmlinuz ro quiet\n").unwrap();
    assert!(tune(&["apply", "--profile", "10g"], &root).status.success());
    let out = tune(&["check", "--profile", "10g"], &root);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ADVICE  /proc/cmdline"), "{text}");
    assert!(
        text.contains("MISSING net.core.busy_read"),
        "absent sysctls are reported: {text}"
    );
    let diff =
        String::from_utf8_lossy(&tune(&["diff", "--profile", "10g"], &root).stdout).to_string();
    assert!(diff.contains("# by hand: /proc/cmdline"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(root.join("proc/cmdline")).unwrap(),
        "BOOT_IMAGE=/vmlinuz ro quiet\n"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn bad_usage_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-tune"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-tune"))
        .args(["check", "--profile", "5g"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown profile"));
}
