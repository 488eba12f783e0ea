//! Rooms over several bridges (cascading, docs/cascading.md).
//!
//! With cascading on (`--cascade`), a room lives on its first bridge and on
//! *legs*: further bridges, each on one worker there, that joiners were
//! placed on (their region, or the room's bridges were full). Every pair of
//! a room's legs is linked by a [`Relay`]: one endpoint on each side, ICE +
//! DTLS-SRTP between the two agents (the focus hands each side the other's
//! credentials and fingerprint; the keys come from the handshake). A relay
//! joins two workers of two bridges and serves every room of this focus
//! between them: the dataplane tells endpoints apart by their address, and
//! two relays between the same two worker ports would share one.
//! Each source crosses each relay of its room once, every layer as its own
//! stream (`RelaySource` on the publisher's bridge); on the far bridge it is
//! a *copy*, a source with an id of its own whose publisher is the relay's
//! end there, and the far bridge forwards it like a local source. Receivers'
//! dataplane commands name the copy on their bridge
//! ([`Hub::localize`]); signalling names only the original. Events about a
//! copy are not taken (the original's bridge reports the source). The
//! dataplane refuses to relay a copy or to subscribe a relay, so a room over
//! any number of bridges has no loops.

use super::allocation::PROBE_MS;
use super::relay_link::{self, Change, Crossing, RelayLink};
use super::{Hub, Published};
use crate::agent::{ToAgent, TransportSpec};
use crate::allocator::{NOMINAL_AUDIO_BPS, NOMINAL_BPS, Target, UPGRADE_HEADROOM};
use crate::ice::Credentials;
use crate::sdp::Setup;
use crate::signalling::{ErrorCode, ProtocolError};
use rand::Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::command::MAX_LAYERS;
use switchyard_dataplane::abi::{Command, LayerSpec, RelaySpec, SourceSpec};
use switchyard_wire::rtp::ExtensionIds;
use webrtc_sdp::media_type::SdpMediaValue;

/// Header extensions on relays, the same at both ends: what the far bridge
/// needs of a relayed packet (the audio level for the dominant speaker,
/// abs-send-time and transport-cc for estimates). Relay streams carry no
/// mid or rid: the far side knows each layer by its SSRC.
pub(super) const RELAY_EXT: ExtensionIds = ExtensionIds {
    mid: None,
    rid: None,
    repaired_rid: None,
    abs_send_time: Some(2),
    transport_cc: Some(3),
    audio_level: Some(1),
    dependency_descriptor: None,
};

/// Where a room is on one bridge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Leg {
    pub(super) bridge: String,
    pub(super) worker: usize,
}

/// One end of a relay.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct RelayEnd {
    pub(super) endpoint: u64,
    pub(super) leg: Leg,
    /// Its endpoint is in the dataplane (ICE and DTLS done).
    pub(super) connected: bool,
    /// `RelaySource` commands waiting for that.
    #[serde(with = "crate::replica::saved_commands")]
    parked: Vec<Command>,
    /// Its sending direction's estimate and hold (docs/cascading.md,
    /// "Bandwidth"); a restarted focus starts it afresh.
    #[serde(skip)]
    pub(super) link: RelayLink,
}

/// A relay between two workers of two bridges: `ends[0]` on the bridge
/// that was in the first room using it first (ICE-lite and DTLS server, as
/// for browsers), `ends[1]` on the other, whose agent checks and is the
/// DTLS client.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Relay {
    pub(super) ends: [RelayEnd; 2],
    /// The rooms that use it; it closes when the last one leaves.
    pub(super) rooms: Vec<String>,
}

impl Relay {
    /// Its ends on `a` and on `b`, in that order.
    fn between(&self, a: &str, b: &str) -> Option<(&RelayEnd, &RelayEnd)> {
        let [x, y] = &self.ends;
        if x.leg.bridge == a && y.leg.bridge == b {
            Some((x, y))
        } else if y.leg.bridge == a && x.leg.bridge == b {
            Some((y, x))
        } else {
            None
        }
    }

    /// Whether it joins exactly these two legs.
    fn joins(&self, a: &Leg, b: &Leg) -> bool {
        let [x, y] = &self.ends;
        (x.leg == *a && y.leg == *b) || (x.leg == *b && y.leg == *a)
    }
}

/// A relay as `/stats` shows it (docs/deployment.md).
#[derive(Debug, serde::Serialize)]
pub struct RelayView {
    /// The rooms it serves.
    pub rooms: Vec<String>,
    /// Its two ends.
    pub ends: Vec<RelayEndView>,
}

/// One end of a relay as `/stats` shows it: what it sends toward the other.
#[derive(Debug, serde::Serialize)]
pub struct RelayEndView {
    /// Its bridge and worker.
    pub bridge: String,
    pub worker: usize,
    /// Its endpoint id.
    pub endpoint: u64,
    /// ICE and DTLS done, its endpoint in the dataplane.
    pub connected: bool,
    /// Sources it sends over the relay, and their layers crossing now.
    pub sources: usize,
    pub layers: usize,
    /// Its dataplane's estimate of the link toward the other end (bit/s).
    pub estimate_bps: Option<u64>,
    /// The link is congested: what crosses is held to the estimate.
    pub held: bool,
}

/// A source's copy on a bridge other than its publisher's.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct SourceCopy {
    pub(super) source: u64,
    pub(super) bridge: String,
    pub(super) id: u64,
    /// The relay ends that carry it: on the publisher's bridge, and on
    /// `bridge` (the copy's publisher).
    near: u64,
    far: u64,
    /// Its layers' SSRCs on the relay (media, RTX).
    ssrcs: [u32; MAX_LAYERS],
    rtx_ssrcs: [u32; MAX_LAYERS],
    /// How many of its layers, the lowest ones, cross the relay now: up to
    /// the highest its receivers on `bridge` are given ([`Hub::fit_relays`]).
    #[serde(default = "every_layer")]
    relayed: u8,
    /// Since when fewer layers would do: narrowing waits [`NARROW_HOLD`].
    #[serde(skip)]
    fewer_since: Option<Instant>,
}

/// A copy saved before relays were narrowed carried every layer.
fn every_layer() -> u8 {
    MAX_LAYERS as u8
}

/// A layer no far receiver is given any more still crosses this long: a
/// receiver's layer moves with its estimate, and one moving back up should
/// not wait for a keyframe from across the link each time.
pub(super) const NARROW_HOLD: Duration = Duration::from_secs(3);

impl SourceCopy {
    /// `RelaySource` for the layers relayed now (SSRC 0 for the others:
    /// their streams pause and keep their numbering).
    fn relay_source(&self) -> Command {
        let mut ssrcs = self.ssrcs;
        let mut rtx_ssrcs = self.rtx_ssrcs;
        for l in usize::from(self.relayed).min(MAX_LAYERS)..MAX_LAYERS {
            ssrcs[l] = 0;
            rtx_ssrcs[l] = 0;
        }
        Command::RelaySource(RelaySpec {
            endpoint: self.near,
            source: self.source,
            ssrcs,
            rtx_ssrcs,
        })
    }

    /// How many layers the source has.
    fn layer_count(&self) -> u8 {
        self.ssrcs.iter().filter(|&&s| s != 0).count() as u8
    }
}

impl Hub {
    /// Every bridge room `name` is on, its first bridge first.
    pub(super) fn legs_of(&self, name: &str) -> Vec<Leg> {
        self.rooms
            .get(name)
            .map(|r| {
                std::iter::once(Leg {
                    bridge: r.bridge.clone(),
                    worker: r.worker,
                })
                .chain(r.legs.iter().cloned())
                .collect()
            })
            .unwrap_or_default()
    }

    /// Members of room `name` on `bridge`.
    fn members_on(&self, name: &str, bridge: &str) -> usize {
        self.rooms.get(name).map_or(0, |r| {
            r.members.iter().filter(|&&m| self.is_on(m, bridge)).count()
        })
    }

    pub(super) fn region_of(&self, bridge: &str) -> Option<&str> {
        self.bridges.get(bridge)?.info.region.as_deref()
    }

    /// Where a joiner of the existing room `name` goes. Without cascading:
    /// the room's bridge. With it: a bridge of the room in the joiner's
    /// region that has room (below the room's cap per bridge and the stress
    /// threshold); else a bridge of that region the room is not on yet;
    /// else a bridge of the room that has room; else the bridge placement
    /// picks among the others; and when none can take more, the room's
    /// first bridge.
    pub(super) fn place_joiner(
        &mut self,
        now: Instant,
        name: &str,
        region: Option<&str>,
    ) -> Result<Leg, ProtocolError> {
        let legs = self.legs_of(name);
        let home = legs
            .first()
            .cloned()
            .ok_or_else(|| ProtocolError::new(ErrorCode::Internal, "the room is gone"))?;
        let rules = self.config.placement;
        if !rules.cascade {
            return Ok(home);
        }
        let fits = |hub: &Hub, leg: &Leg| {
            hub.members_on(name, &leg.bridge) < rules.room_cap_per_bridge
                && hub.bridges.can_take(now, &leg.bridge, rules)
        };
        let in_room: Vec<String> = legs.iter().map(|l| l.bridge.clone()).collect();
        let in_room: Vec<&str> = in_room.iter().map(String::as_str).collect();
        if let Some(region) = region {
            if let Some(leg) = legs
                .iter()
                .find(|l| self.region_of(&l.bridge) == Some(region) && fits(self, l))
            {
                return Ok(leg.clone());
            }
            let regional = self.bridges.iter().any(|b| {
                b.info.region.as_deref() == Some(region)
                    && !in_room.contains(&b.info.id.as_str())
                    && self.bridges.can_take(now, &b.info.id, rules)
            });
            if regional && let Ok((bridge, worker)) = self.place_room(now, Some(region), &in_room) {
                return Ok(Leg { bridge, worker });
            }
        }
        if let Some(leg) = legs.iter().find(|l| fits(self, l)) {
            return Ok(leg.clone());
        }
        match self.place_room(now, region, &in_room) {
            Ok((bridge, worker)) if self.bridges.can_take(now, &bridge, rules) => {
                Ok(Leg { bridge, worker })
            }
            _ => Ok(home),
        }
    }

    /// Room `name` extends to `leg`'s bridge (if it is not there yet): a
    /// relay to each bridge it is on, and a copy there of every source
    /// published in it.
    pub(super) fn add_leg(&mut self, name: &str, leg: &Leg) {
        let legs = self.legs_of(name);
        if legs.is_empty() || legs.iter().any(|l| l.bridge == leg.bridge) {
            return;
        }
        tracing::info!(target: "switchyard::hub", room = name, bridge = leg.bridge, worker = leg.worker, "the room spans another bridge");
        for other in &legs {
            self.open_relay(name, other, leg);
        }
        if let Some(r) = self.rooms.get_mut(name) {
            r.legs.push(leg.clone());
        }
        let members = self
            .rooms
            .get(name)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for m in members {
            for source in self.published_sources(m) {
                self.copy_source(name, m, source, &leg.bridge);
            }
        }
    }

    /// Links room `name`'s legs `lite` (a bridge the room is on) and
    /// `checking` (the one it extends to): through the relay between those
    /// two workers if one is open, else a new one — each bridge learns on
    /// every worker that its end's id is a relay, then each agent opens its
    /// end with the other's credentials and fingerprint.
    fn open_relay(&mut self, name: &str, lite: &Leg, checking: &Leg) {
        if let Some(relay) = self.relays.iter_mut().find(|x| x.joins(lite, checking)) {
            if !relay.rooms.iter().any(|r| r == name) {
                relay.rooms.push(name.to_string());
            }
            return;
        }
        let endpoints = [self.take_id(), self.take_id()];
        let legs = [lite, checking];
        for (leg, &endpoint) in legs.iter().zip(&endpoints) {
            for w in 0..self.workers_of(&leg.bridge) {
                let command = Command::SetRelay {
                    endpoint,
                    relay: true,
                };
                self.dataplane(&leg.bridge, w, command);
            }
        }
        let end = |i: usize| RelayEnd {
            endpoint: endpoints[i],
            leg: legs[i].clone(),
            connected: false,
            parked: Vec::new(),
            link: RelayLink::default(),
        };
        self.relays.push(Relay {
            ends: [end(0), end(1)],
            rooms: vec![name.to_string()],
        });
        self.connect_relay(endpoints[0]);
    }

    /// Asks both agents to open the ends of the relay whose first end is
    /// `endpoint`, with fresh ICE credentials.
    fn connect_relay(&mut self, endpoint: u64) {
        let Some((lite, checking, ends)) = self
            .relays
            .iter()
            .find(|x| x.ends[0].endpoint == endpoint)
            .map(|x| {
                let [a, b] = &x.ends;
                (a.leg.clone(), b.leg.clone(), [a.endpoint, b.endpoint])
            })
        else {
            return;
        };
        let info = |b: &str| self.bridges.get(b).map(|b| b.info.clone());
        let (Some(a), Some(b)) = (info(&lite.bridge), info(&checking.bridge)) else {
            tracing::warn!(target: "switchyard::hub", lite = lite.bridge, checking = checking.bridge, "a relay's bridge is unknown");
            return;
        };
        let port = |info: &crate::focus::bridges::BridgeInfo, leg: &Leg| {
            info.worker_ports.get(leg.worker).copied().unwrap_or(0)
        };
        let (a_port, b_port) = (port(&a, &lite), port(&b, &checking));
        let Some(&a_addr) = a.advertise.first() else {
            tracing::warn!(target: "switchyard::hub", bridge = lite.bridge, "a relay's bridge advertises no address");
            return;
        };
        let (a_ice, b_ice) = (Credentials::random(), Credentials::random());
        self.tell_agent(
            &lite.bridge,
            ToAgent::OpenTransport(TransportSpec {
                endpoint: ends[0],
                worker: lite.worker,
                port: a_port,
                local: a_ice.clone(),
                remote: b_ice.clone(),
                remote_fingerprint: b.fingerprint,
                // the checking side is the DTLS client
                remote_setup: Setup::Active,
                ext: RELAY_EXT,
                user_data: [0; 32],
                peer: None,
            }),
        );
        self.tell_agent(
            &checking.bridge,
            ToAgent::OpenTransport(TransportSpec {
                endpoint: ends[1],
                worker: checking.worker,
                port: b_port,
                local: b_ice,
                remote: a_ice,
                remote_fingerprint: a.fingerprint,
                remote_setup: Setup::Passive,
                ext: RELAY_EXT,
                user_data: [0; 32],
                peer: Some(SocketAddr::new(a_addr, a_port)),
            }),
        );
    }

    /// A copy of `publisher`'s `source` on `far`, a bridge of room `name`
    /// other than the publisher's: added on every worker of `far` with the
    /// relay's end there as its publisher, and `RelaySource` on the
    /// publisher's side (once that end is connected).
    pub(super) fn copy_source(&mut self, name: &str, publisher: u64, source: u64, far: &str) {
        let Some(p) = self.participants.get(&publisher) else {
            return;
        };
        let home = p.bridge.clone();
        let Some(src) = p.published.iter().find(|s| s.source == source) else {
            return;
        };
        if home == far {
            return;
        }
        let spec_of = |src: &Published, id: u64, endpoint: u64| SourceSpec {
            id,
            endpoint,
            kind: src.media_kind(),
            codec: super::media::codec_of(&src.codec),
            clock_rate: src.clock_rate,
            payload_type: src.payload_type,
            rtx_payload_type: src.rtx_payload_type,
            layer_count: src.layers,
            layers: [LayerSpec::default(); MAX_LAYERS],
        };
        let template = spec_of(src, 0, 0);
        let legs = self.legs_of(name);
        let leg_on = |b: &str| legs.iter().find(|l| l.bridge == b);
        let Some((near, far_end)) = leg_on(&home).zip(leg_on(far)).and_then(|(h, f)| {
            let relay = self.relays.iter().find(|x| x.joins(h, f))?;
            relay
                .between(&home, far)
                .map(|(n, f)| (n.endpoint, f.endpoint))
        }) else {
            tracing::warn!(target: "switchyard::hub", room = name, home, far, "no relay between the bridges of a room");
            return;
        };
        let id = self.take_id();
        let mut rng = rand::rng();
        let mut copy = SourceCopy {
            source,
            bridge: far.to_string(),
            id,
            near,
            far: far_end,
            ssrcs: [0; MAX_LAYERS],
            rtx_ssrcs: [0; MAX_LAYERS],
            relayed: 0,
            fewer_since: None,
        };
        let mut spec = SourceSpec {
            id,
            endpoint: far_end,
            ..template
        };
        let count = usize::from(spec.layer_count.clamp(1, MAX_LAYERS as u8));
        for l in 0..count {
            let ssrc = rng.random::<u32>() | 1;
            let rtx = if spec.rtx_payload_type != 0 {
                ssrc ^ 0x8000_0000
            } else {
                0
            };
            copy.ssrcs[l] = ssrc;
            copy.rtx_ssrcs[l] = rtx;
            spec.layers[l].ssrc = ssrc;
            spec.layers[l].rtx_ssrc = rtx;
        }
        for w in 0..self.workers_of(far) {
            self.dataplane(far, w, Command::AddSource(spec));
        }
        copy.relayed = self.layers_needed(name, &copy);
        let command = copy.relay_source();
        if let Some(r) = self.rooms.get_mut(name) {
            r.copies.push(copy);
        }
        self.send_to_relay_end(near, command);
    }

    /// A command for relay end `endpoint`: now if it is connected, else
    /// when it is (a `RelaySource` replacing one parked for its source).
    fn send_to_relay_end(&mut self, endpoint: u64, command: Command) {
        let Some(end) = self.relay_end_mut(endpoint) else {
            return;
        };
        if end.connected {
            let (bridge, worker) = (end.leg.bridge.clone(), end.leg.worker);
            self.dataplane(&bridge, worker, command);
        } else {
            if let Command::RelaySource(new) = &command {
                end.parked.retain(
                    |p| !matches!(p, Command::RelaySource(old) if old.source == new.source),
                );
            }
            end.parked.push(command);
        }
    }

    /// How many of `copy`'s layers its receivers use: up to the highest
    /// layer any of them on its bridge is given; every layer for one whose
    /// layer is not allocated yet (a new subscription starts at the top, and
    /// audio has one layer); none when nobody there receives the source or
    /// all of them have it paused (last-N, no bandwidth).
    fn layers_needed(&self, name: &str, copy: &SourceCopy) -> u8 {
        let count = copy.layer_count();
        let Some(r) = self.rooms.get(name) else {
            return 0;
        };
        r.members
            .iter()
            .filter_map(|m| self.participants.get(m))
            .filter(|p| {
                p.bridge == copy.bridge && p.subscriptions.iter().any(|s| s.source == copy.source)
            })
            .map(|p| match p.allocation.targets.get(&copy.source) {
                Some(Target::Layer(l)) => l.saturating_add(1),
                Some(Target::Paused) => 0,
                None => count,
            })
            .max()
            .unwrap_or(0)
            .min(count)
    }

    /// What a source's layers cost crossing a relay (bit/s; the nominal
    /// rates until the dataplane reports them) and whether it is a video.
    fn crossing_costs(&self, source: u64) -> ([u64; 3], bool) {
        let video = self
            .publishers
            .get(&source)
            .and_then(|p| self.participants.get(p))
            .and_then(|p| p.published.iter().find(|s| s.source == source))
            .is_none_or(|s| s.kind == SdpMediaValue::Video);
        let reported = self
            .layer_rates
            .get(&source)
            .map(|r| r.costs())
            .unwrap_or_default();
        let costs = match (video, reported.iter().any(|&b| b > 0)) {
            (_, true) => reported.map(u64::from),
            (true, false) => NOMINAL_BPS.map(u64::from),
            (false, false) => [NOMINAL_AUDIO_BPS, 0, 0],
        };
        (costs, video)
    }

    /// The copies relay end `endpoint` sends (their ids), and what
    /// each of them would cost crossing with the layers its receivers use.
    fn crossings_of(&self, endpoint: u64) -> (Vec<u64>, Vec<Crossing>) {
        self.rooms
            .iter()
            .flat_map(|(name, r)| r.copies.iter().map(move |c| (name.as_str(), c)))
            .filter(|(_, c)| c.near == endpoint)
            .map(|(name, c)| {
                let (costs, video) = self.crossing_costs(c.source);
                let need = self.layers_needed(name, c);
                (c.id, Crossing { need, costs, video })
            })
            .unzip()
    }

    /// The layers each copy over a held relay link may carry (by copy id):
    /// what its receivers use, fitted with every other copy over the same
    /// link to the link's estimate ([`relay_link::fit`]), and to the
    /// estimate less the headroom an upgrade needs. Copies over links that
    /// are not held are not listed.
    fn held_layers(&self) -> BTreeMap<u64, (u8, u8)> {
        let mut out = BTreeMap::new();
        for end in self.relays.iter().flat_map(|x| &x.ends) {
            let Some(budget) = end.link.budget() else {
                continue;
            };
            let (copies, crossings) = self.crossings_of(end.endpoint);
            let fits = relay_link::fit(&crossings, budget);
            let up = relay_link::fit(&crossings, (budget as f64 / UPGRADE_HEADROOM) as u64);
            for ((c, fits), up) in copies.into_iter().zip(fits).zip(up) {
                out.insert(c, (fits, up));
            }
        }
        out
    }

    /// A relay end's estimate of its link: a hold that starts fits what
    /// crosses it at once, in every room it serves; and as long as it is
    /// held, what crosses follows the estimate.
    pub(super) fn relay_estimate(&mut self, now: Instant, endpoint: u64, estimate: u64, loss: f64) {
        let Some(relay) = self.relay_of_mut(endpoint) else {
            return;
        };
        let rooms = relay.rooms.clone();
        let Some(end) = relay.ends.iter_mut().find(|e| e.endpoint == endpoint) else {
            return;
        };
        let change = end.link.on_estimate(now, estimate, loss);
        let held = end.link.budget().is_some();
        if change == Some(Change::Held) {
            tracing::info!(target: "switchyard::hub", endpoint, bridge = end.leg.bridge, estimate, loss, "relay link congested: what crosses is held to its estimate");
        }
        if held {
            for room in rooms {
                self.fit_relays(&room, Some(now));
            }
        }
    }

    /// Every relay with its ends, for `/stats`.
    pub fn relays(&self) -> Vec<RelayView> {
        let copies = || self.rooms.values().flat_map(|r| &r.copies);
        self.relays
            .iter()
            .map(|x| RelayView {
                rooms: x.rooms.clone(),
                ends: x
                    .ends
                    .iter()
                    .map(|e| {
                        let sent = || copies().filter(|c| c.near == e.endpoint);
                        RelayEndView {
                            bridge: e.leg.bridge.clone(),
                            worker: e.leg.worker,
                            endpoint: e.endpoint,
                            connected: e.connected,
                            sources: sent().count(),
                            layers: sent()
                                .map(|c| usize::from(c.relayed.min(c.layer_count())))
                                .sum(),
                            estimate_bps: e.link.estimate(),
                            held: e.link.is_held(),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// The periodic care of held relay links: one whose estimate covers what
    /// its far receivers use, with no congestion for the hold, is freed
    /// (the periodic pass then fits its rooms to their receivers again);
    /// one that it does not cover is probed toward it.
    pub(super) fn tend_relay_links(&mut self, now: Instant) {
        let held: Vec<u64> = self
            .relays
            .iter()
            .flat_map(|x| &x.ends)
            .filter(|e| e.link.is_held())
            .map(|e| e.endpoint)
            .collect();
        for endpoint in held {
            let (_, crossings) = self.crossings_of(endpoint);
            let used = relay_link::cost(&crossings, crossings.iter().map(|c| c.need));
            let Some(end) = self.relay_end_mut(endpoint) else {
                continue;
            };
            if end.link.free_if_due(now, used) == Some(Change::Freed) {
                tracing::info!(target: "switchyard::hub", endpoint, bridge = end.leg.bridge, "relay link no longer congested: what crosses follows its receivers again");
                continue;
            }
            let probe = match end.connected {
                true => end.link.probe(now, used),
                false => None,
            };
            if let Some(target_bps) = probe {
                let (bridge, worker) = (end.leg.bridge.clone(), end.leg.worker);
                tracing::debug!(target: "switchyard::hub", endpoint, bridge, target_bps, used, "probing a held relay link");
                let command = Command::Probe {
                    endpoint,
                    target_bps,
                    duration_ms: PROBE_MS,
                };
                self.dataplane(&bridge, worker, command);
            }
        }
    }

    /// Fits what crosses the relays of room `name` to what the receivers on
    /// the far side use (docs/cascading.md, "What crosses"): a copy whose
    /// receivers need more layers gets them at once; one that needs fewer
    /// keeps them until it has needed fewer for [`NARROW_HOLD`] — judged only
    /// when `now` is given (the periodic pass), so the calls that follow a
    /// receiver's changes only widen. Over a congested link ("Bandwidth")
    /// what fits its estimate is the limit, and narrowing to it is at once.
    pub(super) fn fit_relays(&mut self, name: &str, now: Option<Instant>) {
        let Some(r) = self.rooms.get(name) else {
            return;
        };
        let held = self.held_layers();
        let needs: Vec<(u8, Option<(u8, u8)>)> = r
            .copies
            .iter()
            .map(|c| {
                let used = self.layers_needed(name, c);
                let fits = held
                    .get(&c.id)
                    .map(|&(fits, up)| (fits.min(used), up.min(used)));
                (used, fits)
            })
            .collect();
        let mut commands = Vec::new();
        let Some(r) = self.rooms.get_mut(name) else {
            return;
        };
        for (c, (used, fits)) in r.copies.iter_mut().zip(needs) {
            let relayed = c.relayed.min(c.layer_count());
            let (need, refit) = match fits {
                // a held link: down to what fits at once, up only with
                // headroom (an estimate moving around a layer's cost does
                // not flip that layer on and off)
                Some((fits, _)) if fits < relayed => (fits, true),
                Some((_, up)) => (up, up > relayed),
                None if used > relayed => (used, true),
                None if used < relayed => {
                    let due = now.is_some_and(|now| {
                        let since = *c.fewer_since.get_or_insert(now);
                        now.saturating_duration_since(since) >= NARROW_HOLD
                    });
                    (used, due)
                }
                None => {
                    c.fewer_since = None;
                    (used, false)
                }
            };
            if refit {
                tracing::debug!(target: "switchyard::hub", room = name, source = c.source, bridge = c.bridge, from = relayed, to = need, "relayed layers");
                c.relayed = need;
                c.fewer_since = None;
                commands.push((c.near, c.relay_source()));
            }
        }
        for (near, command) in commands {
            self.send_to_relay_end(near, command);
        }
    }

    /// `source` left (unpublished, or its publisher left or moved): its
    /// copies go, on the far bridges and on the relays.
    pub(super) fn drop_copies(&mut self, name: &str, source: u64) {
        let Some(r) = self.rooms.get_mut(name) else {
            return;
        };
        let (gone, kept): (Vec<SourceCopy>, Vec<SourceCopy>) =
            r.copies.drain(..).partition(|c| c.source == source);
        r.copies = kept;
        for c in gone {
            self.remove_copy(&c);
        }
    }

    /// A copy goes: from every worker of its bridge, and from its relay
    /// (which may serve other rooms on).
    fn remove_copy(&mut self, c: &SourceCopy) {
        for w in 0..self.workers_of(&c.bridge) {
            self.dataplane(&c.bridge, w, Command::RemoveSource { source: c.id });
        }
        let Some(end) = self.relay_end_mut(c.near) else {
            return;
        };
        if end.connected {
            let (bridge, worker) = (end.leg.bridge.clone(), end.leg.worker);
            let command = Command::UnrelaySource {
                endpoint: c.near,
                source: c.source,
            };
            self.dataplane(&bridge, worker, command);
        } else {
            end.parked
                .retain(|p| !matches!(p, Command::RelaySource(s) if s.source == c.source));
        }
    }

    /// The relay one of whose ends is `endpoint`.
    fn relay_of_mut(&mut self, endpoint: u64) -> Option<&mut Relay> {
        self.relays
            .iter_mut()
            .find(|x| x.ends.iter().any(|e| e.endpoint == endpoint))
    }

    fn relay_end_mut(&mut self, endpoint: u64) -> Option<&mut RelayEnd> {
        self.relays
            .iter_mut()
            .flat_map(|x| x.ends.iter_mut())
            .find(|e| e.endpoint == endpoint)
    }

    /// What `source` is called on `bridge` in room `name`: its copy there,
    /// or itself.
    pub(super) fn local_source(&self, name: &str, bridge: &str, source: u64) -> u64 {
        self.rooms
            .get(name)
            .and_then(|r| {
                r.copies
                    .iter()
                    .find(|c| c.source == source && c.bridge == bridge)
            })
            .map_or(source, |c| c.id)
    }

    /// A command about participant `id`'s endpoint, with the sources it
    /// names as they are called on its bridge.
    pub(super) fn localize(&self, id: u64, command: Command) -> Command {
        let Some(p) = self.participants.get(&id) else {
            return command;
        };
        let local = |s: u64| self.local_source(&p.room, &p.bridge, s);
        match command {
            Command::Subscribe(mut spec) => {
                spec.source = local(spec.source);
                Command::Subscribe(spec)
            }
            Command::Unsubscribe { endpoint, source } => Command::Unsubscribe {
                endpoint,
                source: local(source),
            },
            Command::SetTargetLayer {
                endpoint,
                source,
                layer,
            } => Command::SetTargetLayer {
                endpoint,
                source: local(source),
                layer,
            },
            Command::RequestKeyframe { source, layer } => Command::RequestKeyframe {
                source: local(source),
                layer,
            },
            other => other,
        }
    }

    /// Whether `endpoint` is a relay end on `bridge`.
    pub(super) fn is_relay_on(&self, endpoint: u64, bridge: &str) -> bool {
        self.relays
            .iter()
            .flat_map(|x| &x.ends)
            .any(|e| e.endpoint == endpoint && e.leg.bridge == bridge)
    }

    /// A relay end's endpoint is in its dataplane: what waited for it goes.
    pub(super) fn relay_connected(&mut self, bridge: &str, endpoint: u64) {
        tracing::info!(target: "switchyard::hub", bridge, endpoint, "relay end connected");
        let Some(end) = self.relay_end_mut(endpoint) else {
            return;
        };
        end.connected = true;
        let (worker, parked) = (end.leg.worker, std::mem::take(&mut end.parked));
        for command in parked {
            self.dataplane(bridge, worker, command);
        }
    }

    /// A relay end failed (ICE or DTLS): both ends start over with fresh
    /// credentials and the same ids — the far copies stay (their subscribers
    /// with them), and the relay streams are asked for again once the near
    /// end is back.
    pub(super) fn relay_failed(&mut self, now: Instant, bridge: &str, endpoint: u64, reason: &str) {
        if let Some(suppressed) = self.log_budget.allow(now) {
            tracing::warn!(target: "switchyard::hub", bridge, endpoint, reason, suppressed, "relay failed: connecting it again");
        }
        let copies: Vec<SourceCopy> = self
            .rooms
            .values()
            .flat_map(|r| r.copies.iter().cloned())
            .collect();
        let Some(relay) = self.relay_of_mut(endpoint) else {
            return;
        };
        let mut closes = Vec::new();
        for end in relay.ends.iter_mut() {
            end.connected = false;
            // a new transport, a new estimate of its link
            end.link = RelayLink::default();
            end.parked = copies
                .iter()
                .filter(|c| c.near == end.endpoint)
                .map(SourceCopy::relay_source)
                .collect();
            closes.push((end.leg.bridge.clone(), end.endpoint));
        }
        let first = relay.ends[0].endpoint;
        for (bridge, endpoint) in closes {
            self.tell_agent(&bridge, ToAgent::CloseTransport { endpoint });
        }
        self.connect_relay(first);
    }

    /// Bridges of room `name` with none of its members go (while another
    /// bridge still has some): their relays close and the copies there are
    /// removed. A first bridge that goes hands that role to the next.
    pub(super) fn prune_legs(&mut self, name: &str) {
        loop {
            let legs = self.legs_of(name);
            if legs.len() < 2 {
                return;
            }
            let Some(empty) = legs
                .iter()
                .find(|l| self.members_on(name, &l.bridge) == 0)
                .cloned()
            else {
                return;
            };
            self.drop_leg(name, &empty.bridge);
        }
    }

    /// Room `name` leaves `bridge`: its copies there and those carried to
    /// or from there go, and the relays to it that no other room uses
    /// close (both ends). Its members must have left or moved already.
    pub(super) fn drop_leg(&mut self, name: &str, bridge: &str) {
        let Some(r) = self.rooms.get_mut(name) else {
            return;
        };
        tracing::info!(target: "switchyard::hub", room = name, bridge, "the room leaves a bridge");
        let Some(leg) = (if r.bridge == bridge {
            let first = Leg {
                bridge: r.bridge.clone(),
                worker: r.worker,
            };
            if r.legs.is_empty() {
                return;
            }
            let next = r.legs.remove(0);
            r.bridge = next.bridge;
            r.worker = next.worker;
            Some(first)
        } else {
            let i = r.legs.iter().position(|l| l.bridge == bridge);
            i.map(|i| r.legs.remove(i))
        }) else {
            return;
        };
        // this room's relays to that leg, and its copies over them
        let mut ends = Vec::new();
        for relay in self.relays.iter_mut() {
            if relay.ends.iter().any(|e| e.leg == leg) && relay.rooms.iter().any(|r| r == name) {
                relay.rooms.retain(|r| r != name);
                ends.extend(relay.ends.iter().map(|e| e.endpoint));
            }
        }
        let copies = match self.rooms.get_mut(name) {
            Some(r) => {
                let (gone, kept): (Vec<SourceCopy>, Vec<SourceCopy>) = r
                    .copies
                    .drain(..)
                    .partition(|c| ends.contains(&c.near) || c.bridge == bridge);
                r.copies = kept;
                gone
            }
            None => Vec::new(),
        };
        for c in &copies {
            self.remove_copy(c);
        }
        let (unused, used): (Vec<Relay>, Vec<Relay>) =
            self.relays.drain(..).partition(|x| x.rooms.is_empty());
        self.relays = used;
        for relay in unused {
            for end in relay.ends {
                let b = &end.leg.bridge;
                let endpoint = end.endpoint;
                self.tell_agent(b, ToAgent::CloseTransport { endpoint });
                for w in 0..self.workers_of(b) {
                    let command = Command::SetRelay {
                        endpoint,
                        relay: false,
                    };
                    self.dataplane(b, w, command);
                }
            }
        }
    }
}
