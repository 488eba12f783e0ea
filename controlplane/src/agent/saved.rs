//! The agent's saved state: what a process started after this one on the
//! same host needs to carry the endpoints on — the DTLS certificate, every
//! transport (ICE credentials, the selected address) and the replica of
//! the dataplane's state (with the SRTP keys it holds). Kept only in the
//! dataplane's shared region (`abi::client_state`), never in a file.

use super::host::AgentHost;
use super::transport::TransportState;
use crate::replica::{Replica, saved_commands};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Replica commands as saved: (worker, ABI kind, ABI body); the bodies
/// hold keys and are wiped on drop.
#[derive(Default, Serialize, Deserialize)]
#[serde(transparent)]
struct SavedCommands(Vec<(usize, u16, Vec<u8>)>);

impl Drop for SavedCommands {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, _, body) in &mut self.0 {
            body.zeroize();
        }
    }
}

/// The agent as saved (for writing).
#[derive(Serialize)]
pub struct SavedAgentRef<'a> {
    key_pem: &'a str,
    cert_pem: &'a str,
    transports: Vec<TransportState>,
    replica: SavedCommands,
    owners: std::collections::BTreeMap<u64, String>,
}

/// The agent as saved (read back).
#[derive(Deserialize)]
pub struct SavedAgent {
    /// The certificate's private key.
    pub key_pem: Zeroizing<String>,
    /// The certificate.
    pub cert_pem: String,
    /// The transports.
    pub transports: Vec<TransportState>,
    replica: SavedCommands,
    /// Which focus owns each endpoint and source (none saved: every focus
    /// hears of every endpoint).
    #[serde(default)]
    pub owners: std::collections::BTreeMap<u64, String>,
}

impl SavedAgent {
    /// The replica it holds.
    pub fn take_replica(&mut self) -> Replica {
        Replica::from_commands(
            std::mem::take(&mut self.replica.0)
                .into_iter()
                .filter_map(|(w, k, b)| saved_commands::decode(k, b).map(|c| (w, c))),
        )
    }
}

impl AgentHost {
    /// The state to save.
    pub fn saved(&self) -> Result<SavedAgentRef<'_>, String> {
        let (key_pem, cert_pem) = self.certificate_pem()?;
        Ok(SavedAgentRef {
            key_pem,
            cert_pem,
            transports: self.agent().states(),
            replica: SavedCommands(
                self.replica()
                    .commands()
                    .iter()
                    .map(|(w, c)| {
                        let (k, b) = saved_commands::encode(c);
                        (*w, k, b)
                    })
                    .collect(),
            ),
            owners: self.owners().saved().clone(),
        })
    }
}
