//! Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03 §2.2):
//! PSFB with FMT 15 (application layer feedback) and FCI
//! `'R' 'E' 'M' 'B' | num SSRC (8) | exp (6) | mantissa (18) | SSRC…`.

use super::feedback::{self, FEEDBACK_HEADER_LEN};
use super::header::packet_type;
use crate::{Result, WireError, be};

/// FMT of application layer feedback.
pub const FMT: u8 = 15;
const ID: &[u8; 4] = b"REMB";

/// A view of a REMB packet.
#[derive(Debug, Clone, Copy)]
pub struct Remb<'a> {
    sender_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Remb<'a> {
    /// Checks type, FMT, the "REMB" identifier and the SSRC list length.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (sender_ssrc, _, fci) = feedback::parse(buf, packet_type::PSFB, FMT)?;
        if fci.len() < 8 {
            return Err(WireError::Truncated);
        }
        if &fci[..4] != ID {
            return Err(WireError::WrongType);
        }
        if fci.len() < 8 + 4 * fci[4] as usize {
            return Err(WireError::Truncated);
        }
        Ok(Remb { sender_ssrc, fci })
    }
    /// SSRC of the packet sender.
    pub fn sender_ssrc(&self) -> u32 {
        self.sender_ssrc
    }
    /// The estimate in bits per second (saturating at `u64::MAX`).
    pub fn bitrate(&self) -> u64 {
        let exp = u32::from(self.fci[5] >> 2);
        let mantissa = u64::from(be::u24_at(self.fci, 5) & 0x3_ffff);
        mantissa
            .checked_shl(exp)
            .filter(|v| v >> exp == mantissa)
            .unwrap_or(u64::MAX)
    }
    /// The streams the estimate applies to.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let fci = self.fci;
        (0..fci[4] as usize).map(move |i| be::u32_at(fci, 8 + 4 * i))
    }
}

/// A REMB to build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RembRepr<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// Estimate in bits per second; rounded down to 18 significant bits.
    pub bitrate: u64,
    /// Streams it applies to (at most 255).
    pub ssrcs: &'a [u32],
}

impl RembRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        FEEDBACK_HEADER_LEN + 8 + 4 * self.ssrcs.len()
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the packet; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = u8::try_from(self.ssrcs.len()).map_err(|_| WireError::OutOfRange)?;
        let len = self.len();
        feedback::emit_header(buf, FMT, packet_type::PSFB, len, self.sender_ssrc, 0)?;
        let exp = (64 - self.bitrate.leading_zeros()).saturating_sub(18);
        if exp > 63 {
            return Err(WireError::OutOfRange);
        }
        let mantissa = (self.bitrate >> exp) as u32;
        let f = FEEDBACK_HEADER_LEN;
        buf[f..f + 4].copy_from_slice(ID);
        buf[f + 4] = n;
        be::put_u24(buf, f + 5, (exp << 18) | mantissa);
        for (i, s) in self.ssrcs.iter().enumerate() {
            be::put_u32(buf, f + 8 + 4 * i, *s);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remb_encoding() {
        let mut buf = [0u8; 64];
        let n = RembRepr {
            sender_ssrc: 1,
            bitrate: 1_000_000,
            ssrcs: &[7, 8],
        }
        .emit(&mut buf)
        .unwrap();
        let r = Remb::new_checked(&buf[..n]).unwrap();
        // 1e6 needs 20 bits: exponent 2, mantissa 250000
        assert_eq!(buf[12 + 5] >> 2, 2);
        assert_eq!(r.bitrate(), 1_000_000);
        assert_eq!(r.ssrcs().collect::<Vec<_>>(), vec![7, 8]);
        let n = RembRepr {
            sender_ssrc: 1,
            bitrate: 262_143,
            ssrcs: &[],
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(Remb::new_checked(&buf[..n]).unwrap().bitrate(), 262_143);
        buf[12] = b'X';
        assert_eq!(
            Remb::new_checked(&buf[..n]).unwrap_err(),
            WireError::WrongType
        );
    }
}
