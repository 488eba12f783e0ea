//! The control plane's saved state: the hub (`hub::saved`) and the replica
//! of the dataplane's state (with the SRTP keys it holds), serialized as
//! JSON into the dataplane's shared region (`abi::client_state`) a few
//! times a second when it changed. A control plane that starts and finds a
//! running dataplane with a saved state carries its calls on.

use crate::hub::{Hub, SavedHub, SavedHubRef};
use crate::replica::{Replica, saved_commands};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::Client;
use zeroize::Zeroizing;

/// Version of the saved form; another version is not carried on.
pub const VERSION: u32 = 1;
/// How often the state is saved (when it changed): what changed in the
/// last this-long before a crash is what a restart does not know.
pub const SAVE_EVERY: Duration = Duration::from_millis(250);

#[derive(Serialize)]
struct SavedRef<'a> {
    version: u32,
    hub: SavedHubRef<'a>,
    replica: Vec<(usize, u16, Vec<u8>)>,
}

/// A saved state read back.
#[derive(Deserialize)]
pub struct SavedState {
    version: u32,
    /// The hub.
    pub hub: SavedHub,
    replica: Vec<(usize, u16, Vec<u8>)>,
}

impl SavedState {
    /// Parses a saved state of this version.
    pub fn parse(bytes: &[u8]) -> Result<SavedState, String> {
        let s: SavedState = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if s.version != VERSION {
            return Err(format!(
                "saved state version {} (this is {VERSION})",
                s.version
            ));
        }
        Ok(s)
    }

    /// The replica it holds.
    pub fn take_replica(&mut self) -> Replica {
        Replica::from_commands(
            std::mem::take(&mut self.replica)
                .into_iter()
                .filter_map(|(w, k, b)| saved_commands::decode(k, b).map(|c| (w, c))),
        )
    }
}

/// Serializes the state.
pub fn encode(hub: &Hub, replica: &Replica) -> Result<Zeroizing<Vec<u8>>, String> {
    let saved = SavedRef {
        version: VERSION,
        hub: hub.saved()?,
        replica: replica
            .commands()
            .iter()
            .map(|(w, c)| {
                let (k, b) = saved_commands::encode(c);
                (*w, k, b)
            })
            .collect(),
    };
    serde_json::to_vec(&saved)
        .map(Zeroizing::new)
        .map_err(|e| e.to_string())
}

/// Saves the state into the region when it changed, at most every
/// [`SAVE_EVERY`].
#[derive(Default)]
pub struct Saver {
    next: Option<Instant>,
    last: Option<u64>,
    failures: u32,
}

impl Saver {
    /// Saves if due and changed.
    pub fn tick(&mut self, now: Instant, hub: &Hub, replica: &Replica, client: &Client) {
        if self.next.is_some_and(|t| now < t) {
            return;
        }
        self.next = Some(now + SAVE_EVERY);
        let result = encode(hub, replica).and_then(|bytes| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            let digest = h.finish();
            if self.last == Some(digest) {
                return Ok(());
            }
            client
                .save_state(&bytes)
                .map_err(|e| format!("{e} ({} bytes)", bytes.len()))?;
            self.last = Some(digest);
            Ok(())
        });
        match result {
            Ok(()) => self.failures = 0,
            Err(e) => {
                // said once per run of failures: a restart now would lose calls
                if self.failures == 0 {
                    tracing::error!(target: "switchyard::server", error = %e, "saving the state for a restart failed; a restart now would end the calls");
                }
                self.failures += 1;
            }
        }
    }

    /// Forgets what was saved (a new dataplane has an empty region).
    pub fn reset(&mut self) {
        *self = Saver::default();
    }
}
