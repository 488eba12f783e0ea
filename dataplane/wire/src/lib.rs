//! Zero-copy views of every packet format Switchyard's media path touches.
//!
//! The model follows smoltcp's `wire` module: each packet type is a view
//! `Packet<T: AsRef<[u8]>>` over a caller-owned buffer, made by a checked
//! constructor (`new_checked`) that validates every length the getters later
//! rely on. Getters work on any buffer; setters exist only when
//! `T: AsMut<[u8]>`, which makes in-place header rewriting (the SFU's main job)
//! free of copies. Builders (`write_*` functions and `*Writer` types) emit into
//! a caller-provided slice and return the number of bytes written; nothing in
//! this crate allocates.
//!
//! | module | formats |
//! | --- | --- |
//! | [`demux`] | RFC 7983 first-byte demultiplexing, RFC 5761 RTP/RTCP |
//! | [`rtp`] | RTP (RFC 3550), header extensions (RFC 8285) and their values |
//! | [`rtcp`] | compound RTCP: SR, RR, SDES, BYE, APP, NACK, PLI, FIR, REMB, transport-cc |
//! | [`codec`] | VP8 (RFC 7741), VP9 (draft-ietf-payload-vp9), H.264 (RFC 6184) payload headers |
//! | [`stun`] | STUN (RFC 8489) with MESSAGE-INTEGRITY and FINGERPRINT |
//! | [`framing`] | RFC 4571 length-prefixed packets over TCP (ICE-TCP) |
//! | [`udp_frame`] | UDP datagrams in Ethernet frames over IPv4/IPv6, the Internet checksum (AF_XDP) |
//!
//! Every parser returns a [`WireError`], never panics on any input, and has a
//! fuzz entry point in [`fuzz`].
#![forbid(unsafe_code)]

pub mod codec;
pub mod demux;
pub mod framing;
pub mod fuzz;
pub mod rtcp;
pub mod rtp;
pub mod stun;
pub mod udp_frame;

mod error;

pub use error::WireError;

/// Result of a parse or emit in this crate.
pub type Result<T> = core::result::Result<T, WireError>;

/// Big-endian field access shared by the packet views. Callers have already
/// checked the length, so these index directly.
pub(crate) mod be {
    #[inline]
    pub fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    #[inline]
    pub fn u24_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
    }
    #[inline]
    pub fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    #[inline]
    pub fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(x)
    }
    #[inline]
    pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn put_u24(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 3].copy_from_slice(&v.to_be_bytes()[1..]);
    }
    #[inline]
    pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    #[inline]
    pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }
}

/// Returns `Err(WireError::BufferTooSmall)` unless `buf` holds `need` bytes.
#[inline]
pub(crate) fn ensure_room(buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        Err(WireError::BufferTooSmall)
    } else {
        Ok(())
    }
}
