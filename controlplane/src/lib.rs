//! Switchyard's control plane: signalling, rooms, SDP, ICE-lite, DTLS-SRTP,
//! layer and bandwidth policy, metrics and the focus role.
//!
//! Being built (the control-plane issue): [`ice`] (the ICE-lite agent) and
//! [`dtls`] (DTLS-SRTP over OpenSSL) and [`sdp`] (offer parsing, answer
//! writing) are in; signalling, SDP, DTLS, rooms and the demo app follow. Until they
//! land the `switchyard` binary says so and exits.
#![forbid(unsafe_code)]

pub mod auth;
pub mod dtls;
pub mod ice;
pub mod limits;
pub mod sdp;
pub mod signalling;
pub mod transport;

/// What `switchyard` prints until the control plane lands.
pub fn status_line() -> String {
    format!(
        "switchyard {}: not yet — the server arrives with the control-plane issue. \
         Available today: wire formats and SRTP (cargo test), benches (cargo bench -p switchyard-benches).",
        switchyard_dataplane::VERSION
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_names_the_version() {
        assert!(super::status_line().contains(env!("CARGO_PKG_VERSION")));
    }
}
