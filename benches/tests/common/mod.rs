//! What the script tests share: the binaries' directory, running a bench
//! script with a time bound, and what it left running.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// target/<profile>, with the servers' binaries built: `cargo test -p
/// switchyard-benches` builds only this crate's.
pub fn bin_dir() -> PathBuf {
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

/// Runs `benches/<script>` with `BIN_DIR`, `OUT` and `env`, killed after
/// `bound`; its exit status and standard output.
pub fn run_script(
    script: &str,
    out: &Path,
    env: &[(&str, &str)],
    bound: Duration,
) -> (ExitStatus, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("benches").join(script))
        .env("BIN_DIR", bin_dir())
        .env("OUT", out)
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {script}: {e}"));
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script} still running after {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut text = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    (status, text)
}

/// Command lines of processes still running that name `out` (the servers a
/// script started name its results directory).
pub fn left_running(out: &Path) -> Vec<String> {
    let out_text = out.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&out_text))
        .collect()
}
