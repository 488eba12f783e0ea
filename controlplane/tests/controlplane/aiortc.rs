//! A second, independent WebRTC stack: a Python aiortc client
//! (tests/aiortc/client.py) and a headless Chromium hold a call through
//! Switchyard; each decodes the other's video.

use crate::browser::call;
use crate::netns::{NetnsPair, NsServer, run_bounded};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The Python with aiortc that scripts/test.sh prepares.
pub fn python() -> PathBuf {
    let p = std::env::var_os("SWITCHYARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python")
        });
    assert!(
        p.exists(),
        "no Python with aiortc at {}: run scripts/test.sh (it creates that venv and installs \
         aiortc) or set SWITCHYARD_PYTHON",
        p.display()
    );
    p
}

#[test]
fn aiortc_and_chromium_see_each_other() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let python = python();
    let net = NetnsPair::new();
    let server = NsServer::start(&net, "aiortc");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/aiortc/client.py");
    let mut py = NetnsPair::command(&net.client_ns, &python);
    py.arg(&script)
        .args([
            "--url",
            &format!("{}/ws", server.https.replace("https", "wss")),
        ])
        .args(["--room", "mixed", "--name", "Py", "--remotes", "1"])
        .args(["--min-frames", "100", "--timeout", "120"]);
    let log = std::env::temp_dir().join(format!("aiortc-{}.log", std::process::id()));
    let aiortc = std::thread::spawn(move || run_bounded(py, Duration::from_secs(200), &log));
    let browser = call(
        &net,
        &server,
        &[
            "--room",
            "mixed",
            "--names",
            "Chromium",
            "--remotes",
            "1",
            "--min-frames",
            "100",
            "--timeout",
            "120",
            "--hold",
            "15",
        ],
        "aiortc-chromium",
    );
    let out = aiortc.join().expect("aiortc thread");
    let text = String::from_utf8_lossy(&out.stdout);
    let py: Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "aiortc client failed ({}):\n{}\n--- server log ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                server.log()
            )
        });
    let context = || {
        format!(
            "aiortc: {py:#}\nchromium: {browser:#}\naiortc log:\n{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        )
    };

    // Chromium decoded the aiortc participant's video and heard it
    let c = &browser["participants"]["Chromium"];
    assert_eq!(c["state"], "connected", "{}", context());
    let from_py = c["remotes"]
        .as_object()
        .and_then(|r| r.values().find(|r| r["name"] == "Py"))
        .unwrap_or_else(|| panic!("Chromium never saw Py: {}", context()));
    assert!(
        from_py["video_frames"].as_u64().unwrap_or(0) >= 100,
        "{}",
        context()
    );
    assert!(
        from_py["audio_packets"].as_u64().unwrap_or(0) > 0,
        "{}",
        context()
    );

    // aiortc decoded Chromium's video (one simulcast layer, forwarded)
    assert_eq!(
        py["errors"].as_array().map_or(1, Vec::len),
        0,
        "{}",
        context()
    );
    let from_chromium = py["remotes"]
        .as_object()
        .and_then(|r| r.values().find(|r| r["name"] == "Chromium"))
        .unwrap_or_else(|| panic!("aiortc never saw Chromium: {}", context()));
    assert!(
        from_chromium["video_frames"].as_u64().unwrap_or(0) >= 100,
        "{}",
        context()
    );
    assert!(
        from_chromium["height"].as_u64().unwrap_or(0) > 0,
        "{}",
        context()
    );
    assert!(
        from_chromium["audio_frames"].as_u64().unwrap_or(0) > 0,
        "{}",
        context()
    );
}
