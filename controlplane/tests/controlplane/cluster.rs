//! Many bridges: a focus (`switchyard focus`) and bridge agents
//! (`switchyard bridge`), each in a network namespace of its own that the
//! test makes, joined by one /24. Real browsers call through them; the
//! cluster protocol is attacked with a real WebSocket client.

use crate::browser::call_in_at;
use crate::netns::{NetnsPair, dataplane_in};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// One `switchyard` role in a namespace, stopped on drop (SIGTERM twice:
/// drain, then stop now).
pub struct NsRole {
    child: Child,
    pub ns: String,
    /// Its HTTP address (`ip:port`).
    pub http: String,
    /// Its HTTPS URL, for a focus.
    pub https: Option<String>,
    pub dir: PathBuf,
    name: String,
    args: Vec<String>,
}

/// A cluster secret file in `dir`.
pub fn secret_file(dir: &Path) -> PathBuf {
    let p = dir.join("cluster.secret");
    std::fs::write(&p, "a test cluster secret, 41 bytes long ok\n").unwrap();
    p
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "swyd-cl-{name}-{}-{}",
        std::process::id(),
        super::rand_suffix()
    ));
    switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
    dir
}

impl NsRole {
    /// `switchyard focus` on `ip` (HTTP 8080, HTTPS 8443).
    pub fn focus(ns: &str, ip: &str, secret: &Path, extra: &[&str]) -> NsRole {
        let dir = temp_dir("focus");
        let mut args: Vec<String> = vec![
            "focus".into(),
            "--http".into(),
            format!("{ip}:8080"),
            "--https".into(),
            format!("{ip}:8443"),
            "--open-rooms".into(),
            "--cluster-secret-file".into(),
            secret.display().to_string(),
            "--state-dir".into(),
            dir.display().to_string(),
            "--log".into(),
            "info,switchyard::alloc=debug".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        NsRole::spawn(ns, "focus", &args, dir, format!("{ip}:8080"))
    }

    /// `switchyard bridge` with id `id` on `ip` (HTTP 8081, media UDP
    /// 10000), joining the focus at `focus_ip`.
    pub fn bridge(
        ns: &str,
        id: &str,
        ip: &str,
        focus_ip: &str,
        secret: &Path,
        extra: &[&str],
    ) -> NsRole {
        let focus = format!("ws://{focus_ip}:8080/cluster");
        NsRole::bridge_of(ns, id, ip, &["--focus", &focus], secret, extra)
    }

    /// `switchyard bridge` with id `id` on `ip` (HTTP 8081, media UDP
    /// 10000) serving the focuses `link` names (`--focus …` or
    /// `--registry …`).
    pub fn bridge_of(
        ns: &str,
        id: &str,
        ip: &str,
        link: &[&str],
        secret: &Path,
        extra: &[&str],
    ) -> NsRole {
        let dir = temp_dir(id);
        let mut args: Vec<String> = vec!["bridge".into()];
        args.extend(link.iter().map(|s| s.to_string()));
        args.extend([
            "--cluster-secret-file".into(),
            secret.display().to_string(),
            "--bridge-id".into(),
            id.into(),
            "--http".into(),
            format!("{ip}:8081"),
            "--bind".into(),
            ip.into(),
            "--base-port".into(),
            "10000".into(),
            "--workers".into(),
            "1".into(),
            "--control-socket".into(),
            dir.join("dp.sock").display().to_string(),
            "--log".into(),
            "info,switchyard::io=warn".into(),
        ]);
        if !extra.contains(&"--drain-timeout") {
            args.extend(["--drain-timeout".into(), "2s".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        NsRole::spawn(ns, id, &args, dir, format!("{ip}:8081"))
    }

    /// `switchyard focus` called `name` on `ip`: HTTP (and `/cluster`) on
    /// `http_port`, no HTTPS — one shard of several.
    pub fn shard_focus(
        ns: &str,
        name: &str,
        ip: &str,
        http_port: u16,
        secret: &Path,
        extra: &[&str],
    ) -> NsRole {
        let dir = temp_dir(name);
        let mut args: Vec<String> = vec![
            "focus".into(),
            "--http".into(),
            format!("{ip}:{http_port}"),
            "--https".into(),
            "off".into(),
            "--open-rooms".into(),
            "--cluster-secret-file".into(),
            secret.display().to_string(),
            "--state-dir".into(),
            dir.display().to_string(),
            "--log".into(),
            "info".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        NsRole::spawn(ns, name, &args, dir, format!("{ip}:{http_port}"))
    }

    /// Plain `switchyard` (focus and bridge in one) called `name` on `ip`:
    /// HTTP on `http_port`, no HTTPS, media UDP from `base_port`, ICE-TCP on
    /// `base_port + 50` (several on one address must not all take 4443).
    pub fn plain(
        ns: &str,
        name: &str,
        ip: &str,
        http_port: u16,
        base_port: u16,
        extra: &[&str],
    ) -> NsRole {
        let dir = temp_dir(name);
        let mut args: Vec<String> = [
            "--http",
            &format!("{ip}:{http_port}"),
            "--https",
            "off",
            "--bind",
            ip,
            "--base-port",
            &base_port.to_string(),
            "--ice-tcp-port",
            &(base_port + 50).to_string(),
            "--workers",
            "1",
            "--open-rooms",
            "--log",
            "info,switchyard::io=warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (flag, path) in [
            ("--state-dir", dir.clone()),
            ("--control-socket", dir.join("dp.sock")),
        ] {
            args.push(flag.into());
            args.push(path.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        NsRole::spawn(ns, name, &args, dir, format!("{ip}:{http_port}"))
    }

    fn spawn(ns: &str, name: &str, args: &[String], dir: PathBuf, http: String) -> NsRole {
        let (child, https) = NsRole::start_child(ns, name, args, &dir);
        NsRole {
            child,
            ns: ns.to_string(),
            http,
            https,
            dir,
            name: name.to_string(),
            args: args.to_vec(),
        }
    }

    /// Starts the process, its log appended to `dir`/log; returns once it
    /// printed its banner (with the HTTPS URL, for a focus).
    fn start_child(ns: &str, name: &str, args: &[String], dir: &Path) -> (Child, Option<String>) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .unwrap();
        let mut child = NetnsPair::command(ns, env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start switchyard");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut https = None;
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        if name == "focus" {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            https = line
                .split("https://")
                .nth(1)
                .map(|r| format!("https://{}", r.split('/').next().unwrap_or("")));
        }
        // whoever started us may stop reading: keep the pipe drained
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        (child, https)
    }

    /// SIGKILL, then the same command again at once.
    pub fn kill_and_restart(&mut self) {
        self.signal(rustix::process::Signal::KILL);
        let _ = self.wait_exit(Duration::from_secs(5));
        let (child, _) = NsRole::start_child(&self.ns, &self.name, &self.args, &self.dir);
        self.child = child;
    }

    /// GET `path` from inside its namespace: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        get_in(&self.ns, &self.http, path)
    }

    /// GET `path` as JSON (`Null` when it does not answer).
    pub fn json(&self, path: &str) -> Value {
        serde_json::from_str(&self.get(path).1).unwrap_or(Value::Null)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        format!("--- {} ---\n{text}", self.name)
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let _ =
            rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), signal);
    }

    /// Waits up to `within` for it to exit; its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for NsRole {
    fn drop(&mut self) {
        for _ in 0..2 {
            self.signal(rustix::process::Signal::TERM);
            if self.wait_exit(Duration::from_secs(5)).is_some() {
                break;
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // a dataplane outlives its bridge agent when that was killed (as it
        // should): the test that started it ends it
        if let Some(pid) =
            dataplane_in(&self.dir).and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        if let Some(keep) = std::env::var_os("SWITCHYARD_KEEP_LOGS") {
            let name = self.dir.file_name().unwrap_or_default().to_owned();
            let _ = std::fs::copy(
                self.dir.join("log"),
                Path::new(&keep).join(name).with_extension("log"),
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Moves the calling thread into network namespace `ns`.
pub fn enter(ns: &str) {
    let fd = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace");
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&fd),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .expect("setns");
}

/// From inside namespace `ns`: joins `room` through the focus's signalling
/// at `http`, and while joined, reads the focus's `/bridges`.
fn join_in(ns: &str, http: &str, room: &str) -> (String, Value) {
    let (ns, http, room) = (ns.to_string(), http.to_string(), room.to_string());
    std::thread::spawn(move || {
        enter(&ns);
        let (mut ws, _) =
            tokio_tungstenite::tungstenite::connect(format!("ws://{http}/ws")).expect("signalling");
        let join = format!(r#"{{"v":1,"type":"join","room":"{room}","name":"late"}}"#);
        ws.send(tokio_tungstenite::tungstenite::Message::Text(join.into()))
            .unwrap();
        let answer = ws.read().map(|m| m.to_string()).unwrap_or_default();
        let (_, body) = get_plain(&http, "/bridges");
        (answer, serde_json::from_str(&body).unwrap_or(Value::Null))
    })
    .join()
    .unwrap()
}

/// GET `http://{addr}{path}` from a thread inside namespace `ns`.
pub fn get_in(ns: &str, addr: &str, path: &str) -> (u16, String) {
    let (ns, addr, path) = (ns.to_string(), addr.to_string(), path.to_string());
    std::thread::spawn(move || {
        enter(&ns);
        super::http_get(&addr, &path)
    })
    .join()
    .unwrap_or((0, String::new()))
}

/// Waits until the focus lists `n` healthy bridges; its `/bridges`.
pub fn wait_bridges(
    focus: &NsRole,
    n: usize,
    within: Duration,
    logs: &dyn Fn() -> String,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let b = focus.json("/bridges");
        let healthy = b["bridges"]
            .as_array()
            .map_or(0, |l| l.iter().filter(|b| b["healthy"] == true).count());
        if healthy == n {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "{healthy} of {n} bridges registered: {b}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The focus's log, then every bridge's.
fn logs_of(focus: &NsRole, bridges: &[NsRole]) -> String {
    let mut s = focus.log();
    for b in bridges {
        s.push_str(&b.log());
    }
    s
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A focus in the test's server namespace and bridge agents `b0`, `b1`, …
/// in the first client namespaces, all registered; the client namespace
/// after them is for browsers.
struct Cluster {
    net: NetnsPair,
    focus: NsRole,
    bridges: Vec<NsRole>,
    /// Holds the secret file (bridges read it again when restarted).
    secret_dir: PathBuf,
}

fn cluster(bridges: usize, bridge_extra: &[&str]) -> Cluster {
    let net = NetnsPair::with_clients(bridges + 1);
    let secret_dir = temp_dir("secret");
    let secret = secret_file(&secret_dir);
    let focus = NsRole::focus(&net.server_ns, &net.server_ip, &secret, &[]);
    let bridges: Vec<NsRole> = (0..bridges)
        .map(|i| {
            let c = &net.clients[i];
            let id = format!("b{i}");
            NsRole::bridge(&c.ns, &id, &c.ip, &net.server_ip, &secret, bridge_extra)
        })
        .collect();
    let logs = || logs_of(&focus, &bridges);
    wait_bridges(&focus, bridges.len(), Duration::from_secs(20), &logs);
    Cluster {
        net,
        focus,
        bridges,
        secret_dir,
    }
}

#[test]
fn three_browsers_in_one_room_land_on_one_of_two_bridges_and_see_each_other() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Cluster {
        net,
        focus,
        bridges,
        secret_dir: _secret,
    } = cluster(2, &[]);
    let logs = || logs_of(&focus, &bridges);
    let https = focus.https.clone().expect("the focus prints its HTTPS URL");
    // what the focus and the bridges report while the call runs: the most
    // participants seen per bridge
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let (ns, http) = (focus.ns.clone(), focus.http.clone());
        let agents: Vec<(String, String)> = bridges
            .iter()
            .map(|b| (b.ns.clone(), b.http.clone()))
            .collect();
        std::thread::spawn(move || {
            let mut most = std::collections::BTreeMap::<String, (u64, u64, u64)>::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let listed: Value =
                    serde_json::from_str(&get_in(&ns, &http, "/bridges").1).unwrap_or(Value::Null);
                for (b, (ans, ahttp)) in listed["bridges"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .zip(&agents)
                {
                    let endpoints = serde_json::from_str::<Value>(&get_in(ans, ahttp, "/stats").1)
                        .map_or(0, |v| num(&v["endpoints"]));
                    let e = most
                        .entry(b["id"].as_str().unwrap_or("").to_string())
                        .or_default();
                    e.0 = e.0.max(num(&b["rooms"]));
                    e.1 = e.1.max(num(&b["participants"]));
                    e.2 = e.2.max(endpoints);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            most
        })
    };
    let r = call_in_at(
        &net.clients[2].ns,
        &https,
        &[
            "--room",
            "bridged",
            "--names",
            "Ada,Bo,Cy",
            "--min-frames",
            "100",
            "--timeout",
            "30",
            "--camera",
            "320x180",
        ],
        "cluster-call",
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let context = || format!("report: {r:#}\n{}", logs());
    for name in ["Ada", "Bo", "Cy"] {
        let p = &r["participants"][name];
        assert_eq!(p["state"], "connected", "{name}: {}", context());
        let remotes = p["remotes"].as_object().expect("remotes");
        assert_eq!(remotes.len(), 2, "{name} sees two others: {}", context());
        for (id, rx) in remotes {
            assert!(
                num(&rx["video_frames"]) >= 100,
                "{name} ← {id}: {}",
                context()
            );
            assert!(
                num(&rx["audio_packets"]) > 0,
                "{name} ← {id}: {}",
                context()
            );
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    // the whole room on one bridge, nothing on the other: (rooms,
    // participants) as the focus lists them, endpoints as the bridge does
    let mut seen: Vec<(u64, u64, u64)> = most.values().copied().collect();
    seen.sort();
    assert_eq!(seen, [(0, 0, 0), (1, 3, 3)], "{most:?}\n{}", context());
}

#[test]
fn a_killed_bridge_moves_its_call_to_the_other_and_the_browsers_carry_on() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Cluster {
        net,
        focus,
        mut bridges,
        secret_dir: _secret,
    } = cluster(2, &[]);
    let logs = |bridges: &[NsRole]| logs_of(&focus, bridges);
    let https = focus.https.clone().expect("the focus prints its HTTPS URL");
    let mut killed = None;
    let report = crate::browser::call_through_in(
        &net.clients[2].ns,
        &https,
        &|| focus.log(),
        "moved",
        "Ada,Bo,Cy",
        (10, 0),
        || {
            let listed = focus.json("/bridges");
            let carrying = listed["bridges"]
                .as_array()
                .unwrap()
                .iter()
                .position(|b| num(&b["participants"]) == 3)
                .expect("one bridge carries the call");
            let id = listed["bridges"][carrying]["id"]
                .as_str()
                .unwrap()
                .to_string();
            let b = bridges.iter().position(|b| b.name == id).unwrap();
            bridges[b].signal(rustix::process::Signal::KILL);
            killed = Some(b);
        },
    );
    let killed = killed.expect("a bridge was killed");
    let _ = bridges[killed].wait_exit(Duration::from_secs(5));
    let context = || format!("report: {report:#}\n{}", logs(&bridges));
    let watch = report["watch"].as_object().expect("watch report");
    let streams: Vec<_> = watch.iter().filter(|(k, _)| k.contains("<-")).collect();
    assert_eq!(streams.len(), 6, "{}", context());
    for (key, w) in streams {
        assert_eq!(w["state"], "connected", "{key}: {}", context());
        let frames = num(&w["frames_gained"]);
        assert!(
            frames >= 50,
            "{key}: {frames} frames in the 10 s after the kill: {}",
            context()
        );
    }
    for name in ["Ada", "Bo", "Cy"] {
        let page = &watch[name];
        assert_eq!(page["moves"], 1, "{name} moved once: {}", context());
        assert_eq!(
            page["rejoins"],
            0,
            "{name} kept its participant id: {}",
            context()
        );
    }
    // the call is on the other bridge now
    let listed = focus.json("/bridges");
    let ids: Vec<&str> = listed["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, [bridges[1 - killed].name.as_str()], "{listed}");
}

#[test]
fn a_draining_bridge_takes_no_new_room_and_moves_its_call_at_the_timeout() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Cluster {
        net,
        focus,
        mut bridges,
        secret_dir: _secret,
    } = cluster(2, &["--drain-timeout", "30s"]);
    let logs = |bridges: &[NsRole]| logs_of(&focus, bridges);
    let https = focus.https.clone().expect("the focus prints its HTTPS URL");
    let mut drained: Option<(usize, Instant)> = None;
    let mut late = None;
    let browsers_ns = net.clients[2].ns.clone();
    let report = crate::browser::call_through_in(
        &browsers_ns,
        &https,
        &|| focus.log(),
        "drained",
        "Ada,Bo",
        (40, 0),
        || {
            let listed = focus.json("/bridges");
            let carrying = listed["bridges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| num(&b["participants"]) == 2)
                .and_then(|b| b["id"].as_str())
                .expect("one bridge carries the call")
                .to_string();
            let b = bridges.iter().position(|b| b.name == carrying).unwrap();
            bridges[b].signal(rustix::process::Signal::TERM);
            drained = Some((b, Instant::now()));
            // once the focus heard it, a new room goes to the other bridge
            std::thread::sleep(Duration::from_millis(2500));
            late = Some(join_in(&browsers_ns, &focus.http, "after-drain"));
        },
    );
    let (b, at) = drained.expect("a bridge was drained");
    let status = bridges[b].wait_exit(Duration::from_secs(30));
    let exited_after = at.elapsed();
    let context = || format!("report: {report:#}\n{}", logs(&bridges));
    let (joined, listed) = late.unwrap();
    assert!(joined.contains("\"joined\""), "{joined}\n{}", context());
    let draining = &bridges[b].name;
    for bridge in listed["bridges"].as_array().unwrap() {
        let (rooms, mine) = (num(&bridge["rooms"]), bridge["id"] == draining.as_str());
        assert_eq!(bridge["draining"], mine, "{listed}");
        assert_eq!(
            rooms, 1,
            "the call's room and the new one on the other bridge: {listed}"
        );
    }
    // the call went on through the 30 s drain without a reconnect, moved
    // once at the timeout, and decoded again within a few seconds
    let watch = report["watch"].as_object().expect("watch report");
    for (key, w) in watch.iter().filter(|(k, _)| k.contains("<-")) {
        assert_eq!(w["state"], "connected", "{key}: {}", context());
        let (stall, from) = (num(&w["stall_ms"]), num(&w["stall_from_ms"]));
        assert!(stall < 5_000, "{key}: stalled {stall} ms: {}", context());
        assert!(
            stall < 1_000 || from >= 28_000,
            "{key}: a {stall} ms stall {from} ms into the drain, before its timeout: {}",
            context()
        );
        assert!(num(&w["frames_gained"]) >= 400, "{key}: {}", context());
    }
    for name in ["Ada", "Bo"] {
        assert_eq!(watch[name]["moves"], 1, "{name}: {}", context());
        assert_eq!(watch[name]["rejoins"], 0, "{name}: {}", context());
    }
    // and the drained bridge left, with status 0, within 5 s of asking for
    // its rooms to move (by its own log's clock)
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?} {exited_after:?}: {}",
        context()
    );
    let log = bridges[b].log();
    let when = |what: &str| {
        log.lines()
            .find(|l| l.contains(what))
            .and_then(seconds_of_day)
            .unwrap_or_else(|| panic!("no {what:?} in the log: {log}"))
    };
    let (asked, stopped) = (when("to move the rooms left"), when("bridge stopped"));
    assert!(
        stopped - asked < 5.0,
        "stopped {:.1} s after asking: {log}",
        stopped - asked
    );
}

/// The time of day (seconds) a log line starts with
/// (`2026-11-30T23:33:47.329432Z …`).
fn seconds_of_day(line: &str) -> Option<f64> {
    let time = line.split('T').nth(1)?.split('Z').next()?;
    let mut parts = time.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

#[test]
fn media_flows_on_for_30_s_after_the_focus_is_killed() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Cluster {
        net,
        focus,
        bridges,
        secret_dir: _secret,
    } = cluster(2, &[]);
    let logs = || logs_of(&focus, &bridges);
    let https = focus.https.clone().expect("the focus prints its HTTPS URL");
    let report = crate::browser::call_through_in(
        &net.clients[2].ns,
        &https,
        &logs,
        "headless",
        "Ada,Bo",
        (30, 0),
        || focus.signal(rustix::process::Signal::KILL),
    );
    let context = || format!("report: {report:#}\n{}", logs());
    let watch = report["watch"].as_object().expect("watch report");
    let streams: Vec<_> = watch.iter().filter(|(k, _)| k.contains("<-")).collect();
    assert_eq!(streams.len(), 2, "{}", context());
    for (key, w) in streams {
        // frames kept coming the whole 30 s: no gap over 2 s, and plenty
        let stall = num(&w["stall_ms"]);
        assert!(stall < 2_000, "{key}: stalled {stall} ms: {}", context());
        assert!(num(&w["frames_gained"]) >= 300, "{key}: {}", context());
    }
}

#[test]
fn a_bridge_killed_and_started_again_carries_its_call_on_without_a_move() {
    let _turn = crate::netns::BROWSERS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Cluster {
        net,
        focus,
        mut bridges,
        secret_dir: _secret,
    } = cluster(1, &[]);
    let mut bridge = bridges.remove(0);
    let logs = |b: &NsRole| format!("{}{}", focus.log(), b.log());
    let https = focus.https.clone().expect("the focus prints its HTTPS URL");
    let report = crate::browser::call_through_in(
        &net.clients[1].ns,
        &https,
        &|| focus.log(),
        "restarted",
        "Ada,Bo",
        (15, 0),
        || bridge.kill_and_restart(),
    );
    let context = || format!("report: {report:#}\n{}", logs(&bridge));
    let watch = report["watch"].as_object().expect("watch report");
    for (key, w) in watch.iter().filter(|(k, _)| k.contains("<-")) {
        assert_eq!(w["state"], "connected", "{key}: {}", context());
        assert!(num(&w["stall_ms"]) < 2_000, "{key}: {}", context());
        assert!(num(&w["frames_gained"]) >= 150, "{key}: {}", context());
    }
    for name in ["Ada", "Bo"] {
        assert_eq!(watch[name]["moves"], 0, "{name} stayed: {}", context());
        assert_eq!(watch[name]["rejoins"], 0, "{name}: {}", context());
    }
    let log = bridge.log();
    assert!(
        log.contains("carried on the saved endpoints"),
        "the new agent took the endpoints over: {}",
        context()
    );
    // still there, and the focus still places on it
    let listed = focus.json("/bridges");
    assert_eq!(listed["bridges"][0]["healthy"], true, "{listed}");
}

/// A focus on loopback (HTTP on an OS port, no HTTPS), for protocol tests.
pub(crate) struct LoopbackFocus {
    pub(crate) child: Child,
    pub(crate) http: String,
    pub(crate) dir: PathBuf,
}

impl LoopbackFocus {
    pub(crate) fn start(extra: &[&str]) -> LoopbackFocus {
        let dir = temp_dir("lofocus");
        let secret = secret_file(&dir);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["focus", "--http", "127.0.0.1:0", "--https", "off"])
            .arg("--cluster-secret-file")
            .arg(&secret)
            .arg("--state-dir")
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("start the focus");
        let http = super::banner_http(&mut child);
        LoopbackFocus { child, http, dir }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    pub(crate) fn bridges(&self) -> Value {
        let (_, body) = get_plain(&self.http, "/bridges");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Waits up to 20 s until `n` bridges registered.
    pub(crate) fn wait_registered(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while rooms_per_bridge(self).len() < n {
            assert!(
                Instant::now() < deadline,
                "{n} bridges did not register:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LoopbackFocus {
    fn drop(&mut self) {
        super::stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bridge on loopback (media and HTTP on OS ports) joined to `focus`.
pub(crate) struct LoopbackBridge {
    child: Child,
    dir: PathBuf,
    /// Its HTTP listener.
    pub(crate) http: String,
}

impl LoopbackBridge {
    fn start(focus: &LoopbackFocus, id: &str, extra: &[&str]) -> LoopbackBridge {
        let url = format!("ws://{}/cluster", focus.http);
        LoopbackBridge::start_of(&focus.dir, &["--focus", &url], id, extra)
    }

    /// A bridge serving the focuses `link` names (`--focus …` or
    /// `--registry …`), with the cluster secret in `secret_dir`.
    pub(crate) fn start_of(
        secret_dir: &Path,
        link: &[&str],
        id: &str,
        extra: &[&str],
    ) -> LoopbackBridge {
        let dir = temp_dir(id);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("bridge")
            .args(link)
            .arg("--cluster-secret-file")
            .arg(secret_dir.join("cluster.secret"))
            .args([
                "--bridge-id",
                id,
                "--http",
                "127.0.0.1:0",
                "--base-port",
                "0",
                "--ice-tcp-port",
                "0",
            ])
            .args(["--workers", "1", "--drain-timeout", "1s", "--log", "info"])
            .arg("--control-socket")
            .arg(dir.join("dp.sock"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("start a bridge");
        let http = super::banner_http(&mut child);
        LoopbackBridge { child, dir, http }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Its `/stats`.
    pub(crate) fn stats(&self) -> Value {
        let (_, body) = get_plain(&self.http, "/stats");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }
}

impl Drop for LoopbackBridge {
    fn drop(&mut self) {
        super::stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn get_plain(addr: &str, path: &str) -> (u16, String) {
    super::http_get(addr, path)
}

/// Rooms per bridge as the focus lists them, by bridge id.
pub(crate) fn rooms_per_bridge(focus: &LoopbackFocus) -> std::collections::BTreeMap<String, u64> {
    focus.bridges()["bridges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| (b["id"].as_str().unwrap_or("").to_string(), num(&b["rooms"])))
        .collect()
}

pub(crate) type Signalling =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A participant joined to `room` through the focus at `http`, its
/// connection held open.
pub(crate) async fn join_loopback(http: String, room: String) -> Signalling {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
        .await
        .expect("signalling");
    let join = format!(r#"{{"v":1,"type":"join","room":"{room}","name":"p"}}"#);
    ws.send(Message::Text(join.into())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"joined\"") => ws,
        other => panic!("join {room}: {other:?}"),
    }
}

#[test]
fn a_bridge_started_while_the_cluster_runs_takes_new_rooms_within_2_s() {
    let focus = LoopbackFocus::start(&[
        "--joins-per-second",
        "200",
        "--joins-per-second-per-address",
        "200",
    ]);
    let _b0 = LoopbackBridge::start(&focus, "b0", &[]);
    focus.wait_registered(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut held = vec![rt.block_on(join_loopback(focus.http.clone(), "before".into()))];
    // a new bridge; new rooms, one every 100 ms, until one lands on it
    let started = Instant::now();
    let _b1 = LoopbackBridge::start(&focus, "b1", &[]);
    let mut n = 0;
    let took = loop {
        n += 1;
        held.push(rt.block_on(join_loopback(focus.http.clone(), format!("new{n}"))));
        if rooms_per_bridge(&focus).get("b1").copied().unwrap_or(0) > 0 {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no room on the new bridge: {}\n{}",
            focus.bridges(),
            focus.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("the new bridge took a room {took:?} after it was started");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // and the registry lists both (refreshed every second), for the
    // cluster's totals
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (_, metrics) = get_plain(&focus.http, "/metrics");
        if metrics.contains("switchyard_cluster_bridges 2") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
}

#[test]
fn rooms_spread_over_bridges_and_a_stressed_one_gets_none() {
    let focus = LoopbackFocus::start(&[
        "--joins-per-second",
        "200",
        "--joins-per-second-per-address",
        "200",
    ]);
    // b0's capacity is tiny, so a trickle of packets makes it look full
    let _b0 = LoopbackBridge::start(&focus, "b0", &["--worker-capacity-pps", "20"]);
    let _b1 = LoopbackBridge::start(&focus, "b1", &[]);
    focus.wait_registered(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let join = |room: String| join_loopback(focus.http.clone(), room);
    // 20 two-person rooms
    let mut held = Vec::new();
    rt.block_on(async {
        for r in 0..20 {
            for _ in 0..2 {
                held.push(join(format!("spread{r}")).await);
            }
        }
    });
    let spread = rooms_per_bridge(&focus);
    for (id, n) in &spread {
        assert!(
            (7..=13).contains(n),
            "{id}: {n} rooms: {spread:?}\n{}",
            focus.log()
        );
    }
    assert_eq!(
        spread.values().sum::<u64>(),
        20,
        "no room split: {spread:?}"
    );
    // b0 gets busy: packets at its media port until it reports stress ≥ 0.9
    let port = focus.bridges()["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "b0")
        .and_then(|b| b["ports"][0].as_u64())
        .expect("b0's port") as u16;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for _ in 0..20 {
            let _ = sock.send_to(&[0x80; 40], ("127.0.0.1", port));
        }
        let stress = focus.bridges()["bridges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == "b0")
            .and_then(|b| b["stress"].as_f64())
            .unwrap_or(0.0);
        if stress >= 0.9 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b0 never reported stress ≥ 0.9: {}",
            focus.bridges()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rt.block_on(async {
        for r in 0..10 {
            held.push(join(format!("busy{r}")).await);
        }
    });
    let after = rooms_per_bridge(&focus);
    assert_eq!(
        after["b0"], spread["b0"],
        "no new room on the stressed bridge: {after:?}"
    );
    assert_eq!(after["b1"], spread["b1"] + 10, "{after:?}");
    drop(held);
}

mod protocol {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use switchyard_controlplane::cluster::auth::{Secret, Session};
    use switchyard_controlplane::cluster::handshake::{AgentHandshake, seal};
    use switchyard_controlplane::cluster::wire::{Up, WorkerInfo};
    use tokio_tungstenite::tungstenite::Message;

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    const SECRET: &[u8] = b"a test cluster secret, 41 bytes long ok";

    async fn connect(http: &str) -> Ws {
        tokio_tungstenite::connect_async(format!("ws://{http}/cluster"))
            .await
            .expect("connect")
            .0
    }

    /// The next text frame, `None` once the focus closed the link.
    async fn next(ws: &mut Ws) -> Option<String> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(_) => return None,
                Err(_) => panic!("the focus neither answered nor closed in 5 s"),
            }
        }
    }

    /// Runs the handshake as `id` with `secret`: the session, or the
    /// focus's refusal.
    async fn handshake(ws: &mut Ws, id: &str, secret: &[u8]) -> Result<Session, String> {
        let challenge = next(ws).await.expect("challenge");
        let (hs, hello) =
            AgentHandshake::on_challenge(Secret::new(secret).unwrap(), id, &challenge).unwrap();
        ws.send(Message::Text(hello.into())).await.unwrap();
        let answer = next(ws).await.unwrap_or_default();
        hs.on_welcome(&answer).map_err(|e| e.reason)
    }

    fn register() -> Up {
        Up::Register {
            region: None,
            version: env!("CARGO_PKG_VERSION").into(),
            workers: vec![WorkerInfo { port: 10000 }],
            advertise: vec!["192.0.2.1".parse().unwrap()],
            ice_tcp_port: None,
            fingerprint: format!("sha-256 {}", vec!["AB"; 32].join(":")),
            endpoints: vec![],
        }
    }

    fn heartbeat() -> Up {
        Up::Heartbeat {
            stress: 0.1,
            endpoints: 0,
            draining: false,
            dataplane_up: true,
        }
    }

    #[test]
    fn wrong_secrets_garbage_and_stolen_ids_are_refused_and_the_cluster_goes_on() {
        let focus = LoopbackFocus::start(&[]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listed = rt.block_on(async {
            // a genuine agent registers and heartbeats
            let mut good = connect(&focus.http).await;
            let mut session = handshake(&mut good, "b1", SECRET).await.expect("welcome");
            let frame = seal(&mut session, register()).unwrap();
            good.send(Message::Text(frame.into())).await.unwrap();
            let beat = |s: &mut Session| Message::Text(seal(s, heartbeat()).unwrap().into());
            good.send(beat(&mut session)).await.unwrap();

            // another secret
            let mut ws = connect(&focus.http).await;
            let refused = handshake(&mut ws, "b2", b"not the cluster secret at all").await;
            assert!(refused.unwrap_err().contains("bad_proof"));
            // another agent claiming b1, or the in-process bridge's id
            for id in ["b1", "local"] {
                let mut ws = connect(&focus.http).await;
                let refused = handshake(&mut ws, id, SECRET).await;
                assert!(refused.unwrap_err().contains("id_in_use"), "{id}");
            }
            // garbage instead of hello, a binary frame, an oversized frame
            for garbage in [
                Message::Text("{\"type\":\"hello\"".into()),
                Message::Binary(vec![0u8; 64].into()),
                Message::Text("x".repeat(200_000).into()),
            ] {
                let mut ws = connect(&focus.http).await;
                next(&mut ws).await.expect("challenge");
                let _ = ws.send(garbage).await;
                let answer = next(&mut ws).await;
                assert!(
                    answer.as_deref().is_none_or(|a| a.contains("\"refused\"")),
                    "{answer:?}"
                );
                assert!(next(&mut ws).await.is_none(), "closed after a refusal");
            }
            // an agent that authenticated but sends a frame with a bad MAC
            let mut rogue = connect(&focus.http).await;
            let mut s2 = handshake(&mut rogue, "b3", SECRET).await.expect("welcome");
            let frame = seal(&mut s2, register()).unwrap();
            rogue.send(Message::Text(frame.into())).await.unwrap();
            let forged = seal(&mut s2, heartbeat()).unwrap().replace("0.1", "0.0");
            rogue.send(Message::Text(forged.into())).await.unwrap();
            assert!(next(&mut rogue).await.is_none(), "cut off");

            // the genuine agent is still there
            for _ in 0..3 {
                good.send(beat(&mut session)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let listed = focus.bridges();
            // a focus is healthy while a bridge can take rooms
            assert_eq!(get_plain(&focus.http, "/health").0, 200);
            drop(good);
            listed
        });
        let healthy: Vec<&str> = listed["bridges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["healthy"] == true)
            .filter_map(|b| b["id"].as_str())
            .collect();
        assert_eq!(healthy, ["b1"], "{listed}\n{}", focus.log());
        let log = focus.log();
        for reason in ["bad_proof", "id_in_use", "bad_message", "bridge link cut"] {
            assert!(log.contains(reason), "{reason} logged:\n{log}");
        }
        // and none can once the genuine one's link is gone
        let deadline = Instant::now() + Duration::from_secs(5);
        while get_plain(&focus.http, "/health").0 != 503 {
            assert!(Instant::now() < deadline, "{}", focus.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
