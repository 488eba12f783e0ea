//! The engine's side of continuity records (`abi::continuity`): what it
//! writes so a dataplane started after it can carry on, and how it carries
//! on from such records.

use super::{Engine, Rewritten};
use crate::abi::command::PAUSED;
use crate::abi::{CommandError, Continuity, Direction, StreamState};
use std::time::{Duration, Instant};

impl Engine {
    /// Every record of this worker's state: per endpoint its SRTP contexts
    /// both ways and its transport-wide sequence number, per outgoing stream
    /// its rewrite state. `now` and `unix_ms` are the same moment.
    pub fn continuity(&self, now: Instant, unix_ms: u64) -> impl Iterator<Item = Continuity> + '_ {
        let endpoints = self.endpoints.iter().flat_map(|(_, e)| {
            let srtp = |direction, session: &'_ switchyard_srtp::Session| {
                session
                    .contexts()
                    .map(move |c| Continuity::Srtp {
                        endpoint: e.id,
                        direction,
                        ssrc: c.ssrc,
                        rtp_index: c.rtp_index,
                        srtcp_index: c.srtcp_index,
                    })
                    .collect::<Vec<_>>()
            };
            std::iter::once(Continuity::Endpoint {
                endpoint: e.id,
                twcc_seq: e.twcc_seq,
            })
            .chain(srtp(Direction::Receive, &e.rx))
            .chain(srtp(Direction::Send, &e.tx))
        });
        // relay streams too: the far bridge's SRTP contexts hold every
        // index a stream sent, and one started afresh would be replayed
        let streams = self.streams.iter().filter_map(move |(_, out)| {
            let endpoint = self.endpoints.get(out.endpoint)?.id;
            let source = self.sources.get(out.source)?.spec.id;
            let mut state = StreamState {
                rtx_seq: out.rtx_seq,
                ..StreamState::default()
            };
            if let Some((high, last)) = out.rewriter.high_water() {
                let age = now.saturating_duration_since(last).as_millis() as u64;
                state.seq = high.seq;
                state.timestamp = high.timestamp;
                state.picture_id = high.picture_id.unwrap_or(0);
                state.tl0_pic_idx = high.tl0_pic_idx.unwrap_or(0);
                state.last_sent_ms = unix_ms.saturating_sub(age).max(1);
            }
            Some(Continuity::Stream {
                endpoint,
                source,
                ssrc: out.spec.ssrc,
                state,
            })
        });
        let layers = self
            .sources
            .iter()
            .filter(|(_, src)| src.publisher.is_some())
            .filter(|(_, src)| src.layers.iter().any(|l| l.ssrc != 0 || l.rtx_ssrc != 0))
            .map(|(_, src)| Continuity::Layers {
                endpoint: src.spec.endpoint,
                source: src.spec.id,
                ssrcs: src.layers.each_ref().map(|l| l.ssrc),
                rtx_ssrcs: src.layers.each_ref().map(|l| l.rtx_ssrc),
            });
        endpoints.chain(streams).chain(layers)
    }

    /// Carries on from a record written by an earlier dataplane (the control
    /// plane moved its counters past what that one may have sent since).
    pub(super) fn resume(&mut self, now: Instant, record: Continuity) -> Result<(), CommandError> {
        if let Continuity::Layers {
            source,
            ssrcs,
            rtx_ssrcs,
            ..
        } = record
        {
            // also on workers that only mirror the source
            let s = self.source_idx(source)?;
            let src = self.sources.get_mut(s).ok_or(CommandError::UnknownSource)?;
            for ((l, ssrc), rtx) in src.layers.iter_mut().zip(ssrcs).zip(rtx_ssrcs) {
                if ssrc != 0 {
                    l.ssrc = ssrc;
                }
                if rtx != 0 {
                    l.rtx_ssrc = rtx;
                }
            }
            return Ok(());
        }
        let e = self.endpoint_idx(record.endpoint())?;
        match record {
            Continuity::Srtp {
                direction,
                ssrc,
                rtp_index,
                srtcp_index,
                ..
            } => {
                let ep = self
                    .endpoints
                    .get_mut(e)
                    .ok_or(CommandError::UnknownEndpoint)?;
                let session = match direction {
                    Direction::Receive => &mut ep.rx,
                    Direction::Send => &mut ep.tx,
                };
                session
                    .resume_context(switchyard_srtp::ContextState {
                        ssrc,
                        rtp_index,
                        srtcp_index,
                    })
                    .map_err(|_| CommandError::Full)
            }
            Continuity::Layers { .. } => Ok(()),
            Continuity::Endpoint { twcc_seq, .. } => {
                if let Some(ep) = self.endpoints.get_mut(e) {
                    ep.twcc_seq = twcc_seq;
                }
                Ok(())
            }
            Continuity::Stream {
                source,
                ssrc,
                state,
                ..
            } => {
                let s = self.source_idx(source)?;
                // a relay's stream of the layer with that SSRC; else the
                // endpoint's subscription
                let o = if self.endpoints.get(e).is_some_and(|ep| ep.relay) {
                    self.relay_stream(e, s, ssrc)
                } else {
                    self.stream_of(e, s)
                }
                .ok_or(CommandError::UnknownSource)?;
                let out = self.streams.get_mut(o).ok_or(CommandError::UnknownSource)?;
                out.rtx_seq = state.rtx_seq;
                if state.last_sent_ms != 0 {
                    // the unix time at `now`, from the caller's reference pair
                    let (at, unix_at) = self.wall_clock;
                    let unix_now = unix_at
                        .saturating_add(now.saturating_duration_since(at).as_millis() as u64);
                    let age = Duration::from_millis(unix_now.saturating_sub(state.last_sent_ms));
                    let last = now.checked_sub(age).unwrap_or(now);
                    out.rewriter.resume(
                        Rewritten {
                            seq: state.seq,
                            timestamp: state.timestamp,
                            picture_id: Some(state.picture_id),
                            tl0_pic_idx: Some(state.tl0_pic_idx),
                        },
                        last,
                    );
                    // the next keyframe (any packet for audio) switches in
                    if out.target != PAUSED {
                        out.current = None;
                    }
                    out.newest = None;
                }
                Ok(())
            }
        }
    }
}
