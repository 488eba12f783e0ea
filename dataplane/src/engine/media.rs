//! The RTP path: a publisher's packet in, one rewritten and encrypted
//! packet out per subscriber that wants its layer, and one copy per other
//! worker with subscribers.

use super::history::{Sent, digest};
use super::{CrossKind, CrossMessage, Endpoint};
use super::{Engine, OutStream, Rewritten, Sink};
use crate::abi::{Codec, Counter, DropReason, Event, MediaKind};
use std::net::SocketAddr;
use std::time::Instant;
use switchyard_wire::codec::{H264Payload, Vp8Descriptor, Vp9Descriptor};
use switchyard_wire::demux::PacketKind;
use switchyard_wire::rtp::{AudioLevel, Extension, ExtensionIds, RtpHeader, RtpPacket, sdes_token};

/// What the engine learned about a packet before forwarding it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    pub layer: u8,
    pub keyframe: bool,
}

impl Engine {
    /// Handles one datagram received on the worker's socket. `data` is
    /// decrypted in place.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
        sink: &mut dyn Sink,
    ) {
        self.counters.add(Counter::RxPackets, 1);
        self.counters.add(Counter::RxBytes, data.len() as u64);
        let endpoint = self.by_addr.get(&from).copied();
        match (PacketKind::classify(data), endpoint) {
            (PacketKind::Stun | PacketKind::Dtls, _) => {
                let id = endpoint
                    .and_then(|e| self.endpoints.get(e))
                    .map_or(0, |e| e.id);
                // strangers share the ring by source IP; endpoints never wait
                if id == 0 && !self.exception_budget.admit(now, from) {
                    return self.counters.drop_packet(DropReason::ExceptionBudget);
                }
                if sink.exception(id, from, data) {
                    self.counters.add(Counter::ExceptionsIn, 1);
                } else {
                    self.counters.drop_packet(DropReason::ExceptionRingFull);
                }
            }
            (PacketKind::Rtp, Some(e)) => self.rtp_in(now, e, data, sink),
            (PacketKind::Rtcp, Some(e)) => self.rtcp_in(now, e, data, sink),
            (PacketKind::Rtp | PacketKind::Rtcp, None) => {
                self.counters.drop_packet(DropReason::UnknownAddress)
            }
            _ => self.counters.drop_packet(DropReason::Unclassified),
        }
    }

    fn rtp_in(&mut self, now: Instant, e: u32, data: &mut [u8], sink: &mut dyn Sink) {
        let Some(ep) = self.endpoints.get_mut(e) else {
            return;
        };
        let len = match ep.rx.unprotect_rtp(data) {
            Ok(n) => n,
            Err(err) => return self.counters.drop_packet(DropReason::from_srtp(err)),
        };
        ep.last_rx = now;
        if std::mem::take(&mut ep.idle_reported) {
            sink.event(Event::EndpointActive { endpoint: ep.id });
        }
        if ep.relay {
            self.counters.add(Counter::RelayRxPackets, 1);
            self.counters.add(Counter::RelayRxBytes, data.len() as u64);
        }
        let ext = ep.ext;
        let Ok(p) = RtpPacket::new_checked(&data[..len]) else {
            return self.counters.drop_packet(DropReason::MalformedRtp);
        };
        if let Some(v) = ext.transport_cc.and_then(|id| p.extension(id))
            && v.len() >= 2
        {
            ep.arrivals.record(u16::from_be_bytes([v[0], v[1]]), now);
        }
        let Some((s, layer, rtx)) = self.route(e, &p) else {
            return self.counters.drop_packet(DropReason::UnknownSsrc);
        };
        if p.payload().is_empty() {
            // padding only: a bandwidth probe, for the sender's estimator
            return self.counters.drop_packet(DropReason::Padding);
        }
        let len = if rtx {
            match self.unwrap_rtx(s, layer, &mut data[..len]) {
                Some(n) => n,
                None => return self.counters.drop_packet(DropReason::MalformedRtp),
            }
        } else {
            len
        };
        self.source_packet(now, s, layer, &data[..len], &ext, sink);
    }

    /// Finds the source and layer of an incoming packet by SSRC, learning
    /// SSRCs from the rid / repaired-rid extensions (RFC 8852).
    fn route(&mut self, e: u32, p: &RtpPacket<&[u8]>) -> Option<(u32, u8, bool)> {
        let ssrc = p.ssrc();
        let ep = self.endpoints.get(e)?;
        for &s in &ep.published {
            let Some(src) = self.sources.get(s) else {
                continue;
            };
            for (i, l) in src.layers[..src.spec.layer_count as usize]
                .iter()
                .enumerate()
            {
                if l.ssrc == ssrc && ssrc != 0 {
                    return Some((s, i as u8, false));
                }
                if l.rtx_ssrc == ssrc && ssrc != 0 {
                    return Some((s, i as u8, true));
                }
            }
        }
        // Unknown SSRC: a simulcast layer announced by rid only.
        let (rid, rtx) = match (
            ep.ext.rid.and_then(|id| p.extension(id)),
            ep.ext.repaired_rid.and_then(|id| p.extension(id)),
        ) {
            (Some(r), _) => (sdes_token(r).ok()?, false),
            (None, Some(r)) => (sdes_token(r).ok()?, true),
            _ => return None,
        };
        let count = ep.published.len();
        for k in 0..count {
            let Some(s) = self
                .endpoints
                .get(e)
                .and_then(|ep| ep.published.get(k).copied())
            else {
                break;
            };
            let Some(src) = self.sources.get_mut(s) else {
                continue;
            };
            let layers = src.spec.layer_count as usize;
            for (i, l) in src.layers[..layers].iter_mut().enumerate() {
                if l.rid_len > 0 && &l.rid[..l.rid_len as usize] == rid.as_bytes() {
                    if rtx {
                        l.rtx_ssrc = ssrc;
                    } else {
                        l.ssrc = ssrc;
                    }
                    tracing::debug!(target: "switchyard::engine", source = src.spec.id, layer = i, ssrc, rtx, "learned SSRC from rid");
                    return Some((s, i as u8, rtx));
                }
            }
        }
        None
    }

    /// Turns an RTX packet (RFC 4588) back into the original in place:
    /// original sequence number from the first two payload bytes, the
    /// layer's SSRC and the source's payload type.
    fn unwrap_rtx(&self, s: u32, layer: u8, pkt: &mut [u8]) -> Option<usize> {
        let src = self.sources.get(s)?;
        let (ssrc, pt) = (src.layers[layer as usize].ssrc, src.spec.payload_type);
        let p = RtpPacket::new_checked(&*pkt).ok()?;
        let (hl, end) = (p.header_len(), pkt.len() - p.padding_len());
        if end < hl + 2 {
            return None; // padding-only RTX (bandwidth probe): nothing to forward
        }
        let osn = u16::from_be_bytes([pkt[hl], pkt[hl + 1]]);
        pkt.copy_within(hl + 2..end, hl);
        pkt[0] &= !0x20; // padding dropped
        let mut p = RtpPacket::new_unchecked(&mut pkt[..end - 2]);
        p.set_sequence_number(osn);
        p.set_ssrc(ssrc);
        p.set_payload_type(pt);
        Some(end - 2)
    }

    /// A decrypted packet of a local source: statistics, audio level,
    /// keyframe detection, then local forwarding and fan-out.
    fn source_packet(
        &mut self,
        now: Instant,
        s: u32,
        layer: u8,
        pkt: &[u8],
        ext: &ExtensionIds,
        sink: &mut dyn Sink,
    ) {
        let Ok(p) = RtpPacket::new_checked(pkt) else {
            return;
        };
        let Some(src) = self.sources.get_mut(s) else {
            return;
        };
        let update = src.layers[layer as usize].stats.update(p.sequence_number());
        if update == super::stats::SeqUpdate::Duplicate {
            // neither forwarded nor counted in the layer's rate: a keyframe
            // packet sent again must not pass for a new keyframe
            return self.counters.drop_packet(DropReason::Duplicate);
        }
        src.layers[layer as usize].bytes += pkt.len() as u64;
        let media_ssrc = src.layers[layer as usize].ssrc;
        // audio is not asked for again: a late packet would be played too
        // late, and concealment covers the gap (browsers keep no audio
        // history to answer from)
        let repair = src.spec.kind == MediaKind::Video;
        match (update, src.publisher) {
            (super::stats::SeqUpdate::Gap { first, missing }, Some(e)) if repair => {
                let mut lost = [0u16; super::missing::CAPACITY];
                let n = usize::from(missing).min(lost.len());
                for (i, l) in lost[..n].iter_mut().enumerate() {
                    *l = first.wrapping_add(i as u16);
                }
                let pushed_out = src.layers[layer as usize].missing.gap(now, &lost[..n]);
                self.counters
                    .add(Counter::UpstreamLossGivenUp, pushed_out as u64);
                self.nack_upstream(e, media_ssrc, &lost[..n], sink);
            }
            (super::stats::SeqUpdate::Late, _) => {
                src.layers[layer as usize]
                    .missing
                    .arrived(now, p.sequence_number());
            }
            _ => {}
        }
        let Some(src) = self.sources.get_mut(s) else {
            return;
        };
        let keyframe = match src.spec.kind {
            MediaKind::Audio => {
                if let Some(level) = ext
                    .audio_level
                    .and_then(|id| p.extension(id))
                    .and_then(|v| AudioLevel::parse(v).ok())
                {
                    let (l, v) = src.audio_level.unwrap_or((127, false));
                    src.audio_level = Some((l.min(level.level), v || level.voice));
                }
                true
            }
            MediaKind::Video => is_keyframe(src.spec.codec, p.payload()),
        };
        if keyframe {
            src.layers[layer as usize].throttle.satisfied();
        }
        if p.payload().is_empty() {
            return; // padding only
        }
        let meta = Meta { layer, keyframe };
        self.fan_out(now, s, CrossKind::Rtp { layer, keyframe }, *ext, pkt, sink);
        self.forward_local(now, s, meta, pkt, ext, sink);
    }

    /// Hands a source's packet (or sender report) once to every worker with
    /// subscribers to it.
    pub(super) fn fan_out(
        &mut self,
        now: Instant,
        s: u32,
        kind: CrossKind,
        ext: ExtensionIds,
        data: &[u8],
        sink: &mut dyn Sink,
    ) {
        let Some(src) = self.sources.get(s) else {
            return;
        };
        let (id, workers) = (src.spec.id, src.fan_out.len());
        for k in 0..workers {
            let Some(w) = self
                .sources
                .get(s)
                .and_then(|src| src.fan_out.get(k).copied())
            else {
                break;
            };
            let msg = CrossMessage {
                source: id,
                from_worker: self.config.worker,
                kind,
                arrival: now,
                ext,
            };
            if sink.cross(w, msg, data) {
                self.counters.add(Counter::CrossOut, 1);
            } else {
                self.counters.drop_packet(DropReason::CrossQueueFull);
            }
        }
    }

    /// A message from another worker.
    pub fn handle_cross(
        &mut self,
        now: Instant,
        msg: CrossMessage,
        data: &[u8],
        sink: &mut dyn Sink,
    ) {
        let Some(&s) = self.source_by_id.get(&msg.source) else {
            return;
        };
        self.counters.add(Counter::CrossIn, 1);
        match msg.kind {
            CrossKind::Rtp { layer, keyframe } => {
                let mut pending = [false; crate::abi::command::MAX_LAYERS];
                // the home worker's keyframe answers this mirror's requests too
                if keyframe
                    && let Some(l) = self
                        .sources
                        .get_mut(s)
                        .and_then(|src| src.layers.get_mut(layer as usize))
                {
                    l.throttle.satisfied();
                }
                if let Some(src) = self.sources.get_mut(s)
                    && src.publisher.is_none()
                    && src.home != Some(msg.from_worker)
                {
                    src.home = Some(msg.from_worker);
                    for (p, l) in pending.iter_mut().zip(src.layers.iter_mut()) {
                        *p = std::mem::take(&mut l.pending_keyframe);
                    }
                }
                for (l, _) in pending.iter().enumerate().filter(|(_, p)| **p) {
                    self.request_keyframe(now, s, l as u8, sink);
                }
                self.forward_local(
                    now,
                    s,
                    super::media::Meta { layer, keyframe },
                    data,
                    &msg.ext,
                    sink,
                );
            }
            CrossKind::SenderReport { layer } => {
                if data.len() >= 12 {
                    let ntp = u64::from_be_bytes(data[..8].try_into().unwrap_or([0; 8]));
                    let rtp = u32::from_be_bytes(data[8..12].try_into().unwrap_or([0; 4]));
                    self.translate_sr(s, layer, ntp, rtp, sink);
                }
            }
            CrossKind::KeyframeRequest { layer } => self.request_keyframe(now, s, layer, sink),
        }
    }

    /// Sends a source packet to every local subscriber that wants it.
    pub(super) fn forward_local(
        &mut self,
        now: Instant,
        s: u32,
        meta: Meta,
        pkt: &[u8],
        ext: &ExtensionIds,
        sink: &mut dyn Sink,
    ) {
        let Ok(p) = RtpPacket::new_checked(pkt) else {
            return;
        };
        let Engine {
            sources,
            streams,
            endpoints,
            counters,
            ..
        } = self;
        let Some(src) = sources.get_mut(s) else {
            return;
        };
        let first_rx = *src.first_rx.get_or_insert(now);
        let starting = now.saturating_duration_since(first_rx) < LAYER_IDLE;
        let layers = &mut src.layers[..src.spec.layer_count.max(1) as usize];
        if let Some(l) = layers.get_mut(meta.layer as usize) {
            l.last_rx = Some(now);
            // kept once for every subscriber's retransmissions
            if let Some(ring) = l.ring.as_mut() {
                ring.store(p.sequence_number(), pkt);
            }
        }
        src.ext = *ext;
        // a layer is sent if it was seen lately; one not seen yet counts
        // while the source is starting (its layers arrive one by one)
        let mut active = [false; crate::abi::command::MAX_LAYERS];
        for (a, l) in active.iter_mut().zip(layers.iter()) {
            *a = match l.last_rx {
                Some(t) => now.saturating_duration_since(t) < LAYER_IDLE,
                None => starting,
            };
        }
        let active = &active[..layers.len()];
        let mut wanted_keyframe = None;
        let codec = src.spec.codec;
        let vp8 = (codec == Codec::Vp8)
            .then(|| Vp8Descriptor::new_checked(p.payload()).ok())
            .flatten();
        let incoming = super::Incoming {
            seq: p.sequence_number(),
            timestamp: p.timestamp(),
            picture_id: vp8.as_ref().and_then(|d| d.picture_id()),
            tl0_pic_idx: vp8.as_ref().and_then(|d| d.tl0_pic_idx()),
        };
        for &o in &src.subscribers {
            let Some(out) = streams.get_mut(o) else {
                continue;
            };
            if out.target == crate::abi::command::PAUSED {
                counters.drop_packet(DropReason::Filtered);
                continue;
            }
            if out.current != Some(meta.layer) {
                // a relay stream carries its own layer only
                let want = match out.relay {
                    true => out.target,
                    false => effective_layer(out.target, active),
                };
                if want == meta.layer && !meta.keyframe {
                    wanted_keyframe = Some(want);
                }
                if want == meta.layer && meta.keyframe {
                    out.rewriter.switch(now, incoming);
                    out.current = Some(meta.layer);
                    if let Some(sub) = endpoints.get(out.endpoint) {
                        sink.event(Event::LayerSwitched {
                            endpoint: sub.id,
                            source: src.spec.id,
                            layer: meta.layer,
                        });
                    }
                } else {
                    counters.drop_packet(DropReason::Filtered);
                    continue;
                }
            }
            let Some(rw) = out.rewriter.rewrite(now, incoming) else {
                counters.drop_packet(DropReason::Filtered);
                continue;
            };
            let Some(sub) = endpoints.get_mut(out.endpoint) else {
                continue;
            };
            let Some(buf) = sink.buffer() else {
                counters.drop_packet(DropReason::NoSendBuffer);
                return;
            };
            let twcc = sub.ext.transport_cc.map(|_| {
                let t = sub.twcc_seq;
                sub.twcc_seq = t.wrapping_add(1);
                t
            });
            let Some((len, header)) = build_packet(buf, &p, &rw, twcc, out, sub, ext, codec) else {
                counters.drop_packet(DropReason::Oversize);
                continue;
            };
            out.history.record(Sent {
                layer: meta.layer,
                in_seq: incoming.seq,
                rw,
                twcc,
                len: len as u16,
                header: digest(&buf[..header]),
            });
            out.newest = Some(rw.seq);
            match sub.tx.protect_rtp(buf, len) {
                Ok(n) => {
                    sink.commit(n, sub.remote);
                    sub.sent_bytes += n as u64;
                    if sub.relay {
                        counters.add(Counter::RelayTxPackets, 1);
                        counters.add(Counter::RelayTxBytes, n as u64);
                    }
                    if sub.ext.transport_cc.is_some() {
                        sub.bwe.on_sent(sub.twcc_seq.wrapping_sub(1), now, n, false);
                    }
                    out.packets = out.packets.wrapping_add(1);
                    out.octets = out.octets.wrapping_add(p.payload().len() as u32);
                    counters.add(Counter::Forwarded, 1);
                }
                Err(e) => counters.drop_packet(DropReason::from_srtp(e)),
            }
        }
        if let Some(layer) = wanted_keyframe {
            // a subscriber waits to switch to this layer (throttled)
            self.request_keyframe(now, s, layer, sink);
        }
    }
}

/// A layer with no packet for this long is not being sent (the publisher's
/// encoder dropped it for bandwidth or CPU).
const LAYER_IDLE: std::time::Duration = std::time::Duration::from_millis(1000);

/// The layer a subscriber gets: its target if the publisher sends it, else
/// the best one below that is sent, else the lowest one above — never
/// nothing while anything is sent.
fn effective_layer(target: u8, active: &[bool]) -> u8 {
    let t = usize::from(target).min(active.len().saturating_sub(1));
    let below = (0..=t).rev().find(|&l| active[l]);
    let above = (t + 1..active.len()).find(|&l| active[l]);
    below.or(above).map_or(target, |l| l as u8)
}

/// Whether a video payload starts a keyframe.
pub(super) fn is_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => Vp8Descriptor::new_checked(payload).is_ok_and(|d| d.is_keyframe()),
        Codec::H264 => H264Payload::parse(payload).is_ok_and(|p| p.is_keyframe()),
        Codec::Vp9 => Vp9Descriptor::parse(payload).is_ok_and(|d| d.is_keyframe()),
        // Without a parser every packet is a possible switch point.
        Codec::Other | Codec::Opus => true,
    }
}

/// Writes a subscriber's packet: a fresh header (its SSRC, rewritten
/// numbers, its extension ids: mid, abs-send-time, `twcc` as its
/// transport-wide sequence number, audio level) and the payload, with the
/// VP8 descriptor rewritten. The same inputs write the same bytes (a
/// retransmission builds the packet again this way). Returns the length
/// and the header's, or `None` if it would not fit with a tag.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_packet(
    buf: &mut [u8],
    p: &RtpPacket<&[u8]>,
    rw: &Rewritten,
    twcc: Option<u16>,
    out: &OutStream,
    sub: &Endpoint,
    src_ext: &ExtensionIds,
    codec: Codec,
) -> Option<(usize, usize)> {
    let empty = Extension { id: 0, data: &[] };
    let mut exts = [empty; 4];
    let mut n = 0;
    let mid = out.spec.mid();
    if let Some(id) = sub.ext.mid.filter(|_| !mid.is_empty()) {
        exts[n] = Extension { id, data: mid };
        n += 1;
    }
    if let (Some(id), Some(v)) = (
        sub.ext.abs_send_time,
        src_ext.abs_send_time.and_then(|i| p.extension(i)),
    ) {
        exts[n] = Extension { id, data: v };
        n += 1;
    }
    let twcc = twcc.map(u16::to_be_bytes);
    if let (Some(id), Some(v)) = (sub.ext.transport_cc, &twcc) {
        exts[n] = Extension { id, data: v };
        n += 1;
    }
    if let (Some(id), Some(v)) = (
        sub.ext.audio_level,
        src_ext.audio_level.and_then(|i| p.extension(i)),
    ) {
        exts[n] = Extension { id, data: v };
        n += 1;
    }
    let header = RtpHeader {
        marker: p.marker(),
        payload_type: out.spec.payload_type,
        sequence_number: rw.seq,
        timestamp: rw.timestamp,
        ssrc: out.spec.ssrc,
        csrcs: &[],
        extensions: &exts[..n],
    };
    let h = header.emit(buf).ok()?;
    let payload = p.payload();
    let end = h + payload.len();
    if end + 16 > buf.len().min(super::MAX_DATAGRAM) {
        return None;
    }
    buf[h..end].copy_from_slice(payload);
    if codec == Codec::Vp8
        && let Ok(mut d) = Vp8Descriptor::new_checked(&mut buf[h..end])
    {
        if let Some(pid) = rw.picture_id {
            let _ = d.set_picture_id(pid);
        }
        if let Some(t) = rw.tl0_pic_idx {
            let _ = d.set_tl0_pic_idx(t);
        }
    }
    Some((end, h))
}
