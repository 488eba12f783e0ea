//! The shared-memory ABI between the dataplane and its clients (the control
//! plane, the C ABI, tests). docs/abi.md documents it byte for byte.
//!
//! The dataplane creates one sealed `memfd` region ([`region`]) laid out by
//! [`layout`]: a header, then per worker a counter block and four
//! single-producer single-consumer [`ring`]s — commands in, exception
//! packets in and out, events out — then the endpoint [`table`] and last
//! the [`continuity`] table. It
//! hands the descriptor to whoever connects to its unix socket
//! ([`server`]); [`Client`] is the other side. A client that restarts
//! re-attaches to the same region: rings keep their positions and the
//! workers never stop forwarding. A client may register for [`wakeup`]s
//! (ABI 1.10) instead of polling the rings.
//!
//! **Versioning.** `major` changes when a layout or message changes
//! incompatibly; a client refuses a region of another major. `minor` grows
//! when something is added that old clients can ignore (a new event kind,
//! a field in reserved bytes); a client accepts any minor.

pub mod access;
pub mod client_state;
pub mod codec;
pub mod command;
pub mod continuity;
pub mod counters;
pub mod event;
pub mod layout;
#[allow(unsafe_code)] // the mapping itself: memfd, mmap, raw copies
pub mod region;
pub mod ring;
mod seqlock;
pub mod server;
pub mod table;
pub mod wakeup;

mod client;

pub use client::Client;
pub use command::{
    Codec, Command, EndpointSpec, LayerSpec, MediaKind, RelaySpec, SourceSpec, SrtpKeys,
    SubscriptionSpec,
};
pub use continuity::{Continuity, Direction, StreamState};
pub use counters::{Counter, CounterBlock, DropReason};
pub use event::{CommandError, Event, PacketHeader};
pub use layout::{Layout, Params};
pub use table::TableEntry;

use thiserror::Error;

/// First bytes of every region.
pub const MAGIC: [u8; 8] = *b"SWYDABI\0";
/// Incompatible-change number.
pub const ABI_MAJOR: u16 = 1;
/// Compatible-addition number.
pub const ABI_MINOR: u16 = 11;

/// Errors of the ABI layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AbiError {
    /// A system call failed.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// Region parameters out of range.
    #[error("region parameters out of range")]
    BadParams,
    /// The region is not a valid Switchyard region.
    #[error("invalid region: {0}")]
    BadRegion(&'static str),
    /// The region has another major version.
    #[error(
        "ABI version {found_major}.{found_minor} is not compatible with {ABI_MAJOR}.{ABI_MINOR}"
    )]
    Version {
        /// Major version found.
        found_major: u16,
        /// Minor version found.
        found_minor: u16,
    },
    /// A ring is full; retry after the peer has drained it.
    #[error("ring full")]
    Full,
    /// A worker index out of range.
    #[error("no worker {0}")]
    NoWorker(usize),
    /// Another client attached after this one; this one must stop.
    #[error("another client has attached; this one is stale")]
    Superseded,
    /// A message does not fit its slot.
    #[error("message too large for its slot")]
    TooLarge,
    /// The control socket's directory could be tampered with by another user.
    #[error(
        "refusing the control socket directory {path}: {reason}; remove it (or `chmod 700` it if it is yours) and start again"
    )]
    UnsafeSocketDir {
        /// The directory.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The process at the other end of the control socket runs as another user.
    #[error("the peer on the control socket runs as uid {0}, not as this user or root")]
    UntrustedPeer(u32),
}
