use super::*;

/// A fake root with the given files.
fn root(files: &[(&str, &str)]) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("switchyard-tune-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    root
}

#[test]
fn builtin_profiles_parse_and_bad_ones_are_refused() {
    for name in ["1g", "10g"] {
        let p = profile(name).unwrap();
        assert_eq!(p.name, name);
        assert!(p.settings.iter().all(|s| !s.reason.is_empty()));
    }
    assert!(matches!(builtin("5g"), Err(TuningError::UnknownProfile(_))));
    let two =
        "name='x'\ndescription='d'\n[[setting]]\npath='a'\nat_least=[1]\nexact='2'\nreason='r'\n";
    assert!(parse(two).is_err());
    let escape = "name='x'\ndescription='d'\n[[setting]]\npath='../etc/x'\nexact='2'\nreason='r'\n";
    assert!(parse(escape).is_err());
    assert!(parse("name='x'").is_err());
}

#[test]
fn check_finds_low_missing_and_wrong_values() {
    let r = root(&[
        ("proc/sys/net/core/rmem_max", "212992\n"),
        ("proc/sys/net/core/wmem_max", "9000000\n"),
        ("proc/sys/net/ipv4/udp_mem", "188000\t250000\t376000\n"),
        (
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "performance\n",
        ),
        (
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
            "powersave\n",
        ),
    ]);
    let p = profile("1g").unwrap();
    let found = check(&p, &r);
    let status = |name: &str| {
        found
            .iter()
            .find(|f| f.file.to_string_lossy().ends_with(name))
            .map(|f| f.status.clone())
    };
    assert_eq!(
        status("core/rmem_max"),
        Some(Status::Differs("212992".into()))
    );
    assert_eq!(status("core/wmem_max"), Some(Status::Ok("9000000".into())));
    assert!(matches!(status("ipv4/udp_mem"), Some(Status::Differs(_))));
    assert_eq!(status("core/netdev_max_backlog"), Some(Status::Missing));
    assert_eq!(
        status("cpu0/cpufreq/scaling_governor"),
        Some(Status::Ok("performance".into()))
    );
    assert_eq!(
        status("cpu1/cpufreq/scaling_governor"),
        Some(Status::Differs("powersave".into()))
    );
    let _ = std::fs::remove_dir_all(r);
}

#[test]
fn apply_raises_what_is_low_and_keeps_what_is_higher() {
    let r = root(&[
        ("proc/sys/net/core/rmem_max", "212992\n"),
        ("proc/sys/net/core/wmem_max", "99999999\n"),
        ("proc/sys/net/core/rmem_default", "1\n"),
        ("proc/sys/net/core/wmem_default", "1\n"),
        ("proc/sys/net/core/netdev_max_backlog", "1000\n"),
        // one value above the profile stays above it
        ("proc/sys/net/ipv4/udp_mem", "188000 9999999 376000\n"),
        ("proc/sys/net/ipv4/udp_rmem_min", "4096\n"),
        ("proc/sys/net/core/optmem_max", "20480\n"),
        ("proc/sys/net/core/busy_read", "0\n"),
        // busy_poll is absent on this "host": reported, not created
        (
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "powersave\n",
        ),
        ("proc/cmdline", "BOOT_IMAGE=/vmlinuz quiet\n"),
    ]);
    let p = profile("10g").unwrap();
    assert!(check(&p, &r).iter().any(Finding::needs_attention));
    let written = apply(&p, &r).unwrap();
    assert!(!written.is_empty());
    let read = |p: &str| {
        std::fs::read_to_string(r.join(p))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("proc/sys/net/core/rmem_max"), "67108864");
    assert_eq!(
        read("proc/sys/net/core/wmem_max"),
        "99999999",
        "higher stays"
    );
    assert_eq!(read("proc/sys/net/ipv4/udp_mem"), "1048576 9999999 4194304");
    assert_eq!(
        read("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(
        read("proc/cmdline"),
        "BOOT_IMAGE=/vmlinuz quiet",
        "guidance is not written"
    );
    // now only the guidance remains
    let left: Vec<String> = check(&p, &r)
        .into_iter()
        .filter(Finding::needs_attention)
        .map(|f| f.setting.name())
        .collect();
    assert_eq!(left, ["net.core.busy_poll", "/proc/cmdline"]);
    assert!(!r.join("proc/sys/net/core/busy_poll").exists());
    let _ = std::fs::remove_dir_all(r);
}
