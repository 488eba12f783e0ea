//! What the focus and its bridge agents share: the cluster protocol
//! (docs/cluster.md) — its messages ([`wire`]) and its authentication
//! ([`auth`]).

pub mod auth;
pub mod handshake;
pub mod wire;
