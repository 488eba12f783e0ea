//! Writing the SFU's answer.

use super::offer::{CodecOffer, Direction, MediaOffer, Offer, Setup};
use super::{SdpError, uri};
use crate::dtls::Fingerprint;
use crate::ice::Credentials;
use std::fmt::Write as _;
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
fn choose(m: &MediaOffer) -> Option<CodecOffer> {
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

fn extension_ids(m: &MediaOffer) -> ExtensionIds {
    let id = |u: &str| m.extensions.iter().find(|(_, x)| x == u).map(|(id, _)| *id);
    ExtensionIds {
        mid: id(uri::MID),
        rid: id(uri::RID),
        repaired_rid: id(uri::REPAIRED_RID),
        abs_send_time: id(uri::ABS_SEND_TIME),
        transport_cc: id(uri::TRANSPORT_CC),
        audio_level: id(uri::AUDIO_LEVEL),
        dependency_descriptor: id(uri::DEPENDENCY_DESCRIPTOR),
    }
}

/// Writes the answer to `offer` and what each m-line negotiated.
pub fn answer(offer: &Offer, p: &AnswerParams<'_>) -> Result<(String, Vec<Negotiated>), SdpError> {
    let mut out = String::with_capacity(4096);
    let mut negotiated = Vec::new();
    for m in &offer.media {
        let codec = if m.rejected { None } else { choose(m) };
        let direction = match (codec.is_some(), m.direction) {
            (false, _) | (_, Direction::Inactive) => Direction::Inactive,
            (true, Direction::SendOnly | Direction::SendRecv) => Direction::RecvOnly,
            (true, Direction::RecvOnly) => Direction::SendOnly,
        };
        negotiated.push(Negotiated {
            mid: m.mid.clone(),
            kind: m.kind.clone(),
            codec,
            ext: extension_ids(m),
            rids: if direction == Direction::RecvOnly {
                m.send_rids.clone()
            } else {
                Vec::new()
            },
            direction,
        });
    }
    if negotiated.iter().all(|n| n.codec.is_none()) {
        return Err(SdpError::Unsupported(
            "no m-line with a codec the SFU forwards (Opus, VP8, H.264, VP9, AV1)".into(),
        ));
    }
    let bundle: Vec<&str> = negotiated
        .iter()
        .filter(|n| n.codec.is_some())
        .map(|n| n.mid.as_str())
        .collect();
    let _ = write!(
        out,
        "v=0\r\no=switchyard {} 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
        p.session_id
    );
    let _ = write!(
        out,
        "a=group:BUNDLE {}\r\na=ice-lite\r\na=msid-semantic: WMS *\r\n",
        bundle.join(" ")
    );
    let setup = if offer.setup == Setup::Passive {
        "active"
    } else {
        "passive"
    };
    for (m, n) in offer.media.iter().zip(&negotiated) {
        let kind = match m.kind {
            SdpMediaValue::Audio => "audio",
            SdpMediaValue::Video => "video",
            _ => "application",
        };
        let Some(codec) = &n.codec else {
            // rejected: port 0, the offer's first format, nothing else
            let fmt = m
                .codecs
                .first()
                .map_or("0".to_string(), |c| c.pt.to_string());
            let proto = if kind == "application" {
                "UDP/DTLS/SCTP webrtc-datachannel"
            } else {
                "UDP/TLS/RTP/SAVPF"
            };
            let fmt = if kind == "application" {
                String::new()
            } else {
                format!(" {fmt}")
            };
            let _ = write!(
                out,
                "m={kind} 0 {proto}{fmt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=inactive\r\n",
                m.mid
            );
            continue;
        };
        let pts = match codec.rtx_pt {
            Some(rtx) => format!("{} {rtx}", codec.pt),
            None => codec.pt.to_string(),
        };
        let _ = write!(
            out,
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pts}\r\nc=IN IP4 0.0.0.0\r\n"
        );
        let _ = write!(
            out,
            "a=mid:{}\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            m.mid, p.ice.ufrag, p.ice.pwd
        );
        let _ = write!(
            out,
            "a=fingerprint:{}\r\na=setup:{setup}\r\na=rtcp-mux\r\n",
            p.fingerprint.to_sdp()
        );
        let dir = match n.direction {
            Direction::RecvOnly => "recvonly",
            Direction::SendOnly => "sendonly",
            Direction::SendRecv => "sendrecv",
            Direction::Inactive => "inactive",
        };
        let _ = write!(out, "a={dir}\r\n");
        for (id, u) in &m.extensions {
            if uri::ALL.contains(&u.as_str()) {
                let _ = write!(out, "a=extmap:{id} {u}\r\n");
            }
        }
        let channels = codec.channels.map_or(String::new(), |c| format!("/{c}"));
        let _ = write!(
            out,
            "a=rtpmap:{} {}/{}{channels}\r\n",
            codec.pt, codec.name, codec.clock_rate
        );
        if let Some(f) = &codec.fmtp {
            let _ = write!(out, "a=fmtp:{} {f}\r\n", codec.pt);
        }
        for fb in &codec.rtcp_fb {
            if ["nack", "nack pli", "ccm fir", "transport-cc", "goog-remb"].contains(&fb.as_str()) {
                let _ = write!(out, "a=rtcp-fb:{} {fb}\r\n", codec.pt);
            }
        }
        if let Some(rtx) = codec.rtx_pt {
            let _ = write!(
                out,
                "a=rtpmap:{rtx} rtx/{}\r\na=fmtp:{rtx} apt={}\r\n",
                codec.clock_rate, codec.pt
            );
        }
        if !n.rids.is_empty() {
            for rid in &n.rids {
                let _ = write!(out, "a=rid:{rid} recv\r\n");
            }
            let _ = write!(out, "a=simulcast:recv {}\r\n", n.rids.join(";"));
        }
        for (i, c) in p.candidates.iter().enumerate() {
            // host candidates, UDP, highest type preference (RFC 8445 §5.1.2)
            let priority = (126u32 << 24) | ((65_535 - i as u32) << 8) | 255;
            let _ = write!(
                out,
                "a=candidate:{} 1 udp {priority} {} {} typ host\r\n",
                i + 1,
                c.ip(),
                c.port()
            );
        }
        let _ = write!(out, "a=end-of-candidates\r\n");
    }
    Ok((out, negotiated))
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
                session_id: 1,
            },
        );
        assert!(matches!(r, Err(SdpError::Unsupported(_))));
    }
}
