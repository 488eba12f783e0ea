//! Wake-ups instead of polling (ABI 1.10): a client that registers sleeps
//! on its eventfd until a worker has packets or events for it, and the
//! workers, no longer asked to poll their command rings, sleep until their
//! timers or the client's signal. A client that attaches later without
//! registering is polled again.

use crate::harness::*;
use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::{AsFd, OwnedFd};
use std::net::UdpSocket;
use std::time::Duration;
use switchyard_dataplane::abi::{Client, Command, CommandError, Counter, Event, wakeup};

/// Loop iterations worker 0 makes in `span` with nothing to forward.
fn idle_iterations(client: &Client, span: Duration) -> u64 {
    let at = |c: &Client| c.counters(0).unwrap().get(Counter::Iterations);
    let before = at(client);
    std::thread::sleep(span);
    at(client) - before
}

/// Whether `fd` was signalled within 10 s (and clears it).
fn signalled(fd: &OwnedFd) -> bool {
    wakeup::wait(fd, Duration::from_secs(10))
}

/// A STUN binding request (header only): the kind of datagram a worker
/// hands the client.
fn binding_request() -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&[7; 12]);
    m
}

#[test]
fn a_registered_client_is_woken_and_its_workers_stop_polling() {
    let dp = Dataplane::start(2, "auto");
    let mut client = dp.attach();
    let polled = idle_iterations(&client, Duration::from_secs(1));
    assert!(
        polled >= 150,
        "a client without wake-ups has its commands polled every 2 ms: {polled} iterations in 1 s"
    );

    let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap();
    assert!(client.register_wakeups(fd.as_fd()).unwrap());
    assert!(client.wakeups_registered());
    let woken = idle_iterations(&client, Duration::from_secs(1));
    println!("idle iterations in 1 s: polled {polled}, with wake-ups {woken}");
    assert!(
        woken <= 40,
        "with wake-ups an idle worker wakes only for its timers: {woken} iterations in 1 s"
    );

    // a command reaches a sleeping worker when the client wakes it, and
    // the event it answers with wakes the sleeping client
    assert!(client.prepare_sleep(), "nothing waits yet");
    client
        .send(0, &Command::RemoveEndpoint { endpoint: 424_242 })
        .unwrap();
    client.wake_workers();
    assert!(
        signalled(&fd),
        "the worker's answer woke the client\n{}",
        dp.log()
    );
    client.end_sleep();
    assert!(
        matches!(
            client.poll_event(),
            Some((
                0,
                Event::CommandFailed {
                    error: CommandError::UnknownEndpoint,
                    id: 424_242,
                    ..
                }
            ))
        ),
        "the answer is there"
    );

    // a datagram for the client wakes it too
    assert!(client.prepare_sleep());
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = client.worker_port(1).unwrap();
    peer.send_to(&binding_request(), ("127.0.0.1", port))
        .unwrap();
    assert!(signalled(&fd), "the datagram woke the client");
    client.end_sleep();
    let mut buf = [0u8; 2048];
    let (worker, _, n) = client.recv_packet(&mut buf).expect("the datagram");
    assert_eq!((worker, &buf[..n]), (1, &binding_request()[..]));

    // an awake client is not signalled
    peer.send_to(&binding_request(), ("127.0.0.1", port))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.recv_packet(&mut buf).is_none() {
        assert!(std::time::Instant::now() < deadline, "second datagram");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut b = [0u8; 8];
    assert!(
        rustix::io::read(&fd, &mut b).is_err(),
        "no signal while the client was awake"
    );

    // a client that attaches after it and does not register is polled
    drop(client);
    let client = dp.attach();
    let again = idle_iterations(&client, Duration::from_secs(1));
    assert!(
        again >= 150,
        "the next client is polled again: {again} iterations in 1 s"
    );
}
