//! Writing the SFU's answer.

use super::offer::{CodecOffer, Direction, MediaOffer, Offer};
use super::{SdpError, uri};
use crate::dtls::Fingerprint;
use crate::ice::Credentials;
use std::net::SocketAddr;
use switchyard_wire::rtp::ExtensionIds;
use webrtc_sdp::media_type::SdpMediaValue;

/// Our side of the answer.
#[derive(Debug, Clone, Copy)]
pub struct AnswerParams<'a> {
    /// Our ICE credentials.
    pub ice: &'a Credentials,
    /// Our certificate's fingerprint.
    pub fingerprint: Fingerprint,
    /// Host candidates: the worker socket(s) this participant is placed on,
    /// as reachable addresses (advertised addresses for servers behind NAT).
    pub candidates: &'a [SocketAddr],
    /// ICE-TCP passive host candidates (RFC 6544), offered after the UDP
    /// ones at a lower priority.
    pub tcp_candidates: &'a [SocketAddr],
    /// `o=` session id.
    pub session_id: u64,
}

/// What one m-line ended up as.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    /// `a=mid`.
    pub mid: String,
    /// Audio or video.
    pub kind: SdpMediaValue,
    /// The codec (`None` when the m-line was rejected).
    pub codec: Option<CodecOffer>,
    /// Extension ids both sides use.
    pub ext: ExtensionIds,
    /// Simulcast rids we will receive, as the browser ordered them.
    pub rids: Vec<String>,
    /// Our direction in the answer.
    pub direction: Direction,
}

/// The codec the SFU takes from an m-line: Opus for audio; for video VP8
/// first (its picture ids are rewritten across layer switches), then H.264
/// with packetization-mode=1, VP9, AV1.
pub(super) fn choose(m: &MediaOffer) -> Option<CodecOffer> {
    let pick = |name: &str, ok: &dyn Fn(&CodecOffer) -> bool| {
        m.codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name) && ok(c))
            .cloned()
    };
    match m.kind {
        SdpMediaValue::Audio => pick("opus", &|c| c.clock_rate == 48_000),
        SdpMediaValue::Video => pick("VP8", &|_| true)
            .or_else(|| {
                pick("H264", &|c| {
                    c.fmtp
                        .as_deref()
                        .is_some_and(|f| f.contains("packetization-mode=1"))
                })
            })
            .or_else(|| pick("VP9", &|_| true))
            .or_else(|| pick("AV1", &|_| true)),
        _ => None,
    }
}

/// The ids of the header extensions the dataplane understands, from
/// `(id, uri)` pairs (the first id wins when a URI repeats).
pub fn extension_ids<'a>(extensions: impl IntoIterator<Item = &'a (u8, String)>) -> ExtensionIds {
    let mut ext = ExtensionIds::default();
    for (id, u) in extensions {
        let slot = match u.as_str() {
            uri::MID => &mut ext.mid,
            uri::RID => &mut ext.rid,
            uri::REPAIRED_RID => &mut ext.repaired_rid,
            uri::ABS_SEND_TIME => &mut ext.abs_send_time,
            uri::TRANSPORT_CC => &mut ext.transport_cc,
            uri::AUDIO_LEVEL => &mut ext.audio_level,
            uri::DEPENDENCY_DESCRIPTOR => &mut ext.dependency_descriptor,
            _ => continue,
        };
        slot.get_or_insert(*id);
    }
    ext
}

/// Writes the answer to `offer` and what each m-line negotiated (a
/// one-shot [`super::PcSession`]; keep the session to renegotiate).
pub fn answer(offer: &Offer, p: &AnswerParams<'_>) -> Result<(String, Vec<Negotiated>), SdpError> {
    let mut session = super::PcSession::new(p, offer);
    let text = session.answer(offer)?;
    let negotiated = session
        .lines()
        .iter()
        .zip(&offer.media)
        .map(|(l, m)| Negotiated {
            mid: l.mid.clone(),
            kind: l.kind.clone(),
            codec: l.codec.clone(),
            ext: extension_ids(&m.extensions),
            rids: l.rids.clone(),
            direction: l.direction,
        })
        .collect();
    Ok((text, negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_chrome_simulcast_offer() {
        let offer = Offer::parse(include_str!("testdata/chrome_simulcast_offer.sdp")).unwrap();
        let ice = Credentials::random();
        let fp = Fingerprint([0x11; 32]);
        let cands: [SocketAddr; 1] = ["192.0.2.10:10000".parse().unwrap()];
        let (text, neg) = answer(
            &offer,
            &AnswerParams {
                ice: &ice,
                fingerprint: fp,
                candidates: &cands,
                tcp_candidates: &[],
                session_id: 42,
            },
        )
        .unwrap();
        // the answer is itself valid SDP
        let parsed = webrtc_sdp::parse_sdp(&text, false).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed.media.len(), 2);
        assert!(text.contains("a=ice-lite\r\n") && text.contains("a=setup:passive\r\n"));
        assert!(text.contains("a=group:BUNDLE 0 1\r\n"));
        assert!(text.contains("a=simulcast:recv q;h;f\r\n") && text.contains("a=rid:f recv\r\n"));
        assert!(text.contains("a=candidate:1 1 udp 2130706431 192.0.2.10 10000 typ host\r\n"));
        assert!(
            !text.contains("toffset"),
            "unsupported extensions are not answered"
        );
        let video = &neg[1];
        assert_eq!(
            video
                .codec
                .as_ref()
                .map(|c| (c.name.as_str(), c.pt, c.rtx_pt)),
            Some(("VP8", 96, Some(97)))
        );
        assert_eq!(
            (
                video.ext.mid,
                video.ext.rid,
                video.ext.repaired_rid,
                video.ext.transport_cc
            ),
            (Some(4), Some(10), Some(11), Some(3))
        );
        assert_eq!(video.rids, vec!["q", "h", "f"]);
        assert_eq!(
            (
                neg[0].codec.as_ref().map(|c| c.pt),
                neg[0].ext.audio_level,
                neg[0].direction
            ),
            (Some(111), Some(1), Direction::RecvOnly)
        );
    }

    #[test]
    fn h264_only_and_unsupported_offers() {
        let chrome = include_str!("testdata/chrome_simulcast_offer.sdp");
        let h264 = chrome
            .replace("96 97 102 103 98 99", "102 103")
            .replace("a=rtpmap:96 VP8/90000", "a=rtpmap:96 X-NONE/90000");
        let offer = Offer::parse(&h264).unwrap();
        let ice = Credentials::random();
        let (_, neg) = answer(
            &offer,
            &AnswerParams {
                ice: &ice,
                fingerprint: Fingerprint([0; 32]),
                candidates: &[],
                tcp_candidates: &[],
                session_id: 1,
            },
        )
        .unwrap();
        assert_eq!(neg[1].codec.as_ref().map(|c| c.name.as_str()), Some("H264"));
        // an audio-only offer with nothing but PCMU: nothing to forward
        let pcmu = chrome.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 foo/48000/2");
        let pcmu = pcmu
            .split("m=video")
            .next()
            .unwrap()
            .replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0");
        let offer = Offer::parse(&pcmu).unwrap();
        let r = answer(
            &offer,
            &AnswerParams {
                ice: &ice,
                fingerprint: Fingerprint([0; 32]),
                candidates: &[],
                tcp_candidates: &[],
                session_id: 1,
            },
        );
        assert!(matches!(r, Err(SdpError::Unsupported(_))));
    }
}
