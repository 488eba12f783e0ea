//! The control client goes away mid-stream and a new one attaches: media
//! never stops, and the new client finds the endpoints in the table.

use crate::harness::*;
use std::time::Duration;

fn scenario(io: &str) {
    let dp = Dataplane::start(2, io);
    let mut client = dp.attach();
    let (publisher, mut sub) = one_to_one(&mut client, 0xd, 1);
    let generation = client.generation();

    let sender = std::thread::spawn(move || {
        let mut p = Publisher::new(publisher);
        for f in 0..200 {
            p.frame([f == 0; 3]);
            std::thread::sleep(Duration::from_millis(4));
        }
    });
    std::thread::sleep(Duration::from_millis(250));
    drop(client);
    std::thread::sleep(Duration::from_millis(100));
    let client = dp.attach();
    assert!(client.generation() > generation);
    let mut ids: Vec<(u64, u64)> = client
        .endpoints()
        .iter()
        .map(|e| {
            (
                e.endpoint,
                u64::from_le_bytes(e.user_data[..8].try_into().unwrap()),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![(1, 1), (2, 2)],
        "both endpoints listed with their user data"
    );
    sender.join().unwrap();
    let got = receive_media(&mut sub, Duration::from_millis(300));
    assert_eq!(
        got.len(),
        400,
        "every packet forwarded across the re-attach"
    );
    assert_continuous(&got, "subscriber");
}

#[test]
fn reattach_mmsg() {
    scenario("mmsg");
}

#[test]
fn reattach_io_uring() {
    scenario("uring");
}
