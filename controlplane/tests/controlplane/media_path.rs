//! The whole setup path without a browser: two simulated browsers (our own
//! STUN, DTLS client and SRTP) talk UDP to a real dataplane; their STUN and
//! DTLS travel through its exception rings to transports in this process
//! (via the conductor), which push the endpoints with their DTLS-derived
//! keys back into the dataplane; then media flows from one to the other.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_controlplane::agent::conductor::Conductor;
use switchyard_controlplane::agent::transport::Transport;
use switchyard_controlplane::agent::{AgentOut, FromAgent};
use switchyard_controlplane::dtls::{Certificate, DtlsEvent, DtlsRole, DtlsSession};
use switchyard_controlplane::ice::Credentials;
use switchyard_controlplane::sdp::{Offer, Setup};
use switchyard_dataplane::abi::{
    Client, Codec, Command as Cmd, LayerSpec, MediaKind, SourceSpec, SrtpKeys, SubscriptionSpec,
};
use switchyard_dataplane::srtp::Session;
use switchyard_wire::demux::PacketKind;
use switchyard_wire::rtp::{ExtensionIds, RtpHeader, RtpPacket};
use switchyard_wire::stun::{StunWriter, attr};

struct Dataplane(Child, std::path::PathBuf);

impl Drop for Dataplane {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

struct Browser {
    id: u64,
    socket: UdpSocket,
    creds: Credentials,
    sfu_creds: Credentials,
    dtls: DtlsSession,
    keys: Option<SrtpKeys>,
}

impl Browser {
    fn check(&self, server: SocketAddr) {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, 0x0001, &[self.id as u8; 12]).unwrap();
        w.add(
            attr::USERNAME,
            format!("{}:{}", self.sfu_creds.ufrag, self.creds.ufrag).as_bytes(),
        )
        .unwrap();
        w.add_u32(attr::PRIORITY, 2_130_706_431).unwrap();
        w.add_u64(attr::ICE_CONTROLLING, self.id).unwrap();
        w.add(attr::USE_CANDIDATE, &[]).unwrap();
        w.add_message_integrity(self.sfu_creds.pwd.as_bytes())
            .unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        self.socket.send_to(&buf[..n], server).unwrap();
    }

    /// Reads what arrived; feeds DTLS; returns media datagrams.
    fn pump(&mut self, now: Instant, server: SocketAddr) -> Vec<Vec<u8>> {
        let mut media = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = self.socket.recv(&mut buf) {
            match PacketKind::classify(&buf[..n]) {
                PacketKind::Dtls => self.dtls.handle_datagram(now, &buf[..n]),
                PacketKind::Rtp | PacketKind::Rtcp => media.push(buf[..n].to_vec()),
                _ => {}
            }
        }
        self.dtls.handle_timeout(now);
        while let Some(d) = self.dtls.poll_datagram() {
            self.socket.send_to(&d, server).unwrap();
        }
        if let Some(DtlsEvent::Connected(k)) = self.dtls.poll_event() {
            self.keys = Some(k);
        }
        media
    }
}

#[test]
fn stun_and_dtls_through_the_dataplane_then_media() {
    let dir = std::env::temp_dir().join(format!("swyd-mp-{}", std::process::id()));
    switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
    let socket_path = dir.join("dp.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "dataplane",
            "--workers",
            "1",
            "--base-port",
            "0",
            "--io",
            "mmsg",
            "--log",
            "warn",
        ])
        .arg("--control-socket")
        .arg(&socket_path)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _dp = Dataplane(child, dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        match Client::connect(&socket_path) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let port = client.worker_port(0).unwrap();
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let sfu_cert = Certificate::generate().unwrap();
    let mut conductor = Conductor::default();
    let ext = ExtensionIds {
        mid: Some(1),
        ..ExtensionIds::default()
    };
    let t0 = Instant::now();
    let mut browsers: Vec<Browser> = (1..=2u64)
        .map(|id| {
            let cert = Certificate::generate().unwrap();
            let mut dtls = DtlsSession::new(DtlsRole::Client, &cert, t0).unwrap();
            dtls.set_remote_fingerprint(sfu_cert.fingerprint());
            let creds = Credentials::random();
            let offer = Offer {
                ice: creds.clone(),
                fingerprint: cert.fingerprint(),
                setup: Setup::ActPass,
                media: vec![],
            };
            let sfu_creds = Credentials::random();
            let t = Transport::new(
                id,
                sfu_creds.clone(),
                &sfu_cert,
                &offer,
                ext,
                [id as u8; 32],
                t0,
            )
            .unwrap();
            conductor.add(id, 0, port, t);
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            Browser {
                id,
                socket,
                creds,
                sfu_creds,
                dtls,
                keys: None,
            }
        })
        .collect();
    for b in &browsers {
        b.check(server);
    }
    let mut connected = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    while (connected.len() < 2 || browsers.iter().any(|b| b.keys.is_none()))
        && Instant::now() < deadline
    {
        let now = Instant::now();
        for b in &mut browsers {
            b.pump(now, server);
        }
        while let Some((w, h, n)) = client.recv_packet(&mut buf) {
            conductor.handle_packet(now, w, &h, &buf[..n]);
        }
        conductor.handle_timeout(now);
        while let Some(a) = conductor.poll_action() {
            match a {
                AgentOut::Send {
                    worker,
                    header,
                    data,
                } => client.send_packet(worker, &header, &data).unwrap(),
                AgentOut::Dataplane { worker, command } => client.send(worker, &command).unwrap(),
                AgentOut::Up(FromAgent::Connected(id)) => connected.push(id),
                AgentOut::Up(FromAgent::Failed(id, reason)) => {
                    panic!("endpoint {id} failed: {reason}")
                }
                AgentOut::Up(other) => panic!("{other:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    connected.sort();
    assert_eq!(
        connected,
        vec![1, 2],
        "both transports connected through the exception rings"
    );
    assert_eq!(
        client.endpoints().len(),
        2,
        "both endpoints are in the dataplane"
    );

    // media: browser 1 publishes one VP8 layer, browser 2 subscribes
    let layer = LayerSpec {
        ssrc: 0x777,
        ..LayerSpec::default()
    };
    let source = SourceSpec {
        id: 9,
        endpoint: 1,
        kind: MediaKind::Video,
        codec: Codec::Vp8,
        clock_rate: 90_000,
        payload_type: 96,
        rtx_payload_type: 0,
        layer_count: 1,
        layers: [layer; 3],
    };
    client.add_source(&source).unwrap();
    let mut mid = [0u8; 16];
    mid[0] = b'1';
    let sub = SubscriptionSpec {
        endpoint: 2,
        source: 9,
        ssrc: 0x888,
        rtx_ssrc: 0,
        payload_type: 96,
        rtx_payload_type: 0,
        target_layer: 0,
        mid,
        mid_len: 1,
    };
    client.send(0, &Cmd::Subscribe(sub)).unwrap();
    assert!(client.wait_commands_taken(Duration::from_secs(30)));
    let cfg = switchyard_dataplane::srtp::Config::default();
    let (pk, sk) = (
        browsers[0].keys.clone().unwrap(),
        browsers[1].keys.clone().unwrap(),
    );
    let mut send = Session::new(pk.profile, &pk.tx, cfg).unwrap();
    let mut recv = Session::new(sk.profile, &sk.rx, cfg).unwrap();
    for seq in 0..20u16 {
        let h = RtpHeader {
            payload_type: 96,
            sequence_number: seq,
            timestamp: 3000 * u32::from(seq),
            ssrc: 0x777,
            ..Default::default()
        };
        let mut pkt = vec![0u8; 1500];
        let n = h.emit(&mut pkt).unwrap();
        // VP8 descriptor (S=1, partition 0) and a key frame's first byte
        pkt[n..n + 3].copy_from_slice(&[0x10, 0x00, seq as u8]);
        let n = send.protect_rtp(&mut pkt, n + 200).unwrap();
        browsers[0].socket.send_to(&pkt[..n], server).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < 20 && Instant::now() < deadline {
        for mut m in browsers[1].pump(Instant::now(), server) {
            if (192..=223).contains(&m[1]) {
                continue;
            }
            let n = recv
                .unprotect_rtp(&mut m)
                .expect("subscriber decrypts with its DTLS keys");
            let p = RtpPacket::new_checked(&m[..n]).unwrap();
            got.push((p.ssrc(), p.payload()[2]));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|(ssrc, _)| *ssrc == 0x888));
    assert_eq!(
        got.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
        (0..20).collect::<Vec<u8>>()
    );
}
