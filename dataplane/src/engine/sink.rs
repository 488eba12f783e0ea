//! Where the engine's outputs go. The worker implements [`Sink`] over its
//! send batch, cross-worker queues and ABI rings; tests implement it over
//! vectors. The engine never blocks on a sink: a `false` or `None` answer
//! means "no room now" and is counted as a drop.

use crate::abi::Event;
use std::net::SocketAddr;
use std::time::Instant;

/// Largest datagram the engine writes.
pub const MAX_DATAGRAM: usize = 1500;

/// What crosses to another worker with a source's packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossKind {
    /// A decrypted RTP packet of layer `layer`.
    Rtp {
        /// Layer index.
        layer: u8,
        /// First packet of a keyframe.
        keyframe: bool,
    },
    /// A decrypted sender report for layer `layer` (the whole SR packet).
    SenderReport {
        /// Layer index.
        layer: u8,
    },
    /// A keyframe request for the source's home worker.
    KeyframeRequest {
        /// Layer index.
        layer: u8,
    },
}

/// A message between workers about one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossMessage {
    /// Source id.
    pub source: u64,
    /// Worker that sent it.
    pub from_worker: u16,
    /// What it carries.
    pub kind: CrossKind,
    /// When the original datagram arrived.
    pub arrival: Instant,
    /// The publisher's header extension ids (to read the packet's values).
    pub ext: switchyard_wire::rtp::ExtensionIds,
}

/// Entry of the endpoint table, as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Endpoint id.
    pub id: u64,
    /// Remote address.
    pub remote: SocketAddr,
    /// The control plane's bytes.
    pub user_data: [u8; 32],
}

/// The engine's outputs.
pub trait Sink {
    /// A free buffer of at least [`MAX_DATAGRAM`] bytes for the next
    /// outgoing datagram, or `None` when none is left in this batch.
    fn buffer(&mut self) -> Option<&mut [u8]>;
    /// Sends the first `len` bytes of the buffer last returned to `to`.
    fn commit(&mut self, len: usize, to: SocketAddr);
    /// Hands a message (and for RTP / SR, the packet bytes) to a worker.
    fn cross(&mut self, worker: u16, msg: CrossMessage, data: &[u8]) -> bool;
    /// A STUN, DTLS or unmatched datagram for the control plane.
    fn exception(&mut self, endpoint: u64, from: SocketAddr, data: &[u8]) -> bool;
    /// An event for the control plane.
    fn event(&mut self, event: Event);
    /// An endpoint was added (`Some`) or removed (`None`).
    fn endpoint_changed(&mut self, id: u64, info: Option<EndpointInfo>);
}
