//! The bridge agent role: what lives beside a dataplane and must stay on its
//! host (docs/cluster.md, "Roles"). It terminates ICE-lite and DTLS for the
//! endpoints there, derives their SRTP keys and adds them to the dataplane
//! itself; whoever drives it (the focus, in this process today) sends
//! [`ToAgent`] messages that carry no keys and hears back [`FromAgent`].
//!
//! Sans-IO: the caller feeds it messages, exception-ring datagrams and
//! timeouts, and carries out what [`Agent::poll`] returns.

pub mod bridge;
pub mod conductor;
pub mod focus_link;
pub mod focuses;
pub mod host;
pub mod owners;
#[cfg(test)]
mod relay_tests;
pub mod saved;
pub mod transport;

use crate::dtls::{Certificate, Fingerprint};
use crate::ice::Credentials;
use crate::sdp::{Offer, Setup};
use conductor::Conductor;
use std::time::Instant;
use switchyard_dataplane::abi::{Command, Event, PacketHeader};
use switchyard_wire::rtp::ExtensionIds;
use transport::{Transport, TransportState};

/// What the focus asks of a bridge's transports: enough to run ICE and
/// DTLS for an endpoint, and nothing secret but the ICE passwords.
#[derive(Debug, Clone)]
pub struct TransportSpec {
    /// The endpoint (participant) id.
    pub endpoint: u64,
    /// The dataplane worker it is placed on.
    pub worker: usize,
    /// That worker's UDP port.
    pub port: u16,
    /// Our ICE credentials (the focus put them in its answer).
    pub local: Credentials,
    /// The browser's ICE credentials, from its offer.
    pub remote: Credentials,
    /// The browser's certificate fingerprint, from its offer.
    pub remote_fingerprint: Fingerprint,
    /// The browser's `a=setup` (who starts DTLS).
    pub remote_setup: Setup,
    /// RTP header extension ids negotiated with it.
    pub ext: ExtensionIds,
    /// Opaque to the dataplane; returned with its events.
    pub user_data: [u8; 32],
    /// A relay to another bridge whose side we check from: its address
    /// (ICE controlling, docs/cascading.md). `None`: we answer checks
    /// (ICE-lite), as for browsers — and for the other side of a relay.
    pub peer: Option<std::net::SocketAddr>,
}

/// A message from the focus to an agent.
#[derive(Debug, Clone)]
pub enum ToAgent {
    /// Start ICE and DTLS for an endpoint.
    OpenTransport(TransportSpec),
    /// The browser restarted ICE: new credentials both ways, same DTLS.
    RestartIce {
        /// The endpoint.
        endpoint: u64,
        /// Our new credentials.
        local: Credentials,
        /// The browser's new credentials.
        remote: Credentials,
    },
    /// Close an endpoint's transport (and remove it from the dataplane).
    CloseTransport {
        /// The endpoint.
        endpoint: u64,
    },
    /// Drain the bridge, as SIGTERM does (the `switchyard bridge` process
    /// acts on it; the agent core has nothing to do).
    Drain,
    /// A dataplane command; never one that carries keys (the agent adds
    /// endpoints itself once their DTLS is done).
    Dataplane {
        /// The worker.
        worker: usize,
        /// The command.
        command: Command,
    },
}

/// A message from an agent to the focus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromAgent {
    /// The endpoint's media can flow: it is in the dataplane.
    Connected(u64),
    /// The endpoint's transport failed.
    Failed(u64, String),
    /// A command was refused before it reached the dataplane.
    Refused {
        /// The endpoint or source it named.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A dataplane event the focus acts on (see [`Agent::handle_event`]).
    Event(Event),
    /// The bridge's drain timed out: move every room off it now.
    Evacuate,
}

/// What the caller of an agent does.
#[derive(Debug)]
pub enum AgentOut {
    /// Send a datagram from a worker's socket.
    Send {
        /// Worker.
        worker: usize,
        /// Destination and endpoint.
        header: PacketHeader,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Apply a command on a dataplane worker.
    Dataplane {
        /// Worker.
        worker: usize,
        /// Command.
        command: Command,
    },
    /// Tell the focus.
    Up(FromAgent),
}

/// One bridge's transports. What it asks of its caller queues in the
/// conductor, in the order it arose.
pub struct Agent {
    cert: Certificate,
    conductor: Conductor,
}

impl Agent {
    /// An agent whose DTLS uses `cert`.
    pub fn new(cert: Certificate) -> Agent {
        Agent {
            cert,
            conductor: Conductor::default(),
        }
    }

    /// Its DTLS certificate's fingerprint (what answers announce).
    pub fn fingerprint(&self) -> Fingerprint {
        self.cert.fingerprint()
    }

    /// Its certificate (for the saved state).
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// A message from the focus.
    pub fn handle(&mut self, now: Instant, msg: ToAgent) {
        match msg {
            ToAgent::OpenTransport(spec) => self.open(now, spec),
            ToAgent::RestartIce {
                endpoint,
                local,
                remote,
            } => self.conductor.restart_ice(endpoint, local, remote),
            ToAgent::CloseTransport { endpoint } => self.conductor.remove(endpoint),
            ToAgent::Drain => {}
            ToAgent::Dataplane { command, .. } if carries_keys(&command) => {
                self.conductor.push(AgentOut::Up(FromAgent::Refused {
                    id: command_subject(&command),
                    reason: "commands that carry keys are the agent's own".into(),
                }));
            }
            ToAgent::Dataplane { worker, command } => {
                self.conductor.push(AgentOut::Dataplane { worker, command })
            }
        }
    }

    fn open(&mut self, now: Instant, spec: TransportSpec) {
        let offer = Offer {
            ice: spec.remote,
            fingerprint: spec.remote_fingerprint,
            setup: spec.remote_setup,
            media: Vec::new(),
        };
        match Transport::new(
            spec.endpoint,
            spec.local,
            &self.cert,
            &offer,
            spec.ext,
            spec.user_data,
            now,
        )
        .map(|t| match spec.peer {
            Some(peer) => t.checking(peer, now),
            None => t,
        }) {
            Ok(t) => self.conductor.add(spec.endpoint, spec.worker, spec.port, t),
            Err(e) => self.conductor.push(AgentOut::Up(FromAgent::Failed(
                spec.endpoint,
                format!("DTLS: {e}"),
            ))),
        }
    }

    /// A datagram from a worker's exception ring.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        worker: usize,
        header: &PacketHeader,
        data: &[u8],
    ) {
        self.conductor.handle_packet(now, worker, header, data);
    }

    /// An event from the dataplane: an endpoint's media idle or flowing
    /// again goes to its transport (consent); those the focus acts on go up
    /// (bandwidth, audio levels, layer rates, idle endpoints, refused
    /// commands); the rest are the dataplane's own statistics.
    pub fn handle_event(&mut self, event: Event) {
        tracing::trace!(target: "switchyard::events", event = ?event, "dataplane event");
        match event {
            Event::EndpointIdle { endpoint, .. } => self.conductor.media_flowing(endpoint, false),
            Event::EndpointActive { endpoint } => self.conductor.media_flowing(endpoint, true),
            Event::LayerSwitched {
                endpoint,
                source,
                layer,
            } => {
                // at most one per target change the focus sent: when the
                // keyframe came, beside the focus's allocation log
                tracing::debug!(target: "switchyard::alloc", participant = endpoint, source, layer, "layer switched");
            }
            _ => {}
        }
        if matches!(
            event,
            Event::Bandwidth { .. }
                | Event::AudioLevel { .. }
                | Event::SourceRates { .. }
                | Event::EndpointIdle { .. }
                | Event::CommandFailed { .. }
        ) {
            self.conductor.push(AgentOut::Up(FromAgent::Event(event)));
        }
    }

    /// How many endpoints it carries.
    pub fn endpoint_count(&self) -> usize {
        self.conductor.endpoint_count()
    }

    /// The endpoints whose transports it carries.
    pub fn endpoints(&self) -> Vec<u64> {
        self.conductor.endpoints()
    }

    /// The transports' timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conductor.handle_timeout(now);
    }

    /// When the transports' timers want `handle_timeout` next.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.conductor.poll_timeout(now)
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Option<AgentOut> {
        self.conductor.poll_action()
    }

    /// The transport of `endpoint`, if any.
    pub fn transport(&self, endpoint: u64) -> Option<&Transport> {
        self.conductor.transport(endpoint)
    }

    /// Test support: the transport of `endpoint`, to change.
    #[cfg(test)]
    pub(crate) fn transport_mut(&mut self, endpoint: u64) -> Option<&mut Transport> {
        self.conductor.transport_mut(endpoint)
    }

    /// Addresses learned from checks that passed.
    pub fn learned_addresses(&self) -> usize {
        self.conductor.learned_addresses()
    }

    /// Every transport's state, for the saved state.
    pub fn states(&self) -> Vec<TransportState> {
        self.conductor.states()
    }

    /// Carries on a transport saved before a restart; false if it cannot
    /// be (it had not reached the dataplane).
    pub fn restore(&mut self, state: &TransportState, now: Instant) -> bool {
        self.conductor.restore(state, now)
    }
}

/// Whether a command carries SRTP keys (only the agent itself sends those).
fn carries_keys(command: &Command) -> bool {
    matches!(command, Command::AddEndpoint(_))
}

/// The id a command is about, for a refusal.
fn command_subject(command: &Command) -> u64 {
    match command {
        Command::AddEndpoint(spec) => spec.id,
        _ => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A transport for `endpoint` on worker 0 with fresh credentials.
    pub(crate) fn spec(endpoint: u64) -> TransportSpec {
        TransportSpec {
            endpoint,
            worker: 0,
            port: 10000,
            local: Credentials::random(),
            remote: Credentials::random(),
            remote_fingerprint: Fingerprint([0xAB; 32]),
            remote_setup: Setup::ActPass,
            ext: ExtensionIds::default(),
            user_data: [0; 32],
            peer: None,
        }
    }

    #[test]
    fn key_carrying_commands_from_the_focus_are_refused() {
        let mut a = Agent::new(Certificate::generate().unwrap());
        a.handle(
            Instant::now(),
            ToAgent::Dataplane {
                worker: 0,
                command: Command::RemoveSource { source: 9 },
            },
        );
        assert!(matches!(
            a.poll(),
            Some(AgentOut::Dataplane {
                command: Command::RemoveSource { source: 9 },
                ..
            })
        ));
        a.handle(
            Instant::now(),
            ToAgent::Dataplane {
                worker: 0,
                command: crate::replica::tests::endpoint(4),
            },
        );
        assert!(matches!(
            a.poll(),
            Some(AgentOut::Up(FromAgent::Refused { id: 4, .. }))
        ));
        assert!(a.poll().is_none());
    }
}
