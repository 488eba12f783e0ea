//! The focus role: signalling, rooms, SDP, allocation and placement over
//! bridge agents (docs/cluster.md).

pub mod placement;
