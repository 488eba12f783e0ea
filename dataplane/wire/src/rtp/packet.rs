//! The RTP packet view (RFC 3550 §5.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers             |
//! |  defined by profile           |           length              |
//! |                        header extension                       |
//! ```

use super::extension::{self, ExtensionForm, ExtensionIter};
use super::{FIXED_HEADER_LEN, VERSION};
use crate::{Result, WireError, be};
use core::ops::Range;

/// Checks version, CSRC list and extension block of the RTP header at the
/// front of `b` and returns its length. Unlike [`RtpPacket::new_checked`] it
/// does not look at padding, which SRTP encrypts.
pub fn header_len(b: &[u8]) -> Result<usize> {
    if b.len() < FIXED_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    if b[0] >> 6 != VERSION {
        return Err(WireError::BadVersion);
    }
    let mut header = FIXED_HEADER_LEN + 4 * (b[0] & 0x0f) as usize;
    if b[0] & 0x10 != 0 {
        if b.len() < header + 4 {
            return Err(WireError::Truncated);
        }
        header += 4 + 4 * be::u16_at(b, header + 2) as usize;
    }
    if b.len() < header {
        return Err(WireError::Truncated);
    }
    Ok(header)
}

/// A view of an RTP packet in a buffer. See the module docs for the layout.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> RtpPacket<T> {
    /// Wraps a buffer without checking it; getters may panic on a short one.
    pub fn new_unchecked(buf: T) -> Self {
        RtpPacket { buf }
    }

    /// Wraps a buffer after checking the version and every length the
    /// getters use: CSRC list, extension block and padding.
    pub fn new_checked(buf: T) -> Result<Self> {
        let p = RtpPacket { buf };
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<()> {
        let b = self.buf.as_ref();
        let header = header_len(b)?;
        if self.has_padding() {
            let pad = b[b.len() - 1] as usize;
            if pad == 0 || header + pad > b.len() {
                return Err(WireError::BadLength);
            }
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole buffer.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Version field (always 2 for a checked packet).
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[0] >> 6
    }
    /// P bit: the payload ends with padding.
    pub fn has_padding(&self) -> bool {
        self.buf.as_ref()[0] & 0x20 != 0
    }
    /// X bit: a header extension follows the CSRC list.
    pub fn has_extension(&self) -> bool {
        self.buf.as_ref()[0] & 0x10 != 0
    }
    /// Number of CSRC identifiers.
    pub fn csrc_count(&self) -> u8 {
        self.buf.as_ref()[0] & 0x0f
    }
    /// M bit.
    pub fn marker(&self) -> bool {
        self.buf.as_ref()[1] & 0x80 != 0
    }
    /// Payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        self.buf.as_ref()[1] & 0x7f
    }
    /// Sequence number.
    pub fn sequence_number(&self) -> u16 {
        be::u16_at(self.buf.as_ref(), 2)
    }
    /// RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        be::u32_at(self.buf.as_ref(), 4)
    }
    /// Synchronization source.
    pub fn ssrc(&self) -> u32 {
        be::u32_at(self.buf.as_ref(), 8)
    }
    /// The CSRC identifiers.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        let b = self.buf.as_ref();
        (0..self.csrc_count() as usize).map(move |i| be::u32_at(b, FIXED_HEADER_LEN + 4 * i))
    }

    fn extension_start(&self) -> usize {
        FIXED_HEADER_LEN + 4 * self.csrc_count() as usize
    }

    /// The 16-bit "defined by profile" field of the extension block, if any.
    pub fn extension_profile(&self) -> Option<u16> {
        self.has_extension()
            .then(|| be::u16_at(self.buf.as_ref(), self.extension_start()))
    }

    /// Byte range of the extension elements (after the 4-byte block header).
    fn extension_body(&self) -> Range<usize> {
        if !self.has_extension() {
            return 0..0;
        }
        let at = self.extension_start();
        let words = be::u16_at(self.buf.as_ref(), at + 2) as usize;
        at + 4..at + 4 + 4 * words
    }

    /// The RFC 8285 form of the extension block, if it has one this crate reads.
    pub fn extension_form(&self) -> Option<ExtensionForm> {
        self.extension_profile()
            .and_then(ExtensionForm::from_profile)
    }

    /// Raw bytes of the extension block after its 4-byte header.
    pub fn extension_data(&self) -> &[u8] {
        &self.buf.as_ref()[self.extension_body()]
    }

    /// Iterates over RFC 8285 elements. Stops at the first malformed element.
    pub fn extensions(&self) -> ExtensionIter<'_> {
        match self.extension_form() {
            Some(form) => ExtensionIter::new(form, self.extension_data()),
            None => ExtensionIter::new(ExtensionForm::OneByte, &[]),
        }
    }

    /// The value of the element with this id, if present.
    pub fn extension(&self, id: u8) -> Option<&[u8]> {
        let form = self.extension_form()?;
        let body = self.extension_body();
        let r = extension::find(form, &self.buf.as_ref()[body.clone()], id)?;
        Some(&self.buf.as_ref()[body.start + r.start..body.start + r.end])
    }

    /// Length of the header: fixed part, CSRCs and extension block.
    pub fn header_len(&self) -> usize {
        let ext = self.extension_body();
        if ext.end > 0 {
            ext.end
        } else {
            self.extension_start()
        }
    }

    /// Number of padding bytes at the end (0 without the P bit).
    pub fn padding_len(&self) -> usize {
        if self.has_padding() {
            *self.buf.as_ref().last().unwrap_or(&0) as usize
        } else {
            0
        }
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[self.header_len()..b.len() - self.padding_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<T> {
    /// Sets the M bit.
    pub fn set_marker(&mut self, marker: bool) {
        let b = self.buf.as_mut();
        b[1] = (b[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }
    /// Sets the payload type (7 bits; higher bits are ignored).
    pub fn set_payload_type(&mut self, pt: u8) {
        let b = self.buf.as_mut();
        b[1] = (b[1] & 0x80) | (pt & 0x7f);
    }
    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        be::put_u16(self.buf.as_mut(), 2, seq);
    }
    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        be::put_u32(self.buf.as_mut(), 4, ts);
    }
    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        be::put_u32(self.buf.as_mut(), 8, ssrc);
    }

    /// The value of the element with this id, for rewriting in place.
    pub fn extension_mut(&mut self, id: u8) -> Option<&mut [u8]> {
        let form = self.extension_form()?;
        let body = self.extension_body();
        let r = extension::find(form, &self.buf.as_ref()[body.clone()], id)?;
        Some(&mut self.buf.as_mut()[body.start + r.start..body.start + r.end])
    }

    /// Rewrites an element to a new value of the same length. Returns
    /// `Err(WireError::MissingAttribute)` if absent, `BadLength` if the sizes differ.
    pub fn rewrite_extension(&mut self, id: u8, value: &[u8]) -> Result<()> {
        let slot = self.extension_mut(id).ok_or(WireError::MissingAttribute)?;
        if slot.len() != value.len() {
            return Err(WireError::BadLength);
        }
        slot.copy_from_slice(value);
        Ok(())
    }

    /// The payload (without padding), for in-place work.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, pad) = (self.header_len(), self.padding_len());
        let b = self.buf.as_mut();
        let end = b.len() - pad;
        &mut b[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An RTP packet with a one-byte extension block holding
    // id 1 (len 1, value 0x7f) and id 3 (len 2, 0x1234), padding byte, two CSRCs.
    fn sample() -> Vec<u8> {
        let mut p = vec![
            0x92, 0xe0, 0x12, 0x34, // V=2, X=1, CC=2, M=1, PT=96, seq 0x1234
            0x00, 0x01, 0x00, 0x00, // ts
            0xde, 0xad, 0xbe, 0xef, // ssrc
            0x00, 0x00, 0x00, 0x01, // csrc 1
            0x00, 0x00, 0x00, 0x02, // csrc 2
            0xbe, 0xde, 0x00, 0x02, // one-byte ext, 2 words
            0x10, 0x7f, 0x31, 0x12, 0x34, 0x00, 0x00, 0x00,
        ];
        p.extend_from_slice(b"payload");
        p
    }

    #[test]
    fn parses_fields_and_extensions() {
        let buf = sample();
        let p = RtpPacket::new_checked(&buf[..]).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0x10000);
        assert_eq!(p.ssrc(), 0xdeadbeef);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(p.extension_profile(), Some(0xbede));
        assert_eq!(p.extension(1), Some(&[0x7f][..]));
        assert_eq!(p.extension(3), Some(&[0x12, 0x34][..]));
        assert_eq!(p.extension(2), None);
        assert_eq!(p.header_len(), 32);
        assert_eq!(p.payload(), b"payload");
    }

    #[test]
    fn rewrites_in_place() {
        let mut buf = sample();
        let mut p = RtpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_sequence_number(7);
        p.set_timestamp(9);
        p.set_ssrc(11);
        p.set_marker(false);
        p.set_payload_type(100);
        p.rewrite_extension(3, &[0xab, 0xcd]).unwrap();
        assert_eq!(p.rewrite_extension(3, &[1]), Err(WireError::BadLength));
        assert_eq!(
            p.rewrite_extension(9, &[1]),
            Err(WireError::MissingAttribute)
        );
        let p = RtpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.sequence_number(), p.timestamp(), p.ssrc()), (7, 9, 11));
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 100);
        assert_eq!(p.extension(3), Some(&[0xab, 0xcd][..]));
    }

    #[test]
    fn padding_is_stripped_and_checked() {
        let mut buf = vec![0xa0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 3];
        let p = RtpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), b"x");
        *buf.last_mut().unwrap() = 0;
        assert_eq!(
            RtpPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::BadLength
        );
        *buf.last_mut().unwrap() = 5;
        assert_eq!(
            RtpPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::BadLength
        );
    }

    #[test]
    fn rejects_truncations() {
        let buf = sample();
        for len in 0..32 {
            assert!(RtpPacket::new_checked(&buf[..len]).is_err(), "len {len}");
        }
        let mut v1 = buf.clone();
        v1[0] = 0x52;
        assert_eq!(
            RtpPacket::new_checked(&v1[..]).unwrap_err(),
            WireError::BadVersion
        );
    }
}
