//! STUN attributes: type-length-value, values padded to 32 bits (RFC 8489 §14).

use crate::be;

/// Attribute types used by ICE (RFC 8489 §18.3, RFC 8445 §16.1).
pub mod attr {
    /// MAPPED-ADDRESS.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES.
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000a;
    /// REALM.
    pub const REALM: u16 = 0x0014;
    /// NONCE.
    pub const NONCE: u16 = 0x0015;
    /// MESSAGE-INTEGRITY-SHA256.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001c;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (ICE).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (ICE).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE.
    pub const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED.
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING.
    pub const ICE_CONTROLLING: u16 = 0x802a;
    /// GOOG-NETWORK-INFO (Chromium).
    pub const GOOG_NETWORK_INFO: u16 = 0xc057;

    /// Comprehension-required attributes are 0x0000–0x7FFF (RFC 8489 §14).
    pub fn comprehension_required(kind: u16) -> bool {
        kind < 0x8000
    }
}

/// One attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// Attribute type.
    pub kind: u16,
    /// Value without padding.
    pub value: &'a [u8],
    /// Offset of the attribute header from the start of the message.
    pub offset: usize,
}

/// Iterator over the attributes of a checked message.
#[derive(Debug, Clone)]
pub struct AttributeIter<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> AttributeIter<'a> {
    pub(crate) fn new(msg: &'a [u8]) -> Self {
        AttributeIter {
            msg,
            pos: super::HEADER_LEN,
        }
    }
}

impl<'a> Iterator for AttributeIter<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let (kind, len) = (
            be::u16_at(self.msg.get(self.pos..self.pos + 4)?, 0),
            be::u16_at(self.msg.get(self.pos..self.pos + 4)?, 2) as usize,
        );
        let value = self.msg.get(self.pos + 4..self.pos + 4 + len)?;
        let offset = self.pos;
        self.pos += 4 + len.next_multiple_of(4);
        Some(Attribute {
            kind,
            value,
            offset,
        })
    }
}
