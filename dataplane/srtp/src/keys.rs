//! Key material. No type here implements `Debug` or `Display`, and every
//! byte is zeroized when dropped.

use crate::{Profile, SrtpError};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A master key and master salt for one direction of one session, as the
/// DTLS-SRTP exporter hands them out (RFC 5764 §4.2).
///
/// It cannot be printed, so it cannot reach a log by accident:
///
/// ```compile_fail
/// use switchyard_srtp::{MasterKey, Profile};
/// let k = MasterKey::new(Profile::AeadAes128Gcm, &[7; 16], &[9; 12]).unwrap();
/// println!("{:?}", k);
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; 32],
    salt: [u8; 14],
    key_len: usize,
    salt_len: usize,
}

impl MasterKey {
    /// Copies a master key and salt of the lengths `profile` requires.
    pub fn new(profile: Profile, key: &[u8], salt: &[u8]) -> Result<MasterKey, SrtpError> {
        if key.len() != profile.key_len() || salt.len() != profile.salt_len() {
            return Err(SrtpError::BadKeyLength);
        }
        let mut m = MasterKey {
            key: [0; 32],
            salt: [0; 14],
            key_len: key.len(),
            salt_len: salt.len(),
        };
        m.key[..key.len()].copy_from_slice(key);
        m.salt[..salt.len()].copy_from_slice(salt);
        Ok(m)
    }

    /// Splits DTLS-SRTP keying material (client key, server key, client
    /// salt, server salt) into the client's and the server's master keys.
    pub fn from_dtls_keying_material(
        profile: Profile,
        material: &[u8],
    ) -> Result<(MasterKey, MasterKey), SrtpError> {
        let (k, s) = (profile.key_len(), profile.salt_len());
        if material.len() != 2 * (k + s) {
            return Err(SrtpError::BadKeyLength);
        }
        let client = MasterKey::new(profile, &material[..k], &material[2 * k..2 * k + s])?;
        let server = MasterKey::new(profile, &material[k..2 * k], &material[2 * k + s..])?;
        Ok((client, server))
    }

    /// The master key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// The master salt bytes.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.salt_len]
    }
}

/// Session keys for one of RTP or RTCP, derived by [`crate::kdf`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    /// Encryption key (16 or 32 bytes used).
    pub(crate) cipher: [u8; 32],
    pub(crate) cipher_len: usize,
    /// Session salt (14 bytes for AES-CM, 12 for GCM).
    pub(crate) salt: [u8; 14],
    /// HMAC-SHA1 key (AES-CM profiles only).
    pub(crate) auth: [u8; 20],
}

impl SessionKeys {
    pub(crate) fn cipher_key(&self) -> &[u8] {
        &self.cipher[..self.cipher_len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroize;

    #[test]
    fn dtls_material_split_and_zeroize() {
        let p = Profile::Aes128CmHmacSha1_80;
        let material: Vec<u8> = (0..60).collect();
        let (client, mut server) = MasterKey::from_dtls_keying_material(p, &material).unwrap();
        assert_eq!(client.key(), &material[..16]);
        assert_eq!(server.key(), &material[16..32]);
        assert_eq!(client.salt(), &material[32..46]);
        assert_eq!(server.salt(), &material[46..60]);
        server.zeroize();
        assert!(server.key.iter().chain(&server.salt).all(|&b| b == 0));
        assert_eq!(
            MasterKey::from_dtls_keying_material(p, &material[..59]).err(),
            Some(SrtpError::BadKeyLength)
        );
    }
}
