//! Scenario tests of the engine with real SRTP on both sides: a publisher
//! with three VP8 simulcast layers and subscribers, driven through the
//! sans-IO interface with a recording sink and a virtual clock.

use super::*;
use crate::abi::continuity::RTP_MARGIN;
use crate::abi::{Codec, Continuity, Counter, DropReason, LayerSpec, MediaKind, SrtpKeys};
use std::time::Duration;
use switchyard_srtp::{MasterKey, Profile, Session};
use switchyard_wire::codec::Vp8Descriptor;
use switchyard_wire::rtcp::{Compound, NackPair, NackRepr, Packet, PliRepr, SenderReportRepr};
use switchyard_wire::rtp::{Extension, RtpHeader, RtpPacket};

const PROFILE: Profile = Profile::AeadAes128Gcm;

#[derive(Default)]
pub(super) struct VecSink {
    pub(super) scratch: Vec<u8>,
    pub(super) sent: Vec<(SocketAddr, Vec<u8>)>,
    pub(super) cross: Vec<(u16, CrossMessage, Vec<u8>)>,
    pub(super) exceptions: Vec<(u64, SocketAddr, Vec<u8>)>,
    pub(super) events: Vec<Event>,
    pub(super) table: Vec<(u64, bool)>,
}

impl Sink for VecSink {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        self.scratch = vec![0u8; MAX_DATAGRAM];
        Some(&mut self.scratch)
    }
    fn commit(&mut self, len: usize, to: SocketAddr) {
        self.sent.push((to, self.scratch[..len].to_vec()));
    }
    fn cross(&mut self, worker: u16, msg: CrossMessage, data: &[u8]) -> bool {
        self.cross.push((worker, msg, data.to_vec()));
        true
    }
    fn exception(&mut self, endpoint: u64, from: SocketAddr, data: &[u8]) -> bool {
        self.exceptions.push((endpoint, from, data.to_vec()));
        true
    }
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
    fn endpoint_changed(&mut self, id: u64, info: Option<EndpointInfo>) {
        self.table.push((id, info.is_some()));
    }
}

impl VecSink {
    pub(super) fn take_to(&mut self, to: SocketAddr) -> Vec<Vec<u8>> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sent)
            .into_iter()
            .partition(|(a, _)| *a == to);
        self.sent = rest;
        mine.into_iter().map(|(_, p)| p).collect()
    }
}

/// The far side of one endpoint: what a browser would hold.
pub(super) struct Peer {
    pub(super) id: u64,
    pub(super) addr: SocketAddr,
    /// Protects what the peer sends (the engine's rx key).
    pub(super) send: Session,
    /// Unprotects what the engine sends (the engine's tx key).
    pub(super) recv: Session,
    pub(super) keys: SrtpKeys,
}

pub(super) fn peer(id: u64, port: u16) -> Peer {
    let rx = MasterKey::new(PROFILE, &[id as u8; 16], &[1; 12]).unwrap();
    let tx = MasterKey::new(PROFILE, &[id as u8 ^ 0x80; 16], &[2; 12]).unwrap();
    let cfg = switchyard_srtp::Config::default();
    Peer {
        id,
        addr: SocketAddr::from(([10, 0, 0, id as u8], port)),
        send: Session::new(PROFILE, &rx, cfg).unwrap(),
        recv: Session::new(PROFILE, &tx, cfg).unwrap(),
        keys: SrtpKeys {
            profile: PROFILE,
            rx,
            tx,
        },
    }
}

const EXT: ExtensionIds = ExtensionIds {
    mid: Some(1),
    rid: Some(2),
    repaired_rid: Some(3),
    abs_send_time: Some(4),
    transport_cc: Some(5),
    audio_level: None,
    dependency_descriptor: None,
};

pub(super) fn add(engine: &mut Engine, sink: &mut VecSink, p: &Peer, t: Instant) {
    let spec = EndpointSpec {
        id: p.id,
        remote: p.addr,
        keys: p.keys.clone(),
        ext: EXT,
        user_data: [0; 32],
    };
    engine.handle_command(t, Command::AddEndpoint(spec), sink);
}

pub(super) const LAYER_SSRC: [u32; 3] = [100, 200, 300];

pub(super) fn video_source(publisher: u64) -> SourceSpec {
    let layer = |i: usize| LayerSpec {
        ssrc: LAYER_SSRC[i],
        rtx_ssrc: 0,
        rid: [0; 15],
        rid_len: 0,
    };
    SourceSpec {
        id: 77,
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

pub(super) fn subscription(endpoint: u64, ssrc: u32, target: u8) -> SubscriptionSpec {
    SubscriptionSpec {
        endpoint,
        source: 77,
        ssrc,
        rtx_ssrc: 0,
        payload_type: 100,
        rtx_payload_type: 0,
        target_layer: target,
        mid: *b"v0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        mid_len: 2,
    }
}

/// A protected VP8 packet of `layer`, frame `frame`, packet `k` of the frame.
pub(super) fn vp8(
    p: &mut Peer,
    layer: usize,
    seq: u16,
    frame: u16,
    first_of_frame: bool,
    key: bool,
) -> Vec<u8> {
    let twcc = seq.to_be_bytes();
    let exts = [
        Extension { id: 1, data: b"0" },
        Extension { id: 5, data: &twcc },
    ];
    let h = RtpHeader {
        marker: false,
        payload_type: 96,
        sequence_number: seq,
        timestamp: 1000 * (layer as u32 + 1) + u32::from(frame) * 3000,
        ssrc: LAYER_SSRC[layer],
        csrcs: &[],
        extensions: &exts,
    };
    let mut buf = vec![0u8; 1500];
    let n = h.emit(&mut buf).unwrap();
    // X S=first | I L | 15-bit picture id | TL0PICIDX | VP8 header byte (P bit)
    let pid = frame.wrapping_add(1000 * layer as u16) & 0x7fff;
    let desc = [
        0x80 | if first_of_frame { 0x10 } else { 0 },
        0xc0,
        0x80 | (pid >> 8) as u8,
        pid as u8,
        frame as u8,
        if key { 0x00 } else { 0x01 },
    ];
    buf[n..n + desc.len()].copy_from_slice(&desc);
    let len = n + desc.len() + 100;
    let out = p.send.protect_rtp(&mut buf, len).unwrap();
    buf.truncate(out);
    buf
}

struct Received {
    ssrc: u32,
    seq: u16,
    pt: u8,
    picture_id: Option<u16>,
    mid: Vec<u8>,
}

fn open(p: &mut Peer, mut pkt: Vec<u8>) -> Received {
    let n = p
        .recv
        .unprotect_rtp(&mut pkt)
        .expect("subscriber can decrypt");
    let r = RtpPacket::new_checked(&pkt[..n]).unwrap();
    let d = Vp8Descriptor::new_checked(r.payload()).unwrap();
    Received {
        ssrc: r.ssrc(),
        seq: r.sequence_number(),
        pt: r.payload_type(),
        picture_id: d.picture_id(),
        mid: r.extension(1).unwrap_or_default().to_vec(),
    }
}

pub(super) struct World {
    pub(super) t: Instant,
    pub(super) engine: Engine,
    pub(super) sink: VecSink,
    pub(super) publisher: Peer,
    pub(super) a: Peer,
    pub(super) b: Peer,
    seqs: [u16; 3],
    frame: u16,
}

impl World {
    pub(super) fn new() -> World {
        let t = Instant::now();
        let mut engine = Engine::new(EngineConfig::default());
        let mut sink = VecSink::default();
        let (publisher, a, b) = (peer(1, 5000), peer(2, 5000), peer(3, 5000));
        for p in [&publisher, &a, &b] {
            add(&mut engine, &mut sink, p, t);
        }
        engine.handle_command(t, Command::AddSource(video_source(1)), &mut sink);
        engine.handle_command(t, Command::Subscribe(subscription(2, 0xaaaa, 2)), &mut sink);
        engine.handle_command(t, Command::Subscribe(subscription(3, 0xbbbb, 0)), &mut sink);
        World {
            t,
            engine,
            sink,
            publisher,
            a,
            b,
            seqs: [10, 20_000, 65_530],
            frame: 0,
        }
    }

    /// One frame of two packets on every layer; `key` marks keyframes per layer.
    pub(super) fn frame(&mut self, key: [bool; 3]) {
        self.frame_of(key.map(Some));
    }

    /// One frame on the layers that are `Some(keyframe?)`; the others are
    /// not sent (the publisher's encoder dropped them).
    fn frame_of(&mut self, layers: [Option<bool>; 3]) {
        self.t += Duration::from_millis(33);
        for (layer, key) in layers.iter().enumerate() {
            let Some(key) = *key else { continue };
            for k in 0..2 {
                let seq = self.seqs[layer];
                self.seqs[layer] = seq.wrapping_add(1);
                let mut pkt = vp8(&mut self.publisher, layer, seq, self.frame, k == 0, key);
                self.engine
                    .handle_datagram(self.t, self.publisher.addr, &mut pkt, &mut self.sink);
            }
        }
        self.frame += 1;
    }

    /// A picture loss indication from `who` for the stream it receives as
    /// `media_ssrc`.
    fn pli_from(&mut self, who: u8, media_ssrc: u32) {
        self.rtcp_from(who, |buf| {
            PliRepr {
                sender_ssrc: 1,
                media_ssrc,
            }
            .emit(buf)
            .unwrap()
        });
    }

    /// A NACK from subscriber `a` for packet `seq` of the stream it
    /// receives (SSRC 0xaaaa).
    fn nack_from_a(&mut self, seq: u16) {
        self.nack_from(2, 0xaaaa, seq);
    }

    /// A NACK for packet `seq` of stream `media_ssrc` from peer `who`.
    fn nack_from(&mut self, who: u8, media_ssrc: u32, seq: u16) {
        self.rtcp_from(who, |buf| {
            NackRepr {
                sender_ssrc: 9,
                media_ssrc,
                pairs: &[NackPair { pid: seq, blp: 0 }],
            }
            .emit(buf)
            .unwrap()
        });
    }

    fn rtcp_from(&mut self, who: u8, build: impl FnOnce(&mut [u8]) -> usize) {
        let mut buf = vec![0u8; 1500];
        let n = build(&mut buf);
        let peer = match who {
            1 => &mut self.publisher,
            2 => &mut self.a,
            _ => &mut self.b,
        };
        let n = peer.send.protect_rtcp(&mut buf, n).unwrap();
        let addr = peer.addr;
        self.engine
            .handle_datagram(self.t, addr, &mut buf[..n], &mut self.sink);
    }

    /// The sequence numbers NACKed to the publisher since the last call.
    fn nacked_to_publisher(&mut self) -> Vec<u16> {
        let pkts = self.sink.take_to(self.publisher.addr);
        let mut lost = Vec::new();
        for mut p in pkts {
            let n = self.publisher.recv.unprotect_rtcp(&mut p).unwrap();
            for x in Compound::new(&p[..n]) {
                if let Ok(Packet::Nack(nack)) = x {
                    lost.extend(nack.lost());
                }
            }
        }
        lost
    }

    pub(super) fn plis_to_publisher(&mut self) -> usize {
        self.pli_ssrcs_to_publisher().len()
    }

    /// The media SSRC of each picture loss indication sent to the
    /// publisher since the last look.
    pub(super) fn pli_ssrcs_to_publisher(&mut self) -> Vec<u32> {
        let pkts = self.sink.take_to(self.publisher.addr);
        let mut ssrcs = Vec::new();
        for mut p in pkts {
            let n = self.publisher.recv.unprotect_rtcp(&mut p).unwrap();
            for x in Compound::new(&p[..n]) {
                if let Ok(Packet::Pli(pli)) = x {
                    ssrcs.push(pli.media_ssrc);
                }
            }
        }
        ssrcs
    }
}

#[test]
fn each_subscriber_gets_its_layer_rewritten_and_continuous_across_a_switch() {
    let mut w = World::new();
    // no keyframe yet: nothing forwarded
    w.frame([false; 3]);
    assert!(w.sink.take_to(w.a.addr).is_empty());
    w.frame([true; 3]);
    w.frame([false; 3]);
    let a: Vec<_> = w
        .sink
        .take_to(w.a.addr)
        .into_iter()
        .map(|p| open(&mut w.a, p))
        .collect();
    let b: Vec<_> = w
        .sink
        .take_to(w.b.addr)
        .into_iter()
        .map(|p| open(&mut w.b, p))
        .collect();
    assert_eq!((a.len(), b.len()), (4, 4));
    assert!(
        a.iter()
            .all(|r| r.ssrc == 0xaaaa && r.pt == 100 && r.mid == b"v0")
    );
    assert!(b.iter().all(|r| r.ssrc == 0xbbbb));
    for pair in a.windows(2).chain(b.windows(2)) {
        assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1));
    }
    // A switches from layer 2 to 0: layer 2 continues until a layer-0 keyframe
    w.engine.handle_command(
        w.t,
        Command::SetTargetLayer {
            endpoint: 2,
            source: 77,
            layer: 0,
        },
        &mut w.sink,
    );
    w.frame([false; 3]);
    let before: Vec<_> = w
        .sink
        .take_to(w.a.addr)
        .into_iter()
        .map(|p| open(&mut w.a, p))
        .collect();
    assert_eq!(before.len(), 2);
    w.frame([true, false, false]);
    w.frame([false; 3]);
    let after: Vec<_> = w
        .sink
        .take_to(w.a.addr)
        .into_iter()
        .map(|p| open(&mut w.a, p))
        .collect();
    assert_eq!(after.len(), 4);
    let all: Vec<_> = a.iter().chain(&before).chain(&after).collect();
    for pair in all.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "sequence continuous"
        );
        let (p0, p1) = (pair[0].picture_id.unwrap(), pair[1].picture_id.unwrap());
        assert!(
            p1 == p0 || p1 == (p0 + 1) & 0x7fff,
            "picture id continuous: {p0} -> {p1}"
        );
    }
    assert!(w.sink.events.contains(&Event::LayerSwitched {
        endpoint: 2,
        source: 77,
        layer: 0
    }));
}

#[test]
fn a_layer_the_publisher_does_not_send_falls_back_to_the_best_sent() {
    let mut w = World::new();
    // layer 2 is not sent: while the source starts, A (target 2) waits for it
    w.frame_of([Some(true), Some(true), None]);
    assert!(w.sink.take_to(w.a.addr).is_empty());
    // once the source has run for a second without it, A asks for a
    // keyframe of layer 1 and gets layer 1 from there rather than nothing
    w.plis_to_publisher();
    for _ in 0..31 {
        w.frame_of([Some(false), Some(false), None]);
    }
    assert!(w.sink.take_to(w.a.addr).is_empty());
    assert_eq!(w.plis_to_publisher(), 1, "one PLI, for layer 1");
    assert!(matches!(
        w.sink.events.last(),
        Some(Event::KeyframeRequested { layer: 1, .. })
    ));
    w.frame_of([Some(false), Some(true), None]);
    w.frame_of([Some(false), Some(false), None]);
    assert_eq!(w.sink.take_to(w.a.addr).len(), 4, "two frames of layer 1");
    assert!(w.sink.events.iter().any(|e| matches!(
        e,
        Event::LayerSwitched {
            endpoint: 2,
            layer: 1,
            ..
        }
    )));
    w.plis_to_publisher();
    // layer 2 comes back: A asks for its keyframe and keeps layer 1 meanwhile
    w.frame_of([Some(false), Some(false), Some(false)]);
    assert_eq!(w.plis_to_publisher(), 1, "one PLI for layer 2");
    assert_eq!(w.sink.take_to(w.a.addr).len(), 2);
    w.frame_of([Some(false), Some(false), Some(true)]);
    assert!(w.sink.events.iter().any(|e| matches!(
        e,
        Event::LayerSwitched {
            endpoint: 2,
            layer: 2,
            ..
        }
    )));
    // B (target 0) never left layer 0
    assert!(!w.sink.events.iter().any(|e| matches!(
        e,
        Event::LayerSwitched {
            endpoint: 3,
            layer: 1 | 2,
            ..
        }
    )));
}

#[test]
fn nack_is_answered_from_history_with_the_identical_packet() {
    let mut w = World::new();
    w.frame([true; 3]);
    let sent = w.sink.take_to(w.a.addr);
    let first = seq_of(&sent[0]);
    w.nack_from_a(first);
    let resent = w.sink.take_to(w.a.addr);
    assert_eq!(resent, vec![sent[0].clone()]);
    w.t += Duration::from_secs(2);
    w.engine.handle_timeout(w.t, &mut w.sink);
    assert!(w.sink.events.iter().any(|e| matches!(
        e,
        Event::Feedback {
            endpoint: 2,
            nacks: 1,
            retransmitted: 1,
            ..
        }
    )));
}

/// A resend is built again from the layer's ring, so its header must come
/// out as sent: when the subscriber's extension ids changed since, the
/// packet is withheld (an identical resend under the same SRTP index must
/// be byte for byte the packet sent).
#[test]
fn a_packet_that_would_not_build_again_as_sent_is_withheld() {
    let mut w = World::new();
    w.frame([true; 3]);
    let sent = w.sink.take_to(w.a.addr);
    let first = seq_of(&sent[0]);
    let a = w.engine.endpoint_idx(2).unwrap();
    w.engine.endpoints.get_mut(a).unwrap().ext.transport_cc = Some(6);
    w.nack_from_a(first);
    assert!(w.sink.take_to(w.a.addr).is_empty());
    assert_eq!(w.engine.counters().get(Counter::RetransmissionsWithheld), 1);
    // as it was: sent again, identical
    w.engine.endpoints.get_mut(a).unwrap().ext.transport_cc = Some(5);
    w.nack_from_a(first);
    assert_eq!(w.sink.take_to(w.a.addr), vec![sent[0].clone()]);
}

/// The sequence number of RTP packet `p`.
fn seq_of(p: &[u8]) -> u16 {
    RtpPacket::new_checked(p).unwrap().sequence_number()
}

/// Subscribers are answered from the rings their layers keep (A is on
/// the top layer, B on the lowest): each gets its own first packet again,
/// identical, though the streams hold no copy of it.
#[test]
fn subscribers_are_answered_from_the_rings_of_their_layers() {
    let mut w = World::new();
    w.frame([true; 3]);
    let to_a = w.sink.take_to(w.a.addr);
    let to_b = w.sink.take_to(w.b.addr);
    w.nack_from_a(seq_of(&to_a[0]));
    w.nack_from(3, 0xbbbb, seq_of(&to_b[0]));
    assert_eq!(w.sink.take_to(w.a.addr), vec![to_a[0].clone()]);
    assert_eq!(w.sink.take_to(w.b.addr), vec![to_b[0].clone()]);
}

#[test]
fn a_packet_nacked_again_and_again_goes_again_once_per_gap() {
    let mut w = World::new();
    w.frame([true; 3]);
    let sent = w.sink.take_to(w.a.addr);
    let first = seq_of(&sent[0]);
    let start = w.t;
    let mut resent_at = Vec::new();
    // a receiver asking every 10 ms, as libwebrtc does on a short path
    // while the copies wait in a queue
    for ms in (0..=120).step_by(10) {
        w.t = start + Duration::from_millis(ms);
        w.nack_from_a(first);
        let resent = w.sink.take_to(w.a.addr);
        assert!(resent.iter().all(|p| *p == sent[0]));
        if !resent.is_empty() {
            resent_at.push(ms);
        }
    }
    assert_eq!(
        resent_at,
        [0, 50, 100],
        "once per 50 ms on a path with no queue"
    );
    assert_eq!(
        w.engine.counters().get(Counter::RetransmissionsWithheld),
        10
    );
}

#[test]
fn plis_reach_the_publisher_once_per_window() {
    let mut w = World::new();
    w.frame([true; 3]);
    w.t += Duration::from_secs(1);
    w.plis_to_publisher();
    for who in [2, 3, 2, 3] {
        let media = if who == 2 { 0xaaaa } else { 0xbbbb };
        w.pli_from(who, media);
    }
    // one for layer 2 (A) and one for layer 0 (B); the repeats are deferred
    assert_eq!(w.plis_to_publisher(), 2);
    w.t += Duration::from_millis(100);
    w.engine.handle_timeout(w.t, &mut w.sink);
    assert_eq!(w.plis_to_publisher(), 0);
    w.t += Duration::from_millis(500);
    w.engine.handle_timeout(w.t, &mut w.sink);
    assert_eq!(
        w.plis_to_publisher(),
        2,
        "deferred requests go out when the window ends"
    );
}

/// A publisher that ignores a PLI (or never gets it) is asked again each
/// second, three times at most; a keyframe ends the asking.
#[test]
fn an_unanswered_keyframe_request_is_sent_again_until_a_keyframe_comes() {
    let mut w = World::new();
    w.frame([true; 3]);
    w.t += Duration::from_secs(1);
    w.plis_to_publisher();
    w.pli_from(2, 0xaaaa);
    assert_eq!(w.plis_to_publisher(), 1);
    let mut retries = Vec::new();
    for step in 1..=100 {
        w.t += Duration::from_millis(50);
        w.engine.handle_timeout(w.t, &mut w.sink);
        for _ in 0..w.plis_to_publisher() {
            retries.push(step * 50);
        }
    }
    assert_eq!(retries, [1000, 2000, 3000], "three retries, a second apart");
    w.pli_from(2, 0xaaaa);
    assert_eq!(w.plis_to_publisher(), 1, "a new request is a new attempt");
    w.frame([true; 3]);
    for _ in 0..60 {
        w.t += Duration::from_millis(50);
        w.engine.handle_timeout(w.t, &mut w.sink);
    }
    assert_eq!(w.plis_to_publisher(), 0, "the keyframe answered it");
}

#[test]
fn sender_reports_are_translated_per_subscriber() {
    let mut w = World::new();
    w.frame([true; 3]);
    w.sink.sent.clear();
    w.rtcp_from(1, |buf| {
        SenderReportRepr {
            ssrc: 300,
            ntp_time: 0xabcd_0000_0000,
            rtp_timestamp: 5000,
            packet_count: 9,
            octet_count: 9,
            report_blocks: &[],
        }
        .emit(buf)
        .unwrap()
    });
    let to_a = w.sink.take_to(w.a.addr);
    assert_eq!(to_a.len(), 1);
    let mut p = to_a[0].clone();
    let n = w.a.recv.unprotect_rtcp(&mut p).unwrap();
    let Some(Ok(Packet::SenderReport(sr))) = Compound::new(&p[..n]).next() else {
        panic!("not an SR")
    };
    assert_eq!(
        (sr.ssrc(), sr.ntp_time(), sr.packet_count()),
        (0xaaaa, 0xabcd_0000_0000, 2)
    );
    assert!(
        w.sink.take_to(w.b.addr).is_empty(),
        "B is on layer 0, the SR was for layer 2"
    );
}

#[test]
fn garbage_is_counted_and_the_stream_goes_on() {
    let mut w = World::new();
    let stranger: SocketAddr = "10.9.9.9:1".parse().unwrap();
    let mut junk = vec![0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 100];
    junk.extend([7u8; 40]);
    w.engine
        .handle_datagram(w.t, stranger, &mut junk.clone(), &mut w.sink);
    w.engine
        .handle_datagram(w.t, w.publisher.addr, &mut junk, &mut w.sink);
    let mut replay = vp8(&mut w.publisher, 0, 5, 0, true, true);
    w.engine
        .handle_datagram(w.t, w.publisher.addr, &mut replay.clone(), &mut w.sink);
    w.engine
        .handle_datagram(w.t, w.publisher.addr, &mut replay, &mut w.sink);
    let mut stun = vec![
        0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    w.engine
        .handle_datagram(w.t, stranger, &mut stun, &mut w.sink);
    // a padding-only probe on a known SSRC is consumed, not "malformed"
    let h = RtpHeader {
        marker: false,
        payload_type: 96,
        sequence_number: 7,
        timestamp: 0,
        ssrc: LAYER_SSRC[0],
        csrcs: &[],
        extensions: &[],
    };
    let mut probe = vec![0u8; 1500];
    let n = h.emit(&mut probe).unwrap();
    probe[0] |= 0x20;
    probe[n + 199] = 200; // 200 bytes of padding, the last one its count
    let len = w.publisher.send.protect_rtp(&mut probe, n + 200).unwrap();
    probe.truncate(len);
    w.engine
        .handle_datagram(w.t, w.publisher.addr, &mut probe, &mut w.sink);
    let c = w.engine.counters();
    assert_eq!(c.drops(DropReason::Padding), 1);
    assert_eq!(c.drops(DropReason::MalformedRtp), 0);
    assert_eq!(c.drops(DropReason::UnknownAddress), 1);
    assert_eq!(c.drops(DropReason::AuthFailed), 1);
    assert_eq!(c.drops(DropReason::Replayed), 1);
    assert_eq!(w.sink.exceptions.len(), 1);
    w.frame([true; 3]);
    assert_eq!(w.sink.take_to(w.a.addr).len(), 2);
}

#[test]
fn fan_out_crosses_and_a_mirror_forwards() {
    let mut home = World::new();
    home.engine.handle_command(
        home.t,
        Command::AddFanOut {
            source: 77,
            worker: 1,
        },
        &mut home.sink,
    );
    home.frame([true; 3]);
    assert_eq!(
        home.sink.cross.len(),
        6,
        "every packet of every layer crosses once"
    );
    // worker 1 holds subscriber C and a mirror of the source
    let mut other = Engine::new(EngineConfig {
        worker: 1,
        ..EngineConfig::default()
    });
    let mut sink = VecSink::default();
    let mut c = peer(4, 6000);
    add(&mut other, &mut sink, &c, home.t);
    other.handle_command(home.t, Command::AddSource(video_source(1)), &mut sink);
    other.handle_command(
        home.t,
        Command::Subscribe(subscription(4, 0xcccc, 1)),
        &mut sink,
    );
    for (_, msg, data) in std::mem::take(&mut home.sink.cross) {
        other.handle_cross(home.t, msg, &data, &mut sink);
    }
    let got: Vec<_> = sink
        .take_to(c.addr)
        .into_iter()
        .map(|p| open(&mut c, p))
        .collect();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.ssrc == 0xcccc));
    // a PLI from C travels back to the home worker as a keyframe request
    let mut buf = vec![0u8; 100];
    let n = PliRepr {
        sender_ssrc: 1,
        media_ssrc: 0xcccc,
    }
    .emit(&mut buf)
    .unwrap();
    let n = c.send.protect_rtcp(&mut buf, n).unwrap();
    other.handle_datagram(
        home.t + Duration::from_secs(1),
        c.addr,
        &mut buf[..n],
        &mut sink,
    );
    assert!(
        sink.cross
            .iter()
            .any(|(w, m, _)| *w == 0 && m.kind == CrossKind::KeyframeRequest { layer: 1 })
    );
}

/// Decrypts what the engine sent to `p`: (ssrc, transport-wide seq, bytes).
fn received_twcc(p: &mut Peer, pkts: Vec<Vec<u8>>) -> Vec<(u32, u16, usize)> {
    pkts.into_iter()
        .filter(|d| !(192..=223).contains(&d[1]))
        .map(|mut d| {
            let size = d.len();
            let n = p.recv.unprotect_rtp(&mut d).expect("decrypts");
            let r = RtpPacket::new_checked(&d[..n]).unwrap();
            let seq = r
                .extension(5)
                .map(|v| u16::from_be_bytes([v[0], v[1]]))
                .expect("transport-wide sequence number");
            (r.ssrc(), seq, size)
        })
        .collect()
}

#[test]
fn transport_cc_feedback_gives_bandwidth_events_and_probes_pad_with_rtx() {
    use switchyard_wire::rtcp::{PacketStatus, TransportCcRepr};
    let mut w = World::new();
    // A receives layer 2 with RTX
    w.engine.handle_command(
        w.t,
        Command::Unsubscribe {
            endpoint: 2,
            source: 77,
        },
        &mut w.sink,
    );
    let mut spec = subscription(2, 0xaaaa, 2);
    spec.rtx_ssrc = 0xaaab;
    spec.rtx_payload_type = 101;
    w.engine
        .handle_command(w.t, Command::Subscribe(spec), &mut w.sink);
    w.frame([true; 3]);
    // 20 frames; A acknowledges each batch: arrivals 33 ms apart per frame
    let mut reference = 1000u32;
    let mut feedback_count = 0u8;
    for _ in 0..20 {
        w.frame([false; 3]);
        let pkts = w.sink.take_to(w.a.addr);
        let got = received_twcc(&mut w.a, pkts);
        if got.is_empty() {
            continue;
        }
        let statuses: Vec<PacketStatus> = (0..got.len())
            .map(|i| PacketStatus::Received(if i == 0 { 0 } else { 4 }))
            .collect();
        let repr = TransportCcRepr {
            sender_ssrc: 2,
            media_ssrc: 0xaaaa,
            base_sequence: got[0].1,
            reference_time: reference,
            feedback_count,
            packets: &statuses,
        };
        reference += 1; // 64 ms later: the receiver's clock runs on
        feedback_count = feedback_count.wrapping_add(1);
        w.rtcp_from(2, |buf| repr.emit(buf).unwrap());
    }
    w.t += Duration::from_millis(250);
    w.sink.events.clear();
    w.engine.handle_timeout(w.t, &mut w.sink);
    let bw = w.sink.events.iter().find_map(|e| match e {
        Event::Bandwidth {
            endpoint: 2,
            estimate_bps,
            acked_bps,
            probing: false,
            ..
        } => Some((*estimate_bps, *acked_bps)),
        _ => None,
    });
    let (estimate, acked) = bw.expect("a bandwidth event for A");
    assert!(acked > 0 && estimate > 0, "{estimate} {acked}");
    assert!(
        !w.sink
            .events
            .iter()
            .any(|e| matches!(e, Event::Bandwidth { endpoint: 3, .. })),
        "B sent no feedback: no estimate"
    );

    // a probe at 4 Mbit/s for 300 ms pads A's stream with RTX copies
    w.sink.sent.clear();
    w.engine.handle_command(
        w.t,
        Command::Probe {
            endpoint: 2,
            target_bps: 4_000_000,
            duration_ms: 300,
        },
        &mut w.sink,
    );
    let start = w.t;
    while w.t < start + Duration::from_millis(300) {
        w.t += Duration::from_millis(5);
        w.engine.handle_timeout(w.t, &mut w.sink);
    }
    let pkts = w.sink.take_to(w.a.addr);
    let got = received_twcc(&mut w.a, pkts);
    let bytes: usize = got.iter().map(|g| g.2).sum();
    assert!(got.iter().all(|g| g.0 == 0xaaab), "probes are RTX");
    assert!(
        bytes as f64 > 0.7 * 4_000_000.0 / 8.0 * 0.3,
        "{bytes} bytes in 300 ms"
    );
    let seqs: Vec<u16> = got.iter().map(|g| g.1).collect();
    assert!(
        seqs.windows(2).all(|p| p[1] == p[0].wrapping_add(1)),
        "consecutive transport-wide sequence numbers"
    );
    // B has no RTX: probing it sends nothing
    w.engine.handle_command(
        w.t,
        Command::Probe {
            endpoint: 3,
            target_bps: 4_000_000,
            duration_ms: 100,
        },
        &mut w.sink,
    );
    for _ in 0..10 {
        w.t += Duration::from_millis(5);
        w.engine.handle_timeout(w.t, &mut w.sink);
    }
    assert!(
        w.sink
            .take_to(w.b.addr)
            .iter()
            .all(|d| (192..=223).contains(&d[1]))
    );
}

#[test]
fn a_paused_stream_sends_nothing_and_resumes_at_a_keyframe() {
    let mut w = World::new();
    w.frame([true; 3]);
    assert_eq!(w.sink.take_to(w.a.addr).len(), 2);
    w.sink.take_to(w.b.addr);
    let set = |w: &mut World, layer| {
        w.engine.handle_command(
            w.t,
            Command::SetTargetLayer {
                endpoint: 2,
                source: 77,
                layer,
            },
            &mut w.sink,
        )
    };
    set(&mut w, crate::abi::command::PAUSED);
    w.frame([true; 3]);
    w.frame([false; 3]);
    assert!(w.sink.take_to(w.a.addr).is_empty(), "paused");
    assert!(w.sink.take_to(w.b.addr).len() == 4, "B is not affected");
    w.t += Duration::from_secs(1);
    w.plis_to_publisher();
    set(&mut w, 1);
    assert_eq!(w.plis_to_publisher(), 1, "resuming asks for a keyframe");
    w.frame([false; 3]);
    assert!(
        w.sink.take_to(w.a.addr).is_empty(),
        "waits for the keyframe"
    );
    w.frame([false, true, false]);
    assert_eq!(w.sink.take_to(w.a.addr).len(), 2);
}

#[test]
fn one_receiver_passes_on_at_most_three_keyframe_requests_per_ten_seconds_per_stream() {
    let mut w = World::new();
    // the publisher's second video (a screen, say), which A also receives
    let mut screen = video_source(1);
    screen.id = 88;
    for l in screen.layers.iter_mut() {
        l.ssrc += 0x1000;
    }
    let screen_ssrcs: Vec<u32> = screen.layers.iter().map(|l| l.ssrc).collect();
    w.engine
        .handle_command(w.t, Command::AddSource(screen), &mut w.sink);
    let second = SubscriptionSpec {
        source: 88,
        ..subscription(2, 0xaaab, 2)
    };
    w.engine
        .handle_command(w.t, Command::Subscribe(second), &mut w.sink);
    w.frame([true; 3]);
    w.plis_to_publisher();
    // A asks every second for 9 s: three get through (each a window
    // apart), each answered by a keyframe (so none is retried; the
    // screen, which sends nothing, has its first request retried)
    let mut through = 0;
    for _ in 0..9 {
        w.t += Duration::from_secs(1);
        w.pli_from(2, 0xaaaa);
        w.engine.handle_timeout(w.t, &mut w.sink);
        let plis = w.pli_ssrcs_to_publisher();
        through += plis.iter().filter(|s| !screen_ssrcs.contains(s)).count();
        w.frame([true; 3]);
    }
    assert_eq!(through, 3);
    // B is not held back by A's loop, nor is A's other stream
    w.t += Duration::from_millis(600);
    w.pli_from(3, 0xbbbb);
    assert_eq!(w.plis_to_publisher(), 1);
    w.pli_from(2, 0xaaab);
    assert_eq!(w.plis_to_publisher(), 1);
    // a new window: A again
    w.t += Duration::from_secs(2);
    w.pli_from(2, 0xaaaa);
    assert_eq!(w.plis_to_publisher(), 1);
}

#[test]
fn a_new_engine_resumed_from_continuity_records_is_accepted_by_every_receiver() {
    let mut w = World::new();
    w.frame([true; 3]);
    for _ in 0..5 {
        w.frame([false; 3]);
    }
    let before: Vec<u16> = w
        .sink
        .take_to(w.a.addr)
        .into_iter()
        .map(|p| open(&mut w.a, p).seq)
        .collect();
    w.sink.take_to(w.b.addr).into_iter().for_each(|p| {
        open(&mut w.b, p);
    });
    // the publisher has accepted SRTCP from the old engine
    w.engine.handle_command(
        w.t,
        Command::RequestKeyframe {
            source: 77,
            layer: 2,
        },
        &mut w.sink,
    );
    assert!(w.plis_to_publisher() >= 1);
    let records: Vec<Continuity> = w.engine.continuity(w.t, 1_000_000).collect();
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Continuity::Stream { endpoint: 2, .. }))
    );

    // the old engine dies; a new one gets the same commands and the records
    w.t += Duration::from_millis(400);
    let mut engine = Engine::new(EngineConfig::default());
    engine.set_wall_clock(w.t, 1_000_400);
    let mut sink = VecSink::default();
    let resume = |engine: &mut Engine, sink: &mut VecSink, id: u64, t: Instant| {
        for r in records.iter().filter(|r| r.endpoint() == id) {
            if !matches!(r, Continuity::Stream { .. } | Continuity::Layers { .. }) {
                engine.handle_command(t, Command::Resume(r.carried_on()), sink);
            }
        }
    };
    for p in [&w.publisher, &w.a, &w.b] {
        add(&mut engine, &mut sink, p, w.t);
        resume(&mut engine, &mut sink, p.id, w.t);
    }
    engine.handle_command(w.t, Command::AddSource(video_source(1)), &mut sink);
    for (id, ssrc, layer) in [(2, 0xaaaa, 2), (3, 0xbbbb, 0)] {
        engine.handle_command(
            w.t,
            Command::Subscribe(subscription(id, ssrc, layer)),
            &mut sink,
        );
    }
    for r in records
        .iter()
        .filter(|r| matches!(r, Continuity::Stream { .. }))
    {
        engine.handle_command(w.t, Command::Resume(r.carried_on()), &mut sink);
    }
    assert!(
        !sink
            .events
            .iter()
            .any(|e| matches!(e, Event::CommandFailed { .. })),
        "{:?}",
        sink.events
    );
    w.engine = engine;
    w.sink = sink;
    // its keyframe requests pass the publisher's SRTCP replay check
    assert!(w.plis_to_publisher() >= 1);
    w.frame([false; 3]);
    assert!(w.sink.take_to(w.a.addr).is_empty(), "waits for a keyframe");
    w.frame([true; 3]);
    w.frame([false; 3]);
    let after: Vec<u16> = w
        .sink
        .take_to(w.a.addr)
        .into_iter()
        .map(|p| open(&mut w.a, p).seq)
        .collect();
    assert_eq!(after.len(), 4);
    let last = *before.last().unwrap();
    assert_eq!(after[0], last.wrapping_add(RTP_MARGIN as u16 + 1));
    assert!(after.windows(2).all(|p| p[1] == p[0].wrapping_add(1)));
    // b's stream (it started near a wrap) decrypts too
    let b = w.sink.take_to(w.b.addr);
    assert_eq!(b.len(), 4);
    for p in b {
        open(&mut w.b, p);
    }
}

#[test]
fn a_lost_packet_is_asked_for_again_each_round_trip_until_it_comes() {
    let mut w = World::new();
    w.frame([true; 3]);
    w.nacked_to_publisher();
    // layer 0 loses two packets
    let lost = [w.seqs[0], w.seqs[0].wrapping_add(1)];
    w.seqs[0] = w.seqs[0].wrapping_add(2);
    w.frame([false; 3]);
    assert_eq!(w.nacked_to_publisher(), lost, "asked for at once");
    // nothing came: asked again after the assumed round trip (100 ms + 1/4)
    w.t += Duration::from_millis(60);
    w.engine.handle_timeout(w.t, &mut w.sink);
    assert_eq!(w.nacked_to_publisher(), Vec::<u16>::new());
    w.t += Duration::from_millis(80);
    w.engine.handle_timeout(w.t, &mut w.sink);
    assert_eq!(w.nacked_to_publisher(), lost, "asked for again");
    // the first arrives; only the second is asked for a third time
    let mut pkt = vp8(&mut w.publisher, 0, lost[0], 1, true, false);
    w.engine
        .handle_datagram(w.t, w.publisher.addr, &mut pkt, &mut w.sink);
    w.t += Duration::from_millis(130);
    w.engine.handle_timeout(w.t, &mut w.sink);
    assert_eq!(w.nacked_to_publisher(), [lost[1]]);
    // and given up after the fourth request
    for _ in 0..4 {
        w.t += Duration::from_millis(130);
        w.engine.handle_timeout(w.t, &mut w.sink);
    }
    assert_eq!(w.nacked_to_publisher(), [lost[1]]);
    let c = w.engine.counters();
    assert_eq!(c.get(Counter::UpstreamNackRetries), 4);
    assert_eq!(c.get(Counter::UpstreamLossGivenUp), 1);
}

#[test]
fn lost_audio_is_not_asked_for() {
    let t = Instant::now();
    let mut engine = Engine::new(EngineConfig::default());
    let mut sink = VecSink::default();
    let mut publisher = peer(1, 5000);
    add(&mut engine, &mut sink, &publisher, t);
    let audio = SourceSpec {
        kind: MediaKind::Audio,
        codec: Codec::Opus,
        clock_rate: 48_000,
        layer_count: 1,
        ..video_source(1)
    };
    engine.handle_command(t, Command::AddSource(audio), &mut sink);
    for seq in [10, 11, 14, 15] {
        let mut pkt = vp8(&mut publisher, 0, seq, seq, true, false);
        engine.handle_datagram(t, publisher.addr, &mut pkt, &mut sink);
    }
    engine.handle_timeout(t + Duration::from_millis(500), &mut sink);
    for mut p in sink.take_to(publisher.addr) {
        let n = publisher.recv.unprotect_rtcp(&mut p).unwrap();
        assert!(
            Compound::new(&p[..n]).all(|x| !matches!(x, Ok(Packet::Nack(_)))),
            "no NACK for audio"
        );
    }
    assert_eq!(engine.counters().get(Counter::UpstreamLossGivenUp), 0);
}

/// An endpoint silent for 5 s is reported idle once; its next packet that
/// authenticates reports it active again (the control plane keeps ICE
/// consent while media flows), and a packet that does not is no sign.
#[test]
fn a_silent_endpoint_is_reported_idle_once_and_active_at_its_next_packet() {
    let mut w = World::new();
    w.frame([true; 3]);
    let idle_or_active = |w: &mut World| -> Vec<Event> {
        std::mem::take(&mut w.sink.events)
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::EndpointIdle { endpoint: 1, .. } | Event::EndpointActive { endpoint: 1 }
                )
            })
            .collect()
    };
    for _ in 0..14 {
        w.t += Duration::from_millis(500);
        w.engine.handle_timeout(w.t, &mut w.sink);
    }
    let seen = idle_or_active(&mut w);
    assert!(
        matches!(seen.as_slice(), [Event::EndpointIdle { endpoint: 1, .. }]),
        "{seen:?}"
    );
    // a packet that does not authenticate changes nothing
    let mut forged = vp8(&mut w.publisher, 0, 999, 99, true, true);
    let n = forged.len();
    forged[n - 1] ^= 0xff;
    let from = w.publisher.addr;
    w.engine
        .handle_datagram(w.t, from, &mut forged, &mut w.sink);
    assert!(idle_or_active(&mut w).is_empty());
    w.frame([false; 3]);
    assert_eq!(
        idle_or_active(&mut w),
        vec![Event::EndpointActive { endpoint: 1 }]
    );
}

/// A protected RTX packet on `rtx_ssrc` (payload type 97) carrying the VP8
/// packet `osn` of layer 0 (RFC 4588: the original sequence number first).
fn rtx_of(p: &mut Peer, rtx_ssrc: u32, rtx_seq: u16, osn: u16, key: bool) -> Vec<u8> {
    let twcc = rtx_seq.wrapping_add(30_000).to_be_bytes();
    let exts = [Extension { id: 5, data: &twcc }];
    let h = RtpHeader {
        marker: false,
        payload_type: 97,
        sequence_number: rtx_seq,
        timestamp: 1000,
        ssrc: rtx_ssrc,
        csrcs: &[],
        extensions: &exts,
    };
    let mut buf = vec![0u8; 1500];
    let n = h.emit(&mut buf).unwrap();
    buf[n..n + 2].copy_from_slice(&osn.to_be_bytes());
    let desc = [0x90, 0xc0, 0x80, 0x01, 0x00, if key { 0x00 } else { 0x01 }];
    buf[n + 2..n + 2 + desc.len()].copy_from_slice(&desc);
    let len = n + 2 + desc.len() + 100;
    let out = p.send.protect_rtp(&mut buf, len).unwrap();
    buf.truncate(out);
    buf
}

/// libwebrtc pads (probes its estimate) by sending recent packets again on
/// the RTX stream. Forwarded, each copy is a replay the subscriber's SRTP
/// drops — which its transport-wide feedback reports as loss — and a copy
/// of a keyframe packet would pass for a new keyframe. A retransmission of
/// a packet really missing is forwarded once.
#[test]
fn copies_of_packets_already_received_are_dropped_and_a_repair_goes_through_once() {
    let t = Instant::now();
    let mut engine = Engine::new(EngineConfig::default());
    let mut sink = VecSink::default();
    let (mut publisher, mut sub) = (peer(1, 5000), peer(2, 5000));
    add(&mut engine, &mut sink, &publisher, t);
    add(&mut engine, &mut sink, &sub, t);
    let mut source = video_source(1);
    source.layer_count = 1;
    source.layers[0].rtx_ssrc = 101;
    source.rtx_payload_type = 97;
    engine.handle_command(t, Command::AddSource(source), &mut sink);
    engine.handle_command(t, Command::Subscribe(subscription(2, 0xaaaa, 0)), &mut sink);
    // a keyframe (10, 11), then 13: 12 is missing
    for (seq, key) in [(10, true), (11, true), (13, false)] {
        let mut pkt = vp8(&mut publisher, 0, seq, 0, seq == 10, key);
        engine.handle_datagram(t, publisher.addr, &mut pkt, &mut sink);
    }
    // every packet sent to the subscriber, each one decrypted (a replay
    // fails there)
    let forwarded = |sink: &mut VecSink, sub: &mut Peer| -> Vec<u16> {
        let to = sub.addr;
        sink.take_to(to)
            .into_iter()
            .map(|mut p| {
                let n = sub.recv.unprotect_rtp(&mut p).expect("no replay");
                RtpPacket::new_checked(&p[..n]).unwrap().sequence_number()
            })
            .collect()
    };
    let first = forwarded(&mut sink, &mut sub);
    assert_eq!(first.len(), 3);
    // padding: the keyframe's packets and 13 again, twice over
    for (k, osn) in [10, 11, 13, 10, 11, 13].into_iter().enumerate() {
        let mut pkt = rtx_of(&mut publisher, 101, k as u16, osn, osn != 13);
        engine.handle_datagram(t, publisher.addr, &mut pkt, &mut sink);
    }
    assert_eq!(forwarded(&mut sink, &mut sub), Vec::<u16>::new());
    assert_eq!(engine.counters().drops(DropReason::Duplicate), 6);
    // the repair of 12 goes through, once
    for k in 6..8 {
        let mut pkt = rtx_of(&mut publisher, 101, k, 12, false);
        engine.handle_datagram(t, publisher.addr, &mut pkt, &mut sink);
    }
    assert_eq!(
        forwarded(&mut sink, &mut sub),
        [first[1].wrapping_add(1)],
        "in its place"
    );
    assert_eq!(engine.counters().drops(DropReason::Duplicate), 7);
}
