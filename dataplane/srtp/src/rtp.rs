//! SRTP packet transforms (RFC 3711 §3.1 / §4, RFC 7714 §8).
//!
//! ```text
//! AES-CM:  header | E(payload) | tag(HMAC-SHA1(header | E(payload) | ROC), 80 or 32 bits)
//! GCM:     header | E(payload) | tag(16), AAD = header,
//!          IV = (00 00 | SSRC | ROC | SEQ) XOR salt
//! ```

use crate::session::{Cipher, Session, tags_equal};
use crate::{SrtpError, be32};
use switchyard_wire::rtp;

/// The AES-CM counter block (RFC 3711 §4.1.1):
/// `IV = (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16)`.
pub(crate) fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
        iv[4 + i] ^= b;
    }
    for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
        iv[8 + i] ^= b;
    }
    iv
}

/// The GCM nonce of an SRTP packet (RFC 7714 §8.1).
fn gcm_nonce(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
    for (v, s) in iv.iter_mut().zip(salt) {
        *v ^= s;
    }
    iv
}

impl Session {
    /// Protects the RTP packet in `buf[..len]` in place and appends the tag;
    /// returns the SRTP packet length. `buf` needs
    /// [`Profile::rtp_overhead`](crate::Profile::rtp_overhead) spare bytes.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let header = rtp::header_len(packet)?;
        let ssrc = be32(packet, 8);
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let tag_len = self.profile.rtp_tag_len();
        if buf.len() < len + tag_len {
            return Err(SrtpError::BufferTooSmall);
        }
        let lookup = self.lookup(ssrc)?;
        let index = self
            .stream(&lookup)
            .rollover
            .estimate(seq)
            .ok_or(SrtpError::TooOld)?;
        if index >> 48 != 0 {
            return Err(SrtpError::IndexExhausted);
        }
        let roc = (index >> 16) as u32;
        match &self.rtp.cipher {
            Cipher::Cm(c) => {
                c.apply_keystream(&cm_iv(&self.rtp.salt, ssrc, index), &mut buf[header..len]);
                let tag = c.hmac_sha1(&buf[..len], &roc.to_be_bytes());
                buf[len..len + tag_len].copy_from_slice(&tag[..tag_len]);
            }
            Cipher::Gcm(c) => {
                let nonce = gcm_nonce(&self.rtp.salt, ssrc, index);
                let (aad, rest) = buf.split_at_mut(header);
                let tag = c.seal(&nonce, aad, &mut rest[..len - header]);
                buf[len..len + 16].copy_from_slice(&tag);
            }
        }
        let i = self.commit(lookup);
        self.streams[i].rollover.update(index);
        Ok(len + tag_len)
    }

    /// Authenticates and decrypts the SRTP packet filling `buf` in place;
    /// returns the length of the RTP packet left at its front.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let len = buf.len().checked_sub(tag_len).ok_or(SrtpError::Truncated)?;
        let header = rtp::header_len(&buf[..len])?;
        let ssrc = be32(buf, 8);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let lookup = self.lookup(ssrc)?;
        let stream = self.stream(&lookup);
        let index = stream.rollover.estimate(seq).ok_or(SrtpError::TooOld)?;
        stream.rtp_replay.check(index)?;
        let roc = (index >> 16) as u32;
        match &self.rtp.cipher {
            Cipher::Cm(c) => {
                let tag = c.hmac_sha1(&buf[..len], &roc.to_be_bytes());
                if !tags_equal(&tag[..tag_len], &buf[len..]) {
                    return Err(SrtpError::AuthenticationFailed);
                }
                c.apply_keystream(&cm_iv(&self.rtp.salt, ssrc, index), &mut buf[header..len]);
            }
            Cipher::Gcm(c) => {
                let nonce = gcm_nonce(&self.rtp.salt, ssrc, index);
                let (aad, rest) = buf.split_at_mut(header);
                if !c.open(&nonce, aad, rest) {
                    return Err(SrtpError::AuthenticationFailed);
                }
            }
        }
        let i = self.commit(lookup);
        let stream = &mut self.streams[i];
        stream.rtp_replay.accept(index);
        stream.rollover.update(index);
        Ok(len)
    }
}
