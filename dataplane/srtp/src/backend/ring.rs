//! `ring` implementation (AES-GCM only).

use super::GcmCipher;
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

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
        // Only fails for inputs beyond GCM's limit (64 GiB).
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
