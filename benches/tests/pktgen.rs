//! The generator against a real Switchyard (its dataplane and control plane
//! in this process, real sockets on loopback): 2 rooms × 4 participants for
//! 10 s, every stream received, nothing lost — over UDP, and over ICE-TCP.

use std::time::{Duration, Instant};
use switchyard_benches::load::{LoadConfig, Target, run};
use switchyard_controlplane::config::{Args, Config};

#[test]
fn two_rooms_of_four_get_everything() {
    two_rooms_of_four(false);
}

#[test]
fn two_rooms_of_four_get_everything_over_ice_tcp() {
    two_rooms_of_four(true);
}

fn two_rooms_of_four(tcp: bool) {
    let dir = std::env::temp_dir().join(format!("swyd-pktgen-{tcp}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
    let socket = dir.join("dp.sock");
    let dp = switchyard_dataplane::config::Config::load(switchyard_dataplane::config::Args {
        workers: Some(1),
        base_port: Some(0),
        ice_tcp_port: tcp.then_some(switchyard_dataplane::config::PortOrOff::Port(0)),
        control_socket: Some(socket.clone()),
        log: Some("warn".into()),
        tuning_profile: Some("none".into()),
        ..Default::default()
    })
    .unwrap();
    std::thread::spawn(move || switchyard_dataplane::runtime::run(dp));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "dataplane did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let config = Config::load(Args {
        dataplane: Some(format!("attach:{}", socket.display())),
        https: Some("off".into()),
        log: Some("warn".into()),
        ..Args::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let server = listener.local_addr().unwrap();
    let (stop, shutdown) = switchyard_controlplane::app::Shutdown::manual();
    rt.spawn(switchyard_controlplane::app::serve(
        config, listener, shutdown,
    ));
    // ready when /health says so
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        use std::io::{Read, Write};
        let mut text = String::new();
        if let Ok(mut s) = std::net::TcpStream::connect(server) {
            let _ = write!(
                s,
                "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_string(&mut text);
        }
        if text.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "server not healthy: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = run(
        &LoadConfig {
            target: Target::Switchyard,
            server,
            server_pids: vec![std::process::id()],
            rooms: 2,
            participants: 4,
            duration: Duration::from_secs(10),
            threads: 2,
            cores: vec![],
            room_prefix: "ci".into(),
            regions: vec![],
            tcp,
        },
        |line| eprintln!("{line}"),
    );
    let _ = stop.send(1);
    eprintln!("{}", report.table());
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.clients, 8);
    assert_eq!(report.streams_expected, 8 * 3 * 2);
    assert_eq!(report.streams_missing, 0, "{}", report.table());
    assert_eq!(report.lost, 0, "{}", report.table());
    assert_eq!(report.bad, 0);
    // 3 others × (50 audio + ~180 top-layer video packets/s) × 8 receivers
    assert!(report.received_pps > 3000.0, "{}", report.table());
    // the "server" here is this process (generator included): its CPU time
    // was read and divided
    let ns = report.cpu_ns_per_packet.expect("CPU measured");
    assert!(ns > 0.0 && ns.is_finite(), "{}", report.table());
    let _ = std::fs::remove_dir_all(&dir);
}
