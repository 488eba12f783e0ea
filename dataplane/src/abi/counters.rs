//! Per-worker counters. A worker counts in plain local integers and
//! publishes them to its cache-line-aligned block in the region after each
//! batch (one writer: no atomic read-modify-write on the packet path).

use super::region::Region;
use core::sync::atomic::Ordering;

/// Number of 64-bit counters in a block.
pub const COUNTERS: usize = 64;
/// Index of the first drop-reason counter.
pub const DROPS_BASE: usize = 16;

/// General counters (indices into the block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Datagrams received.
    RxPackets = 0,
    /// Bytes received.
    RxBytes = 1,
    /// Datagrams sent.
    TxPackets = 2,
    /// Bytes sent.
    TxBytes = 3,
    /// Commands applied.
    Commands = 4,
    /// Exception packets handed to the control plane.
    ExceptionsIn = 5,
    /// Datagrams sent on behalf of the control plane.
    ExceptionsOut = 6,
    /// Events lost because the event ring was full.
    EventsLost = 7,
    /// Loop iterations.
    Iterations = 8,
    /// Iterations over their time budget.
    Stalls = 9,
    /// Packets handed to other workers.
    CrossOut = 10,
    /// Packets received from other workers.
    CrossIn = 11,
    /// Retransmissions sent for NACKs.
    Retransmissions = 12,
    /// Keyframe requests sent to publishers.
    KeyframeRequests = 13,
    /// Packets forwarded to subscribers (before encryption).
    Forwarded = 14,
    /// RTP packets received from relays to other bridges (ABI 1.4; after
    /// the drop reasons).
    RelayRxPackets = 48,
    /// Their bytes (as received, SRTP included).
    RelayRxBytes = 49,
    /// RTP packets sent to relays (retransmissions included).
    RelayTxPackets = 50,
    /// Their bytes (as sent).
    RelayTxBytes = 51,
    /// Retransmissions sent to relays, for NACKs from the far bridge (ABI
    /// 1.4).
    RelayRetransmissions = 52,
    /// NACKs sent to relays: packets of a relayed source this bridge did
    /// not receive, asked for again (ABI 1.4).
    RelayNacksSent = 53,
    /// Packets of publishers and relays asked for again (NACK) because the
    /// first request brought nothing within a round trip (ABI 1.5).
    UpstreamNackRetries = 54,
    /// Packets of publishers and relays given up: still missing after the
    /// last request, too old, or pushed out by newer losses (ABI 1.5).
    UpstreamLossGivenUp = 55,
    /// Packets a subscriber NACKed that were not sent again: sent again
    /// less than a round trip and the path's queue ago, or over its
    /// retransmission budget, half its estimate (ABI 1.8).
    RetransmissionsWithheld = 56,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Media from an address that is no endpoint.
    UnknownAddress = 0,
    /// Not STUN, DTLS, RTP or RTCP by its first byte.
    Unclassified = 1,
    /// RTP header malformed.
    MalformedRtp = 2,
    /// RTCP malformed (after decryption).
    MalformedRtcp = 3,
    /// SRTP/SRTCP authentication failed.
    AuthFailed = 4,
    /// Replayed SRTP/SRTCP packet.
    Replayed = 5,
    /// Older than the replay window.
    TooOld = 6,
    /// Other SRTP errors (truncated, stream limit).
    SrtpOther = 7,
    /// RTP with an SSRC that belongs to no source.
    UnknownSsrc = 8,
    /// The exception ring to the control plane was full.
    ExceptionRingFull = 9,
    /// The queue to another worker was full.
    CrossQueueFull = 10,
    /// The kernel refused a send.
    SendFailed = 11,
    /// Datagram larger than a buffer.
    Oversize = 12,
    /// A subscriber's outgoing packet was not sent (waiting for a keyframe,
    /// other layer, no keys).
    Filtered = 13,
    /// Not enough send buffers in this batch.
    NoSendBuffer = 14,
    /// A padding-only packet (a sender's bandwidth probe): nothing to
    /// forward.
    Padding = 15,
    /// STUN or DTLS from an address that is no endpoint, over its source
    /// IP's budget for the exception ring (ABI 1.2).
    ExceptionBudget = 16,
    /// A packet of an incoming layer received before, or older than the
    /// last 1024 of it (ABI 1.7): a retransmission after a late original,
    /// or a sender's RTX payload padding (old packets sent again to probe
    /// its estimate). Not forwarded.
    Duplicate = 17,
}

impl DropReason {
    /// Every reason, in index order.
    pub const ALL: [DropReason; 18] = [
        DropReason::UnknownAddress,
        DropReason::Unclassified,
        DropReason::MalformedRtp,
        DropReason::MalformedRtcp,
        DropReason::AuthFailed,
        DropReason::Replayed,
        DropReason::TooOld,
        DropReason::SrtpOther,
        DropReason::UnknownSsrc,
        DropReason::ExceptionRingFull,
        DropReason::CrossQueueFull,
        DropReason::SendFailed,
        DropReason::Oversize,
        DropReason::Filtered,
        DropReason::NoSendBuffer,
        DropReason::Padding,
        DropReason::ExceptionBudget,
        DropReason::Duplicate,
    ];

    /// Name for logs and metrics.
    pub fn name(self) -> &'static str {
        // the C names are ASCII literals, so always UTF-8
        self.c_name().to_str().unwrap_or("")
    }

    /// The name as a NUL-terminated string (for the C ABI).
    pub fn c_name(self) -> &'static core::ffi::CStr {
        match self {
            DropReason::UnknownAddress => c"unknown_address",
            DropReason::Unclassified => c"unclassified",
            DropReason::MalformedRtp => c"malformed_rtp",
            DropReason::MalformedRtcp => c"malformed_rtcp",
            DropReason::AuthFailed => c"auth_failed",
            DropReason::Replayed => c"replayed",
            DropReason::TooOld => c"too_old",
            DropReason::SrtpOther => c"srtp_other",
            DropReason::UnknownSsrc => c"unknown_ssrc",
            DropReason::ExceptionRingFull => c"exception_ring_full",
            DropReason::CrossQueueFull => c"cross_queue_full",
            DropReason::SendFailed => c"send_failed",
            DropReason::Oversize => c"oversize",
            DropReason::Filtered => c"filtered",
            DropReason::NoSendBuffer => c"no_send_buffer",
            DropReason::Padding => c"padding",
            DropReason::ExceptionBudget => c"exception_budget",
            DropReason::Duplicate => c"duplicate",
        }
    }

    /// The SRTP error as a drop reason.
    pub fn from_srtp(e: switchyard_srtp::SrtpError) -> DropReason {
        use switchyard_srtp::SrtpError;
        match e {
            SrtpError::AuthenticationFailed => DropReason::AuthFailed,
            SrtpError::Replayed => DropReason::Replayed,
            SrtpError::TooOld => DropReason::TooOld,
            SrtpError::Malformed(_) => DropReason::MalformedRtp,
            _ => DropReason::SrtpOther,
        }
    }
}

/// Counters of the ICE-TCP front (ABI 1.9), in their own block of
/// [`COUNTERS`] values in the region header (`header::TCP_COUNTERS`); the
/// closes by reason start at [`TCP_CLOSED_BASE`] + `CloseReason` index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpCounter {
    /// Connections accepted (refused ones included).
    Accepted = 0,
    /// Connections open now (a gauge).
    Open = 1,
    /// Connections whose first packet named a worker.
    Linked = 2,
    /// Connections the worker answered (a Binding success response).
    Answered = 3,
    /// Packets from peers handed to workers.
    PacketsIn = 4,
    /// Their bytes.
    BytesIn = 5,
    /// Packets from workers queued for peers.
    PacketsOut = 6,
    /// Their bytes.
    BytesOut = 7,
    /// Packets for a peer dropped: its send queue was full (it reads too
    /// slowly).
    QueueFull = 8,
    /// Packets from a peer dropped: the worker's socket refused them.
    WorkerRefused = 9,
}

/// Index of the first close-reason counter in the ICE-TCP block.
pub const TCP_CLOSED_BASE: usize = 16;

/// A worker's counters, counted locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterBlock {
    /// Values by index.
    pub values: [u64; COUNTERS],
}

impl Default for CounterBlock {
    fn default() -> Self {
        CounterBlock {
            values: [0; COUNTERS],
        }
    }
}

impl CounterBlock {
    /// Adds to a counter.
    #[inline]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.values[c as usize] = self.values[c as usize].wrapping_add(n);
    }
    /// Counts one drop.
    #[inline]
    pub fn drop_packet(&mut self, reason: DropReason) {
        let i = DROPS_BASE + reason as usize;
        self.values[i] = self.values[i].wrapping_add(1);
    }
    /// A counter's value.
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c as usize]
    }
    /// Drops for a reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.values[DROPS_BASE + reason as usize]
    }
    /// Writes the block to the region at `at` (the worker's counter block).
    pub fn publish(&self, region: &Region, at: usize) {
        for (i, v) in self.values.iter().enumerate() {
            region.u64_at(at + 8 * i).store(*v, Ordering::Relaxed);
        }
    }
    /// Reads a block from the region.
    pub fn load(region: &Region, at: usize) -> CounterBlock {
        let mut b = CounterBlock::default();
        for (i, v) in b.values.iter_mut().enumerate() {
            *v = region.u64_at(at + 8 * i).load(Ordering::Relaxed);
        }
        b
    }
}
