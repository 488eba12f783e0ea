//! The cluster protocol's messages (docs/cluster.md, version 1): JSON
//! objects with `"v": 1` and `"type"`, and their meaning as
//! [`ToAgent`] / [`FromAgent`] and bridge records. Dataplane commands and
//! events travel in their ABI encoding (docs/abi.md), hex in JSON, so that
//! the two ends share one definition of them.

use crate::agent::{FromAgent, ToAgent, TransportSpec};
use crate::dtls::Fingerprint;
use crate::focus::bridges::{BridgeInfo, Health};
use crate::ice::Credentials;
use crate::sdp::Setup;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use switchyard_dataplane::abi::Event;

/// Protocol version.
pub const VERSION: u32 = 1;
/// Largest frame either end reads (bytes); larger ones end the link. (A
/// registration lists every endpoint a bridge carries: about 14 bytes
/// each.)
pub const MAX_FRAME: usize = 1 << 20;
/// Longest bridge id, region or reason.
pub const MAX_NAME: usize = 64;
/// Most endpoints a registration may list.
pub const MAX_ENDPOINTS: usize = 100_000;
/// Most workers or addresses a registration may list.
pub const MAX_LIST: usize = 256;

/// The handshake's frames, sent before the link is sealed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Handshake {
    /// Focus → agent, the first frame.
    Challenge {
        /// Protocol version.
        v: u32,
        /// The focus's nonce, hex.
        nonce: String,
    },
    /// Agent → focus: who it is and its proof.
    Hello {
        /// Protocol version.
        v: u32,
        /// The bridge's id.
        id: String,
        /// The agent's nonce, hex.
        nonce: String,
        /// HMAC proof, hex (`auth::Secret::agent_proof`).
        proof: String,
    },
    /// Focus → agent: the focus's proof.
    Welcome {
        /// Protocol version.
        v: u32,
        /// HMAC proof, hex (`auth::Secret::focus_proof`).
        proof: String,
    },
    /// Focus → agent instead of `welcome` (or either end, later, before it
    /// closes the link): why.
    Refused {
        /// Protocol version.
        v: u32,
        /// A stable code: `bad_proof`, `id_in_use`, `unsupported_version`,
        /// `bad_message`, `lost`.
        code: String,
        /// Detail.
        reason: String,
    },
}

/// A sealed frame's JSON: its sequence number and the message.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sealed<M> {
    /// Protocol version.
    pub v: u32,
    /// Counts from 0 in each direction.
    pub seq: u64,
    /// The message.
    #[serde(flatten)]
    pub msg: M,
}

/// A dataplane worker as registered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkerInfo {
    /// Its UDP port.
    pub port: u16,
}

/// Agent → focus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Up {
    /// First sealed frame: what the bridge is and which endpoints it
    /// carries (after a focus or link restart, what still has media).
    Register {
        /// Region, if configured.
        region: Option<String>,
        /// Software version.
        version: String,
        /// Dataplane workers.
        workers: Vec<WorkerInfo>,
        /// Addresses browsers reach the media ports at.
        advertise: Vec<IpAddr>,
        /// Its ICE-TCP port, if it runs ICE-TCP (absent: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ice_tcp_port: Option<u16>,
        /// DTLS fingerprint, as in SDP (`sha-256 AB:…`).
        fingerprint: String,
        /// Endpoints it carries.
        endpoints: Vec<u64>,
    },
    /// Every second.
    Heartbeat {
        /// Packet rate over capacity (1 = full).
        stress: f64,
        /// Endpoints it carries.
        endpoints: u64,
        /// It is draining.
        draining: bool,
        /// Its dataplane is attached and running.
        dataplane_up: bool,
    },
    /// An endpoint's media can flow.
    Connected {
        /// Endpoint.
        endpoint: u64,
    },
    /// An endpoint's transport failed.
    Failed {
        /// Endpoint.
        endpoint: u64,
        /// Why.
        reason: String,
    },
    /// A message from the focus was refused.
    Refused {
        /// The endpoint or source it named.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A dataplane event (docs/abi.md, "Events").
    Event {
        /// Event kind.
        kind: u16,
        /// Its body, hex.
        body: String,
    },
    /// The bridge's drain timed out: move its rooms elsewhere now.
    Evacuate,
}

/// Focus → agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Down {
    /// Start ICE and DTLS for an endpoint.
    Open {
        /// Endpoint id.
        endpoint: u64,
        /// Worker.
        worker: usize,
        /// That worker's port.
        port: u16,
        /// Our ICE credentials.
        local: Credentials,
        /// The browser's.
        remote: Credentials,
        /// The browser's fingerprint, as in SDP.
        fingerprint: String,
        /// The browser's `a=setup`: `actpass`, `active` or `passive`.
        setup: String,
        /// Header extension ids: mid, rid, repaired-rid, abs-send-time,
        /// transport-cc, audio-level, dependency-descriptor (null: none).
        ext: [Option<u8>; 7],
        /// The dataplane's user data, hex (32 bytes).
        user_data: String,
        /// A relay to another bridge: the far bridge's address and port,
        /// which this agent checks from the ICE controlling side
        /// (docs/cascading.md). Absent for browsers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<std::net::SocketAddr>,
    },
    /// New ICE credentials both ways, same DTLS.
    RestartIce {
        /// Endpoint.
        endpoint: u64,
        /// Ours.
        local: Credentials,
        /// The browser's.
        remote: Credentials,
    },
    /// Close an endpoint.
    Close {
        /// Endpoint.
        endpoint: u64,
    },
    /// Drain, as on SIGTERM.
    Drain,
    /// A dataplane command (docs/abi.md, "Commands"); never one that
    /// carries keys.
    Command {
        /// Worker.
        worker: usize,
        /// Command kind.
        kind: u16,
        /// Its body, hex.
        body: String,
    },
}

/// Why a message could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

fn bad(what: impl Into<String>) -> WireError {
    WireError(what.into())
}

fn setup_name(s: Setup) -> &'static str {
    match s {
        Setup::ActPass => "actpass",
        Setup::Active => "active",
        Setup::Passive => "passive",
    }
}

/// A bounded string from the other end.
pub fn check_name(s: &str, what: &str) -> Result<(), WireError> {
    if s.is_empty() || s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(bad(format!("{what}: 1 to {MAX_NAME} printable characters")));
    }
    Ok(())
}

impl Down {
    /// The wire form of a message to an agent.
    pub fn from_msg(msg: &ToAgent) -> Down {
        match msg {
            ToAgent::OpenTransport(s) => Down::Open {
                endpoint: s.endpoint,
                worker: s.worker,
                port: s.port,
                local: s.local.clone(),
                remote: s.remote.clone(),
                fingerprint: s.remote_fingerprint.to_sdp(),
                setup: setup_name(s.remote_setup).into(),
                ext: s.ext.to_array(),
                user_data: hex::encode(s.user_data),
                peer: s.peer,
            },
            ToAgent::RestartIce {
                endpoint,
                local,
                remote,
            } => Down::RestartIce {
                endpoint: *endpoint,
                local: local.clone(),
                remote: remote.clone(),
            },
            ToAgent::CloseTransport { endpoint } => Down::Close {
                endpoint: *endpoint,
            },
            ToAgent::Drain => Down::Drain,
            ToAgent::Dataplane { worker, command } => {
                let (kind, body) = crate::replica::saved_commands::encode(command);
                Down::Command {
                    worker: *worker,
                    kind,
                    body: hex::encode(body),
                }
            }
        }
    }

    /// What it asks of the agent.
    pub fn into_msg(self) -> Result<ToAgent, WireError> {
        Ok(match self {
            Down::Open {
                endpoint,
                worker,
                port,
                local,
                remote,
                fingerprint,
                setup,
                ext,
                user_data,
                peer,
            } => ToAgent::OpenTransport(TransportSpec {
                endpoint,
                worker,
                port,
                local: checked(local)?,
                remote: checked(remote)?,
                remote_fingerprint: Fingerprint::parse_sdp(&fingerprint)
                    .ok_or_else(|| bad("fingerprint: expected `sha-256 AB:…`"))?,
                remote_setup: match setup.as_str() {
                    "actpass" => Setup::ActPass,
                    "active" => Setup::Active,
                    "passive" => Setup::Passive,
                    _ => return Err(bad("setup: actpass, active or passive")),
                },
                ext: switchyard_wire::rtp::ExtensionIds::from_array(ext),
                user_data: crate::cluster::auth::from_hex(&user_data, "user_data")
                    .map_err(|e| bad(e.to_string()))?,
                peer,
            }),
            Down::RestartIce {
                endpoint,
                local,
                remote,
            } => ToAgent::RestartIce {
                endpoint,
                local: checked(local)?,
                remote: checked(remote)?,
            },
            Down::Close { endpoint } => ToAgent::CloseTransport { endpoint },
            Down::Drain => ToAgent::Drain,
            Down::Command { worker, kind, body } => {
                let bytes = hex::decode(&body).map_err(|_| bad("command body: not hex"))?;
                let command = crate::replica::saved_commands::decode(kind, bytes)
                    .ok_or_else(|| bad(format!("command kind {kind}: does not decode")))?;
                ToAgent::Dataplane { worker, command }
            }
        })
    }
}

/// ICE credentials within RFC 8839's bounds.
fn checked(c: Credentials) -> Result<Credentials, WireError> {
    Credentials::parse(&c.ufrag, &c.pwd).ok_or_else(|| bad("ICE credentials out of bounds"))
}

impl Up {
    /// The wire form of what an agent reports (`None`: not sent).
    pub fn from_msg(msg: &FromAgent) -> Option<Up> {
        Some(match msg {
            FromAgent::Connected(endpoint) => Up::Connected {
                endpoint: *endpoint,
            },
            FromAgent::Failed(endpoint, reason) => Up::Failed {
                endpoint: *endpoint,
                reason: crate::signalling::clip(reason),
            },
            FromAgent::Refused { id, reason } => Up::Refused {
                id: *id,
                reason: crate::signalling::clip(reason),
            },
            FromAgent::Evacuate => Up::Evacuate,
            FromAgent::Event(e) => {
                let mut buf = [0u8; switchyard_dataplane::abi::layout::EVENT_SLOT];
                let (kind, n) = e.encode(&mut buf)?;
                Up::Event {
                    kind,
                    body: hex::encode(&buf[..n]),
                }
            }
        })
    }

    /// What the agent reported, for the hub (`None` for registration and
    /// heartbeats, which are the link's business).
    pub fn into_msg(self) -> Result<Option<FromAgent>, WireError> {
        Ok(Some(match self {
            Up::Connected { endpoint } => FromAgent::Connected(endpoint),
            Up::Failed { endpoint, reason } => {
                FromAgent::Failed(endpoint, crate::signalling::clip(&reason))
            }
            Up::Refused { id, reason } => FromAgent::Refused {
                id,
                reason: crate::signalling::clip(&reason),
            },
            Up::Event { kind, body } => {
                let bytes = hex::decode(&body).map_err(|_| bad("event body: not hex"))?;
                let e = Event::decode(kind, &bytes)
                    .ok_or_else(|| bad(format!("event kind {kind}: does not decode")))?;
                FromAgent::Event(e)
            }
            Up::Evacuate => FromAgent::Evacuate,
            Up::Register { .. } | Up::Heartbeat { .. } => return Ok(None),
        }))
    }

    /// A registration for `id` as the focus keeps it, and the endpoints it
    /// carries.
    pub fn registration(self, id: &str) -> Result<(BridgeInfo, Vec<u64>), WireError> {
        let Up::Register {
            region,
            version,
            workers,
            advertise,
            ice_tcp_port,
            fingerprint,
            endpoints,
        } = self
        else {
            return Err(bad("the first message must be `register`"));
        };
        if let Some(r) = &region {
            check_name(r, "region")?;
        }
        check_name(&version, "version")?;
        if workers.is_empty() || workers.len() > MAX_LIST {
            return Err(bad(format!("workers: 1 to {MAX_LIST}")));
        }
        if advertise.is_empty() || advertise.len() > MAX_LIST {
            return Err(bad(format!("advertise: 1 to {MAX_LIST} addresses")));
        }
        if endpoints.len() > MAX_ENDPOINTS {
            return Err(bad(format!("endpoints: at most {MAX_ENDPOINTS}")));
        }
        let fingerprint = Fingerprint::parse_sdp(&fingerprint)
            .ok_or_else(|| bad("fingerprint: expected `sha-256 AB:…`"))?;
        Ok((
            BridgeInfo {
                id: id.to_string(),
                region,
                version,
                worker_ports: workers.iter().map(|w| w.port).collect(),
                advertise,
                ice_tcp_port: ice_tcp_port.filter(|&p| p != 0),
                fingerprint,
            },
            endpoints,
        ))
    }

    /// A heartbeat's health (`None` if this is not one).
    pub fn health(&self) -> Option<Health> {
        match *self {
            Up::Heartbeat {
                stress,
                draining,
                dataplane_up,
                endpoints,
            } => Some(Health {
                stress: if stress.is_finite() {
                    stress.max(0.0)
                } else {
                    1.0
                },
                draining,
                dataplane_up,
                endpoints: Some(endpoints),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_dataplane::abi::Command;
    use switchyard_wire::rtp::ExtensionIds;

    #[test]
    fn messages_to_an_agent_round_trip() {
        let open = ToAgent::OpenTransport(TransportSpec {
            endpoint: 7,
            worker: 1,
            port: 10001,
            local: Credentials::random(),
            remote: Credentials::random(),
            remote_fingerprint: Fingerprint([0xAB; 32]),
            remote_setup: Setup::ActPass,
            ext: ExtensionIds {
                mid: Some(4),
                transport_cc: Some(3),
                ..ExtensionIds::default()
            },
            user_data: [9; 32],
            peer: Some("10.0.0.2:10000".parse().unwrap()),
        });
        let command = ToAgent::Dataplane {
            worker: 0,
            command: Command::RemoveSource { source: 12 },
        };
        for msg in [open, command, ToAgent::CloseTransport { endpoint: 3 }] {
            let json = serde_json::to_string(&Down::from_msg(&msg)).unwrap();
            let back: Down = serde_json::from_str(&json).unwrap();
            assert_eq!(
                format!("{:?}", back.into_msg().unwrap()),
                format!("{msg:?}"),
                "{json}"
            );
        }
    }

    #[test]
    fn reports_round_trip_and_bad_ones_are_refused() {
        let e = FromAgent::Event(Event::Bandwidth {
            endpoint: 5,
            estimate_bps: 1_000_000,
            acked_bps: 900_000,
            loss: 3,
            probing: true,
        });
        for msg in [
            e,
            FromAgent::Connected(4),
            FromAgent::Failed(4, "DTLS".into()),
        ] {
            let json = serde_json::to_string(&Up::from_msg(&msg).unwrap()).unwrap();
            let back: Up = serde_json::from_str(&json).unwrap();
            assert_eq!(back.into_msg().unwrap(), Some(msg));
        }
        let garbage = Up::Event {
            kind: 99,
            body: "00".into(),
        };
        assert!(garbage.into_msg().is_err());
        assert!(serde_json::from_str::<Up>(r#"{"type":"connected","endpoint":1,"x":2}"#).is_err());
        let not_register = Up::Connected { endpoint: 1 };
        assert!(not_register.registration("b").is_err());
        let register = Up::Register {
            region: Some("eu\u{7}".into()),
            version: "0.1.0".into(),
            workers: vec![WorkerInfo { port: 1 }],
            advertise: vec!["192.0.2.1".parse().unwrap()],
            ice_tcp_port: None,
            fingerprint: Fingerprint([1; 32]).to_sdp(),
            endpoints: vec![],
        };
        assert!(register.registration("b").is_err(), "control characters");
    }
}
