//! MESSAGE-INTEGRITY (RFC 8489 §14.5) and FINGERPRINT (§14.7) computation.
//!
//! Both cover the message up to the attribute, with the header's length
//! field set as if the message ended right after the attribute.

use super::{FINGERPRINT_XOR, HEADER_LEN, INTEGRITY_LEN};
use crate::{Result, WireError};
use hmac::{KeyInit, Mac};

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// The header with its length patched to end `attr_len` bytes after `offset`.
fn patched_header(msg: &[u8], offset: usize, attr_len: usize) -> [u8; 4] {
    let len = (offset + 4 + attr_len - HEADER_LEN) as u16;
    let l = len.to_be_bytes();
    [msg[0], msg[1], l[0], l[1]]
}

fn mac(msg: &[u8], offset: usize, key: &[u8]) -> HmacSha1 {
    let mut mac = match HmacSha1::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is not reachable.
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(&patched_header(msg, offset, INTEGRITY_LEN));
    mac.update(&msg[4..offset]);
    mac
}

/// HMAC-SHA1 for a MESSAGE-INTEGRITY attribute placed at `offset`.
pub(crate) fn compute(msg: &[u8], offset: usize, key: &[u8]) -> [u8; INTEGRITY_LEN] {
    let mut out = [0u8; INTEGRITY_LEN];
    out.copy_from_slice(&mac(msg, offset, key).finalize().into_bytes());
    out
}

/// Checks a MESSAGE-INTEGRITY value in constant time.
pub(crate) fn verify(msg: &[u8], offset: usize, key: &[u8], tag: &[u8]) -> Result<()> {
    mac(msg, offset, key)
        .verify_slice(tag)
        .map_err(|_| WireError::IntegrityMismatch)
}

/// FINGERPRINT value for an attribute placed at `offset`.
pub(crate) fn fingerprint(msg: &[u8], offset: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&patched_header(msg, offset, 4));
    h.update(&msg[4..offset]);
    h.finalize() ^ FINGERPRINT_XOR
}
