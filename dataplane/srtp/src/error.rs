use thiserror::Error;

/// Why a packet could not be protected or unprotected.
///
/// `Copy`, so that the packet path counts drops by reason without
/// allocating. No variant carries key material.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpError {
    /// The packet is shorter than its header plus the authentication tag.
    #[error("packet truncated")]
    Truncated,
    /// The RTP or RTCP header does not parse.
    #[error("malformed header: {0}")]
    Malformed(switchyard_wire::WireError),
    /// The authentication tag does not verify (tampered, wrong key or wrong ROC).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// This packet index was already received (RFC 3711 §3.3.2).
    #[error("replayed packet")]
    Replayed,
    /// The packet index is older than the replay window.
    #[error("packet too old for the replay window")]
    TooOld,
    /// No context for this SSRC and the session does not create them.
    #[error("unknown SSRC")]
    UnknownSsrc,
    /// The session already holds its maximum number of streams.
    #[error("too many streams in this session")]
    TooManyStreams,
    /// The output buffer has no room for the authentication tag / trailer.
    #[error("buffer too small for the SRTP trailer")]
    BufferTooSmall,
    /// The SRTCP index (2^31 packets) or SRTP index (2^48) is used up; rekey.
    #[error("packet index exhausted; the session must be rekeyed")]
    IndexExhausted,
    /// A master key or salt of the wrong length for the profile.
    #[error("key or salt length does not match the profile")]
    BadKeyLength,
    /// The chosen crypto backend does not implement this profile.
    #[error("backend does not support this profile")]
    UnsupportedBackend,
}

impl From<switchyard_wire::WireError> for SrtpError {
    fn from(e: switchyard_wire::WireError) -> Self {
        match e {
            switchyard_wire::WireError::Truncated => SrtpError::Truncated,
            e => SrtpError::Malformed(e),
        }
    }
}
