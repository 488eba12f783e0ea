//! What a packet costs on a relay link against a local subscriber (issue
//! #17's show 9), in the engine alone: no sockets, no syscalls, no other
//! thread, so only the forwarding work itself is timed.
//!
//! `local`: one engine, a publisher and one subscriber; a 1200-byte VP8
//! packet in, one packet out (decrypt, forward, rewrite, encrypt).
//! `relay`: bridge A's engine forwards the publisher's packet onto a relay
//! stream (decrypt, encrypt for the relay), bridge B's engine takes it from
//! the relay as a source of its own and forwards it to its subscriber
//! (decrypt, forward, encrypt): the whole path through two bridges.
//!
//! `cargo bench -p switchyard-benches --bench relay`
//! Every packet is new (the replay window rejects repeats before any work):
//! the publisher protects them a thousand at a time, untimed.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_benches::vp8_packet;
use switchyard_dataplane::abi::command::MAX_MID;
use switchyard_dataplane::abi::{
    Codec, Command, EndpointSpec, Event, LayerSpec, MediaKind, RelaySpec, SourceSpec, SrtpKeys,
    SubscriptionSpec,
};
use switchyard_dataplane::engine::{
    CrossMessage, EndpointInfo, Engine, EngineConfig, MAX_DATAGRAM, Sink,
};
use switchyard_srtp::{Config, MasterKey, Profile, Session};
use switchyard_wire::rtp::ExtensionIds;

const PROFILE: Profile = Profile::AeadAes128Gcm;
const SIZE: usize = 1200;
const PUBLISHER_SSRC: u32 = 0x1111;
const RELAY_SSRC: u32 = 0x2222;

/// Keeps the last datagram sent (a copy into one buffer: the same small
/// cost for every datagram of both paths).
struct LastSink {
    buf: Vec<u8>,
    last: Vec<u8>,
    to: Option<SocketAddr>,
}

impl LastSink {
    fn new() -> LastSink {
        LastSink {
            buf: vec![0; MAX_DATAGRAM],
            last: Vec::with_capacity(MAX_DATAGRAM),
            to: None,
        }
    }
}

impl Sink for LastSink {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.buf)
    }
    fn commit(&mut self, len: usize, to: SocketAddr) {
        self.last.clear();
        self.last.extend_from_slice(&self.buf[..len]);
        self.to = Some(to);
    }
    fn cross(&mut self, _: u16, _: CrossMessage, _: &[u8]) -> bool {
        true
    }
    fn exception(&mut self, _: u64, _: SocketAddr, _: &[u8]) -> bool {
        true
    }
    fn event(&mut self, _: Event) {}
    fn endpoint_changed(&mut self, _: u64, _: Option<EndpointInfo>) {}
}

fn key(byte: u8) -> MasterKey {
    MasterKey::new(PROFILE, &[byte; 16], &[byte; 12]).expect("key lengths")
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 5000))
}

/// Endpoint `id` at `remote`: receives with `rx`, sends with `tx`.
fn endpoint(e: &mut Engine, sink: &mut LastSink, id: u64, remote: SocketAddr, rx: u8, tx: u8) {
    let spec = EndpointSpec {
        id,
        remote,
        keys: SrtpKeys {
            profile: PROFILE,
            rx: key(rx),
            tx: key(tx),
        },
        ext: ExtensionIds::default(),
        user_data: [0; 32],
    };
    e.handle_command(Instant::now(), Command::AddEndpoint(spec), sink);
}

/// A one-layer VP8 source `id` published by endpoint `publisher` as `ssrc`.
fn source(e: &mut Engine, sink: &mut LastSink, id: u64, publisher: u64, ssrc: u32) {
    let layer = |ssrc| LayerSpec {
        ssrc,
        rtx_ssrc: 0,
        rid: [0; 15],
        rid_len: 0,
    };
    let spec = SourceSpec {
        id,
        endpoint: publisher,
        kind: MediaKind::Video,
        codec: Codec::Vp8,
        clock_rate: 90_000,
        payload_type: 96,
        rtx_payload_type: 0,
        layer_count: 1,
        layers: [layer(ssrc), layer(0), layer(0)],
    };
    e.handle_command(Instant::now(), Command::AddSource(spec), sink);
}

fn subscribe(e: &mut Engine, sink: &mut LastSink, endpoint: u64, source: u64) {
    let spec = SubscriptionSpec {
        endpoint,
        source,
        ssrc: 0x3333,
        rtx_ssrc: 0,
        payload_type: 96,
        rtx_payload_type: 0,
        target_layer: 0,
        mid: [0; MAX_MID],
        mid_len: 0,
    };
    e.handle_command(Instant::now(), Command::Subscribe(spec), sink);
}

fn relay(e: &mut Engine, sink: &mut LastSink, id: u64) {
    let cmd = Command::SetRelay {
        endpoint: id,
        relay: true,
    };
    e.handle_command(Instant::now(), cmd, sink);
}

/// The publisher's side: a session that protects what it sends to bridge A
/// (key 1), and the next packet.
struct Publisher {
    tx: Session,
    seq: u16,
}

impl Publisher {
    fn new() -> Publisher {
        Publisher {
            tx: Session::new(PROFILE, &key(1), Config::default()).expect("session"),
            seq: 0,
        }
    }
    fn next(&mut self) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        let mut p = vp8_packet(self.seq, PUBLISHER_SSRC, SIZE);
        p.resize(SIZE + 16, 0);
        let n = self.tx.protect_rtp(&mut p, SIZE).expect("protect");
        p.truncate(n);
        p
    }
}

/// One bridge: publisher (endpoint 1, at .1) and subscriber (endpoint 2,
/// at .2) on one engine.
fn local() -> (Engine, LastSink) {
    let mut e = Engine::new(EngineConfig::default());
    let mut sink = LastSink::new();
    endpoint(&mut e, &mut sink, 1, addr(1), 1, 2);
    endpoint(&mut e, &mut sink, 2, addr(2), 3, 4);
    source(&mut e, &mut sink, 10, 1, PUBLISHER_SSRC);
    subscribe(&mut e, &mut sink, 2, 10);
    (e, sink)
}

/// Bridge A at .100 (the publisher's) and bridge B at .200 (the
/// subscriber's), joined by a relay.
struct TwoBridges {
    a: Engine,
    sa: LastSink,
    b: Engine,
    sb: LastSink,
}

impl TwoBridges {
    /// The publisher on A, a relay between A and B (A's end sends with key
    /// 5, B's receives with it), the source's copy on B published by B's
    /// relay end, the subscriber on B.
    fn new() -> TwoBridges {
        let (a_addr, b_addr) = (addr(100), addr(200));
        let mut a = Engine::new(EngineConfig::default());
        let mut sa = LastSink::new();
        endpoint(&mut a, &mut sa, 1, addr(1), 1, 2);
        source(&mut a, &mut sa, 10, 1, PUBLISHER_SSRC);
        endpoint(&mut a, &mut sa, 50, b_addr, 6, 5);
        relay(&mut a, &mut sa, 50);
        let spec = RelaySpec {
            endpoint: 50,
            source: 10,
            ssrcs: [RELAY_SSRC, 0, 0],
            rtx_ssrcs: [0; 3],
        };
        a.handle_command(Instant::now(), Command::RelaySource(spec), &mut sa);
        let mut b = Engine::new(EngineConfig::default());
        let mut sb = LastSink::new();
        endpoint(&mut b, &mut sb, 51, a_addr, 5, 6);
        relay(&mut b, &mut sb, 51);
        source(&mut b, &mut sb, 11, 51, RELAY_SSRC);
        endpoint(&mut b, &mut sb, 2, addr(2), 3, 4);
        subscribe(&mut b, &mut sb, 2, 11);
        TwoBridges { a, sa, b, sb }
    }

    /// The publisher's packet into A, and what A sends onto the relay into B.
    fn send(&mut self, p: &mut [u8]) {
        self.a
            .handle_datagram(Instant::now(), addr(1), p, &mut self.sa);
        let mut onward = std::mem::take(&mut self.sa.last);
        self.b
            .handle_datagram(Instant::now(), addr(100), &mut onward, &mut self.sb);
        self.sa.last = onward;
    }
}

/// Runs `forward` on `iters` fresh packets and returns the time it took:
/// the packets are protected beforehand, a thousand at a time, untimed
/// (one buffer each, reused: no allocation in the timed part).
fn timed(iters: u64, publisher: &mut Publisher, mut forward: impl FnMut(&mut [u8])) -> Duration {
    const CHUNK: u64 = 1000;
    let mut pkts: Vec<Vec<u8>> = Vec::with_capacity(CHUNK as usize);
    let mut spent = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        pkts.clear();
        pkts.extend((0..n).map(|_| publisher.next()));
        let start = Instant::now();
        for p in &mut pkts {
            forward(p);
        }
        spent += start.elapsed();
        left -= n;
    }
    spent
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(1));
    let (mut e, mut sink) = local();
    let mut publisher = Publisher::new();
    // both paths really deliver before they are timed
    let mut p = publisher.next();
    e.handle_datagram(Instant::now(), addr(1), &mut p, &mut sink);
    assert_eq!(sink.to, Some(addr(2)), "local path");
    g.bench_function("local_subscriber/1200", |b| {
        b.iter_custom(|iters| {
            timed(iters, &mut publisher, |p| {
                e.handle_datagram(Instant::now(), addr(1), p, &mut sink)
            })
        })
    });

    let mut two = TwoBridges::new();
    let mut publisher = Publisher::new();
    let mut p = publisher.next();
    two.send(&mut p);
    assert_eq!(two.sa.to, Some(addr(200)), "A sends onto the relay");
    assert_eq!(two.sb.to, Some(addr(2)), "B delivers");
    g.bench_function("through_relay/1200", |b| {
        b.iter_custom(|iters| timed(iters, &mut publisher, |p| two.send(p)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
