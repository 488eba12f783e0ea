//! Rooms with simulated participants: joins, publishing from a Chrome
//! offer, the server's offers to the others, answers, leaving.

use super::*;
use crate::agent::{Agent, AgentOut};
use crate::auth::TokenPolicy;
use crate::dtls::Certificate;
use crate::focus::bridges::LOCAL;
use crate::sdp::Offer;
use crate::signalling::ClientMessage;
use switchyard_dataplane::abi::command::PAUSED;
use switchyard_dataplane::abi::{Codec, MediaKind, SourceSpec, SubscriptionSpec};
use webrtc_sdp::media_type::SdpMediaValue;

const CHROME: &str = include_str!("../sdp/testdata/chrome_simulcast_offer.sdp");

fn config() -> HubConfig {
    HubConfig {
        limits: Limits {
            participants_per_room: 3,
            ..Limits::default()
        },
        tokens: TokenPolicy::Open,
        placement: Rules::default(),
        last_n: None,
        first_id: 1,
    }
}

/// A hub with its one bridge's agent beside it, as plain `switchyard`
/// runs them.
struct Bench {
    hub: Hub,
    agent: Agent,
}

impl std::ops::Deref for Bench {
    type Target = Hub;
    fn deref(&self) -> &Hub {
        &self.hub
    }
}

impl std::ops::DerefMut for Bench {
    fn deref_mut(&mut self) -> &mut Hub {
        &mut self.hub
    }
}

/// `hub` with `agent` as its bridge (two workers, two addresses).
fn bench(mut hub: Hub, agent: Agent) -> Bench {
    hub.bridge_up(
        Instant::now(),
        BridgeInfo {
            id: LOCAL.into(),
            region: None,
            version: env!("CARGO_PKG_VERSION").into(),
            worker_ports: vec![10000, 10001],
            advertise: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            ice_tcp_port: Some(4443),
            fingerprint: agent.fingerprint(),
        },
    );
    Bench { hub, agent }
}

fn hub() -> Bench {
    bench(
        Hub::new(config()),
        Agent::new(Certificate::generate().unwrap()),
    )
}

/// What the hub and its agent asked for, the agent's part carried out.
#[derive(Debug)]
enum Out {
    Signal {
        participant: u64,
        msg: ServerMessage,
    },
    Close,
    Dataplane {
        command: Command,
    },
    Send,
}

/// Runs hub and agent until neither has more for the other; what they
/// asked of the sessions and the dataplane.
fn drain(h: &mut Bench) -> Vec<Out> {
    let now = Instant::now();
    let mut outs = Vec::new();
    loop {
        let mut moved = false;
        while let Some(o) = h.hub.poll() {
            moved = true;
            match o {
                super::Out::Signal { participant, msg } => {
                    outs.push(Out::Signal { participant, msg })
                }
                super::Out::Close { .. } => outs.push(Out::Close),
                super::Out::BridgeGone { .. } => {}
                super::Out::Agent { bridge, msg } => {
                    assert_eq!(bridge, LOCAL);
                    h.agent.handle(now, msg);
                }
            }
        }
        while let Some(a) = h.agent.poll() {
            moved = true;
            match a {
                AgentOut::Send { .. } => outs.push(Out::Send),
                AgentOut::Dataplane { command, .. } => outs.push(Out::Dataplane { command }),
                AgentOut::Up(m) => h.hub.from_agent(now, LOCAL, m),
            }
        }
        if !moved {
            return outs;
        }
    }
}

fn offer(v: &str) -> ClientMessage {
    ClientMessage::Offer {
        v: VERSION,
        sdp: v.to_string(),
        content: Default::default(),
    }
}

/// The browser's answer to a server offer.
fn answer_to(sdp: &str) -> ClientMessage {
    let text = sdp
        .replace("a=sendonly", "a=RECV")
        .replace("a=recvonly", "a=sendonly")
        .replace("a=RECV", "a=recvonly")
        .replace("a=setup:passive", "a=setup:active")
        .replace("a=ice-lite\r\n", "");
    ClientMessage::Answer {
        v: VERSION,
        sdp: text,
    }
}

fn signals(outs: &[Out], to: u64) -> Vec<&ServerMessage> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Signal { participant, msg } if *participant == to => Some(msg),
            _ => None,
        })
        .collect()
}

#[test]
fn two_participants_publish_and_receive_each_other() {
    let mut h = hub();
    let t = Instant::now();
    let a = h.join(t, "standup", "Ada", None).unwrap();
    drain(&mut h);
    h.handle_message(t, a, offer(CHROME));
    h.endpoint_connected(a);
    let outs = drain(&mut h);
    let ServerMessage::Answer { sdp, .. } = signals(&outs, a)[0] else {
        panic!("answer")
    };
    assert!(
        sdp.contains(" 192.0.2.1 10000 typ host") && sdp.contains(" 2001:db8::1 10000 typ host"),
        "a host candidate per advertised address: {sdp}"
    );
    assert!(
        sdp.contains(" tcp ")
            && sdp.contains(" 192.0.2.1 4443 typ host tcptype passive")
            && sdp.contains(" 2001:db8::1 4443 typ host tcptype passive"),
        "an ICE-TCP candidate per advertised address: {sdp}"
    );
    assert!(
        sdp.contains("2001:db8::1 10000 typ host\r\na=candidate:3 1 tcp "),
        "TCP after UDP: {sdp}"
    );
    let sources: Vec<&SourceSpec> = outs
        .iter()
        .filter_map(|o| match o {
            Out::Dataplane {
                command: Command::AddSource(s),
                ..
            } => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(sources.len(), 2 * 2, "audio and video, on both workers");
    let video = sources.iter().find(|s| s.kind == MediaKind::Video).unwrap();
    assert_eq!(
        (video.layer_count, video.codec, video.endpoint),
        (3, Codec::Vp8, a)
    );
    assert_eq!(&video.layers[2].rid[..1], b"f");

    // B joins: it hears about A, publishes, and gets an offer with A's two tracks
    let b = h.join(t, "standup", "Bo", None).unwrap();
    let outs = drain(&mut h);
    let ServerMessage::Joined { participants, .. } = signals(&outs, b)[0] else {
        panic!("joined")
    };
    assert_eq!(participants[0].sources.len(), 2);
    assert!(matches!(
        signals(&outs, a)[0],
        ServerMessage::ParticipantJoined { .. }
    ));
    h.handle_message(t, b, offer(&CHROME.replace("Brw5", "Brw6")));
    let mut outs = drain(&mut h);
    let subscribes_for = |outs: &[Out], e: u64| {
        outs.iter()
            .filter(|o| matches!(o, Out::Dataplane { command: Command::Subscribe(s), .. } if s.endpoint == e))
            .count()
    };
    assert_eq!(
        subscribes_for(&outs, b),
        0,
        "B's subscriptions wait for its endpoint"
    );
    h.endpoint_connected(b);
    outs.extend(drain(&mut h));
    let to_b = signals(&outs, b);
    // the mids come before the answer, and the answer before the offer with
    // the lines B did not offer to receive on
    let answer_at = to_b
        .iter()
        .position(|m| matches!(m, ServerMessage::Answer { .. }))
        .expect("answer to B");
    assert!(
        to_b[..answer_at]
            .iter()
            .all(|m| matches!(m, ServerMessage::SourceAdded { .. })),
        "{to_b:?}"
    );
    let ServerMessage::Offer { sdp: b_offer, .. } = to_b.last().unwrap() else {
        panic!("offer to B")
    };
    let added: Vec<(String, Option<String>)> = to_b
        .iter()
        .filter_map(|m| match m {
            ServerMessage::SourceAdded { source, .. } => {
                Some((source.kind.clone(), source.mid.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        added,
        [
            ("audio".into(), Some("2".into())),
            ("video".into(), Some("3".into()))
        ],
        "A's sources again, now with the mids that carry them to B"
    );
    let to_a_mids: Vec<Option<String>> = signals(&outs, a)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::SourceAdded { source, .. } => Some(source.mid.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(to_a_mids, [Some("2".into()), Some("3".into())]);
    let parsed = Offer::parse(b_offer).unwrap();
    assert_eq!(
        parsed.media.len(),
        4,
        "B's two m-lines plus A's audio and video"
    );
    let subs: Vec<&SubscriptionSpec> = outs
        .iter()
        .filter_map(|o| match o {
            Out::Dataplane {
                command: Command::Subscribe(s),
                ..
            } => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        subs.iter().filter(|s| s.endpoint == b).count(),
        2,
        "B receives A's audio and video"
    );
    assert_eq!(
        subs.iter().filter(|s| s.endpoint == a).count(),
        2,
        "A receives B's audio and video"
    );
    let b_video = subs
        .iter()
        .find(|s| s.endpoint == b && s.source == video.id)
        .unwrap();
    assert_eq!(
        (
            b_video.payload_type,
            b_video.target_layer,
            &b_video.mid[..b_video.mid_len as usize]
        ),
        (96, 2, &b"3"[..])
    );
    // A also got an offer (B's tracks); both answer
    let ServerMessage::Offer { sdp: a_offer, .. } = signals(&outs, a)
        .into_iter()
        .rev()
        .find(|m| matches!(m, ServerMessage::Offer { .. }))
        .unwrap()
    else {
        panic!("offer to A")
    };
    let a_offer = a_offer.clone();
    h.handle_message(t, b, answer_to(b_offer));
    h.handle_message(t, a, answer_to(&a_offer));
    let outs = drain(&mut h);
    assert!(
        !outs.iter().any(|o| matches!(
            o,
            Out::Signal {
                msg: ServerMessage::Error { .. },
                ..
            }
        )),
        "{outs:?}"
    );
    // answered, the new m-lines carry media: a keyframe of each new video
    // is asked for at once (what came before, B could not use)
    assert!(keyframes_asked(&outs).contains(&video.id), "{outs:?}");

    // B asks for a small picture of A's video; mute state travels
    let mut m = std::collections::BTreeMap::new();
    m.insert(sid(video.id), 180);
    h.handle_message(
        t,
        b,
        ClientMessage::Constraints {
            v: VERSION,
            max_height: m,
            selected: vec![],
            on_stage: vec![],
        },
    );
    h.handle_message(
        t,
        a,
        ClientMessage::Mute {
            v: VERSION,
            mid: "0".into(),
            muted: true,
        },
    );
    let outs = drain(&mut h);
    assert!(outs.iter().any(|o| matches!(o, Out::Dataplane { command: Command::SetTargetLayer { endpoint, layer: 0, .. }, .. } if *endpoint == b)));
    assert!(
        signals(&outs, b)
            .iter()
            .any(|m| matches!(m, ServerMessage::MuteState { muted: true, .. }))
    );

    // A leaves: its sources go, B is told and renegotiates
    h.disconnect(a);
    let outs = drain(&mut h);
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(
                o,
                Out::Dataplane {
                    command: Command::RemoveSource { .. },
                    ..
                }
            ))
            .count(),
        4
    );
    let to_b = signals(&outs, b);
    assert!(
        to_b.iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { .. }))
    );
    assert!(to_b.iter().any(
        |m| matches!(m, ServerMessage::Offer { sdp, .. } if sdp.matches("a=inactive").count() == 2)
    ));
    assert_eq!(h.counts(), (1, 1));
}

/// The sources whose keyframes the hub asked the dataplane for.
fn keyframes_asked(outs: &[Out]) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Dataplane {
                command: Command::RequestKeyframe { source, .. },
            } => Some(*source),
            _ => None,
        })
        .collect()
}

/// A source subscribed while the receiver's offer is outstanding is
/// negotiated by the next offer, not by the answer to this one: its
/// keyframe is asked for after that next answer (asked for earlier, it
/// reached a line the receiver had not negotiated, and a publisher that
/// makes keyframes only when asked sent none after).
#[test]
fn a_source_added_while_an_offer_is_outstanding_gets_its_keyframe_after_the_next_answer() {
    let mut h = hub();
    let t = Instant::now();
    let mut first = Vec::new();
    let mut ids = Vec::new();
    for (name, ufrag) in [("Ada", "Bx01"), ("Bo", "Bx02")] {
        let id = h.join(t, "r", name, None).unwrap();
        h.handle_message(t, id, offer(&CHROME.replace("Brw5", ufrag)));
        h.endpoint_connected(id);
        ids.push(id);
        first = offers_to(&drain(&mut h), id);
    }
    let b = ids[1];
    assert_eq!(first.len(), 1, "B has A's tracks offered");
    // C publishes before B answers
    let c = h.join(t, "r", "Cy", None).unwrap();
    h.handle_message(t, c, offer(&CHROME.replace("Brw5", "Bx99")));
    h.endpoint_connected(c);
    drain(&mut h);
    let (_, c_video) = sources_of(&h, c);
    h.handle_message(t, b, answer_to(&first[0]));
    let outs = drain(&mut h);
    assert!(!keyframes_asked(&outs).contains(&c_video), "{outs:?}");
    let second = offers_to(&outs, b);
    assert_eq!(second.len(), 1, "C's lines in the next offer");
    h.handle_message(t, b, answer_to(&second[0]));
    let outs = drain(&mut h);
    assert!(keyframes_asked(&outs).contains(&c_video), "{outs:?}");
}

/// A joiner that offers to receive on a line per source it knows of (from
/// `joined`) gets those sources in its first answer: mids told first, no
/// offer round trip, each video's keyframe asked for as its media connects.
/// A source with no line of its own waits for the server's offer.
#[test]
fn a_joiners_first_answer_carries_the_sources_it_offered_to_receive() {
    let mut h = hub();
    let t = Instant::now();
    let a = room_of(&mut h, t, 1)[0];
    let (a_audio, a_video) = sources_of(&h, a);
    // B offers to receive one audio and one video, publishing nothing
    let receive_only: String = CHROME
        .replace("Brw5", "Bx77")
        .replace("a=sendonly", "a=recvonly")
        .split("\r\n")
        .filter(|l| !l.starts_with("a=rid:") && !l.starts_with("a=simulcast:"))
        .filter(|l| !l.starts_with("a=ssrc") && !l.starts_with("a=msid:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let b = h.join(t, "r", "Bo", None).unwrap();
    drain(&mut h);
    h.handle_message(t, b, offer(&receive_only));
    let outs = drain(&mut h);
    let to_b = signals(&outs, b);
    let kinds: Vec<&str> = to_b
        .iter()
        .map(|m| match m {
            ServerMessage::SourceAdded { .. } => "source_added",
            ServerMessage::Answer { .. } => "answer",
            ServerMessage::Offer { .. } => "offer",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["source_added", "source_added", "answer"],
        "{to_b:?}"
    );
    let ServerMessage::Answer { sdp, .. } = to_b[2] else {
        unreachable!()
    };
    let answer = Offer::parse(sdp).unwrap();
    let a_id = pid(a);
    for (m, source) in answer.media.iter().zip([a_audio, a_video]) {
        assert_eq!(m.direction, crate::sdp::Direction::SendOnly, "{sdp}");
        assert_eq!(m.ssrcs.len(), 1, "{sdp}");
        let msid = format!("a=msid:{a_id} {}", sid(source));
        assert!(sdp.contains(&msid), "{msid} in {sdp}");
    }
    assert!(keyframes_asked(&outs).is_empty(), "parked until connected");
    h.endpoint_connected(b);
    let outs = drain(&mut h);
    assert_eq!(keyframes_asked(&outs), [a_video], "{outs:?}");
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Out::Dataplane { command: Command::Subscribe(s) } if s.endpoint == b))
            .count(),
        2
    );
    // a second publisher's sources come with the server's offer, as before
    let c = h.join(t, "r", "Cy", None).unwrap();
    h.handle_message(t, c, offer(&CHROME.replace("Brw5", "Bx78")));
    h.endpoint_connected(c);
    let outs = drain(&mut h);
    assert_eq!(offers_to(&outs, b).len(), 1, "C's lines offered to B");
}

#[test]
fn protocol_errors_and_limits() {
    let mut h = hub();
    let t = Instant::now();
    let a = h.join(t, "r", "A", None).unwrap();
    drain(&mut h);
    h.handle_message(t, a, offer("v=0 garbage"));
    h.handle_message(
        t,
        a,
        ClientMessage::Answer {
            v: VERSION,
            sdp: CHROME.into(),
        },
    );
    h.handle_message(
        t,
        a,
        ClientMessage::Join {
            v: VERSION,
            room: "r".into(),
            name: "A".into(),
            token: None,
            region: None,
        },
    );
    let codes: Vec<ErrorCode> = drain(&mut h)
        .iter()
        .filter_map(|o| match o {
            Out::Signal {
                msg: ServerMessage::Error { code, .. },
                ..
            } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        vec![ErrorCode::BadSdp, ErrorCode::BadState, ErrorCode::BadState]
    );
    h.join(t, "r", "B", None).unwrap();
    h.join(t, "r", "C", None).unwrap();
    assert_eq!(
        h.join(t, "r", "D", None).unwrap_err().code,
        ErrorCode::Limit,
        "room of three is full"
    );
    assert!(h.join(t, "other", "D", None).is_ok());
}

/// `n` participants in one room, each publishing CHROME's audio and
/// three-layer video, endpoints in the dataplane; returns their ids.
fn room_of(h: &mut Bench, t: Instant, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = h.join(t, "r", &format!("P{i}"), None).unwrap();
        h.handle_message(t, id, offer(&CHROME.replace("Brw5", &format!("Bx{i:02}"))));
        h.endpoint_connected(id);
        ids.push(id);
    }
    drain(h);
    ids
}

/// The (kind, id) of every source `of` publishes.
fn sources_of(h: &Hub, of: u64) -> (u64, u64) {
    let p = &h.participants[&of];
    let audio = p
        .published
        .iter()
        .find(|s| s.kind == SdpMediaValue::Audio)
        .unwrap()
        .source;
    let video = p
        .published
        .iter()
        .find(|s| s.kind == SdpMediaValue::Video)
        .unwrap()
        .source;
    (audio, video)
}

fn targets_for(outs: &[Out], endpoint: u64) -> Vec<(u64, u8)> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Dataplane {
                command:
                    Command::SetTargetLayer {
                        endpoint: e,
                        source,
                        layer,
                    },
                ..
            } if *e == endpoint => Some((*source, *layer)),
            _ => None,
        })
        .collect()
}

/// A bandwidth report for `endpoint`: `bps` estimated, half of it acked.
pub(super) fn bandwidth(endpoint: u64, bps: u64) -> Event {
    Event::Bandwidth {
        endpoint,
        estimate_bps: bps,
        acked_bps: bps / 2,
        loss: 0,
        probing: false,
    }
}

/// The probe target `outs` ask for toward `endpoint`, if any.
fn probe_for(outs: &[Out], endpoint: u64) -> Option<u64> {
    outs.iter().find_map(|o| match o {
        Out::Dataplane {
            command:
                Command::Probe {
                    endpoint: e,
                    target_bps,
                    ..
                },
            ..
        } if *e == endpoint => Some(*target_bps),
        _ => None,
    })
}

#[test]
fn the_estimate_moves_layers_and_a_short_one_asks_for_a_probe() {
    let mut h = hub();
    let t = Instant::now();
    let ids = room_of(&mut h, t, 2);
    let (a, b) = (ids[0], ids[1]);
    let (_, a_video) = sources_of(&h, a);
    let bw = |h: &mut Bench, t, bps| {
        h.handle_event(t, bandwidth(b, bps));
        drain(h)
    };
    // 300 kbit/s: B gets A's low layer, and a probe toward what it wants
    let outs = bw(&mut h, t, 300_000);
    assert_eq!(targets_for(&outs, b), [(a_video, 0)]);
    let probe = probe_for(&outs, b);
    assert_eq!(
        probe,
        Some(1_200_000),
        "four times the estimate, toward 1.5 Mbit/s"
    );
    // the probe raised nothing: the next one waits 4 s rather than 2 s
    let probes = |outs: &[Out]| {
        outs.iter()
            .filter(|o| {
                matches!(
                    o,
                    Out::Dataplane {
                        command: Command::Probe { .. },
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(
        probes(&bw(&mut h, t + Duration::from_millis(1100), 300_000)),
        0
    );
    assert_eq!(
        probes(&bw(&mut h, t + Duration::from_millis(2100), 300_000)),
        0
    );
    assert_eq!(
        probes(&bw(&mut h, t + Duration::from_millis(4100), 300_000)),
        1
    );
    // the estimate rises (the probe went well): the top layer
    let outs = bw(&mut h, t + Duration::from_secs(5), 3_000_000);
    assert_eq!(targets_for(&outs, b), [(a_video, 2)]);
    assert!(!outs.iter().any(|o| matches!(
        o,
        Out::Dataplane {
            command: Command::Probe { .. },
            ..
        }
    )));
    // the same estimate again changes nothing
    assert!(targets_for(&bw(&mut h, t + Duration::from_secs(6), 3_000_000), b).is_empty());
    // a constraint for a thumbnail brings it down at once
    let mut m = std::collections::BTreeMap::new();
    m.insert(sid(a_video), 180);
    h.handle_message(
        t,
        b,
        ClientMessage::Constraints {
            v: VERSION,
            max_height: m,
            selected: vec![],
            on_stage: vec![],
        },
    );
    assert_eq!(targets_for(&drain(&mut h), b), [(a_video, 0)]);
}

/// A room of two in `h`; what it returns gives the second participant the
/// estimate `bps` `ms` after the start and says what probe that asked for.
fn probes_of_the_second_of_two(h: &mut Bench) -> impl FnMut(u64, u64) -> Option<u64> + '_ {
    let t = Instant::now();
    let b = room_of(h, t, 2)[1];
    move |ms, bps| {
        h.handle_event(t + Duration::from_millis(ms), bandwidth(b, bps));
        probe_for(&drain(h), b)
    }
}

#[test]
fn a_probe_that_raised_the_estimate_is_followed_at_once() {
    let mut h = hub();
    let mut probe_at = probes_of_the_second_of_two(&mut h);
    assert_eq!(probe_at(0, 200_000), Some(800_000));
    // still running, then judged: 200 → 500 kbit/s is a gain, and 1.5 Mbit/s
    // still does not fit, so the next probe starts without the 2 s gap
    assert_eq!(probe_at(300, 250_000), None);
    // (1.5 Mbit/s of video + 40 kbit/s of audio and its 17.6 kbit/s of
    // headers) × 1.25
    assert_eq!(probe_at(1100, 500_000), Some(1_947_000));
    // that one gained nothing: now the gap holds (doubled)
    assert_eq!(probe_at(2200, 500_000), None);
    assert_eq!(probe_at(3200, 500_000), None);
    assert_eq!(probe_at(5200, 500_000), Some(1_947_000));
}

#[test]
fn no_probe_while_the_estimate_has_just_fallen() {
    let mut h = hub();
    let mut probe_at = probes_of_the_second_of_two(&mut h);
    // 1.5 Mbit/s fits: no probe
    assert_eq!(probe_at(0, 2_500_000), None);
    // the path narrows: the low layer, and no padding into its full queue
    assert_eq!(probe_at(100, 330_000), None);
    // still below the last 2 s's high: still falling
    assert_eq!(probe_at(1000, 330_000), None);
    // settled, but the fall is not 2 s old yet
    assert_eq!(probe_at(2200, 330_000), None);
    assert_eq!(probe_at(3100, 330_000), Some(1_320_000));
}

#[test]
fn last_n_follows_the_dominant_speaker_with_hysteresis() {
    let mut h = bench(
        Hub::new(HubConfig {
            last_n: Some(1),
            limits: Limits::default(),
            ..config()
        }),
        Agent::new(Certificate::generate().unwrap()),
    );
    let mut t = Instant::now();
    let ids = room_of(&mut h, t, 3);
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let (a_audio, a_video) = sources_of(&h, a);
    let (b_audio, b_video) = sources_of(&h, b);
    let speak = |h: &mut Hub, t, source, level| {
        h.handle_event(
            t,
            Event::AudioLevel {
                source,
                level,
                voice: true,
            },
        )
    };
    // A talks for 2 s: it takes the floor; C receives A's video only
    for _ in 0..10 {
        t += Duration::from_millis(200);
        speak(&mut h, t, a_audio, 30);
    }
    let outs = drain(&mut h);
    assert!(signals(&outs, c).iter().any(
        |m| matches!(m, ServerMessage::DominantSpeaker { participant, .. } if *participant == pid(a))
    ));
    let tc = targets_for(&outs, c);
    assert!(tc.contains(&(b_video, PAUSED)), "{tc:?}");
    assert!(!tc.contains(&(a_video, PAUSED)), "{tc:?}");
    // B coughs for 600 ms: not enough to take over
    for _ in 0..3 {
        t += Duration::from_millis(200);
        speak(&mut h, t, b_audio, 10);
    }
    for _ in 0..6 {
        t += Duration::from_millis(200);
        speak(&mut h, t, a_audio, 30);
    }
    assert!(
        !signals(&drain(&mut h), c)
            .iter()
            .any(|m| matches!(m, ServerMessage::DominantSpeaker { .. }))
    );
    // B talks on: after leading 1.5 s it has the floor, and C's video slot
    for _ in 0..12 {
        t += Duration::from_millis(200);
        speak(&mut h, t, b_audio, 10);
    }
    let outs = drain(&mut h);
    assert!(signals(&outs, c).iter().any(
        |m| matches!(m, ServerMessage::DominantSpeaker { participant, .. } if *participant == pid(b))
    ));
    let tc = targets_for(&outs, c);
    assert!(tc.contains(&(a_video, PAUSED)), "{tc:?}");
    assert!(
        tc.iter().any(|&(s, l)| s == b_video && l != PAUSED),
        "{tc:?}"
    );
    // audio is never paused by last-N
    assert!(!tc.iter().any(|&(s, _)| s == a_audio || s == b_audio));
}

#[test]
fn an_offer_with_too_many_sources_is_refused() {
    let mut h = hub();
    let t = Instant::now();
    let a = h.join(t, "r", "A", None).unwrap();
    drain(&mut h);
    // CHROME's audio section seventeen times, each with its own mid and SSRC
    let start = CHROME.find("m=audio").unwrap();
    let end = CHROME.find("m=video").unwrap();
    let (head, audio) = (&CHROME[..start], &CHROME[start..end]);
    let n = MAX_SOURCES_PER_PARTICIPANT + 1;
    let mids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut sdp = head.replace(
        "a=group:BUNDLE 0 1",
        &format!("a=group:BUNDLE {}", mids.join(" ")),
    );
    for i in 0..n {
        sdp.push_str(
            &audio
                .replace("a=mid:0", &format!("a=mid:{i}"))
                .replace("1001", &(2000 + i).to_string())
                .replace("track-a", &format!("track-a{i}")),
        );
    }
    h.handle_sdp(a, ParsedSdp::Offer(Offer::parse(&sdp), Default::default()));
    let errors: Vec<(ErrorCode, String)> = drain(&mut h)
        .iter()
        .filter_map(|o| match o {
            Out::Signal {
                msg: ServerMessage::Error { code, message, .. },
                ..
            } => Some((*code, message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, ErrorCode::InvalidValue, "{errors:?}");
    assert!(errors[0].1.contains("too many sources"), "{errors:?}");
    // the same participant can still publish a normal offer
    h.handle_sdp(
        a,
        ParsedSdp::Offer(Offer::parse(CHROME), Default::default()),
    );
    assert!(
        drain(&mut h).iter().any(|o| matches!(
            o,
            Out::Signal {
                msg: ServerMessage::Answer { .. },
                ..
            }
        )),
        "no answer after a refused offer"
    );
}

#[test]
fn per_source_state_goes_with_its_source() {
    let mut h = hub();
    let t = Instant::now();
    let ids = room_of(&mut h, t, 2);
    let (audio, video) = sources_of(&h, ids[0]);
    let level = |source| Event::AudioLevel {
        source,
        level: 30,
        voice: true,
    };
    let rates = |source| Event::SourceRates {
        source,
        layer_bps: [100_000, 300_000, 1_000_000],
    };
    h.handle_event(t, level(audio));
    h.handle_event(t, rates(video));
    assert_eq!(h.per_source_entries(), 2);
    // events for sources nobody publishes leave nothing behind
    for s in 1_000..1_100 {
        h.handle_event(t, level(s));
        h.handle_event(t, rates(s));
    }
    assert_eq!(h.per_source_entries(), 2);
    h.disconnect(ids[0]);
    assert_eq!(h.per_source_entries(), 0);
    // a late event for a removed source does not bring it back
    h.handle_event(t, level(audio));
    h.handle_event(t, rates(video));
    assert_eq!(h.per_source_entries(), 0);
}

/// The answer's `a=ice-ufrag`.
fn ufrag_of(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("ice-ufrag")
        .trim()
        .to_string()
}

#[test]
fn new_ice_credentials_restart_ice_on_the_same_session() {
    let mut h = hub();
    let t = Instant::now();
    let a = h.join(t, "standup", "Ada", None).unwrap();
    drain(&mut h);
    h.handle_message(t, a, offer(CHROME));
    let outs = drain(&mut h);
    let ServerMessage::Answer { sdp: first, .. } = signals(&outs, a)[0] else {
        panic!("answer")
    };
    let first = first.clone();
    // the same offer again: a renegotiation, same credentials
    h.handle_message(t, a, offer(CHROME));
    let outs = drain(&mut h);
    let ServerMessage::Answer { sdp: again, .. } = signals(&outs, a)[0] else {
        panic!("answer")
    };
    assert_eq!(ufrag_of(again), ufrag_of(&first));
    // the browser's network changed: restartIce() gives new credentials
    let restarted = CHROME
        .replace("a=ice-ufrag:Brw5", "a=ice-ufrag:Brw6")
        .replace("k2b9qL0sO3v8xT1mZ7c4yR6n", "n6Ry4c7Zm1Tx8v3Os0Lq9b2k");
    h.handle_message(t, a, offer(&restarted));
    let outs = drain(&mut h);
    let ServerMessage::Answer { sdp: after, .. } = signals(&outs, a)[0] else {
        panic!("answer")
    };
    assert_ne!(
        ufrag_of(after),
        ufrag_of(&first),
        "our credentials change too"
    );
    assert!(
        after.contains(&first[first.find("a=fingerprint").unwrap()..][..40]),
        "same DTLS certificate"
    );
    assert!(
        !outs.iter().any(|o| matches!(
            o,
            Out::Dataplane {
                command: Command::RemoveEndpoint { .. } | Command::RemoveSource { .. },
                ..
            }
        )),
        "nothing torn down"
    );
    let transport = h.agent.transport(a).unwrap();
    assert_eq!(transport.local_credentials().ufrag, ufrag_of(after));
    assert_eq!(transport.remote_credentials().unwrap().ufrag, "Brw6");
}

fn offers_to(outs: &[Out], to: u64) -> Vec<String> {
    signals(outs, to)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Offer { sdp, .. } => Some(sdp.clone()),
            _ => None,
        })
        .collect()
}

fn without_origin(sdp: &str) -> String {
    sdp.lines()
        .filter(|l| !l.starts_with("o=") && !l.starts_with("a=ssrc") && !l.starts_with("a=msid"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Answers every server offer in `outs` (and those the answers bring).
fn answer_all(h: &mut Bench, t: Instant, ids: &[u64], mut outs: Vec<Out>) {
    for _ in 0..10 {
        let mut any = false;
        for &id in ids {
            for sdp in offers_to(&outs, id) {
                h.handle_message(t, id, answer_to(&sdp));
                any = true;
            }
        }
        if !any {
            return;
        }
        outs = drain(h);
    }
}

#[test]
fn a_saved_hub_carries_on_as_the_same_participants_with_the_same_sessions() {
    let t = Instant::now();
    let mut h = hub();
    let mut ids = Vec::new();
    for i in 0..2 {
        let id = h.join(t, "r", &format!("P{i}"), None).unwrap();
        h.handle_message(t, id, offer(&CHROME.replace("Brw5", &format!("Bx{i:02}"))));
        h.endpoint_connected(id);
        ids.push(id);
        let outs = drain(&mut h);
        answer_all(&mut h, t, &ids, outs);
    }
    // a third whose media never connected cannot be carried on
    let late = h.join(t, "r", "Late", None).unwrap();
    drain(&mut h);
    for (i, &id) in ids.iter().enumerate() {
        let addr = std::net::SocketAddr::from(([192, 0, 2, 50 + i as u8], 5000));
        h.agent.transport_mut(id).unwrap().assume_connected(addr);
    }
    let tokens: Vec<String> = ids
        .iter()
        .map(|id| h.participants[id].resume_token.clone())
        .collect();
    let json = serde_json::to_vec(&h.saved()).unwrap();
    let saved: SavedHub = serde_json::from_slice(&json).unwrap();
    let (key, cert) = h.agent.certificate().to_pem().unwrap();
    let mut agent = Agent::new(Certificate::from_pem(&key, &cert).unwrap());
    for state in h.agent.states() {
        agent.restore(&state, t);
    }
    let mut r = bench(Hub::restore(config(), saved), agent);
    let carried = r.agent.endpoints().into_iter().collect();
    let mut kept = r.keep_carried(LOCAL, &carried);
    kept.sort();
    assert_eq!(kept, ids);
    assert!(!r.contains(late));
    for (id, token) in ids.iter().zip(&tokens) {
        assert_eq!(r.participant_for_token(token), Some(*id));
    }
    // consent checks are still answered: the transports kept their credentials
    for &id in &ids {
        assert_eq!(
            r.agent.transport(id).unwrap().local_credentials(),
            h.agent.transport(id).unwrap().local_credentials()
        );
    }
    // a newcomer: fresh id, and the offers to the others are the ones the
    // hub before the restart would have made (same m-lines, credentials,
    // certificate)
    drain(&mut r);
    h.disconnect(late);
    drain(&mut h);
    let n_before = h.join(t, "r", "New", None).unwrap();
    let n_after = r.join(t, "r", "New", None).unwrap();
    assert!(
        n_after > late && n_after >= n_before,
        "{n_after} {n_before} {late}"
    );
    for (hub, n) in [(&mut h, n_before), (&mut r, n_after)] {
        hub.handle_message(t, n, offer(&CHROME.replace("Brw5", "NewB")));
    }
    let (before, after) = (drain(&mut h), drain(&mut r));
    for &id in &ids {
        let (b, a) = (offers_to(&before, id), offers_to(&after, id));
        assert_eq!((a.len(), b.len()), (1, 1));
        assert_eq!(without_origin(&a[0]), without_origin(&b[0]));
    }
}

#[test]
fn a_lost_bridges_rooms_move_whole_and_stale_sdp_is_ignored() {
    let t = Instant::now();
    let mut h = hub();
    let ids = room_of(&mut h, t, 2);
    let other = Agent::new(Certificate::generate().unwrap());
    h.hub.bridge_up(
        t,
        BridgeInfo {
            id: "b2".into(),
            region: None,
            version: env!("CARGO_PKG_VERSION").into(),
            worker_ports: vec![20000],
            advertise: vec!["192.0.2.9".parse().unwrap()],
            ice_tcp_port: None,
            fingerprint: other.fingerprint(),
        },
    );
    // the link drops; within the grace nothing moves
    h.hub.bridge_down(t, LOCAL);
    h.hub.handle_timeout(t + Duration::from_secs(1));
    assert!(
        !std::iter::from_fn(|| h.hub.poll()).any(|o| matches!(
            o,
            super::Out::BridgeGone { .. }
                | super::Out::Signal {
                    msg: ServerMessage::MediaMoved { .. },
                    ..
                }
        )),
        "nothing moves within the grace"
    );
    let later = t + moves::BRIDGE_GRACE + Duration::from_millis(10);
    h.hub.handle_timeout(later);
    let outs: Vec<super::Out> = std::iter::from_fn(|| h.hub.poll()).collect();
    assert!(
        outs.iter()
            .any(|o| matches!(o, super::Out::BridgeGone { bridge } if bridge == LOCAL))
    );
    for &id in &ids {
        assert!(
            outs.iter().any(|o| matches!(o, super::Out::Signal { participant, msg: ServerMessage::MediaMoved { .. } } if *participant == id)),
            "{id} told"
        );
    }
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, super::Out::Agent { bridge, .. } if bridge == LOCAL)),
        "nothing more for the lost bridge"
    );
    assert_eq!(h.hub.counts_on("b2"), (1, 2));
    // the old peer connection's renegotiation arrives late: ignored
    let a = ids[0];
    h.hub
        .handle_message(later, a, offer(&CHROME.replace("Brw5", "Bx00")));
    assert!(
        !std::iter::from_fn(|| h.hub.poll())
            .any(|o| matches!(o, super::Out::Agent { .. } | super::Out::Signal { .. })),
        "stale offer ignored"
    );
    // the new peer connection's offer opens a transport on the new bridge
    h.hub
        .handle_message(later, a, offer(&CHROME.replace("Brw5", "Nw00")));
    let outs: Vec<super::Out> = std::iter::from_fn(|| h.hub.poll()).collect();
    assert!(outs.iter().any(|o| matches!(
        o,
        super::Out::Agent { bridge, msg: ToAgent::OpenTransport(spec) } if bridge == "b2" && spec.port == 20000
    )));
    let answer = outs.iter().find_map(|o| match o {
        super::Out::Signal {
            msg: ServerMessage::Answer { sdp, .. },
            ..
        } => Some(sdp),
        _ => None,
    });
    assert!(answer.unwrap().contains("192.0.2.9 20000 typ host"));
}

#[test]
fn a_new_room_goes_to_a_bridge_of_the_joiners_region() {
    let t = Instant::now();
    let mut h = hub();
    for (id, region) in [("eu", "eu-west"), ("us", "us-east")] {
        h.hub.bridge_up(
            t,
            BridgeInfo {
                id: id.into(),
                region: Some(region.into()),
                version: env!("CARGO_PKG_VERSION").into(),
                worker_ports: vec![20000],
                advertise: vec!["192.0.2.9".parse().unwrap()],
                ice_tcp_port: None,
                fingerprint: h.agent.fingerprint(),
            },
        );
    }
    for room in ["a", "b", "c"] {
        h.hub.join_in(t, room, "P", None, Some("us-east")).unwrap();
    }
    h.hub.join_in(t, "d", "P", None, Some("eu-west")).unwrap();
    // a later joiner of a room goes where the room is, whatever its region
    h.hub.join_in(t, "d", "Q", None, Some("us-east")).unwrap();
    assert_eq!(h.hub.counts_on("us"), (3, 3));
    assert_eq!(h.hub.counts_on("eu"), (1, 2));
}

fn chat(text: &str, to: Option<&str>) -> ClientMessage {
    ClientMessage::Chat {
        v: VERSION,
        text: text.into(),
        to: to.map(str::to_string),
    }
}

/// The chat messages and errors `to` got.
fn chats(outs: &[Out], to: u64) -> Vec<(String, bool)> {
    signals(outs, to)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Chat { text, private, .. } => Some((text.clone(), *private)),
            ServerMessage::Error { code, .. } => Some((format!("error {code:?}"), false)),
            _ => None,
        })
        .collect()
}

#[test]
fn chat_reaches_the_room_or_one_and_late_joiners_get_the_room_s_history() {
    let mut h = hub();
    let t = Instant::now();
    let ids = room_of(&mut h, t, 3);
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    // to the room: everyone else, not the sender; markup is passed on as is
    h.handle_message(t, a, chat("<script>alert(1)</script>", None));
    let outs = drain(&mut h);
    for o in [b, c] {
        assert_eq!(
            chats(&outs, o),
            [("<script>alert(1)</script>".to_string(), false)]
        );
    }
    assert!(chats(&outs, a).is_empty());
    // to one: only them, and never kept
    h.handle_message(t, a, chat("psst", Some(&pid(c))));
    let outs = drain(&mut h);
    assert_eq!(chats(&outs, c), [("psst".to_string(), true)]);
    assert!(chats(&outs, b).is_empty());
    // to nobody of this room: refused
    h.handle_message(t, a, chat("?", Some("p1")));
    let outs = drain(&mut h);
    assert_eq!(chats(&outs, a), [("error InvalidValue".to_string(), false)]);
    // a flood: the burst passes, the rest is refused with `limit`
    let t2 = t + Duration::from_secs(60);
    for i in 0..8 {
        h.handle_message(t2, b, chat(&format!("flood {i}"), None));
    }
    let outs = drain(&mut h);
    let got = chats(&outs, a);
    assert_eq!(got.len(), chat::BURST as usize, "{got:?}");
    let refused = chats(&outs, b);
    assert_eq!(refused.len(), 8 - chat::BURST as usize);
    assert!(refused.iter().all(|(e, _)| e == "error Limit"));
    // a late joiner gets the room's messages, the private one not among them
    // (the test rooms hold three: C leaves first)
    h.disconnect(c);
    let d = h.join(t2, "r", "Dee", None).unwrap();
    let outs = drain(&mut h);
    let ServerMessage::Joined { chat: history, .. } = signals(&outs, d)[0] else {
        panic!("joined")
    };
    let texts: Vec<&str> = history.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts[0], "<script>alert(1)</script>");
    assert_eq!(texts.len(), 1 + chat::BURST as usize);
    assert!(!texts.contains(&"psst"));
    assert_eq!(history[0].from, pid(a));
    // the history is bounded
    for i in 0..(chat::HISTORY + 10) {
        let at = t2 + Duration::from_secs(10 + i as u64);
        h.handle_message(at, d, chat(&format!("m{i}"), None));
    }
    h.disconnect(b);
    drain(&mut h);
    let e = h.join(t2, "r", "Eve", None).unwrap();
    let outs = drain(&mut h);
    let ServerMessage::Joined { chat: history, .. } = signals(&outs, e)[0] else {
        panic!("joined")
    };
    assert_eq!(history.len(), chat::HISTORY);
    assert_eq!(
        history.last().unwrap().text,
        format!("m{}", chat::HISTORY + 9)
    );
}

#[test]
fn a_source_marked_as_a_screen_is_announced_as_one() {
    let mut h = hub();
    let t = Instant::now();
    let a = h.join(t, "standup", "Ada", None).unwrap();
    drain(&mut h);
    // the video line (mid 1) is a shared screen
    h.handle_message(
        t,
        a,
        ClientMessage::Offer {
            v: VERSION,
            sdp: CHROME.to_string(),
            content: [("1".to_string(), crate::signalling::Content::Screen)].into(),
        },
    );
    h.endpoint_connected(a);
    drain(&mut h);
    let b = h.join(t, "standup", "Bo", None).unwrap();
    let outs = drain(&mut h);
    let ServerMessage::Joined { participants, .. } = signals(&outs, b)[0] else {
        panic!("joined")
    };
    let kinds: Vec<(String, crate::signalling::Content)> = participants[0]
        .sources
        .iter()
        .map(|s| (s.kind.clone(), s.content))
        .collect();
    assert_eq!(
        kinds,
        [
            ("audio".to_string(), crate::signalling::Content::Camera),
            ("video".to_string(), crate::signalling::Content::Screen)
        ]
    );
    let json = signals(&outs, b)[0].to_json();
    assert_eq!(json.matches("\"content\":\"screen\"").count(), 1, "{json}");
    // a value out of the list is refused (bad_message)
    assert!(
        crate::signalling::ClientMessage::parse(
            r#"{"v":1,"type":"offer","sdp":"v=0","content":{"0":"slides"}}"#
        )
        .is_err()
    );
}

/// A room token for `room`, a moderator's or not.
fn room_token(room: &str, moderator: bool) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = crate::auth::RoomClaims {
        room: room.into(),
        exp,
        sub: None,
        moderator,
    };
    crate::auth::hs256_token(b"room secret", &claims).unwrap()
}

fn paused_for(outs: &[Out], endpoint: u64, source: u64) -> Option<u8> {
    outs.iter().rev().find_map(|o| match o {
        Out::Dataplane {
            command:
                Command::SetTargetLayer {
                    endpoint: e,
                    source: s,
                    layer,
                },
        } if *e == endpoint && *s == source => Some(*layer),
        _ => None,
    })
}

/// `msg` from `from`, and what the hub and agent did about it.
fn exchange(h: &mut Bench, t: Instant, from: u64, msg: ClientMessage) -> Vec<Out> {
    h.handle_message(t, from, msg);
    drain(h)
}

fn mute_participant(who: u64, kind: crate::signalling::TrackKind) -> ClientMessage {
    ClientMessage::MuteParticipant {
        v: VERSION,
        participant: pid(who),
        kind,
    }
}

fn remove_participant(who: u64) -> ClientMessage {
    ClientMessage::RemoveParticipant {
        v: VERSION,
        participant: pid(who),
    }
}

#[test]
fn a_moderator_mutes_and_removes_others_and_nobody_else_may() {
    let mut h = bench(
        Hub::new(HubConfig {
            tokens: TokenPolicy::hs256(b"room secret"),
            ..config()
        }),
        Agent::new(Certificate::generate().unwrap()),
    );
    let t = Instant::now();
    let mut ids = Vec::new();
    for (i, (name, moderator)) in [("Mo", true), ("Bo", false), ("Cy", false)]
        .into_iter()
        .enumerate()
    {
        let id = h
            .join(t, "r", name, Some(&room_token("r", moderator)))
            .unwrap();
        h.handle_message(t, id, offer(&CHROME.replace("Brw5", &format!("Bm{i:02}"))));
        h.endpoint_connected(id);
        ids.push(id);
    }
    let outs = drain(&mut h);
    let (mo, bo, cy) = (ids[0], ids[1], ids[2]);
    let joined = |to: u64| {
        signals(&outs, to)
            .into_iter()
            .find_map(|m| match m {
                ServerMessage::Joined {
                    moderator,
                    participants,
                    ..
                } => Some((*moderator, participants.clone())),
                _ => None,
            })
            .unwrap()
    };
    assert!(joined(mo).0, "Mo's token makes it a moderator");
    let (bo_is, bo_sees) = joined(bo);
    assert!(!bo_is && bo_sees[0].moderator && bo_sees[0].name == "Mo");

    // Bo may not
    for msg in [
        r#"{"v":1,"type":"remove_participant","participant":"P"}"#,
        r#"{"v":1,"type":"mute_participant","participant":"P","kind":"audio"}"#,
    ] {
        let msg = ClientMessage::parse(&msg.replace("\"P\"", &format!("\"{}\"", pid(cy)))).unwrap();
        let outs = exchange(&mut h, t, bo, msg);
        assert!(
            matches!(
                signals(&outs, bo)[..],
                [ServerMessage::Error {
                    code: ErrorCode::Forbidden,
                    ..
                }]
            ),
            "{outs:?}"
        );
        assert!(signals(&outs, cy).is_empty(), "nothing happens to Cy");
    }

    // Mo mutes Bo's microphone: Bo is told, the others see it muted, and
    // nobody gets it any more
    let (bo_audio, _) = sources_of(&h, bo);
    let outs = exchange(
        &mut h,
        t,
        mo,
        mute_participant(bo, crate::signalling::TrackKind::Audio),
    );
    assert!(matches!(
        signals(&outs, bo)[..],
        [ServerMessage::ForceMuted { mid, by, .. }] if mid == "0" && *by == pid(mo)
    ));
    assert!(matches!(
        signals(&outs, cy)[..],
        [ServerMessage::MuteState { muted: true, source, .. }] if *source == sid(bo_audio)
    ));
    for to in [mo, cy] {
        assert_eq!(paused_for(&outs, to, bo_audio), Some(PAUSED), "{to}");
    }
    // Bo speaks again on purpose: forwarded again
    let unmute = ClientMessage::Mute {
        v: VERSION,
        mid: "0".into(),
        muted: false,
    };
    let outs = exchange(&mut h, t, bo, unmute);
    assert_eq!(paused_for(&outs, cy, bo_audio), Some(0));

    // a video mute pauses through the allocation
    let (_, cy_video) = sources_of(&h, cy);
    let outs = exchange(
        &mut h,
        t,
        mo,
        mute_participant(cy, crate::signalling::TrackKind::Video),
    );
    assert_eq!(paused_for(&outs, bo, cy_video), Some(PAUSED));

    // Mo removes Cy: told, closed, gone for the others, its token dead
    let cy_token = h.participants[&cy].resume_token.clone();
    let outs = exchange(&mut h, t, mo, remove_participant(cy));
    assert!(
        matches!(signals(&outs, cy)[..], [ServerMessage::Removed { by, name, .. }] if *by == pid(mo) && name == "Mo")
    );
    assert!(outs.iter().any(|o| matches!(o, Out::Close)));
    for to in [mo, bo] {
        assert!(
            signals(&outs, to)
                .iter()
                .any(|m| matches!(m, ServerMessage::ParticipantLeft { id, .. } if *id == pid(cy))),
            "{to}"
        );
    }
    assert!(!h.contains(cy) && h.participant_for_token(&cy_token).is_none());
    // a moderator cannot act on itself or on someone not in the room
    let outs = exchange(&mut h, t, mo, remove_participant(cy));
    assert!(matches!(
        signals(&outs, mo)[..],
        [ServerMessage::Error {
            code: ErrorCode::InvalidValue,
            ..
        }]
    ));
}

#[test]
fn endpoint_messages_reach_the_room_or_one_within_a_budget() {
    let mut h = hub();
    let t = Instant::now();
    let ids = room_of(&mut h, t, 3);
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let msg = |data: serde_json::Value, to: Option<u64>| ClientMessage::EndpointMessage {
        v: VERSION,
        data,
        to: to.map(pid),
    };
    let got = |outs: &[Out], to: u64| -> Vec<(serde_json::Value, bool)> {
        signals(outs, to)
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::EndpointMessage {
                    from,
                    data,
                    private,
                    ..
                } if *from == pid(a) => Some((data.clone(), *private)),
                _ => None,
            })
            .collect()
    };
    let outs = exchange(
        &mut h,
        t,
        a,
        msg(serde_json::json!({"reaction": "+1"}), None),
    );
    for to in [b, c] {
        assert_eq!(
            got(&outs, to),
            [(serde_json::json!({"reaction": "+1"}), false)]
        );
    }
    assert!(got(&outs, a).is_empty(), "not back to the sender");
    let outs = exchange(&mut h, t, a, msg(serde_json::json!([1, 2]), Some(b)));
    assert_eq!(got(&outs, b), [(serde_json::json!([1, 2]), true)]);
    assert!(got(&outs, c).is_empty());
    // the burst: 20 at once (two spent above), then refused with `limit`
    for i in 0..30 {
        h.handle_message(t, a, msg(serde_json::json!(i), None));
    }
    let outs = drain(&mut h);
    assert_eq!(got(&outs, b).len(), 18);
    let refused = signals(&outs, a)
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::Limit,
                    ..
                }
            )
        })
        .count();
    assert_eq!(refused, 12);
    // a `to` of nobody in the room
    h.handle_message(
        t + Duration::from_secs(1),
        a,
        msg(serde_json::json!(1), Some(999_999)),
    );
    let outs = drain(&mut h);
    assert!(matches!(
        signals(&outs, a)[..],
        [ServerMessage::Error {
            code: ErrorCode::InvalidValue,
            ..
        }]
    ));
}
