//! The RTCP path: feedback from subscribers (NACK → retransmission, PLI /
//! FIR → throttled keyframe request, REMB / transport-cc / RR → summaries),
//! sender reports from publishers (translated per subscriber), and the
//! RTCP the SFU originates (PLI, NACK, SR, RR).

use super::history::digest;
use super::{CrossKind, CrossMessage, Engine, Sink};
use crate::abi::{Counter, DropReason, Event};
use std::time::Instant;
use switchyard_wire::rtcp::{
    Compound, NackPair, NackRepr, Packet, PacketStatus, PliRepr, SenderReportRepr,
};
use switchyard_wire::rtp::RtpPacket;

/// Most sequence numbers one upstream NACK asks for: all a layer
/// remembers as missing.
const MAX_UPSTREAM_NACK: usize = super::missing::CAPACITY;

/// Keyframe requests (PLI, FIR) one receiver may pass on per window for
/// each stream it receives (3 per 10 s, as Jitsi's per receiver); the
/// per-layer throttle then spaces them.
const RECEIVER_KEYFRAMES: u8 = 3;
const RECEIVER_KEYFRAME_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

impl Engine {
    pub(super) fn rtcp_in(&mut self, now: Instant, e: u32, data: &mut [u8], sink: &mut dyn Sink) {
        let Some(ep) = self.endpoints.get_mut(e) else {
            return;
        };
        let len = match ep.rx.unprotect_rtcp(data) {
            Ok(n) => n,
            Err(err) => {
                let reason = match err {
                    switchyard_srtp::SrtpError::Malformed(_) => DropReason::MalformedRtcp,
                    other => DropReason::from_srtp(other),
                };
                return self.counters.drop_packet(reason);
            }
        };
        ep.last_rx = now;
        if std::mem::take(&mut ep.idle_reported) {
            sink.event(Event::EndpointActive { endpoint: ep.id });
        }
        for packet in Compound::new(&data[..len]) {
            match packet {
                Ok(p) => self.rtcp_packet(now, e, p, sink),
                Err(_) => {
                    self.counters.drop_packet(DropReason::MalformedRtcp);
                    break;
                }
            }
        }
    }

    /// The outgoing stream of endpoint `e` with this SSRC (media or RTX).
    fn stream_by_ssrc(&self, e: u32, ssrc: u32) -> Option<u32> {
        let ep = self.endpoints.get(e)?;
        ep.streams.iter().copied().find(|&o| {
            self.streams.get(o).is_some_and(|s| {
                s.spec.ssrc == ssrc || (s.spec.rtx_ssrc != 0 && s.spec.rtx_ssrc == ssrc)
            })
        })
    }

    fn rtcp_packet(&mut self, now: Instant, e: u32, packet: Packet<'_>, sink: &mut dyn Sink) {
        match packet {
            Packet::SenderReport(sr) => {
                let (ssrc, ntp, rtp) = (sr.ssrc(), sr.ntp_time(), sr.rtp_timestamp());
                let Some((s, layer)) = self.published_layer(e, ssrc) else {
                    return;
                };
                if let Some(src) = self.sources.get_mut(s) {
                    src.layers[layer as usize].last_sr = Some((ntp, rtp, now));
                }
                self.translate_sr(s, layer, ntp, rtp, sink);
                let mut data = [0u8; 12];
                data[..8].copy_from_slice(&ntp.to_be_bytes());
                data[8..].copy_from_slice(&rtp.to_be_bytes());
                self.fan_out(
                    now,
                    s,
                    CrossKind::SenderReport { layer },
                    Default::default(),
                    &data,
                    sink,
                );
            }
            Packet::ReceiverReport(rr) => {
                let mut lost = None;
                for block in rr.report_blocks() {
                    if self.stream_by_ssrc(e, block.ssrc).is_some() {
                        lost = lost.max(Some(block.fraction_lost));
                    }
                }
                if let (Some(lost), Some(ep)) = (lost, self.endpoints.get_mut(e)) {
                    ep.feedback.fraction_lost = ep.feedback.fraction_lost.max(lost);
                    ep.feedback.any = true;
                    ep.bwe.on_report_loss(lost);
                }
            }
            Packet::Nack(nack) => {
                let Some(o) = self.stream_by_ssrc(e, nack.media_ssrc()) else {
                    return;
                };
                let (mut asked, mut sent) = (0u32, 0u32);
                for seq in nack.lost() {
                    asked += 1;
                    if self.retransmit(now, o, seq, false, sink) {
                        sent += 1;
                    }
                }
                if let Some(ep) = self.endpoints.get_mut(e) {
                    ep.feedback.nacks += asked;
                    ep.feedback.retransmitted += sent;
                    ep.feedback.any = true;
                }
            }
            Packet::Pli(pli) => self.keyframe_feedback(now, e, pli.media_ssrc, sink),
            Packet::Fir(fir) => {
                for entry in fir.entries() {
                    self.keyframe_feedback(now, e, entry.ssrc, sink);
                }
            }
            Packet::Remb(remb) => {
                if let Some(ep) = self.endpoints.get_mut(e) {
                    ep.feedback.remb_bps = remb.bitrate();
                    ep.feedback.any = true;
                    ep.bwe.on_remb(remb.bitrate());
                }
            }
            Packet::TransportCc(fb) => {
                if let Some(ep) = self.endpoints.get_mut(e) {
                    ep.bwe.on_transport_cc(now, &fb);
                }
                let (mut reported, mut lost) = (0u32, 0u32);
                for (_, status) in fb.packets() {
                    reported += 1;
                    if status == PacketStatus::NotReceived {
                        lost += 1;
                    }
                }
                if let Some(ep) = self.endpoints.get_mut(e) {
                    ep.feedback.twcc_reported += reported;
                    ep.feedback.twcc_lost += lost;
                    ep.feedback.any = true;
                }
            }
            Packet::Sdes(_)
            | Packet::Bye(_)
            | Packet::App(_)
            | Packet::OtherFeedback(_)
            | Packet::Unknown(_) => {}
        }
    }

    /// The (source, layer) endpoint `e` publishes with this media SSRC.
    fn published_layer(&self, e: u32, ssrc: u32) -> Option<(u32, u8)> {
        let ep = self.endpoints.get(e)?;
        ep.published.iter().find_map(|&s| {
            let src = self.sources.get(s)?;
            let layers = &src.layers[..src.spec.layer_count as usize];
            layers
                .iter()
                .position(|l| l.ssrc == ssrc && ssrc != 0)
                .map(|i| (s, i as u8))
        })
    }

    fn keyframe_feedback(&mut self, now: Instant, e: u32, media_ssrc: u32, sink: &mut dyn Sink) {
        let Some(o) = self.stream_by_ssrc(e, media_ssrc) else {
            return;
        };
        let relay = self.endpoints.get(e).is_some_and(|ep| ep.relay);
        if let Some(ep) = self.endpoints.get_mut(e) {
            ep.feedback.keyframe_requests += 1;
            ep.feedback.any = true;
        }
        let Some(out) = self.streams.get_mut(o) else {
            return;
        };
        // a relay stream asks for its own layer, relayed now or not (the
        // focus widens the relay to a layer a far receiver switches to)
        let (s, layer) = match out.relay {
            true => (out.source, out.spec.target_layer),
            false => (out.source, out.current.unwrap_or(out.target)),
        };
        // a receiver gets at most RECEIVER_KEYFRAMES requests through per
        // window for each stream it receives: one that asks in a loop cannot
        // make a publisher send nothing but keyframes for everyone, and
        // asking for one stream never uses up what another needs (a
        // receiver that joins or moves asks for all of them at once). A
        // relay speaks for every receiver of the far bridge, which held each
        // of them to that budget already (and asks at most once per window
        // per source layer)
        let (count, since) = &mut out.keyframe_budget;
        if since.is_none_or(|t| now.saturating_duration_since(t) >= RECEIVER_KEYFRAME_WINDOW) {
            *since = Some(now);
            *count = 0;
        }
        if *count >= RECEIVER_KEYFRAMES && !relay {
            self.counters.drop_packet(DropReason::Filtered);
            return;
        }
        *count += 1;
        let layer = if layer == crate::abi::command::PAUSED {
            0
        } else {
            layer
        };
        self.request_keyframe(now, s, layer, sink);
    }

    /// Asks a source's publisher for a keyframe of `layer`, at most once per
    /// window (requests inside the window are sent when it ends).
    pub(super) fn request_keyframe(
        &mut self,
        now: Instant,
        s: u32,
        layer: u8,
        sink: &mut dyn Sink,
    ) {
        let window = self.config.keyframe_window;
        let worker = self.config.worker;
        let Some(src) = self.sources.get_mut(s) else {
            return;
        };
        let layer = layer.min(src.spec.layer_count.saturating_sub(1));
        let l = &mut src.layers[layer as usize];
        let reachable = src.publisher.is_some() || src.home.is_some_and(|h| h != worker);
        if !reachable {
            l.pending_keyframe = true;
        } else if l.throttle.request(now, window) {
            self.send_keyframe_request(now, s, layer, sink);
        }
    }

    /// Passes a keyframe request the throttle let through: a PLI to a local
    /// publisher, or a message to the source's home worker from a mirror.
    pub(super) fn send_keyframe_request(
        &mut self,
        now: Instant,
        s: u32,
        layer: u8,
        sink: &mut dyn Sink,
    ) {
        let worker = self.config.worker;
        let Some(src) = self.sources.get(s) else {
            return;
        };
        let (id, ssrc) = (src.spec.id, src.layers[layer as usize].ssrc);
        match (src.publisher, src.home) {
            (Some(p), _) => {
                self.send_pli(p, ssrc, sink);
                sink.event(Event::KeyframeRequested { source: id, layer });
            }
            (None, Some(home)) if home != worker => {
                let msg = CrossMessage {
                    source: id,
                    from_worker: worker,
                    kind: CrossKind::KeyframeRequest { layer },
                    arrival: now,
                    ext: Default::default(),
                };
                if !sink.cross(home, msg, &[]) {
                    self.counters.drop_packet(DropReason::CrossQueueFull);
                }
            }
            _ => {}
        }
    }

    pub(super) fn send_pli(&mut self, publisher: u32, media_ssrc: u32, sink: &mut dyn Sink) {
        let pli = PliRepr {
            sender_ssrc: self.config.rtcp_ssrc,
            media_ssrc,
        };
        if self.send_rtcp(publisher, sink, |buf| pli.emit(buf).ok()) {
            self.counters.add(Counter::KeyframeRequests, 1);
        }
    }

    /// Builds an RTCP packet in a send buffer, protects it for endpoint
    /// `e` and sends it. False if it could not.
    pub(super) fn send_rtcp(
        &mut self,
        e: u32,
        sink: &mut dyn Sink,
        build: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        let Some(ep) = self.endpoints.get_mut(e) else {
            return false;
        };
        let Some(buf) = sink.buffer() else {
            self.counters.drop_packet(DropReason::NoSendBuffer);
            return false;
        };
        let Some(len) = build(&mut buf[..super::MAX_DATAGRAM - 32]) else {
            return false;
        };
        match ep.tx.protect_rtcp(buf, len) {
            Ok(n) => {
                sink.commit(n, ep.remote);
                true
            }
            Err(e) => {
                self.counters.drop_packet(DropReason::from_srtp(e));
                false
            }
        }
    }

    /// Asks a publisher again for packets the SFU did not receive.
    pub(super) fn nack_upstream(
        &mut self,
        e: u32,
        media_ssrc: u32,
        lost: &[u16],
        sink: &mut dyn Sink,
    ) {
        let mut pairs = [NackPair::default(); MAX_UPSTREAM_NACK];
        let (np, _) = NackPair::pack(lost, &mut pairs);
        let nack = NackRepr {
            sender_ssrc: self.config.rtcp_ssrc,
            media_ssrc,
            pairs: &pairs[..np],
        };
        if self.endpoints.get(e).is_some_and(|ep| ep.relay) {
            self.counters.add(Counter::RelayNacksSent, 1);
        }
        self.send_rtcp(e, sink, |buf| nack.emit(buf).ok());
    }

    /// Resends packet `seq` of outgoing stream `o`, built again from its
    /// source layer's ring as its record says it was made: as RTX (RFC
    /// 4588) when negotiated, else the identical packet. Without RTX the
    /// bytes must be exactly those sent before: the same SRTP index with
    /// different plaintext would reuse the keystream — so a packet whose
    /// header does not build again to the one sent (its subscription or
    /// extension ids changed since) is withheld, with or without RTX.
    pub(super) fn retransmit(
        &mut self,
        now: Instant,
        o: u32,
        seq: u16,
        probe: bool,
        sink: &mut dyn Sink,
    ) -> bool {
        let Engine {
            streams,
            endpoints,
            sources,
            counters,
            ..
        } = self;
        let Some(out) = streams.get_mut(o) else {
            return false;
        };
        let Some(sub) = endpoints.get_mut(out.endpoint) else {
            return false;
        };
        let Some(sent) = out.history.get(seq) else {
            return false;
        };
        let Some(src) = sources.get(out.source) else {
            return false;
        };
        let Some(incoming) = src
            .layers
            .get(sent.layer as usize)
            .and_then(|l| l.ring.as_ref())
            .and_then(|r| r.get(sent.in_seq))
        else {
            return false;
        };
        let Ok(p) = RtpPacket::new_checked(incoming) else {
            return false;
        };
        if !probe {
            let gap = super::resend::gap(sub.bwe.queued_ms());
            let again_soon = out
                .history
                .resent_at(seq)
                .is_some_and(|t| now.saturating_duration_since(t) < gap);
            if again_soon
                || !sub
                    .resend_budget
                    .take(now, sub.bwe.target_bps(), sent.len as usize)
            {
                counters.add(Counter::RetransmissionsWithheld, 1);
                return false;
            }
        }
        let rtx = out.spec.rtx_ssrc != 0 && out.spec.rtx_payload_type != 0;
        if probe && !rtx {
            return false; // an identical packet would be a replay, not a probe
        }
        let Some(buf) = sink.buffer() else {
            counters.drop_packet(DropReason::NoSendBuffer);
            return false;
        };
        let built = super::media::build_packet(
            buf,
            &p,
            &sent.rw,
            sent.twcc,
            out,
            sub,
            &src.ext,
            src.spec.codec,
        );
        let Some((plain, hl)) = built
            .filter(|&(len, hl)| len == sent.len as usize && digest(&buf[..hl]) == sent.header)
        else {
            counters.add(Counter::RetransmissionsWithheld, 1);
            return false;
        };
        let len = if rtx {
            if plain + 2 + 16 > buf.len().min(super::MAX_DATAGRAM) {
                return false;
            }
            // RFC 4588: the original sequence number before the payload
            buf.copy_within(hl..plain, hl + 2);
            buf[hl..hl + 2].copy_from_slice(&seq.to_be_bytes());
            let mut r = RtpPacket::new_unchecked(&mut buf[..plain + 2]);
            r.set_ssrc(out.spec.rtx_ssrc);
            r.set_payload_type(out.spec.rtx_payload_type);
            r.set_sequence_number(out.rtx_seq);
            out.rtx_seq = out.rtx_seq.wrapping_add(1);
            if let Some(id) = sub.ext.transport_cc {
                let _ = r.rewrite_extension(id, &sub.twcc_seq.to_be_bytes());
                sub.twcc_seq = sub.twcc_seq.wrapping_add(1);
            }
            plain + 2
        } else {
            plain
        };
        match sub.tx.protect_rtp(buf, len) {
            Ok(n) => {
                sink.commit(n, sub.remote);
                sub.sent_bytes += n as u64;
                if rtx && sub.ext.transport_cc.is_some() {
                    sub.bwe.on_sent(sub.twcc_seq.wrapping_sub(1), now, n, probe);
                }
                if !probe {
                    counters.add(Counter::Retransmissions, 1);
                    out.history.mark_resent(seq, now);
                }
                if sub.relay {
                    counters.add(Counter::RelayTxPackets, 1);
                    counters.add(Counter::RelayTxBytes, n as u64);
                    if !probe {
                        counters.add(Counter::RelayRetransmissions, 1);
                    }
                }
                true
            }
            Err(e) => {
                counters.drop_packet(DropReason::from_srtp(e));
                false
            }
        }
    }

    /// Sends each local subscriber on `layer` a sender report in its own
    /// terms: its SSRC, its timestamp offset, its packet and octet counts.
    pub(super) fn translate_sr(
        &mut self,
        s: u32,
        layer: u8,
        ntp: u64,
        rtp: u32,
        sink: &mut dyn Sink,
    ) {
        let Some(src) = self.sources.get(s) else {
            return;
        };
        let count = src.subscribers.len();
        for k in 0..count {
            let Some(o) = self
                .sources
                .get(s)
                .and_then(|src| src.subscribers.get(k).copied())
            else {
                break;
            };
            let Some(out) = self.streams.get(o) else {
                continue;
            };
            if out.current != Some(layer) {
                continue;
            }
            let sr = SenderReportRepr {
                ssrc: out.spec.ssrc,
                ntp_time: ntp,
                rtp_timestamp: rtp.wrapping_add(out.rewriter.timestamp_offset()),
                packet_count: out.packets,
                octet_count: out.octets,
                report_blocks: &[],
            };
            let e = out.endpoint;
            self.send_rtcp(e, sink, |buf| sr.emit(buf).ok());
        }
    }
}
