//! What a process saves in its dataplane's shared region
//! (`abi::client_state`) a few times a second when it changed: the agent's
//! part (`agent::saved`: certificate, transports, the replica with its
//! keys) and, in plain `switchyard`, the hub's (`hub::saved`: rooms and
//! participants). A process that starts and finds a running dataplane with
//! a saved state carries its calls on.

use crate::agent::host::AgentHost;
use crate::agent::saved::{SavedAgent, SavedAgentRef};
use crate::hub::{Hub, SavedHub, SavedHubRef};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::Client;
use zeroize::Zeroizing;

/// Version of the saved form; another version is not carried on (2: the
/// agent's part apart from the hub's).
pub const VERSION: u32 = 2;
/// How often the state is saved (when it changed): what changed in the
/// last this-long before a crash is what a restart does not know.
pub const SAVE_EVERY: Duration = Duration::from_millis(250);

#[derive(Serialize)]
struct SavedRef<'a> {
    version: u32,
    agent: SavedAgentRef<'a>,
    hub: Option<SavedHubRef<'a>>,
}

/// A saved state read back.
#[derive(Deserialize)]
pub struct SavedState {
    version: u32,
    /// The agent's part.
    pub agent: SavedAgent,
    /// The hub's part (plain `switchyard` only).
    pub hub: Option<SavedHub>,
}

impl SavedState {
    /// Parses a saved state of this version.
    pub fn parse(bytes: &[u8]) -> Result<SavedState, String> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if v.version != VERSION {
            return Err(format!(
                "saved state version {} (this is {VERSION})",
                v.version
            ));
        }
        let s: SavedState = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        debug_assert_eq!(s.version, VERSION);
        Ok(s)
    }
}

/// Serializes the state.
pub fn encode(host: &AgentHost, hub: Option<&Hub>) -> Result<Zeroizing<Vec<u8>>, String> {
    let saved = SavedRef {
        version: VERSION,
        agent: host.saved()?,
        hub: hub.map(Hub::saved),
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
    pub fn tick(&mut self, now: Instant, host: &AgentHost, hub: Option<&Hub>, client: &Client) {
        if self.next.is_some_and(|t| now < t) {
            return;
        }
        self.next = Some(now + SAVE_EVERY);
        let result = encode(host, hub).and_then(|bytes| {
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
