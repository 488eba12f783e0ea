//! Serde forms of the SDP facts kept in the control plane's saved state
//! (`hub::saved`): media kinds as short strings.

/// `SdpMediaValue` as `"audio"`, `"video"` or `"application"`.
pub mod media_kind {
    use serde::{Deserialize, Deserializer, Serializer};
    use webrtc_sdp::media_type::SdpMediaValue;

    /// Writes the kind.
    pub fn serialize<S: Serializer>(v: &SdpMediaValue, s: S) -> Result<S::Ok, S::Error> {
        match v {
            SdpMediaValue::Audio => s.serialize_str("audio"),
            SdpMediaValue::Video => s.serialize_str("video"),
            SdpMediaValue::Application => s.serialize_str("application"),
            SdpMediaValue::Unknown(other) => s.serialize_str(other),
        }
    }

    /// Reads the kind.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SdpMediaValue, D::Error> {
        match String::deserialize(d)?.as_str() {
            "audio" => Ok(SdpMediaValue::Audio),
            "video" => Ok(SdpMediaValue::Video),
            "application" => Ok(SdpMediaValue::Application),
            other => Ok(SdpMediaValue::Unknown(other.to_string())),
        }
    }
}
