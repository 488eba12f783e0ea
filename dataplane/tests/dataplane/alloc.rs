//! The per-packet path allocates nothing: an engine and a real socket
//! backend run in this thread while a counting global allocator (see
//! main.rs) watches it. After a warm-up that creates every stream, 3000
//! datagrams in and 9000 out must not allocate once.

use crate::harness::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::{Command, Event};
use switchyard_dataplane::engine::{CrossMessage, EndpointInfo, Engine, EngineConfig, Sink};
use switchyard_dataplane::io::{self, IoChoice, Tx, wake::Wake};

struct TestSink<'a> {
    tx: &'a mut dyn Tx,
    sent: &'a mut u64,
}

impl Sink for TestSink<'_> {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        self.tx.buffer()
    }
    fn commit(&mut self, len: usize, to: SocketAddr) {
        *self.sent += 1;
        self.tx.commit(len, to);
    }
    fn cross(&mut self, _: u16, _: CrossMessage, _: &[u8]) -> bool {
        true
    }
    fn exception(&mut self, _: u64, _: SocketAddr, _: &[u8]) -> bool {
        true
    }
    fn event(&mut self, _: Event) {}
    fn endpoint_changed(&mut self, _: u64, _: Option<EndpointInfo>) {}
}

fn scenario(choice: IoChoice) {
    // the counter sees this thread's allocations (so the check below can fail)
    let before = crate::allocations();
    let probe = std::hint::black_box(vec![0u8; 64]);
    assert!(crate::allocations() > before);
    drop(probe);
    let wake = Wake::new().unwrap();
    let socket = io::socket::bind_udp("127.0.0.1:0".parse().unwrap(), 4 << 20, 4 << 20).unwrap();
    let server = socket.local_addr().unwrap();
    let mut io = io::open(choice, socket, &wake, 64).unwrap();
    let mut engine = Engine::new(EngineConfig::default());
    let publisher = Peer::standalone(1, server);
    let subs: Vec<Peer> = (2..5).map(|id| Peer::standalone(id, server)).collect();
    let mut sent = 0u64;
    let t0 = Instant::now();
    {
        let mut sink = TestSink {
            tx: io.tx(),
            sent: &mut sent,
        };
        for p in std::iter::once(&publisher).chain(&subs) {
            engine.handle_command(t0, Command::AddEndpoint(p.spec()), &mut sink);
        }
        engine.handle_command(t0, Command::AddSource(source_spec(1)), &mut sink);
        for (i, s) in subs.iter().enumerate() {
            engine.handle_command(
                t0,
                Command::Subscribe(subscription(s.id, 0x50 + i as u32, 1)),
                &mut sink,
            );
        }
    }
    let mut publisher = Publisher::new(publisher);
    let mut run = |frames: u32,
                   publisher: &mut Publisher,
                   engine: &mut Engine,
                   io: &mut Box<dyn io::PacketIo>| {
        let mut packets = Vec::new();
        for f in 0..frames {
            let key = publisher.frame == 0;
            for k in 0..2 {
                let seq = publisher.seqs[1];
                publisher.seqs[1] = seq.wrapping_add(1);
                packets.push(publisher.packet(1, seq, k == 0, key && k == 0));
            }
            publisher.frame += 1;
            let _ = f;
        }
        let before = crate::allocations();
        let mut received = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        for chunk in packets.chunks(50) {
            for p in chunk {
                publisher.peer.send_raw(p);
            }
            let want = received + chunk.len();
            while received < want && Instant::now() < deadline {
                io.wait(Duration::from_millis(5)).unwrap();
                let now = Instant::now();
                io.drain(&mut |data, from, tx| {
                    received += 1;
                    let mut sink = TestSink {
                        tx,
                        sent: &mut sent,
                    };
                    engine.handle_datagram(now, from, data, &mut sink);
                })
                .unwrap();
                io.flush().unwrap();
            }
        }
        assert_eq!(received, packets.len(), "every datagram received");
        crate::allocations() - before
    };
    run(100, &mut publisher, &mut engine, &mut io);
    let allocated = run(1500, &mut publisher, &mut engine, &mut io);
    assert_eq!(
        allocated,
        0,
        "{} allocations on the packet path ({})",
        allocated,
        io.name()
    );
    assert!(sent >= 3 * 3200, "forwarded to three subscribers: {sent}");
}

#[test]
fn packet_path_allocates_nothing_mmsg() {
    scenario(IoChoice::Mmsg);
}

#[test]
fn packet_path_allocates_nothing_io_uring() {
    scenario(IoChoice::Uring);
}
