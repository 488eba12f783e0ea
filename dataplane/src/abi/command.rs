//! Commands: control plane → worker, one per command-ring slot.
//!
//! Each is a fixed little-endian layout behind a `kind` (docs/abi.md lists
//! them byte for byte). Slots that carried keys are wiped by the worker
//! after reading.

use super::codec::{Reader, Writer};
use super::continuity::{Continuity, RECORD_LEN};
use switchyard_srtp::{MasterKey, Profile};
use switchyard_wire::rtp::ExtensionIds;

/// Longest rid carried in a layer spec.
pub const MAX_RID: usize = 15;
/// Longest mid carried in a subscription.
pub const MAX_MID: usize = 16;
/// Most simulcast layers per source.
pub const MAX_LAYERS: usize = 3;
/// A target layer meaning "forward nothing" (last-N, hidden tiles, no
/// bandwidth); the stream resumes at a keyframe when a layer is set again.
pub const PAUSED: u8 = 0xff;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Audio.
    Audio = 1,
    /// Video.
    Video = 2,
}

/// The codec of a source, as far as forwarding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Anything forwarded without payload inspection.
    Other = 0,
    /// Opus.
    Opus = 1,
    /// VP8: picture id and TL0PICIDX are rewritten.
    Vp8 = 2,
    /// H.264.
    H264 = 3,
    /// VP9.
    Vp9 = 4,
}

impl Codec {
    fn from_u8(v: u8) -> Codec {
        match v {
            1 => Codec::Opus,
            2 => Codec::Vp8,
            3 => Codec::H264,
            4 => Codec::Vp9,
            _ => Codec::Other,
        }
    }
}

/// SRTP keys of one endpoint: what we receive with, what we send with.
/// No `Debug`; zeroized on drop (through `MasterKey`).
#[derive(Clone)]
pub struct SrtpKeys {
    /// Protection profile.
    pub profile: Profile,
    /// Key the endpoint protects with (we unprotect).
    pub rx: MasterKey,
    /// Key we protect with.
    pub tx: MasterKey,
}

/// A new endpoint: one ICE/DTLS transport of one participant.
#[derive(Clone)]
pub struct EndpointSpec {
    /// Control-plane id (nonzero).
    pub id: u64,
    /// Remote address ICE selected.
    pub remote: std::net::SocketAddr,
    /// SRTP keys from the DTLS handshake.
    pub keys: SrtpKeys,
    /// Header extension ids negotiated in SDP.
    pub ext: ExtensionIds,
    /// Opaque bytes for the control plane (room, participant), kept in the
    /// endpoint table for re-attach.
    pub user_data: [u8; 32],
}

/// One simulcast layer of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerSpec {
    /// Media SSRC (0 = learned from the rid extension).
    pub ssrc: u32,
    /// RTX SSRC (0 = none).
    pub rtx_ssrc: u32,
    /// rid bytes (`rid_len` used).
    pub rid: [u8; MAX_RID],
    /// Length of `rid`.
    pub rid_len: u8,
}

impl LayerSpec {
    /// The rid, if any.
    pub fn rid(&self) -> &[u8] {
        &self.rid[..(self.rid_len as usize).min(MAX_RID)]
    }
}

/// A media source: one track of one publisher, with up to three layers
/// (lowest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSpec {
    /// Control-plane id (nonzero).
    pub id: u64,
    /// Publishing endpoint.
    pub endpoint: u64,
    /// Audio or video.
    pub kind: MediaKind,
    /// Codec.
    pub codec: Codec,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Payload type the publisher uses.
    pub payload_type: u8,
    /// RTX payload type (0 = none).
    pub rtx_payload_type: u8,
    /// Layers in use (1–3).
    pub layer_count: u8,
    /// Layers, lowest quality first.
    pub layers: [LayerSpec; MAX_LAYERS],
}

/// A subscriber's outgoing stream of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionSpec {
    /// Subscribing endpoint.
    pub endpoint: u64,
    /// Source.
    pub source: u64,
    /// SSRC the subscriber sees.
    pub ssrc: u32,
    /// RTX SSRC for retransmissions (0 = resend the original packet).
    pub rtx_ssrc: u32,
    /// Payload type the subscriber expects.
    pub payload_type: u8,
    /// RTX payload type (0 = none).
    pub rtx_payload_type: u8,
    /// Wanted layer index.
    pub target_layer: u8,
    /// The subscriber's mid for this stream (`mid_len` bytes used); written
    /// into the mid header extension when the subscriber negotiated it.
    pub mid: [u8; MAX_MID],
    /// Length of `mid`.
    pub mid_len: u8,
}

impl SubscriptionSpec {
    /// The mid, if any.
    pub fn mid(&self) -> &[u8] {
        &self.mid[..(self.mid_len as usize).min(MAX_MID)]
    }
}

/// Everything the control plane can ask of a worker.
#[derive(Clone)]
pub enum Command {
    /// Adds an endpoint (or replaces one with the same id).
    AddEndpoint(EndpointSpec),
    /// Removes an endpoint with its sources and subscriptions.
    RemoveEndpoint {
        /// Endpoint id.
        endpoint: u64,
    },
    /// ICE moved the endpoint to another remote address.
    UpdateRemote {
        /// Endpoint id.
        endpoint: u64,
        /// New address.
        remote: std::net::SocketAddr,
    },
    /// New keys after a DTLS renegotiation.
    RotateKeys {
        /// Endpoint id.
        endpoint: u64,
        /// The keys.
        keys: SrtpKeys,
    },
    /// Adds a source (sent to every worker: the publisher's worker receives
    /// it, the others mirror it for their subscribers).
    AddSource(SourceSpec),
    /// Removes a source.
    RemoveSource {
        /// Source id.
        source: u64,
    },
    /// Starts an outgoing stream.
    Subscribe(SubscriptionSpec),
    /// Stops an outgoing stream.
    Unsubscribe {
        /// Subscriber.
        endpoint: u64,
        /// Source.
        source: u64,
    },
    /// Changes the wanted layer; the switch happens at its next keyframe.
    SetTargetLayer {
        /// Subscriber.
        endpoint: u64,
        /// Source.
        source: u64,
        /// Layer index.
        layer: u8,
    },
    /// Asks the publisher for a keyframe (throttled).
    RequestKeyframe {
        /// Source.
        source: u64,
        /// Layer index.
        layer: u8,
    },
    /// On the source's worker: also hand this source's packets to `worker`.
    AddFanOut {
        /// Source.
        source: u64,
        /// Destination worker.
        worker: u16,
    },
    /// Undoes `AddFanOut`.
    RemoveFanOut {
        /// Source.
        source: u64,
        /// Destination worker.
        worker: u16,
    },
    /// Pads the stream toward a subscriber up to `target_bps` for
    /// `duration_ms`, to learn whether its path carries that much before
    /// raising its layers (ABI 1.1).
    Probe {
        /// Subscriber.
        endpoint: u64,
        /// Total rate to reach, bit/s.
        target_bps: u64,
        /// How long.
        duration_ms: u32,
    },
    /// Carries an endpoint's SRTP context, an outgoing stream or the
    /// endpoint's counters on from a continuity record (ABI 1.3): sent by a
    /// control plane that rebuilds a restarted dataplane, after the
    /// `AddEndpoint` / `Subscribe` the record belongs to.
    Resume(Continuity),
    /// Says whether an endpoint id is a relay to another bridge (ABI 1.4;
    /// sent to every worker, like `AddSource`): a relay takes sources only
    /// through `RelaySource`, and a source a relay publishes never goes out
    /// on a relay.
    SetRelay {
        /// Endpoint id (it need not exist on this worker).
        endpoint: u64,
        /// Relay or not.
        relay: bool,
    },
    /// Forwards every layer of a source to a relay endpoint, each layer as
    /// its own stream pinned to it (ABI 1.4). Replaces an earlier
    /// `RelaySource` of the same pair.
    RelaySource(RelaySpec),
    /// Undoes `RelaySource` (ABI 1.4).
    UnrelaySource {
        /// The relay endpoint.
        endpoint: u64,
        /// Source.
        source: u64,
    },
}

/// A source relayed to another bridge: per layer, the SSRCs its stream
/// has on the relay (the far bridge declares them in its `AddSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySpec {
    /// The relay endpoint.
    pub endpoint: u64,
    /// Source.
    pub source: u64,
    /// Per layer (as many as the source has): media SSRC on the relay.
    pub ssrcs: [u32; MAX_LAYERS],
    /// Per layer: RTX SSRC on the relay (0 = resend the original packet).
    pub rtx_ssrcs: [u32; MAX_LAYERS],
}

impl core::fmt::Debug for Command {
    /// Names and ids only: never key bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Command::AddEndpoint(s) => {
                write!(f, "AddEndpoint({}, {})", s.id, s.keys.profile.name())
            }
            Command::RotateKeys { endpoint, keys } => {
                write!(f, "RotateKeys({endpoint}, {})", keys.profile.name())
            }
            Command::RemoveEndpoint { endpoint } => write!(f, "RemoveEndpoint({endpoint})"),
            Command::UpdateRemote { endpoint, .. } => write!(f, "UpdateRemote({endpoint})"),
            Command::AddSource(s) => write!(f, "AddSource({} of {})", s.id, s.endpoint),
            Command::RemoveSource { source } => write!(f, "RemoveSource({source})"),
            Command::Subscribe(s) => write!(f, "Subscribe({} <- {})", s.endpoint, s.source),
            Command::Unsubscribe { endpoint, source } => {
                write!(f, "Unsubscribe({endpoint} <- {source})")
            }
            Command::SetTargetLayer {
                endpoint,
                source,
                layer,
            } => {
                write!(f, "SetTargetLayer({endpoint} <- {source}: {layer})")
            }
            Command::RequestKeyframe { source, layer } => {
                write!(f, "RequestKeyframe({source}/{layer})")
            }
            Command::AddFanOut { source, worker } => write!(f, "AddFanOut({source} -> {worker})"),
            Command::RemoveFanOut { source, worker } => {
                write!(f, "RemoveFanOut({source} -> {worker})")
            }
            Command::Probe {
                endpoint,
                target_bps,
                duration_ms,
            } => write!(
                f,
                "Probe({endpoint} at {target_bps} bit/s for {duration_ms} ms)"
            ),
            Command::Resume(r) => write!(f, "Resume({r:?})"),
            Command::SetRelay { endpoint, relay } => write!(f, "SetRelay({endpoint}: {relay})"),
            Command::RelaySource(r) => write!(f, "RelaySource({} -> {})", r.source, r.endpoint),
            Command::UnrelaySource { endpoint, source } => {
                write!(f, "UnrelaySource({source} -> {endpoint})")
            }
        }
    }
}

/// Command kinds (the slot's `kind` field).
pub mod kind {
    #![allow(missing_docs)]
    pub const ADD_ENDPOINT: u16 = 1;
    pub const REMOVE_ENDPOINT: u16 = 2;
    pub const UPDATE_REMOTE: u16 = 3;
    pub const ROTATE_KEYS: u16 = 4;
    pub const ADD_SOURCE: u16 = 5;
    pub const REMOVE_SOURCE: u16 = 6;
    pub const SUBSCRIBE: u16 = 7;
    pub const UNSUBSCRIBE: u16 = 8;
    pub const SET_TARGET_LAYER: u16 = 9;
    pub const REQUEST_KEYFRAME: u16 = 10;
    pub const ADD_FAN_OUT: u16 = 11;
    pub const REMOVE_FAN_OUT: u16 = 12;
    pub const PROBE: u16 = 13;
    pub const RESUME: u16 = 14;
    pub const SET_RELAY: u16 = 15;
    pub const RELAY_SOURCE: u16 = 16;
    pub const UNRELAY_SOURCE: u16 = 17;
}

fn write_keys(w: &mut Writer<'_>, k: &SrtpKeys) {
    w.u16(k.profile.dtls_id());
    for m in [&k.rx, &k.tx] {
        w.fixed(m.key(), 32).fixed(m.salt(), 14);
    }
}

fn read_keys(r: &mut Reader<'_>) -> Option<SrtpKeys> {
    let profile = Profile::from_dtls_id(r.u16())?;
    let read = |r: &mut Reader<'_>| {
        let mut key: [u8; 32] = r.bytes();
        let mut salt: [u8; 14] = r.bytes();
        let m = MasterKey::new(
            profile,
            &key[..profile.key_len()],
            &salt[..profile.salt_len()],
        );
        zeroize::Zeroize::zeroize(&mut key);
        zeroize::Zeroize::zeroize(&mut salt);
        m.ok()
    };
    let rx = read(r)?;
    let tx = read(r)?;
    Some(SrtpKeys { profile, rx, tx })
}

fn write_ext(w: &mut Writer<'_>, e: &ExtensionIds) {
    for id in e.to_array() {
        w.u8(id.unwrap_or(0));
    }
    w.u8(0);
}

fn read_ext(r: &mut Reader<'_>) -> ExtensionIds {
    let ids = [(); 7].map(|()| Some(r.u8()).filter(|&v| v != 0));
    r.u8();
    ExtensionIds::from_array(ids)
}

impl Command {
    /// Encodes into `buf`; returns (kind, length).
    pub fn encode(&self, buf: &mut [u8]) -> Option<(u16, usize)> {
        let mut w = Writer::new(buf);
        let kind = match self {
            Command::AddEndpoint(s) => {
                w.u64(s.id).addr(s.remote);
                write_keys(&mut w, &s.keys);
                write_ext(&mut w, &s.ext);
                w.bytes(&s.user_data);
                kind::ADD_ENDPOINT
            }
            Command::RemoveEndpoint { endpoint } => {
                w.u64(*endpoint);
                kind::REMOVE_ENDPOINT
            }
            Command::UpdateRemote { endpoint, remote } => {
                w.u64(*endpoint).addr(*remote);
                kind::UPDATE_REMOTE
            }
            Command::RotateKeys { endpoint, keys } => {
                w.u64(*endpoint);
                write_keys(&mut w, keys);
                kind::ROTATE_KEYS
            }
            Command::AddSource(s) => {
                w.u64(s.id)
                    .u64(s.endpoint)
                    .u8(s.kind as u8)
                    .u8(s.codec as u8)
                    .u32(s.clock_rate);
                w.u8(s.payload_type)
                    .u8(s.rtx_payload_type)
                    .u8(s.layer_count)
                    .u8(0);
                for l in &s.layers {
                    w.u32(l.ssrc).u32(l.rtx_ssrc).u8(l.rid_len).bytes(&l.rid);
                }
                kind::ADD_SOURCE
            }
            Command::RemoveSource { source } => {
                w.u64(*source);
                kind::REMOVE_SOURCE
            }
            Command::Subscribe(s) => {
                w.u64(s.endpoint).u64(s.source).u32(s.ssrc).u32(s.rtx_ssrc);
                w.u8(s.payload_type)
                    .u8(s.rtx_payload_type)
                    .u8(s.target_layer);
                w.u8(s.mid_len).bytes(&s.mid);
                kind::SUBSCRIBE
            }
            Command::Unsubscribe { endpoint, source } => {
                w.u64(*endpoint).u64(*source);
                kind::UNSUBSCRIBE
            }
            Command::SetTargetLayer {
                endpoint,
                source,
                layer,
            } => {
                w.u64(*endpoint).u64(*source).u8(*layer);
                kind::SET_TARGET_LAYER
            }
            Command::RequestKeyframe { source, layer } => {
                w.u64(*source).u8(*layer);
                kind::REQUEST_KEYFRAME
            }
            Command::AddFanOut { source, worker } => {
                w.u64(*source).u16(*worker);
                kind::ADD_FAN_OUT
            }
            Command::RemoveFanOut { source, worker } => {
                w.u64(*source).u16(*worker);
                kind::REMOVE_FAN_OUT
            }
            Command::Probe {
                endpoint,
                target_bps,
                duration_ms,
            } => {
                w.u64(*endpoint).u64(*target_bps).u32(*duration_ms);
                kind::PROBE
            }
            Command::Resume(record) => {
                w.bytes(&record.to_bytes());
                kind::RESUME
            }
            Command::SetRelay { endpoint, relay } => {
                w.u64(*endpoint).u8(u8::from(*relay));
                kind::SET_RELAY
            }
            Command::RelaySource(r) => {
                w.u64(r.endpoint).u64(r.source);
                for (ssrc, rtx) in r.ssrcs.iter().zip(&r.rtx_ssrcs) {
                    w.u32(*ssrc).u32(*rtx);
                }
                kind::RELAY_SOURCE
            }
            Command::UnrelaySource { endpoint, source } => {
                w.u64(*endpoint).u64(*source);
                kind::UNRELAY_SOURCE
            }
        };
        Some((kind, w.finish()?))
    }

    /// Decodes a command; `None` for an unknown kind or a malformed body.
    pub fn decode(kind: u16, body: &[u8]) -> Option<Command> {
        let mut r = Reader::new(body);
        let cmd = match kind {
            kind::ADD_ENDPOINT => {
                let id = r.u64();
                let remote = r.addr()?;
                let keys = read_keys(&mut r)?;
                let ext = read_ext(&mut r);
                Command::AddEndpoint(EndpointSpec {
                    id,
                    remote,
                    keys,
                    ext,
                    user_data: r.bytes(),
                })
            }
            kind::REMOVE_ENDPOINT => Command::RemoveEndpoint { endpoint: r.u64() },
            kind::UPDATE_REMOTE => Command::UpdateRemote {
                endpoint: r.u64(),
                remote: r.addr()?,
            },
            kind::ROTATE_KEYS => Command::RotateKeys {
                endpoint: r.u64(),
                keys: read_keys(&mut r)?,
            },
            kind::ADD_SOURCE => {
                let (id, endpoint) = (r.u64(), r.u64());
                let kind = match r.u8() {
                    1 => MediaKind::Audio,
                    2 => MediaKind::Video,
                    _ => return None,
                };
                let codec = Codec::from_u8(r.u8());
                let clock_rate = r.u32();
                let (payload_type, rtx_payload_type, layer_count) = (r.u8(), r.u8(), r.u8());
                r.u8();
                let mut layers = [LayerSpec::default(); MAX_LAYERS];
                for l in &mut layers {
                    *l = LayerSpec {
                        ssrc: r.u32(),
                        rtx_ssrc: r.u32(),
                        rid_len: r.u8(),
                        rid: r.bytes(),
                    };
                    if l.rid_len as usize > MAX_RID {
                        return None;
                    }
                }
                if !(1..=MAX_LAYERS as u8).contains(&layer_count) {
                    return None;
                }
                Command::AddSource(SourceSpec {
                    id,
                    endpoint,
                    kind,
                    codec,
                    clock_rate,
                    payload_type,
                    rtx_payload_type,
                    layer_count,
                    layers,
                })
            }
            kind::REMOVE_SOURCE => Command::RemoveSource { source: r.u64() },
            kind::SUBSCRIBE => {
                let (endpoint, source, ssrc, rtx_ssrc) = (r.u64(), r.u64(), r.u32(), r.u32());
                let (payload_type, rtx_payload_type, target_layer) = (r.u8(), r.u8(), r.u8());
                let (mid_len, mid) = (r.u8(), r.bytes());
                if mid_len as usize > MAX_MID {
                    return None;
                }
                Command::Subscribe(SubscriptionSpec {
                    mid,
                    mid_len,
                    endpoint,
                    source,
                    ssrc,
                    rtx_ssrc,
                    payload_type,
                    rtx_payload_type,
                    target_layer,
                })
            }
            kind::UNSUBSCRIBE => Command::Unsubscribe {
                endpoint: r.u64(),
                source: r.u64(),
            },
            kind::SET_TARGET_LAYER => Command::SetTargetLayer {
                endpoint: r.u64(),
                source: r.u64(),
                layer: r.u8(),
            },
            kind::REQUEST_KEYFRAME => Command::RequestKeyframe {
                source: r.u64(),
                layer: r.u8(),
            },
            kind::ADD_FAN_OUT => Command::AddFanOut {
                source: r.u64(),
                worker: r.u16(),
            },
            kind::REMOVE_FAN_OUT => Command::RemoveFanOut {
                source: r.u64(),
                worker: r.u16(),
            },
            kind::PROBE => Command::Probe {
                endpoint: r.u64(),
                target_bps: r.u64(),
                duration_ms: r.u32(),
            },
            kind::RESUME => Command::Resume(Continuity::decode(&r.bytes::<RECORD_LEN>())?),
            kind::SET_RELAY => Command::SetRelay {
                endpoint: r.u64(),
                relay: match r.u8() {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
            },
            kind::RELAY_SOURCE => {
                let (endpoint, source) = (r.u64(), r.u64());
                let mut spec = RelaySpec {
                    endpoint,
                    source,
                    ssrcs: [0; MAX_LAYERS],
                    rtx_ssrcs: [0; MAX_LAYERS],
                };
                for l in 0..MAX_LAYERS {
                    spec.ssrcs[l] = r.u32();
                    spec.rtx_ssrcs[l] = r.u32();
                }
                Command::RelaySource(spec)
            }
            kind::UNRELAY_SOURCE => Command::UnrelaySource {
                endpoint: r.u64(),
                source: r.u64(),
            },
            _ => return None,
        };
        (!r.is_short()).then_some(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SrtpKeys {
        let p = Profile::AeadAes128Gcm;
        SrtpKeys {
            profile: p,
            rx: MasterKey::new(p, &[1; 16], &[2; 12]).unwrap(),
            tx: MasterKey::new(p, &[3; 16], &[4; 12]).unwrap(),
        }
    }

    #[test]
    fn every_command_round_trips() {
        let mut rid = [0u8; MAX_RID];
        rid[0] = b'h';
        let layer = LayerSpec {
            ssrc: 5,
            rtx_ssrc: 6,
            rid,
            rid_len: 1,
        };
        let cmds = vec![
            Command::AddEndpoint(EndpointSpec {
                id: 1,
                remote: "[::1]:4000".parse().unwrap(),
                keys: keys(),
                ext: ExtensionIds {
                    mid: Some(4),
                    transport_cc: Some(3),
                    ..Default::default()
                },
                user_data: [7; 32],
            }),
            Command::RemoveEndpoint { endpoint: 2 },
            Command::UpdateRemote {
                endpoint: 3,
                remote: "127.0.0.1:9".parse().unwrap(),
            },
            Command::RotateKeys {
                endpoint: 4,
                keys: keys(),
            },
            Command::AddSource(SourceSpec {
                id: 10,
                endpoint: 1,
                kind: MediaKind::Video,
                codec: Codec::Vp8,
                clock_rate: 90000,
                payload_type: 96,
                rtx_payload_type: 97,
                layer_count: 3,
                layers: [layer; 3],
            }),
            Command::RemoveSource { source: 10 },
            Command::Subscribe(SubscriptionSpec {
                endpoint: 2,
                source: 10,
                ssrc: 77,
                rtx_ssrc: 78,
                payload_type: 96,
                rtx_payload_type: 97,
                target_layer: 2,
                mid: *b"v1\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                mid_len: 2,
            }),
            Command::Unsubscribe {
                endpoint: 2,
                source: 10,
            },
            Command::SetTargetLayer {
                endpoint: 2,
                source: 10,
                layer: 1,
            },
            Command::RequestKeyframe {
                source: 10,
                layer: 0,
            },
            Command::AddFanOut {
                source: 10,
                worker: 1,
            },
            Command::Probe {
                endpoint: 3,
                target_bps: 2_500_000,
                duration_ms: 300,
            },
            Command::RemoveFanOut {
                source: 10,
                worker: 1,
            },
            Command::Resume(Continuity::Endpoint {
                endpoint: 3,
                twcc_seq: 9,
            }),
            Command::SetRelay {
                endpoint: 8,
                relay: true,
            },
            Command::SetRelay {
                endpoint: 8,
                relay: false,
            },
            Command::RelaySource(RelaySpec {
                endpoint: 8,
                source: 10,
                ssrcs: [101, 102, 103],
                rtx_ssrcs: [201, 0, 203],
            }),
            Command::UnrelaySource {
                endpoint: 8,
                source: 10,
            },
        ];
        for cmd in cmds {
            let mut buf = [0u8; 248];
            let (kind, n) = cmd.encode(&mut buf).unwrap();
            let back = Command::decode(kind, &buf[..n]).unwrap_or_else(|| panic!("{cmd:?}"));
            let mut again = [0u8; 248];
            assert_eq!(back.encode(&mut again), Some((kind, n)));
            assert_eq!(&again[..n], &buf[..n], "{cmd:?}");
            assert!(
                Command::decode(kind, &buf[..n - 1]).is_none(),
                "{cmd:?} truncated"
            );
        }
        assert!(Command::decode(999, &[0; 16]).is_none());
    }

    #[test]
    fn debug_never_shows_keys() {
        let c = Command::AddEndpoint(EndpointSpec {
            id: 1,
            remote: "127.0.0.1:1".parse().unwrap(),
            keys: keys(),
            ext: ExtensionIds::default(),
            user_data: [0; 32],
        });
        let s = format!("{c:?}");
        assert_eq!(s, "AddEndpoint(1, SRTP_AEAD_AES_128_GCM)");
    }
}
