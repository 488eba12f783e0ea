//! Building RTP headers (RFC 3550 §5.1) with RFC 8285 extension blocks.

use super::extension::{Extension, ExtensionForm};
use super::{FIXED_HEADER_LEN, VERSION};
use crate::{Result, WireError, be, ensure_room};

/// The fields of an RTP header, for writing one into a buffer.
///
/// The extension form is chosen by [`RtpHeader::emit`]: one-byte when every
/// element fits it (RFC 8285 §4.2), two-byte otherwise (§4.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// M bit.
    pub marker: bool,
    /// Payload type (0–127).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrcs: &'a [u32],
    /// Header extension elements, written in this order.
    pub extensions: &'a [Extension<'a>],
}

impl RtpHeader<'_> {
    /// The extension form `emit` will use, or `None` without extensions.
    pub fn extension_form(&self) -> Option<ExtensionForm> {
        if self.extensions.is_empty() {
            return None;
        }
        let fits_one = self.extensions.iter().all(|e| {
            ExtensionForm::OneByte
                .element_len(e.id, e.data.len())
                .is_some()
        });
        Some(if fits_one {
            ExtensionForm::OneByte
        } else {
            ExtensionForm::TwoByte
        })
    }

    /// Bytes `emit` writes, or an error when a field cannot be encoded.
    pub fn len(&self) -> Result<usize> {
        if self.csrcs.len() > 15 || self.payload_type > 127 {
            return Err(WireError::OutOfRange);
        }
        let mut len = FIXED_HEADER_LEN + 4 * self.csrcs.len();
        if let Some(form) = self.extension_form() {
            let mut body = 0;
            for e in self.extensions {
                body += form
                    .element_len(e.id, e.data.len())
                    .ok_or(WireError::OutOfRange)?;
            }
            len += 4 + body.next_multiple_of(4);
        }
        Ok(len)
    }

    /// Always false: an RTP header has at least its fixed part.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header to the front of `buf`; returns its length. The
    /// payload goes right after it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.len()?;
        ensure_room(buf, len)?;
        let form = self.extension_form();
        buf[0] = (VERSION << 6) | (u8::from(form.is_some()) << 4) | self.csrcs.len() as u8;
        buf[1] = (u8::from(self.marker) << 7) | self.payload_type;
        be::put_u16(buf, 2, self.sequence_number);
        be::put_u32(buf, 4, self.timestamp);
        be::put_u32(buf, 8, self.ssrc);
        let mut at = FIXED_HEADER_LEN;
        for &c in self.csrcs {
            be::put_u32(buf, at, c);
            at += 4;
        }
        if let Some(form) = form {
            be::put_u16(buf, at, form.profile());
            be::put_u16(buf, at + 2, ((len - at - 4) / 4) as u16);
            at += 4;
            for e in self.extensions {
                match form {
                    ExtensionForm::OneByte => {
                        buf[at] = (e.id << 4) | (e.data.len() as u8 - 1);
                        at += 1;
                    }
                    ExtensionForm::TwoByte => {
                        buf[at] = e.id;
                        buf[at + 1] = e.data.len() as u8;
                        at += 2;
                    }
                }
                buf[at..at + e.data.len()].copy_from_slice(e.data);
                at += e.data.len();
            }
            buf[at..len].fill(0);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::super::RtpPacket;
    use super::*;

    #[test]
    fn one_byte_form_when_everything_fits() {
        let ext = [
            Extension { id: 1, data: b"0" },
            Extension {
                id: 4,
                data: &[0xaa, 0xbb],
            },
        ];
        let h = RtpHeader {
            marker: true,
            payload_type: 111,
            sequence_number: 9,
            timestamp: 0x01020304,
            ssrc: 0xcafe,
            csrcs: &[5],
            extensions: &ext,
        };
        let mut buf = [0u8; 64];
        let n = h.emit(&mut buf).unwrap();
        assert_eq!(n, 12 + 4 + 4 + 8);
        let p = RtpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.extension_profile(), Some(0xbede));
        assert_eq!(p.extension(1), Some(&b"0"[..]));
        assert_eq!(p.extension(4), Some(&[0xaa, 0xbb][..]));
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![5]);
        assert!(p.marker());
        assert_eq!(p.payload_type(), 111);
    }

    #[test]
    fn two_byte_form_for_large_ids_or_empty_values() {
        let ext = [
            Extension { id: 20, data: b"" },
            Extension {
                id: 2,
                data: &[1; 17],
            },
        ];
        let h = RtpHeader {
            extensions: &ext,
            ..Default::default()
        };
        let mut buf = [0u8; 64];
        let n = h.emit(&mut buf).unwrap();
        let p = RtpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.extension_form(), Some(ExtensionForm::TwoByte));
        assert_eq!(p.extension(20), Some(&[][..]));
        assert_eq!(p.extension(2), Some(&[1; 17][..]));
    }

    #[test]
    fn errors() {
        let h = RtpHeader {
            payload_type: 200,
            ..Default::default()
        };
        assert_eq!(h.emit(&mut [0; 64]), Err(WireError::OutOfRange));
        let h = RtpHeader::default();
        assert_eq!(h.emit(&mut [0; 11]), Err(WireError::BufferTooSmall));
        let ext = [Extension { id: 0, data: b"x" }];
        let h = RtpHeader {
            extensions: &ext,
            ..Default::default()
        };
        assert_eq!(h.emit(&mut [0; 64]), Err(WireError::OutOfRange));
    }
}
