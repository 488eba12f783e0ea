//! Entries of 64-bit words behind a sequence counter, in the shared region:
//! one writer per entry, any number of readers in any process. The writer
//! makes the counter (word 0) odd, stores the other words, makes it even; a
//! reader retries until it sees the same even counter before and after its
//! copy. Used by the endpoint table and the continuity table.

use super::region::Region;
use core::sync::atomic::{Ordering, fence};

/// Stores `words[1..]` into the entry at `at` (`words[0]` is ignored: the
/// counter is the entry's own). Only the entry's one writer calls this.
pub fn write(region: &Region, at: usize, words: &[u64]) {
    let seq = region.u64_at(at);
    let s = seq.load(Ordering::Relaxed);
    seq.store(s.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    for (i, w) in words.iter().enumerate().skip(1) {
        region.u64_at(at + 8 * i).store(*w, Ordering::Relaxed);
    }
    seq.store(s.wrapping_add(2), Ordering::Release);
}

/// Copies a consistent entry into `words[1..]`. Gives up (`false`) if the
/// entry stays mid-write, which only a writer that died inside a write can
/// cause.
pub fn read(region: &Region, at: usize, words: &mut [u64]) -> bool {
    for _ in 0..100_000 {
        let seq = region.u64_at(at);
        let before = seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        for (i, w) in words.iter_mut().enumerate().skip(1) {
            *w = region.u64_at(at + 8 * i).load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) == before {
            return true;
        }
    }
    false
}
