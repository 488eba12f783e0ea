//! The common layout of RTCP feedback messages (RFC 4585 §6.1).
//!
//! ```text
//! |V=2|P|  FMT  |  PT (205/206) |          length               |
//! |                  SSRC of packet sender                        |
//! |                  SSRC of media source                         |
//! :            Feedback Control Information (FCI)                 :
//! ```

use super::header::{self, HEADER_LEN, RtcpHeader, packet_type};
use crate::{Result, WireError, be, ensure_room};

/// Bytes before the FCI.
pub(crate) const FEEDBACK_HEADER_LEN: usize = HEADER_LEN + 8;

/// A view of any transport-layer or payload-specific feedback message, with
/// setters for the SSRCs an SFU rewrites when it relays feedback.
#[derive(Debug, Clone, Copy)]
pub struct Feedback<T> {
    buf: T,
    fci_end: usize,
}

impl<T: AsRef<[u8]>> Feedback<T> {
    /// Checks that this is an RTPFB or PSFB packet with both SSRCs.
    pub fn new_checked(buf: T) -> Result<Self> {
        let (h, body) = header::body(buf.as_ref())?;
        if h.packet_type != packet_type::RTPFB && h.packet_type != packet_type::PSFB {
            return Err(WireError::WrongType);
        }
        if body.len() < 8 {
            return Err(WireError::Truncated);
        }
        let fci_end = HEADER_LEN + body.len();
        Ok(Feedback { buf, fci_end })
    }
    /// 205 (transport layer) or 206 (payload specific).
    pub fn packet_type(&self) -> u8 {
        self.buf.as_ref()[1]
    }
    /// Feedback message type.
    pub fn fmt(&self) -> u8 {
        self.buf.as_ref()[0] & 0x1f
    }
    /// SSRC of the packet sender.
    pub fn sender_ssrc(&self) -> u32 {
        be::u32_at(self.buf.as_ref(), 4)
    }
    /// SSRC of the media source the feedback is about.
    pub fn media_ssrc(&self) -> u32 {
        be::u32_at(self.buf.as_ref(), 8)
    }
    /// The feedback control information.
    pub fn fci(&self) -> &[u8] {
        &self.buf.as_ref()[FEEDBACK_HEADER_LEN..self.fci_end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Feedback<T> {
    /// Sets the sender SSRC.
    pub fn set_sender_ssrc(&mut self, v: u32) {
        be::put_u32(self.buf.as_mut(), 4, v);
    }
    /// Sets the media source SSRC.
    pub fn set_media_ssrc(&mut self, v: u32) {
        be::put_u32(self.buf.as_mut(), 8, v);
    }
}

/// Checks a packet as feedback of this type and FMT; returns the sender
/// SSRC, media SSRC and FCI.
pub(crate) fn parse(buf: &[u8], pt: u8, fmt: u8) -> Result<(u32, u32, &[u8])> {
    let fb = Feedback::new_checked(buf)?;
    if fb.packet_type() != pt || fb.fmt() != fmt {
        return Err(WireError::WrongType);
    }
    Ok((
        fb.sender_ssrc(),
        fb.media_ssrc(),
        &buf[FEEDBACK_HEADER_LEN..fb.fci_end],
    ))
}

/// Writes the feedback header for a message of `len` bytes.
pub(crate) fn emit_header(
    buf: &mut [u8],
    fmt: u8,
    pt: u8,
    len: usize,
    sender_ssrc: u32,
    media_ssrc: u32,
) -> Result<()> {
    ensure_room(buf, len.max(FEEDBACK_HEADER_LEN))?;
    RtcpHeader::emit(buf, fmt, pt, len)?;
    be::put_u32(buf, 4, sender_ssrc);
    be::put_u32(buf, 8, media_ssrc);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_ssrcs() {
        let mut buf = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        let mut fb = Feedback::new_checked(&mut buf[..]).unwrap();
        assert_eq!((fb.fmt(), fb.sender_ssrc(), fb.media_ssrc()), (1, 1, 2));
        fb.set_media_ssrc(7);
        fb.set_sender_ssrc(8);
        assert_eq!(parse(&buf, 206, 1).unwrap(), (8, 7, &[][..]));
        assert_eq!(parse(&buf, 205, 1).unwrap_err(), WireError::WrongType);
        assert_eq!(
            Feedback::new_checked(&buf[..8]).unwrap_err(),
            WireError::Truncated
        );
    }
}
