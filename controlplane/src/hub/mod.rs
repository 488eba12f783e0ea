//! The rooms: participants, their published sources, who receives what,
//! and the renegotiations that follow — a sans-IO state machine between
//! the WebSocket sessions, the transports and the dataplane.
//!
//! Inputs: [`Hub::join`], [`Hub::handle_message`], [`Hub::disconnect`],
//! [`Hub::from_agent`] (what bridge agents report: transports connected or
//! failed, dataplane events), [`Hub::handle_timeout`], and the bridges'
//! comings and goings ([`Hub::bridge_up`], [`Hub::bridge_health`]).
//! Outputs through [`Hub::poll`]: signalling messages, socket closes and
//! messages to bridge agents ([`ToAgent`]). A room lives on one bridge,
//! chosen by placement when the room is created (`focus::placement`), and
//! on one dataplane worker there, the least loaded then, so media never
//! crosses workers; with cascading on it may span further bridges, linked
//! by relays (`cascade`).

mod allocation;
mod cascade;
mod chat;
mod layer_rates;
mod media;
mod moderation;
mod moves;
mod relay_link;
mod saved;

pub use saved::{SavedHub, SavedHubRef};

/// An offer or answer from a participant, its SDP parsed (off the hub's lock
/// when the hub is shared).
#[derive(Debug)]
pub enum ParsedSdp {
    /// The browser's offer, and what its m-lines show (`offer.content`).
    Offer(Result<Offer, SdpError>, ContentHints),
    /// The browser's answer to the server's offer.
    Answer(Result<Offer, SdpError>),
}

use crate::agent::{FromAgent, ToAgent};
use crate::auth::{TokenPolicy, authorize};
use crate::focus::bridges::{BridgeInfo, Bridges, Health};
use crate::focus::placement::Rules;
use crate::limits::{JoinRate, Limits, check_capacity};
use crate::sdp::{Offer, PcSession, SdpError};

use crate::signalling::{
    ClientMessage, ErrorCode, ParticipantInfo, ProtocolError, ServerMessage, VERSION,
};
pub use media::MAX_SOURCES_PER_PARTICIPANT;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::{Command, CommandError, Event};

/// What the hub asks of its caller.
#[derive(Debug)]
pub enum Out {
    /// Send a signalling message to a participant.
    Signal {
        /// Participant.
        participant: u64,
        /// Message.
        msg: ServerMessage,
    },
    /// Close a participant's WebSocket.
    Close {
        /// Participant.
        participant: u64,
    },
    /// A message to a bridge's agent.
    Agent {
        /// The bridge's id.
        bridge: String,
        /// The message.
        msg: ToAgent,
    },
    /// A bridge was lost and its rooms moved: what waits for it can go.
    BridgeGone {
        /// The bridge's id.
        bridge: String,
    },
}

/// Settings of the hub.
#[derive(Clone)]
pub struct HubConfig {
    /// Admission limits.
    pub limits: Limits,
    /// Room tokens.
    pub tokens: TokenPolicy,
    /// Where new rooms may go.
    pub placement: Rules,
    /// Forward at most this many videos to each receiver (`None`: all).
    pub last_n: Option<usize>,
    /// The first participant / source id to hand out, below 2^40 (with the
    /// shard's tag above it, [`Hub::set_id_tag`]). Ids are never reused
    /// across restarts: a saved state carries its next id on, and without
    /// one the caller starts from the clock ([`first_id_now`]).
    pub first_id: u64,
}

/// Bits of an id below the shard's tag.
const ID_TAG_SHIFT: u32 = 40;

/// 2026-01-01T00:00:00Z in Unix milliseconds: ids count from there.
const ID_EPOCH_MS: u64 = 1_767_225_600_000;

/// The first id of a hub that starts afresh: milliseconds since
/// 2026-01-01 (fits below the tag for 34 years).
pub fn first_id_now() -> u64 {
    switchyard_dataplane::abi::server::unix_ms().saturating_sub(ID_EPOCH_MS)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Room {
    /// The bridge it lives on.
    bridge: String,
    worker: usize,
    members: Vec<u64>,
    dominant: Option<u64>,
    #[serde(skip)]
    dominant_since: Option<Instant>,
    /// Participants by how recently they were the dominant speaker, most
    /// recent first.
    speakers: Vec<u64>,
    /// The loudest voice that is not dominant yet, and since when it leads.
    #[serde(skip)]
    candidate: Option<(u64, Instant)>,
    /// With cascading: the further bridges it is on.
    #[serde(default)]
    legs: Vec<cascade::Leg>,
    /// Its sources' copies on the bridges other than their publishers'.
    #[serde(default)]
    copies: Vec<cascade::SourceCopy>,
    /// Its last room-wide chat messages (`chat::HISTORY`). Not in the
    /// saved state: up to 50 × 1000 characters a room would crowd the
    /// region's client-state block; a restarted server starts the rooms'
    /// history afresh (the chat itself goes on).
    #[serde(skip)]
    chat: VecDeque<crate::signalling::ChatLine>,
}

impl Room {
    /// Whether it is on `bridge` (first or further).
    fn is_on(&self, bridge: &str) -> bool {
        self.bridge == bridge || self.legs.iter().any(|l| l.bridge == bridge)
    }

    /// Its worker on `bridge`.
    fn worker_on(&self, bridge: &str) -> Option<usize> {
        if self.bridge == bridge {
            return Some(self.worker);
        }
        self.legs
            .iter()
            .find(|l| l.bridge == bridge)
            .map(|l| l.worker)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Published {
    source: u64,
    mid: String,
    #[serde(with = "crate::sdp::media_kind")]
    kind: webrtc_sdp::media_type::SdpMediaValue,
    codec: String,
    layers: u8,
    muted: bool,
    /// A camera or microphone, or a shared screen.
    #[serde(default)]
    content: crate::signalling::Content,
    /// A moderator muted it: not forwarded until its publisher unmutes it.
    #[serde(default)]
    held: bool,
    /// What a copy on another bridge needs (cascading).
    #[serde(default)]
    clock_rate: u32,
    #[serde(default)]
    payload_type: u8,
    #[serde(default)]
    rtx_payload_type: u8,
}

impl Published {
    fn media_kind(&self) -> switchyard_dataplane::abi::MediaKind {
        if self.kind == webrtc_sdp::media_type::SdpMediaValue::Audio {
            switchyard_dataplane::abi::MediaKind::Audio
        } else {
            switchyard_dataplane::abi::MediaKind::Video
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Subscription {
    source: u64,
    publisher: u64,
    mid: String,
    /// The receiver has not answered an offer with its m-line yet: what
    /// was forwarded before (a keyframe, say) it could not use.
    #[serde(default)]
    unanswered: bool,
    /// An offer with its m-line went out: the next answer is about it. A
    /// subscription made while an offer is outstanding waits for the one
    /// after (an answer to the earlier offer does not negotiate it; taking
    /// it for answered there asked for its keyframe too early, and a
    /// publisher that makes keyframes only when asked sent none after).
    #[serde(default = "offered_before_saved_states_knew")]
    offered: bool,
}

/// Saved states from before [`Subscription::offered`] treated every
/// unanswered subscription as offered.
fn offered_before_saved_states_knew() -> bool {
    true
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Participant {
    name: String,
    room: String,
    /// Lets a new signalling connection carry on as this participant
    /// (`resume`); sent only in its own `joined`.
    resume_token: String,
    /// Its room's bridge and worker there.
    bridge: String,
    worker: usize,
    pc: Option<PcSession>,
    offer_pending: bool,
    needs_offer: bool,
    published: Vec<Published>,
    subscriptions: Vec<Subscription>,
    /// Sources this participant does not want (`subscribe` message).
    excluded: Vec<u64>,
    /// Its endpoint is in the dataplane (ICE nominated, DTLS done).
    connected: bool,
    /// The browser's ICE credentials from its last offer: new ones there
    /// mean an ICE restart.
    #[serde(default)]
    remote_ice: Option<crate::ice::Credentials>,
    /// The ICE ufrag of the peer connection it had before its media moved
    /// to another bridge: offers and answers still on their way from that
    /// one are ignored.
    #[serde(default)]
    stale_ice: Option<String>,
    /// Commands about its endpoint, held until it is in the dataplane.
    #[serde(with = "crate::replica::saved_commands")]
    parked: Vec<Command>,
    /// What it asked for in `constraints`.
    wishes: allocation::Wishes,
    /// Its path's bandwidth estimate (bit/s), from the dataplane.
    estimate: Option<u64>,
    /// The layers it gets now.
    #[serde(skip)]
    allocation: crate::allocator::Allocation,
    /// Probes toward it.
    #[serde(skip)]
    probing: allocation::Probing,
    /// Its estimates of the last seconds (pauses wait for them to agree).
    #[serde(skip)]
    recent_estimates: allocation::RecentEstimates,
    /// Its chat messages' budget.
    #[serde(skip)]
    chat_budget: chat::Budget,
    /// Its endpoint messages' budget.
    #[serde(skip)]
    message_budget: chat::Budget,
    /// Its room token made it a moderator.
    #[serde(default)]
    moderator: bool,
    /// Its hand is raised.
    #[serde(default)]
    hand_raised: bool,
}

/// Characters of a resume token (128 random bits, hex).
const RESUME_TOKEN_LEN: usize = 32;

fn resume_token() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the tracks of an offer's m-lines show, by `mid` (`offer.content`).
pub type ContentHints = std::collections::BTreeMap<String, crate::signalling::Content>;

/// All rooms of this control plane.
pub struct Hub {
    config: HubConfig,
    rooms: HashMap<String, Room>,
    participants: HashMap<u64, Participant>,
    /// The bridges rooms can be placed on, driven only through
    /// [`ToAgent`] messages (docs/cluster.md).
    bridges: Bridges,
    join_rate: JoinRate,
    next_id: u64,
    /// The shard's id tag, above every id's counter: shards sharing
    /// bridges never hand out the same id.
    id_tag: u64,
    levels: HashMap<u64, (u8, Instant)>,
    /// Bit/s of each layer of each source, from the dataplane's reports.
    layer_rates: HashMap<u64, layer_rates::LayerRates>,
    /// Source id → its publisher, for every published source: events name
    /// sources, and must not scan every participant to find them.
    publishers: HashMap<u64, u64>,
    /// Relays between the bridges of spanning rooms (cascading).
    relays: Vec<cascade::Relay>,
    /// Bounds the lines participants' input can cause.
    log_budget: switchyard_dataplane::log_budget::LogBudget,
    next_allocation: Option<Instant>,
    out: VecDeque<Out>,
}

impl Hub {
    /// Sets the tag of the ids handed out from now on (the registry's,
    /// [`crate::registry::Registry::id_tag`]).
    pub fn set_id_tag(&mut self, tag: u16) {
        self.id_tag = u64::from(tag);
    }

    /// The next participant or source id: the tag, then the counter.
    fn take_id(&mut self) -> u64 {
        let id = self.id_tag << ID_TAG_SHIFT | (self.next_id & ((1 << ID_TAG_SHIFT) - 1));
        self.next_id += 1;
        id
    }

    /// A hub with no bridges yet.
    pub fn new(config: HubConfig) -> Hub {
        let join_rate = JoinRate::new(&config.limits);
        let first_id = config.first_id;
        Hub {
            config,
            rooms: HashMap::new(),
            participants: HashMap::new(),
            bridges: Bridges::default(),
            join_rate,
            next_id: first_id.max(1),
            id_tag: 0,
            levels: HashMap::new(),
            layer_rates: HashMap::new(),
            publishers: HashMap::new(),
            relays: Vec::new(),
            log_budget: switchyard_dataplane::log_budget::LogBudget::per_minute(),
            next_allocation: None,
            out: VecDeque::new(),
        }
    }

    /// Rooms and participants, for `/stats`.
    pub fn counts(&self) -> (usize, usize) {
        (self.rooms.len(), self.participants.len())
    }

    /// Whether `token` admits its holder to `room` (checked again by the
    /// join; asked first so that no one without it reaches the registry).
    pub fn authorize(&self, room: &str, token: Option<&str>) -> Result<(), ProtocolError> {
        authorize(&self.config.tokens, token, room).map(|_| ())
    }

    /// Whether room `name` is open here.
    pub fn has_room(&self, name: &str) -> bool {
        self.rooms.contains_key(name)
    }

    /// The names of the rooms open here.
    pub fn room_names(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    /// The next output.
    pub fn poll(&mut self) -> Option<Out> {
        self.out.pop_front()
    }

    fn signal(&mut self, participant: u64, msg: ServerMessage) {
        self.out.push_back(Out::Signal { participant, msg });
    }

    fn error(&mut self, participant: u64, e: &ProtocolError) {
        self.signal(participant, ServerMessage::error(e));
    }

    /// Participant `id` as `to` sees it.
    fn info(&self, to: u64, id: u64) -> Option<ParticipantInfo> {
        let p = self.participants.get(&id)?;
        Some(ParticipantInfo {
            id: pid(id),
            name: p.name.clone(),
            sources: p
                .published
                .iter()
                .filter_map(|s| self.source_info(to, id, s.source))
                .collect(),
            moderator: p.moderator,
            hand_raised: p.hand_raised,
        })
    }

    /// A `join` without a region: see [`Hub::join_in`].
    pub fn join(
        &mut self,
        now: Instant,
        room: &str,
        name: &str,
        token: Option<&str>,
    ) -> Result<u64, ProtocolError> {
        self.join_in(now, room, name, token, None)
    }

    /// A `join`: admits a participant (the caller then routes its messages
    /// by the returned id) or refuses with `unauthorized` / `limit`. A new
    /// room goes to a bridge of `region` when one can take it.
    pub fn join_in(
        &mut self,
        now: Instant,
        room: &str,
        name: &str,
        token: Option<&str>,
        region: Option<&str>,
    ) -> Result<u64, ProtocolError> {
        let moderator = authorize(&self.config.tokens, token, room)?.is_some_and(|c| c.moderator);
        check_capacity(
            &self.config.limits,
            self.rooms.len(),
            self.rooms.get(room).map(|r| r.members.len()),
        )?;
        self.join_rate.admit(now, &self.config.limits)?;
        let (bridge, worker) = if self.rooms.contains_key(room) {
            let leg = self.place_joiner(now, room, region)?;
            self.add_leg(room, &leg);
            (leg.bridge, leg.worker)
        } else {
            self.place_room(now, region, &[])?
        };
        let id = self.take_id();
        let room_state = self.rooms.entry(room.to_string()).or_insert(Room {
            bridge: bridge.clone(),
            worker,
            members: Vec::new(),
            dominant: None,
            dominant_since: None,
            speakers: Vec::new(),
            candidate: None,
            legs: Vec::new(),
            copies: Vec::new(),
            chat: VecDeque::new(),
        });
        let others = room_state.members.clone();
        room_state.members.push(id);
        self.participants.insert(
            id,
            Participant {
                name: name.to_string(),
                room: room.to_string(),
                resume_token: resume_token(),
                bridge: bridge.clone(),
                worker,
                pc: None,
                offer_pending: false,
                needs_offer: false,
                published: Vec::new(),
                subscriptions: Vec::new(),
                excluded: Vec::new(),
                connected: false,
                remote_ice: None,
                stale_ice: None,
                parked: Vec::new(),
                wishes: allocation::Wishes::default(),
                estimate: None,
                allocation: crate::allocator::Allocation::default(),
                probing: allocation::Probing::default(),
                recent_estimates: Default::default(),
                chat_budget: Default::default(),
                message_budget: Default::default(),
                moderator,
                hand_raised: false,
            },
        );
        let participants: Vec<ParticipantInfo> =
            others.iter().filter_map(|&o| self.info(id, o)).collect();
        self.signal(
            id,
            ServerMessage::Joined {
                v: VERSION,
                id: pid(id),
                room: room.to_string(),
                participants,
                resume_token: self
                    .participants
                    .get(&id)
                    .map(|p| p.resume_token.clone())
                    .unwrap_or_default(),
                // filled in at the edge (wall-clock expiry): server.rs
                ice_servers: Vec::new(),
                chat: self.chat_history(room),
                moderator,
            },
        );
        if let Some(me) = self.info(id, id) {
            for o in others {
                self.signal(
                    o,
                    ServerMessage::ParticipantJoined {
                        v: VERSION,
                        participant: me.clone(),
                    },
                );
            }
        }
        tracing::info!(target: "switchyard::hub", participant = id, room, bridge, worker, "joined");
        Ok(id)
    }

    /// The bridge (in `region` if one there can take it; none of `except`)
    /// and worker a new room (or a room's new leg) goes to: placement over
    /// the bridges, then the worker of that bridge with the fewest
    /// participants.
    fn place_room(
        &mut self,
        now: Instant,
        region: Option<&str>,
        except: &[&str],
    ) -> Result<(String, usize), ProtocolError> {
        let rooms = &self.rooms;
        let bridge = self
            .bridges
            .place(now, region, self.config.placement, except, |b| {
                rooms.values().filter(|r| r.is_on(b)).count()
            })
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::Limit,
                    "no media bridge can take a new room now; try again in a moment",
                )
            })?;
        let workers = self.workers_of(&bridge).max(1);
        let mut load = vec![0usize; workers];
        for r in self.rooms.values() {
            if let Some(w) = r.worker_on(&bridge) {
                let here = r.members.iter().filter(|&&m| self.is_on(m, &bridge));
                load[w.min(workers - 1)] += here.count();
            }
        }
        let worker = (0..workers).min_by_key(|&w| load[w]).unwrap_or(0);
        Ok((bridge, worker))
    }

    /// How many dataplane workers a bridge has.
    fn workers_of(&self, bridge: &str) -> usize {
        self.bridges
            .get(bridge)
            .map_or(0, |b| b.info.worker_ports.len())
    }

    /// A bridge registered (or registered again, e.g. after its link
    /// dropped): new rooms may go there.
    pub fn bridge_up(&mut self, now: Instant, info: BridgeInfo) {
        tracing::info!(target: "switchyard::hub", bridge = info.id, region = info.region, workers = info.worker_ports.len(), "bridge up");
        self.bridges.register(now, info);
    }

    /// A bridge's link ended: no new rooms go there, and unless it
    /// registers again within `moves::BRIDGE_GRACE` its rooms move to
    /// other bridges.
    pub fn bridge_down(&mut self, now: Instant, bridge: &str) {
        self.bridges.link_down(now, bridge);
    }

    /// Asks a remote bridge to drain (as SIGTERM does there); false for an
    /// unknown bridge or this process's own (which drains with the
    /// process).
    pub fn drain_bridge(&mut self, bridge: &str) -> bool {
        if bridge == crate::focus::bridges::LOCAL || self.bridges.get(bridge).is_none() {
            return false;
        }
        tracing::info!(target: "switchyard::hub", bridge, "asking the bridge to drain");
        self.tell_agent(bridge, ToAgent::Drain);
        true
    }

    /// A bridge's heartbeat.
    pub fn bridge_health(&mut self, now: Instant, bridge: &str, health: Health) {
        self.bridges.heartbeat(now, bridge, health);
    }

    /// The bridges, for `/bridges` and `/stats`.
    pub fn bridges(&self) -> &Bridges {
        &self.bridges
    }

    /// Rooms and participants on `bridge`.
    pub fn counts_on(&self, bridge: &str) -> (usize, usize) {
        let rooms = self.rooms.values().filter(|r| r.is_on(bridge)).count();
        let here = self.participants.values().filter(|p| p.bridge == bridge);
        (rooms, here.count())
    }

    /// The participant a `resume` token belongs to.
    pub fn participant_for_token(&self, token: &str) -> Option<u64> {
        if token.len() != RESUME_TOKEN_LEN {
            return None;
        }
        self.participants
            .iter()
            .find(|(_, p)| constant_time_eq(p.resume_token.as_bytes(), token.as_bytes()))
            .map(|(&id, _)| id)
    }

    /// Whether `id` is (still) a participant.
    pub fn contains(&self, id: u64) -> bool {
        self.participants.contains_key(&id)
    }

    /// A message after `join`. An offer's or answer's SDP is parsed here;
    /// callers that share the hub parse it first, without the hub, and call
    /// [`Hub::handle_sdp`].
    pub fn handle_message(&mut self, now: Instant, id: u64, msg: ClientMessage) {
        if !self.participants.contains_key(&id) {
            return;
        }
        let result = match msg {
            ClientMessage::Join { .. } | ClientMessage::Resume { .. } => {
                Err(ProtocolError::new(ErrorCode::BadState, "already joined"))
            }
            ClientMessage::Offer { sdp, content, .. } => {
                self.on_offer(id, Offer::parse(&sdp), &content)
            }
            ClientMessage::Answer { sdp, .. } => self.on_answer(id, Offer::parse(&sdp)),
            ClientMessage::Subscribe { sources, .. } => self.on_subscribe(id, &sources),
            ClientMessage::Constraints {
                max_height,
                selected,
                on_stage,
                ..
            } => self.on_constraints(now, id, &max_height, &selected, &on_stage),
            ClientMessage::Mute { mid, muted, .. } => self.on_mute(now, id, &mid, muted),
            ClientMessage::Ping { .. } => {
                self.signal(id, ServerMessage::Pong { v: VERSION });
                Ok(())
            }
            ClientMessage::Leave { .. } => {
                self.disconnect(id);
                self.out.push_back(Out::Close { participant: id });
                Ok(())
            }
            ClientMessage::Chat { text, to, .. } => self.on_chat(now, id, text, to.as_deref()),
            ClientMessage::Hand { raised, .. } => self.on_hand(id, raised),
            ClientMessage::EndpointMessage { data, to, .. } => {
                self.on_endpoint_message(now, id, data, to.as_deref())
            }
            ClientMessage::MuteParticipant {
                participant, kind, ..
            } => self.on_mute_participant(now, id, &participant, kind),
            ClientMessage::RemoveParticipant { participant, .. } => {
                self.on_remove_participant(id, &participant)
            }
        };
        self.finish(id, result);
    }

    /// An offer or answer whose SDP the caller parsed.
    pub fn handle_sdp(&mut self, id: u64, sdp: ParsedSdp) {
        if !self.participants.contains_key(&id) {
            return;
        }
        let result = match sdp {
            ParsedSdp::Offer(offer, content) => self.on_offer(id, offer, &content),
            ParsedSdp::Answer(answer) => self.on_answer(id, answer),
        };
        self.finish(id, result);
    }

    /// Reports a refused message and sends the offers it made necessary.
    fn finish(&mut self, id: u64, result: Result<(), ProtocolError>) {
        if let Err(e) = result {
            self.error(id, &e);
        }
        self.flush_offers();
    }

    /// The participant's socket closed (or it left): everything it had is
    /// torn down and the room is told.
    pub fn disconnect(&mut self, id: u64) {
        let Some(p) = self.participants.remove(&id) else {
            return;
        };
        self.tell_agent(&p.bridge, ToAgent::CloseTransport { endpoint: id });
        let workers = self.workers_of(&p.bridge);
        for s in &p.published {
            self.forget_source(s.source);
            for w in 0..workers {
                self.dataplane(&p.bridge, w, Command::RemoveSource { source: s.source });
            }
        }
        let Some(room) = self.rooms.get_mut(&p.room) else {
            return;
        };
        room.members.retain(|&m| m != id);
        let members = room.members.clone();
        if members.is_empty() {
            // its last member: relays and copies go with it
            for leg in self.legs_of(&p.room).into_iter().skip(1) {
                self.drop_leg(&p.room, &leg.bridge);
            }
            self.rooms.remove(&p.room);
        }
        for m in members {
            self.drop_subscriptions_from(m, id);
            self.signal(
                m,
                ServerMessage::ParticipantLeft {
                    v: VERSION,
                    id: pid(id),
                },
            );
        }
        for s in &p.published {
            self.drop_copies(&p.room, s.source);
        }
        self.prune_legs(&p.room);
        self.flush_offers();
        tracing::info!(target: "switchyard::hub", participant = id, room = p.room, "left");
    }

    /// The periodic reallocation, and moving rooms off lost bridges.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.move_off_lost_bridges(now);
        if self.next_allocation.is_none_or(|t| now >= t) {
            self.next_allocation = Some(now + Duration::from_secs(1));
            self.tend_relay_links(now);
            let ids: Vec<u64> = self.participants.keys().copied().collect();
            for id in ids {
                self.reallocate(now, id);
            }
            let spanning: Vec<String> = self
                .rooms
                .iter()
                .filter(|(_, r)| !r.copies.is_empty())
                .map(|(name, _)| name.clone())
                .collect();
            for name in spanning {
                self.fit_relays(&name, Some(now));
            }
        }
    }

    /// A message from the agent of `bridge`. What it says about an
    /// endpoint or source that is not on that bridge is ignored: a bridge
    /// speaks only for its own.
    pub fn from_agent(&mut self, now: Instant, bridge: &str, msg: FromAgent) {
        match msg {
            FromAgent::Connected(id) if self.is_on(id, bridge) => self.endpoint_connected(id),
            FromAgent::Connected(id) if self.is_relay_on(id, bridge) => {
                self.relay_connected(bridge, id)
            }
            FromAgent::Failed(id, reason) if self.is_relay_on(id, bridge) => {
                self.relay_failed(now, bridge, id, &reason)
            }
            FromAgent::Failed(id, reason) if self.is_on(id, bridge) => {
                tracing::info!(target: "switchyard::hub", participant = id, reason, "transport failed");
                self.error(
                    id,
                    &ProtocolError::new(
                        ErrorCode::Internal,
                        format!("media transport failed: {reason}"),
                    ),
                );
                self.out.push_back(Out::Close { participant: id });
                self.disconnect(id);
            }
            FromAgent::Refused { id, reason } => {
                if let Some(suppressed) = self.log_budget.allow(now) {
                    tracing::warn!(target: "switchyard::hub", bridge, id, reason, suppressed, "the agent refused a command");
                }
            }
            FromAgent::Event(e) => {
                tracing::trace!(target: "switchyard::events", bridge, event = ?e, "dataplane event");
                if self.event_is_from(bridge, &e) {
                    self.handle_event(now, e);
                }
            }
            FromAgent::Evacuate => self.evacuate(now, bridge),
            _ => {}
        }
    }

    /// Whether participant `id` is on `bridge`.
    fn is_on(&self, id: u64, bridge: &str) -> bool {
        self.participants
            .get(&id)
            .is_some_and(|p| p.bridge == bridge)
    }

    /// Whether what `event` names lives on `bridge`.
    fn event_is_from(&self, bridge: &str, event: &Event) -> bool {
        let source_on = |s: &u64| {
            self.publishers
                .get(s)
                .is_some_and(|p| self.is_on(*p, bridge))
        };
        match event {
            Event::AudioLevel { source, .. } | Event::SourceRates { source, .. } => {
                source_on(source)
            }
            Event::Bandwidth { endpoint, .. } => {
                self.is_on(*endpoint, bridge) || self.is_relay_on(*endpoint, bridge)
            }
            Event::EndpointIdle { endpoint, .. } => self.is_on(*endpoint, bridge),
            Event::CommandFailed { id, .. } => self.is_on(*id, bridge) || source_on(id),
            _ => false,
        }
    }

    /// An event from a dataplane (through its agent).
    pub fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            // per-source state only for sources that exist: a late event for
            // a removed source must not bring its entry back
            Event::AudioLevel {
                source,
                level,
                voice,
            } if self.is_published(source) => {
                if voice {
                    self.levels.insert(source, (level, now));
                }
                self.dominant_speaker(now, source);
            }
            Event::Bandwidth {
                endpoint,
                estimate_bps,
                acked_bps,
                loss,
                probing,
            } => {
                tracing::trace!(target: "switchyard::bwe", participant = endpoint, estimate_bps, acked_bps, loss = f64::from(loss) / 256.0, probing, "bandwidth");
                if let Some(p) = self.participants.get_mut(&endpoint) {
                    p.estimate = Some(estimate_bps);
                    p.recent_estimates
                        .record(now, estimate_bps, f64::from(loss) / 256.0);
                    p.probing.on_estimate(now, estimate_bps);
                    self.reallocate(now, endpoint);
                } else {
                    self.relay_estimate(now, endpoint, estimate_bps, f64::from(loss) / 256.0);
                }
            }
            Event::SourceRates { source, layer_bps } if self.is_published(source) => {
                self.layer_rates
                    .entry(source)
                    .or_default()
                    .record(layer_bps);
            }
            Event::CommandFailed { kind, id, error } => self.command_failed(now, kind, id, error),
            Event::EndpointIdle { endpoint, idle_ms } => {
                // ICE consent (30 s) ends a participant whose path is dead;
                // until then this says why its tiles froze
                if self.participants.contains_key(&endpoint)
                    && let Some(suppressed) = self.log_budget.allow(now)
                {
                    tracing::info!(target: "switchyard::hub", participant = endpoint, idle_ms, suppressed, "no media from participant");
                }
            }
            _ => {}
        }
    }

    /// The dataplane refused a command. An endpoint it will not take means
    /// the participant has no media (a restarted dataplane that could not
    /// be given it back, a full table): it is told (`media_lost`) and
    /// closed, and joins again. Refusals about what is already gone are
    /// races with removal and change nothing.
    fn command_failed(&mut self, now: Instant, kind: u16, id: u64, error: CommandError) {
        use switchyard_dataplane::abi::command::kind as cmd;
        match (kind, error) {
            (cmd::ADD_ENDPOINT, _) if self.participants.contains_key(&id) => {
                tracing::warn!(target: "switchyard::hub", participant = id, ?error, "the dataplane refused the participant's endpoint");
                self.error(
                    id,
                    &ProtocolError::new(
                        ErrorCode::MediaLost,
                        format!(
                            "the media server refused this participant ({error:?}); join again"
                        ),
                    ),
                );
                self.out.push_back(Out::Close { participant: id });
                self.disconnect(id);
            }
            (_, CommandError::UnknownEndpoint | CommandError::UnknownSource) => {
                tracing::debug!(target: "switchyard::hub", kind, id, ?error, "command raced a removal");
            }
            _ => {
                if let Some(suppressed) = self.log_budget.allow(now) {
                    tracing::warn!(target: "switchyard::hub", kind, id, ?error, suppressed, "the dataplane refused a command");
                }
            }
        }
    }

    /// The ids of the sources participant `id` publishes.
    fn published_sources(&self, id: u64) -> Vec<u64> {
        self.participants
            .get(&id)
            .map(|p| p.published.iter().map(|s| s.source).collect())
            .unwrap_or_default()
    }

    fn is_published(&self, source: u64) -> bool {
        self.publishers.contains_key(&source)
    }

    /// Drops what the hub keeps about a source that is gone.
    fn forget_source(&mut self, source: u64) {
        self.publishers.remove(&source);
        self.levels.remove(&source);
        self.layer_rates.remove(&source);
    }

    /// Entries in the per-source maps (audio levels, layer rates), for tests
    /// and `/stats`.
    pub fn per_source_entries(&self) -> usize {
        self.levels.len() + self.layer_rates.len()
    }

    /// A message to a bridge's agent.
    fn tell_agent(&mut self, bridge: &str, msg: ToAgent) {
        self.out.push_back(Out::Agent {
            bridge: bridge.to_string(),
            msg,
        });
    }

    /// A dataplane command, through the bridge's agent.
    fn dataplane(&mut self, bridge: &str, worker: usize, command: Command) {
        self.tell_agent(bridge, ToAgent::Dataplane { worker, command });
    }

    /// Participant `id`'s endpoint is in the dataplane: what waited for it goes.
    fn endpoint_connected(&mut self, id: u64) {
        tracing::info!(target: "switchyard::hub", participant = id, "media connected");
        if let Some(p) = self.participants.get_mut(&id) {
            p.connected = true;
            let (bridge, worker) = (p.bridge.clone(), p.worker);
            for command in std::mem::take(&mut p.parked) {
                self.dataplane(&bridge, worker, command);
            }
        }
    }

    /// A command about participant `id`'s endpoint (subscribe,
    /// unsubscribe, target layer): to its worker now if the endpoint is in
    /// the dataplane, else held until it is — the dataplane refuses
    /// subscriptions of endpoints it does not know, and browsers often
    /// finish DTLS after the first renegotiation.
    fn for_endpoint(&mut self, id: u64, command: Command) {
        let command = self.localize(id, command);
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if p.connected {
            let (bridge, worker) = (p.bridge.clone(), p.worker);
            self.dataplane(&bridge, worker, command);
            return;
        }
        if let Command::SetTargetLayer { source, .. } = command {
            // only the latest target per source matters
            p.parked.retain(
                |c| !matches!(c, Command::SetTargetLayer { source: s, .. } if *s == source),
            );
        }
        p.parked.push(command);
    }

    /// The dominant speaker, with hysteresis: the loudest voice (RFC 6464
    /// levels over the last second) must lead for [`SPEAKER_LEAD`] before
    /// it takes over, and a dominant speaker keeps the floor at least
    /// [`SPEAKER_HOLD`]. Silence never takes the floor.
    fn dominant_speaker(&mut self, now: Instant, source: u64) {
        let Some(room) = self
            .publishers
            .get(&source)
            .and_then(|p| self.participants.get(p))
            .map(|p| p.room.clone())
        else {
            return;
        };
        let level_of = |p: &Participant| {
            // a voice a moderator muted is heard by nobody: it does not
            // take the floor either
            p.published
                .iter()
                .filter(|s| !s.held)
                .filter_map(|s| self.levels.get(&s.source))
                .filter(|(_, t)| now.saturating_duration_since(*t) < Duration::from_secs(1))
                .map(|(l, _)| *l)
                .min()
                .unwrap_or(127)
        };
        let loudest = self
            .participants
            .iter()
            .filter(|(_, p)| p.room == room)
            .map(|(&id, p)| (level_of(p), id))
            .min();
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let Some((_, speaker)) = loudest.filter(|(l, _)| *l < 127) else {
            r.candidate = None;
            return;
        };
        if r.dominant == Some(speaker) {
            r.candidate = None;
            return;
        }
        match r.candidate {
            Some((c, since)) if c == speaker => {
                if now.saturating_duration_since(since) < SPEAKER_LEAD {
                    return;
                }
            }
            _ => {
                r.candidate = Some((speaker, now));
                return;
            }
        }
        if r.dominant_since
            .is_some_and(|t| now.saturating_duration_since(t) < SPEAKER_HOLD)
        {
            return;
        }
        r.dominant = Some(speaker);
        r.dominant_since = Some(now);
        r.candidate = None;
        r.speakers.retain(|&p| p != speaker);
        r.speakers.insert(0, speaker);
        let members = r.members.clone();
        for &m in &members {
            self.signal(
                m,
                ServerMessage::DominantSpeaker {
                    v: VERSION,
                    participant: pid(speaker),
                },
            );
        }
        // speaker order moves layers and last-N
        for m in members {
            self.reallocate(now, m);
        }
    }
}

/// A new dominant speaker must lead this long.
const SPEAKER_LEAD: Duration = Duration::from_millis(1500);
/// A dominant speaker keeps the floor at least this long.
const SPEAKER_HOLD: Duration = Duration::from_secs(2);

/// Participant id as the protocol writes it.
pub fn pid(id: u64) -> String {
    format!("p{id}")
}

impl Hub {
    /// The participant of `id`'s room (not `id` itself) whose protocol id
    /// is `target`; `field` names the message field for the error.
    fn room_peer(&self, id: u64, target: &str, field: &str) -> Result<u64, ProtocolError> {
        let room = self.participants.get(&id).map(|p| p.room.as_str());
        self.participants
            .iter()
            .find(|(o, q)| **o != id && Some(q.room.as_str()) == room && pid(**o) == target)
            .map(|(&o, _)| o)
            .ok_or_else(|| {
                ProtocolError::new(
                    ErrorCode::InvalidValue,
                    format!("{field}: no other participant of this room has that id"),
                )
            })
    }
}

/// Source id as the protocol writes it.
pub fn sid(id: u64) -> String {
    format!("s{id}")
}

fn parse_sid(s: &str) -> Option<u64> {
    s.strip_prefix('s')?.parse().ok()
}

#[cfg(test)]
mod cascade_tests;
#[cfg(test)]
mod tests;
