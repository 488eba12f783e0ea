//! The client-state block (ABI 1.3): bytes the control plane keeps in the
//! region so that a control plane started after it can carry on — its
//! rooms, participants, ids and the dataplane's state as it built it. The
//! dataplane never reads them; they live as long as the dataplane does and
//! are as private as the region (a sealed memfd handed only to its own user).
//!
//! Two halves of `capacity` bytes behind a 128-byte header. The writer (the
//! current client) fills the half that is not current, stores its length,
//! then publishes it by storing `current = (sequence + 1) << 1 | half` with
//! release; a reader loads `current` with acquire and copies that half.
//!
//! ```text
//! header word 0  current: 0 = nothing saved, else sequence << 1 | half
//! header word 1  length of half 0     word 2  length of half 1
//! ```

use super::region::Region;
use core::sync::atomic::Ordering;

/// Bytes before the two halves.
pub const HEADER: usize = 128;

/// Why a state was not saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("client state of {len} bytes does not fit the region's {capacity}")]
pub struct TooLarge {
    /// Bytes offered.
    pub len: usize,
    /// Bytes a half holds.
    pub capacity: usize,
}

/// The block in a region.
#[derive(Debug, Clone, Copy)]
pub struct ClientState {
    at: usize,
    capacity: usize,
}

impl ClientState {
    /// The block at `at` with halves of `capacity` bytes.
    pub fn new(at: usize, capacity: usize) -> ClientState {
        ClientState { at, capacity }
    }

    /// Bytes of the block.
    pub fn len(capacity: usize) -> usize {
        if capacity == 0 {
            0
        } else {
            HEADER + 2 * capacity
        }
    }

    fn half(&self, h: u64) -> usize {
        self.at + HEADER + h as usize * self.capacity
    }

    /// Saves `bytes` as the current state (one writer at a time).
    pub fn save(&self, region: &Region, bytes: &[u8]) -> Result<(), TooLarge> {
        if bytes.len() > self.capacity {
            return Err(TooLarge {
                len: bytes.len(),
                capacity: self.capacity,
            });
        }
        let current = region.u64_at(self.at).load(Ordering::Acquire);
        let (seq, half) = (current >> 1, if current == 0 { 1 } else { current & 1 });
        let next = 1 - half;
        region.write(self.half(next), bytes);
        region
            .u64_at(self.at + 8 + 8 * next as usize)
            .store(bytes.len() as u64, Ordering::Relaxed);
        region
            .u64_at(self.at)
            .store((seq + 1) << 1 | next, Ordering::Release);
        Ok(())
    }

    /// The current state, if one was saved.
    pub fn load(&self, region: &Region) -> Option<Vec<u8>> {
        if self.capacity == 0 {
            return None;
        }
        let current = region.u64_at(self.at).load(Ordering::Acquire);
        if current == 0 {
            return None;
        }
        let half = current & 1;
        let len = region
            .u64_at(self.at + 8 + 8 * half as usize)
            .load(Ordering::Relaxed) as usize;
        let mut out = vec![0u8; len.min(self.capacity)];
        region.read(self.half(half), &mut out);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_alternate_halves_and_the_last_one_is_loaded() {
        let region = Region::for_test(8192);
        let cs = ClientState::new(4096, 1024);
        assert_eq!(cs.load(&region), None);
        cs.save(&region, b"first").unwrap();
        assert_eq!(cs.load(&region).as_deref(), Some(&b"first"[..]));
        cs.save(&region, &[7; 1024]).unwrap();
        assert_eq!(cs.load(&region).unwrap(), vec![7; 1024]);
        cs.save(&region, b"").unwrap();
        assert_eq!(cs.load(&region).as_deref(), Some(&b""[..]));
        assert_eq!(
            cs.save(&region, &[0; 1025]),
            Err(TooLarge {
                len: 1025,
                capacity: 1024
            })
        );
        assert_eq!(cs.load(&region).as_deref(), Some(&b""[..]));
        assert_eq!(ClientState::new(0, 0).load(&region), None);
    }
}
