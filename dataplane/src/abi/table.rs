//! The endpoint table: what a re-attaching control plane needs to find the
//! endpoints that still carry media. Entries are partitioned by worker
//! (worker `w` owns entries `w·n/W .. (w+1)·n/W`), so each entry has one
//! writer. Every field is an atomic 64-bit word behind a sequence counter
//! (`abi::seqlock`).
//!
//! ```text
//! word 0  sequence (odd while written)
//! word 1  endpoint id (0 = free)
//! word 2  worker (u32) | flags (u32)
//! word 3-5 remote address (20 bytes, codec::ADDR_LEN, zero padded)
//! word 6  created, unix ms
//! word 7  last packet received, unix ms (refreshed about once a second)
//! word 8-11 user data (32 bytes)
//! word 12-15 reserved (0)
//! ```

use super::codec::{Reader, Writer};
use super::layout::TABLE_ENTRY;
use super::region::Region;
use super::seqlock;
use std::net::SocketAddr;

const WORDS: usize = TABLE_ENTRY / 8;

/// One endpoint as the table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableEntry {
    /// Endpoint id.
    pub endpoint: u64,
    /// Worker that owns it.
    pub worker: u32,
    /// Remote address.
    pub remote: SocketAddr,
    /// Creation time, unix ms.
    pub created_ms: u64,
    /// Last packet received, unix ms.
    pub last_rx_ms: u64,
    /// The control plane's bytes.
    pub user_data: [u8; 32],
}

impl TableEntry {
    fn to_words(self) -> [u64; WORDS] {
        let mut bytes = [0u8; TABLE_ENTRY];
        let mut w = Writer::new(&mut bytes);
        w.u64(0)
            .u64(self.endpoint)
            .u32(self.worker)
            .u32(0)
            .addr(self.remote)
            .u32(0);
        w.u64(self.created_ms)
            .u64(self.last_rx_ms)
            .bytes(&self.user_data);
        let mut words = [0u64; WORDS];
        for (i, c) in bytes.chunks_exact(8).enumerate() {
            words[i] = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        }
        words
    }

    fn from_words(words: &[u64; WORDS]) -> Option<TableEntry> {
        let mut bytes = [0u8; TABLE_ENTRY];
        for (i, w) in words.iter().enumerate() {
            bytes[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        let mut r = Reader::new(&bytes);
        r.u64();
        let endpoint = r.u64();
        let worker = r.u32();
        r.u32();
        let remote = r.addr()?;
        r.u32();
        let (created_ms, last_rx_ms) = (r.u64(), r.u64());
        (endpoint != 0).then(|| TableEntry {
            endpoint,
            worker,
            remote,
            created_ms,
            last_rx_ms,
            user_data: r.bytes(),
        })
    }
}

/// Access to the table in a region.
#[derive(Clone, Copy)]
pub struct Table {
    at: usize,
    capacity: usize,
    workers: usize,
}

impl Table {
    /// The table at `at` with `capacity` entries shared by `workers`.
    pub fn new(at: usize, capacity: usize, workers: usize) -> Table {
        Table {
            at,
            capacity,
            workers: workers.max(1),
        }
    }

    /// Entry indices owned by a worker.
    pub fn slots_of(&self, worker: usize) -> core::ops::Range<usize> {
        super::layout::worker_slots(self.capacity, self.workers, worker)
    }

    fn word(&self, slot: usize, word: usize) -> usize {
        debug_assert!(slot < self.capacity && word < WORDS);
        self.at + slot * TABLE_ENTRY + word * 8
    }

    /// Writes (or, with `None`, frees) an entry. Only the owning worker calls this.
    pub fn write(&self, region: &Region, slot: usize, entry: Option<TableEntry>) {
        let words = entry.map(TableEntry::to_words).unwrap_or([0; WORDS]);
        seqlock::write(region, self.word(slot, 0), &words);
    }

    /// Updates only the last-received time of an entry (owning worker).
    pub fn touch(&self, region: &Region, slot: usize, last_rx_ms: u64) {
        let mut words = [0u64; WORDS];
        if seqlock::read(region, self.word(slot, 0), &mut words) {
            words[7] = last_rx_ms;
            seqlock::write(region, self.word(slot, 0), &words);
        }
    }

    /// Reads a consistent copy of an entry (any process); `None` for a free
    /// entry or one its writer died inside.
    pub fn read(&self, region: &Region, slot: usize) -> Option<TableEntry> {
        let mut words = [0u64; WORDS];
        seqlock::read(region, self.word(slot, 0), &mut words)
            .then(|| TableEntry::from_words(&words))
            .flatten()
    }

    /// Every live entry.
    pub fn entries(&self, region: &Region) -> Vec<TableEntry> {
        (0..self.capacity)
            .filter_map(|slot| self.read(region, slot))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn write_read_free_and_concurrent_readers() {
        let region = Arc::new(Region::for_test(64 * 1024));
        let t = Table::new(4096, 16, 2);
        assert_eq!(t.slots_of(1), 8..16);
        let e = TableEntry {
            endpoint: 42,
            worker: 1,
            remote: "[2001:db8::5]:5004".parse().unwrap(),
            created_ms: 1000,
            last_rx_ms: 2000,
            user_data: [9; 32],
        };
        t.write(&region, 9, Some(e));
        assert_eq!(t.read(&region, 9), Some(e));
        t.touch(&region, 9, 3000);
        assert_eq!(t.read(&region, 9).unwrap().last_rx_ms, 3000);
        assert_eq!(t.entries(&region).len(), 1);
        // a reader never sees a torn entry while the writer rewrites it
        let r2 = region.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..if cfg!(miri) { 300 } else { 20_000u64 } {
                let e = TableEntry {
                    endpoint: i + 1,
                    created_ms: i + 1,
                    last_rx_ms: i + 1,
                    ..e
                };
                t.write(&r2, 3, Some(e));
            }
        });
        for _ in 0..if cfg!(miri) { 300 } else { 20_000 } {
            if let Some(got) = t.read(&region, 3) {
                assert_eq!(got.endpoint, got.created_ms);
                assert_eq!(got.endpoint, got.last_rx_ms);
            }
        }
        writer.join().unwrap();
        t.write(&region, 9, None);
        assert_eq!(t.read(&region, 9), None);
    }
}
