//! SRTCP packet transforms (RFC 3711 §3.4, RFC 7714 §9).
//!
//! ```text
//! AES-CM:  header(8) | E(rest) | E‖index(4) | tag(HMAC-SHA1 over all before it, 80 bits)
//! GCM:     header(8) | E(rest) | tag(16) | E‖index(4),
//!          AAD = header(8) ‖ E‖index, IV = (00 00 | SSRC | 00 00 | index) XOR salt
//! ```
//! The index is a 31-bit per-SSRC counter; E (top bit) says the packet is
//! encrypted. This side always encrypts; it accepts E = 0 from peers.

use crate::rtp::cm_iv;
use crate::session::{Cipher, Session, tags_equal};
use crate::{SrtpError, be32};

const E_FLAG: u32 = 0x8000_0000;
/// Fixed RTCP header plus sender SSRC: never encrypted.
const CLEAR_HEADER: usize = 8;

fn gcm_nonce(salt: &[u8; 14], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&index.to_be_bytes());
    for (v, s) in iv.iter_mut().zip(salt) {
        *v ^= s;
    }
    iv
}

fn check_header(packet: &[u8]) -> Result<(), SrtpError> {
    if packet.len() < CLEAR_HEADER {
        return Err(SrtpError::Truncated);
    }
    if packet[0] >> 6 != 2 || !(192..=223).contains(&packet[1]) {
        return Err(SrtpError::Malformed(switchyard_wire::WireError::BadVersion));
    }
    Ok(())
}

impl Session {
    /// Protects the compound RTCP packet in `buf[..len]` in place; returns
    /// the SRTCP length. `buf` needs
    /// [`Profile::rtcp_overhead`](crate::Profile::rtcp_overhead) spare bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        check_header(packet)?;
        let ssrc = be32(packet, 4);
        let tag_len = self.profile.rtcp_tag_len();
        let out_len = len + tag_len + 4;
        if buf.len() < out_len {
            return Err(SrtpError::BufferTooSmall);
        }
        let lookup = self.lookup(ssrc)?;
        let index = self.stream(&lookup).rtcp_next;
        if index & E_FLAG != 0 {
            return Err(SrtpError::IndexExhausted);
        }
        let e_index = (E_FLAG | index).to_be_bytes();
        match &self.rtcp.cipher {
            Cipher::Cm(c) => {
                c.apply_keystream(
                    &cm_iv(&self.rtcp.salt, ssrc, u64::from(index)),
                    &mut buf[CLEAR_HEADER..len],
                );
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = c.hmac_sha1(&buf[..len + 4], &[]);
                buf[len + 4..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Cipher::Gcm(c) => {
                let mut aad = [0u8; CLEAR_HEADER + 4];
                aad[..CLEAR_HEADER].copy_from_slice(&buf[..CLEAR_HEADER]);
                aad[CLEAR_HEADER..].copy_from_slice(&e_index);
                let nonce = gcm_nonce(&self.rtcp.salt, ssrc, index);
                let tag = c.seal(&nonce, &aad, &mut buf[CLEAR_HEADER..len]);
                buf[len..len + 16].copy_from_slice(&tag);
                buf[len + 16..out_len].copy_from_slice(&e_index);
            }
        }
        let i = self.commit(lookup);
        self.streams[i].rtcp_next = index + 1;
        Ok(out_len)
    }

    /// Authenticates and (if E is set) decrypts the SRTCP packet filling
    /// `buf` in place; returns the length of the RTCP packet at its front.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let len = buf
            .len()
            .checked_sub(tag_len + 4)
            .ok_or(SrtpError::Truncated)?;
        check_header(&buf[..len])?;
        let ssrc = be32(buf, 4);
        let trailer_at = if self.profile.is_aead() {
            len + tag_len
        } else {
            len
        };
        let e_index = be32(buf, trailer_at);
        let (encrypted, index) = (e_index & E_FLAG != 0, e_index & !E_FLAG);
        let lookup = self.lookup(ssrc)?;
        self.stream(&lookup).rtcp_replay.check(u64::from(index))?;
        match &self.rtcp.cipher {
            Cipher::Cm(c) => {
                let tag = c.hmac_sha1(&buf[..len + 4], &[]);
                if !tags_equal(&tag[..tag_len], &buf[len + 4..]) {
                    return Err(SrtpError::AuthenticationFailed);
                }
                if encrypted {
                    let iv = cm_iv(&self.rtcp.salt, ssrc, u64::from(index));
                    c.apply_keystream(&iv, &mut buf[CLEAR_HEADER..len]);
                }
            }
            Cipher::Gcm(c) => {
                let nonce = gcm_nonce(&self.rtcp.salt, ssrc, index);
                let ok = if encrypted {
                    let mut aad = [0u8; CLEAR_HEADER + 4];
                    aad[..CLEAR_HEADER].copy_from_slice(&buf[..CLEAR_HEADER]);
                    aad[CLEAR_HEADER..].copy_from_slice(&e_index.to_be_bytes());
                    c.open(&nonce, &aad, &mut buf[CLEAR_HEADER..len + tag_len])
                } else {
                    // RFC 7714 §9.2: the whole packet and E‖index are AAD and
                    // the tag covers an empty plaintext. Move E‖index next to
                    // the packet so the AAD is contiguous, keep the tag aside.
                    let mut tag = [0u8; 16];
                    tag.copy_from_slice(&buf[len..len + 16]);
                    buf[len..len + 4].copy_from_slice(&e_index.to_be_bytes());
                    c.open(&nonce, &buf[..len + 4], &mut tag)
                };
                if !ok {
                    return Err(SrtpError::AuthenticationFailed);
                }
            }
        }
        let i = self.commit(lookup);
        self.streams[i].rtcp_replay.accept(u64::from(index));
        Ok(len)
    }
}
