//! Entry points for fuzzing: each takes arbitrary bytes, runs a parser and
//! touches everything the view exposes. They must never panic. Used by the
//! `cargo fuzz` targets in `fuzz/` and by the bounded random-input runner
//! that CI falls back to when cargo-fuzz is unavailable.

use crate::codec::{H264Payload, Vp8Descriptor, Vp9Descriptor};
use crate::demux::PacketKind;
use crate::rtcp::{Compound, Packet};
use crate::rtp::RtpPacket;
use crate::stun::{StunMessage, attr, read_xor_address};
use core::hint::black_box;

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every entry point, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("rtp", rtp),
    ("rtcp", rtcp),
    ("stun", stun),
    ("vp8", vp8),
    ("vp9", vp9),
    ("h264", h264),
    ("demux", demux),
    ("framing", framing),
    ("udp_frame", udp_frame),
];

/// RTP view, extensions and in-place rewrites.
pub fn rtp(data: &[u8]) {
    let mut owned = [0u8; 2048];
    let n = data.len().min(owned.len());
    owned[..n].copy_from_slice(&data[..n]);
    let Ok(mut p) = RtpPacket::new_checked(&mut owned[..n]) else {
        return;
    };
    black_box((
        p.sequence_number(),
        p.timestamp(),
        p.ssrc(),
        p.payload().len(),
    ));
    black_box(p.csrcs().fold(0u32, u32::wrapping_add));
    let ids: [u8; 4] = [1, 3, 14, 200];
    for e in p.extensions() {
        black_box(e);
    }
    for id in ids {
        if let Some(v) = p.extension_mut(id) {
            v.fill(0xaa);
        }
    }
    p.set_sequence_number(1);
    black_box(p.payload_mut().len());
}

/// Compound RTCP with every typed packet walked.
pub fn rtcp(data: &[u8]) {
    for p in Compound::new(data) {
        let Ok(p) = p else { break };
        match p {
            Packet::SenderReport(sr) => {
                black_box((sr.ntp_time(), sr.report_blocks().count()));
            }
            Packet::ReceiverReport(rr) => {
                black_box(rr.report_blocks().count());
            }
            Packet::Sdes(s) => {
                for c in s.chunks() {
                    black_box((c.ssrc, c.items().count(), c.cname()));
                }
            }
            Packet::Bye(b) => {
                black_box((b.ssrcs().count(), b.reason()));
            }
            Packet::App(a) => {
                black_box((a.name(), a.data()));
            }
            Packet::Nack(n) => {
                black_box(n.lost().count());
            }
            Packet::Fir(f) => {
                black_box(f.entries().count());
            }
            Packet::Remb(r) => {
                black_box((r.bitrate(), r.ssrcs().count()));
            }
            Packet::TransportCc(t) => {
                black_box(t.packets().count());
            }
            other => {
                black_box(other);
            }
        }
    }
}

/// STUN view, attributes, integrity and fingerprint.
pub fn stun(data: &[u8]) {
    let Ok(m) = StunMessage::new_checked(data) else {
        return;
    };
    black_box((m.class(), m.method(), m.username()));
    let txid = m.transaction_id();
    for a in m.attributes() {
        if a.kind == attr::XOR_MAPPED_ADDRESS {
            let _ = black_box(read_xor_address(a.value, &txid));
        }
    }
    let _ = black_box(m.verify_integrity(b"key"));
    let _ = black_box(m.verify_fingerprint());
}

/// VP8 descriptor with rewrites.
pub fn vp8(data: &[u8]) {
    let mut owned = [0u8; 64];
    let n = data.len().min(owned.len());
    owned[..n].copy_from_slice(&data[..n]);
    let Ok(mut d) = Vp8Descriptor::new_checked(&mut owned[..n]) else {
        return;
    };
    black_box((
        d.picture_id(),
        d.tl0_pic_idx(),
        d.temporal_id(),
        d.key_idx(),
        d.is_keyframe(),
    ));
    let _ = d.set_picture_id(0x7fff);
    let _ = d.set_tl0_pic_idx(3);
}

/// VP9 descriptor.
pub fn vp9(data: &[u8]) {
    if let Ok(d) = Vp9Descriptor::parse(data) {
        black_box((d.is_keyframe(), d.header_len <= data.len()));
    }
}

/// H.264 payload.
pub fn h264(data: &[u8]) {
    let _ = black_box(H264Payload::parse(data).map(|p| p.is_keyframe()));
}

/// First-byte demultiplexing.
pub fn demux(data: &[u8]) {
    black_box(PacketKind::classify(data));
}

/// An RFC 4571 byte stream split into frames, each classified and, when
/// STUN, parsed.
pub fn framing(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some(f)) = crate::framing::next_frame(rest, 1500) {
        demux(f.packet);
        stun(f.packet);
        rest = &rest[f.consumed..];
    }
}

/// A received Ethernet frame parsed down to its UDP datagram; a datagram
/// that parses is built again from what was found and must parse the same.
pub fn udp_frame(data: &[u8]) {
    let Ok(p) = crate::udp_frame::parse(data) else {
        return;
    };
    let route = crate::udp_frame::Route {
        src_mac: p.dst_mac,
        dst_mac: p.src_mac,
        src: p.dst,
        dst: p.src,
    };
    let hdr = crate::udp_frame::header_len(route.src.ip());
    let mut out = [0u8; 2048];
    let Some(room) = out.get_mut(hdr..hdr + p.payload.len()) else {
        return;
    };
    room.copy_from_slice(p.payload);
    let n = crate::udp_frame::write_headers(&mut out, &route, p.payload.len())
        .expect("a parsed datagram can be built again");
    let q = crate::udp_frame::parse(&out[..n]).expect("a built frame parses");
    assert_eq!((q.src, q.dst, q.payload), (route.src, route.dst, p.payload));
}
