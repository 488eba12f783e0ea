//! The agent at work beside its dataplane: the edge between the sans-IO
//! [`Agent`] and the shared-memory client. It feeds the agent the
//! exception-ring datagrams, the events and the time; sends what the agent
//! sends; records every command in the [`Replica`] and queues it
//! ([`CommandQueue`]); and gives a dataplane that replaced a dead one
//! (a new boot id) everything the old one held. What the agent tells its
//! focus waits in [`AgentHost::poll_up`].
//!
//! Plain `switchyard` runs one beside its hub in the pump; `switchyard
//! bridge` runs one and carries what goes up and down over the cluster
//! link.

use super::owners::{Owned, Owners};
use super::saved::SavedAgent;
use super::{Agent, AgentOut, FromAgent, ToAgent};
use crate::command_queue::CommandQueue;
use crate::dtls::Certificate;
use crate::replica::Replica;
use crate::saved_state::Saver;
use crate::supervisor::Dataplane;
use std::collections::VecDeque;
use std::time::Instant;
use switchyard_dataplane::abi::Client;
use zeroize::Zeroizing;

/// An agent and what it keeps of its dataplane.
pub struct AgentHost {
    agent: Agent,
    replica: Replica,
    /// Which focus owns what (a bridge serving several).
    owners: Owners,
    commands: CommandQueue,
    boot: Option<u64>,
    saver: Saver,
    up: VecDeque<FromAgent>,
    buf: Vec<u8>,
    /// The certificate as PEM (its key, itself), made once for every save
    /// rather than at each (the certificate is the agent's for its life).
    pem: std::cell::OnceCell<(Zeroizing<String>, String)>,
}

/// Messages to the focus that may wait before the oldest are dropped (a
/// focus that is away learns the state again when it comes back).
const MAX_UP: usize = 1 << 14;

impl AgentHost {
    /// A host for a new agent with `cert`.
    pub fn new(cert: Certificate) -> AgentHost {
        AgentHost::with(Agent::new(cert), Replica::default())
    }

    fn with(agent: Agent, replica: Replica) -> AgentHost {
        AgentHost {
            agent,
            replica,
            owners: Owners::default(),
            commands: CommandQueue::default(),
            boot: None,
            saver: Saver::default(),
            up: VecDeque::new(),
            buf: vec![0u8; 2048],
            pem: std::cell::OnceCell::new(),
        }
    }

    /// The agent's certificate as PEM: its private key, itself.
    pub fn certificate_pem(&self) -> Result<(&str, &str), String> {
        if self.pem.get().is_none() {
            let pem = self
                .agent
                .certificate()
                .to_pem()
                .map_err(|e| e.to_string())?;
            let _ = self.pem.set(pem);
        }
        let (key, cert) = self.pem.get().ok_or("no certificate PEM")?;
        Ok((key.as_str(), cert.as_str()))
    }

    /// Carries on the agent a process before this one saved: its
    /// certificate, transports and replica. Transports that had not
    /// reached the dataplane are not carried on.
    pub fn restore(mut saved: SavedAgent, now: Instant) -> Result<AgentHost, String> {
        let cert =
            Certificate::from_pem(&saved.key_pem, &saved.cert_pem).map_err(|e| e.to_string())?;
        let replica = saved.take_replica();
        let mut host = AgentHost::with(Agent::new(cert), replica);
        for t in &saved.transports {
            host.agent.restore(t, now);
        }
        host.owners = Owners::from_saved(std::mem::take(&mut saved.owners));
        Ok(host)
    }

    /// The agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// What the dataplane holds, as this host built it.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// Takes in what the dataplane has for the agent: after a dataplane
    /// restart (a new boot id) it first gives the new one the old one's
    /// state; then datagrams, events and the agent's timers.
    pub fn take_in(&mut self, now: Instant, client: &mut Client, dataplane: &Dataplane) {
        if self.boot != Some(client.boot_id()) {
            if self.boot.is_some() {
                let records = dataplane.take_lost();
                self.commands.restore(self.replica.rebuild(&records));
                dataplane.restored();
                self.saver.reset();
                tracing::info!(target: "switchyard::agent", endpoints = self.replica.endpoints(), records = records.len(), commands = self.commands.len(), "restoring the dataplane's state");
            }
            self.boot = Some(client.boot_id());
        }
        while let Some((w, h, n)) = client.recv_packet(&mut self.buf) {
            self.agent.handle_packet(now, w, &h, &self.buf[..n]);
        }
        while let Some((_, e)) = client.poll_event() {
            self.agent.handle_event(e);
        }
        self.agent.handle_timeout(now);
        self.carry_out(client);
    }

    /// A message from the focus.
    pub fn handle(&mut self, now: Instant, msg: ToAgent, client: &mut Client) {
        self.agent.handle(now, msg);
        self.carry_out(client);
    }

    /// A message from the focus at `focus` (a bridge serving several): it
    /// owns what the message opens.
    pub fn handle_from(&mut self, now: Instant, focus: &str, msg: ToAgent, client: &mut Client) {
        self.owners.note(focus, &msg);
        self.handle(now, msg, client);
    }

    /// Who owns what.
    pub fn owners(&self) -> &Owners {
        &self.owners
    }

    /// The endpoints `focus` hears of in its registration: its own, and
    /// any nobody owns.
    pub fn endpoints_for(&self, focus: &str) -> Vec<u64> {
        let mut list = self.agent.endpoints();
        list.retain(|e| self.owners.reported_to(*e, focus));
        list
    }

    /// Closes every endpoint and removes every source `focus` owned (it is
    /// gone from the cluster); how many.
    pub fn release_focus(&mut self, now: Instant, focus: &str, client: &mut Client) -> usize {
        let replica = &self.replica;
        let owned = self
            .owners
            .release(focus, |id| !replica.workers_of_source(id).is_empty());
        for o in &owned {
            match *o {
                Owned::Endpoint(endpoint) => {
                    self.handle(now, ToAgent::CloseTransport { endpoint }, client)
                }
                Owned::Source(source) => {
                    for worker in self.replica.workers_of_source(source) {
                        let command = switchyard_dataplane::abi::Command::RemoveSource { source };
                        self.handle(now, ToAgent::Dataplane { worker, command }, client);
                    }
                }
            }
        }
        owned.len()
    }

    /// Sends the queued commands and, when due, saves the state (with the
    /// hub's, in plain `switchyard`).
    pub fn flush(&mut self, now: Instant, client: &mut Client, hub: Option<&crate::hub::Hub>) {
        self.commands.flush(now, client);
        client.wake_workers();
        let mut saver = std::mem::take(&mut self.saver);
        saver.tick(now, self, hub, client);
        self.saver = saver;
    }

    /// When the agent's transports have timers due next.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.agent.poll_timeout(now)
    }

    /// Commands wait for room in a ring: flush again soon.
    pub fn backlog(&self) -> bool {
        !self.commands.is_empty()
    }

    /// The next message for the focus.
    pub fn poll_up(&mut self) -> Option<FromAgent> {
        self.up.pop_front()
    }

    fn carry_out(&mut self, client: &mut Client) {
        while let Some(out) = self.agent.poll() {
            match out {
                AgentOut::Send {
                    worker,
                    header,
                    data,
                } => {
                    let _ = client.send_packet(worker, &header, &data);
                }
                AgentOut::Dataplane { worker, command } => {
                    self.replica.record(worker, &command);
                    self.commands.push(worker, command);
                }
                AgentOut::Up(msg) => {
                    if self.up.len() >= MAX_UP {
                        self.up.pop_front();
                    }
                    self.up.push_back(msg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_owns_what_is_saved_and_carried_on() {
        let mut host = AgentHost::new(Certificate::generate().unwrap());
        let open = ToAgent::OpenTransport(crate::agent::tests::spec(5));
        host.owners.note("ws://a/cluster", &open);
        let bytes = crate::saved_state::encode(&host, None).unwrap();
        let saved = crate::saved_state::SavedState::parse(&bytes).unwrap();
        let back = AgentHost::restore(saved.agent, Instant::now()).unwrap();
        assert_eq!(back.owners(), host.owners());
        assert_eq!(back.owners().len(), 1);
    }
}
