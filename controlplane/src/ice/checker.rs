//! The controlling half of ICE, for a relay between two bridges
//! (docs/cascading.md): the far bridge is ICE-lite, as it is for browsers,
//! and its address is known (the focus has it from the far bridge's
//! registration), so there is nothing to gather — one candidate pair,
//! checked until it answers, nominated at once (`USE-CANDIDATE` on every
//! check, RFC 8445 §8.1.1 aggressive nomination, which a lite peer
//! accepts), then kept alive with consent checks (RFC 7675).
//!
//! Sans-IO: [`IceChecker::poll_transmit`] writes the next check when one is
//! due, [`IceChecker::handle_response`] takes the far side's answers,
//! [`IceChecker::handle_timeout`] notices silence; events say when the
//! pair is selected and when consent is lost.

use super::{CONSENT_TIMEOUT, Credentials, IceError};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_wire::stun::{MessageClass, StunMessage, StunWriter, attr, method};

/// Between checks while the pair has not answered yet (RFC 8445 Ta).
pub const CHECK_EVERY: Duration = Duration::from_millis(50);
/// Between transactions while connecting: a check unanswered this long is
/// sent again (a new transaction).
pub const RETRANSMIT: Duration = Duration::from_millis(250);
/// The pair never answered in this long: the relay failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Consent checks once connected (RFC 7675 §5.1: 5 s on average).
pub const CONSENT_EVERY: Duration = Duration::from_secs(5);
/// Priority of our (host) candidate, RFC 8445 §5.1.2.1 with type
/// preference 126, local preference 65535, component 1.
const PRIORITY: u32 = (126 << 24) | (65535 << 8) | (256 - 1);

/// What the checker tells its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckerEvent {
    /// The pair answered a nominating check: media and DTLS go to it.
    Selected(SocketAddr),
    /// No answer for 10 s before connecting, or for 30 s after (consent,
    /// RFC 7675): the relay is gone.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting { since: Instant },
    Connected,
    Failed,
}

/// One pair, checked from the controlling side.
pub struct IceChecker {
    local: Credentials,
    remote: Credentials,
    peer: SocketAddr,
    tie_breaker: u64,
    state: State,
    /// The check in flight: its transaction id and when it went.
    pending: Option<([u8; 12], Instant)>,
    next_check: Instant,
    last_answer: Option<Instant>,
    events: VecDeque<CheckerEvent>,
}

impl IceChecker {
    /// Checks `peer` with our `local` and its `remote` credentials, from
    /// `now`. `tie_breaker` is random (RFC 8445 §7.1.1; a lite peer never
    /// conflicts, but it is sent).
    pub fn new(
        local: Credentials,
        remote: Credentials,
        peer: SocketAddr,
        tie_breaker: u64,
        now: Instant,
    ) -> IceChecker {
        IceChecker {
            local,
            remote,
            peer,
            tie_breaker,
            state: State::Connecting { since: now },
            pending: None,
            next_check: now,
            last_answer: None,
            events: VecDeque::new(),
        }
    }

    /// The pair's remote address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the pair answered and is in use.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Writes the check due at `now` into `buf` with transaction id `txid`
    /// (random, from the caller): its length and where to send it, or
    /// `None` when nothing is due.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        txid: [u8; 12],
        buf: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        if self.state == State::Failed || now < self.next_check {
            return None;
        }
        let len = self.write_check(&txid, buf)?;
        self.pending = Some((txid, now));
        self.next_check = now
            + match self.state {
                State::Connected => CONSENT_EVERY,
                _ => RETRANSMIT.max(CHECK_EVERY),
            };
        Some((len, self.peer))
    }

    fn write_check(&self, txid: &[u8; 12], buf: &mut [u8]) -> Option<usize> {
        let request = MessageClass::Request.message_type(method::BINDING);
        let mut w = StunWriter::new(buf, request, txid).ok()?;
        // RFC 8445 §7.2.2: the peer's ufrag, then ours
        let username = format!("{}:{}", self.remote.ufrag, self.local.ufrag);
        w.add(attr::USERNAME, username.as_bytes()).ok()?;
        w.add_u32(attr::PRIORITY, PRIORITY).ok()?;
        w.add_u64(attr::ICE_CONTROLLING, self.tie_breaker).ok()?;
        w.add(attr::USE_CANDIDATE, &[]).ok()?;
        w.add_message_integrity(self.remote.pwd.as_bytes()).ok()?;
        w.add_fingerprint().ok()?;
        Some(w.finish())
    }

    /// A STUN datagram from `from`: the answer to our check, if it is one
    /// (success, from the peer, our transaction, signed with the peer's
    /// password).
    pub fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), IceError> {
        let msg = StunMessage::new_checked(data).map_err(IceError::NotStun)?;
        if msg.method() != method::BINDING
            || !matches!(msg.class(), MessageClass::Success | MessageClass::Error)
        {
            return Err(IceError::NotBindingRequest);
        }
        msg.verify_fingerprint()
            .map_err(|_| IceError::Fingerprint)?;
        let Some((txid, _)) = self.pending else {
            return Err(IceError::Unauthorized);
        };
        if from != self.peer || msg.transaction_id() != txid {
            return Err(IceError::Unauthorized);
        }
        msg.verify_integrity(self.remote.pwd.as_bytes())
            .map_err(|_| IceError::Unauthorized)?;
        self.pending = None;
        if msg.class() == MessageClass::Error {
            // (a lite peer answers 487 only if it thinks itself
            // controlling, which it never does; any error: try again)
            return Err(IceError::RoleConflict);
        }
        self.last_answer = Some(now);
        if let State::Connecting { .. } = self.state {
            self.state = State::Connected;
            self.next_check = now + CONSENT_EVERY;
            self.events.push_back(CheckerEvent::Selected(self.peer));
        }
        Ok(())
    }

    /// Notices a pair that stopped answering.
    pub fn handle_timeout(&mut self, now: Instant) {
        let failed = match self.state {
            State::Connecting { since } => now.saturating_duration_since(since) >= CONNECT_TIMEOUT,
            State::Connected => self
                .last_answer
                .is_some_and(|t| now.saturating_duration_since(t) >= CONSENT_TIMEOUT),
            State::Failed => false,
        };
        if failed {
            self.state = State::Failed;
            self.pending = None;
            self.events.push_back(CheckerEvent::Failed);
        }
    }

    /// When to call [`IceChecker::poll_transmit`] / `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Failed => None,
            State::Connecting { since } => Some(self.next_check.min(since + CONNECT_TIMEOUT)),
            State::Connected => {
                let lapse = self.last_answer.map(|t| t + CONSENT_TIMEOUT);
                Some(lapse.map_or(self.next_check, |l| l.min(self.next_check)))
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CheckerEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::super::IceLite;
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A checker against a real ICE-lite agent: the far bridge.
    fn pair(now: Instant) -> (IceChecker, IceLite, SocketAddr, SocketAddr) {
        let (near, far) = (Credentials::random(), Credentials::random());
        let mut lite = IceLite::new(far.clone());
        lite.set_remote(near.clone());
        let (near_addr, far_addr) = (addr("10.0.0.1:10000"), addr("10.0.0.2:10000"));
        let checker = IceChecker::new(near, far, far_addr, 7, now);
        (checker, lite, near_addr, far_addr)
    }

    #[test]
    fn a_lite_peer_answers_and_the_pair_is_selected_then_kept_with_consent_checks() {
        let t = Instant::now();
        let (mut c, mut lite, near, far) = pair(t);
        let mut buf = [0u8; 512];
        let (n, to) = c.poll_transmit(t, [1; 12], &mut buf).unwrap();
        assert_eq!(to, far);
        // nothing more until the retransmission time
        assert!(c.poll_transmit(t, [2; 12], &mut [0u8; 512]).is_none());
        let mut out = [0u8; 512];
        let resp = lite
            .handle(t, near, &buf[..n], &mut out)
            .expect("the lite side accepts the check");
        assert_eq!(
            lite.poll_event(),
            Some(crate::ice::IceEvent::Selected(near))
        );
        c.handle_response(t, far, &out[..resp.len]).unwrap();
        assert_eq!(c.poll_event(), Some(CheckerEvent::Selected(far)));
        assert!(c.is_connected());
        // the next check is a consent check, 5 s later
        assert!(
            c.poll_transmit(t + Duration::from_secs(4), [3; 12], &mut buf)
                .is_none()
        );
        let later = t + CONSENT_EVERY;
        let (n, _) = c.poll_transmit(later, [4; 12], &mut buf).unwrap();
        let resp = lite.handle(later, near, &buf[..n], &mut out).unwrap();
        c.handle_response(later, far, &out[..resp.len]).unwrap();
        c.handle_timeout(later + CONSENT_TIMEOUT - Duration::from_millis(1));
        assert_eq!(c.poll_event(), None, "consent refreshed");
        c.handle_timeout(later + CONSENT_TIMEOUT);
        assert_eq!(c.poll_event(), Some(CheckerEvent::Failed));
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn forged_stale_or_misdirected_answers_are_refused() {
        let t = Instant::now();
        let (mut c, mut lite, near, far) = pair(t);
        let mut buf = [0u8; 512];
        let (n, _) = c.poll_transmit(t, [1; 12], &mut buf).unwrap();
        let mut out = [0u8; 512];
        let resp = lite.handle(t, near, &buf[..n], &mut out).unwrap();
        let answer = out[..resp.len].to_vec();
        // from elsewhere
        assert!(c.handle_response(t, addr("10.9.9.9:1"), &answer).is_err());
        // signed with another password
        let (mut other, ..) = pair(t);
        let mut forged = [0u8; 512];
        let (m, _) = other.poll_transmit(t, [1; 12], &mut forged).unwrap();
        assert!(c.handle_response(t, far, &forged[..m]).is_err());
        // garbage
        assert!(c.handle_response(t, far, b"not stun at all").is_err());
        assert!(!c.is_connected());
        // the genuine one still counts, once
        c.handle_response(t, far, &answer).unwrap();
        assert!(c.handle_response(t, far, &answer).is_err(), "a replay");
        assert!(c.is_connected());
    }

    #[test]
    fn a_silent_peer_fails_the_relay_after_the_connect_timeout() {
        let t = Instant::now();
        let (mut c, ..) = pair(t);
        let mut buf = [0u8; 512];
        let mut sent = 0;
        let mut now = t;
        while now < t + CONNECT_TIMEOUT {
            if c.poll_transmit(now, [sent as u8; 12], &mut buf).is_some() {
                sent += 1;
            }
            c.handle_timeout(now);
            now += CHECK_EVERY;
        }
        c.handle_timeout(now);
        assert_eq!(c.poll_event(), Some(CheckerEvent::Failed));
        // a check every 250 ms for 10 s
        assert!((39..=41).contains(&sent), "{sent}");
    }
}
