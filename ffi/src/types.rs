//! The C structs and constants, and their conversion to the dataplane's
//! ABI types. Every value coming from C is checked here: enumerations
//! arrive as integers (an out-of-range Rust enum would be undefined
//! behaviour), strings as NUL-terminated bytes with a bounded length.

use crate::status::{Failure, SwitchyardStatus};
use core::ffi::c_char;
use std::net::SocketAddr;
use switchyard_dataplane::abi::command::{MAX_LAYERS, MAX_MID, MAX_RID};
use switchyard_dataplane::abi::{
    Codec, CounterBlock, DropReason, EndpointSpec, Event, LayerSpec, MediaKind, PacketHeader,
    RelaySpec, SourceSpec, SrtpKeys, SubscriptionSpec,
};
use switchyard_dataplane::srtp::{MasterKey, Profile};
use switchyard_dataplane::wire::rtp::ExtensionIds;

/// SRTP_AES128_CM_HMAC_SHA1_80 (key 16 bytes, salt 14).
pub const SWITCHYARD_PROFILE_AES128_CM_SHA1_80: u32 = 1;
/// SRTP_AES128_CM_HMAC_SHA1_32 (key 16 bytes, salt 14).
pub const SWITCHYARD_PROFILE_AES128_CM_SHA1_32: u32 = 2;
/// SRTP_AEAD_AES_128_GCM (key 16 bytes, salt 12).
pub const SWITCHYARD_PROFILE_AEAD_AES_128_GCM: u32 = 3;
/// SRTP_AEAD_AES_256_GCM (key 32 bytes, salt 12).
pub const SWITCHYARD_PROFILE_AEAD_AES_256_GCM: u32 = 4;

/// Audio source.
pub const SWITCHYARD_KIND_AUDIO: u32 = 1;
/// Video source.
pub const SWITCHYARD_KIND_VIDEO: u32 = 2;

/// Forwarded without payload inspection.
pub const SWITCHYARD_CODEC_OTHER: u32 = 0;
/// Opus.
pub const SWITCHYARD_CODEC_OPUS: u32 = 1;
/// VP8 (picture id and TL0PICIDX rewritten across layer switches).
pub const SWITCHYARD_CODEC_VP8: u32 = 2;
/// H.264.
pub const SWITCHYARD_CODEC_H264: u32 = 3;
/// VP9.
pub const SWITCHYARD_CODEC_VP9: u32 = 4;

/// Event: a command was not applied (`id`, `command_kind`, `command_error`).
pub const SWITCHYARD_EVENT_COMMAND_FAILED: u32 = 1;
/// Event: a subscriber's stream switched layer (`endpoint`, `source`, `layer`).
pub const SWITCHYARD_EVENT_LAYER_SWITCHED: u32 = 2;
/// Event: loudest audio level of a source (`source`, `level`, `voice`).
pub const SWITCHYARD_EVENT_AUDIO_LEVEL: u32 = 3;
/// Event: a keyframe request went to a publisher (`source`, `layer`).
pub const SWITCHYARD_EVENT_KEYFRAME_REQUESTED: u32 = 4;
/// Event: RTCP feedback from a subscriber (`endpoint`, `nacks`,
/// `retransmitted`, `keyframe_requests`, `remb_bps`, `twcc_reported`,
/// `twcc_lost`, `fraction_lost`).
pub const SWITCHYARD_EVENT_FEEDBACK: u32 = 5;
/// Event: no packet from an endpoint for `idle_ms` (`endpoint`).
pub const SWITCHYARD_EVENT_ENDPOINT_IDLE: u32 = 6;

/// Event: the bandwidth estimate toward a subscriber (`endpoint`,
/// `estimate_bps`, `acked_bps`, `loss`, `probing`).
pub const SWITCHYARD_EVENT_BANDWIDTH: u32 = 7;
/// Event: what a source's layers carry (`source`, `layer_bps`).
pub const SWITCHYARD_EVENT_SOURCE_RATES: u32 = 8;
/// Event: packets that authenticate come again from an endpoint reported
/// idle (`endpoint`; ABI 1.6).
pub const SWITCHYARD_EVENT_ENDPOINT_ACTIVE: u32 = 9;

/// Drop reasons counted in `SwitchyardCounters::drops` (index = reason;
/// `switchyard_drop_reason_name` names them). The struct keeps its 1.3
/// layout: reasons added later (17 `duplicate`, ABI 1.7) are in the
/// shared-memory counters only.
pub const SWITCHYARD_DROP_REASONS: usize = 17;

/// An SRTP master key and salt; `key_len`/`salt_len` bytes are used.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SwitchyardSrtpKey {
    /// Master key.
    pub key: [u8; 32],
    /// Bytes of `key` used (16 or 32).
    pub key_len: usize,
    /// Master salt.
    pub salt: [u8; 14],
    /// Bytes of `salt` used (14 or 12).
    pub salt_len: usize,
}

/// Header extension ids negotiated in SDP (0 = not negotiated).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SwitchyardExtensionIds {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`
    pub mid: u8,
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`
    pub rid: u8,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`
    pub repaired_rid: u8,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time`
    pub abs_send_time: u8,
    /// transport-wide congestion control
    pub transport_cc: u8,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level`
    pub audio_level: u8,
    /// AV1 dependency descriptor
    pub dependency_descriptor: u8,
}

/// An endpoint: one participant's ICE/DTLS transport.
#[repr(C)]
pub struct SwitchyardEndpoint {
    /// Your id for it (nonzero, unique).
    pub id: u64,
    /// Its address, e.g. `"192.0.2.7:53000"` or `"[2001:db8::7]:53000"`.
    pub remote: *const c_char,
    /// `SWITCHYARD_PROFILE_*`.
    pub profile: u32,
    /// The key the endpoint protects with (the dataplane unprotects with it).
    pub rx: SwitchyardSrtpKey,
    /// The key the dataplane protects with towards the endpoint.
    pub tx: SwitchyardSrtpKey,
    /// Extension ids.
    pub ext: SwitchyardExtensionIds,
    /// Opaque bytes kept in the dataplane's endpoint table for you.
    pub user_data: [u8; 32],
}

/// One simulcast layer of a source.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SwitchyardLayer {
    /// Media SSRC (0: learned from the rid extension).
    pub ssrc: u32,
    /// RTX SSRC (0: none).
    pub rtx_ssrc: u32,
    /// The rid, NUL-terminated (at most 15 bytes; empty: none).
    pub rid: [c_char; 16],
}

/// A source: one track of one publisher.
#[repr(C)]
pub struct SwitchyardSource {
    /// Your id for it (nonzero, unique).
    pub id: u64,
    /// The publishing endpoint.
    pub endpoint: u64,
    /// `SWITCHYARD_KIND_*`.
    pub kind: u32,
    /// `SWITCHYARD_CODEC_*`.
    pub codec: u32,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Payload type the publisher sends.
    pub payload_type: u8,
    /// Its RTX payload type (0: none).
    pub rtx_payload_type: u8,
    /// Layers used (1–3).
    pub layer_count: u8,
    /// Layers, lowest quality first.
    pub layers: [SwitchyardLayer; 3],
}

/// A subscriber's stream of a source.
#[repr(C)]
pub struct SwitchyardSubscription {
    /// The subscribing endpoint.
    pub endpoint: u64,
    /// The source.
    pub source: u64,
    /// SSRC the subscriber sees.
    pub ssrc: u32,
    /// RTX SSRC for retransmissions (0: resend the original packet).
    pub rtx_ssrc: u32,
    /// Payload type the subscriber expects.
    pub payload_type: u8,
    /// Its RTX payload type (0: none).
    pub rtx_payload_type: u8,
    /// Wanted layer (0 = lowest).
    pub target_layer: u8,
    /// The subscriber's mid for this stream, NUL-terminated (at most 16
    /// bytes; empty: none).
    pub mid: [c_char; 17],
}

/// Where an exception packet came from.
#[repr(C)]
pub struct SwitchyardPacketInfo {
    /// The worker that received it.
    pub worker: u32,
    /// That worker's UDP port.
    pub local_port: u16,
    /// The endpoint its address belongs to (0: none yet).
    pub endpoint: u64,
    /// The sender's address, NUL-terminated text.
    pub remote: [c_char; 64],
}

/// An event from a worker. `kind` (`SWITCHYARD_EVENT_*`) says which fields
/// carry meaning; the others are 0.
#[repr(C)]
#[derive(Default)]
pub struct SwitchyardEvent {
    /// `SWITCHYARD_EVENT_*`.
    pub kind: u32,
    /// The worker it came from.
    pub worker: u32,
    /// Endpoint (layer switched, feedback, idle).
    pub endpoint: u64,
    /// Source (layer switched, audio level, keyframe requested).
    pub source: u64,
    /// The endpoint or source a failed command named.
    pub id: u64,
    /// The failed command's kind (docs/abi.md).
    pub command_kind: u32,
    /// Why it failed: 1 malformed, 2 unknown endpoint, 3 unknown source,
    /// 4 full, 5 bad keys, 6 address in use.
    pub command_error: u32,
    /// Layer (layer switched, keyframe requested).
    pub layer: u8,
    /// Audio level, 0 loudest … 127 silence (−dBov).
    pub level: u8,
    /// Voice activity (1) in the interval.
    pub voice: u8,
    /// Highest fraction lost in receiver reports (1/256).
    pub fraction_lost: u8,
    /// NACKed sequence numbers.
    pub nacks: u32,
    /// Of those, retransmitted.
    pub retransmitted: u32,
    /// PLI and FIR received.
    pub keyframe_requests: u32,
    /// Packets reported by transport-cc feedback.
    pub twcc_reported: u32,
    /// Of those, lost.
    pub twcc_lost: u32,
    /// Last REMB estimate, bit/s (0: none).
    pub remb_bps: u64,
    /// Milliseconds since the endpoint's last packet.
    pub idle_ms: u64,
    /// Bandwidth estimate toward the endpoint, bit/s.
    pub estimate_bps: u64,
    /// What the endpoint acknowledged receiving lately, bit/s.
    pub acked_bps: u64,
    /// Recent loss toward the endpoint (1/256).
    pub loss: u8,
    /// A probe is running (1).
    pub probing: u8,
    /// Bit/s of each of a source's layers, lowest first.
    pub layer_bps: [u32; 3],
}

/// A worker's counters (totals since it started).
#[repr(C)]
#[derive(Default)]
pub struct SwitchyardCounters {
    /// Datagrams received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Datagrams sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Commands applied.
    pub commands: u64,
    /// Exception packets handed to the control plane.
    pub exceptions_in: u64,
    /// Datagrams sent for the control plane.
    pub exceptions_out: u64,
    /// Events lost to a full ring.
    pub events_lost: u64,
    /// Retransmissions sent for NACKs.
    pub retransmissions: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// Packets forwarded to subscribers.
    pub forwarded: u64,
    /// Drops by reason (`switchyard_drop_reason_name`).
    pub drops: [u64; SWITCHYARD_DROP_REASONS],
}

fn bad(detail: impl Into<String>) -> Failure {
    Failure::new(SwitchyardStatus::BadArgument, detail)
}

/// Parses a socket address.
pub fn addr(text: &str) -> Result<SocketAddr, Failure> {
    text.parse()
        .map_err(|e| bad(format!("address {text:?}: {e}")))
}

/// Bytes of a NUL-terminated C array, at most `max` of them.
fn c_array(a: &[c_char], max: usize, what: &str) -> Result<Vec<u8>, Failure> {
    let bytes: Vec<u8> = a
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    if bytes.len() > max {
        return Err(bad(format!("{what} longer than {max} bytes")));
    }
    Ok(bytes)
}

fn profile(p: u32) -> Result<Profile, Failure> {
    Ok(match p {
        SWITCHYARD_PROFILE_AES128_CM_SHA1_80 => Profile::Aes128CmHmacSha1_80,
        SWITCHYARD_PROFILE_AES128_CM_SHA1_32 => Profile::Aes128CmHmacSha1_32,
        SWITCHYARD_PROFILE_AEAD_AES_128_GCM => Profile::AeadAes128Gcm,
        SWITCHYARD_PROFILE_AEAD_AES_256_GCM => Profile::AeadAes256Gcm,
        other => {
            return Err(Failure::new(
                SwitchyardStatus::BadKey,
                format!("unknown SRTP profile {other}"),
            ));
        }
    })
}

fn master_key(p: Profile, k: &SwitchyardSrtpKey, which: &str) -> Result<MasterKey, Failure> {
    let key = k.key.get(..k.key_len);
    let salt = k.salt.get(..k.salt_len);
    let (Some(key), Some(salt)) = (key, salt) else {
        return Err(Failure::new(
            SwitchyardStatus::BadKey,
            format!(
                "{which}: key_len {} / salt_len {} exceed the arrays",
                k.key_len, k.salt_len
            ),
        ));
    };
    MasterKey::new(p, key, salt).map_err(|_| {
        Failure::new(
            SwitchyardStatus::BadKey,
            format!(
                "{which}: {} needs a {}-byte key and a {}-byte salt, not {} and {}",
                p.name(),
                p.key_len(),
                p.salt_len(),
                k.key_len,
                k.salt_len
            ),
        )
    })
}

fn ext_id(v: u8) -> Option<u8> {
    (v != 0).then_some(v)
}

/// The dataplane's endpoint spec (the address string already read).
pub fn endpoint(e: &SwitchyardEndpoint, remote: SocketAddr) -> Result<EndpointSpec, Failure> {
    if e.id == 0 {
        return Err(bad("endpoint id 0 is reserved"));
    }
    let p = profile(e.profile)?;
    let keys = SrtpKeys {
        profile: p,
        rx: master_key(p, &e.rx, "rx")?,
        tx: master_key(p, &e.tx, "tx")?,
    };
    let x = &e.ext;
    let ext = ExtensionIds {
        mid: ext_id(x.mid),
        rid: ext_id(x.rid),
        repaired_rid: ext_id(x.repaired_rid),
        abs_send_time: ext_id(x.abs_send_time),
        transport_cc: ext_id(x.transport_cc),
        audio_level: ext_id(x.audio_level),
        dependency_descriptor: ext_id(x.dependency_descriptor),
    };
    Ok(EndpointSpec {
        id: e.id,
        remote,
        keys,
        ext,
        user_data: e.user_data,
    })
}

/// The dataplane's source spec.
pub fn source(s: &SwitchyardSource) -> Result<SourceSpec, Failure> {
    if s.id == 0 || s.endpoint == 0 {
        return Err(bad("source and endpoint ids must be nonzero"));
    }
    let kind = match s.kind {
        SWITCHYARD_KIND_AUDIO => MediaKind::Audio,
        SWITCHYARD_KIND_VIDEO => MediaKind::Video,
        other => return Err(bad(format!("kind {other}"))),
    };
    let codec = match s.codec {
        SWITCHYARD_CODEC_OTHER => Codec::Other,
        SWITCHYARD_CODEC_OPUS => Codec::Opus,
        SWITCHYARD_CODEC_VP8 => Codec::Vp8,
        SWITCHYARD_CODEC_H264 => Codec::H264,
        SWITCHYARD_CODEC_VP9 => Codec::Vp9,
        other => return Err(bad(format!("codec {other}"))),
    };
    if !(1..=MAX_LAYERS as u8).contains(&s.layer_count) {
        return Err(bad(format!("layer_count {} (1–3)", s.layer_count)));
    }
    let mut layers = [LayerSpec::default(); MAX_LAYERS];
    for (out, l) in layers.iter_mut().zip(&s.layers) {
        let rid = c_array(&l.rid, MAX_RID, "rid")?;
        out.ssrc = l.ssrc;
        out.rtx_ssrc = l.rtx_ssrc;
        out.rid[..rid.len()].copy_from_slice(&rid);
        out.rid_len = rid.len() as u8;
    }
    Ok(SourceSpec {
        id: s.id,
        endpoint: s.endpoint,
        kind,
        codec,
        clock_rate: s.clock_rate,
        payload_type: s.payload_type,
        rtx_payload_type: s.rtx_payload_type,
        layer_count: s.layer_count,
        layers,
    })
}

/// Every layer of a source forwarded to a relay endpoint (another
/// bridge), each layer its own stream with these SSRCs.
#[repr(C)]
pub struct SwitchyardRelay {
    /// The relay endpoint (marked with `switchyard_set_relay`).
    pub endpoint: u64,
    /// The source.
    pub source: u64,
    /// Per layer of the source: the stream's SSRC on the relay (nonzero).
    pub ssrcs: [u32; 3],
    /// Per layer: its RTX SSRC (0: resend the original packet).
    pub rtx_ssrcs: [u32; 3],
}

/// The dataplane's relay spec.
pub fn relay(r: &SwitchyardRelay) -> Result<RelaySpec, Failure> {
    if r.endpoint == 0 || r.source == 0 {
        return Err(bad("endpoint and source ids must be nonzero"));
    }
    Ok(RelaySpec {
        endpoint: r.endpoint,
        source: r.source,
        ssrcs: r.ssrcs,
        rtx_ssrcs: r.rtx_ssrcs,
    })
}

/// The dataplane's subscription spec.
pub fn subscription(s: &SwitchyardSubscription) -> Result<SubscriptionSpec, Failure> {
    if s.endpoint == 0 || s.source == 0 {
        return Err(bad("endpoint and source ids must be nonzero"));
    }
    if usize::from(s.target_layer) >= MAX_LAYERS {
        return Err(bad(format!("target_layer {} (0–2)", s.target_layer)));
    }
    let mid_bytes = c_array(&s.mid, MAX_MID, "mid")?;
    let mut mid = [0u8; MAX_MID];
    mid[..mid_bytes.len()].copy_from_slice(&mid_bytes);
    Ok(SubscriptionSpec {
        endpoint: s.endpoint,
        source: s.source,
        ssrc: s.ssrc,
        rtx_ssrc: s.rtx_ssrc,
        payload_type: s.payload_type,
        rtx_payload_type: s.rtx_payload_type,
        target_layer: s.target_layer,
        mid,
        mid_len: mid_bytes.len() as u8,
    })
}

/// Fills a packet info.
pub fn packet_info(worker: usize, h: &PacketHeader) -> SwitchyardPacketInfo {
    let mut remote = [0 as c_char; 64];
    for (o, b) in remote.iter_mut().zip(h.remote.to_string().bytes().take(63)) {
        *o = b as c_char;
    }
    SwitchyardPacketInfo {
        worker: worker as u32,
        local_port: h.local_port,
        endpoint: h.endpoint,
        remote,
    }
}

/// Flattens an event.
pub fn event(worker: usize, e: Event) -> SwitchyardEvent {
    let mut out = SwitchyardEvent {
        worker: worker as u32,
        ..SwitchyardEvent::default()
    };
    match e {
        Event::CommandFailed { kind, id, error } => {
            out.kind = SWITCHYARD_EVENT_COMMAND_FAILED;
            out.command_kind = u32::from(kind);
            out.id = id;
            out.command_error = error as u32;
        }
        Event::LayerSwitched {
            endpoint,
            source,
            layer,
        } => {
            out.kind = SWITCHYARD_EVENT_LAYER_SWITCHED;
            (out.endpoint, out.source, out.layer) = (endpoint, source, layer);
        }
        Event::AudioLevel {
            source,
            level,
            voice,
        } => {
            out.kind = SWITCHYARD_EVENT_AUDIO_LEVEL;
            (out.source, out.level, out.voice) = (source, level, u8::from(voice));
        }
        Event::KeyframeRequested { source, layer } => {
            out.kind = SWITCHYARD_EVENT_KEYFRAME_REQUESTED;
            (out.source, out.layer) = (source, layer);
        }
        Event::Feedback {
            endpoint,
            nacks,
            retransmitted,
            keyframe_requests,
            remb_bps,
            twcc_reported,
            twcc_lost,
            fraction_lost,
        } => {
            out.kind = SWITCHYARD_EVENT_FEEDBACK;
            out.endpoint = endpoint;
            out.nacks = nacks;
            out.retransmitted = retransmitted;
            out.keyframe_requests = keyframe_requests;
            out.remb_bps = remb_bps;
            out.twcc_reported = twcc_reported;
            out.twcc_lost = twcc_lost;
            out.fraction_lost = fraction_lost;
        }
        Event::EndpointIdle { endpoint, idle_ms } => {
            out.kind = SWITCHYARD_EVENT_ENDPOINT_IDLE;
            (out.endpoint, out.idle_ms) = (endpoint, idle_ms);
        }
        Event::EndpointActive { endpoint } => {
            out.kind = SWITCHYARD_EVENT_ENDPOINT_ACTIVE;
            out.endpoint = endpoint;
        }
        Event::Bandwidth {
            endpoint,
            estimate_bps,
            acked_bps,
            loss,
            probing,
        } => {
            out.kind = SWITCHYARD_EVENT_BANDWIDTH;
            out.endpoint = endpoint;
            out.estimate_bps = estimate_bps;
            out.acked_bps = acked_bps;
            out.loss = loss;
            out.probing = u8::from(probing);
        }
        Event::SourceRates { source, layer_bps } => {
            out.kind = SWITCHYARD_EVENT_SOURCE_RATES;
            (out.source, out.layer_bps) = (source, layer_bps);
        }
    }
    out
}

/// Copies a counter block.
pub fn counters(b: &CounterBlock) -> SwitchyardCounters {
    use switchyard_dataplane::abi::Counter as C;
    let mut out = SwitchyardCounters {
        rx_packets: b.get(C::RxPackets),
        rx_bytes: b.get(C::RxBytes),
        tx_packets: b.get(C::TxPackets),
        tx_bytes: b.get(C::TxBytes),
        commands: b.get(C::Commands),
        exceptions_in: b.get(C::ExceptionsIn),
        exceptions_out: b.get(C::ExceptionsOut),
        events_lost: b.get(C::EventsLost),
        retransmissions: b.get(C::Retransmissions),
        keyframe_requests: b.get(C::KeyframeRequests),
        forwarded: b.get(C::Forwarded),
        drops: [0; SWITCHYARD_DROP_REASONS],
    };
    for r in DropReason::ALL {
        if let Some(d) = out.drops.get_mut(r as usize) {
            *d = b.drops(r);
        }
    }
    out
}

/// Close reasons the ICE-TCP front counts (`closed` of
/// [`SwitchyardIceTcpCounters`], in this order): connection_cap,
/// source_cap, not_ice, frame_too_long, unanswered, idle, stalled_reader,
/// peer_closed, error.
pub const SWITCHYARD_ICE_TCP_CLOSE_REASONS: usize = 9;

/// The ICE-TCP front's counters (ABI 1.9; zero from an older dataplane).
#[repr(C)]
#[derive(Default)]
pub struct SwitchyardIceTcpCounters {
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections whose first packet named a worker.
    pub linked: u64,
    /// Connections the worker answered.
    pub answered: u64,
    /// Packets from peers passed to workers.
    pub packets_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Packets from workers queued for peers.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Packets for peers dropped: the peer's queue was full.
    pub queue_full: u64,
    /// Packets from peers dropped: the worker's socket refused them.
    pub worker_refused: u64,
    /// Connections closed or refused, by reason (see
    /// [`SWITCHYARD_ICE_TCP_CLOSE_REASONS`]).
    pub closed: [u64; SWITCHYARD_ICE_TCP_CLOSE_REASONS],
}

/// The ICE-TCP block as the C struct.
pub fn ice_tcp_counters(b: &CounterBlock) -> SwitchyardIceTcpCounters {
    use switchyard_dataplane::abi::counters::{TCP_CLOSED_BASE, TcpCounter as T};
    let v = |c: T| b.values[c as usize];
    let mut closed = [0; SWITCHYARD_ICE_TCP_CLOSE_REASONS];
    for (i, c) in closed.iter_mut().enumerate() {
        *c = b.values[TCP_CLOSED_BASE + i];
    }
    SwitchyardIceTcpCounters {
        accepted: v(T::Accepted),
        open: v(T::Open),
        linked: v(T::Linked),
        answered: v(T::Answered),
        packets_in: v(T::PacketsIn),
        bytes_in: v(T::BytesIn),
        packets_out: v(T::PacketsOut),
        bytes_out: v(T::BytesOut),
        queue_full: v(T::QueueFull),
        worker_refused: v(T::WorkerRefused),
        closed,
    }
}
