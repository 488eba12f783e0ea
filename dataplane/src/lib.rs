//! Switchyard's dataplane: the process that owns every media socket.
//!
//! - [`wire`] and [`srtp`]: the protocol primitives (their own crates under
//!   `dataplane/`, re-exported here) — see docs/architecture.md for why.
//! - [`abi`]: the shared-memory interface through which the control plane,
//!   the C ABI and tests drive this process.
//! - [`bwe`]: send-side bandwidth estimation per receiver (sans-IO).
//!
//! `unsafe` is confined to the shared-memory region ([`abi::region`]) and,
//! as they land, the syscall modules of the I/O backends.
#![deny(unsafe_code)]

pub use switchyard_srtp as srtp;
pub use switchyard_wire as wire;

pub mod abi;
pub mod addr_hash;
pub mod bwe;
pub mod config;
pub mod engine;
pub mod io;
pub mod log_budget;
pub mod runtime;
pub mod tcp;
pub mod worker;

/// Version of this build, for logs and the `--version` flag.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
