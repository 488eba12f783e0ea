//! libswitchyard from outside Rust: a C program compiled with gcc against
//! `include/switchyard.h` and the built library, and the Python `ctypes`
//! example, each attach to a real dataplane (run in this process on its own
//! control socket, real UDP sockets), walk the error paths and install a
//! publisher and a subscriber with known keys. Then SRTP sent by the
//! publisher arrives re-encrypted at the subscriber.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_dataplane::config::{Args, Config};
use switchyard_dataplane::wire::rtp::{RtpHeader, RtpPacket};
use switchyard_srtp::{Config as SrtpConfig, MasterKey, Profile, Session};

/// Where cargo puts this crate's libraries (target/<profile>), with
/// `libswitchyard.so` built: `cargo test` compiles the crate only as an rlib
/// for its tests, so the shared library is built here when missing.
fn target_dir() -> PathBuf {
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !*built && !dir.join("libswitchyard.so").exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "switchyard-ffi", "--lib"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("cargo build -p switchyard-ffi");
        assert!(
            out.status.success(),
            "building libswitchyard: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    *built = true;
    dir
}

/// Starts a dataplane with one worker on an OS-assigned loopback port, and
/// an ICE-TCP front on another.
fn dataplane(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swyd-ffi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
    let socket = dir.join("dp.sock");
    let config = Config::load(Args {
        workers: Some(1),
        base_port: Some(0),
        ice_tcp_port: Some(switchyard_dataplane::config::PortOrOff::Port(0)),
        control_socket: Some(socket.clone()),
        log: Some("warn".into()),
        ..Args::default()
    })
    .unwrap();
    std::thread::spawn(move || switchyard_dataplane::runtime::run(config));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "dataplane did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    socket
}

/// The keys the C and Python programs install: bytes counting up.
fn key(first: u8) -> MasterKey {
    let k: Vec<u8> = (0..16).map(|i| first + i).collect();
    let s: Vec<u8> = (0..14).map(|i| first + 0x40 + i).collect();
    MasterKey::new(Profile::Aes128CmHmacSha1_80, &k, &s).unwrap()
}

/// Runs `cmd` (which installs the endpoints), then checks media flows.
/// Runs the program, which must succeed and print each of `says`, then
/// sends SRTP through what it installed.
fn install_then_forward(
    mut cmd: Command,
    says: &[&str],
    socket: &Path,
    publisher: &UdpSocket,
    subscriber: &UdpSocket,
) {
    let out = cmd
        .arg(socket)
        .arg(publisher.local_addr().unwrap().to_string())
        .arg(subscriber.local_addr().unwrap().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run the program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && says.iter().all(|s| stdout.contains(s)),
        "{cmd:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // the worker's port, from what the program printed
    let port: u16 = stdout
        .split("on UDP ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("worker port printed");
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let cfg = SrtpConfig::default();
    let mut send = Session::new(Profile::Aes128CmHmacSha1_80, &key(0x10), cfg).unwrap();
    let mut recv = Session::new(Profile::Aes128CmHmacSha1_80, &key(0x70), cfg).unwrap();
    subscriber
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut seq = 0u16;
    let mut send_one = |marker: u8| {
        let h = RtpHeader {
            payload_type: 96,
            sequence_number: 100 + seq,
            timestamp: 3000 * u32::from(seq),
            ssrc: 0x777,
            ..Default::default()
        };
        seq += 1;
        let mut pkt = vec![0u8; 1500];
        let n = h.emit(&mut pkt).unwrap();
        // VP8 descriptor (S=1) and a keyframe's first byte, then a marker
        pkt[n..n + 3].copy_from_slice(&[0x10, 0x00, marker]);
        let n = send.protect_rtp(&mut pkt, n + 100).unwrap();
        publisher.send_to(&pkt[..n], server).unwrap();
    };
    let mut recv_one = |deadline: Instant| -> Option<(u32, u8)> {
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok(n) = subscriber.recv(&mut buf) else {
                continue;
            };
            if (192..=223).contains(&buf[1]) {
                continue; // RTCP
            }
            let len = recv
                .unprotect_rtp(&mut buf[..n])
                .expect("subscriber decrypts with its key");
            let p = RtpPacket::new_checked(&buf[..len]).unwrap();
            return Some((p.ssrc(), p.payload()[2]));
        }
        None
    };
    // The workers apply commands asynchronously: send until the first packet
    // comes through (marker 0xff), however loaded the machine is.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        send_one(0xff);
        if recv_one(Instant::now() + Duration::from_millis(200)).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no packet forwarded in 30 s");
    }
    while recv_one(Instant::now() + Duration::from_millis(300)).is_some() {}
    // Then every packet of a burst arrives, in order, re-encrypted.
    for marker in 0..20u8 {
        send_one(marker);
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 20 {
        match recv_one(deadline) {
            Some(p) => got.push(p),
            None => break,
        }
    }
    assert_eq!(got.len(), 20, "every packet forwarded: {got:?}");
    assert!(got.iter().all(|(ssrc, _)| *ssrc == 0x888));
    assert_eq!(
        got.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
        (0..20).collect::<Vec<u8>>()
    );
}

fn sockets() -> (UdpSocket, UdpSocket) {
    (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    )
}

/// Compiles a C file against the header and the built library.
fn compile(source: &Path, name: &str) -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = target_dir();
    assert!(
        lib_dir.join("libswitchyard.so").exists(),
        "libswitchyard.so in {}",
        lib_dir.display()
    );
    let exe = std::env::temp_dir().join(format!("swyd-ffi-{name}-{}", std::process::id()));
    let cc = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(source)
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lswitchyard")
        .output()
        .expect("gcc (apt-get install gcc)");
    assert!(
        cc.status.success(),
        "gcc {}: {}",
        source.display(),
        String::from_utf8_lossy(&cc.stderr)
    );
    exe
}

#[test]
fn the_example_in_docs_ffi_md_compiles() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ffi.md")).unwrap();
    let code = doc
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a C block in docs/ffi.md");
    let source = std::env::temp_dir().join(format!("swyd-ffi-doc-{}.c", std::process::id()));
    std::fs::write(&source, code).unwrap();
    let exe = compile(&source, "doc");
    let _ = std::fs::remove_file(source);
    let _ = std::fs::remove_file(exe);
}

#[test]
fn a_c_program_drives_the_dataplane() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let exe = compile(&crate_dir.join("tests/c/forward.c"), "forward");
    let socket = dataplane("c");
    let (publisher, subscriber) = sockets();
    let says = ["relay loop refused", "installed"];
    install_then_forward(Command::new(&exe), &says, &socket, &publisher, &subscriber);
    let _ = std::fs::remove_file(exe);
}

#[test]
fn the_python_ctypes_example_drives_the_dataplane() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let socket = dataplane("py");
    let (publisher, subscriber) = sockets();
    let mut cmd = Command::new("python3");
    cmd.arg(crate_dir.join("examples/forward.py"))
        .env("SWITCHYARD_LIB", target_dir().join("libswitchyard.so"));
    install_then_forward(cmd, &["installed"], &socket, &publisher, &subscriber);
}
