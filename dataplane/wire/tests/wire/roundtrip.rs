//! Property tests: build → parse → build gives the same bytes and fields.

use proptest::prelude::*;
use switchyard_wire::rtcp::*;
use switchyard_wire::rtp::{Extension, RtpHeader, RtpPacket};
use switchyard_wire::stun::{StunMessage, StunWriter, attr, read_xor_address};

fn report_block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..0x80_0000,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ssrc, fraction_lost, cumulative_lost, ehs, jitter, lsr, dlsr)| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost,
                extended_highest_seq: ehs,
                jitter,
                last_sr: lsr,
                delay_since_last_sr: dlsr,
            },
        )
}

fn packet_status() -> impl Strategy<Value = PacketStatus> {
    prop_oneof![
        3 => Just(PacketStatus::NotReceived),
        5 => (0i16..256).prop_map(PacketStatus::Received),
        1 => any::<i16>().prop_map(PacketStatus::Received),
    ]
}

proptest! {
    #[test]
    fn rtp_header_round_trip(
        marker: bool, pt in 0u8..128, seq: u16, ts: u32, ssrc: u32,
        csrcs in proptest::collection::vec(any::<u32>(), 0..15),
        ext in proptest::collection::vec((1u8..=255, proptest::collection::vec(any::<u8>(), 0..20)), 0..6),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        // ids must be unique for lookup by id to be meaningful
        let mut seen = std::collections::HashSet::new();
        let ext: Vec<_> = ext.into_iter().filter(|(id, _)| seen.insert(*id)).collect();
        let exts: Vec<Extension> = ext.iter().map(|(id, d)| Extension { id: *id, data: d }).collect();
        let h = RtpHeader { marker, payload_type: pt, sequence_number: seq, timestamp: ts, ssrc, csrcs: &csrcs, extensions: &exts };
        let mut buf = vec![0u8; 2048];
        let n = h.emit(&mut buf).unwrap();
        buf[n..n + payload.len()].copy_from_slice(&payload);
        let p = RtpPacket::new_checked(&buf[..n + payload.len()]).unwrap();
        prop_assert_eq!((p.marker(), p.payload_type(), p.sequence_number(), p.timestamp(), p.ssrc()), (marker, pt, seq, ts, ssrc));
        prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs.clone());
        prop_assert_eq!(p.payload(), &payload[..]);
        for e in &exts {
            prop_assert_eq!(p.extension(e.id), Some(e.data));
        }
        let parsed: Vec<_> = p.extensions().collect();
        prop_assert_eq!(parsed, exts.clone());
        // re-emit from the parsed fields: identical header bytes
        let exts2: Vec<_> = p.extensions().collect();
        let csrcs2: Vec<_> = p.csrcs().collect();
        let h2 = RtpHeader { marker: p.marker(), payload_type: p.payload_type(), sequence_number: p.sequence_number(), timestamp: p.timestamp(), ssrc: p.ssrc(), csrcs: &csrcs2, extensions: &exts2 };
        let mut again = vec![0u8; 2048];
        let n2 = h2.emit(&mut again).unwrap();
        prop_assert_eq!(&again[..n2], &buf[..n]);
    }

    #[test]
    fn sr_rr_round_trip(ssrc: u32, ntp: u64, rtp_ts: u32, pc: u32, oc: u32,
                        blocks in proptest::collection::vec(report_block(), 0..31)) {
        let mut buf = vec![0u8; 1024];
        let sr = SenderReportRepr { ssrc, ntp_time: ntp, rtp_timestamp: rtp_ts, packet_count: pc, octet_count: oc, report_blocks: &blocks };
        let n = sr.emit(&mut buf).unwrap();
        let v = SenderReport::new_checked(&buf[..n]).unwrap();
        let got: Vec<_> = v.report_blocks().collect();
        let again = SenderReportRepr { ssrc: v.ssrc(), ntp_time: v.ntp_time(), rtp_timestamp: v.rtp_timestamp(), packet_count: v.packet_count(), octet_count: v.octet_count(), report_blocks: &got };
        prop_assert_eq!(again, sr);
        let rr = ReceiverReportRepr { ssrc, report_blocks: &blocks };
        let n = rr.emit(&mut buf).unwrap();
        let v = ReceiverReport::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(v.report_blocks().collect::<Vec<_>>(), blocks);
    }

    #[test]
    fn feedback_round_trip(sender: u32, media: u32,
                           lost in proptest::collection::btree_set(any::<u16>(), 1..60),
                           bitrate in 0u64..(1 << 40), ssrcs in proptest::collection::vec(any::<u32>(), 0..8),
                           fir in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..5)) {
        let lost: Vec<u16> = lost.into_iter().collect();
        let mut pairs = vec![NackPair::default(); lost.len()];
        let (np, used) = NackPair::pack(&lost, &mut pairs);
        prop_assert_eq!(used, lost.len());
        let mut buf = vec![0u8; 1024];
        let n = NackRepr { sender_ssrc: sender, media_ssrc: media, pairs: &pairs[..np] }.emit(&mut buf).unwrap();
        let nack = Nack::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(nack.lost().collect::<Vec<_>>(), lost);

        let n = RembRepr { sender_ssrc: sender, bitrate, ssrcs: &ssrcs }.emit(&mut buf).unwrap();
        let r = Remb::new_checked(&buf[..n]).unwrap();
        let got = r.bitrate();
        prop_assert!(got <= bitrate && bitrate - got <= bitrate >> 17, "{} vs {}", got, bitrate);
        prop_assert_eq!(r.ssrcs().collect::<Vec<_>>(), ssrcs);

        let entries: Vec<_> = fir.iter().map(|&(ssrc, seq_nr)| FirEntry { ssrc, seq_nr }).collect();
        let n = FirRepr { sender_ssrc: sender, entries: &entries }.emit(&mut buf).unwrap();
        prop_assert_eq!(Fir::new_checked(&buf[..n]).unwrap().entries().collect::<Vec<_>>(), entries);
    }

    #[test]
    fn transport_cc_round_trip(base: u16, reference in 0u32..0x100_0000, count: u8,
                               packets in proptest::collection::vec(packet_status(), 1..400)) {
        let repr = TransportCcRepr { sender_ssrc: 1, media_ssrc: 2, base_sequence: base, reference_time: reference, feedback_count: count, packets: &packets };
        let mut buf = vec![0u8; repr.len()];
        let n = repr.emit(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        let fb = TransportCc::new_checked(&buf).unwrap();
        let statuses: Vec<_> = fb.packets().map(|(_, s)| s).collect();
        prop_assert_eq!(&statuses, &packets);
        prop_assert_eq!(fb.packets().next().map(|(s, _)| s), Some(base));
        let again = TransportCcRepr { sender_ssrc: fb.sender_ssrc(), media_ssrc: fb.media_ssrc(), base_sequence: fb.base_sequence(), reference_time: fb.reference_time(), feedback_count: fb.feedback_count(), packets: &statuses };
        let mut buf2 = vec![0u8; n];
        again.emit(&mut buf2).unwrap();
        prop_assert_eq!(buf2, buf);
    }

    #[test]
    fn compound_of_sdes_and_bye(cname in "[a-z0-9]{1,40}", reason in "[a-z ]{0,30}", ssrc: u32) {
        let items = [SdesItem { kind: sdes_item::CNAME, text: cname.as_bytes() }];
        let mut buf = vec![0u8; 512];
        let mut n = SdesRepr { chunks: &[(ssrc, &items)] }.emit(&mut buf).unwrap();
        n += ByeRepr { ssrcs: &[ssrc], reason: reason.as_bytes() }.emit(&mut buf[n..]).unwrap();
        let parts: Vec<_> = Compound::new(&buf[..n]).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(parts.len(), 2);
        match (&parts[0], &parts[1]) {
            (Packet::Sdes(s), Packet::Bye(b)) => {
                let c = s.chunks().next().unwrap();
                prop_assert_eq!((c.ssrc, c.cname()), (ssrc, Some(cname.as_bytes())));
                prop_assert_eq!(b.reason().unwrap_or(b""), reason.as_bytes());
            }
            _ => prop_assert!(false, "wrong packet types"),
        }
    }

    #[test]
    fn stun_round_trip(user in "[a-zA-Z0-9+/]{4,32}:[a-zA-Z0-9+/]{4,32}", key in proptest::collection::vec(any::<u8>(), 1..64),
                       txid: [u8; 12], prio: u32, tie: u64, use_candidate: bool, v6: bool, port: u16) {
        let addr: std::net::SocketAddr = if v6 { ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], port).into() } else { ([10, 1, 2, 3], port).into() };
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, 0x0001, &txid).unwrap();
        w.add(attr::USERNAME, user.as_bytes()).unwrap();
        w.add_u32(attr::PRIORITY, prio).unwrap();
        w.add_u64(attr::ICE_CONTROLLING, tie).unwrap();
        if use_candidate { w.add(attr::USE_CANDIDATE, &[]).unwrap(); }
        w.add_xor_mapped_address(addr).unwrap();
        w.add_message_integrity(&key).unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        let m = StunMessage::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(m.username(), Some(user.as_str()));
        prop_assert_eq!(m.transaction_id(), txid);
        prop_assert_eq!(m.attribute(attr::USE_CANDIDATE).is_some(), use_candidate);
        prop_assert_eq!(read_xor_address(m.attribute(attr::XOR_MAPPED_ADDRESS).unwrap().value, &txid).unwrap(), addr);
        prop_assert!(m.verify_integrity(&key).is_ok());
        prop_assert!(m.verify_fingerprint().is_ok());
        // rebuild from the parsed attributes: same bytes
        let mut again = [0u8; 256];
        let mut w = StunWriter::new(&mut again, m.message_type(), &m.transaction_id()).unwrap();
        for a in m.attributes().filter(|a| a.kind != attr::MESSAGE_INTEGRITY && a.kind != attr::FINGERPRINT) {
            w.add(a.kind, a.value).unwrap();
        }
        w.add_message_integrity(&key).unwrap();
        w.add_fingerprint().unwrap();
        let n2 = w.finish();
        prop_assert_eq!(&again[..n2], &buf[..n]);
    }
}
