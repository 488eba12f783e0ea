//! One publisher (three VP8 simulcast layers), three subscribers on two
//! workers: layers, rewriting, a layer switch at a keyframe, NACK and PLI.

use crate::harness::*;
use std::collections::HashMap;
use std::time::Duration;
use switchyard_dataplane::abi::{Command, Event};
use switchyard_wire::rtcp::{Compound, NackPair, NackRepr, Packet, PliRepr};

/// The lowest sequence number in a short run that may wrap.
fn got_c_first(got: &[Got]) -> u16 {
    got.iter()
        .map(|g| g.seq)
        .min_by_key(|s| s.wrapping_sub(got[0].seq.wrapping_sub(1000)))
        .unwrap_or(0)
}

fn pause() {
    std::thread::sleep(Duration::from_millis(4));
}

/// PLIs the publisher received, by media SSRC.
fn plis(publisher: &mut Peer) -> HashMap<u32, usize> {
    let mut count = HashMap::new();
    for mut p in publisher.receive_all(Duration::from_millis(150)) {
        let Ok(n) = publisher.recv.unprotect_rtcp(&mut p) else {
            continue;
        };
        for pkt in Compound::new(&p[..n]).flatten() {
            if let Packet::Pli(pli) = pkt {
                *count.entry(pli.media_ssrc).or_insert(0) += 1;
            }
        }
    }
    count
}

fn scenario(io: &str) {
    scenario_on(&Dataplane::start(2, io), &PeerNet::default());
}

/// A publisher and subscriber A on worker 0, B and C on worker 1, their
/// sockets on `net`.
pub fn scenario_on(dp: &Dataplane, net: &PeerNet) {
    let mut client = dp.attach();
    assert_eq!(client.workers(), 2);
    let publisher = Peer::at(&client, 1, 0, net);
    let mut a = Peer::at(&client, 2, 0, net);
    let mut b = Peer::at(&client, 3, 1, net);
    let mut c = Peer::at(&client, 4, 1, net);
    for p in [&publisher, &a, &b, &c] {
        client
            .send(p.worker, &Command::AddEndpoint(p.spec()))
            .unwrap();
    }
    client.add_source(&source_spec(1)).unwrap();
    client.subscribe(0, 0, &subscription(2, 0xa, 2)).unwrap();
    client.subscribe(1, 0, &subscription(3, 0xb, 0)).unwrap();
    client.subscribe(1, 0, &subscription(4, 0xc, 1)).unwrap();
    settle(&client);

    let mut publisher = Publisher::new(publisher);
    for f in 0..10 {
        publisher.frame([f == 0; 3]);
        pause();
    }
    // A asks for layer 0; it arrives with the layer-0 keyframe of frame 15
    client
        .send(
            0,
            &Command::SetTargetLayer {
                endpoint: 2,
                source: SOURCE,
                layer: 0,
            },
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    for f in 10..25 {
        publisher.frame([f == 15, false, false]);
        pause();
    }
    let got_a = receive_media(&mut a, Duration::from_millis(400));
    let got_b = receive_media(&mut b, Duration::from_millis(100));
    // C "loses" its 8th packet on the way (never decrypts it) and NACKs it later
    let mut raw_c: Vec<Vec<u8>> = c.receive_all(Duration::from_millis(100));
    raw_c.retain(|p| p.len() < 2 || !(192..=223).contains(&p[1]));
    let lost = raw_c.remove(7);
    let lost_seq = u16::from_be_bytes([lost[2], lost[3]]);
    let mut got_c = read_media(&mut c, raw_c);

    // each subscriber: its SSRC, its layer, every packet, continuous numbering
    assert_eq!(
        got_b.len(),
        50,
        "B (other worker) gets every layer-0 packet"
    );
    assert!(got_b.iter().all(|g| g.ssrc == 0xb && g.layer == 0));
    assert_eq!(
        got_c.len(),
        49,
        "C (other worker) gets every layer-1 packet (one lost on purpose)"
    );
    assert!(got_c.iter().all(|g| g.ssrc == 0xc && g.layer == 1));
    assert_eq!(
        got_a.len(),
        50,
        "A: 15 frames of layer 2, then 10 of layer 0"
    );
    assert!(got_a.iter().all(|g| g.ssrc == 0xa));
    let switch = got_a.iter().position(|g| g.layer == 0).expect("A switched");
    assert_eq!(
        got_a[switch].frame, 15,
        "the switch waited for the keyframe"
    );
    assert!(got_a[..switch].iter().all(|g| g.layer == 2));
    assert!(got_a[switch..].iter().all(|g| g.layer == 0));
    for (got, who) in [(&got_a, "A"), (&got_b, "B")] {
        assert_continuous(got, who);
    }
    let mut switched = false;
    while let Some((_, e)) = client.poll_event() {
        switched |= e
            == Event::LayerSwitched {
                endpoint: 2,
                source: SOURCE,
                layer: 0,
            };
    }
    assert!(switched, "LayerSwitched event");

    // NACK from C (other worker) for the lost packet: the retransmission
    // completes the stream
    c.send_rtcp(|buf| {
        NackRepr {
            sender_ssrc: 4,
            media_ssrc: 0xc,
            pairs: &[NackPair {
                pid: lost_seq,
                blp: 0,
            }],
        }
        .emit(buf)
        .unwrap()
    });
    let again = receive_media(&mut c, Duration::from_millis(300));
    assert_eq!(again.len(), 1, "one retransmission");
    assert_eq!((again[0].seq, again[0].layer), (lost_seq, 1));
    got_c.extend(again);
    let first = got_c_first(&got_c);
    got_c.sort_by_key(|g| g.seq.wrapping_sub(first));
    assert_continuous(&got_c, "C");

    // PLIs: a burst from B and C reaches the publisher once per layer per
    // window. First a keyframe on every layer answers any request still
    // being retried (a mirror's first request can reach the home worker
    // after the keyframe it was for, and layers 1 and 2 stopped at frame 10)
    publisher.frame([true; 3]);
    std::thread::sleep(Duration::from_millis(700));
    plis(&mut publisher.peer);
    for _ in 0..5 {
        b.send_rtcp(|buf| {
            PliRepr {
                sender_ssrc: 3,
                media_ssrc: 0xb,
            }
            .emit(buf)
            .unwrap()
        });
        c.send_rtcp(|buf| {
            PliRepr {
                sender_ssrc: 4,
                media_ssrc: 0xc,
            }
            .emit(buf)
            .unwrap()
        });
    }
    let first = plis(&mut publisher.peer);
    assert_eq!(first.get(&LAYER_SSRC[0]), Some(&1), "{first:?}");
    assert_eq!(first.get(&LAYER_SSRC[1]), Some(&1), "{first:?}");
    std::thread::sleep(Duration::from_millis(600));
    let deferred = plis(&mut publisher.peer);
    assert_eq!(
        deferred.get(&LAYER_SSRC[0]),
        Some(&1),
        "repeats inside the window are sent once after it: {deferred:?}"
    );
    let counters = client.counters(0).unwrap();
    assert!(counters.get(switchyard_dataplane::abi::Counter::CrossOut) >= 100);
}

#[test]
fn forwarding_mmsg() {
    scenario("mmsg");
}

#[test]
fn forwarding_io_uring() {
    scenario("uring");
}
