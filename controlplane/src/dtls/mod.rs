//! DTLS 1.2 for DTLS-SRTP (RFC 5764, RFC 8827) over OpenSSL, sans-IO.
//!
//! A [`DtlsSession`] takes datagrams (from the dataplane's exception ring)
//! and gives datagrams to send; its events say when the handshake produced
//! SRTP keys (checked against the fingerprint from the SDP) or failed.
//! OpenSSL runs over an in-memory datagram buffer (`buffer.rs`); nothing
//! here touches a socket. See docs/dtls.md for why OpenSSL.

mod buffer;
mod cert;
mod session;

pub use cert::{Certificate, Fingerprint};
pub use session::{DtlsError, DtlsEvent, DtlsRole, DtlsSession, HANDSHAKE_TIMEOUT};
