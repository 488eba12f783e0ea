//! Routing between the dataplane's exception rings and the participants'
//! transports.
//!
//! Datagrams the dataplane could not handle itself (STUN, DTLS, media from
//! an address that is not yet an endpoint) arrive with their worker and
//! source. The conductor finds the transport they belong to — by endpoint
//! id once the dataplane knows the address, by the STUN USERNAME's first
//! half (our ufrag) for connectivity checks, by the address an accepted
//! check came from for DTLS — and turns the transports' outputs into
//! actions on the dataplane. Sans-IO like the rest.

use crate::transport::{Output, Transport};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;
use switchyard_dataplane::abi::{Command, PacketHeader};
use switchyard_wire::demux::PacketKind;
use switchyard_wire::stun::StunMessage;

/// What the caller must do.
pub enum Action {
    /// Send a datagram from `worker`'s socket.
    Send {
        /// Worker.
        worker: usize,
        /// Destination and endpoint.
        header: PacketHeader,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Apply a command on `worker`.
    Dataplane {
        /// Worker.
        worker: usize,
        /// Command.
        command: Command,
    },
    /// The endpoint's media can flow.
    Connected(u64),
    /// The endpoint's transport failed; tear the participant down.
    Failed(u64, String),
}

struct Slot {
    transport: Transport,
    worker: usize,
    port: u16,
}

/// All transports of this control plane.
#[derive(Default)]
pub struct Conductor {
    slots: HashMap<u64, Slot>,
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<SocketAddr, u64>,
    actions: VecDeque<Action>,
    /// Datagrams that matched no transport.
    pub unmatched: u64,
}

impl Conductor {
    /// Registers a transport placed on `worker` (whose socket has `port`).
    pub fn add(&mut self, endpoint: u64, worker: usize, port: u16, transport: Transport) {
        self.by_ufrag
            .insert(transport.local_credentials().ufrag.clone(), endpoint);
        self.slots.insert(
            endpoint,
            Slot {
                transport,
                worker,
                port,
            },
        );
    }

    /// Closes and forgets a transport (its RemoveEndpoint is queued).
    pub fn remove(&mut self, endpoint: u64) {
        if let Some(mut slot) = self.slots.remove(&endpoint) {
            slot.transport.close();
            self.drain(endpoint, &mut slot);
        }
        self.by_ufrag.retain(|_, e| *e != endpoint);
        self.by_addr.retain(|_, e| *e != endpoint);
    }

    /// A datagram from the packets-in ring of `worker`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        worker: usize,
        header: &PacketHeader,
        data: &[u8],
    ) {
        let endpoint = if header.endpoint != 0 && self.slots.contains_key(&header.endpoint) {
            Some(header.endpoint)
        } else {
            match PacketKind::classify(data) {
                PacketKind::Stun => StunMessage::new_checked(data)
                    .ok()
                    .and_then(|m| {
                        m.username()
                            .and_then(|u| u.split(':').next())
                            .map(str::to_string)
                    })
                    .and_then(|ufrag| self.by_ufrag.get(&ufrag).copied()),
                _ => self.by_addr.get(&header.remote).copied(),
            }
        };
        let Some(endpoint) = endpoint else {
            self.unmatched += 1;
            return;
        };
        if PacketKind::classify(data) == PacketKind::Stun {
            self.by_addr.insert(header.remote, endpoint);
        }
        let Some(mut slot) = self.slots.remove(&endpoint) else {
            return;
        };
        if slot.worker == worker {
            slot.transport.handle_datagram(now, header.remote, data);
        }
        self.drain(endpoint, &mut slot);
        self.slots.insert(endpoint, slot);
    }

    /// Runs every transport's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<u64> = self.slots.keys().copied().collect();
        for id in ids {
            if let Some(mut slot) = self.slots.remove(&id) {
                slot.transport.handle_timeout(now);
                self.drain(id, &mut slot);
                self.slots.insert(id, slot);
            }
        }
    }

    /// The next action.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn drain(&mut self, endpoint: u64, slot: &mut Slot) {
        while let Some(o) = slot.transport.poll_output() {
            let action = match o {
                Output::Send { to, data } => Action::Send {
                    worker: slot.worker,
                    header: PacketHeader {
                        endpoint,
                        remote: to,
                        local_port: slot.port,
                    },
                    data,
                },
                Output::Dataplane(command) => Action::Dataplane {
                    worker: slot.worker,
                    command,
                },
                Output::Connected => Action::Connected(endpoint),
                Output::Failed(reason) => Action::Failed(endpoint, reason),
            };
            self.actions.push_back(action);
        }
    }
}
