//! Events: worker → control plane, one per event-ring slot, and the
//! exception packets that travel in both directions.

use super::codec::{ADDR_LEN, Reader, Writer};
use std::net::SocketAddr;

/// Why a worker did not apply a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// The command body did not decode.
    Malformed = 1,
    /// It names an endpoint this worker does not have.
    UnknownEndpoint = 2,
    /// It names a source this worker does not have.
    UnknownSource = 3,
    /// A table is full (endpoints, sources, subscriptions).
    Full = 4,
    /// The SRTP keys were refused.
    BadKeys = 5,
    /// The endpoint's remote address is already used by another endpoint.
    AddressInUse = 6,
    /// A relay would take a source another relay brought, or a relay was
    /// named where only a participant may be (ABI 1.4).
    RelayLoop = 7,
}

impl CommandError {
    fn from_u16(v: u16) -> CommandError {
        match v {
            2 => CommandError::UnknownEndpoint,
            3 => CommandError::UnknownSource,
            4 => CommandError::Full,
            5 => CommandError::BadKeys,
            6 => CommandError::AddressInUse,
            7 => CommandError::RelayLoop,
            _ => CommandError::Malformed,
        }
    }
}

/// What a worker tells the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A command was not applied.
    CommandFailed {
        /// The command's kind.
        kind: u16,
        /// The endpoint or source it named.
        id: u64,
        /// Why.
        error: CommandError,
    },
    /// A subscriber's stream switched layer (at a keyframe).
    LayerSwitched {
        /// Subscriber.
        endpoint: u64,
        /// Source.
        source: u64,
        /// Layer now forwarded.
        layer: u8,
    },
    /// Loudest audio level of a source over the last interval (RFC 6464:
    /// 0 = loudest, 127 = silence, in −dBov).
    AudioLevel {
        /// Source.
        source: u64,
        /// Level.
        level: u8,
        /// Voice activity flag, if any packet set it.
        voice: bool,
    },
    /// A keyframe request was sent to a publisher.
    KeyframeRequested {
        /// Source.
        source: u64,
        /// Layer.
        layer: u8,
    },
    /// RTCP feedback from a subscriber over the last interval.
    Feedback {
        /// Subscriber.
        endpoint: u64,
        /// Sequence numbers NACKed.
        nacks: u32,
        /// Of those, retransmitted from history.
        retransmitted: u32,
        /// PLI and FIR received.
        keyframe_requests: u32,
        /// Last REMB estimate in bit/s (0 = none).
        remb_bps: u64,
        /// Packets reported by transport-cc feedback.
        twcc_reported: u32,
        /// Of those, reported lost.
        twcc_lost: u32,
        /// Highest fraction lost in receiver reports (1/256).
        fraction_lost: u8,
    },
    /// No packet from an endpoint for `idle_ms` (consent is the control
    /// plane's call; the worker only reports).
    EndpointIdle {
        /// Endpoint.
        endpoint: u64,
        /// Milliseconds since its last packet.
        idle_ms: u64,
    },
    /// A packet that authenticates came again from an endpoint reported
    /// idle (ABI 1.6): its media flows (the control plane keeps its ICE
    /// consent while it does).
    EndpointActive {
        /// Endpoint.
        endpoint: u64,
    },
    /// The send-side bandwidth estimate toward a subscriber (ABI 1.1).
    Bandwidth {
        /// Subscriber.
        endpoint: u64,
        /// What its path carries, bit/s.
        estimate_bps: u64,
        /// What it acknowledged receiving lately, bit/s (0 = unknown).
        acked_bps: u64,
        /// Fraction of packets lost lately (1/256).
        loss: u8,
        /// A probe is running.
        probing: bool,
    },
    /// What a publisher's source sends per layer over the last interval
    /// (ABI 1.1).
    SourceRates {
        /// Source.
        source: u64,
        /// Bit/s of each layer (lowest first; 0 = not sent).
        layer_bps: [u32; 3],
    },
}

/// Event kinds (the slot's `kind` field).
pub mod kind {
    #![allow(missing_docs)]
    pub const COMMAND_FAILED: u16 = 1;
    pub const LAYER_SWITCHED: u16 = 2;
    pub const AUDIO_LEVEL: u16 = 3;
    pub const KEYFRAME_REQUESTED: u16 = 4;
    pub const FEEDBACK: u16 = 5;
    pub const ENDPOINT_IDLE: u16 = 6;
    pub const BANDWIDTH: u16 = 7;
    pub const SOURCE_RATES: u16 = 8;
    pub const ENDPOINT_ACTIVE: u16 = 9;
}

impl Event {
    /// Encodes into `buf`; returns (kind, length).
    pub fn encode(&self, buf: &mut [u8]) -> Option<(u16, usize)> {
        let mut w = Writer::new(buf);
        let kind = match *self {
            Event::CommandFailed { kind, id, error } => {
                w.u16(kind).u16(error as u16).u64(id);
                kind::COMMAND_FAILED
            }
            Event::LayerSwitched {
                endpoint,
                source,
                layer,
            } => {
                w.u64(endpoint).u64(source).u8(layer);
                kind::LAYER_SWITCHED
            }
            Event::AudioLevel {
                source,
                level,
                voice,
            } => {
                w.u64(source).u8(level).u8(voice.into());
                kind::AUDIO_LEVEL
            }
            Event::KeyframeRequested { source, layer } => {
                w.u64(source).u8(layer);
                kind::KEYFRAME_REQUESTED
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
                w.u64(endpoint)
                    .u32(nacks)
                    .u32(retransmitted)
                    .u32(keyframe_requests)
                    .u64(remb_bps);
                w.u32(twcc_reported).u32(twcc_lost).u8(fraction_lost);
                kind::FEEDBACK
            }
            Event::EndpointIdle { endpoint, idle_ms } => {
                w.u64(endpoint).u64(idle_ms);
                kind::ENDPOINT_IDLE
            }
            Event::EndpointActive { endpoint } => {
                w.u64(endpoint);
                kind::ENDPOINT_ACTIVE
            }
            Event::Bandwidth {
                endpoint,
                estimate_bps,
                acked_bps,
                loss,
                probing,
            } => {
                w.u64(endpoint)
                    .u64(estimate_bps)
                    .u64(acked_bps)
                    .u8(loss)
                    .u8(probing.into());
                kind::BANDWIDTH
            }
            Event::SourceRates { source, layer_bps } => {
                w.u64(source)
                    .u32(layer_bps[0])
                    .u32(layer_bps[1])
                    .u32(layer_bps[2]);
                kind::SOURCE_RATES
            }
        };
        Some((kind, w.finish()?))
    }

    /// Decodes an event; `None` for an unknown kind or a short body.
    pub fn decode(kind: u16, body: &[u8]) -> Option<Event> {
        let mut r = Reader::new(body);
        let e = match kind {
            kind::COMMAND_FAILED => {
                let (kind, error) = (r.u16(), CommandError::from_u16(r.u16()));
                Event::CommandFailed {
                    kind,
                    error,
                    id: r.u64(),
                }
            }
            kind::LAYER_SWITCHED => Event::LayerSwitched {
                endpoint: r.u64(),
                source: r.u64(),
                layer: r.u8(),
            },
            kind::AUDIO_LEVEL => Event::AudioLevel {
                source: r.u64(),
                level: r.u8(),
                voice: r.u8() != 0,
            },
            kind::KEYFRAME_REQUESTED => Event::KeyframeRequested {
                source: r.u64(),
                layer: r.u8(),
            },
            kind::FEEDBACK => Event::Feedback {
                endpoint: r.u64(),
                nacks: r.u32(),
                retransmitted: r.u32(),
                keyframe_requests: r.u32(),
                remb_bps: r.u64(),
                twcc_reported: r.u32(),
                twcc_lost: r.u32(),
                fraction_lost: r.u8(),
            },
            kind::ENDPOINT_IDLE => Event::EndpointIdle {
                endpoint: r.u64(),
                idle_ms: r.u64(),
            },
            kind::ENDPOINT_ACTIVE => Event::EndpointActive { endpoint: r.u64() },
            kind::BANDWIDTH => Event::Bandwidth {
                endpoint: r.u64(),
                estimate_bps: r.u64(),
                acked_bps: r.u64(),
                loss: r.u8(),
                probing: r.u8() != 0,
            },
            kind::SOURCE_RATES => Event::SourceRates {
                source: r.u64(),
                layer_bps: [r.u32(), r.u32(), r.u32()],
            },
            _ => return None,
        };
        (!r.is_short()).then_some(e)
    }
}

/// Bytes before the datagram in an exception-packet slot payload.
pub const PACKET_HEADER: usize = 8 + ADDR_LEN + 4;

/// The header of an exception packet. Inbound (worker → control plane): a
/// STUN, DTLS or unmatched datagram and where it came from. Outbound: a
/// datagram for the worker to send from its media socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// The endpoint the remote address belongs to (0 = none yet).
    pub endpoint: u64,
    /// Remote address (source when inbound, destination when outbound).
    pub remote: SocketAddr,
    /// The worker's local port.
    pub local_port: u16,
}

impl PacketHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; PACKET_HEADER] {
        let mut out = [0u8; PACKET_HEADER];
        let mut w = Writer::new(&mut out);
        w.u64(self.endpoint)
            .addr(self.remote)
            .u16(self.local_port)
            .u16(0);
        out
    }

    /// Splits a slot payload into header and datagram.
    pub fn decode(body: &[u8]) -> Option<(PacketHeader, &[u8])> {
        let mut r = Reader::new(body);
        let endpoint = r.u64();
        let remote = r.addr()?;
        let local_port = r.u16();
        r.u16();
        if r.is_short() {
            return None;
        }
        Some((
            PacketHeader {
                endpoint,
                remote,
                local_port,
            },
            r.rest(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let events = [
            Event::CommandFailed {
                kind: 7,
                id: 9,
                error: CommandError::UnknownSource,
            },
            Event::LayerSwitched {
                endpoint: 1,
                source: 2,
                layer: 2,
            },
            Event::AudioLevel {
                source: 3,
                level: 40,
                voice: true,
            },
            Event::KeyframeRequested {
                source: 3,
                layer: 1,
            },
            Event::Feedback {
                endpoint: 4,
                nacks: 5,
                retransmitted: 4,
                keyframe_requests: 1,
                remb_bps: 2_000_000,
                twcc_reported: 100,
                twcc_lost: 2,
                fraction_lost: 3,
            },
            Event::EndpointIdle {
                endpoint: 5,
                idle_ms: 31_000,
            },
            Event::EndpointActive { endpoint: 5 },
            Event::Bandwidth {
                endpoint: 6,
                estimate_bps: 1_800_000,
                acked_bps: 1_200_000,
                loss: 5,
                probing: true,
            },
            Event::SourceRates {
                source: 7,
                layer_bps: [150_000, 480_000, 1_400_000],
            },
        ];
        for e in events {
            let mut buf = [0u8; 120];
            let (kind, n) = e.encode(&mut buf).unwrap();
            assert_eq!(Event::decode(kind, &buf[..n]), Some(e));
            assert_eq!(Event::decode(kind, &buf[..n - 1]), None);
        }
    }

    #[test]
    fn packet_header_round_trip() {
        let h = PacketHeader {
            endpoint: 3,
            remote: "[::1]:5".parse().unwrap(),
            local_port: 10000,
        };
        let mut slot = h.encode().to_vec();
        slot.extend_from_slice(b"stun");
        assert_eq!(PacketHeader::decode(&slot), Some((h, &b"stun"[..])));
        assert_eq!(PacketHeader::decode(&slot[..10]), None);
    }
}
