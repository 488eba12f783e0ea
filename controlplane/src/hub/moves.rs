//! Moving rooms off a bridge: one that was lost (its link down longer than
//! [`BRIDGE_GRACE`]) or one that asks to be emptied at the end of its drain
//! (docs/cluster.md, "Bridge loss and drain").
//!
//! A room moves whole: placement picks a new bridge, and every member's
//! media session starts over there. Each member is told `media_moved`
//! (docs/signalling.md) and offers again from a new peer connection on the
//! same signalling connection, keeping its participant id; its sources are
//! announced again as it publishes them. Offers and answers its old peer
//! connection still had in flight are recognised by their ICE ufrag and
//! ignored.

use super::{Hub, Out};
use crate::agent::ToAgent;
use crate::signalling::{ErrorCode, ProtocolError, ServerMessage, VERSION};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::Command;

/// How long a bridge's link may be down before its rooms move: a restarted
/// agent (which keeps its dataplane and endpoints) is back well within it.
pub const BRIDGE_GRACE: Duration = Duration::from_secs(2);

impl Hub {
    /// Moves the rooms of bridges whose link has been down longer than
    /// [`BRIDGE_GRACE`]; they are forgotten ([`Out::BridgeGone`]).
    pub(super) fn move_off_lost_bridges(&mut self, now: Instant) {
        for bridge in self.bridges.down_longer_than(now, BRIDGE_GRACE) {
            tracing::warn!(target: "switchyard::hub", bridge, "bridge lost: moving its rooms");
            // its participants stay in its region where they can
            let region = self.region_of(&bridge).map(str::to_string);
            self.bridges.remove(&bridge);
            self.out.push_back(Out::BridgeGone {
                bridge: bridge.clone(),
            });
            self.move_rooms(now, &bridge, region.as_deref(), false);
        }
    }

    /// A draining bridge whose time is up asks for its rooms to go
    /// elsewhere: they move, and it is told to close their endpoints (it
    /// carries their media until the new bridge does).
    pub(super) fn evacuate(&mut self, now: Instant, bridge: &str) {
        tracing::info!(target: "switchyard::hub", bridge, "moving the rooms off a draining bridge");
        let region = self.region_of(bridge).map(str::to_string);
        self.move_rooms(now, bridge, region.as_deref(), true);
    }

    /// Moves every room on `bridge` (of `region`, where the moved
    /// participants stay if they can); `alive`: the old bridge still runs
    /// and is told to let go of what moved.
    fn move_rooms(&mut self, now: Instant, bridge: &str, region: Option<&str>, alive: bool) {
        let rooms: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.is_on(bridge))
            .map(|(name, _)| name.clone())
            .collect();
        for name in rooms {
            if self.legs_of(&name).len() > 1 {
                self.move_leg(now, &name, bridge, region, alive);
                continue;
            }
            // the old bridge cannot take it back
            let placed = self.place_room(now, region, &[bridge]);
            let Some(room) = self.rooms.get_mut(&name) else {
                continue;
            };
            let members = room.members.clone();
            match placed {
                Ok((to, worker)) => {
                    room.bridge = to.clone();
                    room.worker = worker;
                    room.dominant = None;
                    tracing::info!(target: "switchyard::hub", room = name, from = bridge, to, participants = members.len(), "room moved");
                    for id in members {
                        self.restart_media(id, bridge, alive, &to, worker, why(alive));
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "switchyard::hub", room = name, from = bridge, "no bridge for a moved room: its participants must join again");
                    for id in members {
                        self.error(
                            id,
                            &ProtocolError::new(
                                ErrorCode::MediaLost,
                                format!(
                                    "the media bridge of this room is gone and {}; join again",
                                    e.message
                                ),
                            ),
                        );
                        self.out.push_back(Out::Close { participant: id });
                        self.disconnect(id);
                    }
                }
            }
        }
    }

    /// A room spanning bridges leaves `bridge`: only its members there
    /// move, each where a joiner would go now (docs/cascading.md); their
    /// sources leave the room first (the others are told, and announced
    /// again as the movers publish them anew), and the relays to `bridge`
    /// close. The others' media does not stop.
    fn move_leg(
        &mut self,
        now: Instant,
        name: &str,
        bridge: &str,
        region: Option<&str>,
        alive: bool,
    ) {
        let movers: Vec<u64> = self
            .rooms
            .get(name)
            .map(|r| r.members.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|&m| self.is_on(m, bridge))
            .collect();
        for &id in &movers {
            for source in self.published_sources(id) {
                self.unpublish(id, source);
            }
        }
        self.drop_leg(name, bridge);
        tracing::info!(target: "switchyard::hub", room = name, from = bridge, participants = movers.len(), "moving a room's participants off one of its bridges");
        for id in movers {
            match self.place_joiner(now, name, region) {
                Ok(leg) if leg.bridge != bridge => {
                    self.add_leg(name, &leg);
                    self.restart_media(id, bridge, alive, &leg.bridge, leg.worker, why(alive));
                }
                _ => {
                    self.error(
                        id,
                        &ProtocolError::new(
                            ErrorCode::MediaLost,
                            "the media bridge of this participant is gone and no other can take it; join again",
                        ),
                    );
                    self.out.push_back(Out::Close { participant: id });
                    self.disconnect(id);
                }
            }
        }
        self.flush_offers();
    }

    /// Participant `id`'s media session starts over on bridge `to`.
    fn restart_media(
        &mut self,
        id: u64,
        from: &str,
        alive: bool,
        to: &str,
        worker: usize,
        reason: &str,
    ) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let published: Vec<u64> = p.published.drain(..).map(|s| s.source).collect();
        p.subscriptions.clear();
        p.parked.clear();
        p.pc = None;
        p.offer_pending = false;
        p.needs_offer = false;
        p.connected = false;
        p.stale_ice = p.remote_ice.take().map(|c| c.ufrag);
        p.estimate = None;
        p.allocation = crate::allocator::Allocation::default();
        p.probing = super::allocation::Probing::default();
        p.bridge = to.to_string();
        p.worker = worker;
        let workers = self.workers_of(from);
        for source in published {
            self.forget_source(source);
            if alive {
                for w in 0..workers {
                    self.dataplane(from, w, Command::RemoveSource { source });
                }
            }
        }
        if alive {
            self.tell_agent(from, ToAgent::CloseTransport { endpoint: id });
        }
        self.signal(
            id,
            ServerMessage::MediaMoved {
                v: VERSION,
                reason: reason.to_string(),
            },
        );
    }
}

/// Why a room moved, for people.
fn why(alive: bool) -> &'static str {
    if alive {
        "the media server of this call is shutting down; moving to another"
    } else {
        "the media server of this call was lost; moving to another"
    }
}
