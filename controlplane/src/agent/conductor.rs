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

use super::transport::{Output, Transport, TransportState};
use super::{AgentOut, FromAgent};
use crate::ice::Credentials;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;
use switchyard_dataplane::abi::PacketHeader;
use switchyard_wire::demux::PacketKind;
use switchyard_wire::stun::StunMessage;

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
    actions: VecDeque<AgentOut>,
    /// Datagrams that matched no transport.
    pub unmatched: u64,
}

impl Conductor {
    /// Registers a transport placed on `worker` (whose socket has `port`).
    pub fn add(&mut self, endpoint: u64, worker: usize, port: u16, transport: Transport) {
        self.by_ufrag
            .insert(transport.local_credentials().ufrag.clone(), endpoint);
        // a relay's checking side hears answers (no USERNAME) from its peer
        if let Some(peer) = transport.peer() {
            self.by_addr.insert(peer, endpoint);
        }
        self.slots.insert(
            endpoint,
            Slot {
                transport,
                worker,
                port,
            },
        );
    }

    /// How many endpoints have a transport.
    pub fn endpoint_count(&self) -> usize {
        self.slots.len()
    }

    /// The endpoints with a transport.
    pub fn endpoints(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    /// Every transport's state, for the saved state.
    pub fn states(&self) -> Vec<TransportState> {
        self.slots
            .values()
            .map(|s| s.transport.state(s.worker, s.port))
            .collect()
    }

    /// Carries on a transport a control plane before a restart had; false
    /// if it cannot be (it had not reached the dataplane).
    pub fn restore(&mut self, state: &TransportState, now: Instant) -> bool {
        let Some(transport) = Transport::restored(state, now) else {
            return false;
        };
        if let Some(addr) = state.selected {
            self.by_addr.insert(addr, state.endpoint);
        }
        self.add(state.endpoint, state.worker, state.port, transport);
        true
    }

    /// The dataplane says `endpoint`'s media is idle or flowing again.
    pub fn media_flowing(&mut self, endpoint: u64, flowing: bool) {
        if let Some(s) = self.slots.get_mut(&endpoint) {
            s.transport.media_flowing(flowing);
        }
    }

    /// Test support: the transport of `endpoint`, to change.
    #[cfg(test)]
    pub(crate) fn transport_mut(&mut self, endpoint: u64) -> Option<&mut Transport> {
        self.slots.get_mut(&endpoint).map(|s| &mut s.transport)
    }

    /// The transport of `endpoint`, if any.
    pub fn transport(&self, endpoint: u64) -> Option<&Transport> {
        self.slots.get(&endpoint).map(|s| &s.transport)
    }

    /// Restarts ICE on `endpoint`'s transport with new credentials both ways;
    /// checks are then routed by the new ufrag and by those of the earlier
    /// generations the transport still answers (a bounded few).
    pub fn restart_ice(&mut self, endpoint: u64, local: Credentials, remote: Credentials) {
        let Some(slot) = self.slots.get_mut(&endpoint) else {
            return;
        };
        self.by_ufrag.insert(local.ufrag.clone(), endpoint);
        slot.transport.restart_ice(local, remote);
        let transport = &slot.transport;
        self.by_ufrag
            .retain(|u, e| *e != endpoint || transport.answers_ufrag(u));
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
                PacketKind::Stun => StunMessage::new_checked(data).ok().and_then(|m| {
                    match m.username().and_then(|u| u.split(':').next()) {
                        Some(ufrag) => self.by_ufrag.get(ufrag).copied(),
                        // an answer to a relay's check
                        None => self.by_addr.get(&header.remote).copied(),
                    }
                }),
                _ => self.by_addr.get(&header.remote).copied(),
            }
        };
        let Some(endpoint) = endpoint else {
            self.unmatched += 1;
            return;
        };
        let Some(mut slot) = self.slots.remove(&endpoint) else {
            return;
        };
        if slot.worker == worker {
            slot.transport.handle_datagram(now, header.remote, data);
        }
        // An address is learned only once a check from it passed
        // MESSAGE-INTEGRITY; the transport keeps a bounded set of such
        // addresses, and so does this map: entries it dropped go too.
        if !self.by_addr.contains_key(&header.remote) && slot.transport.verified(header.remote) {
            let transport = &slot.transport;
            self.by_addr
                .retain(|a, e| *e != endpoint || transport.verified(*a));
            self.by_addr.insert(header.remote, endpoint);
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

    /// The soonest of the transports' timers.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|s| s.transport.poll_timeout(now))
            .min()
    }

    /// Addresses learned from checks that passed (bounded by the transports).
    pub fn learned_addresses(&self) -> usize {
        self.by_addr.len()
    }

    /// The next action.
    pub fn poll_action(&mut self) -> Option<AgentOut> {
        self.actions.pop_front()
    }

    /// Queues an action of the agent's own behind the transports' ones.
    pub(super) fn push(&mut self, action: AgentOut) {
        self.actions.push_back(action);
    }

    fn drain(&mut self, endpoint: u64, slot: &mut Slot) {
        while let Some(o) = slot.transport.poll_output() {
            let action = match o {
                Output::Send { to, data } => AgentOut::Send {
                    worker: slot.worker,
                    header: PacketHeader {
                        endpoint,
                        remote: to,
                        local_port: slot.port,
                    },
                    data,
                },
                Output::Dataplane(command) => AgentOut::Dataplane {
                    worker: slot.worker,
                    command,
                },
                Output::Connected => AgentOut::Up(FromAgent::Connected(endpoint)),
                Output::Failed(reason) => AgentOut::Up(FromAgent::Failed(endpoint, reason)),
            };
            self.actions.push_back(action);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls::Certificate;
    use crate::ice::Credentials;
    use crate::sdp::{Offer, Setup};
    use switchyard_wire::rtp::ExtensionIds;
    use switchyard_wire::stun::{StunWriter, attr};

    fn check(local: &Credentials, remote_ufrag: &str, pwd: &str, txid: u8) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, 0x0001, &[txid; 12]).unwrap();
        w.add(
            attr::USERNAME,
            format!("{}:{remote_ufrag}", local.ufrag).as_bytes(),
        )
        .unwrap();
        w.add_u32(attr::PRIORITY, 1).unwrap();
        w.add_u64(attr::ICE_CONTROLLING, 7).unwrap();
        w.add_message_integrity(pwd.as_bytes()).unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        buf[..n].to_vec()
    }

    fn header(port: u16) -> PacketHeader {
        PacketHeader {
            endpoint: 0,
            remote: SocketAddr::from(([192, 0, 2, 8], port)),
            local_port: 10000,
        }
    }

    #[test]
    fn only_checks_that_pass_integrity_teach_an_address() {
        let now = Instant::now();
        let cert = Certificate::generate().unwrap();
        let (local, browser) = (Credentials::random(), Credentials::random());
        let offer = Offer {
            ice: browser.clone(),
            fingerprint: Certificate::generate().unwrap().fingerprint(),
            setup: Setup::ActPass,
            media: vec![],
        };
        let transport = Transport::new(
            7,
            local.clone(),
            &cert,
            &offer,
            ExtensionIds::default(),
            [0; 32],
            now,
        )
        .unwrap();
        let mut c = Conductor::default();
        c.add(7, 0, 10000, transport);
        // our ufrag, a wrong password, from a thousand ports
        for port in 0..1000u16 {
            let bad = check(
                &local,
                &browser.ufrag,
                "not-the-password-at-all",
                port as u8,
            );
            c.handle_packet(now, 0, &header(20000 + port), &bad);
        }
        assert_eq!(
            c.learned_addresses(),
            0,
            "unauthenticated checks taught addresses"
        );
        // a real check is learned
        c.handle_packet(
            now,
            0,
            &header(5000),
            &check(&local, &browser.ufrag, &local.pwd, 1),
        );
        assert_eq!(c.learned_addresses(), 1);
        // even the real peer cannot grow the map past what ICE keeps
        for port in 0..200u16 {
            let ok = check(&local, &browser.ufrag, &local.pwd, port as u8);
            c.handle_packet(now, 0, &header(30000 + port), &ok);
        }
        assert!(c.learned_addresses() <= 16, "{}", c.learned_addresses());
        c.remove(7);
        assert_eq!(c.learned_addresses(), 0);
    }
}
