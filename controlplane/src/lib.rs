//! Switchyard's control plane: signalling, rooms, SDP, ICE-lite, DTLS-SRTP,
//! layer and bandwidth policy, metrics and the focus role.
//!
//! In place: the `switchyard` binary runs and supervises its dataplane
//! ([`supervisor`]) and serves `/health` and `/stats` ([`http`]); the
//! protocol pieces a call needs are built and tested on their own:
//! [`ice`] (ICE-lite), [`dtls`] (DTLS-SRTP), [`transport`] (both together,
//! producing dataplane commands), [`sdp`] (offers and answers),
//! [`signalling`] (protocol v1 messages), [`auth`] (room tokens), [`limits`].
//! Next: the WebSocket session that ties them to rooms, and the demo app.
#![forbid(unsafe_code)]

pub mod auth;
pub mod conductor;
pub mod config;
pub mod dtls;
pub mod fuzz;
pub mod http;
pub mod hub;
pub mod ice;
pub mod limits;
pub mod sdp;
pub mod server;
pub mod signalling;
pub mod supervisor;
pub mod transport;
