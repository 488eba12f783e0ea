//! Retransmission history, kept where it costs least. Every subscriber of
//! a source layer is sent the same payload; only the header differs. So
//! the packets themselves are kept once per source layer ([`PacketRing`],
//! by incoming sequence number, plaintext as received), and each outgoing
//! stream keeps, per packet it sent, only what it takes to build that
//! packet again byte for byte ([`SentLog`]: the layer and incoming sequence
//! number, the rewritten header fields, the transport-wide sequence number
//! it carried, and a digest of the header it was sent with). Memory grows
//! with publishers' layers, not with subscribers (docs/benchmarks.md,
//! "Memory per subscriber stream"). Buffers are allocated once, when a
//! source gets its first subscriber or a stream opens.

use super::rewrite::Rewritten;
use std::time::Instant;

/// Largest packet kept.
pub const MAX_PACKET: usize = 1500;

/// The last packets of one source layer, in fixed slots by sequence
/// number (a power of two of them).
pub struct PacketRing {
    slots: Box<[u8]>,
    lens: Box<[u16]>,
    seqs: Box<[u16]>,
    capacity: usize,
}

impl PacketRing {
    /// Allocates room for `capacity` packets (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_power_of_two();
        PacketRing {
            slots: vec![0u8; capacity * MAX_PACKET].into_boxed_slice(),
            lens: vec![0u16; capacity].into_boxed_slice(),
            seqs: vec![0u16; capacity].into_boxed_slice(),
            capacity,
        }
    }

    fn index(&self, seq: u16) -> usize {
        seq as usize & (self.capacity - 1)
    }

    /// Keeps `packet`, received with sequence number `seq` (longer than
    /// [`MAX_PACKET`]: not kept).
    pub fn store(&mut self, seq: u16, packet: &[u8]) {
        let i = self.index(seq);
        if packet.len() > MAX_PACKET {
            self.lens[i] = 0;
            return;
        }
        self.slots[i * MAX_PACKET..i * MAX_PACKET + packet.len()].copy_from_slice(packet);
        self.lens[i] = packet.len() as u16;
        self.seqs[i] = seq;
    }

    /// The packet received with `seq`, if still held.
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        let i = self.index(seq);
        let len = self.lens[i] as usize;
        (len > 0 && self.seqs[i] == seq).then(|| &self.slots[i * MAX_PACKET..i * MAX_PACKET + len])
    }
}

/// How one outgoing packet was made, enough to make it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The source layer it came from.
    pub layer: u8,
    /// Its sequence number as received on that layer.
    pub in_seq: u16,
    /// The rewritten header fields it was sent with (`rw.seq` is its
    /// outgoing sequence number).
    pub rw: Rewritten,
    /// The transport-wide sequence number it carried, if any.
    pub twcc: Option<u16>,
    /// Its length as sent (plaintext).
    pub len: u16,
    /// [`digest`] of its RTP header as sent: a packet built again must match
    /// it, or it is not sent (an identical resend reuses the SRTP index, so
    /// its bytes must be identical too).
    pub header: u32,
}

#[derive(Clone, Copy)]
struct Entry {
    sent: Option<Sent>,
    resent: Option<Instant>,
}

/// One outgoing stream's record of its last packets, by outgoing
/// sequence number (a power of two of them).
pub struct SentLog {
    entries: Box<[Entry]>,
}

impl SentLog {
    /// Room for `capacity` packets (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_power_of_two();
        SentLog {
            entries: vec![
                Entry {
                    sent: None,
                    resent: None,
                };
                capacity
            ]
            .into_boxed_slice(),
        }
    }

    fn index(&self, seq: u16) -> usize {
        seq as usize & (self.entries.len() - 1)
    }

    /// Records a packet just sent.
    pub fn record(&mut self, sent: Sent) {
        let i = self.index(sent.rw.seq);
        self.entries[i] = Entry {
            sent: Some(sent),
            resent: None,
        };
    }

    /// How packet `seq` was made, if still recorded.
    pub fn get(&self, seq: u16) -> Option<Sent> {
        self.entries[self.index(seq)]
            .sent
            .filter(|s| s.rw.seq == seq)
    }

    /// When packet `seq` was last sent again, if it is recorded and was.
    pub fn resent_at(&self, seq: u16) -> Option<Instant> {
        self.get(seq)?;
        self.entries[self.index(seq)].resent
    }

    /// Packet `seq` was sent again at `now`.
    pub fn mark_resent(&mut self, seq: u16, now: Instant) {
        if self.get(seq).is_some() {
            let i = self.index(seq);
            self.entries[i].resent = Some(now);
        }
    }
}

/// FNV-1a over `bytes`: a cheap check that a header built again is the
/// one sent (not a defence against anyone: both sides are ours).
pub fn digest(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_last_n() {
        let mut h = PacketRing::new(100);
        for seq in 65500u16..=65535 {
            h.store(seq, &seq.to_be_bytes());
        }
        for seq in 0u16..100 {
            h.store(seq, &seq.to_be_bytes());
        }
        assert_eq!(h.get(99), Some(&99u16.to_be_bytes()[..]));
        assert_eq!(h.get(65535), Some(&65535u16.to_be_bytes()[..]));
        assert_eq!(h.get(65500), None); // overwritten: 128 slots
        assert_eq!(h.get(200), None);
        h.store(99, &[0u8; MAX_PACKET + 1]);
        assert_eq!(h.get(99), None, "too long: dropped, not kept stale");
    }

    fn sent(seq: u16) -> Sent {
        Sent {
            layer: 1,
            in_seq: seq.wrapping_add(1000),
            rw: Rewritten {
                seq,
                timestamp: 90_000,
                picture_id: Some(7),
                tl0_pic_idx: None,
            },
            twcc: Some(3),
            len: 1200,
            header: digest(b"header"),
        }
    }

    #[test]
    fn a_log_finds_what_it_recorded_until_the_slot_is_reused() {
        let mut log = SentLog::new(4);
        log.record(sent(7));
        assert_eq!(log.get(7), Some(sent(7)));
        assert_eq!(log.get(3), None, "never recorded");
        log.record(sent(11));
        assert_eq!(log.get(7), None, "overwritten");
        assert_eq!(log.get(11), Some(sent(11)));
    }

    #[test]
    fn remembers_when_a_packet_went_again_until_its_slot_is_reused() {
        let t = Instant::now();
        let mut h = SentLog::new(4);
        h.record(sent(7));
        assert_eq!(h.resent_at(7), None);
        h.mark_resent(7, t);
        assert_eq!(h.resent_at(7), Some(t));
        h.mark_resent(8, t);
        assert_eq!(h.resent_at(8), None, "never held");
        h.record(sent(11));
        assert_eq!(h.resent_at(7), None, "overwritten");
        assert_eq!(h.resent_at(11), None, "a new packet");
    }

    #[test]
    fn the_digest_is_fnv_1a() {
        // FNV-1a 32-bit test vectors
        assert_eq!(digest(b""), 0x811c_9dc5);
        assert_eq!(digest(b"a"), 0xe40c_292c);
        assert_eq!(digest(b"foobar"), 0xbf9c_f968);
    }
}
