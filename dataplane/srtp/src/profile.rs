//! The four protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2).

/// An SRTP protection profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (mandatory in WebRTC).
    Aes128CmHmacSha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32 (RTP tag 32 bits; SRTCP keeps 80).
    Aes128CmHmacSha1_32,
    /// SRTP_AEAD_AES_128_GCM.
    AeadAes128Gcm,
    /// SRTP_AEAD_AES_256_GCM.
    AeadAes256Gcm,
}

impl Profile {
    /// Every profile, preferred first (GCM is cheaper, see docs/benchmarks.md).
    pub const ALL: [Profile; 4] = [
        Profile::AeadAes128Gcm,
        Profile::AeadAes256Gcm,
        Profile::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32,
    ];

    /// The DTLS-SRTP protection profile id (use_srtp extension).
    pub fn dtls_id(self) -> u16 {
        match self {
            Profile::Aes128CmHmacSha1_80 => 0x0001,
            Profile::Aes128CmHmacSha1_32 => 0x0002,
            Profile::AeadAes128Gcm => 0x0007,
            Profile::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with this DTLS-SRTP id.
    pub fn from_dtls_id(id: u16) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.dtls_id() == id)
    }

    /// The IANA name, as OpenSSL and SDP use it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
            Profile::Aes128CmHmacSha1_32 => "SRTP_AES128_CM_SHA1_32",
            Profile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Profile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// True for the AEAD (GCM) profiles.
    pub fn is_aead(self) -> bool {
        matches!(self, Profile::AeadAes128Gcm | Profile::AeadAes256Gcm)
    }

    /// Master (and session encryption) key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Profile::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes: 112 bits for AES-CM, 96 for GCM.
    pub fn salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// Authentication tag length on SRTP packets.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Profile::Aes128CmHmacSha1_80 => 10,
            Profile::Aes128CmHmacSha1_32 => 4,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 16,
        }
    }

    /// Authentication tag length on SRTCP packets (80 bits for both
    /// HMAC profiles, RFC 5764 §4.1.2).
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_aead() { 16 } else { 10 }
    }

    /// Bytes SRTP adds to an RTP packet.
    pub fn rtp_overhead(self) -> usize {
        self.rtp_tag_len()
    }

    /// Bytes SRTCP adds to an RTCP packet: tag and E‖index.
    pub fn rtcp_overhead(self) -> usize {
        self.rtcp_tag_len() + 4
    }

    /// Bytes of keying material one side needs from the DTLS exporter.
    pub fn keying_material_len(self) -> usize {
        self.key_len() + self.salt_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_dtls_id(p.dtls_id()), Some(p));
        }
        assert_eq!(Profile::from_dtls_id(3), None);
        assert_eq!(Profile::Aes128CmHmacSha1_32.rtcp_overhead(), 14);
    }
}
