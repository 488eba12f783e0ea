//! The header every RTCP packet starts with (RFC 3550 §6.4.1).
//!
//! ```text
//!  0                   1                   2                   3
//! |V=2|P| count/FMT |      PT       |             length            |
//! ```
//! `length` counts 32-bit words minus one, header included.

use crate::{Result, WireError, be, ensure_room};

/// Size of the common header.
pub const HEADER_LEN: usize = 4;

/// RTCP packet type numbers.
pub mod packet_type {
    /// Sender report (RFC 3550).
    pub const SR: u8 = 200;
    /// Receiver report (RFC 3550).
    pub const RR: u8 = 201;
    /// Source description (RFC 3550).
    pub const SDES: u8 = 202;
    /// Goodbye (RFC 3550).
    pub const BYE: u8 = 203;
    /// Application-defined (RFC 3550).
    pub const APP: u8 = 204;
    /// Transport-layer feedback (RFC 4585): NACK, transport-cc.
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback (RFC 4585): PLI, FIR, REMB.
    pub const PSFB: u8 = 206;
}

/// The common header fields of one RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// P bit: padding at the end of this packet.
    pub padding: bool,
    /// Reception report count, source count, subtype or FMT (5 bits).
    pub count: u8,
    /// Packet type.
    pub packet_type: u8,
    /// Length of the packet in bytes, header included (multiple of 4).
    pub len: usize,
}

impl RtcpHeader {
    /// Reads and checks the header at the front of `buf`: version 2, the
    /// declared length inside `buf`, and padding inside the packet.
    pub fn parse(buf: &[u8]) -> Result<RtcpHeader> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if buf[0] >> 6 != 2 {
            return Err(WireError::BadVersion);
        }
        let len = 4 * (be::u16_at(buf, 2) as usize + 1);
        if len > buf.len() {
            return Err(WireError::Truncated);
        }
        let padding = buf[0] & 0x20 != 0;
        if padding {
            let pad = buf[len - 1] as usize;
            if pad == 0 || pad > len - HEADER_LEN {
                return Err(WireError::BadLength);
            }
        }
        Ok(RtcpHeader {
            padding,
            count: buf[0] & 0x1f,
            packet_type: buf[1],
            len,
        })
    }

    /// Number of padding bytes at the end of `packet` (this header's packet).
    pub(crate) fn padding_len(&self, packet: &[u8]) -> usize {
        if self.padding {
            packet[self.len - 1] as usize
        } else {
            0
        }
    }

    /// Writes a header for a packet of `len` bytes (a multiple of 4, ≥ 4).
    pub fn emit(buf: &mut [u8], count: u8, packet_type: u8, len: usize) -> Result<()> {
        ensure_room(buf, HEADER_LEN)?;
        if count > 31 || len < HEADER_LEN || !len.is_multiple_of(4) || len > 4 * 65536 {
            return Err(WireError::OutOfRange);
        }
        buf[0] = 0x80 | count;
        buf[1] = packet_type;
        be::put_u16(buf, 2, (len / 4 - 1) as u16);
        Ok(())
    }
}

/// Reads the body of a checked packet: the bytes after the header, without padding.
pub(crate) fn body(packet: &[u8]) -> Result<(RtcpHeader, &[u8])> {
    let h = RtcpHeader::parse(packet)?;
    let end = h.len - h.padding_len(packet);
    Ok((h, &packet[HEADER_LEN..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        assert_eq!(RtcpHeader::parse(&[0x81, 201, 0, 0]).unwrap().len, 4);
        assert_eq!(
            RtcpHeader::parse(&[0x81, 201, 0, 1]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            RtcpHeader::parse(&[0x41, 201, 0, 0]),
            Err(WireError::BadVersion)
        );
        assert_eq!(
            RtcpHeader::parse(&[0xa1, 201, 0, 0]),
            Err(WireError::BadLength)
        );
        assert_eq!(
            RtcpHeader::parse(&[0xa1, 201, 0, 1, 0, 0, 0, 5]),
            Err(WireError::BadLength)
        );
        let h = RtcpHeader::parse(&[0xa1, 201, 0, 1, 0, 0, 0, 4]).unwrap();
        assert!(h.padding);
        assert_eq!(
            RtcpHeader::emit(&mut [0; 4], 32, 200, 8),
            Err(WireError::OutOfRange)
        );
    }
}
