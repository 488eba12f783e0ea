//! RTP (RFC 3550) packets and their header extensions (RFC 8285).

mod extension;
mod extension_values;
mod header_writer;
mod packet;

pub use extension::{Extension, ExtensionForm, ExtensionIds, ExtensionIter};
pub use extension_values::{
    AbsSendTime, AudioLevel, DependencyDescriptorHead, TransportSequence, sdes_token,
};
pub use header_writer::RtpHeader;
pub use packet::{RtpPacket, header_len};

/// The only RTP version in use (RFC 3550 §5.1).
pub const VERSION: u8 = 2;
/// Size of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;
