//! Full intra request (RFC 5104 §4.3.1): PSFB with FMT 4; the media SSRC
//! field is zero and each FCI entry is `SSRC | seq nr (8) | reserved (24)`.

use super::feedback::{self, FEEDBACK_HEADER_LEN};
use super::header::packet_type;
use crate::{Result, WireError, be};

/// FMT of FIR.
pub const FMT: u8 = 4;

/// One FIR request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirEntry {
    /// The stream that must send a keyframe.
    pub ssrc: u32,
    /// Command sequence number; a repeat with the same number is a retransmission.
    pub seq_nr: u8,
}

/// A view of a FIR packet.
#[derive(Debug, Clone, Copy)]
pub struct Fir<'a> {
    sender_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Fir<'a> {
    /// Checks type, FMT and that the FCI is a whole number of entries.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (sender_ssrc, _, fci) = feedback::parse(buf, packet_type::PSFB, FMT)?;
        if fci.is_empty() || fci.len() % 8 != 0 {
            return Err(WireError::BadLength);
        }
        Ok(Fir { sender_ssrc, fci })
    }
    /// SSRC of the packet sender.
    pub fn sender_ssrc(&self) -> u32 {
        self.sender_ssrc
    }
    /// The requests.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = FirEntry> + 'a {
        self.fci.chunks_exact(8).map(|c| FirEntry {
            ssrc: be::u32_at(c, 0),
            seq_nr: c[4],
        })
    }
}

/// A FIR packet to build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirRepr<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// Requests (at least one).
    pub entries: &'a [FirEntry],
}

impl FirRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        FEEDBACK_HEADER_LEN + 8 * self.entries.len()
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the packet; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.entries.is_empty() {
            return Err(WireError::OutOfRange);
        }
        let len = self.len();
        feedback::emit_header(buf, FMT, packet_type::PSFB, len, self.sender_ssrc, 0)?;
        for (i, e) in self.entries.iter().enumerate() {
            let at = FEEDBACK_HEADER_LEN + 8 * i;
            be::put_u32(buf, at, e.ssrc);
            buf[at + 4] = e.seq_nr;
            buf[at + 5..at + 8].fill(0);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fir_round_trip() {
        let entries = [
            FirEntry { ssrc: 5, seq_nr: 3 },
            FirEntry {
                ssrc: 6,
                seq_nr: 250,
            },
        ];
        let mut buf = [0u8; 32];
        let n = FirRepr {
            sender_ssrc: 1,
            entries: &entries,
        }
        .emit(&mut buf)
        .unwrap();
        let f = Fir::new_checked(&buf[..n]).unwrap();
        assert_eq!(f.entries().collect::<Vec<_>>(), entries);
        assert_eq!(&buf[8..12], &[0; 4]);
        assert_eq!(
            Fir::new_checked(&buf[..n - 8]).unwrap_err(),
            WireError::Truncated
        );
        assert!(
            FirRepr {
                sender_ssrc: 1,
                entries: &[]
            }
            .emit(&mut buf)
            .is_err()
        );
    }
}
