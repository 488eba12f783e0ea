//! The focus role: signalling, rooms, SDP, allocation and placement over
//! bridge agents (docs/cluster.md).

pub mod bridges;
pub mod link;
pub mod links;
pub mod placement;
