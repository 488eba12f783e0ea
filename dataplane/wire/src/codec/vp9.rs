//! VP9 payload descriptor (RFC 9628, formerly draft-ietf-payload-vp9, §4.2).
//!
//! ```text
//!      |I|P|L|F|B|E|V|Z|  (required)
//! I:   |M| PICTURE ID  |  (M=1: 15-bit id, second byte follows)
//! L:   | TID |U| SID |D|  (layer indices)
//!      |   TL0PICIDX   |  (only in non-flexible mode, F=0)
//! P,F: | P_DIFF      |N|  (up to 3 reference indices, N: another follows)
//! V:   | SS ...        |  (scalability structure)
//! ```

use crate::{Result, WireError};

/// A parsed VP9 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Descriptor {
    /// P: inter-picture predicted (false on a key frame's base layer).
    pub inter_predicted: bool,
    /// F: flexible mode.
    pub flexible: bool,
    /// B: first packet of a layer frame.
    pub start_of_frame: bool,
    /// E: last packet of a layer frame.
    pub end_of_frame: bool,
    /// Z: not used as reference by upper spatial layers.
    pub not_upper_reference: bool,
    /// Picture id (7 or 15 bits).
    pub picture_id: Option<u16>,
    /// Temporal layer id.
    pub temporal_id: Option<u8>,
    /// U: switching up point.
    pub switching_up: bool,
    /// Spatial layer id.
    pub spatial_id: Option<u8>,
    /// D: inter-layer dependency.
    pub inter_layer_dependency: bool,
    /// TL0PICIDX (non-flexible mode).
    pub tl0_pic_idx: Option<u8>,
    /// Number of spatial layers announced by a scalability structure.
    pub ss_spatial_layers: Option<u8>,
    /// Length of the descriptor.
    pub header_len: usize,
}

impl Vp9Descriptor {
    /// Parses the descriptor at the front of an RTP payload, including (and
    /// skipping over) reference indices and the scalability structure.
    pub fn parse(b: &[u8]) -> Result<Vp9Descriptor> {
        let byte = |at: usize| b.get(at).copied().ok_or(WireError::Truncated);
        let first = byte(0)?;
        let bit = |n: u8| first & (0x80 >> n) != 0;
        let mut d = Vp9Descriptor {
            inter_predicted: bit(1),
            flexible: bit(3),
            start_of_frame: bit(4),
            end_of_frame: bit(5),
            not_upper_reference: bit(7),
            picture_id: None,
            temporal_id: None,
            switching_up: false,
            spatial_id: None,
            inter_layer_dependency: false,
            tl0_pic_idx: None,
            ss_spatial_layers: None,
            header_len: 0,
        };
        let mut at = 1;
        if bit(0) {
            let m = byte(at)?;
            if m & 0x80 != 0 {
                d.picture_id = Some(u16::from_be_bytes([m & 0x7f, byte(at + 1)?]));
                at += 2;
            } else {
                d.picture_id = Some(u16::from(m));
                at += 1;
            }
        }
        if bit(2) {
            let l = byte(at)?;
            d.temporal_id = Some(l >> 5);
            d.switching_up = l & 0x10 != 0;
            d.spatial_id = Some((l >> 1) & 0x07);
            d.inter_layer_dependency = l & 0x01 != 0;
            at += 1;
            if !d.flexible {
                d.tl0_pic_idx = Some(byte(at)?);
                at += 1;
            }
        }
        if d.flexible && d.inter_predicted {
            for n in 0.. {
                if n == 3 {
                    return Err(WireError::Malformed); // at most three P_DIFFs
                }
                let p = byte(at)?;
                at += 1;
                if p & 0x01 == 0 {
                    break;
                }
            }
        }
        if bit(6) {
            let ss = byte(at)?;
            at += 1;
            let layers = (ss >> 5) + 1;
            d.ss_spatial_layers = Some(layers);
            if ss & 0x10 != 0 {
                at += 4 * layers as usize;
            }
            if ss & 0x08 != 0 {
                let groups = byte(at)?;
                at += 1;
                for _ in 0..groups {
                    let g = byte(at)?;
                    at += 1 + ((g >> 2) & 0x03) as usize;
                }
            }
            if b.len() < at {
                return Err(WireError::Truncated);
            }
        }
        d.header_len = at;
        Ok(d)
    }

    /// True on the first packet of a key frame: not inter-predicted, start
    /// of a frame, base spatial layer.
    pub fn is_keyframe(&self) -> bool {
        !self.inter_predicted && self.start_of_frame && self.spatial_id.unwrap_or(0) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_with_ss() {
        // I L B V | M + 15-bit id | TID 0 SID 0 | TL0 7 | SS: 3 layers, Y, G with 1 group (R=1)
        let b = [
            0b1010_1010,
            0x81,
            0x02,
            0x00,
            7,
            0b0101_1000,
            0,
            80,
            0,
            45,
            0,
            160,
            0,
            90,
            1,
            64,
            0,
            180,
            1,
            0x14,
            0x01,
            0xee,
        ];
        let d = Vp9Descriptor::parse(&b).unwrap();
        assert_eq!(d.picture_id, Some(0x102));
        assert_eq!(
            (d.temporal_id, d.spatial_id, d.tl0_pic_idx),
            (Some(0), Some(0), Some(7))
        );
        assert_eq!(d.ss_spatial_layers, Some(3));
        assert!(d.is_keyframe());
        assert_eq!(d.header_len, b.len() - 1);
        assert_eq!(Vp9Descriptor::parse(&b[..20]), Err(WireError::Truncated));
    }

    #[test]
    fn flexible_inter_frame() {
        // I P L F B | 7-bit id | TID 1 SID 1 D | P_DIFF 1 N | P_DIFF 2
        let b = [0b1111_1000, 0x05, 0b0010_0011, 0x03, 0x04, 0xee];
        let d = Vp9Descriptor::parse(&b).unwrap();
        assert_eq!(d.header_len, 5);
        assert_eq!((d.temporal_id, d.spatial_id), (Some(1), Some(1)));
        assert!(d.inter_layer_dependency && !d.is_keyframe());
        assert_eq!(
            Vp9Descriptor::parse(&[0b1111_1000, 5, 0, 1, 1, 1, 0]),
            Err(WireError::Malformed)
        );
        assert_eq!(Vp9Descriptor::parse(&b[..3]), Err(WireError::Truncated));
    }
}
