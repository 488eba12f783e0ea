//! The ICE-lite agent of one transport.

use super::Credentials;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_wire::WireError;
use switchyard_wire::stun::{MessageClass, StunMessage, StunWriter, attr, method};
use thiserror::Error;

/// RFC 7675 §5.1: consent expires 30 s after the last valid check.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most candidate pairs remembered per transport (a browser has a handful).
const MAX_PAIRS: usize = 16;
/// Most credential generations answered at once: the current one and the
/// last few an ICE restart replaced (see [`IceLite::restart`]).
pub const MAX_GENERATIONS: usize = 4;

/// Why a datagram was not answered with a success response.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceError {
    /// Not a STUN message (or malformed).
    #[error("not a STUN message: {0}")]
    NotStun(WireError),
    /// A STUN message other than a binding request; nothing to do.
    #[error("not a binding request")]
    NotBindingRequest,
    /// FINGERPRINT missing or wrong (RFC 8445 §7.3: required).
    #[error("bad or missing FINGERPRINT")]
    Fingerprint,
    /// USERNAME or MESSAGE-INTEGRITY missing (answered with 400).
    #[error("USERNAME or MESSAGE-INTEGRITY missing")]
    BadRequest,
    /// Wrong ufrag or MESSAGE-INTEGRITY (answered with 401).
    #[error("wrong credentials")]
    Unauthorized,
    /// The peer also claims the controlled role (answered with 487).
    #[error("role conflict")]
    RoleConflict,
    /// Unknown comprehension-required attribute (answered with 420).
    #[error("unknown comprehension-required attribute")]
    UnknownAttribute,
}

/// What to send back, if anything: a response of `len` bytes to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Length of the response written into the caller's buffer.
    pub len: usize,
    /// Where to send it (the request's source).
    pub to: SocketAddr,
}

/// Something the control plane must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceEvent {
    /// The controlling agent nominated this remote address: push it to the
    /// dataplane (AddEndpoint / UpdateRemote).
    Selected(SocketAddr),
    /// No valid check on the selected pair for [`CONSENT_TIMEOUT`]: the
    /// transport is dead (RFC 7675 §5.1).
    ConsentExpired(SocketAddr),
}

#[derive(Debug, Clone, Copy)]
struct Pair {
    remote: SocketAddr,
    last_valid: Instant,
}

/// The credentials one offer/answer exchange set, both ways.
#[derive(Debug)]
struct Generation {
    local: Credentials,
    remote: Option<Credentials>,
}

/// The ICE-lite state of one transport (one PeerConnection with BUNDLE).
#[derive(Debug)]
pub struct IceLite {
    /// Oldest first; the last is the current one. Never empty.
    generations: Vec<Generation>,
    pairs: Vec<Pair>,
    selected: Option<SocketAddr>,
    expired: bool,
    /// Media that authenticates arrives on the selected pair (the
    /// dataplane's word): it renews consent as a check would.
    media_flowing: bool,
    events: Vec<IceEvent>,
}

impl IceLite {
    /// An agent answering with these local credentials.
    pub fn new(local: Credentials) -> IceLite {
        IceLite {
            generations: vec![Generation {
                local,
                remote: None,
            }],
            pairs: Vec::new(),
            selected: None,
            expired: false,
            media_flowing: false,
            events: Vec::new(),
        }
    }

    /// Whether media that authenticates (SRTP or SRTCP with this
    /// transport's keys) is arriving on the selected pair, as the dataplane
    /// reports it (an endpoint idle for 5 s is not). While it is, consent
    /// does not expire: an ICE stack that keeps a pair alive with binding
    /// indications (libnice's default) sends no checks to an ICE-lite side,
    /// and the keys prove the peer as a check's integrity would.
    pub fn set_media_flowing(&mut self, flowing: bool) {
        self.media_flowing = flowing;
    }

    /// Our credentials (for the SDP answer).
    pub fn local(&self) -> &Credentials {
        &self.current().local
    }

    fn current(&self) -> &Generation {
        self.generations.last().expect("never empty")
    }

    /// The remote credentials from the offer; requests must name the remote
    /// ufrag once they are known.
    pub fn set_remote(&mut self, remote: Credentials) {
        self.generations.last_mut().expect("never empty").remote = Some(remote);
    }

    /// ICE restart (RFC 8445 §9): new credentials both ways; the selected
    /// pair stays usable (its consent clock running on) until a new one is
    /// nominated, so a restart that does not finish ends the way consent
    /// does, 30 s after the last valid check.
    ///
    /// Checks with the credentials of the generations before stay answered
    /// (up to `MAX_GENERATIONS` in all) until one of this or a later
    /// generation nominates a pair: the browser keeps checking its older
    /// pairs with their own credentials, and after a network change it may
    /// nominate one of those — found on the new network by a restart
    /// that a later one replaced — before the newest restart has finished.
    /// Refusing them would throw that path away and leave media off until
    /// the newest generation is checked through.
    pub fn restart(&mut self, local: Credentials, remote: Credentials) {
        self.generations.push(Generation {
            local,
            remote: Some(remote),
        });
        if self.generations.len() > MAX_GENERATIONS {
            self.generations.remove(0);
        }
        let selected = self.selected;
        self.pairs.retain(|p| Some(p.remote) == selected);
    }

    /// Whether checks naming `ufrag` as ours are answered (it is the
    /// current or a still accepted earlier generation's).
    pub fn answers_ufrag(&self, ufrag: &str) -> bool {
        self.generations.iter().any(|g| g.local.ufrag == ufrag)
    }

    /// Carries on with `addr` selected, as a control plane before a restart
    /// had it; its consent clock starts at `now`.
    pub fn resume_selected(&mut self, addr: SocketAddr, now: Instant) {
        self.pairs.retain(|p| p.remote != addr);
        self.pairs.push(Pair {
            remote: addr,
            last_valid: now,
        });
        self.selected = Some(addr);
        self.expired = false;
    }

    /// The remote credentials, once the offer gave them.
    pub fn remote(&self) -> Option<&Credentials> {
        self.current().remote.as_ref()
    }

    /// Whether `addr` has passed a valid connectivity check.
    pub fn verified(&self, addr: SocketAddr) -> bool {
        self.pairs.iter().any(|p| p.remote == addr)
    }

    /// The nominated remote address.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Handles a datagram from `from`. On a valid binding request writes the
    /// success response into `out`; on a bad one writes the error response
    /// RFC 8489 asks for (when there is one) and returns the error with it.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<Response, (IceError, Option<Response>)> {
        let msg = StunMessage::new_checked(data).map_err(|e| (IceError::NotStun(e), None))?;
        if msg.class() != MessageClass::Request || msg.method() != method::BINDING {
            return Err((IceError::NotBindingRequest, None));
        }
        let txid = msg.transaction_id();
        let error = |code: u16, reason: &str, e: IceError, out: &mut [u8]| {
            let r = error_response(out, &txid, code, reason).map(|len| Response { len, to: from });
            Err((e, r))
        };
        if msg.verify_fingerprint().is_err() {
            return Err((IceError::Fingerprint, None));
        }
        if let Some(a) = msg
            .attributes()
            .find(|a| attr::comprehension_required(a.kind) && !known(a.kind))
        {
            let _ = a;
            return error(420, "Unknown Attribute", IceError::UnknownAttribute, out);
        }
        let (Some(username), true) = (
            msg.username(),
            msg.attribute(attr::MESSAGE_INTEGRITY).is_some(),
        ) else {
            return error(400, "Bad Request", IceError::BadRequest, out);
        };
        // USERNAME is "<our ufrag>:<their ufrag>" (RFC 8445 §7.2.2)
        let (ours, theirs) = username.split_once(':').unwrap_or((username, ""));
        let Some(mut generation) = self.generations.iter().position(|g| {
            g.local.ufrag == ours && g.remote.as_ref().is_none_or(|r| r.ufrag == theirs)
        }) else {
            return error(401, "Unauthorized", IceError::Unauthorized, out);
        };
        if msg
            .verify_integrity(self.generations[generation].local.pwd.as_bytes())
            .is_err()
        {
            return error(401, "Unauthorized", IceError::Unauthorized, out);
        }
        if msg.attribute(attr::ICE_CONTROLLED).is_some() {
            // we are lite and therefore controlled: the peer must control
            return error(487, "Role Conflict", IceError::RoleConflict, out);
        }
        // a valid check: consent for this pair (RFC 7675 §5.1)
        self.consent(from, now);
        if msg.attribute(attr::USE_CANDIDATE).is_some() {
            // this generation is in use: the ones before it are done
            self.generations.drain(..generation);
            generation = 0;
            if self.selected != Some(from) {
                self.selected = Some(from);
                self.expired = false;
                self.events.push(IceEvent::Selected(from));
            }
        }
        let key = self.generations[generation].local.pwd.as_bytes();
        let len =
            success_response(out, &txid, from, key).map_err(|e| (IceError::NotStun(e), None))?;
        Ok(Response { len, to: from })
    }

    /// Consent for the pair with `remote` at `now`.
    fn consent(&mut self, remote: SocketAddr, now: Instant) {
        match self.pairs.iter_mut().find(|p| p.remote == remote) {
            Some(p) => p.last_valid = now,
            None => {
                if self.pairs.len() >= MAX_PAIRS {
                    self.pairs.sort_by_key(|p| p.last_valid);
                    self.pairs.remove(0);
                }
                self.pairs.push(Pair {
                    remote,
                    last_valid: now,
                });
            }
        }
    }

    /// Checks consent; call at least every few seconds.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(sel) = self.selected else { return };
        let fresh = self
            .pairs
            .iter()
            .find(|p| p.remote == sel)
            .map(|p| p.last_valid);
        let expired = fresh.is_none_or(|t| now.saturating_duration_since(t) >= CONSENT_TIMEOUT);
        if expired && self.media_flowing && !self.expired {
            self.consent(sel, now);
            return;
        }
        if expired && !self.expired {
            self.expired = true;
            self.events.push(IceEvent::ConsentExpired(sel));
        }
    }

    /// When consent on the selected pair would expire.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sel = self.selected?;
        self.pairs
            .iter()
            .find(|p| p.remote == sel)
            .map(|p| p.last_valid + CONSENT_TIMEOUT)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }
}

/// Attributes this agent understands in a binding request.
fn known(kind: u16) -> bool {
    matches!(
        kind,
        attr::USERNAME
            | attr::MESSAGE_INTEGRITY
            | attr::PRIORITY
            | attr::USE_CANDIDATE
            | attr::FINGERPRINT
    ) || kind == attr::MESSAGE_INTEGRITY_SHA256
}

fn success_response(
    out: &mut [u8],
    txid: &[u8; 12],
    to: SocketAddr,
    key: &[u8],
) -> Result<usize, WireError> {
    let mut w = StunWriter::new(
        out,
        MessageClass::Success.message_type(method::BINDING),
        txid,
    )?;
    w.add_xor_mapped_address(to)?;
    w.add_message_integrity(key)?;
    w.add_fingerprint()?;
    Ok(w.finish())
}

fn error_response(out: &mut [u8], txid: &[u8; 12], code: u16, reason: &str) -> Option<usize> {
    let mut w =
        StunWriter::new(out, MessageClass::Error.message_type(method::BINDING), txid).ok()?;
    w.add_error_code(code, reason).ok()?;
    w.add_fingerprint().ok()?;
    Some(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_wire::stun::read_xor_address;

    fn creds(u: &str) -> Credentials {
        Credentials {
            ufrag: u.into(),
            pwd: format!("{u}-password-0123456789abc"),
        }
    }

    /// A browser's binding request.
    fn request(user: &str, key: &[u8], nominate: bool, extra: Option<u16>) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, 0x0001, &[7; 12]).unwrap();
        w.add(attr::USERNAME, user.as_bytes()).unwrap();
        w.add_u32(attr::PRIORITY, 1_845_501_695).unwrap();
        w.add_u64(extra.unwrap_or(attr::ICE_CONTROLLING), 99)
            .unwrap();
        if nominate {
            w.add(attr::USE_CANDIDATE, &[]).unwrap();
        }
        w.add_message_integrity(key).unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        buf[..n].to_vec()
    }

    fn error_code(resp: &[u8]) -> u16 {
        let m = StunMessage::new_checked(resp).unwrap();
        let v = m.attribute(attr::ERROR_CODE).unwrap().value;
        u16::from(v[2]) * 100 + u16::from(v[3])
    }

    #[test]
    fn answers_checks_and_reports_nomination() {
        let (local, remote) = (creds("sfu1"), creds("brws"));
        let mut ice = IceLite::new(local.clone());
        ice.set_remote(remote);
        let t = Instant::now();
        let from: SocketAddr = "192.0.2.7:50000".parse().unwrap();
        let mut out = [0u8; 256];
        let r = ice
            .handle(
                t,
                from,
                &request("sfu1:brws", local.pwd.as_bytes(), false, None),
                &mut out,
            )
            .unwrap();
        let resp = StunMessage::new_checked(&out[..r.len]).unwrap();
        assert_eq!(resp.class(), MessageClass::Success);
        resp.verify_integrity(local.pwd.as_bytes()).unwrap();
        resp.verify_fingerprint().unwrap();
        let xma = resp.attribute(attr::XOR_MAPPED_ADDRESS).unwrap().value;
        assert_eq!(read_xor_address(xma, &[7; 12]).unwrap(), from);
        assert_eq!(ice.poll_event(), None);
        ice.handle(
            t,
            from,
            &request("sfu1:brws", local.pwd.as_bytes(), true, None),
            &mut out,
        )
        .unwrap();
        assert_eq!(ice.poll_event(), Some(IceEvent::Selected(from)));
        assert_eq!(ice.selected(), Some(from));
        // nominating the same pair again is not news
        ice.handle(
            t,
            from,
            &request("sfu1:brws", local.pwd.as_bytes(), true, None),
            &mut out,
        )
        .unwrap();
        assert_eq!(ice.poll_event(), None);
    }

    #[test]
    fn wrong_credentials_and_roles_get_error_responses() {
        let local = creds("sfu1");
        let mut ice = IceLite::new(local.clone());
        ice.set_remote(creds("brws"));
        let (t, from) = (Instant::now(), "192.0.2.7:1".parse().unwrap());
        let mut out = [0u8; 256];
        for (req, want, code) in [
            (
                request("sfu1:brws", b"wrong-password", true, None),
                IceError::Unauthorized,
                401,
            ),
            (
                request("xxxx:brws", local.pwd.as_bytes(), true, None),
                IceError::Unauthorized,
                401,
            ),
            (
                request("sfu1:other", local.pwd.as_bytes(), true, None),
                IceError::Unauthorized,
                401,
            ),
            (
                request(
                    "sfu1:brws",
                    local.pwd.as_bytes(),
                    true,
                    Some(attr::ICE_CONTROLLED),
                ),
                IceError::RoleConflict,
                487,
            ),
            (
                request("sfu1:brws", local.pwd.as_bytes(), true, Some(0x0077)),
                IceError::UnknownAttribute,
                420,
            ),
        ] {
            let (e, resp) = ice.handle(t, from, &req, &mut out).unwrap_err();
            assert_eq!(e, want);
            let resp = resp.expect("an error response");
            assert_eq!(error_code(&out[..resp.len]), code);
        }
        assert_eq!(ice.selected(), None, "no bad request nominated anything");
        // a corrupted fingerprint is dropped silently; garbage is not STUN
        let mut bad = request("sfu1:brws", local.pwd.as_bytes(), true, None);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            ice.handle(t, from, &bad, &mut out).unwrap_err(),
            (IceError::Fingerprint, None)
        );
        assert!(matches!(
            ice.handle(t, from, b"\x16\xfe\xfd garbage", &mut out),
            Err((IceError::NotStun(_), None))
        ));
    }

    #[test]
    fn mutated_requests_never_panic_or_nominate() {
        let local = creds("sfu1");
        let mut ice = IceLite::new(local.clone());
        let valid = request("sfu1:brws", local.pwd.as_bytes(), true, None);
        let (t, from) = (Instant::now(), "192.0.2.7:1".parse().unwrap());
        let mut out = [0u8; 256];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut m = valid.clone();
            let i = (seed % m.len() as u64) as usize;
            m[i] ^= 1 << ((seed >> 32) % 8);
            if seed & 1 == 0 {
                m.truncate((seed >> 8) as usize % m.len());
            }
            let _ = ice.handle(t, from, &m, &mut out);
        }
        // a single flipped bit anywhere either breaks the fingerprint or the
        // integrity check, so nothing was nominated
        assert_eq!(ice.selected(), None);
    }

    #[test]
    fn consent_expires_thirty_seconds_after_the_last_valid_check() {
        let local = creds("sfu1");
        let mut ice = IceLite::new(local.clone());
        let t = Instant::now();
        let a: SocketAddr = "192.0.2.7:1".parse().unwrap();
        let b: SocketAddr = "198.51.100.9:2".parse().unwrap();
        let mut out = [0u8; 256];
        ice.handle(
            t,
            a,
            &request("sfu1:brws", local.pwd.as_bytes(), true, None),
            &mut out,
        )
        .unwrap();
        ice.poll_event();
        // checks on another pair do not keep the selected one alive
        ice.handle(
            t + Duration::from_secs(20),
            b,
            &request("sfu1:brws", local.pwd.as_bytes(), false, None),
            &mut out,
        )
        .unwrap();
        ice.handle_timeout(t + Duration::from_secs(29));
        assert_eq!(ice.poll_event(), None);
        assert_eq!(ice.poll_timeout(), Some(t + CONSENT_TIMEOUT));
        ice.handle_timeout(t + Duration::from_secs(30));
        assert_eq!(ice.poll_event(), Some(IceEvent::ConsentExpired(a)));
        ice.handle_timeout(t + Duration::from_secs(31));
        assert_eq!(ice.poll_event(), None, "reported once");
        // ICE restart then a new nomination
        let new_local = creds("sfu2");
        ice.restart(new_local.clone(), creds("brw2"));
        ice.handle(
            t + Duration::from_secs(32),
            b,
            &request("sfu2:brw2", new_local.pwd.as_bytes(), true, None),
            &mut out,
        )
        .unwrap();
        assert_eq!(ice.poll_event(), Some(IceEvent::Selected(b)));
    }

    #[test]
    fn authenticated_media_on_the_selected_pair_keeps_consent_without_checks() {
        let local = creds("sfu1");
        let mut ice = IceLite::new(local.clone());
        let t = Instant::now();
        let a: SocketAddr = "192.0.2.7:1".parse().unwrap();
        let mut out = [0u8; 256];
        let nominate = request("sfu1:brws", local.pwd.as_bytes(), true, None);
        ice.handle(t, a, &nominate, &mut out).unwrap();
        ice.poll_event();
        // a peer that keeps the pair with binding indications: no checks,
        // media flowing for two minutes
        ice.set_media_flowing(true);
        for s in (5..=120).step_by(5) {
            ice.handle_timeout(t + Duration::from_secs(s));
            assert_eq!(ice.poll_event(), None, "at {s} s");
        }
        // the media stops (the dataplane reports the endpoint idle): consent
        // runs out 30 s after it was last renewed
        ice.set_media_flowing(false);
        ice.handle_timeout(t + Duration::from_secs(149));
        assert_eq!(ice.poll_event(), None);
        ice.handle_timeout(t + Duration::from_secs(150));
        assert_eq!(ice.poll_event(), Some(IceEvent::ConsentExpired(a)));
    }

    #[test]
    fn earlier_generations_are_answered_until_a_later_one_nominates() {
        let t = Instant::now();
        let (a, b): (SocketAddr, SocketAddr) = (
            "192.0.2.7:1".parse().unwrap(),
            "192.0.2.8:2".parse().unwrap(),
        );
        let g1 = creds("sfu1");
        let mut ice = IceLite::new(g1.clone());
        ice.set_remote(creds("brw1"));
        let check = |ice: &mut IceLite, from, user: &str, key: &Credentials, nominate| {
            let mut out = [0u8; 256];
            let req = request(user, key.pwd.as_bytes(), nominate, None);
            ice.handle(t, from, &req, &mut out).map_err(|(e, _)| e)
        };
        check(&mut ice, a, "sfu1:brw1", &g1, true).unwrap();
        assert_eq!(ice.poll_event(), Some(IceEvent::Selected(a)));
        // two restarts in a row: the first's pairs are still answered, with
        // its own credentials and none other
        let (g2, g3) = (creds("sfu2"), creds("sfu3"));
        ice.restart(g2.clone(), creds("brw2"));
        ice.restart(g3.clone(), creds("brw3"));
        assert_eq!(ice.local(), &g3);
        assert!(ice.answers_ufrag("sfu1") && ice.answers_ufrag("sfu2"));
        check(&mut ice, a, "sfu1:brw1", &g1, false).expect("consent on the old pair");
        assert_eq!(
            check(&mut ice, b, "sfu2:brw1", &g2, false),
            Err(IceError::Unauthorized),
            "generations are not mixed"
        );
        assert_eq!(
            check(&mut ice, b, "sfu2:brw2", &g1, false),
            Err(IceError::Unauthorized),
            "nor their passwords"
        );
        // the browser nominates a pair of the second generation: the first
        // is done, the third still answered
        check(&mut ice, b, "sfu2:brw2", &g2, true).unwrap();
        assert_eq!(ice.poll_event(), Some(IceEvent::Selected(b)));
        assert!(!ice.answers_ufrag("sfu1"));
        assert_eq!(
            check(&mut ice, a, "sfu1:brw1", &g1, false),
            Err(IceError::Unauthorized)
        );
        check(&mut ice, b, "sfu3:brw3", &g3, true).unwrap();
        assert!(!ice.answers_ufrag("sfu2") && ice.answers_ufrag("sfu3"));
        // however many restarts, a bounded few generations are kept
        for i in 4..20 {
            ice.restart(creds(&format!("sfu{i}")), creds(&format!("brw{i}")));
        }
        assert!(!ice.answers_ufrag("sfu3"));
        let kept = (4..20)
            .filter(|i| ice.answers_ufrag(&format!("sfu{i}")))
            .count();
        assert_eq!(kept, MAX_GENERATIONS);
    }
}
