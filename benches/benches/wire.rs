//! The per-packet header work of the forwarding path.
//!
//! `cargo bench -p switchyard-benches --bench wire`
//! `rewrite`: parse a 1200-byte VP8 packet, rewrite SSRC, sequence number,
//! timestamp and the transport-cc extension, then parse the VP8 descriptor
//! and rewrite picture id and TL0PICIDX — what the SFU does per packet and
//! subscriber before encryption.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use switchyard_benches::{ext_id, vp8_packet};
use switchyard_wire::codec::Vp8Descriptor;
use switchyard_wire::demux::PacketKind;
use switchyard_wire::rtcp::{Compound, NackPair, NackRepr, ReceiverReportRepr, RembRepr};
use switchyard_wire::rtp::RtpPacket;
use switchyard_wire::stun::{StunMessage, StunWriter, attr};

fn rewrite(buf: &mut [u8], n: u16) -> Option<()> {
    if PacketKind::classify(buf) != PacketKind::Rtp {
        return None;
    }
    let mut p = RtpPacket::new_checked(&mut *buf).ok()?;
    p.set_ssrc(0x1234_5678);
    p.set_sequence_number(n);
    p.set_timestamp(u32::from(n) * 3000);
    p.rewrite_extension(ext_id::TRANSPORT_CC, &n.to_be_bytes())
        .ok()?;
    let mut d = Vp8Descriptor::new_checked(p.payload_mut()).ok()?;
    d.set_picture_id(n & 0x7fff).ok()?;
    d.set_tl0_pic_idx(n as u8).ok()?;
    Some(())
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    let mut buf = vp8_packet(100, 7, 1200);
    let mut n = 0u16;
    g.bench_function("rtp_parse_ext_vp8_rewrite/1200", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(rewrite(black_box(&mut buf), n))
        })
    });
    g.bench_function("rtp_parse_only/1200", |b| {
        b.iter(|| {
            black_box(
                RtpPacket::new_checked(black_box(&buf[..]))
                    .map(|p| p.extension(ext_id::MID).is_some()),
            )
        })
    });

    let mut rtcp = [0u8; 256];
    let mut len = ReceiverReportRepr {
        ssrc: 1,
        report_blocks: &[],
    }
    .emit(&mut rtcp)
    .unwrap_or(0);
    len += RembRepr {
        sender_ssrc: 1,
        bitrate: 2_500_000,
        ssrcs: &[2, 3],
    }
    .emit(&mut rtcp[len..])
    .unwrap_or(0);
    let pairs = [NackPair {
        pid: 10,
        blp: 0x0101,
    }];
    len += NackRepr {
        sender_ssrc: 1,
        media_ssrc: 2,
        pairs: &pairs,
    }
    .emit(&mut rtcp[len..])
    .unwrap_or(0);
    g.bench_function("rtcp_compound_walk/rr+remb+nack", |b| {
        b.iter(|| {
            Compound::new(black_box(&rtcp[..len]))
                .filter(|p| p.is_ok())
                .count()
        })
    });

    let mut stun = [0u8; 256];
    let mut w = StunWriter::new(&mut stun, 0x0001, &[7; 12]).expect("room");
    let _ = w.add(attr::USERNAME, b"abcd:efgh");
    let _ = w.add_u32(attr::PRIORITY, 1_853_824_767);
    let _ = w.add_u64(attr::ICE_CONTROLLING, 42);
    let _ = w.add(attr::USE_CANDIDATE, &[]);
    let _ = w.add_message_integrity(b"0123456789abcdefghijkl");
    let _ = w.add_fingerprint();
    let slen = w.finish();
    g.bench_function("stun_verify_integrity_fingerprint", |b| {
        b.iter(|| {
            let m = StunMessage::new_checked(black_box(&stun[..slen])).ok()?;
            m.verify_fingerprint().ok()?;
            m.verify_integrity(b"0123456789abcdefghijkl").ok()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
