//! Generic NACK (RFC 4585 §6.2.1): RTPFB with FMT 1; each FCI entry is a
//! packet id `PID` and a bitmask `BLP` of the 16 sequence numbers after it.

use super::feedback::{self, FEEDBACK_HEADER_LEN};
use super::header::packet_type;
use crate::{Result, WireError, be};

/// FMT of generic NACK.
pub const FMT: u8 = 1;

/// One FCI entry: a lost packet and a bitmask of losses following it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NackPair {
    /// Sequence number of a lost packet.
    pub pid: u16,
    /// Bit i set: packet `pid + i + 1` is lost too.
    pub blp: u16,
}

impl NackPair {
    /// The sequence numbers this entry reports lost, in order.
    pub fn lost(self) -> impl Iterator<Item = u16> {
        core::iter::once(self.pid).chain(
            (0..16u16)
                .filter(move |i| self.blp & (1 << i) != 0)
                .map(move |i| self.pid.wrapping_add(i + 1)),
        )
    }

    /// Packs a sorted run of lost sequence numbers into as few entries as
    /// possible, writing them to `out`; returns how many were written and how
    /// many sequence numbers were consumed (fewer when `out` fills).
    pub fn pack(lost: &[u16], out: &mut [NackPair]) -> (usize, usize) {
        let (mut n, mut used) = (0, 0);
        while used < lost.len() && n < out.len() {
            let pid = lost[used];
            let mut blp = 0u16;
            used += 1;
            while let Some(&s) = lost.get(used) {
                let d = s.wrapping_sub(pid);
                if d == 0 || d > 16 {
                    break;
                }
                blp |= 1 << (d - 1);
                used += 1;
            }
            out[n] = NackPair { pid, blp };
            n += 1;
        }
        (n, used)
    }
}

/// A view of a generic NACK.
#[derive(Debug, Clone, Copy)]
pub struct Nack<'a> {
    sender_ssrc: u32,
    media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    /// Checks type, FMT and that the FCI is a whole number of entries.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (sender_ssrc, media_ssrc, fci) = feedback::parse(buf, packet_type::RTPFB, FMT)?;
        if fci.is_empty() || fci.len() % 4 != 0 {
            return Err(WireError::BadLength);
        }
        Ok(Nack {
            sender_ssrc,
            media_ssrc,
            fci,
        })
    }
    /// SSRC of the packet sender.
    pub fn sender_ssrc(&self) -> u32 {
        self.sender_ssrc
    }
    /// The stream with losses.
    pub fn media_ssrc(&self) -> u32 {
        self.media_ssrc
    }
    /// The FCI entries.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = NackPair> + 'a {
        self.fci.chunks_exact(4).map(|c| NackPair {
            pid: be::u16_at(c, 0),
            blp: be::u16_at(c, 2),
        })
    }
    /// Every sequence number reported lost.
    pub fn lost(&self) -> impl Iterator<Item = u16> + 'a {
        self.pairs().flat_map(NackPair::lost)
    }
}

/// A NACK to build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NackRepr<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// The stream with losses.
    pub media_ssrc: u32,
    /// FCI entries (at least one).
    pub pairs: &'a [NackPair],
}

impl NackRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        FEEDBACK_HEADER_LEN + 4 * self.pairs.len()
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the packet; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.pairs.is_empty() {
            return Err(WireError::OutOfRange);
        }
        let len = self.len();
        feedback::emit_header(
            buf,
            FMT,
            packet_type::RTPFB,
            len,
            self.sender_ssrc,
            self.media_ssrc,
        )?;
        for (i, p) in self.pairs.iter().enumerate() {
            be::put_u16(buf, FEEDBACK_HEADER_LEN + 4 * i, p.pid);
            be::put_u16(buf, FEEDBACK_HEADER_LEN + 4 * i + 2, p.blp);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_expand_across_wrap() {
        let lost = [65534, 65535, 0, 5, 40, 41];
        let mut pairs = [NackPair::default(); 8];
        let (n, used) = NackPair::pack(&lost, &mut pairs);
        assert_eq!((n, used), (2, 6));
        assert_eq!(
            pairs[0],
            NackPair {
                pid: 65534,
                blp: 0b0100_0011
            }
        );
        let mut buf = [0u8; 64];
        let len = NackRepr {
            sender_ssrc: 1,
            media_ssrc: 2,
            pairs: &pairs[..n],
        }
        .emit(&mut buf)
        .unwrap();
        let nack = Nack::new_checked(&buf[..len]).unwrap();
        assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
        assert_eq!(NackPair::pack(&lost, &mut pairs[..1]), (1, 4));
    }

    #[test]
    fn bad_fci_length() {
        let buf = [0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0];
        assert!(Nack::new_checked(&buf).is_ok());
        let buf = [0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(Nack::new_checked(&buf).unwrap_err(), WireError::BadLength);
    }
}
