//! RustCrypto implementations (`aes`, `ctr`, `hmac`, `sha1`, `aes-gcm`).
//! The `aes` crate's `zeroize` feature wipes the key schedules on drop.

use super::{CmCipher, GcmCipher};
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes_gcm::aead::AeadInOut;
use hmac::Mac;

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

enum Aes {
    K128(aes::Aes128),
    K256(aes::Aes256),
}

pub(super) struct Cm {
    aes: Aes,
    mac: HmacSha1,
}

impl Cm {
    pub(super) fn new(key: &[u8], auth_key: &[u8]) -> Option<Cm> {
        let aes = match key.len() {
            16 => Aes::K128(aes::Aes128::new_from_slice(key).ok()?),
            32 => Aes::K256(aes::Aes256::new_from_slice(key).ok()?),
            _ => return None,
        };
        Some(Cm {
            aes,
            mac: <HmacSha1 as KeyInit>::new_from_slice(auth_key).ok()?,
        })
    }
}

impl CmCipher for Cm {
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match &self.aes {
            Aes::K128(a) => ctr_from(a, iv).apply_keystream(data),
            Aes::K256(a) => ctr_from(a, iv).apply_keystream(data),
        }
    }

    fn hmac_sha1(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.update(trailer);
        mac.finalize().into_bytes().into()
    }
}

/// A counter-mode keystream from an expanded key (cloned, not re-expanded).
fn ctr_from<C>(aes: &C, iv: &[u8; 16]) -> ctr::Ctr128BE<C>
where
    C: aes::cipher::BlockCipherEncrypt
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>
        + Clone,
{
    ctr::Ctr128BE::from_core(ctr::CtrCore::inner_iv_init(aes.clone(), iv.into()))
}

pub(super) enum Gcm {
    K128(aes_gcm::Aes128Gcm),
    K256(aes_gcm::Aes256Gcm),
}

impl Gcm {
    pub(super) fn new(key: &[u8]) -> Option<Gcm> {
        match key.len() {
            16 => Some(Gcm::K128(aes_gcm::Aes128Gcm::new_from_slice(key).ok()?)),
            32 => Some(Gcm::K256(aes_gcm::Aes256Gcm::new_from_slice(key).ok()?)),
            _ => None,
        }
    }
}

impl GcmCipher for Gcm {
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let tag = match self {
            Gcm::K128(g) => g.encrypt_inout_detached(nonce.into(), aad, data.into()),
            Gcm::K256(g) => g.encrypt_inout_detached(nonce.into(), aad, data.into()),
        };
        // Only fails for plaintexts over 64 GiB.
        tag.map(Into::into).unwrap_or([0; 16])
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], data_and_tag: &mut [u8]) -> bool {
        let Some(split) = data_and_tag.len().checked_sub(16) else {
            return false;
        };
        let (data, tag) = data_and_tag.split_at_mut(split);
        let Ok(tag) = <&[u8; 16]>::try_from(&*tag) else {
            return false;
        };
        match self {
            Gcm::K128(g) => g.decrypt_inout_detached(nonce.into(), aad, data.into(), tag.into()),
            Gcm::K256(g) => g.decrypt_inout_detached(nonce.into(), aad, data.into(), tag.into()),
        }
        .is_ok()
    }
}
