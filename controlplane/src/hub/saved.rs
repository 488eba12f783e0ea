//! The hub's saved state: what a control plane started after this one
//! needs to carry the calls on — rooms, participants with their resume
//! tokens and negotiated sessions, transports (ICE credentials and the
//! selected address), the next id and the DTLS certificate. Kept in the
//! dataplane's shared region (`abi::client_state`), never in a file: the
//! certificate's key is in it.

use super::{Hub, HubConfig, Participant, Room};
use crate::agent::transport::TransportState;
use crate::dtls::Certificate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// The hub as saved (borrowed, for writing).
#[derive(Serialize)]
pub struct SavedHubRef<'a> {
    next_id: u64,
    key_pem: zeroize::Zeroizing<String>,
    cert_pem: String,
    rooms: &'a HashMap<String, Room>,
    participants: &'a HashMap<u64, Participant>,
    transports: Vec<TransportState>,
}

/// The hub as saved (owned, read back).
#[derive(Deserialize)]
pub struct SavedHub {
    next_id: u64,
    key_pem: zeroize::Zeroizing<String>,
    cert_pem: String,
    rooms: HashMap<String, Room>,
    participants: HashMap<u64, Participant>,
    transports: Vec<TransportState>,
}

impl SavedHub {
    /// The next id the saved hub would have handed out.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}

impl Hub {
    /// The state to save.
    pub fn saved(&self) -> Result<SavedHubRef<'_>, String> {
        let (key_pem, cert_pem) = self
            .agent
            .certificate()
            .to_pem()
            .map_err(|e| e.to_string())?;
        Ok(SavedHubRef {
            next_id: self.next_id,
            key_pem,
            cert_pem,
            rooms: &self.rooms,
            participants: &self.participants,
            transports: self.agent.states(),
        })
    }

    /// A hub carrying on from a saved one, and the participants it kept
    /// (they wait for their `resume`). A participant whose transport had not
    /// reached the dataplane cannot be carried on and is dropped, as are the
    /// sources and subscriptions that name it.
    pub fn restore(
        config: HubConfig,
        saved: SavedHub,
        now: Instant,
    ) -> Result<(Hub, Vec<u64>), String> {
        let cert =
            Certificate::from_pem(&saved.key_pem, &saved.cert_pem).map_err(|e| e.to_string())?;
        let mut hub = Hub::new(config, cert);
        hub.next_id = hub.next_id.max(saved.next_id);
        hub.rooms = saved.rooms;
        hub.participants = saved.participants;
        for t in &saved.transports {
            hub.agent.restore(t, now);
            if let Some(p) = hub.participants.get_mut(&t.endpoint)
                && p.remote_ice.is_none()
            {
                p.remote_ice = t.remote.clone();
            }
        }
        let lost: Vec<u64> = hub
            .participants
            .keys()
            .copied()
            .filter(|id| hub.agent.transport(*id).is_none())
            .collect();
        for (&id, p) in &hub.participants {
            for s in &p.published {
                hub.publishers.insert(s.source, id);
            }
        }
        for id in lost {
            tracing::info!(target: "switchyard::hub", participant = id, "not carried over: its media had not connected");
            hub.disconnect(id);
        }
        // what the departures asked of the dataplane and the others is news
        // to nobody yet: it goes out as usual
        let kept: Vec<u64> = hub.participants.keys().copied().collect();
        tracing::info!(target: "switchyard::hub", participants = kept.len(), rooms = hub.rooms.len(), next_id = hub.next_id, "carried on the saved rooms");
        Ok((hub, kept))
    }
}
