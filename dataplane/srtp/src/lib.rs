//! SRTP and SRTCP (RFC 3711; AES-GCM per RFC 7714) for Switchyard's media path.
//!
//! A [`Session`] holds the keys of one direction of one DTLS-SRTP
//! association and a context per SSRC, created on the first authenticated
//! packet. All four transforms work in place on the caller's buffer and
//! allocate nothing per packet:
//!
//! ```text
//! protect_rtp(buf, len)   → len + tag          unprotect_rtp(buf)  → len − tag
//! protect_rtcp(buf, len)  → len + tag + 4      unprotect_rtcp(buf) → len − tag − 4
//! ```
//!
//! Failures are a [`SrtpError`], a `Copy` reason the dataplane counts.
//! Ciphers sit behind [`backend::CmCipher`] / [`backend::GcmCipher`], with
//! RustCrypto, ring and aws-lc-rs implementations; the default per profile
//! is the one measured fastest ([`Backend::fastest`]).
//!
//! Key material ([`MasterKey`], derived session keys) implements neither
//! `Debug` nor `Display` and is zeroized on drop.
#![forbid(unsafe_code)]

pub mod backend;
pub mod fuzz;
pub mod index;
pub mod kdf;
pub mod replay;

mod error;
mod keys;
mod profile;
mod rtcp;
mod rtp;
mod session;

pub use backend::Backend;
pub use error::SrtpError;
pub use keys::MasterKey;
pub use profile::Profile;
pub use session::{Config, ContextState, Session, SessionKeyRefs};

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
