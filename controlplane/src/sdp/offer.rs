//! Reading a browser's offer.

use super::SdpError;
use crate::dtls::Fingerprint;
use crate::ice::Credentials;
use webrtc_sdp::attribute_type::{
    SdpAttribute, SdpAttributeSetup, SdpAttributeType, SdpSsrcGroupSemantic,
};
use webrtc_sdp::error::SdpParserError;
use webrtc_sdp::media_type::{SdpMedia, SdpMediaValue};

/// `a=setup` (RFC 4145 / RFC 5763).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The offerer can be either (browsers offer this).
    ActPass,
    /// The offerer will be the DTLS client.
    Active,
    /// The offerer will be the DTLS server.
    Passive,
}

/// Media direction from the offerer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// `a=sendrecv`.
    SendRecv,
    /// `a=sendonly`: the browser publishes.
    SendOnly,
    /// `a=recvonly`: the browser receives.
    RecvOnly,
    /// `a=inactive` (or a rejected m-line).
    Inactive,
}

/// One codec of an m-line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodecOffer {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written (`opus`, `VP8`, `H264`, …).
    pub name: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels (audio).
    pub channels: Option<u32>,
    /// `a=fmtp` parameters, as written by the parser.
    pub fmtp: Option<String>,
    /// `a=rtcp-fb` values (`nack`, `nack pli`, `ccm fir`, `transport-cc`, `goog-remb`).
    pub rtcp_fb: Vec<String>,
    /// The RTX payload type whose `apt` is this codec.
    pub rtx_pt: Option<u8>,
}

/// One m-line of the offer.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaOffer {
    /// `a=mid`.
    pub mid: String,
    /// Audio or video (application m-lines are kept for answering them as rejected).
    pub kind: SdpMediaValue,
    /// Direction.
    pub direction: Direction,
    /// Codecs in preference order (RTX entries folded into `rtx_pt`).
    pub codecs: Vec<CodecOffer>,
    /// `(id, uri)` of every `a=extmap`.
    pub extensions: Vec<(u8, String)>,
    /// Simulcast send rids (`a=simulcast:send`), lowest quality first as offered.
    pub send_rids: Vec<String>,
    /// Media SSRCs (`a=ssrc`), without the RTX ones.
    pub ssrcs: Vec<u32>,
    /// `(media, rtx)` from `a=ssrc-group:FID`.
    pub rtx_ssrcs: Vec<(u32, u32)>,
    /// The m-line's port was 0 (rejected / stopped).
    pub rejected: bool,
}

/// What the SFU needs from an offer.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Remote ICE credentials.
    pub ice: Credentials,
    /// Remote DTLS fingerprint.
    pub fingerprint: Fingerprint,
    /// Remote DTLS role.
    pub setup: Setup,
    /// Every m-line in order.
    pub media: Vec<MediaOffer>,
}

fn parser_error(e: SdpParserError) -> SdpError {
    match e {
        SdpParserError::Line {
            error,
            line,
            line_number,
        }
        | SdpParserError::Unsupported {
            error,
            line,
            line_number,
        } => SdpError::Line {
            line_number: line_number + 1,
            line,
            reason: error.to_string(),
        },
        SdpParserError::Sequence {
            message,
            line_number,
        } => SdpError::Line {
            line_number: line_number + 1,
            line: String::new(),
            reason: message,
        },
    }
}

impl Offer {
    /// Parses and checks an offer: ICE credentials, a SHA-256 fingerprint,
    /// rtcp-mux and BUNDLE over every m-line are required.
    pub fn parse(text: &str) -> Result<Offer, SdpError> {
        if text.len() > 256 * 1024 {
            return Err(SdpError::Unsupported("SDP larger than 256 KiB".into()));
        }
        let session = webrtc_sdp::parse_sdp(text, false).map_err(parser_error)?;
        let find = |m: Option<&SdpMedia>, t: SdpAttributeType| {
            m.and_then(|m| m.get_attribute(t.clone()))
                .or_else(|| session.get_attribute(t))
                .cloned()
        };
        // (an offer with no m-line has no transport to answer on: say so,
        // rather than that its first m-line's credentials are missing)
        if session.media.is_empty() {
            return Err(SdpError::Missing("any m-line".into()));
        }
        let first = session.media.first();
        let (ufrag, pwd) = match (
            find(first, SdpAttributeType::IceUfrag),
            find(first, SdpAttributeType::IcePwd),
        ) {
            (Some(SdpAttribute::IceUfrag(u)), Some(SdpAttribute::IcePwd(p))) => (u, p),
            _ => return Err(SdpError::Missing("a=ice-ufrag / a=ice-pwd".into())),
        };
        let ice = Credentials::parse(&ufrag, &pwd)
            .ok_or_else(|| SdpError::Missing("valid ICE credentials".into()))?;
        let fingerprint = match find(first, SdpAttributeType::Fingerprint) {
            Some(SdpAttribute::Fingerprint(f)) if f.fingerprint.len() == 32 => {
                let mut b = [0u8; 32];
                b.copy_from_slice(&f.fingerprint);
                Fingerprint(b)
            }
            _ => return Err(SdpError::Missing("a=fingerprint:sha-256".into())),
        };
        let setup = match find(first, SdpAttributeType::Setup) {
            Some(SdpAttribute::Setup(SdpAttributeSetup::Active)) => Setup::Active,
            Some(SdpAttribute::Setup(SdpAttributeSetup::Passive)) => Setup::Passive,
            _ => Setup::ActPass,
        };
        let fmtps = raw_fmtps(text);
        let mut media = Vec::new();
        for (i, m) in session.media.iter().enumerate() {
            media.push(media_offer(m, fmtps.get(i).map_or(&[], Vec::as_slice))?);
        }
        Ok(Offer {
            ice,
            fingerprint,
            setup,
            media,
        })
    }
}

/// The `a=fmtp` parameters of each m-section as written (payload type,
/// text after it). The parser's own rendering joins parameters it does not
/// know with commas ("sprop-stereo=0,sprop-maxcapturerate=48000" for
/// webrtcbin's Opus): echoed back, that read as one parameter, and
/// webrtcbin rejected the line.
fn raw_fmtps(text: &str) -> Vec<Vec<(u8, String)>> {
    let mut sections: Vec<Vec<(u8, String)>> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("m=") {
            sections.push(Vec::new());
        } else if let (Some(rest), Some(section)) =
            (line.strip_prefix("a=fmtp:"), sections.last_mut())
            && let Some((pt, params)) = rest.split_once(' ')
            && let Ok(pt) = pt.parse::<u8>()
        {
            section.push((pt, params.trim().to_string()));
        }
    }
    sections
}

fn media_offer(m: &SdpMedia, raw_fmtps: &[(u8, String)]) -> Result<MediaOffer, SdpError> {
    let mid = match m.get_attribute(SdpAttributeType::Mid) {
        Some(SdpAttribute::Mid(mid)) => mid.clone(),
        _ => return Err(SdpError::Missing("a=mid on every m-line".into())),
    };
    let kind = m.get_type().clone();
    // port 0 with `a=bundle-only` (JSEP §5.2.1, webrtcbin's offers) is media
    // that rides on the bundle's transport, not a rejected line
    let bundle_only = m.get_attribute(SdpAttributeType::BundleOnly).is_some();
    let rejected = m.get_port() == 0 && !bundle_only;
    if !rejected
        && kind != SdpMediaValue::Application
        && m.get_attribute(SdpAttributeType::RtcpMux).is_none()
    {
        return Err(SdpError::Unsupported(format!(
            "m-line {mid} without a=rtcp-mux"
        )));
    }
    let mut direction = Direction::SendRecv;
    let mut codecs: Vec<CodecOffer> = Vec::new();
    let mut rtx: Vec<(u8, u8)> = Vec::new();
    let mut fmtps: Vec<(u8, String)> = Vec::new();
    let mut fbs: Vec<(u32, String)> = Vec::new();
    let (mut extensions, mut send_rids, mut ssrcs, mut rtx_ssrcs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in m.get_attributes() {
        match a {
            SdpAttribute::Sendonly => direction = Direction::SendOnly,
            SdpAttribute::Recvonly => direction = Direction::RecvOnly,
            SdpAttribute::Inactive => direction = Direction::Inactive,
            SdpAttribute::Sendrecv => direction = Direction::SendRecv,
            SdpAttribute::Rtpmap(r) if r.codec_name.eq_ignore_ascii_case("rtx") => {}
            SdpAttribute::Rtpmap(r) => codecs.push(CodecOffer {
                pt: r.payload_type,
                name: r.codec_name.clone(),
                clock_rate: r.frequency,
                channels: r.channels,
                fmtp: None,
                rtcp_fb: Vec::new(),
                rtx_pt: None,
            }),
            SdpAttribute::Fmtp(f) => match &f.parameters.rtx {
                Some(r) => rtx.push((f.payload_type, r.apt)),
                None => fmtps.push((
                    f.payload_type,
                    raw_fmtps
                        .iter()
                        .find(|(pt, _)| *pt == f.payload_type)
                        .map_or_else(|| f.parameters.to_string(), |(_, p)| p.clone()),
                )),
            },
            SdpAttribute::Rtcpfb(fb) => {
                let pt = match fb.payload_type {
                    webrtc_sdp::attribute_type::SdpAttributePayloadType::PayloadType(pt) => {
                        u32::from(pt)
                    }
                    webrtc_sdp::attribute_type::SdpAttributePayloadType::Wildcard => u32::MAX,
                };
                let text = fb.to_string();
                let value = text
                    .split_once(' ')
                    .map_or(String::new(), |(_, v)| v.trim().to_string());
                fbs.push((pt, value));
            }
            SdpAttribute::Extmap(e) => {
                if let Ok(id) = u8::try_from(e.id) {
                    extensions.push((id, e.url.clone()));
                }
            }
            SdpAttribute::Simulcast(s) => {
                send_rids = s
                    .send
                    .iter()
                    .filter_map(|v| v.ids.first())
                    .map(|id| id.id.clone())
                    .collect();
            }
            SdpAttribute::Ssrc(s) if !ssrcs.contains(&s.id) => ssrcs.push(s.id),
            SdpAttribute::SsrcGroup(SdpSsrcGroupSemantic::FlowIdentification, group)
                if group.len() == 2 =>
            {
                rtx_ssrcs.push((group[0].id, group[1].id));
            }
            _ => {}
        }
    }
    for c in &mut codecs {
        c.fmtp = fmtps
            .iter()
            .find(|(pt, _)| *pt == c.pt)
            .map(|(_, f)| f.clone())
            .filter(|f| !f.is_empty());
        c.rtx_pt = rtx.iter().find(|(_, apt)| *apt == c.pt).map(|(pt, _)| *pt);
        c.rtcp_fb = fbs
            .iter()
            .filter(|(pt, _)| *pt == u32::from(c.pt) || *pt == u32::MAX)
            .map(|(_, v)| v.clone())
            .collect();
    }
    ssrcs.retain(|s| !rtx_ssrcs.iter().any(|(_, r)| r == s));
    Ok(MediaOffer {
        mid,
        kind,
        direction,
        codecs,
        extensions,
        send_rids,
        ssrcs,
        rtx_ssrcs,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const CHROME: &str = include_str!("testdata/chrome_simulcast_offer.sdp");

    #[test]
    fn reads_a_chrome_simulcast_offer() {
        let o = Offer::parse(CHROME).unwrap();
        assert_eq!(o.ice.ufrag, "Brw5");
        assert_eq!(o.setup, Setup::ActPass);
        assert_eq!(o.media.len(), 2);
        let (audio, video) = (&o.media[0], &o.media[1]);
        assert_eq!(
            (audio.mid.as_str(), audio.kind.clone(), audio.direction),
            ("0", SdpMediaValue::Audio, Direction::SendOnly)
        );
        assert_eq!(audio.codecs[0].name, "opus");
        assert_eq!(
            audio.codecs[0].fmtp.as_deref(),
            Some("minptime=10;useinbandfec=1")
        );
        assert_eq!(audio.ssrcs, vec![1001]);
        assert_eq!(video.send_rids, vec!["q", "h", "f"]);
        let vp8 = &video.codecs[0];
        assert_eq!(
            (vp8.name.as_str(), vp8.pt, vp8.rtx_pt),
            ("VP8", 96, Some(97))
        );
        assert!(vp8.rtcp_fb.iter().any(|f| f == "nack pli"));
        assert!(
            video
                .extensions
                .contains(&(10, super::super::uri::RID.to_string()))
        );
    }

    #[test]
    fn a_bundle_only_line_is_media_and_a_port_zero_line_without_it_is_rejected() {
        let video = "m=video 9 UDP/TLS/RTP/SAVPF";
        assert!(CHROME.contains(video));
        let bundle_only = CHROME
            .replace(video, "m=video 0 UDP/TLS/RTP/SAVPF")
            .replace("a=mid:1\n", "a=mid:1\na=bundle-only\n");
        assert!(bundle_only.contains("a=bundle-only"));
        let o = Offer::parse(&bundle_only).unwrap();
        assert!(!o.media[1].rejected);
        assert_eq!(o.media[1].codecs[0].name, "VP8");
        let stopped = CHROME.replace(video, "m=video 0 UDP/TLS/RTP/SAVPF");
        assert!(Offer::parse(&stopped).unwrap().media[1].rejected);
    }

    /// GStreamer 1.22 webrtcbin's offer (max-bundle: audio is bundle-only).
    const WEBRTCBIN: &str = include_str!("testdata/webrtcbin_offer.sdp");

    #[test]
    fn reads_webrtcbin_s_offer_and_keeps_its_fmtp_as_written() {
        let o = Offer::parse(WEBRTCBIN).unwrap();
        let audio = &o.media[1];
        assert_eq!((audio.mid.as_str(), audio.rejected), ("audio1", false));
        assert_eq!(
            audio.codecs[0].fmtp.as_deref(),
            Some("sprop-stereo=0;sprop-maxcapturerate=48000")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let bad = CHROME.replace("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8/ninety");
        match Offer::parse(&bad) {
            Err(SdpError::Line {
                line_number, line, ..
            }) => {
                assert!(line.contains("VP8/ninety"), "{line}");
                assert_eq!(
                    CHROME
                        .lines()
                        .nth(line_number - 1)
                        .map(|l| l.starts_with("a=rtpmap:96")),
                    Some(true)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Offer::parse(&CHROME.replace("a=fingerprint", "a=x-fingerprint")),
            Err(SdpError::Missing(_))
        ));
        assert!(matches!(
            Offer::parse(&CHROME.replace("a=rtcp-mux\n", "")),
            Err(SdpError::Unsupported(_))
        ));
        assert!(Offer::parse("garbage").is_err());
        assert!(Offer::parse("").is_err());
    }
}
