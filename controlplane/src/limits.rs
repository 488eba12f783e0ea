//! Admission limits: participants per room, rooms, and a join rate (token
//! bucket), checked before any state is created. Sans-IO: time is passed in.

use crate::signalling::{ErrorCode, ProtocolError};
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            participants_per_room: 50,
            rooms: 1000,
            joins_per_second: 20.0,
            join_burst: 40.0,
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
        if let Some(last) = self.last {
            let refill =
                now.saturating_duration_since(last).as_secs_f64() * limits.joins_per_second;
            self.tokens = (self.tokens + refill).min(limits.join_burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(ProtocolError::new(
                ErrorCode::Limit,
                "joining too fast; retry in a moment",
            ))
        }
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
