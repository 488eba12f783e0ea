//! Switchyard's control plane: signalling, rooms, SDP, ICE-lite, DTLS-SRTP,
//! layer and bandwidth policy, metrics and the focus role.
//!
//! The `switchyard` binary runs and supervises its dataplane
//! ([`supervisor`]), serves signalling, the demo app, `/health`, `/stats`
//! and `/metrics` over HTTP and HTTPS ([`http`], [`server`], [`tls`],
//! [`demo`]). The rooms ([`hub`]) are a sans-IO state machine built from
//! [`ice`] (ICE-lite), [`dtls`] (DTLS-SRTP), [`transport`] (both together,
//! producing dataplane commands), [`conductor`], [`sdp`] (offers and
//! answers), [`signalling`] (protocol v1 messages), [`auth`] (room tokens)
//! and [`limits`].
#![forbid(unsafe_code)]

pub mod allocator;
pub mod app;
pub mod auth;
pub mod command_queue;
pub mod conductor;
pub mod config;
pub mod demo;
pub mod dtls;
pub mod fuzz;
pub mod http;
pub mod hub;
pub mod ice;
pub mod limits;
pub mod load;
pub mod replica;
pub mod saved_state;
pub mod sdp;
pub mod server;
pub mod sessions;
pub mod signalling;
pub mod supervisor;
pub mod tls;
pub mod transport;
