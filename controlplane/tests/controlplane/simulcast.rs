//! Simulcast with real browsers: a Chromium publisher sending three layers
//! (180p/360p/720p) and a Chromium receiver whose wishes and network change
//! (tests/browser/simulcast.mjs samples its getStats() every 250 ms).

use crate::netns::{BROWSERS, NetnsPair, NsServer, browser_dir};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The samples from the (first) mark named `what` to the next mark.
fn between_marks<'a>(r: &'a Value, what: &str) -> &'a [Value] {
    let marks = r["marks"].as_array().expect("marks");
    let i = marks
        .iter()
        .position(|m| m["what"] == what)
        .unwrap_or_else(|| panic!("no mark {what}"));
    let all = from_mark(r, what);
    match marks.get(i + 1).and_then(|m| m["at"].as_u64()) {
        Some(end) => {
            let start = marks[i]["at"].as_u64().unwrap_or(0);
            &all[..(end.saturating_sub(start) as usize).min(all.len())]
        }
        None => all,
    }
}

/// The last sample before the mark named `what` (what the receiver had
/// when it asked).
fn before_mark<'a>(r: &'a Value, what: &str) -> &'a Value {
    let samples = r["samples"].as_array().expect("samples");
    let from = samples.len() - from_mark(r, what).len();
    &samples[from.saturating_sub(1)]
}

/// The samples from the mark named `what` on.
fn from_mark<'a>(r: &'a Value, what: &str) -> &'a [Value] {
    let samples = r["samples"].as_array().expect("samples");
    let at = r["marks"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["what"] == what))
        .and_then(|m| m["at"].as_u64())
        .unwrap_or_else(|| panic!("no mark {what}")) as usize;
    &samples[at.min(samples.len())..]
}

/// Whether sample `s` decodes the publisher's top layer: 720 lines, or
/// as many as the publisher sends of it at that moment when Chromium has
/// lowered it (its CPU or estimate falling short; `sent` in the sample).
fn at_top(s: &Value) -> bool {
    let top = s["sent"]["height"]
        .as_f64()
        .filter(|&t| t > 0.0)
        .map_or(720.0, |t| t.min(720.0));
    num(&s["height"]) >= top
}

/// Whether the publisher sends its top layer at sample `s` (a sample of a
/// script without the publisher says nothing: yes).
fn sends_top(s: &Value) -> bool {
    let sent = &s["sent"];
    sent.is_null() || sent["fps"].as_f64().is_some_and(|f| f > 0.0)
}

/// For each `max_height` request: the height asked, the seconds until the
/// decoded height matched it, and the freeze added until the next request
/// (for failure messages).
fn freeze_by_request(r: &Value) -> String {
    let samples = r["samples"].as_array().expect("samples");
    let marks = r["marks"].as_array().expect("marks");
    let mut out = Vec::new();
    for (i, m) in marks.iter().enumerate() {
        let Some(h) = m["what"]
            .as_str()
            .and_then(|w| w.strip_prefix("max_height "))
            .and_then(|h| h.parse::<f64>().ok())
        else {
            continue;
        };
        let from = (num(&m["at"]) as usize).min(samples.len());
        let to = marks.get(i + 1).map_or(samples.len(), |n| {
            (num(&n["at"]) as usize).min(samples.len())
        });
        let span = &samples[from..to.max(from)];
        let (Some(a), Some(b)) = (span.first(), span.last()) else {
            continue;
        };
        let fits = |s: &&Value| {
            let got = num(&s["height"]);
            if h < 200.0 {
                got > 0.0 && got <= h
            } else {
                at_top(s)
            }
        };
        let took = span.iter().find(fits).map_or("never".to_string(), |s| {
            format!("{:.2} s", (num(&s["t"]) - num(&a["t"])) / 1000.0)
        });
        out.push(format!(
            "{h} → {took}, +{:.2} s frozen",
            num(&b["freeze_s"]) - num(&a["freeze_s"])
        ));
    }
    out.join("; ")
}

/// Frames a second below which the publisher's own top layer is short (the
/// camera gives 15): three frames missing in a second are one gap of over
/// 200 ms, which the receiver counts as a freeze whatever the SFU does.
const SENDER_SHORT_FPS: f64 = 13.0;

/// Of the freezes in `samples`, the seconds that fall where the publisher
/// itself sent fewer than [`SENDER_SHORT_FPS`] frames a second (or
/// Chromium said its CPU limits it) in the second before the freeze or
/// during it: on a starved machine the camera or the encoder skips frames
/// and the receiver freezes with it, which is not the SFU's doing.
///
/// A freeze is known when it ends (`freeze_s` grows by its length), so the
/// window for a growth seen at sample `i` reaches back its length and one
/// second more.
fn sender_short_freeze(samples: &[Value]) -> f64 {
    let short = |s: &Value| {
        let sent = &s["sent"];
        sent["limit"] == "cpu" || sent["fps"].as_f64().is_some_and(|f| f < SENDER_SHORT_FPS)
    };
    let mut total = 0.0;
    for (i, pair) in samples.windows(2).enumerate() {
        let grew = num(&pair[1]["freeze_s"]) - num(&pair[0]["freeze_s"]);
        if grew <= 0.0 {
            continue;
        }
        let end = num(&pair[1]["t"]);
        let start = end - grew * 1000.0 - 1000.0;
        let mut in_window = samples[..=i + 1]
            .iter()
            .rev()
            .take_while(|s| num(&s["t"]) >= start);
        if in_window.any(short) {
            total += grew;
        }
    }
    total
}

/// The highest frame height decoded in each second of `samples`
/// (four samples a second), for failure messages.
fn heights_by_second(samples: &[Value]) -> String {
    samples
        .chunks(4)
        .map(|c| {
            let h = c
                .iter()
                .map(|s| num(&s["height"]) as u32)
                .max()
                .unwrap_or(0);
            h.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The publisher's top-layer frame rate in each second of `samples` (its
/// lowest of the four samples; `-` where it was not sampled), for failure
/// messages.
fn sender_fps_by_second(samples: &[Value]) -> String {
    samples
        .chunks(4)
        .map(|c| {
            c.iter()
                .filter_map(|s| s["sent"]["fps"].as_f64())
                .reduce(f64::min)
                .map_or("-".to_string(), |f| format!("{f:.0}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn node(ns: &str, server: &NsServer, scenario: &str, role: &str) -> Command {
    node_at(ns, &server.https, scenario, scenario, role)
}

/// simulcast.mjs in `ns` against the HTTPS URL `https`, in `room`.
fn node_at(ns: &str, https: &str, room: &str, scenario: &str, role: &str) -> Command {
    let mut cmd = NetnsPair::command(ns, "node");
    cmd.current_dir(browser_dir())
        .arg("simulcast.mjs")
        .args(["--base", https])
        .args(["--room", room, "--scenario", scenario, "--role", role]);
    cmd
}

/// simulcast.mjs's report (its last JSON line) for room `room`; kept in
/// `SWITCHYARD_KEEP_LOGS` for looking into a run.
fn parse(room: &str, stdout: &[u8], log: &str, server_log: &dyn Fn() -> String) -> Value {
    let r: Value = String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "simulcast.mjs failed:\n{log}\n--- server ---\n{}",
                server_log()
            )
        });
    if let Some(keep) = std::env::var_os("SWITCHYARD_KEEP_LOGS") {
        let name = format!("simulcast-{room}-{}.json", std::process::id());
        let _ = std::fs::write(std::path::Path::new(&keep).join(name), r.to_string());
    }
    r
}

/// The `switch` scenario (publisher and receiver in one script) in `ns`
/// against `https`, room `room`, with more arguments for simulcast.mjs
/// (e.g. each one's region); its report and its log.
pub(crate) fn run_switch(
    ns: &str,
    https: &str,
    room: &str,
    extra: &[&str],
    server_log: &dyn Fn() -> String,
) -> (Value, String) {
    run_scenario(ns, https, room, "switch", extra, server_log)
}

/// simulcast.mjs's `scenario` with publisher and receiver in one script;
/// its report and its log.
fn run_scenario(
    ns: &str,
    https: &str,
    room: &str,
    scenario: &str,
    extra: &[&str],
    server_log: &dyn Fn() -> String,
) -> (Value, String) {
    let log = std::env::temp_dir().join(format!("simulcast-{room}-{}.log", std::process::id()));
    let mut cmd = node_at(ns, https, room, scenario, "both");
    cmd.args(extra);
    let out = crate::netns::run_bounded(cmd, Duration::from_secs(240), &log);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    let r = parse(room, &out.stdout, &log, server_log);
    (r, log)
}

#[test]
fn the_receiver_gets_the_layer_it_asks_for_and_switches_cleanly() {
    let _turn = BROWSERS.lock().unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::new();
    let server = NsServer::start(&net, "switch");
    let (r, log) = run_switch(&net.client_ns, &server.https, "switch", &[], &|| {
        server.log()
    });
    check_switches(&r, 1.0, &|| {
        format!("{log}\n--- server ---\n{}", server.log())
    });
}

/// What the `switch` scenario must show: asking for 180 gives at most 180
/// lines, 720 (the top layer as the publisher sends it: [`at_top`]) comes
/// within 3 s of asking, and ten switches keep one SSRC, never freeze for
/// `max_freeze_s` in total (a second on one bridge) but where the publisher
/// itself was short of frames ([`sender_short_freeze`]), ask for a few
/// keyframes per request at most, keep frames coming (over 10 a second of
/// the camera's 15) and really alternate.
///
/// (For failure messages: [`freeze_by_request`] says which switch froze.)
pub(crate) fn check_switches(r: &Value, max_freeze_s: f64, context: &dyn Fn() -> String) {
    // asking for 180: frames of at most 180 lines
    let small = between_marks(r, "max_height 180");
    let settled: Vec<&Value> = small.iter().filter(|s| num(&s["height"]) > 0.0).collect();
    assert!(
        settled.last().is_some_and(|s| num(&s["height"]) <= 180.0),
        "{settled:?}\n{}",
        context()
    );
    // asking for 720: 720 within 3 s of asking, or of the publisher sending
    // its top layer again if it had stopped it (Chromium stops a layer its
    // encoder or its own estimate cannot afford; the SFU cannot forward
    // what does not come)
    let big = from_mark(r, "max_height 720");
    let start = big.iter().find(|s| sends_top(s)).unwrap_or(&big[0]);
    let t0 = num(&start["t"]);
    let reached = big.iter().find(|s| at_top(s));
    let took = reached.map(|s| (num(&s["t"]) - t0) / 1000.0);
    assert!(
        took.is_some_and(|t| t < 3.0),
        "720 after {took:?} s (from {:.1} s after asking); publisher's top-layer frames a second, by second: {}\n{}",
        (t0 - num(&big[0]["t"])) / 1000.0,
        sender_fps_by_second(big),
        context()
    );

    // ten switches: no freeze over 1 s in total, the SSRC never changes,
    // frames keep coming, and the heights really alternate
    let first = &big[0];
    let last = big.last().unwrap();
    let freeze = num(&last["freeze_s"]) - num(&first["freeze_s"]);
    let senders = sender_short_freeze(big);
    let summary = format!(
        "frozen {freeze:.2} s in total, {senders:.2} s of it while the publisher itself was short; \
         per request: {}; publisher's frames a second, by second: {}",
        freeze_by_request(r),
        sender_fps_by_second(big)
    );
    eprintln!("ten switches: {summary}");
    assert!(freeze - senders < max_freeze_s, "{summary}\n{}", context());
    // a switch asks for one keyframe (a lost or slow one again): a few per
    // request, not a storm that would starve the publisher's encoder
    let requests = r["marks"].as_array().map_or(0, |m| {
        m.iter()
            .filter(|m| {
                m["what"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("max_height"))
            })
            .count()
    });
    let keyframes = num(&last["keyframes"]) - num(&first["keyframes"]);
    assert!(
        keyframes <= 3.0 * requests as f64,
        "{keyframes} keyframes decoded for {requests} requests\n{}",
        context()
    );
    let ssrcs: std::collections::BTreeSet<u64> = r["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["ssrc"].as_u64())
        .collect();
    assert_eq!(ssrcs.len(), 1, "one outgoing SSRC: {ssrcs:?}");
    let frames = num(&last["frames"]) - num(&first["frames"]);
    let seconds = (num(&last["t"]) - num(&first["t"])) / 1000.0;
    assert!(
        frames > 10.0 * seconds,
        "{frames} frames in {seconds} s\n{}",
        context()
    );
    let mut flips = 0;
    let mut high = None;
    for s in big {
        let h = num(&s["height"]);
        let now_high = if at_top(s) {
            Some(true)
        } else if h > 0.0 && h <= 180.0 {
            Some(false)
        } else {
            None
        };
        if now_high.is_some() && high.is_some() && now_high != high {
            flips += 1;
        }
        high = now_high.or(high);
    }
    assert!(flips >= 8, "{flips} layer changes seen\n{}", context());
    assert_eq!(num(&last["errors"]), 0.0, "{}", context());
}

#[test]
fn a_narrow_path_gets_the_low_layer_and_a_wide_one_the_high_layer() {
    let _turn = BROWSERS.lock().unwrap_or_else(|p| p.into_inner());
    // the publisher and the receiver in namespaces of their own, so that
    // shaping the receiver's link leaves the publisher's feedback alone
    let net = NetnsPair::with_clients(2);
    let server = NsServer::start(&net, "bandwidth");
    let (publisher_ns, receiver) = (&net.clients[0].ns, &net.clients[1]);
    let pub_log = std::env::temp_dir().join(format!("simulcast-pub-{}.log", std::process::id()));
    let mut publisher = node(publisher_ns, &server, "bandwidth", "pub")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&pub_log).unwrap())
        .spawn()
        .expect("node");
    let log_path = std::env::temp_dir().join(format!("simulcast-bw-{}.log", std::process::id()));
    let mut child = node(&receiver.ns, &server, "bandwidth", "rx")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("node");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log().contains("] ready") {
        assert!(
            Instant::now() < deadline,
            "never reached 720p:\n{}\n{}",
            log(),
            server.log()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "node exited:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut stdin = child.stdin.take().unwrap();
    let tc = |args: &[&str]| {
        let out = NetnsPair::command(&net.server_ns, "tc")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // 400 kbit/s toward the clients for 15 s, then the path opens again
    tc(&[
        "qdisc",
        "add",
        "dev",
        &receiver.server_veth,
        "root",
        "tbf",
        "rate",
        "400kbit",
        "burst",
        "16kb",
        "latency",
        "150ms",
    ]);
    writeln!(stdin, "limit").unwrap();
    std::thread::sleep(Duration::from_secs(15));
    tc(&["qdisc", "del", "dev", &receiver.server_veth, "root"]);
    writeln!(stdin, "lift").unwrap();
    std::thread::sleep(Duration::from_secs(20));
    writeln!(stdin, "done").unwrap();
    drop(stdin);
    if let Some(mut p) = publisher.stdin.take() {
        let _ = writeln!(p, "done");
    }
    let stop = Instant::now() + Duration::from_secs(30);
    while publisher.try_wait().unwrap().is_none() && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
    let out = {
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    };
    let r = parse("bandwidth", &out.stdout, &log(), &|| server.log());
    let context = || format!("{}\n--- server ---\n{}", log(), server.log());

    let limited = from_mark(&r, "limit");
    let lifted = from_mark(&r, "lift");
    let limited = &limited[..limited.len() - lifted.len()];
    let t0 = num(&limited[0]["t"]);
    let low = limited
        .iter()
        .find(|s| num(&s["height"]) > 0.0 && num(&s["height"]) <= 180.0)
        .map(|s| (num(&s["t"]) - t0) / 1000.0);
    eprintln!("low layer {low:?} s after the limit");
    assert!(
        low.is_some_and(|t| t < 5.0),
        "low layer after {low:?} s\n{}",
        context()
    );
    // once settled (the last 5 s of the limit), under 2 % loss
    let tail = &limited[limited.len().saturating_sub(20)..];
    let (a, b) = (&tail[0], tail.last().unwrap());
    let lost = num(&b["lost"]) - num(&a["lost"]);
    let received = num(&b["received"]) - num(&a["received"]);
    assert!(received > 0.0, "{}", context());
    assert!(
        lost / (lost + received) < 0.02,
        "lost {lost} of {}\n{}",
        lost + received,
        context()
    );
    assert!(
        tail.iter().all(|s| num(&s["height"]) <= 180.0),
        "stays low\n{}",
        context()
    );
    // lifted: the high layer within 15 s
    let t1 = num(&lifted[0]["t"]);
    let high = lifted
        .iter()
        .find(|s| num(&s["height"]) >= 720.0)
        .map(|s| (num(&s["t"]) - t1) / 1000.0);
    assert!(
        high.is_some_and(|t| t < 15.0),
        "high layer after {high:?} s; heights by second after the lift: {}\n{}",
        heights_by_second(lifted),
        context()
    );
}

/// Issue #15 show 4: Chromium publishes its camera as H.264 simulcast (the
/// app's `?codec=h264`) to a receiver that negotiated no H.264 of its own
/// (it sends no video: the server offers it the publisher's codec). From
/// the top layer it asks for the low layer, then the high one: each switch
/// starts at an IDR frame (the decoder's keyframe count goes up with it)
/// and ≥ 100 frames decode after each (in the 8 s each is held: the low
/// layer runs at 15–20 fps).
#[test]
fn h264_simulcast_switches_layers_at_idr_frames() {
    let _turn = BROWSERS.lock().unwrap_or_else(|p| p.into_inner());
    let net = NetnsPair::new();
    let server = NsServer::start(&net, "h264");
    let (r, log) = run_scenario(
        &net.client_ns,
        &server.https,
        "h264",
        "lowhigh",
        &["--codec", "h264"],
        &|| server.log(),
    );
    let context = || format!("{log}\n--- server ---\n{}", server.log());
    for h in [180.0, 720.0] {
        let asked = from_mark(&r, &format!("max_height {h}"));
        let held = between_marks(&r, &format!("reached {h}"));
        // (the switch may come before the first sample after the request)
        let first = before_mark(&r, &format!("max_height {h}"));
        let last = held.last().expect("samples");
        let reached = &held[0];
        assert_eq!(reached["codec"], "video/H264", "{reached}\n{}", context());
        let ok = if h < 200.0 {
            num(&reached["height"]) > 0.0 && num(&reached["height"]) <= h
        } else {
            num(&reached["height"]) >= h
        };
        assert!(ok, "{h}: {}\n{}", heights_by_second(asked), context());
        assert!(
            num(&reached["keyframes"]) > num(&first["keyframes"]),
            "the switch to {h} decoded no new keyframe: {first} → {reached}\n{}",
            context()
        );
        let frames = num(&last["frames"]) - num(&reached["frames"]);
        eprintln!("{h}: {frames} frames after the switch");
        assert!(
            frames >= 100.0,
            "{frames} frames after the switch to {h}\n{}",
            context()
        );
    }
}

/// The failure message's breakdown (no browser: samples made up).
#[test]
fn freeze_by_request_says_which_switch_froze() {
    let sample = |t: f64, height: f64, freeze_s: f64| serde_json::json!({ "t": t, "height": height, "freeze_s": freeze_s });
    let r = serde_json::json!({
        "samples": [
            sample(0.0, 720.0, 0.0), sample(250.0, 720.0, 0.0),
            sample(500.0, 720.0, 0.0), sample(750.0, 180.0, 0.0),
            sample(1000.0, 180.0, 0.0), sample(1250.0, 180.0, 1.5),
        ],
        "marks": [
            { "at": 0, "what": "publisher sends 720p" },
            { "at": 1, "what": "max_height 180" },
            { "at": 4, "what": "max_height 720" },
        ],
    });
    assert_eq!(
        freeze_by_request(&r),
        "180 → 0.50 s, +0.00 s frozen; 720 → never, +1.50 s frozen"
    );
}

/// Freezes while the publisher sent too few frames are told apart from the
/// others (no browser: samples made up).
#[test]
fn a_freeze_while_the_publisher_was_short_is_the_publishers() {
    let sample = |t: f64, freeze_s: f64, fps: f64| serde_json::json!({ "t": t, "freeze_s": freeze_s, "sent": { "fps": fps, "limit": "none" } });
    // the publisher steady: a 0.4 s freeze is the SFU's
    let steady: Vec<Value> = (0..12)
        .map(|i| sample(i as f64 * 250.0, if i >= 8 { 0.4 } else { 0.0 }, 15.0))
        .collect();
    assert_eq!(sender_short_freeze(&steady), 0.0);
    // the publisher at 9 frames a second just before it: the publisher's
    let mut short = steady.clone();
    short[6]["sent"]["fps"] = 9.0.into();
    assert_eq!(sender_short_freeze(&short), 0.4);
    // ... but not when its short second was long before the freeze
    let mut earlier = steady.clone();
    earlier[1]["sent"]["fps"] = 9.0.into();
    assert_eq!(sender_short_freeze(&earlier), 0.0);
    // Chromium saying its CPU limits the encoder counts as short
    let mut cpu = steady;
    cpu[7]["sent"]["limit"] = "cpu".into();
    assert_eq!(sender_short_freeze(&cpu), 0.4);
}
