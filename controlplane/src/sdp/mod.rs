//! SDP for one PeerConnection per participant (Unified Plan, BUNDLE,
//! rtcp-mux, ICE-lite, DTLS setup roles).
//!
//! [`Offer::parse`] reads a browser's offer with Mozilla's `webrtc-sdp`
//! parser into the facts the SFU needs; [`answer`] writes our answer and
//! reports what was negotiated per m-line (codec, RTX, extension ids,
//! simulcast rids) for the dataplane. A bad SDP is an [`SdpError`] naming
//! the line.

mod answer;
mod offer;
mod saved;
mod session;

pub use answer::{AnswerParams, Negotiated, answer, extension_ids};
pub use offer::{CodecOffer, Direction, MediaOffer, Offer, Setup};
pub use saved::media_kind;
pub use session::{Line, PcSession, SendTrack};

use thiserror::Error;

/// Why an SDP was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// The parser rejected a line.
    #[error("SDP line {line_number} ({line:?}): {reason}")]
    Line {
        /// 1-based line number.
        line_number: usize,
        /// The line.
        line: String,
        /// What is wrong.
        reason: String,
    },
    /// Something required is missing.
    #[error("SDP lacks {0}")]
    Missing(String),
    /// Something we cannot do.
    #[error("SDP not supported: {0}")]
    Unsupported(String),
}

/// Header extensions the SFU understands, by URI.
pub mod uri {
    #![allow(missing_docs)]
    pub const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
    pub const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
    pub const REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
    pub const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
    pub const TRANSPORT_CC: &str =
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    pub const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    pub const DEPENDENCY_DESCRIPTOR: &str =
        "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
    /// Every URI above.
    pub const ALL: [&str; 7] = [
        MID,
        RID,
        REPAIRED_RID,
        ABS_SEND_TIME,
        TRANSPORT_CC,
        AUDIO_LEVEL,
        DEPENDENCY_DESCRIPTOR,
    ];
}
