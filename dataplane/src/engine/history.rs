//! Retransmission history of one outgoing stream: the last N packets as
//! sent (plaintext, after rewriting), indexed by outgoing sequence number,
//! in buffers allocated once when the stream is created, and when each was
//! last sent again.

use std::time::Instant;

/// Largest packet kept.
pub const MAX_PACKET: usize = 1500;

/// A ring of the last `capacity` packets.
pub struct History {
    slots: Box<[u8]>,
    lens: Box<[u16]>,
    seqs: Box<[u16]>,
    resent: Box<[Option<Instant>]>,
    capacity: usize,
}

impl History {
    /// Allocates room for `capacity` packets (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_power_of_two();
        History {
            slots: vec![0u8; capacity * MAX_PACKET].into_boxed_slice(),
            lens: vec![0u16; capacity].into_boxed_slice(),
            seqs: vec![0u16; capacity].into_boxed_slice(),
            resent: vec![None; capacity].into_boxed_slice(),
            capacity,
        }
    }

    fn index(&self, seq: u16) -> usize {
        seq as usize & (self.capacity - 1)
    }

    /// Stores the packet sent with sequence number `seq`.
    pub fn store(&mut self, seq: u16, packet: &[u8]) {
        let i = self.index(seq);
        let len = packet.len().min(MAX_PACKET);
        self.slots[i * MAX_PACKET..i * MAX_PACKET + len].copy_from_slice(&packet[..len]);
        self.lens[i] = len as u16;
        self.seqs[i] = seq;
        self.resent[i] = None;
    }

    /// When packet `seq` was last sent again, if it is held and was.
    pub fn resent_at(&self, seq: u16) -> Option<Instant> {
        self.get(seq)?;
        self.resent[self.index(seq)]
    }

    /// Packet `seq` was sent again at `now`.
    pub fn mark_resent(&mut self, seq: u16, now: Instant) {
        if self.get(seq).is_some() {
            let i = self.index(seq);
            self.resent[i] = Some(now);
        }
    }

    /// The packet sent with `seq`, if still held.
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        let i = self.index(seq);
        let len = self.lens[i] as usize;
        (len > 0 && self.seqs[i] == seq).then(|| &self.slots[i * MAX_PACKET..i * MAX_PACKET + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_n() {
        let mut h = History::new(100);
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
    }

    #[test]
    fn remembers_when_a_packet_went_again_until_its_slot_is_reused() {
        let t = Instant::now();
        let mut h = History::new(4);
        h.store(7, b"seven");
        assert_eq!(h.resent_at(7), None);
        h.mark_resent(7, t);
        assert_eq!(h.resent_at(7), Some(t));
        h.mark_resent(8, t);
        assert_eq!(h.resent_at(8), None, "never held");
        h.store(11, b"eleven");
        assert_eq!(h.resent_at(7), None, "overwritten");
        assert_eq!(h.resent_at(11), None, "a new packet");
    }
}
