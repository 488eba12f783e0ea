//! The hub's saved state: what a focus started after this one needs to
//! carry the calls on — rooms, participants with their resume tokens and
//! negotiated sessions, the next id. It holds no key: the transports and
//! the DTLS certificate are the bridge agents' (`agent::saved`).

use super::{Hub, HubConfig, Participant, Room};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The hub as saved (borrowed, for writing).
#[derive(Serialize)]
pub struct SavedHubRef<'a> {
    next_id: u64,
    rooms: &'a HashMap<String, Room>,
    participants: &'a HashMap<u64, Participant>,
    relays: &'a [super::cascade::Relay],
}

/// The hub as saved (owned, read back).
#[derive(Deserialize)]
pub struct SavedHub {
    next_id: u64,
    rooms: HashMap<String, Room>,
    participants: HashMap<u64, Participant>,
    #[serde(default)]
    relays: Vec<super::cascade::Relay>,
}

impl SavedHub {
    /// The next id the saved hub would have handed out.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}

impl Hub {
    /// The state to save.
    pub fn saved(&self) -> SavedHubRef<'_> {
        SavedHubRef {
            next_id: self.next_id,
            rooms: &self.rooms,
            participants: &self.participants,
            relays: &self.relays,
        }
    }

    /// A hub carrying on from a saved one. Its bridges register again
    /// (`bridge_up`) and say which endpoints they still carry
    /// ([`Hub::keep_carried`]); until then the participants wait for their
    /// `resume`.
    pub fn restore(config: HubConfig, saved: SavedHub) -> Hub {
        let mut hub = Hub::new(config);
        hub.next_id = hub.next_id.max(saved.next_id);
        hub.rooms = saved.rooms;
        hub.participants = saved.participants;
        hub.relays = saved.relays;
        for (&id, p) in &hub.participants {
            for s in &p.published {
                hub.publishers.insert(s.source, id);
            }
        }
        tracing::info!(target: "switchyard::hub", participants = hub.participants.len(), rooms = hub.rooms.len(), next_id = hub.next_id, "carried on the saved rooms");
        hub
    }

    /// The participants on `bridge`, after it said which endpoints it
    /// carries: those it does not carry cannot be carried on (their media
    /// had not connected, or the bridge lost them) and leave, with the
    /// sources and subscriptions that name them; endpoints it carries for
    /// no participant here are closed. Returns the participants kept
    /// there. What this asks of bridges and of the others goes out as
    /// usual.
    pub fn keep_carried(&mut self, bridge: &str, carried: &HashSet<u64>) -> Vec<u64> {
        let orphans: Vec<u64> = carried
            .iter()
            .copied()
            .filter(|id| !self.is_on(*id, bridge) && !self.is_relay_on(*id, bridge))
            .collect();
        for endpoint in orphans {
            tracing::info!(target: "switchyard::hub", endpoint, bridge, "closing an endpoint no participant here has");
            self.tell_agent(bridge, super::ToAgent::CloseTransport { endpoint });
        }
        let (kept, lost): (Vec<u64>, Vec<u64>) = self
            .participants
            .iter()
            .filter(|(_, p)| p.bridge == bridge)
            .map(|(&id, _)| id)
            .partition(|id| carried.contains(id));
        for id in lost {
            tracing::info!(target: "switchyard::hub", participant = id, bridge, "not carried over: its media had not connected");
            self.disconnect(id);
        }
        kept
    }
}
