//! People in a room: raised hands, and what a moderator may do to the
//! others — mute their microphone or camera, remove them.
//!
//! A moderator is whoever joined with a room token whose `moderator` claim
//! is true (docs/signalling.md "Moderators"); without tokens nobody is. A
//! moderator's mute is enforced here, not asked of the muted client: its
//! sources of that kind are *held* — not forwarded to anyone — until their
//! publisher unmutes them itself (`mute` with `muted: false`), as a person
//! muted in a meeting may speak again on purpose. Removal ends the
//! participation at once: the removed client gets `removed`, its socket is
//! closed and its resume token dies with it.

use super::{Hub, VERSION, pid};
use crate::signalling::{ErrorCode, ProtocolError, ServerMessage, TrackKind};
use std::time::Instant;
use switchyard_dataplane::abi::Command;
use switchyard_dataplane::abi::command::PAUSED;
use webrtc_sdp::media_type::SdpMediaValue;

fn forbidden(what: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Forbidden,
        format!("only a moderator may {what}; your room token does not make you one"),
    )
}

impl Hub {
    /// `hand`: tells the room.
    pub(super) fn on_hand(&mut self, id: u64, raised: bool) -> Result<(), ProtocolError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        if p.hand_raised == raised {
            return Ok(());
        }
        p.hand_raised = raised;
        for o in self.room_others(id) {
            self.signal(
                o,
                ServerMessage::Hand {
                    v: VERSION,
                    participant: pid(id),
                    raised,
                },
            );
        }
        Ok(())
    }

    /// The moderator `id` and its display name, or `forbidden`.
    fn moderator(&self, id: u64, what: &str) -> Result<String, ProtocolError> {
        match self.participants.get(&id) {
            Some(p) if p.moderator => Ok(p.name.clone()),
            _ => Err(forbidden(what)),
        }
    }

    /// `mute_participant`: holds `target`'s sources of `kind`.
    pub(super) fn on_mute_participant(
        &mut self,
        now: Instant,
        id: u64,
        target: &str,
        kind: TrackKind,
    ) -> Result<(), ProtocolError> {
        let name = self.moderator(id, "mute others")?;
        let target = self.room_peer(id, target, "participant")?;
        let wanted = match kind {
            TrackKind::Audio => SdpMediaValue::Audio,
            TrackKind::Video => SdpMediaValue::Video,
        };
        let Some(t) = self.participants.get_mut(&target) else {
            return Ok(());
        };
        let mut newly = Vec::new();
        for s in t.published.iter_mut().filter(|s| s.kind == wanted) {
            if !s.held {
                s.held = true;
                s.muted = true;
                newly.push((s.source, s.mid.clone()));
            }
        }
        if newly.is_empty() && !t.published.iter().any(|s| s.kind == wanted) {
            return Err(ProtocolError::new(
                ErrorCode::InvalidValue,
                format!("participant: publishes no {wanted}"),
            ));
        }
        for (source, mid) in newly {
            tracing::info!(target: "switchyard::hub", moderator = id, participant = target, source, "muted by a moderator");
            self.signal(
                target,
                ServerMessage::ForceMuted {
                    v: VERSION,
                    by: pid(id),
                    name: name.clone(),
                    kind,
                    mid,
                },
            );
            self.tell_mute(target, source, true);
            self.apply_hold(now, source, true);
        }
        Ok(())
    }

    /// `remove_participant`: `target` leaves the room, told why.
    pub(super) fn on_remove_participant(
        &mut self,
        id: u64,
        target: &str,
    ) -> Result<(), ProtocolError> {
        let name = self.moderator(id, "remove others")?;
        let target = self.room_peer(id, target, "participant")?;
        tracing::info!(target: "switchyard::hub", moderator = id, participant = target, "removed by a moderator");
        self.signal(
            target,
            ServerMessage::Removed {
                v: VERSION,
                by: pid(id),
                name,
            },
        );
        self.disconnect(target);
        self.out.push_back(super::Out::Close {
            participant: target,
        });
        Ok(())
    }

    /// `mute_state` of `publisher`'s `source` to the rest of its room.
    pub(super) fn tell_mute(&mut self, publisher: u64, source: u64, muted: bool) {
        for o in self.room_others(publisher) {
            self.signal(
                o,
                ServerMessage::MuteState {
                    v: VERSION,
                    participant: pid(publisher),
                    source: super::sid(source),
                    muted,
                },
            );
        }
    }

    /// Stops (or starts again) forwarding `source` to every subscriber:
    /// audio by its stream's target, video through the allocation (a held
    /// video counts as drawn at height 0).
    pub(super) fn apply_hold(&mut self, now: Instant, source: u64, held: bool) {
        let Some(kind) = self
            .publishers
            .get(&source)
            .and_then(|p| self.participants.get(p))
            .and_then(|p| p.published.iter().find(|s| s.source == source))
            .map(|s| s.kind.clone())
        else {
            return;
        };
        let subscribers: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, q)| q.subscriptions.iter().any(|s| s.source == source))
            .map(|(&q, _)| q)
            .collect();
        for q in subscribers {
            if kind == SdpMediaValue::Audio {
                let layer = if held { PAUSED } else { 0 };
                self.for_endpoint(
                    q,
                    Command::SetTargetLayer {
                        endpoint: q,
                        source,
                        layer,
                    },
                );
            } else {
                self.reallocate(now, q);
            }
        }
    }
}
