//! A room over two bridges, each with its own real agent: the hub opens a
//! relay between them (its datagrams carried across by hand, ICE and DTLS
//! for real), copies each source to the far bridge once and names the copies
//! in the far receivers' commands; leaving and losing a bridge clean up.

use super::*;
use crate::agent::{Agent, AgentOut};
use crate::allocator::Target;
use crate::auth::TokenPolicy;
use crate::dtls::Certificate;
use crate::focus::placement::Rules;
use std::collections::HashMap;
use std::net::SocketAddr;
use switchyard_dataplane::abi::PacketHeader;
use webrtc_sdp::media_type::SdpMediaValue;

const CHROME: &str = include_str!("../sdp/testdata/chrome_simulcast_offer.sdp");

struct Side {
    agent: Agent,
    addr: SocketAddr,
    /// Dataplane commands it was asked for, in order.
    commands: Vec<Command>,
}

struct Cluster {
    hub: Hub,
    sides: HashMap<String, Side>,
    t: Instant,
}

impl Cluster {
    /// Bridges `eu` and `us` (regions of the same names, one worker each),
    /// cascading on with `cap` participants of a room per bridge.
    fn new(cap: usize) -> Cluster {
        let t = Instant::now();
        let hub = Hub::new(HubConfig {
            limits: Limits::default(),
            tokens: TokenPolicy::Open,
            placement: Rules {
                cascade: true,
                room_cap_per_bridge: cap,
                ..Rules::default()
            },
            last_n: None,
            first_id: 1,
        });
        let mut c = Cluster {
            hub,
            sides: HashMap::new(),
            t,
        };
        c.add_bridge("eu", "eu", "192.0.2.1:10000");
        c.add_bridge("us", "us", "192.0.2.2:20000");
        c
    }

    /// Bridge `id` in `region` at `addr` (one worker), with its own agent.
    fn add_bridge(&mut self, id: &str, region: &str, addr: &str) {
        let addr: SocketAddr = addr.parse().unwrap();
        let agent = Agent::new(Certificate::generate().unwrap());
        self.hub.bridge_up(
            self.t,
            BridgeInfo {
                id: id.into(),
                region: Some(region.into()),
                version: env!("CARGO_PKG_VERSION").into(),
                worker_ports: vec![addr.port()],
                advertise: vec![addr.ip()],
                ice_tcp_port: None,
                fingerprint: agent.fingerprint(),
            },
        );
        let side = Side {
            agent,
            addr,
            commands: Vec::new(),
        };
        self.sides.insert(id.to_string(), side);
    }

    /// Runs the hub and both agents until none has more for another.
    fn drain(&mut self) {
        let now = self.t;
        loop {
            let mut moved = false;
            while let Some(o) = self.hub.poll() {
                moved = true;
                if let super::Out::Agent { bridge, msg } = o
                    && let Some(side) = self.sides.get_mut(&bridge)
                {
                    side.agent.handle(now, msg);
                }
            }
            let names: Vec<String> = self.sides.keys().cloned().collect();
            for name in &names {
                while let Some(a) = self.sides.get_mut(name).and_then(|s| s.agent.poll()) {
                    moved = true;
                    let from = self.sides[name].addr;
                    match a {
                        AgentOut::Send { header, data, .. } => {
                            // to the other bridge, if that is where it goes
                            if let Some(to) =
                                self.sides.values_mut().find(|s| s.addr == header.remote)
                            {
                                let header = PacketHeader {
                                    endpoint: 0,
                                    remote: from,
                                    local_port: to.addr.port(),
                                };
                                to.agent.handle_packet(now, 0, &header, &data);
                            }
                        }
                        AgentOut::Dataplane { command, .. } => {
                            if let Some(s) = self.sides.get_mut(name) {
                                s.commands.push(command);
                            }
                        }
                        AgentOut::Up(m) => self.hub.from_agent(now, name, m),
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// `ms` of time in 10 ms steps, timers fired and everything carried.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.t += Duration::from_millis(10);
            let t = self.t;
            for s in self.sides.values_mut() {
                s.agent.handle_timeout(t);
            }
            self.hub.handle_timeout(t);
            self.drain();
        }
    }

    /// A participant of room `r` from `region` that publishes audio and
    /// three-layer video, its media connected.
    fn join(&mut self, name: &str, region: &str) -> u64 {
        self.join_room("r", name, region)
    }

    /// [`Cluster::join`] into room `room`.
    fn join_room(&mut self, room: &str, name: &str, region: &str) -> u64 {
        let id = self
            .hub
            .join_in(self.t, room, name, None, Some(region))
            .unwrap();
        // an ICE ufrag of its own (ice-chars only)
        let sdp = CHROME.replace("Brw5", &format!("B{name:0>3}"));
        self.hub.handle_message(
            self.t,
            id,
            ClientMessage::Offer {
                v: VERSION,
                sdp,
                content: Default::default(),
            },
        );
        self.drain();
        let published = self.hub.participants[&id].published.len();
        assert_eq!(published, 2, "{name}'s offer publishes audio and video");
        // as the agent says once the browser's ICE and DTLS are done
        let bridge = self.hub.participants[&id].bridge.clone();
        self.hub
            .from_agent(self.t, &bridge, FromAgent::Connected(id));
        self.drain();
        id
    }

    fn commands(&self, bridge: &str) -> &[Command] {
        &self.sides[bridge].commands
    }

    fn sources_of(&self, id: u64) -> Vec<u64> {
        let p = &self.hub.participants[&id];
        p.published.iter().map(|s| s.source).collect()
    }
}

fn relay_sources(commands: &[Command]) -> Vec<RelaySpec> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::RelaySource(s) => Some(*s),
            _ => None,
        })
        .collect()
}

fn added_sources(commands: &[Command]) -> Vec<SourceSpec> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::AddSource(s) => Some(*s),
            _ => None,
        })
        .collect()
}

fn subscribed(commands: &[Command], endpoint: u64) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Subscribe(s) if s.endpoint == endpoint => Some(s.source),
            _ => None,
        })
        .collect()
}

use switchyard_dataplane::abi::{RelaySpec, SourceSpec};

#[test]
fn a_room_over_two_regions_relays_each_source_once_and_names_the_copies() {
    let mut c = Cluster::new(50);
    let a = c.join("A", "eu");
    let b = c.join("B", "us");
    let d = c.join("D", "us");
    assert_eq!(c.hub.participants[&a].bridge, "eu");
    assert_eq!(c.hub.participants[&b].bridge, "us");
    assert_eq!(c.hub.participants[&d].bridge, "us");
    // the relay connects over ICE and DTLS between the two agents
    c.run(1000);
    let relays = &c.hub.relays;
    assert_eq!(relays.len(), 1, "one relay per room and pair of bridges");
    let [lite, checking] = &relays[0].ends;
    assert!(lite.connected && checking.connected, "{relays:?}");
    assert_eq!((&*lite.leg.bridge, &*checking.leg.bridge), ("eu", "us"));
    let (eu_end, us_end) = (lite.endpoint, checking.endpoint);
    for (bridge, end) in [("eu", eu_end), ("us", us_end)] {
        assert!(c.commands(bridge).iter().any(|x| matches!(
            x,
            Command::SetRelay { endpoint, relay: true } if *endpoint == end
        )));
        assert!(c.commands(bridge).iter().any(|x| matches!(
            x,
            Command::AddEndpoint(e) if e.id == end
        )));
    }
    // each source crosses once each way: A's from eu, B's and D's from us
    let from_eu = relay_sources(c.commands("eu"));
    let from_us = relay_sources(c.commands("us"));
    let mut sent: Vec<u64> = from_eu.iter().map(|r| r.source).collect();
    sent.sort_unstable();
    let mut a_sources = c.sources_of(a);
    a_sources.sort_unstable();
    assert_eq!(sent, a_sources);
    assert!(from_eu.iter().all(|r| r.endpoint == eu_end));
    let mut from_us_sources: Vec<u64> = from_us.iter().map(|r| r.source).collect();
    from_us_sources.sort_unstable();
    let mut bd: Vec<u64> = [c.sources_of(b), c.sources_of(d)].concat();
    bd.sort_unstable();
    assert_eq!(from_us_sources, bd);
    // the far bridge has a copy of each, published by its relay end, whose
    // layers are the relay streams' SSRCs
    let copies_on_us: Vec<SourceSpec> = added_sources(c.commands("us"))
        .into_iter()
        .filter(|s| s.endpoint == us_end)
        .collect();
    assert_eq!(copies_on_us.len(), a_sources.len());
    for r in &from_eu {
        let copy = c.hub.local_source("r", "us", r.source);
        assert_ne!(copy, r.source);
        let spec = copies_on_us.iter().find(|s| s.id == copy).unwrap();
        let n = usize::from(spec.layer_count);
        let ssrcs: Vec<u32> = spec.layers[..n].iter().map(|l| l.ssrc).collect();
        assert_eq!(ssrcs, r.ssrcs[..n].to_vec());
        assert!(ssrcs.iter().all(|&s| s != 0));
    }
    // no copy is relayed again
    let copies: Vec<u64> = c.hub.rooms["r"].copies.iter().map(|x| x.id).collect();
    assert!(
        from_eu
            .iter()
            .chain(&from_us)
            .all(|r| !copies.contains(&r.source))
    );
    // receivers subscribe to what their bridge has: B on us to A's copies
    // and D's originals, A on eu to B's and D's copies
    let b_subs = subscribed(c.commands("us"), b);
    for s in c.sources_of(a) {
        assert!(b_subs.contains(&c.hub.local_source("r", "us", s)));
        assert!(!b_subs.contains(&s));
    }
    for s in c.sources_of(d) {
        assert!(b_subs.contains(&s));
    }
    let a_subs = subscribed(c.commands("eu"), a);
    for s in [c.sources_of(b), c.sources_of(d)].concat() {
        assert!(a_subs.contains(&c.hub.local_source("r", "eu", s)));
    }
    // signalling names only the originals (no copy id leaks to browsers)
    let copy_names: Vec<String> = copies.iter().map(|&x| sid(x)).collect();
    let mut told = Vec::new();
    while let Some(o) = c.hub.poll() {
        told.push(format!("{o:?}"));
    }
    assert!(
        told.iter()
            .all(|o| copy_names.iter().all(|n| !o.contains(n)))
    );

    // A leaves: its copies go from us; B's and D's streams to eu stop
    let a_copies: Vec<u64> = c
        .sources_of(a)
        .iter()
        .map(|&s| c.hub.local_source("r", "us", s))
        .collect();
    c.hub.disconnect(a);
    c.drain();
    for copy in &a_copies {
        assert!(
            c.commands("us")
                .iter()
                .any(|x| matches!(x, Command::RemoveSource { source } if source == copy))
        );
    }
    // with nobody left on eu the room leaves it: the relay closes
    assert!(c.hub.relays.is_empty());
    assert_eq!(c.hub.legs_of("r").len(), 1);
    assert_eq!(c.hub.rooms["r"].bridge, "us");
    assert!(c.hub.rooms["r"].copies.is_empty());
    assert!(c.commands("eu").iter().any(|x| matches!(
        x,
        Command::RemoveEndpoint { endpoint } if *endpoint == eu_end
    )));
}

#[test]
fn a_full_bridge_spreads_the_room_and_a_late_source_is_copied_to_every_bridge() {
    // cap 2: the third joiner from eu goes to us although it is from eu
    let mut c = Cluster::new(2);
    let a = c.join("A", "eu");
    let b = c.join("B", "eu");
    let e = c.join("E", "eu");
    assert_eq!(c.hub.participants[&a].bridge, "eu");
    assert_eq!(c.hub.participants[&b].bridge, "eu");
    assert_eq!(c.hub.participants[&e].bridge, "us");
    c.run(1000);
    // every source of A and B is copied to us, E's to eu
    for s in [c.sources_of(a), c.sources_of(b)].concat() {
        assert_ne!(c.hub.local_source("r", "us", s), s);
    }
    for s in c.sources_of(e) {
        assert_ne!(c.hub.local_source("r", "eu", s), s);
    }
    assert_eq!(
        relay_sources(c.commands("eu")).len(),
        c.sources_of(a).len() + c.sources_of(b).len()
    );
}

#[test]
fn losing_a_bridge_of_a_spanning_room_moves_only_its_participants() {
    let mut c = Cluster::new(50);
    let a = c.join("A", "eu");
    let b = c.join("B", "us");
    c.run(1000);
    // a third bridge in us takes over when us is lost
    c.add_bridge("us2", "us", "192.0.2.3:30000");
    let eu_before = c.commands("eu").len();
    c.hub.bridge_down(c.t, "us");
    c.sides.remove("us");
    c.run(3000);
    // B moved to us2 and was told; A stayed on eu, untouched
    assert_eq!(c.hub.participants[&b].bridge, "us2");
    assert_eq!(c.hub.participants[&a].bridge, "eu");
    assert!(c.hub.participants[&a].connected);
    let legs: Vec<String> = c.hub.legs_of("r").into_iter().map(|l| l.bridge).collect();
    assert_eq!(legs, ["eu", "us2"]);
    // eu closed its relay to us, opened one to us2 and stopped B's old
    // copies; A's endpoint was never removed
    let eu_new = &c.commands("eu")[eu_before..];
    assert!(
        !eu_new
            .iter()
            .any(|x| matches!(x, Command::RemoveEndpoint { endpoint } if *endpoint == a))
    );
    let relays = &c.hub.relays;
    assert_eq!(relays.len(), 1);
    assert!(relays[0].ends.iter().all(|e| e.connected), "{relays:?}");
    // A's sources are on their way to us2
    for s in c.sources_of(a) {
        assert_ne!(c.hub.local_source("r", "us2", s), s);
    }
}

#[test]
fn a_room_over_three_bridges_links_each_pair_once_and_copies_each_source_to_each_other_bridge() {
    let mut c = Cluster::new(50);
    c.add_bridge("ap", "ap", "192.0.2.3:30000");
    let a = c.join("A", "eu");
    let b = c.join("B", "us");
    let d = c.join("D", "ap");
    c.run(1500);
    let room = &c.hub.rooms["r"];
    // three bridges, three relays (one per pair), all connected
    let mut pairs: Vec<(String, String)> = c
        .hub
        .relays
        .iter()
        .map(|x| {
            assert!(x.ends.iter().all(|e| e.connected), "{x:?}");
            let mut p = [x.ends[0].leg.bridge.clone(), x.ends[1].leg.bridge.clone()];
            p.sort();
            (p[0].clone(), p[1].clone())
        })
        .collect();
    pairs.sort();
    let pair = |x: &str, y: &str| (x.to_string(), y.to_string());
    assert_eq!(
        pairs,
        [pair("ap", "eu"), pair("ap", "us"), pair("eu", "us")]
    );
    // each source has exactly one copy on each bridge but its own, and
    // crosses each of its bridge's two relays once
    for (who, home) in [(a, "eu"), (b, "us"), (d, "ap")] {
        for s in c.sources_of(who) {
            let mut on: Vec<&str> = room
                .copies
                .iter()
                .filter(|x| x.source == s)
                .map(|x| x.bridge.as_str())
                .collect();
            on.sort_unstable();
            let mut others: Vec<&str> = ["eu", "us", "ap"]
                .into_iter()
                .filter(|x| *x != home)
                .collect();
            others.sort_unstable();
            assert_eq!(on, others, "copies of {s}");
            let relayed = relay_sources(c.commands(home))
                .iter()
                .filter(|r| r.source == s)
                .count();
            assert_eq!(relayed, 2, "{s} leaves {home} once per relay");
        }
    }
    // and nothing a relay brought leaves on another relay
    let copies: Vec<u64> = room.copies.iter().map(|x| x.id).collect();
    for bridge in ["eu", "us", "ap"] {
        assert!(
            relay_sources(c.commands(bridge))
                .iter()
                .all(|r| !copies.contains(&r.source))
        );
    }
}

#[test]
fn rooms_over_the_same_two_bridges_share_one_relay_until_the_last_leaves() {
    let mut c = Cluster::new(50);
    let a = c.join_room("r", "A", "eu");
    let b = c.join_room("r", "B", "us");
    let x = c.join_room("s", "X", "eu");
    let y = c.join_room("s", "Y", "us");
    c.run(1000);
    // the dataplane tells endpoints apart by address: one relay between the
    // two workers, used by both rooms, each with its own copies over it
    assert_eq!(c.hub.relays.len(), 1, "{:?}", c.hub.relays);
    let mut rooms = c.hub.relays[0].rooms.clone();
    rooms.sort();
    assert_eq!(rooms, ["r", "s"]);
    assert!(c.hub.relays[0].ends.iter().all(|e| e.connected));
    for (room, who, far) in [
        ("r", a, "us"),
        ("r", b, "eu"),
        ("s", x, "us"),
        ("s", y, "eu"),
    ] {
        for s in c.sources_of(who) {
            assert_ne!(c.hub.local_source(room, far, s), s, "{room}: {s} on {far}");
        }
    }
    let eu_end = c.hub.relays[0].ends[0].endpoint;
    // room r leaves us: its copies over the relay go, the relay stays for s
    let r_copies: Vec<u64> = c.hub.rooms["r"].copies.iter().map(|x| x.id).collect();
    let before = c.commands("eu").len();
    c.hub.disconnect(b);
    c.drain();
    assert_eq!(c.hub.relays.len(), 1);
    assert_eq!(c.hub.relays[0].rooms, ["s"]);
    assert!(c.hub.rooms["r"].copies.is_empty());
    for copy in &r_copies {
        let removed = |bridge: &str| {
            c.commands(bridge)
                .iter()
                .any(|x| matches!(x, Command::RemoveSource { source } if source == copy))
        };
        assert!(removed("eu") || removed("us"), "copy {copy} removed");
    }
    // A's streams stop on the relay; the relay endpoint itself stays
    let eu_new = &c.commands("eu")[before..];
    for s in c.sources_of(a) {
        assert!(eu_new.iter().any(|x| matches!(
            x,
            Command::UnrelaySource { endpoint, source } if *endpoint == eu_end && *source == s
        )));
    }
    assert!(!eu_new.iter().any(|x| matches!(
        x,
        Command::RemoveEndpoint { endpoint } if *endpoint == eu_end
    )));
    // and when s leaves us too, the relay closes
    c.hub.disconnect(y);
    c.drain();
    assert!(c.hub.relays.is_empty());
    assert!(c.commands("eu").iter().any(|x| matches!(
        x,
        Command::RemoveEndpoint { endpoint } if *endpoint == eu_end
    )));
}

/// How many layers the latest `RelaySource` of `source` on `bridge` carries.
fn relayed_layers(c: &Cluster, bridge: &str, source: u64) -> usize {
    let last = relay_sources(c.commands(bridge))
        .into_iter()
        .rfind(|r| r.source == source)
        .expect("a RelaySource of the source");
    last.ssrcs.iter().filter(|&&s| s != 0).count()
}

/// The layer the allocator gives receiver `id` of `source`.
fn target_of(c: &Cluster, id: u64, source: u64) -> Option<Target> {
    let p = &c.hub.participants[&id];
    p.allocation.targets.get(&source).copied()
}

#[test]
fn a_relay_carries_the_layers_far_receivers_are_given_widening_at_once_narrowing_after_a_hold() {
    let mut c = Cluster::new(50);
    let a = c.join("A", "eu");
    let b = c.join("B", "us");
    c.run(1000);
    let kind_of = |k: SdpMediaValue| {
        c.hub.participants[&a]
            .published
            .iter()
            .find(|s| s.kind == k)
            .map(|s| s.source)
            .unwrap()
    };
    let (audio, video) = (kind_of(SdpMediaValue::Audio), kind_of(SdpMediaValue::Video));
    let rates = Event::SourceRates {
        source: video,
        layer_bps: [100_000, 300_000, 1_000_000],
    };
    c.hub.handle_event(c.t, rates);
    // B's new subscription starts on the top layer: all three cross
    assert_eq!(relayed_layers(&c, "eu", video), 3);
    assert_eq!(relayed_layers(&c, "eu", audio), 1);
    // B's estimate fits only the lowest layer: B gets it at once, the relay
    // keeps the others for the hold (B may come back up), then drops them
    c.hub.handle_event(c.t, super::tests::bandwidth(b, 150_000));
    c.drain();
    assert_eq!(target_of(&c, b, video), Some(Target::Layer(0)));
    c.run(2000);
    assert_eq!(relayed_layers(&c, "eu", video), 3, "held");
    c.run(2500);
    assert_eq!(
        relayed_layers(&c, "eu", video),
        1,
        "narrowed after the hold"
    );
    assert_eq!(relayed_layers(&c, "eu", audio), 1, "audio always crosses");
    // a higher estimate: B's layer and the relay widen together, at once
    let before = relay_sources(c.commands("eu")).len();
    c.hub
        .handle_event(c.t, super::tests::bandwidth(b, 5_000_000));
    c.drain();
    assert_eq!(target_of(&c, b, video), Some(Target::Layer(2)));
    assert_eq!(relayed_layers(&c, "eu", video), 3);
    assert_eq!(relay_sources(c.commands("eu")).len(), before + 1);
    // the relay's near end keeps the numbering: the same SSRCs come back
    let specs: Vec<RelaySpec> = relay_sources(c.commands("eu"))
        .into_iter()
        .filter(|r| r.source == video && r.ssrcs[2] != 0)
        .collect();
    assert!(specs.len() >= 2 && specs.iter().all(|r| r.ssrcs == specs[0].ssrcs));
    // a second far receiver on the lowest layer does not narrow what B uses
    let d = c.join("D", "us");
    c.hub.handle_event(c.t, super::tests::bandwidth(d, 150_000));
    c.hub
        .handle_event(c.t, super::tests::bandwidth(b, 5_000_000));
    c.run(4000);
    assert_eq!(relayed_layers(&c, "eu", video), 3);
}

/// A bandwidth report of relay end `endpoint`: `bps` estimated, `loss` of
/// 256 lost.
fn relay_bandwidth(endpoint: u64, bps: u64, loss: u8) -> FromAgent {
    FromAgent::Event(Event::Bandwidth {
        endpoint,
        estimate_bps: bps,
        acked_bps: bps,
        loss,
        probing: false,
    })
}

#[test]
fn a_congested_relay_link_carries_what_fits_its_estimate_until_it_is_clear_again() {
    let mut c = Cluster::new(50);
    let a = c.join("A", "eu");
    let b = c.join("B", "us");
    c.run(1000);
    let video = c.hub.participants[&a]
        .published
        .iter()
        .find(|s| s.kind == SdpMediaValue::Video)
        .map(|s| s.source)
        .unwrap();
    let rates = Event::SourceRates {
        source: video,
        layer_bps: [100_000, 300_000, 1_000_000],
    };
    c.hub.handle_event(c.t, rates);
    c.hub
        .handle_event(c.t, super::tests::bandwidth(b, 5_000_000));
    c.drain();
    assert_eq!(relayed_layers(&c, "eu", video), 3);
    let eu_end = c.hub.relays[0]
        .ends
        .iter()
        .find(|e| e.leg.bridge == "eu")
        .map(|e| e.endpoint)
        .unwrap();
    // the estimate of a link that is fine, low or not, changes nothing
    c.hub
        .from_agent(c.t, "eu", relay_bandwidth(eu_end, 3_000_000, 0));
    c.hub
        .from_agent(c.t, "eu", relay_bandwidth(eu_end, 900_000, 0));
    c.drain();
    assert_eq!(relayed_layers(&c, "eu", video), 3);
    // another bridge does not speak for this end
    c.hub
        .from_agent(c.t, "us", relay_bandwidth(eu_end, 600_000, 40));
    c.drain();
    assert_eq!(relayed_layers(&c, "eu", video), 3);
    // the estimate falls with 15 % loss: 1.44 Mbit/s of use, 0.6 fit: the
    // 720p layer leaves at once; audio and the lower layers go on
    c.hub
        .from_agent(c.t, "eu", relay_bandwidth(eu_end, 600_000, 40));
    c.drain();
    assert_eq!(relayed_layers(&c, "eu", video), 2);
    // B's own allocation is B's business: it still asks for the top
    assert_eq!(target_of(&c, b, video), Some(Target::Layer(2)));
    // the estimate creeping up to just what the top layer would need: no
    // flip without headroom
    c.run(1000);
    c.hub
        .from_agent(c.t, "eu", relay_bandwidth(eu_end, 1_450_000, 0));
    c.drain();
    assert_eq!(relayed_layers(&c, "eu", video), 2);
    // steady at 0.6 without loss: the link stays held and is probed toward
    // what B uses (audio and three layers, 1.25 × over), each probe that
    // does not raise the estimate waiting longer for the next
    let probes = |c: &Cluster| {
        c.commands("eu")
            .iter()
            .filter_map(|x| match x {
                Command::Probe {
                    endpoint,
                    target_bps,
                    ..
                } if *endpoint == eu_end => Some(*target_bps),
                _ => None,
            })
            .collect::<Vec<u64>>()
    };
    for _ in 0..16 {
        c.hub
            .from_agent(c.t, "eu", relay_bandwidth(eu_end, 600_000, 0));
        c.run(1000);
    }
    assert_eq!(relayed_layers(&c, "eu", video), 2, "still held");
    let sent = probes(&c);
    let used = 40_000 + 100_000 + 300_000 + 1_000_000;
    assert!(
        (2..=5).contains(&sent.len()) && sent.iter().all(|&p| p == used * 5 / 4),
        "{sent:?}"
    );
    // a probe found room: every layer B uses crosses again, the link freed
    c.hub
        .from_agent(c.t, "eu", relay_bandwidth(eu_end, 2_000_000, 0));
    c.drain();
    assert_eq!(relayed_layers(&c, "eu", video), 3, "fits with headroom");
    c.run(1000);
    assert!(
        !c.hub.relays[0].ends.iter().any(|e| e.link.is_held()),
        "freed"
    );
    let n = probes(&c).len();
    c.run(5000);
    assert_eq!(probes(&c).len(), n, "no probe on a free link");
}
