//! RFC 3711 Appendix B and RFC 7714 §16–17, from tests/vectors.

use crate::vector;
use switchyard_srtp::kdf::{Label, derive};
use switchyard_srtp::{Backend, Config, MasterKey, Profile, Session, SessionKeyRefs};

#[test]
fn rfc3711_b2_aes_cm_keystream_every_backend() {
    let key = vector("rfc3711.txt", "keystream_key");
    let salt = vector("rfc3711.txt", "keystream_salt");
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&salt);
    for backend in [Backend::RustCrypto, Backend::AwsLc] {
        let cm = backend.cm(&key, &[0; 20]).unwrap();
        let mut stream = vec![0u8; 0xff02 * 16];
        cm.apply_keystream(&iv, &mut stream);
        for block in ["0000", "0001", "0002", "feff", "ff00", "ff01"] {
            let at = usize::from_str_radix(block, 16).unwrap() * 16;
            let want = vector("rfc3711.txt", &format!("keystream_block_{block}"));
            assert_eq!(
                &stream[at..at + 16],
                &want[..],
                "{} block {block}",
                backend.name()
            );
        }
    }
}

#[test]
fn rfc3711_b3_key_derivation() {
    let m = MasterKey::new(
        Profile::Aes128CmHmacSha1_80,
        &vector("rfc3711.txt", "kdf_master_key"),
        &vector("rfc3711.txt", "kdf_master_salt"),
    )
    .unwrap();
    for (label, name) in [
        (Label::RtpEncryption, "kdf_cipher_key"),
        (Label::RtpSalt, "kdf_cipher_salt"),
        (Label::RtpAuth, "kdf_auth_key"),
    ] {
        let want = vector("rfc3711.txt", name);
        let mut out = vec![0u8; want.len()];
        derive(&m, label, &mut out);
        assert_eq!(out, want, "{name}");
    }
}

fn gcm_session(bits: u16, backend: Backend) -> Session {
    let (profile, key) = match bits {
        128 => (Profile::AeadAes128Gcm, vector("rfc7714.txt", "key_128")),
        _ => (Profile::AeadAes256Gcm, vector("rfc7714.txt", "key_256")),
    };
    let salt = vector("rfc7714.txt", "salt");
    let keys = SessionKeyRefs {
        cipher: &key,
        salt: &salt,
        auth: &[],
    };
    Session::from_session_keys(
        profile,
        keys,
        keys,
        Config {
            backend: Some(backend),
            ..Config::default()
        },
    )
    .unwrap()
}

#[test]
fn rfc7714_16_srtp_gcm_every_backend() {
    let plain = vector("rfc7714.txt", "rtp_plain");
    for bits in [128, 256] {
        let want = vector("rfc7714.txt", &format!("rtp_protected_{bits}"));
        for backend in Backend::ALL {
            let mut s = gcm_session(bits, backend);
            let mut buf = plain.clone();
            buf.resize(plain.len() + 16, 0);
            let n = s.protect_rtp(&mut buf, plain.len()).unwrap();
            assert_eq!(&buf[..n], &want[..], "protect {bits} {}", backend.name());
            let mut r = gcm_session(bits, backend);
            let mut buf = want.clone();
            let n = r.unprotect_rtp(&mut buf).unwrap();
            assert_eq!(&buf[..n], &plain[..], "unprotect {bits} {}", backend.name());
        }
    }
}

#[test]
fn rfc7714_17_srtcp_gcm_every_backend() {
    let plain = vector("rfc7714.txt", "rtcp_plain");
    let index = u32::from_be_bytes(vector("rfc7714.txt", "rtcp_index").try_into().unwrap());
    for bits in [128, 256] {
        let want = vector("rfc7714.txt", &format!("rtcp_protected_{bits}"));
        for backend in Backend::ALL {
            // our index counts from 0: protect until it reaches the vector's
            let mut s = gcm_session(bits, backend);
            let mut buf = vec![0u8; plain.len() + 20];
            for _ in 0..index {
                buf[..plain.len()].copy_from_slice(&plain);
                s.protect_rtcp(&mut buf, plain.len()).unwrap();
            }
            buf[..plain.len()].copy_from_slice(&plain);
            let n = s.protect_rtcp(&mut buf, plain.len()).unwrap();
            assert_eq!(&buf[..n], &want[..], "protect {bits} {}", backend.name());
            let mut r = gcm_session(bits, backend);
            let mut buf = want.clone();
            let n = r.unprotect_rtcp(&mut buf).unwrap();
            assert_eq!(&buf[..n], &plain[..], "unprotect {bits} {}", backend.name());
        }
    }
}
