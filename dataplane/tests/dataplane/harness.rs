//! Shared pieces of the dataplane integration tests: starting the real
//! binary, attaching a client, and peers that play publisher or subscriber
//! from real UDP sockets on loopback with their own SRTP sessions.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::{
    Client, Codec, EndpointSpec, LayerSpec, MediaKind, SourceSpec, SrtpKeys, SubscriptionSpec,
};
use switchyard_srtp::{MasterKey, Profile, Session};
use switchyard_wire::codec::Vp8Descriptor;
use switchyard_wire::rtp::{Extension, ExtensionIds, RtpHeader, RtpPacket};

pub const PROFILE: Profile = Profile::AeadAes128Gcm;
pub const LAYER_SSRC: [u32; 3] = [0x100, 0x200, 0x300];
pub const SOURCE: u64 = 77;
pub const EXT: ExtensionIds = ExtensionIds {
    mid: Some(1),
    rid: Some(2),
    repaired_rid: Some(3),
    abs_send_time: Some(4),
    transport_cc: Some(5),
    audio_level: None,
    dependency_descriptor: None,
};

/// Waits (generously) until the workers took every command sent so far.
pub fn settle(client: &Client) {
    assert!(
        client.wait_commands_taken(Duration::from_secs(30)),
        "the workers did not take their commands in 30 s"
    );
}

/// A running `switchyard-dataplane`, killed on drop.
pub struct Dataplane {
    pub child: Child,
    pub socket: PathBuf,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Dataplane {
    /// Starts the binary with `workers` workers on OS-chosen ports.
    pub fn start(workers: usize, io: &str) -> Dataplane {
        Dataplane::start_with(workers, io, &[])
    }

    /// The same, with more flags.
    pub fn start_with(workers: usize, io: &str, extra: &[&str]) -> Dataplane {
        let dir = std::env::temp_dir().join(format!(
            "swyd-dp-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        switchyard_dataplane::abi::access::prepare_socket_dir(&dir).unwrap();
        let socket = dir.join("dp.sock");
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard-dataplane"))
            .args([
                "--workers",
                &workers.to_string(),
                "--base-port",
                "0",
                "--io",
                io,
            ])
            .args(if extra.contains(&"--log") {
                &[][..]
            } else {
                &["--log", "warn"][..]
            })
            .args(extra)
            .arg("--control-socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start switchyard-dataplane");
        Dataplane {
            child,
            socket,
            _dir: TempDir(dir),
        }
    }

    /// Attaches a client, waiting for the control socket to appear.
    pub fn attach(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match Client::connect(&self.socket) {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => {
                    panic!("dataplane did not come up: {e}\n{}", self.log())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.0.join("log")).unwrap_or_default()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().map(|s| s.is_none()).unwrap_or(false)
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where peers live: their address and namespace, and the dataplane's
/// address as they reach it (default: all on 127.0.0.1 here).
#[derive(Debug, Clone)]
pub struct PeerNet {
    /// The network namespace of the peers' sockets (`None`: this one).
    pub ns: Option<String>,
    /// The peers' address.
    pub local: std::net::IpAddr,
    /// The dataplane's address.
    pub server: std::net::IpAddr,
}

impl Default for PeerNet {
    fn default() -> Self {
        let lo = std::net::IpAddr::from([127, 0, 0, 1]);
        PeerNet {
            ns: None,
            local: lo,
            server: lo,
        }
    }
}

impl PeerNet {
    /// A peer's socket: a large receive buffer (tests read after the
    /// stream, not during it), made inside `ns` when named.
    fn socket(&self) -> UdpSocket {
        let (ns, local) = (self.ns.clone(), self.local);
        let make = move || {
            if let Some(ns) = ns {
                let fd = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace");
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&fd),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("setns");
            }
            let domain = socket2::Domain::for_address(SocketAddr::new(local, 0));
            let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, None).unwrap();
            socket.set_recv_buffer_size(4 << 20).unwrap();
            socket.bind(&SocketAddr::new(local, 0).into()).unwrap();
            let socket: UdpSocket = socket.into();
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            socket
        };
        // a thread of its own: it leaves this thread's namespace alone
        std::thread::spawn(make).join().unwrap()
    }
}

/// The far side of one endpoint: a socket and the SRTP sessions a browser holds.
pub struct Peer {
    pub id: u64,
    pub worker: usize,
    pub socket: UdpSocket,
    pub server: SocketAddr,
    /// Protects what this peer sends.
    pub send: Session,
    /// Unprotects what the dataplane sends it.
    pub recv: Session,
    pub keys: SrtpKeys,
}

impl Peer {
    pub fn new(client: &Client, id: u64, worker: usize) -> Peer {
        Peer::at(client, id, worker, &PeerNet::default())
    }

    /// A peer on `net`.
    pub fn at(client: &Client, id: u64, worker: usize, net: &PeerNet) -> Peer {
        let server = SocketAddr::new(net.server, client.worker_port(worker).unwrap());
        Peer::keyed(
            id,
            worker,
            net.socket(),
            server,
            [id as u8 ^ 1, id as u8 ^ 2],
        )
    }

    /// A peer of an engine without a dataplane process: its "server" is
    /// the test's own socket.
    pub fn standalone(id: u64, server: SocketAddr) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        Peer::keyed(id, 0, socket, server, [1, 2])
    }

    /// A peer with SRTP keys from its id and salts from `salt` (receive,
    /// send).
    fn keyed(id: u64, worker: usize, socket: UdpSocket, server: SocketAddr, salt: [u8; 2]) -> Peer {
        let rx = MasterKey::new(PROFILE, &[id as u8; 16], &[salt[0]; 12]).unwrap();
        let tx = MasterKey::new(PROFILE, &[id as u8 ^ 0x55; 16], &[salt[1]; 12]).unwrap();
        let cfg = switchyard_srtp::Config::default();
        Peer {
            id,
            worker,
            socket,
            server,
            send: Session::new(PROFILE, &rx, cfg).unwrap(),
            recv: Session::new(PROFILE, &tx, cfg).unwrap(),
            keys: SrtpKeys {
                profile: PROFILE,
                rx,
                tx,
            },
        }
    }

    pub fn spec(&self) -> EndpointSpec {
        let mut user_data = [0u8; 32];
        user_data[..8].copy_from_slice(&self.id.to_le_bytes());
        EndpointSpec {
            id: self.id,
            remote: self.socket.local_addr().unwrap(),
            keys: self.keys.clone(),
            ext: EXT,
            user_data,
        }
    }

    pub fn send_raw(&self, data: &[u8]) {
        self.socket.send_to(data, self.server).unwrap();
    }

    pub fn send_rtcp(&mut self, build: impl FnOnce(&mut [u8]) -> usize) {
        let mut buf = vec![0u8; 1500];
        let n = build(&mut buf);
        let n = self.send.protect_rtcp(&mut buf, n).unwrap();
        self.send_raw(&buf[..n]);
    }

    /// Every datagram that arrives within `wait` of the last one.
    pub fn receive_all(&self, wait: Duration) -> Vec<Vec<u8>> {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = self.socket.recv(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }
}

pub fn source_spec(publisher: u64) -> SourceSpec {
    let layer = |i: usize| LayerSpec {
        ssrc: LAYER_SSRC[i],
        rtx_ssrc: 0,
        rid: [0; 15],
        rid_len: 0,
    };
    SourceSpec {
        id: SOURCE,
        endpoint: publisher,
        kind: MediaKind::Video,
        codec: Codec::Vp8,
        clock_rate: 90_000,
        payload_type: 96,
        rtx_payload_type: 0,
        layer_count: 3,
        layers: [layer(0), layer(1), layer(2)],
    }
}

pub fn subscription(endpoint: u64, ssrc: u32, target: u8) -> SubscriptionSpec {
    let mut mid = [0u8; 16];
    mid[..2].copy_from_slice(b"v0");
    SubscriptionSpec {
        endpoint,
        source: SOURCE,
        ssrc,
        rtx_ssrc: 0,
        payload_type: 100,
        rtx_payload_type: 0,
        target_layer: target,
        mid,
        mid_len: 2,
    }
}

/// A publisher sending VP8 simulcast: two packets per frame per layer. The
/// payload names its layer and frame so subscribers can check what they get.
pub struct Publisher {
    pub peer: Peer,
    pub seqs: [u16; 3],
    pub frame: u32,
}

impl Publisher {
    pub fn new(peer: Peer) -> Publisher {
        Publisher {
            peer,
            seqs: [100, 30_000, 65_500],
            frame: 0,
        }
    }

    /// One frame on every layer; `key[l]` makes it a keyframe on layer l.
    pub fn frame(&mut self, key: [bool; 3]) {
        for (layer, &key) in key.iter().enumerate() {
            for k in 0..2u8 {
                let seq = self.seqs[layer];
                self.seqs[layer] = seq.wrapping_add(1);
                let pkt = self.packet(layer, seq, k == 0, key);
                self.peer.send_raw(&pkt);
            }
        }
        self.frame += 1;
    }

    pub fn packet(&mut self, layer: usize, seq: u16, first: bool, key: bool) -> Vec<u8> {
        let twcc = seq.to_be_bytes();
        let exts = [
            Extension { id: 1, data: b"0" },
            Extension { id: 5, data: &twcc },
        ];
        let h = RtpHeader {
            marker: !first,
            payload_type: 96,
            sequence_number: seq,
            timestamp: 7 + 3000 * self.frame,
            ssrc: LAYER_SSRC[layer],
            csrcs: &[],
            extensions: &exts,
        };
        let mut buf = vec![0u8; 1500];
        let n = h.emit(&mut buf).unwrap();
        let pid = (self.frame as u16).wrapping_add(1000 * layer as u16) & 0x7fff;
        let desc = [
            0x80 | if first { 0x10 } else { 0 },
            0xc0,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            self.frame as u8,
        ];
        buf[n..n + 5].copy_from_slice(&desc);
        let body = n + 5;
        buf[body] = if key { 0x00 } else { 0x01 }; // VP8 P bit
        buf[body + 1] = layer as u8;
        buf[body + 2..body + 6].copy_from_slice(&self.frame.to_be_bytes());
        let len = body + 600;
        let out = self.peer.send.protect_rtp(&mut buf, len).unwrap();
        buf.truncate(out);
        buf
    }
}

/// What a subscriber learned from one packet.
#[derive(Debug, Clone)]
pub struct Got {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub picture_id: u16,
    pub layer: u8,
    pub frame: u32,
}

/// Receives until quiet for `wait`, then reads the media packets.
pub fn receive_media(peer: &mut Peer, wait: Duration) -> Vec<Got> {
    let packets = peer.receive_all(wait);
    read_media(peer, packets)
}

/// Decrypts and reads RTP packets (RTCP is skipped).
pub fn read_media(peer: &mut Peer, packets: Vec<Vec<u8>>) -> Vec<Got> {
    let mut out = Vec::new();
    for mut p in packets {
        if p.len() > 1 && (192..=223).contains(&p[1]) {
            continue;
        }
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let n = match peer.recv.unprotect_rtp(&mut p) {
            Ok(n) => n,
            Err(e) => panic!(
                "subscriber {} cannot decrypt seq {seq}: {e}; got so far {out:?}",
                peer.id
            ),
        };
        let r = RtpPacket::new_checked(&p[..n]).unwrap();
        let d = Vp8Descriptor::new_checked(r.payload()).unwrap();
        let body = &d.payload()[1..];
        out.push(Got {
            ssrc: r.ssrc(),
            seq: r.sequence_number(),
            timestamp: r.timestamp(),
            picture_id: d.picture_id().unwrap(),
            layer: body[0],
            frame: u32::from_be_bytes(body[1..5].try_into().unwrap()),
        });
    }
    out
}

/// Asserts sequence numbers advance by one and picture ids by at most one.
pub fn assert_continuous(got: &[Got], who: &str) {
    for w in got.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "{who}: sequence gap {:?} -> {:?}",
            w[0],
            w[1]
        );
        let step = w[1].picture_id.wrapping_sub(w[0].picture_id) & 0x7fff;
        assert!(step <= 1, "{who}: picture id jump {:?} -> {:?}", w[0], w[1]);
        assert!(
            w[1].timestamp.wrapping_sub(w[0].timestamp) < 0x8000_0000,
            "{who}: timestamp went back"
        );
    }
}

/// A publisher on worker 0 and a subscriber on worker 1 (`ssrc`, `layer`),
/// wired up and given time to apply.
pub fn one_to_one(client: &mut Client, ssrc: u32, layer: u8) -> (Peer, Peer) {
    use switchyard_dataplane::abi::Command;
    let publisher = Peer::new(client, 1, 0);
    let sub = Peer::new(client, 2, 1);
    client
        .send(0, &Command::AddEndpoint(publisher.spec()))
        .unwrap();
    client.send(1, &Command::AddEndpoint(sub.spec())).unwrap();
    client.add_source(&source_spec(1)).unwrap();
    client
        .subscribe(1, 0, &subscription(2, ssrc, layer))
        .unwrap();
    settle(client);
    (publisher, sub)
}
