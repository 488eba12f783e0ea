//! Where everything lives in the shared region (ABI v1). docs/abi.md shows
//! the same table byte for byte; both sides compute offsets with
//! [`Layout::new`] from the parameters in the header, so the only numbers
//! that cross the process boundary are those parameters.

use super::AbiError;

/// Bytes reserved for the header at offset 0.
pub const HEADER_LEN: usize = 4096;
/// Most workers a region describes.
pub const MAX_WORKERS: usize = 64;
/// Bytes of one command slot.
pub const COMMAND_SLOT: usize = 256;
/// Bytes of one exception-packet slot (8-byte slot header, 56-byte packet
/// header, up to 1984 bytes of datagram).
pub const PACKET_SLOT: usize = 2048;
/// Bytes of one event slot.
pub const EVENT_SLOT: usize = 128;
/// Bytes of a ring header: the producer index on one cache line, the
/// consumer index on the next.
pub const RING_HEADER: usize = 128;
/// Bytes of a worker's counter block (64 counters of 8 bytes).
pub const COUNTERS_LEN: usize = 512;
/// Bytes of one endpoint-table entry.
pub const TABLE_ENTRY: usize = 128;
/// Continuity entries per endpoint the default sizes provide for (SRTP
/// contexts both ways, outgoing streams, the endpoint itself).
pub const CONTINUITY_PER_ENDPOINT: u32 = 16;
/// Bytes of each half of the client-state block by default (memory is
/// only used as far as the control plane writes).
pub const DEFAULT_CLIENT_STATE: u32 = 16 << 20;
/// Alignment of every block: a cache line on the CPUs we run on (and the
/// adjacent-line prefetcher's pair on x86).
pub const BLOCK_ALIGN: usize = 128;

/// Byte offsets of the header fields.
pub mod header {
    /// `[u8; 8]` = [`super::super::MAGIC`].
    pub const MAGIC: usize = 0;
    /// `u32`: major << 16 | minor.
    pub const VERSION: usize = 8;
    /// `u32`: [`super::HEADER_LEN`].
    pub const HEADER_LEN: usize = 12;
    /// `u64`: total region length in bytes.
    pub const REGION_LEN: usize = 16;
    /// `u32`: number of workers.
    pub const WORKERS: usize = 24;
    /// `u32`: endpoint table capacity.
    pub const ENDPOINT_CAPACITY: usize = 28;
    /// `u32`: slots per command ring.
    pub const COMMAND_SLOTS: usize = 32;
    /// `u32`: slots per exception-packet ring (in and out).
    pub const PACKET_SLOTS: usize = 36;
    /// `u32`: slots per event ring.
    pub const EVENT_SLOTS: usize = 40;
    /// `u32`: process id of the dataplane.
    pub const DATAPLANE_PID: usize = 44;
    /// `u64`: random id of this dataplane run.
    pub const BOOT_ID: usize = 48;
    /// `u64`, atomic: incremented by the dataplane at each client attach.
    pub const CLIENT_GENERATION: usize = 56;
    /// `u64`, atomic: dataplane's wall clock in ms, refreshed every ~100 ms.
    pub const HEARTBEAT_MS: usize = 64;
    /// `u64`, atomic: nonzero once the dataplane is stopping.
    pub const STOPPING: usize = 72;
    /// `u32`: continuity table entries (ABI 1.3; 0 in older regions, which
    /// have no table).
    pub const CONTINUITY_CAPACITY: usize = 80;
    /// `u32`: bytes of each half of the client-state block (ABI 1.3; 0 =
    /// no block).
    pub const CLIENT_STATE_CAPACITY: usize = 84;
    /// `u32`: TCP port of the ICE-TCP front (ABI 1.9; 0 = none).
    pub const ICE_TCP_PORT: usize = 88;
    /// `u32`, atomic: nonzero while a client that registered for wake-ups
    /// sleeps (ABI 1.10; see [`super::super::wakeup`]).
    pub const CLIENT_SLEEPING: usize = 96;
    /// `u16 × MAX_WORKERS`: UDP port of each worker's media socket.
    pub const WORKER_PORTS: usize = 128;
    /// `u64 × 64`, atomic: the ICE-TCP front's counters (ABI 1.9; zero in
    /// older regions).
    pub const TCP_COUNTERS: usize = 512;
}

/// The sizes a region is built from; stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Number of workers (1–64).
    pub workers: u32,
    /// Endpoint table entries.
    pub endpoint_capacity: u32,
    /// Slots per command ring (power of two).
    pub command_slots: u32,
    /// Slots per exception-packet ring (power of two).
    pub packet_slots: u32,
    /// Slots per event ring (power of two).
    pub event_slots: u32,
    /// Continuity table entries (0 = none).
    pub continuity_capacity: u32,
    /// Bytes of each half of the client-state block (0 = none).
    pub client_state_capacity: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            workers: 1,
            endpoint_capacity: 4096,
            command_slots: 1024,
            packet_slots: 1024,
            event_slots: 4096,
            continuity_capacity: 4096 * CONTINUITY_PER_ENDPOINT,
            client_state_capacity: DEFAULT_CLIENT_STATE,
        }
    }
}

/// Offsets of one worker's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerLayout {
    /// Counter block (`COUNTERS_LEN` bytes).
    pub counters: usize,
    /// Command ring: control plane → worker.
    pub commands: usize,
    /// Exception packets: worker → control plane (STUN, DTLS, unknown sources).
    pub packets_in: usize,
    /// Datagrams to send: control plane → worker.
    pub packets_out: usize,
    /// Events: worker → control plane.
    pub events: usize,
}

/// Offsets of every block in a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The parameters.
    pub params: Params,
    /// One per worker.
    pub workers: Vec<WorkerLayout>,
    /// The endpoint table.
    pub table: usize,
    /// The continuity table (ABI 1.3).
    pub continuity: usize,
    /// The client-state block (ABI 1.3).
    pub client_state: usize,
    /// Total length (a multiple of the page size, 4096).
    pub len: usize,
}

/// Entry indices of a per-worker table (endpoint or continuity table) that
/// `worker` owns: `capacity` entries split evenly over `workers`.
pub fn worker_slots(capacity: usize, workers: usize, worker: usize) -> core::ops::Range<usize> {
    let per = capacity / workers.max(1);
    worker * per..(worker + 1) * per
}

/// Bytes of a ring with `slots` slots of `slot` bytes.
pub fn ring_len(slots: u32, slot: usize) -> usize {
    RING_HEADER + slots as usize * slot
}

impl Layout {
    /// Computes the layout, checking the parameters.
    pub fn new(params: Params) -> Result<Layout, AbiError> {
        let ok = (1..=MAX_WORKERS as u32).contains(&params.workers)
            && params.endpoint_capacity > 0
            && params.endpoint_capacity <= 1 << 20
            && params.continuity_capacity <= 1 << 24
            && params.client_state_capacity <= 1 << 30
            && [
                params.command_slots,
                params.packet_slots,
                params.event_slots,
            ]
            .iter()
            .all(|s| s.is_power_of_two() && *s <= 1 << 16);
        if !ok {
            return Err(AbiError::BadParams);
        }
        let mut at = HEADER_LEN;
        let mut take = |len: usize| {
            let start = at;
            at = (at + len).next_multiple_of(BLOCK_ALIGN);
            start
        };
        let workers = (0..params.workers)
            .map(|_| WorkerLayout {
                counters: take(COUNTERS_LEN),
                commands: take(ring_len(params.command_slots, COMMAND_SLOT)),
                packets_in: take(ring_len(params.packet_slots, PACKET_SLOT)),
                packets_out: take(ring_len(params.packet_slots, PACKET_SLOT)),
                events: take(ring_len(params.event_slots, EVENT_SLOT)),
            })
            .collect();
        let table = take(params.endpoint_capacity as usize * TABLE_ENTRY);
        let continuity =
            take(params.continuity_capacity as usize * super::continuity::CONTINUITY_ENTRY);
        let client_state = take(super::client_state::ClientState::len(
            params.client_state_capacity as usize,
        ));
        Ok(Layout {
            params,
            workers,
            table,
            continuity,
            client_state,
            len: at.next_multiple_of(4096),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_disjoint() {
        let l = Layout::new(Params {
            workers: 3,
            ..Params::default()
        })
        .unwrap();
        let mut spans = vec![
            (0, HEADER_LEN),
            (l.table, l.table + 4096 * TABLE_ENTRY),
            (l.continuity, l.continuity + 4096 * 16 * 64),
            (l.client_state, l.client_state + 128 + 2 * (16 << 20)),
        ];
        for w in &l.workers {
            spans.push((w.counters, w.counters + COUNTERS_LEN));
            spans.push((w.commands, w.commands + ring_len(1024, COMMAND_SLOT)));
            spans.push((w.packets_in, w.packets_in + ring_len(1024, PACKET_SLOT)));
            spans.push((w.packets_out, w.packets_out + ring_len(1024, PACKET_SLOT)));
            spans.push((w.events, w.events + ring_len(4096, EVENT_SLOT)));
        }
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{pair:?} overlap");
            assert_eq!(pair[1].0 % BLOCK_ALIGN, 0);
        }
        assert!(spans.last().unwrap().1 <= l.len);
        assert_eq!(l.len % 4096, 0);
    }

    #[test]
    fn rejects_bad_params() {
        for p in [
            Params {
                workers: 0,
                ..Params::default()
            },
            Params {
                workers: 65,
                ..Params::default()
            },
            Params {
                command_slots: 1000,
                ..Params::default()
            },
            Params {
                endpoint_capacity: 0,
                ..Params::default()
            },
        ] {
            assert!(Layout::new(p).is_err(), "{p:?}");
        }
    }
}
