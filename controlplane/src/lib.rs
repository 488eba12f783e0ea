//! Switchyard's control plane: signalling, rooms, SDP, ICE-lite, DTLS-SRTP,
//! layer and bandwidth policy, metrics and the focus role.
//!
//! The `switchyard` binary runs and supervises its dataplane
//! ([`supervisor`]), serves signalling, the demo app, `/health`, `/stats`
//! and `/metrics` over HTTP and HTTPS ([`http`], [`server`], [`tls`],
//! [`demo`]). Two roles meet in it (docs/cluster.md), and `switchyard
//! focus` / `switchyard bridge` run them apart: the rooms ([`hub`], with
//! [`focus`] placement and bridge links, [`allocator`], [`sdp`] offers and
//! answers, [`signalling`] protocol v1 messages, [`auth`] room tokens and
//! [`limits`]) drive bridge [`agent`]s — ICE-lite and DTLS-SRTP per
//! endpoint ([`agent::transport`], routed by [`agent::conductor`]) — only
//! through their messages, in process or over the [`cluster`] protocol.
//! [`ice`] and [`dtls`] are the protocol pieces both use. Everything is
//! sans-IO but the edges.
#![forbid(unsafe_code)]

pub mod agent;
pub mod allocator;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod command_queue;
pub mod config;
pub mod demo;
pub mod dtls;
pub mod focus;
pub mod fuzz;
pub mod http;
pub mod hub;
pub mod ice;
pub mod limits;
pub mod load;
pub mod pump_wake;
pub mod registry;
pub mod replica;
pub mod saved_state;
pub mod sdp;
pub mod server;
pub mod sessions;
pub mod shard;
pub mod signalling;
pub mod supervisor;
pub mod tls;
pub mod turn;
