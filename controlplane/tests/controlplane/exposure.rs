//! Who may join: open rooms beyond loopback need the operator's consent
//! (`--open-rooms`), and what the operator must know is logged and shown.

use crate::netns::{NetnsPair, NsServer, browser_dir, run_bounded};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `switchyard` in the server namespace with HTTP on its address and its
/// state in a private directory of its own (returned).
fn switchyard_in(net: &NetnsPair, tag: &str) -> (Command, PathBuf) {
    let dir = std::env::temp_dir().join(format!("swyd-{tag}-{}", std::process::id()));
    switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
    let mut cmd = NetnsPair::command(&net.server_ns, env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(["--workers", "1"])
        .args(["--http", &format!("{}:8080", net.server_ip)])
        .arg("--state-dir")
        .arg(&dir)
        .arg("--control-socket")
        .arg(dir.join("dp.sock"));
    (cmd, dir)
}

#[test]
fn open_rooms_beyond_loopback_refuse_to_start_unless_opened() {
    let net = NetnsPair::new();
    let addr = &net.server_ip;
    let (mut cmd, dir) = switchyard_in(&net, "exposure");
    cmd.args(["--bind", addr, "--base-port", "10000"]);
    let out = run_bounded(cmd, Duration::from_secs(30), &dir.join("refused.log"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with open rooms on {addr}");
    assert!(
        err.contains("refusing to serve open rooms") && err.contains("--open-rooms"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // With consent it starts, warns in its log, and /health says so.
    let server = NsServer::start(&net, "open");
    let health = NetnsPair::command(&net.server_ns, "/usr/bin/python3")
        .arg("-c")
        .arg(format!(
            "import urllib.request, urllib.error\n\
             try: body = urllib.request.urlopen('http://{addr}:8080/health', timeout=10).read()\n\
             except urllib.error.HTTPError as e: body = e.read()\n\
             print(body.decode())"
        ))
        .output()
        .unwrap();
    let health: serde_json::Value =
        serde_json::from_slice(&health.stdout).expect("/health answers JSON");
    assert_eq!(health["auth"], "open", "{health}");
    let warnings = health["warnings"].to_string();
    assert!(warnings.contains("rooms are open"), "{health}");
    assert!(
        server.log().contains("rooms are open"),
        "no warning in the log:\n{}",
        server.log()
    );
}

#[test]
fn a_page_beyond_loopback_over_media_on_loopback_is_flagged() {
    let net = NetnsPair::new();
    let addr = &net.server_ip;
    // media on loopback (the default), the page on the namespace's address
    let (mut cmd, dir) = switchyard_in(&net, "exposure2");
    cmd.args(["--base-port", "0", "--https", "off"])
        .args(["--token-secret", "s3cret-for-the-test"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut banner = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut reader, &mut banner).unwrap();
    }
    // a person opening the page from another machine is told too
    let page = {
        let _turn = crate::netns::BROWSERS
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut node = NetnsPair::command(&net.client_ns, "node");
        node.current_dir(browser_dir())
            .arg("banner.mjs")
            .arg(format!("http://{addr}:8080/room1"));
        run_bounded(node, Duration::from_secs(90), &dir.join("banner.log"))
    };
    crate::stop(&mut child);
    let page_text = String::from_utf8_lossy(&page.stdout).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    let shown: serde_json::Value = serde_json::from_str(page_text.trim()).unwrap_or_else(|_| {
        panic!(
            "banner.mjs: {page_text} {}",
            String::from_utf8_lossy(&page.stderr)
        )
    });
    assert_eq!(shown["visible"], true, "{shown}");
    assert!(
        shown["text"]
            .as_str()
            .unwrap_or("")
            .contains("media only on 127.0.0.1"),
        "{shown}"
    );
    assert!(
        banner.contains("WARNING") && banner.contains("media only on 127.0.0.1"),
        "{banner}"
    );
    assert!(
        !banner.contains("rooms are open"),
        "tokens are required: {banner}"
    );
}
