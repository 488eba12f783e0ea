//! Goodbye (RFC 3550 §6.6): header (PT=203, count = sources), SSRCs, then an
//! optional reason (length byte + text), padded to 32 bits.

use super::header::{self, HEADER_LEN, RtcpHeader, packet_type};
use crate::{Result, WireError, be, ensure_room};

/// A view of a BYE packet.
#[derive(Debug, Clone, Copy)]
pub struct Bye<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> Bye<'a> {
    /// Checks the packet type, the source list and the reason length.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (h, body) = header::body(buf)?;
        if h.packet_type != packet_type::BYE {
            return Err(WireError::WrongType);
        }
        let count = h.count as usize;
        if body.len() < 4 * count {
            return Err(WireError::Truncated);
        }
        if let Some(&n) = body.get(4 * count)
            && body.len() < 4 * count + 1 + n as usize
        {
            return Err(WireError::Truncated);
        }
        Ok(Bye { body, count })
    }
    /// The sources leaving.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let body = self.body;
        (0..self.count).map(move |i| be::u32_at(body, 4 * i))
    }
    /// The reason for leaving, if given.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let at = 4 * self.count;
        let n = *self.body.get(at)? as usize;
        (n > 0).then(|| &self.body[at + 1..at + 1 + n])
    }
}

/// A BYE packet to build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByeRepr<'a> {
    /// Sources leaving (at most 31).
    pub ssrcs: &'a [u32],
    /// Reason text (at most 255 bytes; empty for none).
    pub reason: &'a [u8],
}

impl ByeRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        let reason = if self.reason.is_empty() {
            0
        } else {
            1 + self.reason.len()
        };
        HEADER_LEN + (4 * self.ssrcs.len() + reason).next_multiple_of(4)
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the packet; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.len();
        ensure_room(buf, len)?;
        let count = u8::try_from(self.ssrcs.len()).map_err(|_| WireError::OutOfRange)?;
        let reason_len = u8::try_from(self.reason.len()).map_err(|_| WireError::OutOfRange)?;
        RtcpHeader::emit(buf, count, packet_type::BYE, len)?;
        let mut at = HEADER_LEN;
        for s in self.ssrcs {
            be::put_u32(buf, at, *s);
            at += 4;
        }
        if reason_len > 0 {
            buf[at] = reason_len;
            buf[at + 1..at + 1 + self.reason.len()].copy_from_slice(self.reason);
            at += 1 + self.reason.len();
        }
        buf[at..len].fill(0);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bye_with_reason() {
        let mut buf = [0u8; 32];
        let n = ByeRepr {
            ssrcs: &[1, 2],
            reason: b"done",
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(n, 4 + 8 + 8);
        let b = Bye::new_checked(&buf[..n]).unwrap();
        assert_eq!(b.ssrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(b.reason(), Some(&b"done"[..]));
        let n = ByeRepr {
            ssrcs: &[3],
            reason: b"",
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(Bye::new_checked(&buf[..n]).unwrap().reason(), None);
    }
}
