//! STUN (RFC 8489) as ICE-lite uses it: binding requests and responses with
//! MESSAGE-INTEGRITY (short-term credentials, HMAC-SHA1) and FINGERPRINT.
//!
//! [`StunMessage`] is a checked view with attribute lookup and integrity /
//! fingerprint verification; [`StunWriter`] builds a message in a caller
//! buffer, appending integrity and fingerprint last.

mod address;
mod attribute;
mod integrity;
mod message;
mod writer;

pub use address::{read_xor_address, write_xor_address};
pub use attribute::{Attribute, AttributeIter, attr};
pub use message::{MessageClass, StunMessage, method};
pub use writer::StunWriter;

/// The fixed value in every RFC 5389/8489 STUN header.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header.
pub const HEADER_LEN: usize = 20;
/// Value XORed into the CRC-32 of FINGERPRINT (RFC 8489 §14.7).
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// Length of a MESSAGE-INTEGRITY value (HMAC-SHA1).
pub const INTEGRITY_LEN: usize = 20;
