//! Shared fixtures for Switchyard's benchmarks and packet generator: the
//! packets a browser sends, built with the wire crate's writers.
#![forbid(unsafe_code)]

use switchyard_wire::rtp::{AbsSendTime, Extension, RtpHeader};

pub mod load;

/// Extension ids as Chromium numbers them in its default offer.
pub mod ext_id {
    /// abs-send-time.
    pub const ABS_SEND_TIME: u8 = 2;
    /// transport-wide-cc.
    pub const TRANSPORT_CC: u8 = 3;
    /// sdes:mid.
    pub const MID: u8 = 4;
}

/// A VP8 RTP packet of `len` bytes as Chromium sends it: one-byte
/// extensions (abs-send-time, transport-cc, mid) and a full VP8 descriptor
/// with a 15-bit picture id, TL0PICIDX and temporal layer.
pub fn vp8_packet(seq: u16, ssrc: u32, len: usize) -> Vec<u8> {
    let ast = AbsSendTime::from_micros(1_234_567).0.to_be_bytes();
    let twcc = seq.to_be_bytes();
    let exts = [
        Extension {
            id: ext_id::ABS_SEND_TIME,
            data: &ast[1..],
        },
        Extension {
            id: ext_id::TRANSPORT_CC,
            data: &twcc,
        },
        Extension {
            id: ext_id::MID,
            data: b"0",
        },
    ];
    let header = RtpHeader {
        marker: false,
        payload_type: 96,
        sequence_number: seq,
        timestamp: u32::from(seq).wrapping_mul(3000),
        ssrc,
        csrcs: &[],
        extensions: &exts,
    };
    let mut buf = vec![0u8; len.max(64)];
    let n = header.emit(&mut buf).unwrap_or(0);
    // X S PID=0 | I L T | M + 15-bit picture id | TL0PICIDX | TID=0 Y
    let descriptor = [
        0x90,
        0xe0,
        0x80 | (seq >> 8) as u8 & 0x7f,
        seq as u8,
        7,
        0x20,
    ];
    buf[n..n + descriptor.len()].copy_from_slice(&descriptor);
    for (i, b) in buf[n + descriptor.len()..].iter_mut().enumerate() {
        *b = i as u8;
    }
    buf.truncate(len.max(n + descriptor.len()));
    buf
}

#[cfg(test)]
mod tests {
    use switchyard_wire::codec::Vp8Descriptor;
    use switchyard_wire::rtp::RtpPacket;

    #[test]
    fn fixture_parses() {
        let p = super::vp8_packet(0x1234, 9, 1200);
        assert_eq!(p.len(), 1200);
        let rtp = RtpPacket::new_checked(&p[..]).unwrap();
        assert_eq!(rtp.extension(super::ext_id::MID), Some(&b"0"[..]));
        let d = Vp8Descriptor::new_checked(rtp.payload()).unwrap();
        assert_eq!(d.picture_id(), Some(0x1234));
        assert_eq!(d.tl0_pic_idx(), Some(7));
    }
}
