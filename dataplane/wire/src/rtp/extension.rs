//! RTP header extension elements (RFC 8285).
//!
//! One-byte form (profile `0xBEDE`, §4.2): `ID(4) | L(4)` then L+1 bytes;
//! ID 0 is a padding byte, ID 15 stops parsing. Two-byte form (profile
//! `0x100X`, §4.3): `ID(8) | L(8)` then L bytes; ID 0 is a padding byte.

use core::ops::Range;

/// Profile value of the one-byte form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Profile value of the two-byte form, low four bits being "appbits".
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// The two RFC 8285 element encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// One-byte headers: ids 1–14, values 1–16 bytes.
    OneByte,
    /// Two-byte headers: ids 1–255, values 0–255 bytes.
    TwoByte,
}

impl ExtensionForm {
    /// The form named by an extension block's profile field.
    pub fn from_profile(profile: u16) -> Option<ExtensionForm> {
        if profile == ONE_BYTE_PROFILE {
            Some(ExtensionForm::OneByte)
        } else if profile & 0xfff0 == TWO_BYTE_PROFILE {
            Some(ExtensionForm::TwoByte)
        } else {
            None
        }
    }

    /// The profile value that announces this form.
    pub fn profile(self) -> u16 {
        match self {
            ExtensionForm::OneByte => ONE_BYTE_PROFILE,
            ExtensionForm::TwoByte => TWO_BYTE_PROFILE,
        }
    }

    /// Bytes an element of this length takes, header included, or `None`
    /// when this form cannot carry it.
    pub fn element_len(self, id: u8, value_len: usize) -> Option<usize> {
        match self {
            ExtensionForm::OneByte if (1..=14).contains(&id) && (1..=16).contains(&value_len) => {
                Some(1 + value_len)
            }
            ExtensionForm::TwoByte if id >= 1 && value_len <= 255 => Some(2 + value_len),
            _ => None,
        }
    }
}

/// One header extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Local identifier negotiated in SDP (`a=extmap`).
    pub id: u8,
    /// The element's value.
    pub data: &'a [u8],
}

/// Iterator over the elements of an extension block.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    form: ExtensionForm,
    data: &'a [u8],
    pos: usize,
}

impl<'a> ExtensionIter<'a> {
    pub(crate) fn new(form: ExtensionForm, data: &'a [u8]) -> Self {
        ExtensionIter { form, data, pos: 0 }
    }
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = Extension<'a>;

    fn next(&mut self) -> Option<Extension<'a>> {
        let (id, range) = next_element(self.form, self.data, &mut self.pos)?;
        Some(Extension {
            id,
            data: &self.data[range],
        })
    }
}

/// Reads the element at `*pos`, skipping padding. Returns `None` at the end
/// or at the first malformed element (RFC 8285 §4.2: stop processing).
fn next_element(form: ExtensionForm, data: &[u8], pos: &mut usize) -> Option<(u8, Range<usize>)> {
    loop {
        let first = *data.get(*pos)?;
        match form {
            ExtensionForm::OneByte => {
                let id = first >> 4;
                if id == 0 {
                    *pos += 1;
                    continue;
                }
                if id == 15 {
                    *pos = data.len();
                    return None;
                }
                let len = (first & 0x0f) as usize + 1;
                let start = *pos + 1;
                if start + len > data.len() {
                    *pos = data.len();
                    return None;
                }
                *pos = start + len;
                return Some((id, start..start + len));
            }
            ExtensionForm::TwoByte => {
                if first == 0 {
                    *pos += 1;
                    continue;
                }
                let len = *data.get(*pos + 1)? as usize;
                let start = *pos + 2;
                if start + len > data.len() {
                    *pos = data.len();
                    return None;
                }
                *pos = start + len;
                return Some((first, start..start + len));
            }
        }
    }
}

/// Range of the value of element `id` inside the extension body.
pub(crate) fn find(form: ExtensionForm, data: &[u8], id: u8) -> Option<Range<usize>> {
    let mut pos = 0;
    while let Some((found, range)) = next_element(form, data, &mut pos) {
        if found == id {
            return Some(range);
        }
    }
    None
}

/// The extension ids one endpoint negotiated (`a=extmap`), so that the packet
/// path looks values up by meaning rather than by number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtensionIds {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`
    pub mid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`
    pub rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`
    pub repaired_rid: Option<u8>,
    /// `http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time`
    pub abs_send_time: Option<u8>,
    /// `http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01`
    pub transport_cc: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level`
    pub audio_level: Option<u8>,
    /// `https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension`
    pub dependency_descriptor: Option<u8>,
}

impl ExtensionIds {
    /// The ids in a fixed order — mid, rid, repaired-rid, abs-send-time,
    /// transport-cc, audio-level, dependency-descriptor — the order the
    /// shared-memory ABI and the cluster protocol carry them in.
    pub fn to_array(&self) -> [Option<u8>; 7] {
        [
            self.mid,
            self.rid,
            self.repaired_rid,
            self.abs_send_time,
            self.transport_cc,
            self.audio_level,
            self.dependency_descriptor,
        ]
    }

    /// The ids back from [`ExtensionIds::to_array`]'s order.
    pub fn from_array(a: [Option<u8>; 7]) -> ExtensionIds {
        let [
            mid,
            rid,
            repaired_rid,
            abs_send_time,
            transport_cc,
            audio_level,
            dependency_descriptor,
        ] = a;
        ExtensionIds {
            mid,
            rid,
            repaired_rid,
            abs_send_time,
            transport_cc,
            audio_level,
            dependency_descriptor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_padding_and_stop() {
        // padding, id 2 len 1, padding, id 15 (stop), then junk that is not read
        let data = [0x00, 0x20, 0xaa, 0x00, 0xf0, 0x31, 0x01, 0x02];
        let items: Vec<_> = ExtensionIter::new(ExtensionForm::OneByte, &data).collect();
        assert_eq!(
            items,
            vec![Extension {
                id: 2,
                data: &[0xaa]
            }]
        );
    }

    #[test]
    fn two_byte_zero_length_and_overrun() {
        let data = [0x05, 0x00, 0x00, 0x07, 0x02, 0xaa, 0xbb, 0x08, 0x09, 0x01];
        let items: Vec<_> = ExtensionIter::new(ExtensionForm::TwoByte, &data).collect();
        assert_eq!(
            items,
            vec![
                Extension { id: 5, data: &[] },
                Extension {
                    id: 7,
                    data: &[0xaa, 0xbb]
                }
            ]
        );
        assert_eq!(find(ExtensionForm::TwoByte, &data, 8), None);
    }

    #[test]
    fn profiles() {
        assert_eq!(
            ExtensionForm::from_profile(0xbede),
            Some(ExtensionForm::OneByte)
        );
        assert_eq!(
            ExtensionForm::from_profile(0x1003),
            Some(ExtensionForm::TwoByte)
        );
        assert_eq!(ExtensionForm::from_profile(0x1234), None);
    }
}
