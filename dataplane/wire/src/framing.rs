//! RFC 4571 framing: RTP, RTCP, STUN and DTLS over a TCP byte stream, each
//! packet preceded by its length as a 16-bit big-endian number. ICE-TCP
//! (RFC 6544 §3) carries every packet of a session this way.
//!
//! [`next_frame`] splits frames off the front of a receive buffer the caller
//! owns; [`write_prefix`] writes the length in front of a packet. Nothing
//! here allocates or keeps state: the caller keeps the unread bytes.

use crate::{Result, WireError, be, ensure_room};

/// Bytes of the length in front of each frame.
pub const PREFIX_LEN: usize = 2;

/// A frame found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The packet (without its length prefix); may be empty.
    pub packet: &'a [u8],
    /// Bytes of the buffer it took, prefix included.
    pub consumed: usize,
}

/// The first frame in `buf`, `Ok(None)` until all its bytes are there.
///
/// A length above `max` is refused with [`WireError::BadLength`] as soon as
/// the prefix is read (before its bytes arrive): a peer cannot make the
/// reader wait for, or buffer, more than `max` bytes. RFC 4571 allows
/// lengths up to 65535; no packet of a WebRTC session comes near that.
pub fn next_frame(buf: &[u8], max: usize) -> Result<Option<Frame<'_>>> {
    if buf.len() < PREFIX_LEN {
        return Ok(None);
    }
    let len = usize::from(be::u16_at(buf, 0));
    if len > max {
        return Err(WireError::BadLength);
    }
    let end = PREFIX_LEN + len;
    Ok((buf.len() >= end).then(|| Frame {
        packet: &buf[PREFIX_LEN..end],
        consumed: end,
    }))
}

/// Writes the prefix of a `len`-byte packet into `out[..2]`.
pub fn write_prefix(len: usize, out: &mut [u8]) -> Result<()> {
    ensure_room(out, PREFIX_LEN)?;
    let len = u16::try_from(len).map_err(|_| WireError::OutOfRange)?;
    be::put_u16(out, 0, len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_as_rfc_4571_lays_them_out() {
        // RFC 4571 §2: LENGTH (16 bits) then the packet; two back to back,
        // the second cut short
        let stream = [0x00, 0x03, b'a', b'b', b'c', 0x00, 0x02, b'x'];
        let f = next_frame(&stream, 1500).unwrap().unwrap();
        assert_eq!((f.packet, f.consumed), (&b"abc"[..], 5));
        assert_eq!(next_frame(&stream[5..], 1500).unwrap(), None);
        assert_eq!(next_frame(&stream[..1], 1500).unwrap(), None);
        // an empty frame is a frame
        let f = next_frame(&[0, 0, 9], 1500).unwrap().unwrap();
        assert_eq!((f.packet.len(), f.consumed), (0, 2));
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_its_bytes_come() {
        assert_eq!(next_frame(&[0xff, 0xff], 1500), Err(WireError::BadLength));
        assert_eq!(next_frame(&[0x05, 0xdd], 1500), Err(WireError::BadLength));
        assert!(next_frame(&[0x05, 0xdc], 1500).unwrap().is_none());
    }

    #[test]
    fn prefixes_round_trip() {
        let mut out = [0u8; 2];
        write_prefix(1200, &mut out).unwrap();
        assert_eq!(out, [0x04, 0xb0]);
        assert_eq!(write_prefix(65_536, &mut out), Err(WireError::OutOfRange));
        assert_eq!(
            write_prefix(1, &mut out[..1]),
            Err(WireError::BufferTooSmall)
        );
    }
}
