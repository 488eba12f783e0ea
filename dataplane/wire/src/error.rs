use thiserror::Error;

/// Why a packet could not be parsed or built.
///
/// `Copy` so that the packet path can count drops by reason without
/// allocating; each variant maps to one drop counter.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before a length the packet declares.
    #[error("packet truncated")]
    Truncated,
    /// The version field is not the one this format requires.
    #[error("unsupported version")]
    BadVersion,
    /// A length field is inconsistent with the packet (padding, extension, count).
    #[error("malformed length field")]
    BadLength,
    /// A field holds a value the format forbids.
    #[error("malformed field")]
    Malformed,
    /// The packet is of a type this parser does not handle.
    #[error("unexpected packet type")]
    WrongType,
    /// An output buffer is too small for what is being written.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A value does not fit the field it must be written into.
    #[error("value out of range for its field")]
    OutOfRange,
    /// STUN MESSAGE-INTEGRITY did not verify.
    #[error("STUN message integrity check failed")]
    IntegrityMismatch,
    /// STUN FINGERPRINT did not verify.
    #[error("STUN fingerprint mismatch")]
    FingerprintMismatch,
    /// A required attribute is missing.
    #[error("required attribute missing")]
    MissingAttribute,
}
