//! 100k datagrams of garbage, truncated packets, wrong keys and replays on
//! the media ports: the process stays up, drops are counted by reason, and
//! a valid stream running at the same time arrives complete.

use crate::harness::*;
use std::time::Duration;
use switchyard_dataplane::abi::DropReason;
use switchyard_srtp::{MasterKey, Session};

fn scenario(io: &str) {
    let mut dp = Dataplane::start(2, io);
    let mut client = dp.attach();
    let (publisher, mut sub) = one_to_one(&mut client, 0xe, 0);
    let ports = [
        client.worker_port(0).unwrap(),
        client.worker_port(1).unwrap(),
    ];
    // a second socket of the publisher's address space: same source address
    // for the attacks that must pass the address check
    let bad_client = publisher.socket.try_clone().unwrap();
    let server = publisher.server;
    let mut wrong_key = {
        let k = MasterKey::new(PROFILE, &[0xee; 16], &[0xee; 12]).unwrap();
        Session::new(PROFILE, &k, switchyard_srtp::Config::default()).unwrap()
    };

    let valid = std::thread::spawn(move || {
        let mut p = Publisher::new(publisher);
        let mut replays = Vec::new();
        for f in 0..150 {
            p.frame([f == 0; 3]);
            replays.push(p.packet(0, 1, true, false));
            std::thread::sleep(Duration::from_millis(5));
        }
        (p, replays)
    });

    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut sent = 0u32;
    let mut plain = Publisher::new(Peer::new(&client, 9, 0));
    while sent < 100_000 {
        for _ in 0..250 {
            let r = rand();
            let len = (r % 1400) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
            match sent % 4 {
                // random bytes from an unknown address, to both workers
                0 => {
                    let _ = stranger.send_to(&junk, ("127.0.0.1", ports[(r >> 20) as usize % 2]));
                }
                // RTP-looking garbage from the publisher's address (fails auth)
                1 => {
                    junk.resize(len.max(40), 0);
                    junk[0] = 0x80;
                    junk[1] = 96;
                    let _ = bad_client.send_to(&junk, server);
                }
                // truncated packets from the publisher's address
                2 => {
                    let _ = bad_client.send_to(&[0x80, 96, 0, 1, 0, 0][..(r % 6) as usize], server);
                }
                // well-formed packets under the wrong key
                _ => {
                    let mut pkt = plain.packet(0, sent as u16, true, true);
                    let n = pkt.len() - 16;
                    let mut fresh = pkt[..n].to_vec();
                    fresh.resize(n + 16, 0);
                    if let Ok(len) = wrong_key.protect_rtp(&mut fresh, n) {
                        pkt = fresh[..len].to_vec();
                    }
                    let _ = bad_client.send_to(&pkt, server);
                }
            }
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(4));
    }
    let (publisher, replays) = valid.join().unwrap();
    // replays of packets the dataplane already accepted
    for r in &replays {
        publisher.peer.send_raw(r);
    }
    let got = receive_media(&mut sub, Duration::from_millis(400));
    assert!(dp.alive(), "the dataplane survived");
    assert_eq!(got.len(), 300, "the valid stream arrived complete");
    assert_continuous(&got, "subscriber");
    std::thread::sleep(Duration::from_millis(50));
    let c0 = client.counters(0).unwrap();
    let c1 = client.counters(1).unwrap();
    let drops = |r: DropReason| c0.drops(r) + c1.drops(r);
    assert!(
        drops(DropReason::UnknownAddress) + drops(DropReason::Unclassified) > 10_000,
        "{c0:?}"
    );
    assert!(
        drops(DropReason::AuthFailed) > 10_000,
        "auth failures counted"
    );
    assert!(
        drops(DropReason::Replayed) >= 100,
        "replays counted: {}",
        drops(DropReason::Replayed)
    );
    assert!(
        drops(DropReason::SrtpOther)
            + drops(DropReason::Unclassified)
            + drops(DropReason::MalformedRtp)
            > 1000
    );
}

#[test]
fn garbage_mmsg() {
    scenario("mmsg");
}

#[test]
fn garbage_io_uring() {
    scenario("uring");
}
