//! The cipher layer behind two small traits, one per family of profiles,
//! with one implementation per crypto library. Which library serves which
//! profile by default is decided by measurement (`benches/benches/srtp.rs`,
//! figures in docs/benchmarks.md) and recorded in [`Backend::fastest`].

mod awslc;
mod ring;
mod rustcrypto;

/// AES-GCM over a `LessSafeKey`, whose API ring and aws-lc-rs share: one
/// definition for both, instantiated in `ring.rs` and `awslc.rs`.
macro_rules! less_safe_key_gcm {
    ($krate:ident) => {
        pub(super) struct Gcm($krate::aead::LessSafeKey);

        impl Gcm {
            pub(super) fn new(key: &[u8]) -> Option<Gcm> {
                use $krate::aead::{AES_128_GCM, AES_256_GCM, LessSafeKey, UnboundKey};
                let alg = match key.len() {
                    16 => &AES_128_GCM,
                    32 => &AES_256_GCM,
                    _ => return None,
                };
                Some(Gcm(LessSafeKey::new(UnboundKey::new(alg, key).ok()?)))
            }
        }

        impl super::GcmCipher for Gcm {
            fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
                use $krate::aead::{Aad, Nonce};
                let nonce = Nonce::assume_unique_for_key(*nonce);
                let mut out = [0u8; 16];
                // Fails only beyond GCM's input limit (64 GiB), never for a datagram.
                if let Ok(tag) = self
                    .0
                    .seal_in_place_separate_tag(nonce, Aad::from(aad), data)
                {
                    out.copy_from_slice(tag.as_ref());
                }
                out
            }

            fn open(&self, nonce: &[u8; 12], aad: &[u8], data_and_tag: &mut [u8]) -> bool {
                use $krate::aead::{Aad, Nonce};
                let nonce = Nonce::assume_unique_for_key(*nonce);
                self.0
                    .open_in_place(nonce, Aad::from(aad), data_and_tag)
                    .is_ok()
            }
        }
    };
}
use less_safe_key_gcm;

use crate::Profile;

/// AES in counter mode and HMAC-SHA1: the primitives of the AES-CM profiles.
pub trait CmCipher: Send + Sync {
    /// XORs the AES-CM keystream whose first counter block is `iv` into `data`.
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]);
    /// HMAC-SHA1 of `data` followed by `trailer`.
    fn hmac_sha1(&self, data: &[u8], trailer: &[u8]) -> [u8; 20];
}

/// AES-GCM with a 16-byte tag: the primitive of the AEAD profiles.
pub trait GcmCipher: Send + Sync {
    /// Encrypts `data` in place and returns the tag.
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16];
    /// Checks the tag (the last 16 bytes of `data_and_tag`) and decrypts the
    /// rest in place. False, with `data_and_tag` unspecified, when the tag
    /// does not verify.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], data_and_tag: &mut [u8]) -> bool;
}

/// A crypto library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// RustCrypto: `aes` + `ctr`, `hmac` + `sha1`, `aes-gcm`.
    RustCrypto,
    /// `ring` (GCM only: ring has no AES-CTR, and its HMAC-SHA1 is slow).
    Ring,
    /// `aws-lc-rs` (AWS-LC, assembly from BoringSSL/OpenSSL lineage).
    AwsLc,
}

impl Backend {
    /// Every backend.
    pub const ALL: [Backend; 3] = [Backend::RustCrypto, Backend::Ring, Backend::AwsLc];

    /// Short name for logs and benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Backend::RustCrypto => "rustcrypto",
            Backend::Ring => "ring",
            Backend::AwsLc => "aws-lc-rs",
        }
    }

    /// The backend measured fastest for a profile on x86-64 with AES-NI,
    /// VAES and SHA-NI (docs/benchmarks.md, "SRTP"): aws-lc-rs for GCM,
    /// RustCrypto for AES-CM + HMAC-SHA1.
    pub fn fastest(profile: Profile) -> Backend {
        if profile.is_aead() {
            Backend::AwsLc
        } else {
            Backend::RustCrypto
        }
    }

    /// Every (profile, backend) pair this library implements, for tests and
    /// benchmarks that cover them all.
    pub fn combinations() -> impl Iterator<Item = (Profile, Backend)> {
        Profile::ALL.into_iter().flat_map(|p| {
            Backend::ALL
                .into_iter()
                .filter(move |b| b.supports(p))
                .map(move |b| (p, b))
        })
    }

    /// Whether this backend implements the profile.
    pub fn supports(self, profile: Profile) -> bool {
        profile.is_aead() || self != Backend::Ring
    }

    /// An AES-CM + HMAC-SHA1 cipher, or `None` if unsupported or the key
    /// length is not 16 or 32.
    pub fn cm(self, key: &[u8], auth_key: &[u8]) -> Option<Box<dyn CmCipher>> {
        match self {
            Backend::RustCrypto => rustcrypto::Cm::new(key, auth_key).map(|c| Box::new(c) as _),
            Backend::AwsLc => awslc::Cm::new(key, auth_key).map(|c| Box::new(c) as _),
            Backend::Ring => None,
        }
    }

    /// An AES-GCM cipher for a 16- or 32-byte key.
    pub fn gcm(self, key: &[u8]) -> Option<Box<dyn GcmCipher>> {
        match self {
            Backend::RustCrypto => rustcrypto::Gcm::new(key).map(|c| Box::new(c) as _),
            Backend::Ring => ring::Gcm::new(key).map(|c| Box::new(c) as _),
            Backend::AwsLc => awslc::Gcm::new(key).map(|c| Box::new(c) as _),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every backend agrees with every other on random inputs.
    #[test]
    fn backends_agree() {
        let key = [7u8; 16];
        let key256 = [9u8; 32];
        let auth = [3u8; 20];
        let cms: Vec<_> = Backend::ALL
            .iter()
            .filter_map(|b| b.cm(&key, &auth))
            .collect();
        assert_eq!(cms.len(), 2);
        let iv = [0xabu8; 16];
        for len in [0, 1, 15, 16, 17, 200, 1200] {
            let mut a = vec![0x5au8; len];
            let mut b = a.clone();
            cms[0].apply_keystream(&iv, &mut a);
            cms[1].apply_keystream(&iv, &mut b);
            assert_eq!(a, b, "ctr len {len}");
            assert_eq!(cms[0].hmac_sha1(&a, &[1, 2]), cms[1].hmac_sha1(&a, &[1, 2]));
        }
        for k in [&key[..], &key256[..]] {
            let gcms: Vec<_> = Backend::ALL.iter().filter_map(|b| b.gcm(k)).collect();
            assert_eq!(gcms.len(), 3);
            let mut outs = Vec::new();
            for g in &gcms {
                let mut d = vec![0x11u8; 300];
                let tag = g.seal(&[1; 12], b"aad", &mut d);
                d.extend_from_slice(&tag);
                outs.push(d);
            }
            assert!(outs.windows(2).all(|w| w[0] == w[1]));
            for g in &gcms {
                let mut d = outs[0].clone();
                assert!(g.open(&[1; 12], b"aad", &mut d));
                assert_eq!(&d[..300], &[0x11u8; 300][..]);
                let mut bad = outs[0].clone();
                bad[5] ^= 1;
                assert!(!g.open(&[1; 12], b"aad", &mut bad));
            }
        }
    }
}
