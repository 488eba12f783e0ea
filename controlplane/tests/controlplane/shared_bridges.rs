//! Bridges shared by shards, on loopback: two `switchyard focus` shards
//! with a real `redis-server` as their registry, and bridge agents started
//! with only `--registry`, which find both shards there and serve them.

use crate::cluster::{
    LoopbackBridge, LoopbackFocus, Signalling, get_plain, join_loopback, rooms_per_bridge,
};
use crate::signalling::{expect, send};
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `redis-server` on a loopback port, killed on drop.
struct LoopbackRedis {
    child: Child,
    url: String,
    dir: std::path::PathBuf,
}

impl LoopbackRedis {
    fn start() -> LoopbackRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = crate::cluster::temp_dir("redis");
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        LoopbackRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            dir,
        }
    }
}

impl Drop for LoopbackRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Joins `room` on the shard at `http` and offers Chrome's SDP: the
/// participant's endpoint opens on a bridge. Its id and open connection.
async fn join_with_media(http: String, room: String) -> (u64, Signalling) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
        .await
        .expect("signalling");
    send(
        &mut ws,
        serde_json::json!({"v":1,"type":"join","room":room,"name":"p"}),
    )
    .await;
    let joined = expect(&mut ws, "joined").await;
    let id = joined["id"]
        .as_str()
        .and_then(|s| s.strip_prefix('p')?.parse().ok())
        .unwrap_or_else(|| panic!("{joined}"));
    send(
        &mut ws,
        serde_json::json!({"v":1,"type":"offer","sdp":crate::signalling::CHROME}),
    )
    .await;
    expect(&mut ws, "answer").await;
    (id, ws)
}

fn wait_for(within: Duration, what: &str, context: &dyn Fn() -> String, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: {}", context());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn shards_share_bridges_found_in_the_registry_and_a_dead_shard_s_endpoints_are_closed() {
    let redis = LoopbackRedis::start();
    let prefix = format!("t{}:", crate::rand_suffix());
    let registry = ["--registry", &redis.url, "--registry-prefix", &prefix];
    let shard = |id: &str| {
        let mut args = registry.to_vec();
        args.extend([
            "--shard-id",
            id,
            "--joins-per-second",
            "200",
            "--joins-per-second-per-address",
            "200",
            // (the test's participants never connect media)
            "--join-deadline",
            "300",
        ]);
        LoopbackFocus::start(&args)
    };
    let (a, b) = (shard("a"), shard("b"));
    // (every test focus writes the same secret)
    let b0 = LoopbackBridge::start_of(&a.dir, &registry, "b0", &[]);
    let context = || format!("{}\n{}\n--- b0 ---\n{}", a.log(), b.log(), b0.log());
    a.wait_registered(1);
    b.wait_registered(1);
    let health = |bridge: &LoopbackBridge| {
        let (code, body) = get_plain(&bridge.http, "/health");
        (
            code,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let (code, h) = health(&b0);
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["focus_link"], "up", "{h}");
    assert_eq!(h["focuses"].as_array().map(Vec::len), Some(2), "{h}");

    // a participant offering media on each shard: both endpoints on b0,
    // their ids apart by the shards' tags
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (id_a, _pa) = rt.block_on(join_with_media(a.http.clone(), "ra".into()));
    let (id_b, pb) = rt.block_on(join_with_media(b.http.clone(), "rb".into()));
    assert_ne!(id_a >> 40, id_b >> 40, "ids {id_a} {id_b}");
    wait_for(
        Duration::from_secs(5),
        "2 endpoints on b0",
        &context,
        || b0.stats()["endpoints"] == 2,
    );
    // the bridge's own /metrics: its dataplane, endpoints and links, valid
    // for Prometheus
    let (code, text) = get_plain(&b0.http, "/metrics");
    assert_eq!(code, 200, "{text}");
    crate::shards::promtool_check(&text);
    for (name, want) in [
        ("switchyard_dataplane_up", 1.0),
        ("switchyard_bridge_endpoints", 2.0),
        ("switchyard_bridge_focuses", 2.0),
        ("switchyard_bridge_focuses_linked", 2.0),
        ("switchyard_bridge_draining", 0.0),
    ] {
        assert_eq!(crate::shards::metric(&text, name), want, "{name}: {text}");
    }
    assert!(
        text.contains("switchyard_dataplane_relay_bytes_received_total{worker=\"0\"} 0"),
        "{text}"
    );

    // a bridge started while both shards run takes new rooms of each
    // within 2 s
    let started = Instant::now();
    let b1 = LoopbackBridge::start_of(&a.dir, &registry, "b1", &[]);
    let mut held = Vec::new();
    let mut took = [None, None];
    for n in 0.. {
        for (i, focus) in [&a, &b].into_iter().enumerate() {
            if took[i].is_some() {
                continue;
            }
            held.push(rt.block_on(join_loopback(focus.http.clone(), format!("new{i}-{n}"))));
            if rooms_per_bridge(focus).get("b1").copied().unwrap_or(0) > 0 {
                took[i] = Some(started.elapsed());
            }
        }
        if took.iter().all(Option::is_some) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{took:?}: {}\n--- b1 ---\n{}",
            context(),
            b1.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "the new bridge took a room of shard a {:?} and of shard b {:?} after it was started",
        took[0], took[1]
    );
    for t in took.into_iter().flatten() {
        assert!(t < Duration::from_secs(2), "{t:?}");
    }
    drop(held);

    // shard a dies: once the registry stops listing it, b0 closes what it
    // owned; shard b's participant stays
    let killed = Instant::now();
    let link_of = |h: &Value, focus: &LoopbackFocus| {
        let url = format!("ws://{}/cluster", focus.http);
        h["focuses"]
            .as_array()
            .and_then(|l| l.iter().find(|f| f["url"] == url.as_str()))
            .map(|f| f["link"].clone())
    };
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&a.child),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // a's link drops at once; b's stays
    wait_for(
        Duration::from_secs(3),
        "b0 sees a's link down",
        &context,
        || {
            let h = health(&b0).1;
            h["focus_link"] == "partial" && link_of(&h, &a) == Some("down".into())
        },
    );
    assert_eq!(link_of(&health(&b0).1, &b), Some("up".into()));
    wait_for(
        Duration::from_secs(25),
        "b0 closes shard a's endpoint",
        &context,
        || b0.log().contains("closed what a gone focus owned"),
    );
    eprintln!(
        "b0 closed the dead shard's endpoint {:?} after the kill",
        killed.elapsed()
    );
    // given up: one focus left, and it is linked
    let (code, h) = health(&b0);
    assert_eq!((code, &h["focus_link"]), (200, &Value::from("up")), "{h}");
    assert_eq!(h["focuses"].as_array().map(Vec::len), Some(1), "{h}");
    wait_for(Duration::from_secs(3), "1 endpoint on b0", &context, || {
        b0.stats()["endpoints"] == 1
    });
    // and b still hears b0 (its heartbeats went on throughout)
    let listed = b.bridges();
    assert!(
        listed["bridges"].as_array().is_some_and(|l| l
            .iter()
            .any(|x| x["id"] == "b0" && x["heard_ms_ago"].as_u64() < Some(2_000))),
        "{listed}"
    );
    drop(pb);
}
