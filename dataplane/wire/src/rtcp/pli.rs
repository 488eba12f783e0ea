//! Picture loss indication (RFC 4585 §6.3.1): PSFB with FMT 1 and no FCI.

use super::feedback::{self, FEEDBACK_HEADER_LEN};
use super::header::packet_type;
use crate::Result;

/// FMT of PLI.
pub const FMT: u8 = 1;

/// A PLI to build or the result of parsing one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PliRepr {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the stream that needs a keyframe.
    pub media_ssrc: u32,
}

impl PliRepr {
    /// Parses a PLI packet.
    pub fn parse(buf: &[u8]) -> Result<PliRepr> {
        let (sender_ssrc, media_ssrc, _) = feedback::parse(buf, packet_type::PSFB, FMT)?;
        Ok(PliRepr {
            sender_ssrc,
            media_ssrc,
        })
    }
    /// Bytes `emit` writes.
    pub const LEN: usize = FEEDBACK_HEADER_LEN;
    /// Writes the packet; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        feedback::emit_header(
            buf,
            FMT,
            packet_type::PSFB,
            Self::LEN,
            self.sender_ssrc,
            self.media_ssrc,
        )?;
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pli_bytes() {
        let mut buf = [0u8; 12];
        PliRepr {
            sender_ssrc: 1,
            media_ssrc: 0xabcd,
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(buf, [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0xab, 0xcd]);
        assert_eq!(PliRepr::parse(&buf).unwrap().media_ssrc, 0xabcd);
    }
}
