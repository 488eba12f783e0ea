//! A budget on what one source address may put into the exception ring.
//!
//! STUN and DTLS from addresses that are not yet endpoints go to the control
//! plane through one ring per worker. Without a bound, one host sending
//! checks as fast as it can (from as many ports as it likes) fills that ring
//! and starves everyone else's handshakes. Each source IP gets a token bucket
//! in a fixed table (allocated once; nothing per packet): the IP's slot is
//! found by hash, an idle slot is taken over, and two active IPs that share
//! a slot share its budget. Packets from known endpoints are never charged,
//! so consent checks of calls in progress always get through.
//!
//! The ICE-TCP front is the one source keyed by address *and* port: each of
//! its connections reaches the worker from its own port, and one flooding
//! TCP peer must not spend every other TCP peer's budget.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Slots in the table.
const SLOTS: usize = 1024;
/// Sustained exception packets per second per source IP: many participants
/// behind one NAT each send a check or two a second and about ten DTLS
/// packets once.
pub const RATE: f32 = 200.0;
/// Packets a source IP may send at once.
pub const BURST: f32 = 400.0;

#[derive(Clone, Copy)]
struct Slot {
    key: Option<SocketAddr>,
    tokens: f32,
    last: Instant,
}

/// Per-source-IP token buckets for the exception ring.
pub struct ExceptionBudget {
    slots: Box<[Slot]>,
    tcp_front: Option<IpAddr>,
}

impl ExceptionBudget {
    /// An empty table (allocated here, once).
    pub fn new(now: Instant, tcp_front: Option<IpAddr>) -> ExceptionBudget {
        ExceptionBudget {
            tcp_front,
            slots: vec![
                Slot {
                    key: None,
                    tokens: BURST,
                    last: now,
                };
                SLOTS
            ]
            .into_boxed_slice(),
        }
    }

    /// Takes a token for a packet from `from`; false when its budget is
    /// spent.
    pub fn admit(&mut self, now: Instant, from: SocketAddr) -> bool {
        let key = if Some(from.ip()) == self.tcp_front {
            from
        } else {
            SocketAddr::new(from.ip(), 0)
        };
        let slot = &mut self.slots[slot_of(key)];
        let elapsed = now.saturating_duration_since(slot.last).as_secs_f32();
        slot.tokens = (slot.tokens + elapsed * RATE).min(BURST);
        slot.last = now;
        if slot.key != Some(key) && slot.tokens >= BURST {
            // idle long enough to be full again: the slot is this key's now
            slot.key = Some(key);
        }
        if slot.tokens >= 1.0 {
            slot.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn slot_of(key: SocketAddr) -> usize {
    (crate::addr_hash::addr_hash(key) % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_flooding_ip_does_not_spend_another_s_budget() {
        let t = Instant::now();
        let mut b = ExceptionBudget::new(t, None);
        let flood: SocketAddr = "192.0.2.66:5000".parse().unwrap();
        let calm: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        assert_ne!(slot_of(flood), slot_of(calm));
        // 50 000 packets in one second from the flooder
        let admitted = (0..50_000)
            .filter(|i| b.admit(t + Duration::from_micros(i * 20), flood))
            .count();
        assert!(
            admitted <= (BURST + RATE) as usize + 1,
            "admitted {admitted} of a flood"
        );
        // the other address still gets every packet of a handshake
        for i in 0..20 {
            assert!(b.admit(t + Duration::from_millis(1000 + i), calm));
        }
        // and the flooder gets its sustained rate back over time
        assert!(b.admit(t + Duration::from_secs(3), flood));
        // another port of the flooder shares its budget
        let t = t + Duration::from_secs(3);
        let other_port: SocketAddr = "192.0.2.66:5001".parse().unwrap();
        let admitted = (0..50_000)
            .filter(|i| {
                let at = t + Duration::from_micros(i * 20);
                b.admit(at, flood) | b.admit(at, other_port)
            })
            .count();
        assert!(admitted <= (BURST + RATE) as usize + 1);
    }

    #[test]
    fn each_ice_tcp_connection_has_a_budget_of_its_own() {
        let t = Instant::now();
        let front: IpAddr = "127.0.0.1".parse().unwrap();
        let mut b = ExceptionBudget::new(t, Some(front));
        let flood = SocketAddr::new(front, 40000);
        let calm = SocketAddr::new(front, 40001);
        let admitted = (0..50_000)
            .filter(|i| b.admit(t + Duration::from_micros(i * 20), flood))
            .count();
        assert!(admitted <= (BURST + RATE) as usize + 1);
        for i in 0..20 {
            assert!(b.admit(t + Duration::from_millis(1000 + i), calm));
        }
    }
}
