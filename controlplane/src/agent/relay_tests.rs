//! Two bridge agents joined by a relay (docs/cascading.md): one checks
//! from the ICE controlling side and is the DTLS client, the other answers
//! as it answers browsers. Datagrams are carried between them by hand.

use super::tests::spec;
use super::*;
use std::net::SocketAddr;
use std::time::Duration;

struct Side {
    agent: Agent,
    addr: SocketAddr,
    added: Option<switchyard_dataplane::abi::EndpointSpec>,
    connected: bool,
    failed: Option<String>,
}

impl Side {
    fn new(addr: &str) -> Side {
        Side {
            agent: Agent::new(Certificate::generate().unwrap()),
            addr: addr.parse().unwrap(),
            added: None,
            connected: false,
            failed: None,
        }
    }

    /// What it sends to `to`; the rest noted.
    fn outputs(&mut self, to: SocketAddr) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(o) = self.agent.poll() {
            match o {
                AgentOut::Send { header, data, .. } if header.remote == to => out.push(data),
                AgentOut::Send { .. } => panic!("sent elsewhere"),
                AgentOut::Dataplane {
                    command: Command::AddEndpoint(e),
                    ..
                } => self.added = Some(e),
                AgentOut::Dataplane { .. } => {}
                AgentOut::Up(FromAgent::Connected(_)) => self.connected = true,
                AgentOut::Up(FromAgent::Failed(_, why)) => self.failed = Some(why),
                AgentOut::Up(_) => {}
            }
        }
        out
    }

    fn take(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let header = PacketHeader {
            endpoint: 0,
            remote: from,
            local_port: self.addr.port(),
        };
        self.agent.handle_packet(now, 0, &header, data);
    }
}

/// Opens the two ends: `near` checks `far`.
fn relay(near: &mut Side, far: &mut Side, now: Instant) {
    let (near_ice, far_ice) = (Credentials::random(), Credentials::random());
    let near_spec = TransportSpec {
        local: near_ice.clone(),
        remote: far_ice.clone(),
        remote_fingerprint: far.agent.fingerprint(),
        // the far side is DTLS passive: we are the client
        remote_setup: Setup::Passive,
        peer: Some(far.addr),
        ..spec(100)
    };
    let far_spec = TransportSpec {
        local: far_ice,
        remote: near_ice,
        remote_fingerprint: near.agent.fingerprint(),
        remote_setup: Setup::Active,
        ..spec(200)
    };
    near.agent.handle(now, ToAgent::OpenTransport(near_spec));
    far.agent.handle(now, ToAgent::OpenTransport(far_spec));
}

/// Runs both sides for `steps` of 10 ms, carrying each datagram across
/// unless `drop` says to lose it.
fn run(
    near: &mut Side,
    far: &mut Side,
    t: &mut Instant,
    steps: usize,
    drop: impl Fn(&[u8]) -> bool,
) {
    for _ in 0..steps {
        *t += Duration::from_millis(10);
        near.agent.handle_timeout(*t);
        far.agent.handle_timeout(*t);
        for d in near.outputs(far.addr) {
            if !drop(&d) {
                far.take(*t, near.addr, &d);
            }
        }
        for d in far.outputs(near.addr) {
            if !drop(&d) {
                near.take(*t, far.addr, &d);
            }
        }
    }
}

#[test]
fn two_agents_connect_a_relay_with_keys_that_match_and_keep_it_alive() {
    let mut t = Instant::now();
    let (mut near, mut far) = (Side::new("10.0.0.1:10000"), Side::new("10.0.0.2:10000"));
    relay(&mut near, &mut far, t);
    run(&mut near, &mut far, &mut t, 100, |_| false);
    assert!(
        near.connected && far.connected,
        "{:?} {:?}",
        near.failed,
        far.failed
    );
    let (n, f) = (near.added.take().unwrap(), far.added.take().unwrap());
    assert_eq!((n.remote, f.remote), (far.addr, near.addr));
    // what one sends with, the other receives with
    assert_eq!(n.keys.tx.key(), f.keys.rx.key());
    assert_eq!(n.keys.rx.salt(), f.keys.tx.salt());
    // consent: 40 s on, both ends still up (the near side's checks keep
    // the far side's consent fresh)
    run(&mut near, &mut far, &mut t, 4000, |_| false);
    assert_eq!((&near.failed, &far.failed), (&None, &None));
    assert_eq!(far.agent.endpoint_count(), 1);
}

#[test]
fn a_relay_whose_far_side_never_answers_fails_and_says_so() {
    let mut t = Instant::now();
    let (mut near, mut far) = (Side::new("10.0.0.1:10000"), Side::new("10.0.0.2:10000"));
    relay(&mut near, &mut far, t);
    // every datagram lost
    run(&mut near, &mut far, &mut t, 1100, |_| true);
    let why = near.failed.expect("the checking side gives up");
    assert!(why.contains("no answer"), "{why}");
    assert!(!near.connected);
}
