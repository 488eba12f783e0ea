//! Who can reach the shared region (issue: the control socket). A process of
//! another uid must not get the region, whatever it tries, and must not
//! supersede the attached client; a socket directory someone else could
//! tamper with stops the start.

use crate::harness::Dataplane;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::Command as AbiCommand;

/// An unprivileged uid the test can switch to (Debian's `nobody`).
const OTHER_UID: u32 = 65534;

fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: switching to another uid needs root (CI runs as root)");
    false
}

/// Runs a Python snippet as `OTHER_UID`; returns what it printed.
fn as_other_user(script: &str, args: &[&str]) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .uid(OTHER_UID)
        .gid(OTHER_UID)
        .stdin(Stdio::null())
        .output()
        .expect("python3 as another user");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "helper failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Connects to the socket and tries to receive a descriptor; prints what
/// happened: `denied`, `no-fd` or `got-fd`.
const CONNECT: &str = r#"
import socket, sys, array
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("denied"); sys.exit(0)
s.settimeout(5)
fds = array.array("i")
try:
    msg, anc, flags, addr = s.recvmsg(16, socket.CMSG_SPACE(4))
except (ConnectionResetError, socket.timeout):
    print("no-fd"); sys.exit(0)
print("got-fd" if anc else "no-fd")
"#;

/// Tries to open each of the dataplane's descriptors through /proc.
const PROC_FDS: &str = r#"
import os, sys
opened = 0
d = "/proc/%s/fd" % sys.argv[1]
try:
    names = os.listdir(d)
except PermissionError:
    print("denied"); sys.exit(0)
for n in names:
    try:
        os.close(os.open(os.path.join(d, n), os.O_RDONLY)); opened += 1
    except OSError:
        pass
print("opened %d" % opened)
"#;

fn still_current(client: &mut switchyard_dataplane::abi::Client) -> bool {
    client
        .send(
            0,
            &AbiCommand::RequestKeyframe {
                source: 1,
                layer: 0,
            },
        )
        .is_ok()
}

#[test]
fn another_user_cannot_reach_the_region() {
    if !root() {
        return;
    }
    let dp = Dataplane::start(1, "mmsg");
    let mut client = dp.attach();
    let dir = dp.socket.parent().unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "socket directory mode");
    let mode = std::fs::metadata(&dp.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");

    // Through the directory: no access at all.
    let socket = dp.socket.to_str().unwrap();
    assert_eq!(as_other_user(CONNECT, &[socket]), "denied");
    // Through /proc: the memfd is not reachable either.
    let pid = dp.child.id().to_string();
    let got = as_other_user(PROC_FDS, &[&pid]);
    assert!(got == "denied" || got == "opened 0", "{got}");

    // Even with the modes opened up by mistake, the dataplane checks who
    // connected: no descriptor, and the attached client stays current.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&dp.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let generation = client.generation();
    assert_eq!(as_other_user(CONNECT, &[socket]), "no-fd");
    assert!(
        still_current(&mut client),
        "another uid superseded the client"
    );
    // a client of our own uid still attaches (and supersedes)
    let mut second = dp.attach();
    assert_eq!(second.generation(), generation + 1);
    assert!(still_current(&mut second));
    assert!(!still_current(&mut client));
}

#[test]
fn a_socket_directory_others_can_write_stops_the_start() {
    let base = std::env::temp_dir().join(format!("swyd-access-{}", std::process::id()));
    switchyard_dataplane::abi::access::prepare_socket_dir(&base).unwrap();
    let uid = rustix::process::geteuid().as_raw();
    let planted = base.join(format!("switchyard-{uid}"));
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    // the default path: $TMPDIR/switchyard-$UID without XDG_RUNTIME_DIR
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-dataplane"))
        .args(["--workers", "1", "--base-port", "0", "--io", "mmsg"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &base)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started with a world-writable socket dir"
    );
    assert!(
        err.contains("refusing the control socket directory"),
        "{err}"
    );
    assert!(
        err.contains(planted.to_str().unwrap()) && err.contains("0777"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        !planted.join("dataplane.sock").exists(),
        "a socket was made in the planted directory"
    );
    let _ = std::fs::remove_dir_all(&base);
}
