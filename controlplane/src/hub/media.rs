//! Offers, answers, publishing and subscribing.

use super::{Hub, Published, Subscription, parse_sid, pid, sid};
use crate::agent::{ToAgent, TransportSpec};
use crate::ice::Credentials;
use crate::sdp::{AnswerParams, CodecOffer, Direction, Offer, PcSession, SdpError, SendTrack};
use crate::signalling::{ErrorCode, ProtocolError, ServerMessage, SourceInfo, VERSION};
use rand::Rng;
use std::net::SocketAddr;
use std::time::Instant;
use switchyard_dataplane::abi::command::{MAX_MID, MAX_RID};
use switchyard_dataplane::abi::{
    Codec, Command, LayerSpec, MediaKind, SourceSpec, SubscriptionSpec,
};
use switchyard_wire::rtp::ExtensionIds;
use webrtc_sdp::media_type::SdpMediaValue;

/// Tracks one participant may publish (camera, microphone, a screen and its
/// audio, with room to spare); an offer with more sending m-lines is refused.
pub const MAX_SOURCES_PER_PARTICIPANT: usize = 16;

fn bad_sdp(e: impl std::fmt::Display) -> ProtocolError {
    // the error names the line, which may be as long as the whole offer
    ProtocolError::new(ErrorCode::BadSdp, crate::signalling::clip(&e.to_string()))
}

pub(super) fn codec_of(name: &str) -> Codec {
    match name.to_ascii_lowercase().as_str() {
        "opus" => Codec::Opus,
        "vp8" => Codec::Vp8,
        "h264" => Codec::H264,
        "vp9" => Codec::Vp9,
        _ => Codec::Other,
    }
}

/// Extension ids of an endpoint: browsers use one id per URI across m-lines.
fn endpoint_ext(offer: &Offer) -> ExtensionIds {
    crate::sdp::extension_ids(offer.media.iter().flat_map(|m| &m.extensions))
}

impl Hub {
    pub(super) fn on_offer(
        &mut self,
        id: u64,
        offer: Result<Offer, SdpError>,
        content: &super::ContentHints,
    ) -> Result<(), ProtocolError> {
        let offer = offer.map_err(bad_sdp)?;
        if self.is_stale(id, &offer) {
            return Ok(());
        }
        let sending = offer
            .media
            .iter()
            .filter(|m| {
                !m.rejected && matches!(m.direction, Direction::SendRecv | Direction::SendOnly)
            })
            .count();
        if sending > MAX_SOURCES_PER_PARTICIPANT {
            return Err(ProtocolError::new(
                ErrorCode::InvalidValue,
                format!(
                    "too many sources: {sending} sending m-lines, at most {MAX_SOURCES_PER_PARTICIPANT} per participant"
                ),
            ));
        }
        let (bridge, worker) = {
            let p = self
                .participants
                .get(&id)
                .ok_or_else(|| ProtocolError::new(ErrorCode::BadState, "not joined"))?;
            if p.offer_pending {
                return Err(ProtocolError::new(
                    ErrorCode::BadState,
                    "glare: answer the server's offer first, then offer again",
                ));
            }
            (p.bridge.clone(), p.worker)
        };
        if self.participants.get(&id).is_some_and(|p| p.pc.is_none()) {
            let info = self
                .bridges
                .get(&bridge)
                .map(|b| b.info.clone())
                .ok_or_else(|| {
                    ProtocolError::new(ErrorCode::Internal, "this room's media bridge is gone")
                })?;
            let port = info.worker_ports.get(worker).copied().unwrap_or(0);
            let ice = Credentials::for_worker(worker);
            let candidates: Vec<SocketAddr> = info
                .advertise
                .iter()
                .map(|&a| SocketAddr::new(a, port))
                .collect();
            let tcp_candidates: Vec<SocketAddr> = info
                .ice_tcp_port
                .map(|p| {
                    info.advertise
                        .iter()
                        .map(|&a| SocketAddr::new(a, p))
                        .collect()
                })
                .unwrap_or_default();
            let session_id = rand::rng().random::<u64>() >> 1;
            let params = AnswerParams {
                ice: &ice,
                fingerprint: info.fingerprint,
                candidates: &candidates,
                tcp_candidates: &tcp_candidates,
                session_id,
            };
            let pc = PcSession::new(&params, &offer);
            let mut user_data = [0u8; 32];
            user_data[..8].copy_from_slice(&id.to_le_bytes());
            let spec = TransportSpec {
                endpoint: id,
                worker,
                port,
                local: ice,
                remote: offer.ice.clone(),
                remote_fingerprint: offer.fingerprint,
                remote_setup: offer.setup,
                ext: endpoint_ext(&offer),
                user_data,
                peer: None,
            };
            if let Some(p) = self.participants.get_mut(&id) {
                p.pc = Some(pc);
                p.remote_ice = Some(offer.ice.clone());
            }
            self.tell_agent(&bridge, ToAgent::OpenTransport(spec));
        }
        // new ICE credentials in a later offer: the browser restarts ICE
        // (its network changed); DTLS and keys stay
        let restart = self
            .participants
            .get(&id)
            .and_then(|p| p.remote_ice.as_ref())
            .is_some_and(|r| *r != offer.ice);
        if restart {
            let local = Credentials::for_worker(worker);
            if let Some(p) = self.participants.get_mut(&id) {
                p.remote_ice = Some(offer.ice.clone());
                if let Some(pc) = p.pc.as_mut() {
                    pc.set_ice(local.clone());
                }
            }
            self.tell_agent(
                &bridge,
                ToAgent::RestartIce {
                    endpoint: id,
                    local,
                    remote: offer.ice.clone(),
                },
            );
        }
        let answer = {
            let p = self
                .participants
                .get_mut(&id)
                .ok_or_else(|| ProtocolError::new(ErrorCode::BadState, "not joined"))?;
            let pc =
                p.pc.as_mut()
                    .ok_or_else(|| ProtocolError::new(ErrorCode::Internal, "no session"))?;
            pc.answer(&offer).map_err(bad_sdp)?
        };
        self.update_published(id, &offer, content);
        // a newcomer receives everything already published in its room
        let first_time = self
            .participants
            .get(&id)
            .is_some_and(|p| p.subscriptions.is_empty());
        if !first_time {
            self.signal(
                id,
                ServerMessage::Answer {
                    v: VERSION,
                    sdp: answer,
                },
            );
            return Ok(());
        }
        let sources = self.room_sources(id);
        for &(publisher, source) in &sources {
            self.subscribe(id, publisher, source);
        }
        // the lines it offered to receive on carry sources in this answer;
        // the rest wait for our offer
        let answer = self.answer_first(id).unwrap_or(answer);
        // `joined` listed these without a mid: now they have one (told
        // before the answer, so that its tracks arrive already mapped)
        for (publisher, source) in sources {
            if let Some(info) = self.source_info(id, publisher, source) {
                self.signal(
                    id,
                    ServerMessage::SourceAdded {
                        v: VERSION,
                        participant: pid(publisher),
                        source: info,
                    },
                );
            }
        }
        self.signal(
            id,
            ServerMessage::Answer {
                v: VERSION,
                sdp: answer,
            },
        );
        self.keyframes_for_answered(id);
        Ok(())
    }

    /// A joiner's first answer, with the sources its `recvonly` lines took
    /// (docs/signalling.md "Media from the first answer"): those
    /// subscriptions count as answered; an offer follows only for lines
    /// added beyond the browser's.
    fn answer_first(&mut self, id: u64) -> Option<String> {
        let p = self.participants.get_mut(&id)?;
        let pc = p.pc.as_ref()?;
        let (answer, filled) = pc.answer_filled();
        for sub in p
            .subscriptions
            .iter_mut()
            .filter(|s| filled.contains(&s.mid))
        {
            sub.offered = true;
        }
        p.needs_offer = p.subscriptions.iter().any(|s| !s.offered);
        Some(answer)
    }

    /// Sources follow the browser's `sendonly` m-lines: new ones are added
    /// to the dataplane and offered to the room, stopped ones removed.
    fn update_published(&mut self, id: u64, offer: &Offer, content: &super::ContentHints) {
        let Some(p) = self.participants.get(&id) else {
            return;
        };
        let bridge = p.bridge.clone();
        let workers = self.workers_of(&bridge);
        let Some(pc) = &p.pc else { return };
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for (line, m) in pc.lines().iter().zip(&offer.media) {
            let receiving = matches!(line.direction, Direction::RecvOnly | Direction::SendRecv)
                && line.send.is_none();
            let known = p
                .published
                .iter()
                .find(|s| s.mid == line.mid)
                .map(|s| s.source);
            match (receiving, known, &line.codec) {
                (true, None, Some(codec)) => added.push((line.clone(), m.clone(), codec.clone())),
                (false, Some(source), _) => removed.push(source),
                _ => {}
            }
        }
        for source in removed {
            self.unpublish(id, source);
        }
        for (line, m, codec) in added {
            let source = self.take_id();
            let kind = if line.kind == SdpMediaValue::Audio {
                MediaKind::Audio
            } else {
                MediaKind::Video
            };
            let mut layers = [LayerSpec::default(); 3];
            let layer_count = if line.rids.is_empty() {
                layers[0].ssrc = m.ssrcs.first().copied().unwrap_or(0);
                layers[0].rtx_ssrc = m.rtx_ssrcs.first().map_or(0, |(_, r)| *r);
                1
            } else {
                for (l, rid) in layers.iter_mut().zip(&line.rids) {
                    let n = rid.len().min(MAX_RID);
                    l.rid[..n].copy_from_slice(&rid.as_bytes()[..n]);
                    l.rid_len = n as u8;
                }
                line.rids.len().min(3) as u8
            };
            let spec = SourceSpec {
                id: source,
                endpoint: id,
                kind,
                codec: codec_of(&codec.name),
                clock_rate: codec.clock_rate,
                payload_type: codec.pt,
                rtx_payload_type: codec.rtx_pt.unwrap_or(0),
                layer_count,
                layers,
            };
            for w in 0..workers {
                self.dataplane(&bridge, w, Command::AddSource(spec));
            }
            let Some(p) = self.participants.get_mut(&id) else {
                return;
            };
            self.publishers.insert(source, id);
            p.published.push(Published {
                source,
                mid: line.mid.clone(),
                kind: line.kind.clone(),
                codec: codec.name.clone(),
                layers: layer_count,
                muted: false,
                content: content.get(&line.mid).copied().unwrap_or_default(),
                held: false,
                clock_rate: codec.clock_rate,
                payload_type: codec.pt,
                rtx_payload_type: codec.rtx_pt.unwrap_or(0),
            });
            // copies on the room's other bridges first: the others'
            // subscriptions name them
            let room = p.room.clone();
            for leg in self.legs_of(&room) {
                self.copy_source(&room, id, source, &leg.bridge);
            }
            let others = self.room_others(id);
            for o in others {
                self.subscribe(o, id, source);
                if let Some(info) = self.source_info(o, id, source) {
                    self.signal(
                        o,
                        ServerMessage::SourceAdded {
                            v: VERSION,
                            participant: pid(id),
                            source: info,
                        },
                    );
                }
            }
        }
    }

    pub(super) fn unpublish(&mut self, id: u64, source: u64) {
        self.forget_source(source);
        let Some(bridge) = self.participants.get(&id).map(|p| p.bridge.clone()) else {
            return;
        };
        for w in 0..self.workers_of(&bridge) {
            self.dataplane(&bridge, w, Command::RemoveSource { source });
        }
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        p.published.retain(|s| s.source != source);
        let room = p.room.clone();
        let others = self.room_others(id);
        for o in others {
            self.unsubscribe(o, source);
            self.signal(
                o,
                ServerMessage::SourceRemoved {
                    v: VERSION,
                    participant: pid(id),
                    source: sid(source),
                },
            );
        }
        self.drop_copies(&room, source);
    }

    /// The codec `publisher` sends `src` with, as its session negotiated it
    /// (payload types, fmtp, feedback): what a receiver is offered.
    fn published_codec(&self, publisher: u64, src: &Published) -> CodecOffer {
        let negotiated = self
            .participants
            .get(&publisher)
            .and_then(|p| p.pc.as_ref())
            .and_then(|pc| pc.lines().iter().find(|l| l.mid == src.mid))
            .and_then(|l| l.codec.clone());
        negotiated.unwrap_or_else(|| CodecOffer {
            pt: src.payload_type,
            name: src.codec.clone(),
            clock_rate: src.clock_rate,
            channels: (src.kind == SdpMediaValue::Audio).then_some(2),
            fmtp: None,
            rtcp_fb: Vec::new(),
            rtx_pt: (src.rtx_payload_type != 0).then_some(src.rtx_payload_type),
        })
    }

    /// Adds a send m-line for `source` to `to`'s session and the stream to
    /// the dataplane; the offer goes out in `flush_offers`.
    pub(super) fn subscribe(&mut self, to: u64, publisher: u64, source: u64) {
        let Some(src) = self
            .participants
            .get(&publisher)
            .and_then(|p| p.published.iter().find(|s| s.source == source))
        else {
            return;
        };
        let (kind, layers, held) = (src.kind.clone(), src.layers, src.held);
        let codec = self.published_codec(publisher, src);
        let Some(q) = self.participants.get_mut(&to) else {
            return;
        };
        if q.excluded.contains(&source) || q.subscriptions.iter().any(|s| s.source == source) {
            return;
        }
        let Some(pc) = q.pc.as_mut() else { return };
        let mut rng = rand::rng();
        let ssrc = rng.random::<u32>() | 1;
        let rtx_ssrc = ssrc ^ 0x8000_0000;
        let track = SendTrack {
            ssrc,
            rtx_ssrc: Some(rtx_ssrc),
            stream_id: pid(publisher),
            track_id: sid(source),
        };
        let mid = match pc.add_send(kind, &codec, track) {
            Ok(mid) => mid,
            Err(e) => {
                // the clock here only paces a log line; no decision reads it
                if let Some(suppressed) = self.log_budget.allow(Instant::now()) {
                    tracing::info!(target: "switchyard::hub", participant = to, source, error = %e, suppressed, "cannot receive this source");
                }
                return;
            }
        };
        let line = pc.lines().iter().find(|l| l.mid == mid).cloned();
        let Some(codec) = line.and_then(|l| l.codec) else {
            return;
        };
        let (rtx_ssrc, rtx_pt) = match codec.rtx_pt {
            Some(pt) => (rtx_ssrc, pt),
            None => (0, 0),
        };
        let mut mid_bytes = [0u8; MAX_MID];
        let n = mid.len().min(MAX_MID);
        mid_bytes[..n].copy_from_slice(&mid.as_bytes()[..n]);
        let spec = SubscriptionSpec {
            endpoint: to,
            source,
            ssrc,
            rtx_ssrc,
            payload_type: codec.pt,
            rtx_payload_type: rtx_pt,
            // a source a moderator muted starts paused
            target_layer: if held {
                switchyard_dataplane::abi::command::PAUSED
            } else {
                layers.saturating_sub(1)
            },
            mid: mid_bytes,
            mid_len: n as u8,
        };
        q.subscriptions.push(Subscription {
            source,
            publisher,
            mid,
            unanswered: true,
            offered: false,
        });
        q.needs_offer = true;
        let room = q.room.clone();
        self.for_endpoint(to, Command::Subscribe(spec));
        // a far source's relay carries what the new subscription starts on
        self.fit_relays(&room, None);
    }

    fn unsubscribe(&mut self, from: u64, source: u64) {
        let Some(q) = self.participants.get_mut(&from) else {
            return;
        };
        let Some(i) = q.subscriptions.iter().position(|s| s.source == source) else {
            return;
        };
        let sub = q.subscriptions.remove(i);
        if let Some(pc) = q.pc.as_mut() {
            pc.remove_send(&sub.mid);
        }
        q.needs_offer = true;
        self.for_endpoint(
            from,
            Command::Unsubscribe {
                endpoint: from,
                source,
            },
        );
    }

    pub(super) fn drop_subscriptions_from(&mut self, to: u64, publisher: u64) {
        let sources: Vec<u64> = self
            .participants
            .get(&to)
            .map(|q| {
                q.subscriptions
                    .iter()
                    .filter(|s| s.publisher == publisher)
                    .map(|s| s.source)
                    .collect()
            })
            .unwrap_or_default();
        for s in sources {
            self.unsubscribe(to, s);
        }
    }

    pub(super) fn on_answer(
        &mut self,
        id: u64,
        answer: Result<Offer, SdpError>,
    ) -> Result<(), ProtocolError> {
        let answer = answer.map_err(bad_sdp)?;
        if self.is_stale(id, &answer) {
            return Ok(());
        }
        let p = self
            .participants
            .get_mut(&id)
            .ok_or_else(|| ProtocolError::new(ErrorCode::BadState, "not joined"))?;
        if !p.offer_pending {
            return Err(ProtocolError::new(
                ErrorCode::BadState,
                "no offer to answer",
            ));
        }
        let pc =
            p.pc.as_mut()
                .ok_or_else(|| ProtocolError::new(ErrorCode::BadState, "no session"))?;
        pc.apply_answer(&answer).map_err(bad_sdp)?;
        p.offer_pending = false;
        tracing::debug!(target: "switchyard::hub", participant = id, "answer applied");
        self.drop_rejected(id);
        self.keyframes_for_answered(id);
        Ok(())
    }

    /// Sources whose m-lines the receiver's answer rejected (it cannot
    /// decode their codec): their streams stop, they are left out like
    /// sources it did not subscribe to, and it is told why.
    fn drop_rejected(&mut self, id: u64) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let Some(pc) = p.pc.as_ref() else { return };
        let rejected: Vec<(u64, u64)> = p
            .subscriptions
            .iter()
            .filter(|s| s.unanswered && s.offered)
            .filter(|s| {
                pc.lines()
                    .iter()
                    .any(|l| l.mid == s.mid && l.codec.is_none())
            })
            .map(|s| (s.source, s.publisher))
            .collect();
        for &(source, _) in &rejected {
            p.subscriptions.retain(|s| s.source != source);
            p.excluded.push(source);
        }
        for (source, publisher) in rejected {
            let codec = self
                .participants
                .get(&publisher)
                .and_then(|q| q.published.iter().find(|s| s.source == source))
                .map(|s| s.codec.clone())
                .unwrap_or_default();
            if let Some(suppressed) = self.log_budget.allow(Instant::now()) {
                tracing::info!(target: "switchyard::hub", participant = id, source, codec, suppressed, "the receiver rejected a source's m-line");
            }
            self.for_endpoint(
                id,
                Command::Unsubscribe {
                    endpoint: id,
                    source,
                },
            );
            self.signal(
                id,
                ServerMessage::SourceUnavailable {
                    v: VERSION,
                    participant: pid(publisher),
                    source: sid(source),
                    reason: format!(
                        "your answer rejected its m-line: no codec in common ({codec})"
                    ),
                },
            );
        }
    }

    /// The receiver answered: its new m-lines carry media from now on. What
    /// the dataplane forwarded on them before (the keyframe that started
    /// each stream) it could not decode, so each new video asks its
    /// publisher for a keyframe now (throttled per layer in the dataplane)
    /// rather than waiting for the receiver's own request.
    fn keyframes_for_answered(&mut self, id: u64) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let mut new = Vec::new();
        for sub in p
            .subscriptions
            .iter_mut()
            .filter(|s| s.unanswered && s.offered)
        {
            sub.unanswered = false;
            new.push((sub.source, sub.publisher));
        }
        let targets = p.allocation.targets.clone();
        for (source, publisher) in new {
            let Some(src) = self
                .participants
                .get(&publisher)
                .and_then(|q| q.published.iter().find(|s| s.source == source))
            else {
                continue;
            };
            if src.kind != SdpMediaValue::Video {
                continue;
            }
            let layer = match targets.get(&source) {
                Some(crate::allocator::Target::Paused) => continue,
                Some(crate::allocator::Target::Layer(l)) => *l,
                None => src.layers.saturating_sub(1),
            };
            self.for_endpoint(id, Command::RequestKeyframe { source, layer });
        }
    }

    /// Whether an offer or answer comes from the peer connection the
    /// participant had before its media moved (it crossed `media_moved`).
    fn is_stale(&self, id: u64, sdp: &Offer) -> bool {
        let stale = self
            .participants
            .get(&id)
            .and_then(|p| p.stale_ice.as_deref())
            .is_some_and(|u| u == sdp.ice.ufrag);
        if stale {
            tracing::debug!(target: "switchyard::hub", participant = id, "ignored SDP from the peer connection before the move");
        }
        stale
    }

    pub(super) fn on_subscribe(
        &mut self,
        id: u64,
        sources: &[String],
    ) -> Result<(), ProtocolError> {
        let wanted: Vec<u64> = sources.iter().filter_map(|s| parse_sid(s)).collect();
        let all = self.room_sources(id);
        if let Some(p) = self.participants.get_mut(&id) {
            p.excluded = all
                .iter()
                .map(|&(_, s)| s)
                .filter(|s| !wanted.contains(s))
                .collect();
        }
        for (publisher, source) in all {
            if wanted.contains(&source) {
                self.subscribe(id, publisher, source);
            } else {
                self.unsubscribe(id, source);
            }
        }
        Ok(())
    }

    /// `mute` of a local track: told to the room; an unmute also ends a
    /// moderator's hold on it.
    pub(super) fn on_mute(
        &mut self,
        now: Instant,
        id: u64,
        mid: &str,
        muted: bool,
    ) -> Result<(), ProtocolError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        let Some(s) = p.published.iter_mut().find(|s| s.mid == mid) else {
            return Err(ProtocolError::new(
                ErrorCode::InvalidValue,
                format!("no published track with mid {mid}"),
            ));
        };
        s.muted = muted;
        let released = s.held && !muted;
        if released {
            s.held = false;
        }
        let source = s.source;
        self.tell_mute(id, source, muted);
        if released {
            self.apply_hold(now, source, false);
        }
        Ok(())
    }

    /// `publisher`'s `source` as `to` sees it: with the `mid` of the m-line
    /// that carries it to `to`, once subscribed.
    pub(super) fn source_info(&self, to: u64, publisher: u64, source: u64) -> Option<SourceInfo> {
        let s = self
            .participants
            .get(&publisher)?
            .published
            .iter()
            .find(|s| s.source == source)?;
        let mid = self.participants.get(&to).and_then(|q| {
            q.subscriptions
                .iter()
                .find(|sub| sub.source == source)
                .map(|sub| sub.mid.clone())
        });
        Some(SourceInfo {
            id: sid(source),
            kind: s.kind.to_string(),
            muted: s.muted,
            content: s.content,
            mid,
        })
    }

    /// The other participants in `id`'s room.
    pub(super) fn room_others(&self, id: u64) -> Vec<u64> {
        let room = self
            .participants
            .get(&id)
            .map(|p| p.room.clone())
            .unwrap_or_default();
        self.participants
            .iter()
            .filter(|(o, p)| **o != id && p.room == room)
            .map(|(&o, _)| o)
            .collect()
    }

    /// (publisher, source) of every source the others in `id`'s room publish.
    fn room_sources(&self, id: u64) -> Vec<(u64, u64)> {
        self.room_others(id)
            .into_iter()
            .filter_map(|o| self.participants.get(&o).map(|p| (o, p)))
            .flat_map(|(o, p)| p.published.iter().map(move |s| (o, s.source)))
            .collect()
    }

    /// Sends an offer to every participant whose m-lines changed and who
    /// has no offer outstanding.
    pub(super) fn flush_offers(&mut self) {
        let ready: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| p.needs_offer && !p.offer_pending && p.pc.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in ready {
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            let Some(pc) = p.pc.as_mut() else { continue };
            let sdp = pc.offer();
            p.needs_offer = false;
            p.offer_pending = true;
            for sub in p.subscriptions.iter_mut().filter(|s| s.unanswered) {
                sub.offered = true;
            }
            tracing::debug!(target: "switchyard::hub", participant = id, "offer sent");
            self.signal(id, ServerMessage::Offer { v: VERSION, sdp });
        }
    }
}
