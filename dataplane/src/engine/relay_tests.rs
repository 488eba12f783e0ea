//! Relay streams and loop prevention, on the engine's scenario world: a
//! VP8 publisher with three layers, two subscribers, and relay endpoints
//! to other bridges.

use super::super::tests::{
    LAYER_SSRC, Peer, VecSink, World, add, peer, subscription, video_source,
};
use super::super::{Engine, EngineConfig};
use super::*;
use crate::abi::{Command, Event};
use switchyard_wire::rtcp::{NackPair, NackRepr};
use switchyard_wire::rtp::RtpPacket;

const RELAY_SSRC: [u32; 3] = [0x4401, 0x4402, 0x4403];

fn relay_spec(endpoint: u64, source: u64) -> RelaySpec {
    RelaySpec {
        endpoint,
        source,
        ssrcs: RELAY_SSRC,
        rtx_ssrcs: [0; 3],
    }
}

/// A relay endpoint `id` added and marked.
fn relay(w: &mut World, id: u64) -> Peer {
    let r = peer(id, 6000);
    add(&mut w.engine, &mut w.sink, &r, w.t);
    w.engine.handle_command(
        w.t,
        Command::SetRelay {
            endpoint: id,
            relay: true,
        },
        &mut w.sink,
    );
    r
}

/// (ssrc, seq) of each packet sent to `p`.
fn received(w: &mut World, p: &mut Peer) -> Vec<(u32, u16)> {
    w.sink
        .take_to(p.addr)
        .into_iter()
        .filter_map(|mut pkt| {
            let n = p.recv.unprotect_rtp(&mut pkt).ok()?;
            let r = RtpPacket::new_checked(&pkt[..n]).ok()?;
            Some((r.ssrc(), r.sequence_number()))
        })
        .collect()
}

/// A picture loss indication from the far bridge over relay `r` for the
/// relay stream `media_ssrc`.
fn pli_from_relay(w: &mut World, r: &mut Peer, media_ssrc: u32) {
    let mut buf = vec![0u8; 1500];
    let n = switchyard_wire::rtcp::PliRepr {
        sender_ssrc: 9,
        media_ssrc,
    }
    .emit(&mut buf)
    .unwrap();
    let n = r.send.protect_rtcp(&mut buf, n).unwrap();
    w.engine
        .handle_datagram(w.t, r.addr, &mut buf[..n], &mut w.sink);
}

fn refusals(w: &mut World) -> Vec<CommandError> {
    std::mem::take(&mut w.sink.events)
        .into_iter()
        .filter_map(|e| match e {
            Event::CommandFailed { error, .. } => Some(error),
            _ => None,
        })
        .collect()
}

#[test]
fn every_layer_crosses_a_relay_once_as_its_own_stream_with_continuous_numbering() {
    let mut w = World::new();
    let mut r = relay(&mut w, 4);
    w.engine
        .handle_command(w.t, Command::RelaySource(relay_spec(4, 77)), &mut w.sink);
    assert!(refusals(&mut w).is_empty());
    w.frame([true; 3]);
    for _ in 0..4 {
        w.frame([false; 3]);
    }
    let got = received(&mut w, &mut r);
    // 5 frames × 2 packets on each layer, each layer on its own SSRC, once
    assert_eq!(got.len(), 30, "{got:?}");
    // counted apart from what goes to participants
    let c = w.engine.counters();
    assert_eq!(c.get(crate::abi::Counter::RelayTxPackets), 30);
    assert!(c.get(crate::abi::Counter::RelayTxBytes) > 30 * 100);
    assert_eq!(c.get(crate::abi::Counter::RelayRxPackets), 0);
    for ssrc in RELAY_SSRC {
        let seqs: Vec<u16> = got.iter().filter(|p| p.0 == ssrc).map(|p| p.1).collect();
        assert_eq!(seqs.len(), 10, "{ssrc:x}: {seqs:?}");
        assert!(
            seqs.windows(2).all(|p| p[1] == p[0].wrapping_add(1)),
            "{ssrc:x}: {seqs:?}"
        );
    }
    // the subscribers still get their one layer each
    assert_eq!(w.sink.take_to(w.a.addr).len(), 10);
    assert_eq!(w.sink.take_to(w.b.addr).len(), 10);
    // subscriber commands do not touch relay streams
    let layer = Command::SetTargetLayer {
        endpoint: 4,
        source: 77,
        layer: 0,
    };
    w.engine.handle_command(w.t, layer, &mut w.sink);
    w.frame([false; 3]);
    assert_eq!(received(&mut w, &mut r).len(), 6);
    // unrelayed: nothing more crosses
    let stop = Command::UnrelaySource {
        endpoint: 4,
        source: 77,
    };
    w.engine.handle_command(w.t, stop, &mut w.sink);
    w.frame([true; 3]);
    assert!(received(&mut w, &mut r).is_empty());
}

#[test]
fn a_relay_answers_nacks_from_its_stream_history() {
    let mut w = World::new();
    let mut r = relay(&mut w, 4);
    w.engine
        .handle_command(w.t, Command::RelaySource(relay_spec(4, 77)), &mut w.sink);
    w.frame([true; 3]);
    w.frame([false; 3]);
    // the far bridge lost these: read only their clear headers (its SRTP
    // never saw them, so the retransmission is no replay to it)
    let got: Vec<(u32, u16)> = w
        .sink
        .take_to(r.addr)
        .iter()
        .filter_map(|pkt| {
            let p = RtpPacket::new_checked(&pkt[..]).ok()?;
            Some((p.ssrc(), p.sequence_number()))
        })
        .collect();
    let lost = got.iter().find(|p| p.0 == RELAY_SSRC[2]).unwrap().1;
    // the far bridge lost one packet of the top layer and asks for it
    let mut pairs = [NackPair::default(); 1];
    let (np, _) = NackPair::pack(&[lost], &mut pairs);
    let nack = NackRepr {
        sender_ssrc: 9,
        media_ssrc: RELAY_SSRC[2],
        pairs: &pairs[..np],
    };
    let mut buf = vec![0u8; 1500];
    let n = nack.emit(&mut buf).unwrap();
    let n = r.send.protect_rtcp(&mut buf, n).unwrap();
    w.engine
        .handle_datagram(w.t, r.addr, &mut buf[..n], &mut w.sink);
    assert_eq!(received(&mut w, &mut r), vec![(RELAY_SSRC[2], lost)]);
    // 2 frames × 3 layers × 2 packets, and the retransmission
    let c = w.engine.counters();
    assert_eq!(c.get(crate::abi::Counter::RelayTxPackets), 13);
    assert_eq!(c.get(crate::abi::Counter::RelayRetransmissions), 1);
}

/// A relay asks for keyframes on behalf of every receiver of the far
/// bridge: the per-receiver budget (3 per 10 s) does not hold it back, the
/// per-source window still does.
#[test]
fn a_relays_keyframe_requests_are_not_held_to_one_receivers_budget() {
    let mut w = World::new();
    let mut r = relay(&mut w, 4);
    w.engine
        .handle_command(w.t, Command::RelaySource(relay_spec(4, 77)), &mut w.sink);
    w.frame([true; 3]);
    w.plis_to_publisher();
    let mut asked = 0;
    for _ in 0..6 {
        // past the per-source window each time
        w.t += std::time::Duration::from_millis(600);
        pli_from_relay(&mut w, &mut r, RELAY_SSRC[2]);
        asked += w.plis_to_publisher();
    }
    assert_eq!(asked, 6, "every request past the source's window went on");
}

#[test]
fn what_a_relay_brings_never_leaves_on_a_relay_and_a_relay_never_subscribes() {
    let mut w = World::new();
    let mut r = relay(&mut w, 4);
    let mut r2 = relay(&mut w, 5);
    // a source the relay 4 brought from another bridge (its layers on the
    // relay happen to have the publisher's SSRCs: SSRCs are per endpoint)
    let mut relayed = video_source(4);
    relayed.id = 88;
    w.engine
        .handle_command(w.t, Command::AddSource(relayed), &mut w.sink);
    assert!(refusals(&mut w).is_empty());
    for cmd in [
        // relayed again: a loop
        Command::RelaySource(relay_spec(5, 88)),
        // a relay as a subscriber
        Command::Subscribe(subscription(5, 0xcccc, 2)),
        // relay streams toward a participant
        Command::RelaySource(relay_spec(2, 77)),
    ] {
        w.engine.handle_command(w.t, cmd, &mut w.sink);
        assert_eq!(refusals(&mut w), vec![CommandError::RelayLoop]);
    }
    w.frame([true; 3]);
    assert!(received(&mut w, &mut r2).is_empty());
    // a participant on this bridge still gets the relayed source
    w.engine.handle_command(
        w.t,
        Command::Subscribe(SubscriptionSpec {
            source: 88,
            ..subscription(2, 0xdddd, 0)
        }),
        &mut w.sink,
    );
    assert!(refusals(&mut w).is_empty());
    // what arrives over the relay is counted as relay traffic
    let mut pkt = super::super::tests::vp8(&mut r, 0, 7, 0, true, true);
    let len = pkt.len() as u64;
    w.engine.handle_datagram(w.t, r.addr, &mut pkt, &mut w.sink);
    let c = w.engine.counters();
    assert_eq!(
        (
            c.get(crate::abi::Counter::RelayRxPackets),
            c.get(crate::abi::Counter::RelayRxBytes)
        ),
        (1, len)
    );
    // unmarked, 5 is an endpoint like any other again
    let unmark = Command::SetRelay {
        endpoint: 5,
        relay: false,
    };
    w.engine.handle_command(w.t, unmark, &mut w.sink);
    w.engine.handle_command(
        w.t,
        Command::Subscribe(subscription(5, 0xcccc, 2)),
        &mut w.sink,
    );
    assert!(refusals(&mut w).is_empty());
}

/// The relay's spec with only the first `n` layers relayed (ABI 1.6).
fn relay_first(endpoint: u64, n: usize) -> Command {
    let mut spec = relay_spec(endpoint, 77);
    for ssrc in &mut spec.ssrcs[n..] {
        *ssrc = 0;
    }
    Command::RelaySource(spec)
}

#[test]
fn a_relay_carries_only_the_layers_asked_for_and_a_layer_back_again_keeps_its_numbering() {
    let mut w = World::new();
    let mut r = relay(&mut w, 4);
    w.engine.handle_command(w.t, relay_first(4, 1), &mut w.sink);
    assert!(refusals(&mut w).is_empty());
    w.frame([true; 3]);
    w.frame([false; 3]);
    let got = received(&mut w, &mut r);
    assert!(
        got.iter().all(|p| p.0 == RELAY_SSRC[0]) && got.len() == 4,
        "{got:?}"
    );
    // widened to every layer: the new ones start at a keyframe, which is
    // asked for at once
    w.plis_to_publisher();
    w.engine.handle_command(w.t, relay_first(4, 3), &mut w.sink);
    assert!(
        w.plis_to_publisher() > 0,
        "a keyframe of the new layers asked for"
    );
    w.frame([false; 3]);
    assert_eq!(
        received(&mut w, &mut r).len(),
        2,
        "new layers wait for a keyframe"
    );
    w.frame([true; 3]);
    let got = received(&mut w, &mut r);
    assert_eq!(got.len(), 6, "{got:?}");
    let top_before = got.iter().rfind(|p| p.0 == RELAY_SSRC[2]).unwrap().1;
    // narrowed to two layers: the top one stops, the others go on
    w.engine.handle_command(w.t, relay_first(4, 2), &mut w.sink);
    for _ in 0..3 {
        w.frame([true; 3]);
    }
    let got = received(&mut w, &mut r);
    assert_eq!(got.len(), 12, "{got:?}");
    assert!(!got.iter().any(|p| p.0 == RELAY_SSRC[2]), "{got:?}");
    // the top layer back: its numbering goes on where it stopped, so the
    // far side sees no gap (its SRTP index and loss tracking stay right)
    w.engine.handle_command(w.t, relay_first(4, 3), &mut w.sink);
    w.frame([true; 3]);
    let top: Vec<u16> = received(&mut w, &mut r)
        .into_iter()
        .filter(|p| p.0 == RELAY_SSRC[2])
        .map(|p| p.1)
        .collect();
    assert_eq!(
        top,
        vec![top_before.wrapping_add(1), top_before.wrapping_add(2)]
    );
    // a far receiver's keyframe request for a layer not relayed asks the
    // publisher for that layer (the focus is widening the relay to it)
    w.engine.handle_command(w.t, relay_first(4, 1), &mut w.sink);
    w.t += std::time::Duration::from_millis(600);
    w.plis_to_publisher();
    pli_from_relay(&mut w, &mut r, RELAY_SSRC[1]);
    assert_eq!(w.pli_ssrcs_to_publisher(), vec![LAYER_SSRC[1]]);
    // nothing relayed at all, then unrelayed: both fine
    w.engine.handle_command(w.t, relay_first(4, 0), &mut w.sink);
    w.frame([true; 3]);
    assert!(received(&mut w, &mut r).is_empty());
    let stop = Command::UnrelaySource {
        endpoint: 4,
        source: 77,
    };
    w.engine.handle_command(w.t, stop.clone(), &mut w.sink);
    w.engine.handle_command(w.t, stop, &mut w.sink);
    assert!(refusals(&mut w).is_empty());
}

#[test]
fn a_rebuilt_engine_carries_relay_streams_on_paused_ones_included() {
    use crate::abi::Continuity;
    use crate::abi::continuity::RTP_MARGIN;
    use std::time::Duration;
    let mut w = World::new();
    let mut r = relay(&mut w, 4);
    w.engine
        .handle_command(w.t, Command::RelaySource(relay_spec(4, 77)), &mut w.sink);
    w.frame([true; 3]);
    w.frame([false; 3]);
    // the top layer leaves the relay; the lower two go on
    let narrowed = RelaySpec {
        ssrcs: [RELAY_SSRC[0], RELAY_SSRC[1], 0],
        ..relay_spec(4, 77)
    };
    w.engine
        .handle_command(w.t, Command::RelaySource(narrowed), &mut w.sink);
    w.frame([false; 3]);
    let before = received(&mut w, &mut r);
    let last = |ssrc: u32| {
        before
            .iter()
            .filter(|p| p.0 == ssrc)
            .map(|p| p.1)
            .next_back()
            .unwrap()
    };
    let records: Vec<Continuity> = w.engine.continuity(w.t, 1_000_000).collect();
    let relay_streams = records
        .iter()
        .filter(|c| matches!(c, Continuity::Stream { endpoint: 4, .. }))
        .count();
    assert_eq!(relay_streams, 3, "the paused one too: {records:?}");

    // the engine dies; a new one gets the commands the control plane's
    // replica gives it (docs/abi.md): the endpoints with their SRTP
    // records, the relay's streams as they were with theirs, then the relay
    // as it is now
    w.t += Duration::from_millis(300);
    let mut engine = Engine::new(EngineConfig::default());
    engine.set_wall_clock(w.t, 1_000_300);
    let mut sink = VecSink::default();
    let mark = Command::SetRelay {
        endpoint: 4,
        relay: true,
    };
    engine.handle_command(w.t, mark, &mut sink);
    for p in [&w.publisher, &w.a, &w.b, &r] {
        add(&mut engine, &mut sink, p, w.t);
    }
    engine.handle_command(w.t, Command::AddSource(video_source(1)), &mut sink);
    engine.handle_command(w.t, Command::RelaySource(relay_spec(4, 77)), &mut sink);
    for rec in &records {
        let carried = Command::Resume(rec.carried_on());
        if matches!(
            rec,
            Continuity::Srtp { .. } | Continuity::Stream { endpoint: 4, .. }
        ) {
            engine.handle_command(w.t, carried, &mut sink);
        }
    }
    engine.handle_command(w.t, Command::RelaySource(narrowed), &mut sink);
    w.engine = engine;
    w.sink = sink;
    assert!(refusals(&mut w).is_empty());
    w.frame([true; 3]);
    let after = received(&mut w, &mut r);
    // the far bridge's SRTP took every packet (a replayed index would
    // have failed `received`), numbered on past the margin
    assert_eq!(after.len(), 4, "{after:?}");
    for ssrc in &RELAY_SSRC[..2] {
        let seqs: Vec<u16> = after.iter().filter(|p| p.0 == *ssrc).map(|p| p.1).collect();
        assert_eq!(
            seqs,
            [1, 2].map(|i| last(*ssrc).wrapping_add(RTP_MARGIN as u16 + i))
        );
    }
    // the top layer back: it too carries on
    w.engine
        .handle_command(w.t, Command::RelaySource(relay_spec(4, 77)), &mut w.sink);
    w.frame([true; 3]);
    let top: Vec<u16> = received(&mut w, &mut r)
        .into_iter()
        .filter(|p| p.0 == RELAY_SSRC[2])
        .map(|p| p.1)
        .collect();
    assert_eq!(
        top,
        [1, 2].map(|i| last(RELAY_SSRC[2]).wrapping_add(RTP_MARGIN as u16 + i))
    );
}
