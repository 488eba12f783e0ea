//! The replay list of RFC 3711 §3.3.2 as a sliding bitmap.
//!
//! The window covers `size` indices ending at the highest authenticated
//! index. `check` runs before authentication and changes nothing; `accept`
//! runs only after the packet authenticated, so forged packets cannot move
//! the window.

use crate::SrtpError;

/// Largest configurable window, in packets.
pub const MAX_WINDOW: usize = 4096;
/// Window used unless configured otherwise; libsrtp and browsers use 64–1024;
/// video bursts with retransmission reorder more than 64 apart.
pub const DEFAULT_WINDOW: usize = 1024;

const WORDS: usize = MAX_WINDOW / 64;

/// A replay window over 64-bit packet indices.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// Bit `i` set: index `highest - i` was received.
    bits: [u64; WORDS],
    highest: Option<u64>,
    size: u64,
}

impl ReplayWindow {
    /// A window of `size` packets, clamped to 64..=[`MAX_WINDOW`].
    pub fn new(size: usize) -> Self {
        ReplayWindow {
            bits: [0; WORDS],
            highest: None,
            size: size.clamp(64, MAX_WINDOW) as u64,
        }
    }

    /// The highest index accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `index` may be accepted.
    pub fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(high) = self.highest else {
            return Ok(());
        };
        if index > high {
            return Ok(());
        }
        let age = high - index;
        if age >= self.size {
            return Err(SrtpError::TooOld);
        }
        if self.bit(age) {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `index` as received (after `check` and authentication).
    pub fn accept(&mut self, index: u64) {
        match self.highest {
            Some(high) if index <= high => {
                let age = high - index;
                if age < self.size {
                    self.bits[(age / 64) as usize] |= 1 << (age % 64);
                }
            }
            Some(high) => {
                self.shift(index - high);
                self.highest = Some(index);
                self.bits[0] |= 1;
            }
            None => {
                self.highest = Some(index);
                self.bits[0] = 1;
            }
        }
    }

    fn bit(&self, age: u64) -> bool {
        self.bits[(age / 64) as usize] & (1 << (age % 64)) != 0
    }

    /// Moves every bit `by` positions towards older ages.
    fn shift(&mut self, by: u64) {
        let words = (self.size as usize).div_ceil(64);
        if by >= self.size {
            self.bits[..words].fill(0);
            return;
        }
        let (w, b) = ((by / 64) as usize, (by % 64) as u32);
        for i in (0..words).rev() {
            let hi = if i >= w { self.bits[i - w] << b } else { 0 };
            let lo = if b > 0 && i > w {
                self.bits[i - w - 1] >> (64 - b)
            } else {
                0
            };
            self.bits[i] = hi | lo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_new_rejects_replays_and_old() {
        let mut w = ReplayWindow::new(64);
        for i in [10, 12, 11] {
            w.check(i).unwrap();
            w.accept(i);
        }
        assert_eq!(w.check(11), Err(SrtpError::Replayed));
        assert_eq!(w.check(9), Ok(()));
        w.accept(100);
        assert_eq!(w.check(36), Err(SrtpError::TooOld));
        assert_eq!(w.check(37), Ok(()));
        assert_eq!(w.check(100), Err(SrtpError::Replayed));
    }

    #[test]
    fn matches_a_model_over_random_sequences() {
        // compare with a set-based model for a few window sizes
        let mut seed = 0x1234_5678u64;
        for size in [64usize, 100, 1024] {
            let mut w = ReplayWindow::new(size);
            let mut seen = std::collections::BTreeSet::new();
            let mut high = 0u64;
            for _ in 0..20_000 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let jump = (seed >> 33) % 300;
                let idx = if seed & 1 == 0 {
                    high + jump % 70
                } else {
                    high.saturating_sub(jump * 4)
                };
                let want = if seen.is_empty() || idx > high {
                    Ok(())
                } else if high - idx >= size as u64 {
                    Err(SrtpError::TooOld)
                } else if seen.contains(&idx) {
                    Err(SrtpError::Replayed)
                } else {
                    Ok(())
                };
                assert_eq!(w.check(idx), want, "size {size} idx {idx} high {high}");
                if want.is_ok() {
                    w.accept(idx);
                    seen.insert(idx);
                    high = high.max(idx);
                }
            }
        }
    }
}
