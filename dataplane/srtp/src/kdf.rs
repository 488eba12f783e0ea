//! The SRTP key derivation function (RFC 3711 §4.3), also used by the AEAD
//! profiles (RFC 7714 §11) with a 96-bit salt.
//!
//! With key derivation rate 0 (all WebRTC uses), `r = 0` and
//! `x = (label << 48) XOR master_salt`; the PRF is AES in counter mode keyed
//! with the master key, its IV `x · 2^16`.

use crate::keys::{MasterKey, SessionKeys};
use aes::cipher::consts::U16;
use aes::cipher::{BlockCipherEncrypt, BlockSizeUser, InnerIvInit, KeyInit, StreamCipher};
use zeroize::Zeroize;

/// Labels of RFC 3711 §4.3.2 (and §4.3.2 of RFC 7714 for RTCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Label {
    /// SRTP encryption key.
    RtpEncryption = 0,
    /// SRTP authentication key.
    RtpAuth = 1,
    /// SRTP salt.
    RtpSalt = 2,
    /// SRTCP encryption key.
    RtcpEncryption = 3,
    /// SRTCP authentication key.
    RtcpAuth = 4,
    /// SRTCP salt.
    RtcpSalt = 5,
}

/// Fills `out` with the PRF output for `label`: the AES-CM keystream of
/// the master key at IV `x · 2^16`.
pub fn derive(master: &MasterKey, label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    // a 96-bit (GCM) master salt is used as the first 12 of 14 bytes
    iv[..master.salt().len()].copy_from_slice(master.salt());
    iv[7] ^= label as u8;
    out.fill(0);
    match master.key().len() {
        32 => keystream::<aes::Aes256>(master.key(), &iv, out),
        _ => keystream::<aes::Aes128>(master.key(), &iv, out),
    }
    iv.zeroize();
}

fn keystream<C>(key: &[u8], iv: &[u8; 16], out: &mut [u8])
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16> + KeyInit,
{
    // MasterKey only holds keys of the cipher's length, so this succeeds.
    if let Ok(cipher) = C::new_from_slice(key) {
        ctr::Ctr128BE::from_core(ctr::CtrCore::inner_iv_init(cipher, iv.into()))
            .apply_keystream(out);
    }
}

/// Derives the RTP (`rtcp = false`) or RTCP session keys.
pub fn session_keys(master: &MasterKey, rtcp: bool) -> SessionKeys {
    let (enc, auth, salt) = if rtcp {
        (Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt)
    } else {
        (Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)
    };
    let mut k = SessionKeys {
        cipher: [0; 32],
        cipher_len: master.key().len(),
        salt: [0; 14],
        auth: [0; 20],
    };
    derive(master, enc, &mut k.cipher[..k.cipher_len]);
    let salt_len = master.salt().len();
    derive(master, salt, &mut k.salt[..salt_len]);
    derive(master, auth, &mut k.auth);
    k
}
