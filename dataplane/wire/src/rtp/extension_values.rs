//! Values of the header extensions an SFU reads or rewrites.
//!
//! mid / rid / repaired-rid (RFC 8843, RFC 8852) are SDES strings, read
//! with [`RtpPacket::extension`](super::RtpPacket::extension) and checked by
//! [`sdes_token`].

use crate::{Result, WireError, be};

/// abs-send-time: 24-bit 6.18 fixed-point seconds (webrtc.org extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsSendTime(pub u32);

impl AbsSendTime {
    /// Size on the wire.
    pub const LEN: usize = 3;

    /// Reads the 3-byte value.
    pub fn parse(data: &[u8]) -> Result<Self> {
        if data.len() != Self::LEN {
            return Err(WireError::BadLength);
        }
        Ok(AbsSendTime(be::u24_at(data, 0)))
    }

    /// From a time in microseconds (wraps every 64 s, as the format does).
    pub fn from_micros(us: u64) -> Self {
        AbsSendTime((((us << 18) / 1_000_000) & 0x00ff_ffff) as u32)
    }

    /// The time in microseconds within the 64-second wrap.
    pub fn to_micros(self) -> u64 {
        (u64::from(self.0) * 1_000_000) >> 18
    }

    /// Writes the 3-byte value.
    pub fn write(self, out: &mut [u8]) -> Result<()> {
        if out.len() != Self::LEN {
            return Err(WireError::BadLength);
        }
        be::put_u24(out, 0, self.0 & 0x00ff_ffff);
        Ok(())
    }
}

/// Transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportSequence(pub u16);

impl TransportSequence {
    /// Size on the wire.
    pub const LEN: usize = 2;

    /// Reads the 2-byte value.
    pub fn parse(data: &[u8]) -> Result<Self> {
        if data.len() != Self::LEN {
            return Err(WireError::BadLength);
        }
        Ok(TransportSequence(be::u16_at(data, 0)))
    }

    /// Writes the 2-byte value.
    pub fn write(self, out: &mut [u8]) -> Result<()> {
        if out.len() != Self::LEN {
            return Err(WireError::BadLength);
        }
        be::put_u16(out, 0, self.0);
        Ok(())
    }
}

/// Client-to-mixer audio level (RFC 6464 §3): voice activity bit and level
/// in −dBov, 0 (loudest) to 127 (silence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLevel {
    /// The V flag: the sender's voice activity detection says speech.
    pub voice: bool,
    /// Level in −dBov (0 = loudest, 127 = silence).
    pub level: u8,
}

impl AudioLevel {
    /// Reads the value; RFC 6464 allows one byte (one-byte form) or more
    /// with padding (two-byte form), of which the first counts.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let b = *data.first().ok_or(WireError::BadLength)?;
        Ok(AudioLevel {
            voice: b & 0x80 != 0,
            level: b & 0x7f,
        })
    }

    /// Writes one byte.
    pub fn write(self, out: &mut [u8]) -> Result<()> {
        if self.level > 127 {
            return Err(WireError::OutOfRange);
        }
        let slot = out.first_mut().ok_or(WireError::BadLength)?;
        *slot = (u8::from(self.voice) << 7) | self.level;
        Ok(())
    }
}

/// The mandatory fields of the AV1 dependency descriptor (AV1 RTP spec §A.8.1),
/// enough to find frame boundaries without the template structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyDescriptorHead {
    /// First packet of a frame.
    pub start_of_frame: bool,
    /// Last packet of a frame.
    pub end_of_frame: bool,
    /// Frame dependency template id (6 bits).
    pub template_id: u8,
    /// Frame number (16 bits, wrapping).
    pub frame_number: u16,
}

impl DependencyDescriptorHead {
    /// Reads the first three bytes.
    pub fn parse(data: &[u8]) -> Result<Self> {
        if data.len() < 3 {
            return Err(WireError::Truncated);
        }
        Ok(DependencyDescriptorHead {
            start_of_frame: data[0] & 0x80 != 0,
            end_of_frame: data[0] & 0x40 != 0,
            template_id: data[0] & 0x3f,
            frame_number: be::u16_at(data, 1),
        })
    }
}

/// Reads a mid, rid or repaired-rid value (RFC 8852 §3, RFC 8843 §15): 1–255
/// bytes of `A-Z a-z 0-9 - _`, the characters an SDP token for these may use.
/// Trailing NUL bytes (padding some senders leave in the value) are dropped.
pub fn sdes_token(data: &[u8]) -> Result<&str> {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let value = &data[..end];
    if value.is_empty() {
        return Err(WireError::BadLength);
    }
    if !value
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return Err(WireError::Malformed);
    }
    // All bytes are ASCII, so this cannot fail.
    core::str::from_utf8(value).map_err(|_| WireError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_send_time_fixed_point() {
        let t = AbsSendTime::from_micros(1_500_000);
        assert_eq!(t.0, 0x06_0000);
        assert_eq!(t.to_micros(), 1_500_000);
        let mut out = [0u8; 3];
        t.write(&mut out).unwrap();
        assert_eq!(AbsSendTime::parse(&out).unwrap(), t);
        assert_eq!(AbsSendTime::parse(&out[..2]), Err(WireError::BadLength));
        // wraps after 64 s
        assert_eq!(AbsSendTime::from_micros(64_000_000).0, 0);
    }

    #[test]
    fn audio_level_rfc6464() {
        let a = AudioLevel::parse(&[0x80 | 30]).unwrap();
        assert_eq!(
            a,
            AudioLevel {
                voice: true,
                level: 30
            }
        );
        let mut out = [0u8; 1];
        AudioLevel {
            voice: false,
            level: 127,
        }
        .write(&mut out)
        .unwrap();
        assert_eq!(out, [127]);
        assert!(
            AudioLevel {
                voice: false,
                level: 128
            }
            .write(&mut out)
            .is_err()
        );
        assert!(AudioLevel::parse(&[]).is_err());
    }

    #[test]
    fn sdes_tokens() {
        assert_eq!(sdes_token(b"q"), Ok("q"));
        assert_eq!(sdes_token(b"f-1_x\0\0"), Ok("f-1_x"));
        assert_eq!(sdes_token(b"\0"), Err(WireError::BadLength));
        assert_eq!(sdes_token(b"a b"), Err(WireError::Malformed));
    }

    #[test]
    fn transport_sequence_and_dd() {
        assert_eq!(TransportSequence::parse(&[1, 2]).unwrap().0, 0x0102);
        let dd = DependencyDescriptorHead::parse(&[0xc5, 0x01, 0x00]).unwrap();
        assert!(dd.start_of_frame && dd.end_of_frame);
        assert_eq!((dd.template_id, dd.frame_number), (5, 256));
    }
}
