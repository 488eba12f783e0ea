//! Application-defined packet (RFC 3550 §6.7): header (PT=204, count =
//! subtype), SSRC, four-character name, application data (32-bit multiple).

use super::header::{self, HEADER_LEN, RtcpHeader, packet_type};
use crate::{Result, WireError, be, ensure_room};

/// A view of an APP packet.
#[derive(Debug, Clone, Copy)]
pub struct App<'a> {
    body: &'a [u8],
    subtype: u8,
}

impl<'a> App<'a> {
    /// Checks the packet type and the fixed fields.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (h, body) = header::body(buf)?;
        if h.packet_type != packet_type::APP {
            return Err(WireError::WrongType);
        }
        if body.len() < 8 {
            return Err(WireError::Truncated);
        }
        Ok(App {
            body,
            subtype: h.count,
        })
    }
    /// Subtype (5 bits).
    pub fn subtype(&self) -> u8 {
        self.subtype
    }
    /// SSRC of the sender.
    pub fn ssrc(&self) -> u32 {
        be::u32_at(self.body, 0)
    }
    /// The four-character name.
    pub fn name(&self) -> [u8; 4] {
        [self.body[4], self.body[5], self.body[6], self.body[7]]
    }
    /// Application data.
    pub fn data(&self) -> &'a [u8] {
        &self.body[8..]
    }
}

/// An APP packet to build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppRepr<'a> {
    /// Subtype (0–31).
    pub subtype: u8,
    /// SSRC of the sender.
    pub ssrc: u32,
    /// Four-character name.
    pub name: [u8; 4],
    /// Data; its length must be a multiple of 4.
    pub data: &'a [u8],
}

impl AppRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        HEADER_LEN + 8 + self.data.len()
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the packet; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.data.len().is_multiple_of(4) {
            return Err(WireError::BadLength);
        }
        let len = self.len();
        ensure_room(buf, len)?;
        RtcpHeader::emit(buf, self.subtype, packet_type::APP, len)?;
        be::put_u32(buf, 4, self.ssrc);
        buf[8..12].copy_from_slice(&self.name);
        buf[12..len].copy_from_slice(self.data);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_round_trip() {
        let mut buf = [0u8; 32];
        let r = AppRepr {
            subtype: 3,
            ssrc: 9,
            name: *b"SWYD",
            data: &[1, 2, 3, 4],
        };
        let n = r.emit(&mut buf).unwrap();
        let a = App::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            (a.subtype(), a.ssrc(), a.name(), a.data()),
            (3, 9, *b"SWYD", &[1, 2, 3, 4][..])
        );
        assert_eq!(
            AppRepr { data: &[1], ..r }.emit(&mut buf),
            Err(WireError::BadLength)
        );
    }
}
