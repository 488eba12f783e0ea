//! The STUN message view (RFC 8489 §5).
//!
//! ```text
//! |0 0|     STUN Message Type     |         Message Length        |
//! |                         Magic Cookie                          |
//! |                     Transaction ID (96 bits)                  |
//! ```

use super::attribute::{Attribute, AttributeIter, attr};
use super::{HEADER_LEN, MAGIC_COOKIE, integrity};
use crate::{Result, WireError, be};

/// STUN methods.
pub mod method {
    /// Binding (RFC 8489 §18.2).
    pub const BINDING: u16 = 0x001;
}

/// The class of a message (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// Request.
    Request,
    /// Indication.
    Indication,
    /// Success response.
    Success,
    /// Error response.
    Error,
}

impl MessageClass {
    /// Splits a message type into class and method.
    pub fn split(message_type: u16) -> (MessageClass, u16) {
        let class = match ((message_type >> 7) & 2) | ((message_type >> 4) & 1) {
            0 => MessageClass::Request,
            1 => MessageClass::Indication,
            2 => MessageClass::Success,
            _ => MessageClass::Error,
        };
        let method = (message_type & 0x000f)
            | ((message_type >> 1) & 0x0070)
            | ((message_type >> 2) & 0x0f80);
        (class, method)
    }

    /// Joins class and a 12-bit method into a message type.
    pub fn message_type(self, method: u16) -> u16 {
        let c = match self {
            MessageClass::Request => 0,
            MessageClass::Indication => 1,
            MessageClass::Success => 2,
            MessageClass::Error => 3,
        };
        (method & 0x000f)
            | ((method & 0x0070) << 1)
            | ((method & 0x0f80) << 2)
            | ((c & 1) << 4)
            | ((c & 2) << 7)
    }
}

/// A checked view of one STUN message.
#[derive(Debug, Clone, Copy)]
pub struct StunMessage<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> StunMessage<T> {
    /// Checks the header (leading zero bits, magic cookie, length a multiple
    /// of 4 matching the buffer) and that every attribute fits.
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] & 0xc0 != 0 || be::u32_at(b, 4) != MAGIC_COOKIE {
            return Err(WireError::WrongType);
        }
        let len = be::u16_at(b, 2) as usize;
        if !len.is_multiple_of(4) || HEADER_LEN + len != b.len() {
            return Err(WireError::BadLength);
        }
        let mut pos = HEADER_LEN;
        while pos < b.len() {
            if b.len() < pos + 4 {
                return Err(WireError::Truncated);
            }
            let alen = be::u16_at(b, pos + 2) as usize;
            pos += 4 + alen.next_multiple_of(4);
            if pos > b.len() {
                return Err(WireError::Truncated);
            }
        }
        Ok(StunMessage { buf })
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }
    /// The 14-bit message type.
    pub fn message_type(&self) -> u16 {
        be::u16_at(self.buf.as_ref(), 0)
    }
    /// Class of the message.
    pub fn class(&self) -> MessageClass {
        MessageClass::split(self.message_type()).0
    }
    /// Method of the message.
    pub fn method(&self) -> u16 {
        MessageClass::split(self.message_type()).1
    }
    /// The 96-bit transaction id.
    pub fn transaction_id(&self) -> [u8; 12] {
        let mut id = [0u8; 12];
        id.copy_from_slice(&self.buf.as_ref()[8..20]);
        id
    }
    /// Every attribute, in order.
    pub fn attributes(&self) -> AttributeIter<'_> {
        AttributeIter::new(self.buf.as_ref())
    }
    /// The first attribute of this type.
    pub fn attribute(&self, kind: u16) -> Option<Attribute<'_>> {
        self.attributes().find(|a| a.kind == kind)
    }
    /// USERNAME as text.
    pub fn username(&self) -> Option<&str> {
        core::str::from_utf8(self.attribute(attr::USERNAME)?.value).ok()
    }

    /// Verifies MESSAGE-INTEGRITY with `key` (for ICE, the password of the
    /// receiving agent). `MissingAttribute` if absent, `IntegrityMismatch`
    /// when wrong. Attributes after it other than FINGERPRINT are ignored,
    /// as RFC 8489 §14.5 requires of the receiver.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<()> {
        let mi = self
            .attribute(attr::MESSAGE_INTEGRITY)
            .ok_or(WireError::MissingAttribute)?;
        if mi.value.len() != super::INTEGRITY_LEN {
            return Err(WireError::BadLength);
        }
        integrity::verify(self.buf.as_ref(), mi.offset, key, mi.value)
    }

    /// Verifies FINGERPRINT, which must be the last attribute.
    pub fn verify_fingerprint(&self) -> Result<()> {
        let fp = self
            .attributes()
            .last()
            .filter(|a| a.kind == attr::FINGERPRINT);
        let fp = fp.ok_or(WireError::MissingAttribute)?;
        if fp.value.len() != 4 {
            return Err(WireError::BadLength);
        }
        let want = integrity::fingerprint(self.buf.as_ref(), fp.offset);
        if be::u32_at(fp.value, 0) == want {
            Ok(())
        } else {
            Err(WireError::FingerprintMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types() {
        assert_eq!(
            MessageClass::split(0x0001),
            (MessageClass::Request, method::BINDING)
        );
        assert_eq!(
            MessageClass::split(0x0101),
            (MessageClass::Success, method::BINDING)
        );
        assert_eq!(
            MessageClass::split(0x0111),
            (MessageClass::Error, method::BINDING)
        );
        assert_eq!(
            MessageClass::split(0x0011),
            (MessageClass::Indication, method::BINDING)
        );
        for m in [1u16, 0x3, 0xfff, 0x80] {
            for c in [
                MessageClass::Request,
                MessageClass::Success,
                MessageClass::Error,
            ] {
                assert_eq!(MessageClass::split(c.message_type(m)), (c, m));
            }
        }
    }

    #[test]
    fn header_checks() {
        let mut m = [0u8; 24];
        m[..8].copy_from_slice(&[0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42]);
        m[20..].copy_from_slice(&[0x80, 0x22, 0, 0]);
        assert!(StunMessage::new_checked(&m[..]).is_ok());
        assert_eq!(
            StunMessage::new_checked(&m[..23]).unwrap_err(),
            WireError::BadLength
        );
        m[22..24].copy_from_slice(&[0, 4]);
        assert_eq!(
            StunMessage::new_checked(&m[..]).unwrap_err(),
            WireError::Truncated
        );
        m[4] = 0;
        assert_eq!(
            StunMessage::new_checked(&m[..]).unwrap_err(),
            WireError::WrongType
        );
    }
}
