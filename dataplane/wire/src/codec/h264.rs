//! H.264 RTP payloads (RFC 6184 §5): which NAL units a packet carries and
//! whether it starts a key frame.

use crate::{Result, WireError, be};

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// How the NAL units are packed into this RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Packetization {
    /// One NAL unit (types 1–23), RFC 6184 §5.6.
    SingleNal,
    /// Several NAL units with 16-bit sizes, §5.7.1.
    StapA,
    /// A fragment of one NAL unit, §5.8.
    FuA {
        /// First fragment.
        start: bool,
        /// Last fragment.
        end: bool,
    },
}

/// What one H.264 RTP payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Payload {
    /// Packetization mode of this packet.
    pub packetization: H264Packetization,
    /// A NAL unit (or the start of one) of type IDR slice is present.
    pub has_idr: bool,
    /// A sequence parameter set is present.
    pub has_sps: bool,
    /// A picture parameter set is present.
    pub has_pps: bool,
}

impl H264Payload {
    /// Reads the NAL unit headers of a payload. STAP-A sizes are checked
    /// against the payload; STAP-B, MTAP and FU-B (not used by WebRTC) are
    /// rejected as `WrongType`.
    pub fn parse(payload: &[u8]) -> Result<H264Payload> {
        let first = *payload.first().ok_or(WireError::Truncated)?;
        if first & 0x80 != 0 {
            return Err(WireError::Malformed); // forbidden_zero_bit
        }
        let mut info = H264Payload {
            packetization: H264Packetization::SingleNal,
            has_idr: false,
            has_sps: false,
            has_pps: false,
        };
        match first & 0x1f {
            t @ 1..=23 => info.note(t),
            STAP_A => {
                info.packetization = H264Packetization::StapA;
                let mut at = 1;
                while at < payload.len() {
                    if payload.len() < at + 2 {
                        return Err(WireError::Truncated);
                    }
                    let size = be::u16_at(payload, at) as usize;
                    at += 2;
                    if size == 0 || payload.len() < at + size {
                        return Err(WireError::BadLength);
                    }
                    info.note(payload[at] & 0x1f);
                    at += size;
                }
            }
            FU_A => {
                let fu = *payload.get(1).ok_or(WireError::Truncated)?;
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                info.packetization = H264Packetization::FuA { start, end };
                if start {
                    info.note(fu & 0x1f);
                }
            }
            _ => return Err(WireError::WrongType),
        }
        Ok(info)
    }

    fn note(&mut self, nal_type: u8) {
        match nal_type {
            NAL_IDR => self.has_idr = true,
            NAL_SPS => self.has_sps = true,
            NAL_PPS => self.has_pps = true,
            _ => {}
        }
    }

    /// True when this packet begins a key frame: it carries an SPS or the
    /// first bytes of an IDR slice. A decoder can start from here.
    pub fn is_keyframe(&self) -> bool {
        self.has_sps || self.has_idr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stap_fu() {
        assert!(H264Payload::parse(&[0x65, 0x88]).unwrap().is_keyframe());
        assert!(!H264Payload::parse(&[0x41, 0x9a]).unwrap().is_keyframe());
        // STAP-A with SPS (2 bytes) and PPS (1 byte)
        let stap = [0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68];
        let p = H264Payload::parse(&stap).unwrap();
        assert!(p.has_sps && p.has_pps && p.is_keyframe());
        assert_eq!(p.packetization, H264Packetization::StapA);
        // FU-A start of IDR, then a middle fragment
        let p = H264Payload::parse(&[0x7c, 0x85, 0xaa]).unwrap();
        assert!(p.is_keyframe());
        assert_eq!(
            p.packetization,
            H264Packetization::FuA {
                start: true,
                end: false
            }
        );
        assert!(
            !H264Payload::parse(&[0x7c, 0x05, 0xaa])
                .unwrap()
                .is_keyframe()
        );
    }

    #[test]
    fn rejects_bad() {
        assert_eq!(H264Payload::parse(&[]), Err(WireError::Truncated));
        assert_eq!(
            H264Payload::parse(&[0x78, 0, 5, 0x67]),
            Err(WireError::BadLength)
        );
        assert_eq!(H264Payload::parse(&[0x78, 0]), Err(WireError::Truncated));
        assert_eq!(H264Payload::parse(&[0x7c]), Err(WireError::Truncated));
        assert_eq!(H264Payload::parse(&[0x79, 0]), Err(WireError::WrongType));
        assert_eq!(H264Payload::parse(&[0xe5]), Err(WireError::Malformed));
    }
}
