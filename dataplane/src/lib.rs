//! Switchyard's dataplane: the process that owns every media socket.
//!
//! This crate gathers the protocol primitives the fast path is built on:
//! [`wire`] (zero-copy RTP, RTCP, STUN and payload-descriptor views) and
//! [`srtp`] (SRTP/SRTCP in place). They live in their own crates under
//! `dataplane/` so that the control plane and the packet generator use them
//! without the dataplane runtime (see docs/architecture.md).
//!
//! The runtime itself (I/O backends, workers, forwarding engine and the
//! shared-memory ABI) is tracked by the dataplane issue and lands here.
#![forbid(unsafe_code)]

pub use switchyard_srtp as srtp;
pub use switchyard_wire as wire;

/// Version of this build, for logs and the `--version` flag.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
