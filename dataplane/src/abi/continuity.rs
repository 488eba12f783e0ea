//! Continuity records: the per-packet counters a receiver checks, which a
//! dataplane started after a crash must carry on from (ABI 1.3).
//!
//! A browser's SRTP context for each SSRC keeps the highest index it
//! accepted (rollover counter and sequence number) and refuses what falls
//! behind its replay window; its SRTCP context does the same with the SRTCP
//! index; its jitter buffer and transport-wide congestion control follow
//! sequence numbers and timestamps. A new dataplane that started every
//! outgoing stream from scratch would send packets those contexts throw
//! away; and a publisher's simulcast SSRCs, learned from rid extensions the
//! browser no longer sends, could not be learned again. So every worker
//! writes, about every 100 ms, one record per SRTP context (received and
//! sent), per outgoing stream (the rewrite state; relay streams
//! included, ABI 1.11), per local source (its
//! layers' SSRCs) and per endpoint (transport-wide sequence number) into its part of the
//! continuity table in the shared region. The control plane's mapping of the
//! region outlives the dataplane process: after a crash it reads the table,
//! moves each counter forward by a margin that covers what was sent since
//! the last write, and hands the records to the new dataplane as `Resume`
//! commands (the same 56-byte body as a table entry).
//!
//! ```text
//! word 0  sequence (odd while written)
//! word 1  endpoint id (0 = free)
//! word 2  kind u8 (1 SRTP context, 2 outgoing stream, 3 endpoint, 4 layers) |
//!         direction u8 (SRTP: 1 receive, 2 send) | 0 u16 | SSRC u32 (SRTP;
//!         stream: its SSRC, ABI 1.11)
//! word 3  SRTP: RTP index + 1 (0 = none yet) · stream, layers: source id ·
//!         endpoint: next transport-wide sequence number (u16)
//! word 4-6 layers: media SSRC of layers 0, 1, 2, then RTX SSRC of layers 0, 1, 2
//!         (u32 each, 0 = not learned)
//! word 4  SRTP: next SRTCP index to send / highest received + 1 (u32) ·
//!         stream: highest sequence number u16 | highest VP8 picture id u16 |
//!         highest timestamp u32
//! word 5  stream: highest TL0PICIDX u8 | 0 u8 | next RTX sequence number u16 | 0 u32
//! word 6  stream: when its last packet was sent, unix ms (0 = nothing sent yet)
//! word 7  reserved (0)
//! ```

use super::codec::{Reader, Writer};
use super::region::Region;
use super::seqlock;

/// Bytes of one continuity-table entry.
pub const CONTINUITY_ENTRY: usize = 64;
/// Bytes of a record's body (the entry without its sequence word), which is
/// also the body of a `Resume` command.
pub const RECORD_LEN: usize = CONTINUITY_ENTRY - 8;
const WORDS: usize = CONTINUITY_ENTRY / 8;

/// Sequence numbers (and SRTP indices) a successor skips per outgoing RTP
/// stream: more than any stream sends in the 100 ms a record may be old.
/// The same for an SSRC's SRTP context and its rewriter, so they agree.
pub const RTP_MARGIN: u64 = 512;
/// SRTCP indices skipped per SSRC.
pub const SRTCP_MARGIN: u32 = 256;
/// VP8 picture ids and TL0PICIDX values skipped per stream.
pub const FRAME_MARGIN: u16 = 16;
/// Transport-wide sequence numbers skipped per endpoint.
pub const TWCC_MARGIN: u16 = 2048;

/// Which SRTP session of an endpoint a context belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the endpoint sends us (we unprotect).
    Receive = 1,
    /// What we send the endpoint (we protect).
    Send = 2,
}

/// The rewrite state of an outgoing stream (see `engine::Rewriter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamState {
    /// Highest sequence number sent.
    pub seq: u16,
    /// Highest RTP timestamp sent.
    pub timestamp: u32,
    /// Highest VP8 picture id sent (15 bits).
    pub picture_id: u16,
    /// Highest VP8 TL0PICIDX sent.
    pub tl0_pic_idx: u8,
    /// Next sequence number of its RTX stream.
    pub rtx_seq: u16,
    /// When its last packet left, unix ms (0 = none yet).
    pub last_sent_ms: u64,
}

/// One record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// One SSRC's SRTP context of an endpoint.
    Srtp {
        /// Endpoint.
        endpoint: u64,
        /// Receive or send session.
        direction: Direction,
        /// SSRC.
        ssrc: u32,
        /// Highest RTP index (ROC · 2^16 + SEQ) accepted or sent.
        rtp_index: Option<u64>,
        /// Sending: the next SRTCP index; receiving: highest + 1 (0 = none).
        srtcp_index: u32,
    },
    /// The rewrite state of one outgoing stream.
    Stream {
        /// Subscriber (or relay).
        endpoint: u64,
        /// Source.
        source: u64,
        /// The stream's SSRC (ABI 1.11; 0 from older writers). A relay
        /// endpoint has a stream per relayed layer of a source, told apart
        /// by it.
        ssrc: u32,
        /// State.
        state: StreamState,
    },
    /// The SSRCs a publisher's simulcast layers turned out to use: learned
    /// from rid header extensions, which browsers stop sending once the
    /// stream is acknowledged, so a successor could not learn them again.
    Layers {
        /// Publisher.
        endpoint: u64,
        /// Source.
        source: u64,
        /// Media SSRC per layer (0 = not learned).
        ssrcs: [u32; 3],
        /// RTX SSRC per layer (0 = not learned).
        rtx_ssrcs: [u32; 3],
    },
    /// Per-endpoint counters.
    Endpoint {
        /// Endpoint.
        endpoint: u64,
        /// Next transport-wide sequence number toward it.
        twcc_seq: u16,
    },
}

mod kind {
    pub const SRTP: u8 = 1;
    pub const STREAM: u8 = 2;
    pub const ENDPOINT: u8 = 3;
    pub const LAYERS: u8 = 4;
}

impl Continuity {
    /// The endpoint the record belongs to.
    pub fn endpoint(&self) -> u64 {
        match *self {
            Continuity::Srtp { endpoint, .. }
            | Continuity::Stream { endpoint, .. }
            | Continuity::Layers { endpoint, .. }
            | Continuity::Endpoint { endpoint, .. } => endpoint,
        }
    }

    /// The record a dataplane started after this one's writer died carries
    /// on from: every counter it sends with moved past what may have been
    /// sent since the record was written ([`RTP_MARGIN`] and the others;
    /// records are at most 100 ms old). Receive contexts stay: the sender
    /// carries on from them by itself.
    pub fn carried_on(self) -> Continuity {
        match self {
            Continuity::Srtp {
                endpoint,
                direction: Direction::Send,
                ssrc,
                rtp_index,
                srtcp_index,
            } => Continuity::Srtp {
                endpoint,
                direction: Direction::Send,
                ssrc,
                rtp_index: rtp_index.map(|i| (i + RTP_MARGIN) & ((1 << 48) - 1)),
                srtcp_index: srtcp_index.wrapping_add(SRTCP_MARGIN) & 0x7fff_ffff,
            },
            Continuity::Stream {
                endpoint,
                source,
                ssrc,
                state,
            } => Continuity::Stream {
                endpoint,
                source,
                ssrc,
                state: StreamState {
                    seq: state.seq.wrapping_add(RTP_MARGIN as u16),
                    rtx_seq: state.rtx_seq.wrapping_add(RTP_MARGIN as u16),
                    picture_id: state.picture_id.wrapping_add(FRAME_MARGIN) & 0x7fff,
                    tl0_pic_idx: state.tl0_pic_idx.wrapping_add(FRAME_MARGIN as u8),
                    ..state
                },
            },
            Continuity::Endpoint { endpoint, twcc_seq } => Continuity::Endpoint {
                endpoint,
                twcc_seq: twcc_seq.wrapping_add(TWCC_MARGIN),
            },
            receive => receive,
        }
    }

    /// The record's body.
    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        let mut w = Writer::new(&mut out);
        match *self {
            Continuity::Srtp {
                endpoint,
                direction,
                ssrc,
                rtp_index,
                srtcp_index,
            } => {
                w.u64(endpoint)
                    .u8(kind::SRTP)
                    .u8(direction as u8)
                    .u16(0)
                    .u32(ssrc);
                w.u64(rtp_index.map_or(0, |i| i + 1))
                    .u32(srtcp_index)
                    .u32(0);
            }
            Continuity::Stream {
                endpoint,
                source,
                ssrc,
                state,
            } => {
                w.u64(endpoint).u8(kind::STREAM).u8(0).u16(0).u32(ssrc);
                w.u64(source)
                    .u16(state.seq)
                    .u16(state.picture_id)
                    .u32(state.timestamp);
                w.u8(state.tl0_pic_idx)
                    .u8(0)
                    .u16(state.rtx_seq)
                    .u32(0)
                    .u64(state.last_sent_ms);
            }
            Continuity::Endpoint { endpoint, twcc_seq } => {
                w.u64(endpoint).u8(kind::ENDPOINT).u8(0).u16(0).u32(0);
                w.u64(u64::from(twcc_seq));
            }
            Continuity::Layers {
                endpoint,
                source,
                ssrcs,
                rtx_ssrcs,
            } => {
                w.u64(endpoint).u8(kind::LAYERS).u8(0).u16(0).u32(0);
                w.u64(source);
                for v in ssrcs.iter().chain(&rtx_ssrcs) {
                    w.u32(*v);
                }
            }
        }
        debug_assert!(w.finish().is_some());
        out
    }

    /// Decodes a record's body; `None` for a free entry or an unknown kind.
    pub fn decode(body: &[u8]) -> Option<Continuity> {
        let mut r = Reader::new(body);
        let endpoint = r.u64();
        let (kind, direction) = (r.u8(), r.u8());
        r.u16();
        let ssrc = r.u32();
        let record = match kind {
            kind::SRTP => Continuity::Srtp {
                endpoint,
                direction: match direction {
                    1 => Direction::Receive,
                    2 => Direction::Send,
                    _ => return None,
                },
                ssrc,
                rtp_index: r.u64().checked_sub(1),
                srtcp_index: r.u32(),
            },
            kind::STREAM => {
                let source = r.u64();
                let (seq, picture_id, timestamp) = (r.u16(), r.u16(), r.u32());
                let tl0_pic_idx = r.u8();
                r.u8();
                let rtx_seq = r.u16();
                r.u32();
                Continuity::Stream {
                    endpoint,
                    source,
                    ssrc,
                    state: StreamState {
                        seq,
                        timestamp,
                        picture_id: picture_id & 0x7fff,
                        tl0_pic_idx,
                        rtx_seq,
                        last_sent_ms: r.u64(),
                    },
                }
            }
            kind::ENDPOINT => Continuity::Endpoint {
                endpoint,
                twcc_seq: r.u64() as u16,
            },
            kind::LAYERS => {
                let source = r.u64();
                let mut v = [0u32; 6];
                for x in &mut v {
                    *x = r.u32();
                }
                Continuity::Layers {
                    endpoint,
                    source,
                    ssrcs: [v[0], v[1], v[2]],
                    rtx_ssrcs: [v[3], v[4], v[5]],
                }
            }
            _ => return None,
        };
        (endpoint != 0 && !r.is_short()).then_some(record)
    }
}

/// The continuity table in a region: `capacity` entries, partitioned by
/// worker like the endpoint table.
#[derive(Debug, Clone, Copy)]
pub struct ContinuityTable {
    at: usize,
    capacity: usize,
    workers: usize,
}

impl ContinuityTable {
    /// The table at `at` with `capacity` entries shared by `workers`.
    pub fn new(at: usize, capacity: usize, workers: usize) -> ContinuityTable {
        ContinuityTable {
            at,
            capacity,
            workers: workers.max(1),
        }
    }

    /// Entry indices owned by a worker.
    pub fn slots_of(&self, worker: usize) -> core::ops::Range<usize> {
        super::layout::worker_slots(self.capacity, self.workers, worker)
    }

    fn entry(&self, slot: usize) -> usize {
        self.at + slot * CONTINUITY_ENTRY
    }

    /// Every record (any process); entries a dying writer left torn are
    /// skipped.
    pub fn records(&self, region: &Region) -> Vec<Continuity> {
        (0..self.capacity)
            .filter_map(|slot| {
                let mut words = [0u64; WORDS];
                if !seqlock::read(region, self.entry(slot), &mut words) {
                    return None;
                }
                let mut body = [0u8; RECORD_LEN];
                for (i, w) in words[1..].iter().enumerate() {
                    body[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
                }
                Continuity::decode(&body)
            })
            .collect()
    }
}

/// One worker's writer of its part of the table.
#[derive(Debug)]
pub struct ContinuityWriter {
    table: ContinuityTable,
    slots: core::ops::Range<usize>,
    /// Entries holding records after the last publication.
    used: usize,
}

impl ContinuityWriter {
    /// The writer of `worker`'s part.
    pub fn new(table: ContinuityTable, worker: usize) -> ContinuityWriter {
        ContinuityWriter {
            table,
            slots: table.slots_of(worker),
            used: 0,
        }
    }

    /// Rewrites the worker's part with `records`, frees the entries the
    /// previous publication used beyond them, and returns how many records
    /// did not fit.
    pub fn publish(
        &mut self,
        region: &Region,
        records: impl IntoIterator<Item = Continuity>,
    ) -> usize {
        let room = self.slots.len();
        let (mut written, mut overflow) = (0, 0);
        for record in records {
            if written == room {
                overflow += 1;
                continue;
            }
            let body = record.to_bytes();
            let mut words = [0u64; WORDS];
            for (i, c) in body.chunks_exact(8).enumerate() {
                words[i + 1] = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            }
            seqlock::write(region, self.table.entry(self.slots.start + written), &words);
            written += 1;
        }
        for slot in written..self.used {
            seqlock::write(
                region,
                self.table.entry(self.slots.start + slot),
                &[0; WORDS],
            );
        }
        self.used = written;
        overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Continuity> {
        vec![
            Continuity::Srtp {
                endpoint: 7,
                direction: Direction::Send,
                ssrc: 0xdead_beef,
                rtp_index: Some(3 << 16 | 65_000),
                srtcp_index: 912,
            },
            Continuity::Srtp {
                endpoint: 7,
                direction: Direction::Receive,
                ssrc: 1,
                rtp_index: None,
                srtcp_index: 0,
            },
            Continuity::Stream {
                endpoint: 9,
                source: 1 << 40,
                ssrc: 0xfeed_f00d,
                state: StreamState {
                    seq: 65_535,
                    timestamp: 4_000_000_000,
                    picture_id: 0x7fff,
                    tl0_pic_idx: 255,
                    rtx_seq: 17,
                    last_sent_ms: 1_800_000_000_000,
                },
            },
            Continuity::Endpoint {
                endpoint: 9,
                twcc_seq: 40_000,
            },
            Continuity::Layers {
                endpoint: 9,
                source: 3,
                ssrcs: [1, 2, u32::MAX],
                rtx_ssrcs: [4, 0, 6],
            },
        ]
    }

    #[test]
    fn records_round_trip() {
        for r in samples() {
            assert_eq!(Continuity::decode(&r.to_bytes()), Some(r));
        }
        assert_eq!(Continuity::decode(&[0; RECORD_LEN]), None);
        assert_eq!(Continuity::decode(&[0xff; 3]), None);
    }

    #[test]
    fn a_publication_replaces_the_last_one() {
        let region = Region::for_test(64 * 1024);
        let table = ContinuityTable::new(4096, 10, 2);
        let (mut w0, mut w1) = (
            ContinuityWriter::new(table, 0),
            ContinuityWriter::new(table, 1),
        );
        assert_eq!(w0.publish(&region, samples()), 0);
        assert_eq!(w1.publish(&region, samples().into_iter().take(1)), 0);
        assert_eq!(table.records(&region).len(), 6);
        // fewer records: the old tail is freed; too many: counted, not written
        assert_eq!(w0.publish(&region, samples().into_iter().skip(3)), 0);
        assert_eq!(table.records(&region).len(), 3);
        let many = samples().into_iter().cycle().take(6);
        assert_eq!(w1.publish(&region, many), 1);
        assert_eq!(table.records(&region).len(), 7);
    }
}
