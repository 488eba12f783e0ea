//! Which protocol a datagram on a shared WebRTC port belongs to.
//!
//! RFC 7983 §7 multiplexes by the first byte; RFC 5761 §4 tells RTCP from RTP
//! by the second byte (RTCP packet types 192–223 collide with RTP payload types
//! 64–95 with the marker bit set, which WebRTC therefore never uses for RTP).

/// The protocol of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// First byte 0–3 (RFC 7983): STUN.
    Stun,
    /// First byte 16–19: ZRTP (not used by WebRTC; dropped).
    Zrtp,
    /// First byte 20–63: DTLS.
    Dtls,
    /// First byte 64–79: TURN channel data.
    TurnChannel,
    /// First byte 128–191 and second byte outside 192–223: RTP.
    Rtp,
    /// First byte 128–191 and second byte 192–223: RTCP.
    Rtcp,
    /// Anything else, including empty datagrams.
    Unknown,
}

impl PacketKind {
    /// Classifies a datagram by its first two bytes.
    #[inline]
    pub fn classify(datagram: &[u8]) -> PacketKind {
        let Some(&first) = datagram.first() else {
            return PacketKind::Unknown;
        };
        match first {
            0..=3 => PacketKind::Stun,
            16..=19 => PacketKind::Zrtp,
            20..=63 => PacketKind::Dtls,
            64..=79 => PacketKind::TurnChannel,
            128..=191 => match datagram.get(1) {
                Some(192..=223) => PacketKind::Rtcp,
                Some(_) => PacketKind::Rtp,
                None => PacketKind::Unknown,
            },
            _ => PacketKind::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7983_ranges() {
        assert_eq!(PacketKind::classify(&[0x00, 0x01]), PacketKind::Stun);
        assert_eq!(PacketKind::classify(&[3]), PacketKind::Stun);
        assert_eq!(PacketKind::classify(&[4]), PacketKind::Unknown);
        assert_eq!(PacketKind::classify(&[17]), PacketKind::Zrtp);
        assert_eq!(PacketKind::classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(PacketKind::classify(&[63]), PacketKind::Dtls);
        assert_eq!(PacketKind::classify(&[64]), PacketKind::TurnChannel);
        assert_eq!(PacketKind::classify(&[0x80, 96]), PacketKind::Rtp);
        assert_eq!(PacketKind::classify(&[0x80, 96 | 0x80]), PacketKind::Rtp);
        assert_eq!(PacketKind::classify(&[0x80, 200]), PacketKind::Rtcp);
        assert_eq!(PacketKind::classify(&[0x81, 205]), PacketKind::Rtcp);
        assert_eq!(PacketKind::classify(&[0x80, 223]), PacketKind::Rtcp);
        assert_eq!(PacketKind::classify(&[0x80, 224]), PacketKind::Rtp);
        assert_eq!(PacketKind::classify(&[0x80]), PacketKind::Unknown);
        assert_eq!(PacketKind::classify(&[192, 0]), PacketKind::Unknown);
        assert_eq!(PacketKind::classify(&[]), PacketKind::Unknown);
    }
}
