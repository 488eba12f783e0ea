//! `aws-lc-rs` implementations.

use super::{CmCipher, GcmCipher};
use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;

pub(super) struct Cm {
    ctr: EncryptingKey,
    mac: hmac::Key,
}

impl Cm {
    pub(super) fn new(key: &[u8], auth_key: &[u8]) -> Option<Cm> {
        let alg = match key.len() {
            16 => &AES_128,
            32 => &AES_256,
            _ => return None,
        };
        let ctr = EncryptingKey::ctr(UnboundCipherKey::new(alg, key).ok()?).ok()?;
        Some(Cm {
            ctr,
            mac: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_key),
        })
    }
}

impl CmCipher for Cm {
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        if data.is_empty() {
            return;
        }
        let ctx = EncryptionContext::Iv128((*iv).into());
        // CTR accepts any length; errors only on a wrong context type.
        let _ = self.ctr.less_safe_encrypt(data, ctx);
    }

    fn hmac_sha1(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(data);
        ctx.update(trailer);
        let mut out = [0u8; 20];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

pub(super) struct Gcm(LessSafeKey);

impl Gcm {
    pub(super) fn new(key: &[u8]) -> Option<Gcm> {
        let alg = match key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return None,
        };
        Some(Gcm(LessSafeKey::new(UnboundKey::new(alg, key).ok()?)))
    }
}

impl GcmCipher for Gcm {
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        let mut out = [0u8; 16];
        if let Ok(tag) = self
            .0
            .seal_in_place_separate_tag(nonce, Aad::from(aad), data)
        {
            out.copy_from_slice(tag.as_ref());
        }
        out
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], data_and_tag: &mut [u8]) -> bool {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        self.0
            .open_in_place(nonce, Aad::from(aad), data_and_tag)
            .is_ok()
    }
}
