//! Admission limits: participants per room, rooms, and a join rate (token
//! bucket), checked before any state is created. Sans-IO: time is passed in.

use crate::signalling::{ErrorCode, ProtocolError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Configured limits; see `Default`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Participants in one room (default 50).
    pub participants_per_room: usize,
    /// Rooms on this server (default 1000).
    pub rooms: usize,
    /// Sustained joins per second (default 20).
    pub joins_per_second: f64,
    /// Burst of joins allowed at once (default 40).
    pub join_burst: f64,
    /// Open signalling connections on this server (default 10000).
    pub connections: usize,
    /// Open signalling connections from one client address (an IPv6 /64
    /// counts as one address; default 100).
    pub connections_per_address: usize,
    /// Sustained joins per second from one client address (default 5,
    /// burst twice that).
    pub joins_per_second_per_address: f64,
    /// Time a new connection has to join a room before it is closed
    /// (default 10 s).
    pub join_deadline: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            participants_per_room: 50,
            rooms: 1000,
            joins_per_second: 20.0,
            join_burst: 40.0,
            connections: 10_000,
            connections_per_address: 100,
            joins_per_second_per_address: 5.0,
            join_deadline: std::time::Duration::from_secs(10),
        }
    }
}

/// A token bucket for joins.
#[derive(Debug, Clone)]
pub struct JoinRate {
    tokens: f64,
    last: Option<Instant>,
}

impl JoinRate {
    /// A full bucket.
    pub fn new(limits: &Limits) -> JoinRate {
        JoinRate {
            tokens: limits.join_burst,
            last: None,
        }
    }

    /// Takes a token for one join, or refuses with `limit`.
    pub fn admit(&mut self, now: Instant, limits: &Limits) -> Result<(), ProtocolError> {
        self.take(now, limits.joins_per_second, limits.join_burst)
            .map_err(|()| {
                ProtocolError::new(ErrorCode::Limit, "joining too fast; retry in a moment")
            })
    }

    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> Result<(), ()> {
        self.refill(now, rate, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(())
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * rate;
            self.tokens = (self.tokens + refill).min(burst);
        }
        self.last = Some(now);
    }
}

/// The key a client address is counted under: the address itself for IPv4,
/// its /64 for IPv6 (one host usually holds a whole /64).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
        },
    }
}

/// Why a connection was refused before it became a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The client's address has this many connections open already.
    #[error("too many connections from your address (at most {0})")]
    Address(usize),
    /// The server has this many connections open already.
    #[error("this server has too many connections (at most {0})")]
    Server(usize),
}

#[derive(Debug)]
struct AddressState {
    connections: usize,
    joins: JoinRate,
}

/// Connections and joins per client address, and connections in all.
/// Sans-IO: the caller passes the time. An address's entry lives while it
/// has a connection open or its join bucket is still refilling, so memory
/// is bounded by the addresses active in the last few seconds.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    addresses: HashMap<IpAddr, AddressState>,
    connections: usize,
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            addresses: HashMap::new(),
            connections: 0,
        }
    }

    /// A new connection from `ip`, or why not.
    pub fn connect(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        self.prune(now);
        if self.connections >= self.limits.connections {
            return Err(Refusal::Server(self.limits.connections));
        }
        let burst = self.per_address_burst();
        let entry = self
            .addresses
            .entry(address_key(ip))
            .or_insert_with(|| AddressState {
                connections: 0,
                joins: JoinRate {
                    tokens: burst,
                    last: None,
                },
            });
        if entry.connections >= self.limits.connections_per_address {
            return Err(Refusal::Address(self.limits.connections_per_address));
        }
        entry.connections += 1;
        self.connections += 1;
        Ok(())
    }

    /// A connection from `ip` closed.
    pub fn disconnect(&mut self, ip: IpAddr) {
        if let Some(e) = self.addresses.get_mut(&address_key(ip))
            && e.connections > 0
        {
            e.connections -= 1;
            self.connections = self.connections.saturating_sub(1);
        }
    }

    /// Takes one of `ip`'s join tokens, or refuses with `limit`. Checked
    /// before the server-wide rate, so one address cannot spend it all.
    pub fn join(&mut self, ip: IpAddr, now: Instant) -> Result<(), ProtocolError> {
        let (rate, burst) = (
            self.limits.joins_per_second_per_address,
            self.per_address_burst(),
        );
        let Some(e) = self.addresses.get_mut(&address_key(ip)) else {
            return Err(ProtocolError::new(ErrorCode::Internal, "no connection"));
        };
        e.joins.take(now, rate, burst).map_err(|()| {
            ProtocolError::new(
                ErrorCode::Limit,
                "joining too fast from your address; retry in a moment",
            )
        })
    }

    /// Open connections: in all, and addresses tracked.
    pub fn counts(&self) -> (usize, usize) {
        (self.connections, self.addresses.len())
    }

    fn per_address_burst(&self) -> f64 {
        (2.0 * self.limits.joins_per_second_per_address).max(1.0)
    }

    /// Forgets addresses with no connection whose bucket is full again.
    fn prune(&mut self, now: Instant) {
        if self.addresses.len() < 64 {
            return;
        }
        let (rate, burst) = (
            self.limits.joins_per_second_per_address,
            self.per_address_burst(),
        );
        self.addresses.retain(|_, e| {
            e.joins.refill(now, rate, burst);
            e.connections > 0 || e.joins.tokens < burst
        });
    }
}

/// Checks room and participant counts for a join into a room that has
/// `in_room` participants (`None`: the room does not exist yet) while the
/// server has `rooms` rooms.
pub fn check_capacity(
    limits: &Limits,
    rooms: usize,
    in_room: Option<usize>,
) -> Result<(), ProtocolError> {
    match in_room {
        None if rooms >= limits.rooms => Err(ProtocolError::new(
            ErrorCode::Limit,
            "too many rooms on this server",
        )),
        Some(n) if n >= limits.participants_per_room => Err(ProtocolError::new(
            ErrorCode::Limit,
            format!("room is full ({n} participants)"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let l = Limits {
            joins_per_second: 10.0,
            join_burst: 3.0,
            ..Limits::default()
        };
        let mut r = JoinRate::new(&l);
        let t = Instant::now();
        for _ in 0..3 {
            r.admit(t, &l).unwrap();
        }
        assert_eq!(r.admit(t, &l).unwrap_err().code, ErrorCode::Limit);
        r.admit(t + Duration::from_millis(110), &l).unwrap();
        assert!(r.admit(t + Duration::from_millis(120), &l).is_err());
    }

    #[test]
    fn one_address_cannot_take_everyone_s_places() {
        let l = Limits {
            connections: 6,
            connections_per_address: 3,
            joins_per_second_per_address: 1.0,
            ..Limits::default()
        };
        let mut a = Admission::new(l);
        let t = Instant::now();
        let bad: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2::99".parse().unwrap();
        let good: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..3 {
            a.connect(bad, t).unwrap();
        }
        assert_eq!(a.connect(same_64, t), Err(Refusal::Address(3)));
        a.connect(good, t).unwrap();
        // joins: a burst of two per address, then one a second
        a.join(bad, t).unwrap();
        a.join(bad, t).unwrap();
        assert_eq!(a.join(bad, t).unwrap_err().code, ErrorCode::Limit);
        a.join(good, t).unwrap();
        a.join(bad, t + Duration::from_millis(1100)).unwrap();
        // closing frees places; the server-wide cap still holds
        a.disconnect(bad);
        a.connect(same_64, t).unwrap();
        a.connect(good, t).unwrap();
        a.connect(good, t).unwrap();
        assert_eq!(a.counts().0, 6);
        assert_eq!(
            a.connect("192.0.2.10".parse().unwrap(), t),
            Err(Refusal::Server(6))
        );
        assert_eq!(
            address_key("::ffff:192.0.2.9".parse().unwrap()),
            good,
            "a mapped IPv4 address is that address"
        );
    }

    #[test]
    fn addresses_are_forgotten_once_idle() {
        let mut a = Admission::new(Limits::default());
        let t = Instant::now();
        for i in 0..200u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            a.connect(ip, t).unwrap();
            a.join(ip, t).unwrap();
            a.disconnect(ip);
        }
        assert_eq!(a.counts(), (0, 200));
        // later, one more connection sweeps the idle, refilled entries
        a.connect("192.0.2.1".parse().unwrap(), t + Duration::from_secs(5))
            .unwrap();
        assert_eq!(a.counts(), (1, 1));
    }

    #[test]
    fn capacity() {
        let l = Limits {
            participants_per_room: 2,
            rooms: 1,
            ..Limits::default()
        };
        assert!(check_capacity(&l, 0, None).is_ok());
        assert!(check_capacity(&l, 1, None).is_err());
        assert!(check_capacity(&l, 1, Some(1)).is_ok());
        assert_eq!(
            check_capacity(&l, 1, Some(2)).unwrap_err().code,
            ErrorCode::Limit
        );
    }
}
