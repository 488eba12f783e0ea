//! Building STUN messages in a caller buffer.

use super::attribute::attr;
use super::{HEADER_LEN, INTEGRITY_LEN, MAGIC_COOKIE, address, integrity};
use crate::{Result, WireError, be, ensure_room};
use core::net::SocketAddr;

/// Writes a STUN message attribute by attribute. The header length is kept
/// current, so the message is valid after every call; MESSAGE-INTEGRITY and
/// FINGERPRINT, when wanted, go last in that order.
#[derive(Debug)]
pub struct StunWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> StunWriter<'a> {
    /// Starts a message of this type and transaction id.
    pub fn new(buf: &'a mut [u8], message_type: u16, transaction_id: &[u8; 12]) -> Result<Self> {
        ensure_room(buf, HEADER_LEN)?;
        if message_type & 0xc000 != 0 {
            return Err(WireError::OutOfRange);
        }
        be::put_u16(buf, 0, message_type);
        be::put_u16(buf, 2, 0);
        be::put_u32(buf, 4, MAGIC_COOKIE);
        buf[8..20].copy_from_slice(transaction_id);
        Ok(StunWriter {
            buf,
            len: HEADER_LEN,
        })
    }

    fn transaction_id(&self) -> [u8; 12] {
        let mut id = [0u8; 12];
        id.copy_from_slice(&self.buf[8..20]);
        id
    }

    /// Reserves an attribute of `value_len` bytes and returns its value slot.
    fn reserve(&mut self, kind: u16, value_len: usize) -> Result<&mut [u8]> {
        let vlen = u16::try_from(value_len).map_err(|_| WireError::OutOfRange)?;
        let total = 4 + value_len.next_multiple_of(4);
        ensure_room(self.buf, self.len + total)?;
        if self.len + total - HEADER_LEN > usize::from(u16::MAX) {
            return Err(WireError::OutOfRange);
        }
        let at = self.len;
        be::put_u16(self.buf, at, kind);
        be::put_u16(self.buf, at + 2, vlen);
        self.buf[at + 4 + value_len..at + total].fill(0);
        self.len += total;
        be::put_u16(self.buf, 2, (self.len - HEADER_LEN) as u16);
        Ok(&mut self.buf[at + 4..at + 4 + value_len])
    }

    /// Appends an attribute with this value (padded with zeros).
    pub fn add(&mut self, kind: u16, value: &[u8]) -> Result<()> {
        self.reserve(kind, value.len())?.copy_from_slice(value);
        Ok(())
    }

    /// Appends a 32-bit attribute (e.g. PRIORITY).
    pub fn add_u32(&mut self, kind: u16, v: u32) -> Result<()> {
        self.add(kind, &v.to_be_bytes())
    }

    /// Appends a 64-bit attribute (e.g. ICE-CONTROLLING).
    pub fn add_u64(&mut self, kind: u16, v: u64) -> Result<()> {
        self.add(kind, &v.to_be_bytes())
    }

    /// Appends XOR-MAPPED-ADDRESS.
    pub fn add_xor_mapped_address(&mut self, addr: SocketAddr) -> Result<()> {
        let txid = self.transaction_id();
        let mut v = [0u8; 20];
        let n = address::write_xor_address(addr, &txid, &mut v)?;
        self.add(attr::XOR_MAPPED_ADDRESS, &v[..n])
    }

    /// Appends ERROR-CODE (RFC 8489 §14.8) with a reason phrase.
    pub fn add_error_code(&mut self, code: u16, reason: &str) -> Result<()> {
        if !(300..700).contains(&code) {
            return Err(WireError::OutOfRange);
        }
        let slot = self.reserve(attr::ERROR_CODE, 4 + reason.len())?;
        slot[..2].fill(0);
        slot[2] = (code / 100) as u8;
        slot[3] = (code % 100) as u8;
        slot[4..].copy_from_slice(reason.as_bytes());
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY computed with `key`.
    pub fn add_message_integrity(&mut self, key: &[u8]) -> Result<()> {
        let at = self.len;
        self.reserve(attr::MESSAGE_INTEGRITY, INTEGRITY_LEN)?;
        let tag = integrity::compute(self.buf, at, key);
        self.buf[at + 4..at + 4 + INTEGRITY_LEN].copy_from_slice(&tag);
        Ok(())
    }

    /// Appends FINGERPRINT; nothing may follow it.
    pub fn add_fingerprint(&mut self) -> Result<()> {
        let at = self.len;
        self.reserve(attr::FINGERPRINT, 4)?;
        let fp = integrity::fingerprint(self.buf, at);
        be::put_u32(self.buf, at + 4, fp);
        Ok(())
    }

    /// The message written so far, e.g. to adjust padding bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Length of the message so far.
    pub fn finish(self) -> usize {
        self.len
    }
}
