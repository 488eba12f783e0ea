//! The negotiated state of one PeerConnection, kept by the SFU across
//! renegotiations: the browser's offers add its published tracks, our
//! offers add `sendonly` m-lines for remote sources (one per source), and
//! every description we write lists all m-lines in their fixed order.

use super::answer::{AnswerParams, choose};
use super::offer::{CodecOffer, Direction, Offer, Setup};
use super::{SdpError, uri};
use crate::dtls::Fingerprint;
use crate::ice::Credentials;
use std::fmt::Write as _;
use std::net::SocketAddr;
use webrtc_sdp::media_type::SdpMediaValue;

/// A track the SFU sends on an m-line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendTrack {
    /// SSRC of the media.
    pub ssrc: u32,
    /// SSRC of its RTX stream.
    pub rtx_ssrc: Option<u32>,
    /// MediaStream id (`a=msid` first part; one per remote participant).
    pub stream_id: String,
    /// Track id (`a=msid` second part; the source id).
    pub track_id: String,
}

/// One m-line as negotiated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Line {
    /// `a=mid`.
    pub mid: String,
    /// Audio or video.
    #[serde(with = "crate::sdp::media_kind")]
    pub kind: SdpMediaValue,
    /// Our direction.
    pub direction: Direction,
    /// The codec; `None` for a rejected m-line.
    pub codec: Option<CodecOffer>,
    /// `(id, uri)` of the header extensions in use.
    pub extensions: Vec<(u8, String)>,
    /// Simulcast rids we receive.
    pub rids: Vec<String>,
    /// What we send on it.
    pub send: Option<SendTrack>,
}

/// One PeerConnection from the SFU's side.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PcSession {
    session_id: u64,
    version: u64,
    ice: Credentials,
    fingerprint: Fingerprint,
    candidates: Vec<SocketAddr>,
    #[serde(default)]
    tcp_candidates: Vec<SocketAddr>,
    /// Our DTLS role as written in descriptions.
    setup: String,
    lines: Vec<Line>,
    /// M-lines in our last offer: lines added since wait for the next one,
    /// and the answer to that offer covers only these.
    offered: usize,
    /// The lines of the answer last given, as given: [`PcSession::answer_filled`]
    /// writes that answer again with the lines that waited now filled.
    #[serde(skip)]
    answered: Vec<Line>,
}

impl PcSession {
    /// A session for the first offer of a browser.
    pub fn new(p: &AnswerParams<'_>, offer: &Offer) -> PcSession {
        PcSession {
            session_id: p.session_id,
            version: 1,
            ice: p.ice.clone(),
            fingerprint: p.fingerprint,
            candidates: p.candidates.to_vec(),
            tcp_candidates: p.tcp_candidates.to_vec(),
            setup: if offer.setup == Setup::Passive {
                "active".to_string()
            } else {
                "passive".to_string()
            },
            lines: Vec::new(),
            offered: 0,
            answered: Vec::new(),
        }
    }

    /// New ICE credentials for the descriptions from now on (ICE restart).
    pub fn set_ice(&mut self, ice: Credentials) {
        self.ice = ice;
    }

    /// The m-lines.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Answers a browser offer (the first or a renegotiation, which must
    /// keep every existing m-line in place). Returns the answer text.
    pub fn answer(&mut self, offer: &Offer) -> Result<String, SdpError> {
        if offer.media.len() < self.lines.len() {
            return Err(SdpError::Unsupported(
                "an offer must keep every m-line".into(),
            ));
        }
        let mut lines = Vec::with_capacity(offer.media.len());
        for (i, m) in offer.media.iter().enumerate() {
            if let Some(old) = self.lines.get(i)
                && old.mid != m.mid
            {
                return Err(SdpError::Unsupported(format!(
                    "m-line {i} changed mid from {} to {}",
                    old.mid, m.mid
                )));
            }
            let codec = if m.rejected { None } else { choose(m) };
            let direction = match (codec.is_some(), m.direction) {
                (false, _) | (_, Direction::Inactive) => Direction::Inactive,
                (true, Direction::SendOnly) => Direction::RecvOnly,
                (true, Direction::SendRecv) => {
                    if self.lines.get(i).is_some_and(|l| l.send.is_some()) {
                        Direction::SendRecv
                    } else {
                        Direction::RecvOnly
                    }
                }
                // a line the client offers to receive on waits for a
                // source — unless the server retired it (inactive, nothing
                // sent): a client's re-offer repeating its transceiver's
                // recvonly (webrtcbin's, right after answering the server's
                // offer) does not wake it, or the line would change
                // direction with nothing to send, which webrtcbin 1.22
                // refuses ("transceiver direction changes are not
                // implemented")
                (true, Direction::RecvOnly) => match self.lines.get(i) {
                    Some(l) if l.direction == Direction::Inactive && l.send.is_none() => {
                        Direction::Inactive
                    }
                    _ => Direction::SendOnly,
                },
            };
            let send = self
                .lines
                .get(i)
                .and_then(|l| l.send.clone())
                .filter(|_| direction != Direction::RecvOnly);
            lines.push(Line {
                mid: m.mid.clone(),
                kind: m.kind.clone(),
                direction,
                codec,
                extensions: m
                    .extensions
                    .iter()
                    .filter(|(_, u)| uri::ALL.contains(&u.as_str()))
                    .cloned()
                    .collect(),
                rids: if matches!(direction, Direction::RecvOnly | Direction::SendRecv) {
                    m.send_rids.clone()
                } else {
                    Vec::new()
                },
                send,
            });
        }
        if lines.iter().all(|l| l.codec.is_none()) {
            return Err(SdpError::Unsupported(
                "no m-line with a codec the SFU forwards (Opus, VP8, H.264, VP9, AV1)".into(),
            ));
        }
        self.answered = lines.clone();
        self.lines = lines;
        Ok(self.write())
    }

    /// The answer last given, written again after [`PcSession::add_send`]
    /// filled some of the lines the browser offered to receive on: a
    /// joiner's first answer then carries the room's sources, with no offer
    /// round trip before its media flows. Only lines that waited (answered
    /// `sendonly` with nothing to send) change; every other line is written
    /// as answered, and lines added since wait for our next offer. Returns
    /// the answer and the mids it fills.
    pub fn answer_filled(&self) -> (String, Vec<String>) {
        let waited = |l: &Line| l.direction == Direction::SendOnly && l.send.is_none();
        let mut filled = Vec::new();
        let lines: Vec<&Line> = self
            .answered
            .iter()
            .zip(&self.lines)
            .map(|(given, now)| {
                if waited(given) && now.mid == given.mid && now.send.is_some() {
                    filled.push(now.mid.clone());
                    now
                } else {
                    given
                }
            })
            .collect();
        (self.write_lines(&lines), filled)
    }

    /// Adds a `sendonly` m-line for a remote source sent with `codec` (the
    /// publisher's), reusing an inactive line of the same kind and codec.
    /// Payload types and extension ids come from a line of this session with
    /// that codec; a client that negotiated none (it publishes no such
    /// kind, or another codec) is offered the publisher's codec on payload
    /// types free in this session, with the extension ids this session uses
    /// — its answer accepts the line or rejects it. Returns the mid.
    pub fn add_send(
        &mut self,
        kind: SdpMediaValue,
        codec: &CodecOffer,
        track: SendTrack,
    ) -> Result<String, SdpError> {
        if !matches!(kind, SdpMediaValue::Audio | SdpMediaValue::Video) {
            return Err(SdpError::Unsupported(format!("sending {kind}")));
        }
        let matches = |l: &Line| {
            l.kind == kind
                && l.codec
                    .as_ref()
                    .is_some_and(|c| c.name.eq_ignore_ascii_case(&codec.name))
        };
        let template = match self.lines.iter().find(|l| matches(l)) {
            Some(l) => l.clone(),
            None => self.template_for(kind.clone(), codec),
        };
        let mut track = track;
        if template.codec.as_ref().is_none_or(|c| c.rtx_pt.is_none()) {
            // no RTX payload type (audio): an FID group would be refused
            track.rtx_ssrc = None;
        }
        let mut line = Line {
            direction: Direction::SendOnly,
            rids: Vec::new(),
            send: Some(track),
            ..template
        };
        // a line the browser offered to receive on (recvonly, nothing sent
        // yet), else one freed earlier, else a new one
        let waiting = |l: &Line| l.direction == Direction::SendOnly && l.send.is_none();
        let free_at = self
            .lines
            .iter()
            .position(|l| matches(l) && waiting(l))
            .or_else(|| {
                self.lines
                    .iter()
                    .position(|l| matches(l) && l.direction == Direction::Inactive)
            });
        if let Some(free) = free_at.and_then(|i| self.lines.get_mut(i)) {
            line.mid = free.mid.clone();
            *free = line;
            return Ok(free.mid.clone());
        }
        let next = self
            .lines
            .iter()
            .filter_map(|l| l.mid.parse::<u32>().ok())
            .max()
            .map_or(0, |m| m + 1);
        line.mid = next.to_string();
        let mid = line.mid.clone();
        self.lines.push(line);
        Ok(mid)
    }

    /// A line to offer `codec` on to a client that negotiated no line with
    /// it: the codec on payload types no other codec of this session uses
    /// (the publisher's own where free), and the session's extension ids
    /// for what a send line carries.
    fn template_for(&self, kind: SdpMediaValue, codec: &CodecOffer) -> Line {
        let mut used: Vec<u8> = Vec::new();
        for c in self.lines.iter().filter_map(|l| l.codec.as_ref()) {
            used.push(c.pt);
            used.extend(c.rtx_pt);
        }
        let free = |wanted: u8, used: &mut Vec<u8>| {
            let pt = if (96..=127).contains(&wanted) && !used.contains(&wanted) {
                wanted
            } else {
                (96..=127).find(|p| !used.contains(p)).unwrap_or(wanted)
            };
            used.push(pt);
            pt
        };
        let pt = free(codec.pt, &mut used);
        let rtx_pt = codec.rtx_pt.map(|r| free(r, &mut used));
        let mut extensions: Vec<(u8, String)> = Vec::new();
        for (id, u) in self.lines.iter().flat_map(|l| &l.extensions) {
            let wanted = [uri::MID, uri::ABS_SEND_TIME, uri::TRANSPORT_CC];
            if wanted.contains(&u.as_str()) && !extensions.iter().any(|(i, _)| i == id) {
                extensions.push((*id, u.clone()));
            }
        }
        Line {
            mid: String::new(),
            kind,
            direction: Direction::SendOnly,
            codec: Some(CodecOffer {
                pt,
                rtx_pt,
                ..codec.clone()
            }),
            extensions,
            rids: Vec::new(),
            send: None,
        }
    }

    /// Stops sending on an m-line (it becomes inactive, reusable later).
    pub fn remove_send(&mut self, mid: &str) {
        if let Some(l) = self
            .lines
            .iter_mut()
            .find(|l| l.mid == mid && l.send.is_some())
        {
            l.send = None;
            l.direction = Direction::Inactive;
        }
    }

    /// An offer with every m-line (the browser answers it).
    pub fn offer(&mut self) -> String {
        self.version += 1;
        self.offered = self.lines.len();
        self.answered.clear();
        self.write()
    }

    /// Applies the browser's answer to our last offer: m-lines it rejected
    /// (port 0) are marked rejected. Lines added after that offer (a source
    /// that arrived while the browser was answering) are not in the answer;
    /// the next offer carries them.
    pub fn apply_answer(&mut self, answer: &Offer) -> Result<(), SdpError> {
        let offered = self.offered.min(self.lines.len());
        if answer.media.len() != offered {
            return Err(SdpError::Unsupported(format!(
                "answer has {} m-lines, the offer had {offered}",
                answer.media.len(),
            )));
        }
        for (l, m) in self.lines[..offered].iter_mut().zip(&answer.media) {
            if l.mid != m.mid {
                return Err(SdpError::Unsupported(format!(
                    "answer m-line {} where {} was offered",
                    m.mid, l.mid
                )));
            }
            if m.rejected {
                l.codec = None;
                l.send = None;
                l.direction = Direction::Inactive;
            }
        }
        Ok(())
    }

    /// Writes the whole description.
    fn write(&self) -> String {
        self.write_lines(&self.lines.iter().collect::<Vec<_>>())
    }

    /// Writes a description of `lines`.
    fn write_lines(&self, lines: &[&Line]) -> String {
        let mut out = String::with_capacity(4096);
        let bundle: Vec<&str> = lines
            .iter()
            .filter(|l| l.codec.is_some())
            .map(|l| l.mid.as_str())
            .collect();
        let _ = write!(
            out,
            "v=0\r\no=switchyard {} {} IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
            self.session_id, self.version
        );
        let _ = write!(
            out,
            "a=group:BUNDLE {}\r\na=ice-lite\r\na=msid-semantic: WMS *\r\n",
            bundle.join(" ")
        );
        for l in lines {
            self.write_line(&mut out, l);
        }
        out
    }

    fn write_line(&self, out: &mut String, l: &Line) {
        let kind = match l.kind {
            SdpMediaValue::Audio => "audio",
            SdpMediaValue::Video => "video",
            _ => "application",
        };
        let Some(codec) = &l.codec else {
            if kind == "application" {
                let _ = write!(out, "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n");
            } else {
                let _ = write!(out, "m={kind} 0 UDP/TLS/RTP/SAVPF 0\r\n");
            }
            let _ = write!(out, "c=IN IP4 0.0.0.0\r\na=mid:{}\r\na=inactive\r\n", l.mid);
            return;
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
            l.mid, self.ice.ufrag, self.ice.pwd
        );
        let _ = write!(
            out,
            "a=fingerprint:{}\r\na=setup:{}\r\na=rtcp-mux\r\n",
            self.fingerprint.to_sdp(),
            self.setup
        );
        let dir = match l.direction {
            Direction::RecvOnly => "recvonly",
            Direction::SendOnly => "sendonly",
            Direction::SendRecv => "sendrecv",
            Direction::Inactive => "inactive",
        };
        let _ = write!(out, "a={dir}\r\n");
        for (id, u) in &l.extensions {
            let _ = write!(out, "a=extmap:{id} {u}\r\n");
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
        if !l.rids.is_empty() {
            for rid in &l.rids {
                let _ = write!(out, "a=rid:{rid} recv\r\n");
            }
            let _ = write!(out, "a=simulcast:recv {}\r\n", l.rids.join(";"));
        }
        if let Some(t) = &l.send {
            let _ = write!(out, "a=msid:{} {}\r\n", t.stream_id, t.track_id);
            if let Some(rtx) = t.rtx_ssrc {
                let _ = write!(out, "a=ssrc-group:FID {} {rtx}\r\n", t.ssrc);
            }
            for ssrc in std::iter::once(t.ssrc).chain(t.rtx_ssrc) {
                let _ = write!(
                    out,
                    "a=ssrc:{ssrc} cname:switchyard\r\na=ssrc:{ssrc} msid:{} {}\r\n",
                    t.stream_id, t.track_id
                );
            }
        }
        for (i, c) in self.candidates.iter().enumerate() {
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
        for (i, c) in self.tcp_candidates.iter().enumerate() {
            // passive TCP host candidates (RFC 6544 §4.2): local preference
            // from the direction (passive: 2 << 13) and the address order,
            // below every UDP candidate by type preference
            let local = (2u32 << 13) | (8191 - i as u32);
            let priority = (90u32 << 24) | (local << 8) | 255;
            let _ = write!(
                out,
                "a=candidate:{} 1 tcp {priority} {} {} typ host tcptype passive\r\n",
                self.candidates.len() + i + 1,
                c.ip(),
                c.port()
            );
        }
        let _ = write!(out, "a=end-of-candidates\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = include_str!("testdata/chrome_simulcast_offer.sdp");

    fn session() -> (PcSession, String) {
        session_for(CHROME)
    }

    /// A session answering `offer` (the first answer is returned too).
    fn session_for(offer: &str) -> (PcSession, String) {
        let offer = Offer::parse(offer).unwrap();
        let ice = Credentials::random();
        let cands: [SocketAddr; 1] = ["192.0.2.10:10000".parse().unwrap()];
        let p = AnswerParams {
            ice: &ice,
            fingerprint: Fingerprint([0x22; 32]),
            candidates: &cands,
            tcp_candidates: &[],
            session_id: 7,
        };
        let mut s = PcSession::new(&p, &offer);
        let answer = s.answer(&offer).unwrap();
        (s, answer)
    }

    /// A publisher's codec as its session negotiated it.
    fn codec(pt: u8, name: &str, clock_rate: u32, rtx_pt: Option<u8>) -> CodecOffer {
        CodecOffer {
            pt,
            name: name.into(),
            clock_rate,
            channels: (name == "opus").then_some(2),
            fmtp: (name == "opus").then(|| "minptime=10;useinbandfec=1".into()),
            rtcp_fb: vec!["nack".into(), "transport-cc".into()],
            rtx_pt,
        }
    }

    fn vp8() -> CodecOffer {
        codec(96, "VP8", 90_000, Some(97))
    }

    fn opus() -> CodecOffer {
        codec(111, "opus", 48_000, None)
    }

    /// `CHROME` with only its `kind` m-line (the other removed).
    fn only(kind: &str) -> String {
        let video_at = CHROME.find("m=video").unwrap();
        let (audio, video) = CHROME.split_at(video_at);
        let (head, audio) = audio.split_at(audio.find("m=audio").unwrap());
        let kept = if kind == "audio" { audio } else { video };
        format!("{head}{kept}").replace(
            "a=group:BUNDLE 0 1",
            &format!("a=group:BUNDLE {}", if kind == "audio" { 0 } else { 1 }),
        )
    }

    #[test]
    fn a_kind_the_client_never_negotiated_is_offered_with_the_publishers_codec() {
        // a camera-only client: the server offers it audio with Opus as the
        // publisher sends it, on the session's extension ids
        let (mut s, _) = session_for(&only("video"));
        let track = SendTrack {
            ssrc: 9,
            rtx_ssrc: Some(10),
            stream_id: "p1".into(),
            track_id: "s1".into(),
        };
        let mid = s
            .add_send(SdpMediaValue::Audio, &opus(), track.clone())
            .unwrap();
        let line = s.lines().iter().find(|l| l.mid == mid).unwrap().clone();
        let c = line.codec.clone().unwrap();
        assert_eq!((c.name.as_str(), c.pt, c.channels), ("opus", 111, Some(2)));
        assert_eq!(c.fmtp.as_deref(), Some("minptime=10;useinbandfec=1"));
        assert_eq!(line.direction, Direction::SendOnly);
        let mid_ext = s.lines()[0]
            .extensions
            .iter()
            .find(|(_, u)| u == uri::MID)
            .cloned()
            .unwrap();
        assert!(line.extensions.contains(&mid_ext), "{:?}", line.extensions);
        assert!(!line.extensions.iter().any(|(_, u)| u == uri::RID));
        assert_eq!(
            line.send.as_ref().and_then(|t| t.rtx_ssrc),
            None,
            "no RTX for Opus"
        );
        let offer = s.offer();
        assert!(webrtc_sdp::parse_sdp(&offer, false).is_ok(), "{offer}");
        assert!(
            offer.contains(&format!("a=group:BUNDLE 1 {mid}\r\n")),
            "{offer}"
        );
        // a microphone-only client offered video whose payload types clash
        // with its own: free ones are taken (BUNDLE needs them unique)
        let (mut s, _) = session_for(&only("audio"));
        let clash = codec(111, "VP8", 90_000, Some(63));
        let mid = s.add_send(SdpMediaValue::Video, &clash, track).unwrap();
        let line = s.lines().iter().find(|l| l.mid == mid).unwrap();
        let c = line.codec.as_ref().unwrap();
        let used: Vec<u8> = s.lines()[0]
            .codec
            .iter()
            .flat_map(|c| std::iter::once(c.pt).chain(c.rtx_pt))
            .collect();
        assert!(
            !used.contains(&c.pt) && !c.rtx_pt.is_some_and(|r| used.contains(&r)),
            "{c:?} {used:?}"
        );
        assert!((96..=127).contains(&c.pt) && c.rtx_pt.is_some(), "{c:?}");
        assert_eq!(line.send.as_ref().and_then(|t| t.rtx_ssrc), Some(10));
    }

    /// The browser's answer to our offer, as Chrome would shape it.
    fn browser_answer(offer: &str) -> String {
        offer
            .replace("a=sendonly", "a=RECV")
            .replace("a=recvonly", "a=sendonly")
            .replace("a=RECV", "a=recvonly")
            .replace("a=setup:passive", "a=setup:active")
            .replace("a=ice-lite\r\n", "")
            .replace("a=ice-ufrag:", "a=ice-ufrag:b")
    }

    #[test]
    fn a_line_the_browser_offered_to_receive_on_is_filled_first() {
        // a browser without a camera: audio sendonly, video recvonly
        let video_at = CHROME.find("m=video").unwrap();
        let (head, video) = CHROME.split_at(video_at);
        let video: String = video
            .lines()
            .filter(|l| {
                !["a=rid", "a=simulcast", "a=ssrc", "a=msid"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(|l| if l == "a=sendonly" { "a=recvonly" } else { l })
            .map(|l| format!("{l}\r\n"))
            .collect();
        let (mut s, _) = session_for(&format!("{head}{video}"));
        let track = SendTrack {
            ssrc: 5,
            rtx_ssrc: Some(6),
            stream_id: "p1".into(),
            track_id: "s2".into(),
        };
        assert_eq!(
            s.add_send(SdpMediaValue::Video, &vp8(), track.clone())
                .unwrap(),
            "1"
        );
        assert_eq!(s.lines().len(), 2, "no new line");
        // a second video gets a new line from the same template
        assert_eq!(
            s.add_send(SdpMediaValue::Video, &vp8(), track).unwrap(),
            "2"
        );
    }

    #[test]
    fn adds_sends_in_offers_and_reuses_freed_lines() {
        let (mut s, _) = session();
        let t = |id: &str| SendTrack {
            ssrc: 0x1000,
            rtx_ssrc: Some(0x1001),
            stream_id: "p3".into(),
            track_id: id.into(),
        };
        let mid = s.add_send(SdpMediaValue::Video, &vp8(), t("s9")).unwrap();
        assert_eq!(mid, "2");
        let offer = s.offer();
        let parsed =
            webrtc_sdp::parse_sdp(&offer, false).unwrap_or_else(|e| panic!("{e}\n{offer}"));
        assert_eq!(parsed.media.len(), 3);
        assert!(offer.contains("a=group:BUNDLE 0 1 2\r\n"));
        assert!(
            offer.contains("a=ssrc-group:FID 4096 4097\r\n") && offer.contains("a=msid:p3 s9\r\n")
        );
        assert!(
            offer.contains("o=switchyard 7 2 IN IP4"),
            "version increments"
        );
        // the browser accepts: nothing changes but the state is consistent
        s.apply_answer(&Offer::parse(&browser_answer(&offer)).unwrap())
            .unwrap();
        assert_eq!(s.lines()[2].direction, Direction::SendOnly);
        // the source leaves, then another one arrives: the line is reused
        s.remove_send("2");
        assert!(s.offer().contains("a=mid:2\r\na=ice-ufrag"));
        assert_eq!(
            s.add_send(SdpMediaValue::Video, &vp8(), t("s10")).unwrap(),
            "2"
        );
        assert_eq!(s.lines().len(), 3);
        // an audio send copies the audio codec
        let a = s.add_send(SdpMediaValue::Audio, &opus(), t("s11")).unwrap();
        let line = s.lines().iter().find(|l| l.mid == a).unwrap();
        assert_eq!(line.codec.as_ref().map(|c| c.name.as_str()), Some("opus"));
        // without an RTX payload type there is no FID group (Chrome refuses one)
        assert_eq!(line.send.as_ref().and_then(|t| t.rtx_ssrc), None);
        let offer = s.offer();
        let audio = &offer[offer.rfind("m=audio").unwrap()..];
        assert!(!audio.contains("ssrc-group"), "{audio}");
    }

    #[test]
    fn a_retired_line_the_client_offers_to_receive_on_again_stays_inactive() {
        let (mut s, _) = session();
        let t = SendTrack {
            ssrc: 0x3000,
            rtx_ssrc: None,
            stream_id: "p4".into(),
            track_id: "s4".into(),
        };
        let mid = s.add_send(SdpMediaValue::Video, &vp8(), t).unwrap();
        let offer = s.offer();
        s.apply_answer(&Offer::parse(&browser_answer(&offer)).unwrap())
            .unwrap();
        // the source leaves: the server's offer makes its line inactive
        s.remove_send(&mid);
        let offer = s.offer();
        s.apply_answer(&Offer::parse(&browser_answer(&offer)).unwrap())
            .unwrap();
        // webrtcbin then offers, its transceiver for the line still recvonly
        let answer = browser_answer(&offer).replace("a=setup:active", "a=setup:actpass");
        let at = answer.find(&format!("a=mid:{mid}\r\n")).unwrap();
        let (head, line) = answer.split_at(at);
        let reoffer = format!("{head}{}", line.replacen("a=inactive", "a=recvonly", 1));
        assert!(reoffer[at..].contains("a=recvonly"), "{reoffer}");
        s.answer(&Offer::parse(&reoffer).unwrap()).unwrap();
        let line = s.lines().iter().find(|l| l.mid == mid).unwrap();
        assert_eq!(line.direction, Direction::Inactive, "nothing to send on it");
    }

    #[test]
    fn a_source_added_while_an_offer_is_out_waits_for_the_next_offer() {
        let (mut s, _) = session();
        let t = |id: &str| SendTrack {
            ssrc: 0x2000,
            rtx_ssrc: Some(0x2001),
            stream_id: "p5".into(),
            track_id: id.into(),
        };
        s.add_send(SdpMediaValue::Video, &vp8(), t("s1")).unwrap();
        let first = s.offer();
        // before the browser answers, two more sources arrive
        s.add_send(SdpMediaValue::Video, &vp8(), t("s2")).unwrap();
        s.add_send(SdpMediaValue::Audio, &opus(), t("s3")).unwrap();
        assert_eq!(s.lines().len(), 5);
        // the answer to the first offer has its 3 lines: accepted
        s.apply_answer(&Offer::parse(&browser_answer(&first)).unwrap())
            .unwrap();
        // the next offer has all 5, and its answer must too
        let second = s.offer();
        assert_eq!(second.matches("m=").count(), 5);
        let stale = Offer::parse(&browser_answer(&first)).unwrap();
        let e = s.apply_answer(&stale).unwrap_err().to_string();
        assert!(e.contains("answer has 3 m-lines, the offer had 5"), "{e}");
        s.apply_answer(&Offer::parse(&browser_answer(&second)).unwrap())
            .unwrap();
    }

    #[test]
    fn a_browser_renegotiation_must_keep_the_lines() {
        let (mut s, _) = session();
        s.add_send(
            SdpMediaValue::Video,
            &vp8(),
            SendTrack {
                ssrc: 5,
                rtx_ssrc: None,
                stream_id: "a".into(),
                track_id: "b".into(),
            },
        )
        .unwrap();
        let ours = s.offer();
        s.apply_answer(&Offer::parse(&browser_answer(&ours)).unwrap())
            .unwrap();
        // the browser's next offer without our line is refused
        assert!(s.answer(&Offer::parse(CHROME).unwrap()).is_err());
        // a reordered answer is refused
        let bad = browser_answer(&ours).replace("a=mid:2", "a=mid:9");
        assert!(s.apply_answer(&Offer::parse(&bad).unwrap()).is_err());
    }
}
