//! Single-producer single-consumer rings of fixed-size slots in the shared
//! region (one producer process or thread, one consumer).
//!
//! ```text
//! ring header (128 bytes)          slot (slot_size bytes)
//! +0   tail: u64 (producer)        +0 len: u32   payload bytes used
//! +8   slot_count: u32             +4 kind: u16  message type
//! +12  slot_size: u32              +6 reserved: u16
//! +64  head: u64 (consumer)        +8 payload
//! ```
//! `tail` and `head` count slots ever pushed / popped (wrapping `u64`); slot
//! `i` lives at `i mod slot_count`. The producer writes a slot, then
//! publishes it with a release store of `tail`; the consumer reads `tail`
//! with acquire, copies the slot out, then frees it with a release store of
//! `head`. Payloads are copied in and out, never borrowed, so a misbehaving
//! peer can corrupt messages but not this process's memory: lengths read
//! from a slot are bounds-checked and a bad one is reported as
//! [`PopError::Corrupt`].

use super::region::Region;
use core::sync::atomic::Ordering;
use std::sync::Arc;

const TAIL: usize = 0;
const SLOT_COUNT: usize = 8;
const SLOT_SIZE: usize = 12;
const HEAD: usize = 64;
/// Bytes of the per-slot header.
pub const SLOT_HEADER: usize = 8;

/// Why a pop returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// Nothing to read.
    Empty,
    /// The slot's length exceeds the slot or the caller's buffer; the slot
    /// was skipped.
    Corrupt,
}

/// A handle on one ring. It is not `Clone`, and only this module's
/// siblings make one (the dataplane formatting its region, a client opening
/// it), each wrapped at once in a [`Producer`] or a [`Consumer`]: safe code
/// gets at most one producer and one consumer per ring and per mapping. A
/// second mapping in another process (a stale client) can still push into
/// the same ring; slot copies are atomic and [`Producer::push`] publishes
/// with a compare-and-swap, so such a race garbles or loses a message but
/// never memory.
pub struct Ring {
    region: Arc<Region>,
    at: usize,
    count: u64,
    slot_size: usize,
}

impl Ring {
    /// Formats a ring at `at` (done once by the region's creator).
    pub(super) fn init(region: &Arc<Region>, at: usize, slot_count: u32, slot_size: usize) -> Ring {
        region.u64_at(at + TAIL).store(0, Ordering::Relaxed);
        region.u64_at(at + HEAD).store(0, Ordering::Relaxed);
        region
            .u32_at(at + SLOT_COUNT)
            .store(slot_count, Ordering::Relaxed);
        region
            .u32_at(at + SLOT_SIZE)
            .store(slot_size as u32, Ordering::Release);
        Ring {
            region: region.clone(),
            at,
            count: u64::from(slot_count),
            slot_size,
        }
    }

    /// Opens a ring formatted by the peer, checking its geometry against
    /// what the layout says.
    pub(super) fn open(
        region: &Arc<Region>,
        at: usize,
        slot_count: u32,
        slot_size: usize,
    ) -> Option<Ring> {
        let count = region.u32_at(at + SLOT_COUNT).load(Ordering::Acquire);
        let size = region.u32_at(at + SLOT_SIZE).load(Ordering::Acquire);
        (count == slot_count && size as usize == slot_size).then(|| Ring {
            region: region.clone(),
            at,
            count: u64::from(slot_count),
            slot_size,
        })
    }

    /// Largest payload a slot holds.
    pub fn max_payload(&self) -> usize {
        self.slot_size - SLOT_HEADER
    }

    /// Messages waiting (as seen now).
    pub fn len(&self) -> usize {
        let tail = self.region.u64_at(self.at + TAIL).load(Ordering::Acquire);
        let head = self.region.u64_at(self.at + HEAD).load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.count) as usize
    }

    /// True when no message waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, index: u64) -> SlotAt {
        SlotAt(
            self.at + super::layout::RING_HEADER + (index % self.count) as usize * self.slot_size,
        )
    }
}

/// Offset of a slot in the region.
#[derive(Clone, Copy)]
pub struct SlotAt(usize);

/// The producing side of a ring.
pub struct Producer(Ring);

/// The consuming side of a ring.
pub struct Consumer(Ring);

impl Producer {
    /// Takes the producer role on `ring`.
    pub(super) fn new(ring: Ring) -> Self {
        Producer(ring)
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.0
    }

    /// Appends a message made of `parts` (concatenated). False when the ring
    /// is full, the message does not fit a slot, or another producer (a
    /// stale client's mapping) published the slot first.
    pub fn push(&mut self, kind: u16, parts: &[&[u8]]) -> bool {
        let r = &self.0;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > r.max_payload() {
            return false;
        }
        let tail = r.region.u64_at(r.at + TAIL).load(Ordering::Relaxed);
        let head = r.region.u64_at(r.at + HEAD).load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= r.count {
            return false;
        }
        let SlotAt(slot) = r.slot(tail);
        let mut hdr = [0u8; SLOT_HEADER];
        hdr[..4].copy_from_slice(&(len as u32).to_le_bytes());
        hdr[4..6].copy_from_slice(&kind.to_le_bytes());
        r.region.write(slot, &hdr);
        let mut at = slot + SLOT_HEADER;
        for p in parts {
            r.region.write(at, p);
            at += p.len();
        }
        r.region
            .u64_at(r.at + TAIL)
            .compare_exchange(
                tail,
                tail.wrapping_add(1),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }
}

impl Consumer {
    /// Takes the consumer role on `ring`.
    pub(super) fn new(ring: Ring) -> Self {
        Consumer(ring)
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.0
    }

    /// Copies the oldest message into `out`; returns its kind and length.
    /// With `wipe`, the slot is zeroed before it is released (it held keys).
    pub fn pop(&mut self, out: &mut [u8], wipe: bool) -> Result<(u16, usize), PopError> {
        let r = &self.0;
        let head = r.region.u64_at(r.at + HEAD).load(Ordering::Relaxed);
        let tail = r.region.u64_at(r.at + TAIL).load(Ordering::Acquire);
        if head == tail {
            return Err(PopError::Empty);
        }
        let SlotAt(slot) = r.slot(head);
        let mut hdr = [0u8; SLOT_HEADER];
        r.region.read(slot, &mut hdr);
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let kind = u16::from_le_bytes([hdr[4], hdr[5]]);
        let result = if len > r.max_payload() || len > out.len() {
            Err(PopError::Corrupt)
        } else {
            r.region.read(slot + SLOT_HEADER, &mut out[..len]);
            Ok((kind, len))
        };
        if wipe {
            r.region.zero(slot, r.slot_size);
        }
        r.region
            .u64_at(r.at + HEAD)
            .store(head.wrapping_add(1), Ordering::Release);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn ring(slots: u32, size: usize) -> (Producer, Consumer) {
        let region = Arc::new(Region::for_test(4096 * 16));
        let r = Ring::init(&region, 0, slots, size);
        let opened = Ring::open(&region, 0, slots, size).unwrap();
        (Producer::new(r), Consumer::new(opened))
    }

    #[test]
    fn matches_a_queue_model() {
        let (mut p, mut c) = ring(8, 64);
        let mut model: VecDeque<(u16, Vec<u8>)> = VecDeque::new();
        let mut seed = 7u64;
        let mut out = [0u8; 64];
        for step in 0..if cfg!(miri) { 2_000 } else { 50_000u32 } {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if seed >> 62 != 0 {
                let len = (seed >> 20) as usize % 57;
                let msg: Vec<u8> = (0..len).map(|i| (step as usize + i) as u8).collect();
                let pushed = p.push(step as u16, &[&msg[..len / 2], &msg[len / 2..]]);
                assert_eq!(pushed, model.len() < 8, "step {step}");
                if pushed {
                    model.push_back((step as u16, msg));
                }
            } else {
                match (c.pop(&mut out, step % 3 == 0), model.pop_front()) {
                    (Ok((kind, n)), Some((k, m))) => {
                        assert_eq!((kind, &out[..n]), (k, &m[..]), "step {step}");
                    }
                    (Err(PopError::Empty), None) => {}
                    (got, want) => panic!("step {step}: got {got:?}, model {want:?}"),
                }
            }
            assert_eq!(c.ring().len(), model.len());
        }
    }

    #[test]
    fn concurrent_producer_and_consumer_keep_order() {
        let (mut p, mut c) = ring(64, 32);
        const N: u64 = if cfg!(miri) { 500 } else { 200_000 };
        let producer = std::thread::spawn(move || {
            let mut i = 0u64;
            while i < N {
                if p.push(1, &[&i.to_le_bytes()]) {
                    i += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut next = 0u64;
        let mut out = [0u8; 24];
        while next < N {
            match c.pop(&mut out, false) {
                Ok((1, 8)) => {
                    assert_eq!(u64::from_le_bytes(out[..8].try_into().unwrap()), next);
                    next += 1;
                }
                Err(PopError::Empty) => std::hint::spin_loop(),
                other => panic!("{other:?}"),
            }
        }
        producer.join().unwrap();
    }

    #[test]
    fn oversize_and_corrupt_slots() {
        let (mut p, mut c) = ring(4, 32);
        assert!(!p.push(0, &[&[0u8; 25]]));
        assert!(p.push(0, &[&[1u8; 24]]));
        let mut small = [0u8; 8];
        assert_eq!(c.pop(&mut small, false), Err(PopError::Corrupt));
        assert_eq!(c.pop(&mut small, false), Err(PopError::Empty));
        // a peer writing a bogus length into a slot
        assert!(p.push(0, &[b"ok"]));
        let r = p.ring();
        r.region.write(
            r.at + super::super::layout::RING_HEADER + 32,
            &u32::MAX.to_le_bytes(),
        );
        assert_eq!(c.pop(&mut [0u8; 64], false), Err(PopError::Corrupt));
    }

    #[test]
    fn wipe_zeroes_the_slot() {
        let (mut p, mut c) = ring(2, 32);
        assert!(p.push(9, &[b"secret-key-bytes"]));
        c.pop(&mut [0u8; 32], true).unwrap();
        let r = p.ring();
        let mut raw = [1u8; 32];
        r.region
            .read(r.at + super::super::layout::RING_HEADER, &mut raw);
        assert_eq!(raw, [0u8; 32]);
    }
}
