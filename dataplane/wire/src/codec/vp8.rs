//! VP8 payload descriptor (RFC 7741 §4.2).
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      |X|R|N|S|R| PID |  (required)
//! X:   |I|L|T|K| RSV   |  (optional)
//! I:   |M| PictureID   |  (optional; M=1: 15-bit id, second byte follows)
//! L:   |   TL0PICIDX   |  (optional)
//! T/K: |TID|Y| KEYIDX  |  (optional)
//! ```
//! The VP8 payload header follows; its first bit P is 0 on a key frame
//! (RFC 7741 §4.3), read only on the first packet of partition 0.

use crate::{Result, WireError};

/// A view of a VP8 RTP payload (descriptor and the frame data after it).
#[derive(Debug, Clone, Copy)]
pub struct Vp8Descriptor<T> {
    buf: T,
    picture_id_at: Option<(usize, bool)>,
    tl0_at: Option<usize>,
    tk_at: Option<usize>,
    header_len: usize,
}

impl<T: AsRef<[u8]>> Vp8Descriptor<T> {
    /// Parses the descriptor at the front of an RTP payload.
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        let first = *b.first().ok_or(WireError::Truncated)?;
        let mut at = 1;
        let (mut picture_id_at, mut tl0_at, mut tk_at) = (None, None, None);
        if first & 0x80 != 0 {
            let x = *b.get(at).ok_or(WireError::Truncated)?;
            at += 1;
            if x & 0x80 != 0 {
                let m = *b.get(at).ok_or(WireError::Truncated)?;
                let long = m & 0x80 != 0;
                picture_id_at = Some((at, long));
                at += if long { 2 } else { 1 };
            }
            if x & 0x40 != 0 {
                tl0_at = Some(at);
                at += 1;
            }
            if x & 0x30 != 0 {
                tk_at = Some(at);
                at += 1;
            }
        }
        if b.len() < at {
            return Err(WireError::Truncated);
        }
        Ok(Vp8Descriptor {
            buf,
            picture_id_at,
            tl0_at,
            tk_at,
            header_len: at,
        })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    /// Length of the descriptor; the VP8 data starts here.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// N bit: the frame is not used as a reference.
    pub fn non_reference(&self) -> bool {
        self.b()[0] & 0x20 != 0
    }
    /// S bit: this packet starts a VP8 partition.
    pub fn start_of_partition(&self) -> bool {
        self.b()[0] & 0x10 != 0
    }
    /// Partition index.
    pub fn partition_id(&self) -> u8 {
        self.b()[0] & 0x07
    }
    /// First packet of a frame: start of partition 0.
    pub fn start_of_frame(&self) -> bool {
        self.start_of_partition() && self.partition_id() == 0
    }
    /// Picture id (7 or 15 bits) if present.
    pub fn picture_id(&self) -> Option<u16> {
        let (at, long) = self.picture_id_at?;
        let b = self.b();
        Some(if long {
            u16::from_be_bytes([b[at] & 0x7f, b[at + 1]])
        } else {
            u16::from(b[at] & 0x7f)
        })
    }
    /// True when the picture id is 15 bits wide.
    pub fn picture_id_is_long(&self) -> bool {
        matches!(self.picture_id_at, Some((_, true)))
    }
    /// TL0PICIDX if present.
    pub fn tl0_pic_idx(&self) -> Option<u8> {
        self.tl0_at.map(|at| self.b()[at])
    }
    /// Temporal layer index if present (T bit).
    pub fn temporal_id(&self) -> Option<u8> {
        let at = self.tk_at?;
        let x = self.b()[1];
        (x & 0x20 != 0).then(|| self.b()[at] >> 6)
    }
    /// Y bit: layer sync (only meaningful with a temporal id).
    pub fn layer_sync(&self) -> bool {
        self.tk_at
            .is_some_and(|at| self.b()[1] & 0x20 != 0 && self.b()[at] & 0x20 != 0)
    }
    /// KEYIDX if present (K bit).
    pub fn key_idx(&self) -> Option<u8> {
        let at = self.tk_at?;
        (self.b()[1] & 0x10 != 0).then(|| self.b()[at] & 0x1f)
    }
    /// True on the first packet of a key frame (RFC 7741 §4.3: P bit clear).
    pub fn is_keyframe(&self) -> bool {
        self.start_of_frame() && self.b().get(self.header_len).is_some_and(|p| p & 0x01 == 0)
    }
    /// The VP8 data after the descriptor.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Vp8Descriptor<T> {
    /// Rewrites the picture id in place, keeping its width (the value is
    /// truncated to 7 or 15 bits). Returns `MissingAttribute` without one.
    pub fn set_picture_id(&mut self, id: u16) -> Result<()> {
        let (at, long) = self.picture_id_at.ok_or(WireError::MissingAttribute)?;
        let b = self.buf.as_mut();
        if long {
            b[at] = 0x80 | ((id >> 8) as u8 & 0x7f);
            b[at + 1] = id as u8;
        } else {
            b[at] = id as u8 & 0x7f;
        }
        Ok(())
    }
    /// Rewrites TL0PICIDX in place. Returns `MissingAttribute` without one.
    pub fn set_tl0_pic_idx(&mut self, idx: u8) -> Result<()> {
        let at = self.tl0_at.ok_or(WireError::MissingAttribute)?;
        self.buf.as_mut()[at] = idx;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7741_full_descriptor() {
        // X S PID=0 | I L T K | M + 15-bit id 0x1234 | TL0 5 | TID 2 Y KEYIDX 3 | key frame
        let mut p = [0x90, 0xf0, 0x92, 0x34, 5, 0b1010_0011, 0x10, 0xaa];
        let d = Vp8Descriptor::new_checked(&p[..]).unwrap();
        assert_eq!(d.header_len(), 6);
        assert_eq!(d.picture_id(), Some(0x1234));
        assert!(d.picture_id_is_long());
        assert_eq!(d.tl0_pic_idx(), Some(5));
        assert_eq!(d.temporal_id(), Some(2));
        assert!(d.layer_sync());
        assert_eq!(d.key_idx(), Some(3));
        assert!(d.is_keyframe());
        let mut d = Vp8Descriptor::new_checked(&mut p[..]).unwrap();
        d.set_picture_id(0x7fff).unwrap();
        d.set_tl0_pic_idx(9).unwrap();
        let d = Vp8Descriptor::new_checked(&p[..]).unwrap();
        assert_eq!((d.picture_id(), d.tl0_pic_idx()), (Some(0x7fff), Some(9)));
    }

    #[test]
    fn short_picture_id_and_no_extension() {
        let mut p = [0x80, 0x80, 0x05, 0x01];
        let mut d = Vp8Descriptor::new_checked(&mut p[..]).unwrap();
        assert!(!d.is_keyframe());
        d.set_picture_id(200).unwrap();
        assert_eq!(d.picture_id(), Some(200 & 0x7f));
        assert_eq!(d.set_tl0_pic_idx(1), Err(WireError::MissingAttribute));
        let d = Vp8Descriptor::new_checked(&[0x10u8, 0x00][..]).unwrap();
        assert_eq!((d.header_len(), d.picture_id()), (1, None));
        assert!(d.is_keyframe());
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Vp8Descriptor::new_checked(&[][..]).unwrap_err(),
            WireError::Truncated
        );
        assert!(Vp8Descriptor::new_checked(&[0x80u8][..]).is_err());
        assert!(Vp8Descriptor::new_checked(&[0x80u8, 0x80, 0x80][..]).is_err());
        assert!(Vp8Descriptor::new_checked(&[0x80u8, 0x40][..]).is_err());
    }
}
