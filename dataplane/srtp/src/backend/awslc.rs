//! `aws-lc-rs` implementations.

use super::CmCipher;
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

super::less_safe_key_gcm!(aws_lc_rs);
