//! `switchyard` runs its dataplane, restarts it when it dies, and stops it
//! on SIGTERM.

use crate::Server;
use std::time::{Duration, Instant};

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn runs_restarts_and_stops_its_dataplane() {
    let mut server = Server::start();
    let health = server.healthy(Duration::from_secs(30));
    assert_eq!(health["dataplane"]["workers"], 1);
    assert_eq!(health["dataplane_starts"], 1);
    let pid = health["dataplane_pid"].as_u64().unwrap() as u32;
    let boot = health["dataplane"]["boot_id"].as_u64().unwrap();
    let (status, stats) = server.get("/stats");
    assert_eq!(status, 200);
    assert!(stats.contains("\"rx_packets\""), "{stats}");
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("switchyard_dataplane_up 1"), "{metrics}");
    assert!(
        metrics.contains("switchyard_dataplane_drops_total{worker=\"0\",reason=\"auth_failed\"} 0"),
        "{metrics}"
    );
    // the classic text format (no Accept header asked for OpenMetrics)
    assert!(
        metrics.contains("# TYPE switchyard_dataplane_drops_total counter"),
        "{metrics}"
    );

    // the dataplane dies: a new one is started and attached
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let h = server.healthy(Duration::from_secs(30));
        if h["dataplane"]["boot_id"].as_u64() != Some(boot) {
            break h;
        }
        assert!(Instant::now() < deadline, "dataplane was not restarted");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health["dataplane_starts"], 2);
    let new_pid = health["dataplane_pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, pid);

    // SIGTERM: both processes exit
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&server.child),
        rustix::process::Signal::TERM,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "switchyard did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(new_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_alive(new_pid), "the dataplane child stopped with it");
}

/// A second `switchyard` on the same control socket adopts the running
/// dataplane; the first one notices, stops driving it and reports itself
/// unhealthy instead of fighting over it, and its exit leaves the dataplane
/// to the second.
#[test]
fn a_second_switchyard_on_the_socket_takes_the_dataplane_over() {
    let first = Server::start();
    let pid = first.healthy(Duration::from_secs(30))["dataplane_pid"]
        .as_u64()
        .unwrap() as u32;
    let second = Server::start_on(Some(&first.dir.join("dp.sock")), &[]);
    let health = second.healthy(Duration::from_secs(30));
    assert_eq!(health["dataplane_pid"].as_u64(), Some(u64::from(pid)));
    assert_eq!(health["dataplane_starts"], 0, "adopted, not started");
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.get("/health").0 != 503 {
        assert!(
            Instant::now() < deadline,
            "the first still says it is healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(first);
    assert!(pid_alive(pid), "the first took the dataplane with it");
    second.healthy(Duration::from_secs(5));
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !pid_alive(pid),
        "the second stopped the dataplane it adopted"
    );
}
