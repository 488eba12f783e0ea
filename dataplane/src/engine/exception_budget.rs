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

use std::net::IpAddr;
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
    ip: Option<IpAddr>,
    tokens: f32,
    last: Instant,
}

/// Per-source-IP token buckets for the exception ring.
pub struct ExceptionBudget {
    slots: Box<[Slot]>,
}

impl ExceptionBudget {
    /// An empty table (allocated here, once).
    pub fn new(now: Instant) -> ExceptionBudget {
        ExceptionBudget {
            slots: vec![
                Slot {
                    ip: None,
                    tokens: BURST,
                    last: now,
                };
                SLOTS
            ]
            .into_boxed_slice(),
        }
    }

    /// Takes a token for a packet from `ip`; false when its budget is spent.
    pub fn admit(&mut self, now: Instant, ip: IpAddr) -> bool {
        let slot = &mut self.slots[slot_of(ip)];
        let elapsed = now.saturating_duration_since(slot.last).as_secs_f32();
        slot.tokens = (slot.tokens + elapsed * RATE).min(BURST);
        slot.last = now;
        if slot.ip != Some(ip) && slot.tokens >= BURST {
            // idle long enough to be full again: the slot is this IP's now
            slot.ip = Some(ip);
        }
        if slot.tokens >= 1.0 {
            slot.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn slot_of(ip: IpAddr) -> usize {
    // FNV-1a over the address bytes: cheap, and spreads neighbouring
    // addresses over the table.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match ip {
        IpAddr::V4(v4) => eat(&v4.octets()),
        IpAddr::V6(v6) => eat(&v6.octets()),
    }
    (h % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_flooding_ip_does_not_spend_another_s_budget() {
        let t = Instant::now();
        let mut b = ExceptionBudget::new(t);
        let flood: IpAddr = "192.0.2.66".parse().unwrap();
        let calm: IpAddr = "192.0.2.7".parse().unwrap();
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
    }
}
