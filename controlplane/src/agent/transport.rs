//! One participant's transport: ICE-lite and DTLS-SRTP together, turning
//! the browser's STUN and DTLS datagrams (received by the dataplane and
//! handed over through its exception ring) into dataplane commands.
//!
//! Sans-IO: `handle_datagram` / `handle_timeout` in, `poll_output` out.
//! The endpoint is added to the dataplane once both halves are done: DTLS
//! produced keys checked against the SDP fingerprint, and ICE gave an
//! address — the nominated one, or before any nomination the checked
//! address the handshake came from (RFC 8445 §12.1: data may flow on a
//! valid pair before one is selected; Chrome finishes DTLS on its first
//! checked pair and may nominate seconds later). A nomination of another
//! address moves it (`UpdateRemote`); a lapsed consent or a failed
//! handshake removes it.

use crate::dtls::{Certificate, DtlsError, DtlsEvent, DtlsRole, DtlsSession};
use crate::ice::{CheckerEvent, Credentials, IceChecker, IceEvent, IceLite};
use crate::sdp::{Offer, Setup};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;
use switchyard_dataplane::abi::{Command, EndpointSpec, SrtpKeys};
use switchyard_wire::demux::PacketKind;
use switchyard_wire::rtp::ExtensionIds;

/// What the transport asks of its caller.
pub enum Output {
    /// Send this datagram from the participant's worker socket.
    Send {
        /// Destination.
        to: SocketAddr,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Apply this command on the participant's worker.
    Dataplane(Command),
    /// Media can flow.
    Connected,
    /// The transport is dead; tear the participant down.
    Failed(String),
}

impl core::fmt::Debug for Output {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Output::Send { to, data } => write!(f, "Send({} bytes to {to})", data.len()),
            Output::Dataplane(c) => write!(f, "Dataplane({c:?})"),
            Output::Connected => f.write_str("Connected"),
            Output::Failed(r) => write!(f, "Failed({r})"),
        }
    }
}

/// A transport as a restarted control plane needs it (see
/// [`Transport::state`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TransportState {
    /// Endpoint id.
    pub endpoint: u64,
    /// Worker it is on.
    pub worker: usize,
    /// That worker's UDP port.
    pub port: u16,
    /// Our ICE credentials.
    pub local: Credentials,
    /// The browser's.
    pub remote: Option<Credentials>,
    /// The address ICE selected.
    pub selected: Option<SocketAddr>,
    /// Header extension ids: mid, rid, repaired-rid, abs-send-time,
    /// transport-cc, audio-level, dependency-descriptor.
    pub ext: [Option<u8>; 7],
    /// The dataplane's user data for it.
    pub user_data: [u8; 32],
    /// It reached the dataplane (ICE and DTLS done).
    pub in_dataplane: bool,
    /// The far bridge of a relay we check from (ICE controlling).
    #[serde(default)]
    pub peer: Option<SocketAddr>,
}

/// The controlling checker of a relay end toward `peer` (a random tie
/// breaker; the far side's credentials always come with a relay's `open`).
fn checker(
    local: &Credentials,
    remote: Option<&Credentials>,
    peer: SocketAddr,
    now: Instant,
) -> IceChecker {
    let remote = remote.cloned().unwrap_or_else(Credentials::random);
    IceChecker::new(local.clone(), remote, peer, rand::random::<u64>(), now)
}

/// ICE + DTLS state of one participant.
pub struct Transport {
    endpoint: u64,
    ext: ExtensionIds,
    user_data: [u8; 32],
    ice: IceLite,
    /// The controlling side of a relay to another bridge: it sends the
    /// checks (`ice` then only holds the credentials).
    checker: Option<IceChecker>,
    /// `None` for a transport restored after a control-plane restart: its
    /// handshake finished before, in another process, and the keys are in
    /// the dataplane.
    dtls: Option<DtlsSession>,
    keys: Option<SrtpKeys>,
    remote: Option<SocketAddr>,
    /// The checked address the last DTLS datagram came from.
    dtls_from: Option<SocketAddr>,
    in_dataplane: bool,
    failed: bool,
    out: VecDeque<Output>,
}

impl Transport {
    /// A transport answering `offer` with our credentials and certificate.
    /// We take the DTLS server role unless the offer insists on it.
    pub fn new(
        endpoint: u64,
        local: Credentials,
        cert: &Certificate,
        offer: &Offer,
        ext: ExtensionIds,
        user_data: [u8; 32],
        now: Instant,
    ) -> Result<Transport, DtlsError> {
        let mut ice = IceLite::new(local);
        ice.set_remote(offer.ice.clone());
        let role = if offer.setup == Setup::Passive {
            DtlsRole::Client
        } else {
            DtlsRole::Server
        };
        let mut dtls = DtlsSession::new(role, cert, now)?;
        dtls.set_remote_fingerprint(offer.fingerprint);
        Ok(Transport {
            endpoint,
            ext,
            user_data,
            ice,
            checker: None,
            dtls: Some(dtls),
            keys: None,
            remote: None,
            dtls_from: None,
            in_dataplane: false,
            failed: false,
            out: VecDeque::new(),
        })
    }

    /// What a control plane started after this one needs to carry the
    /// transport on (no keys: they are in the dataplane and the replica).
    pub fn state(&self, worker: usize, port: u16) -> TransportState {
        TransportState {
            endpoint: self.endpoint,
            worker,
            port,
            local: self.ice.local().clone(),
            remote: self.ice.remote().cloned(),
            selected: self.remote.or(self.ice.selected()),
            ext: self.ext.to_array(),
            user_data: self.user_data,
            in_dataplane: self.in_dataplane,
            peer: self.checker.as_ref().map(IceChecker::peer),
        }
    }

    /// Makes this the controlling side of a relay to the bridge at `peer`:
    /// it checks `peer` (nominating at once) instead of answering checks,
    /// from `now`.
    pub fn checking(mut self, peer: SocketAddr, now: Instant) -> Transport {
        self.checker = Some(checker(self.ice.local(), self.ice.remote(), peer, now));
        self
    }

    /// The far bridge of a relay this transport checks from.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.checker.as_ref().map(IceChecker::peer)
    }

    /// A transport carried on from a saved state: consent checks on the
    /// selected address are answered (its consent clock starts at `now`),
    /// an ICE restart works, and DTLS is not spoken again. One that had not
    /// reached the dataplane cannot finish its handshake here: `None`.
    pub fn restored(s: &TransportState, now: Instant) -> Option<Transport> {
        if !s.in_dataplane {
            return None;
        }
        let mut ice = IceLite::new(s.local.clone());
        if let Some(r) = &s.remote {
            ice.set_remote(r.clone());
        }
        if let Some(addr) = s.selected {
            ice.resume_selected(addr, now);
        }
        // (a relay's checking side goes on checking: consent at the far end
        // needs its checks)
        let checker = s
            .peer
            .map(|peer| checker(&s.local, s.remote.as_ref(), peer, now));
        Some(Transport {
            endpoint: s.endpoint,
            ext: ExtensionIds::from_array(s.ext),
            user_data: s.user_data,
            ice,
            checker,
            dtls: None,
            keys: None,
            remote: s.selected,
            dtls_from: None,
            in_dataplane: true,
            failed: false,
            out: VecDeque::new(),
        })
    }

    /// Test support: as if ICE had selected `remote` and DTLS had finished.
    #[cfg(test)]
    pub(crate) fn assume_connected(&mut self, remote: SocketAddr) {
        self.remote = Some(remote);
        self.in_dataplane = true;
    }

    /// Our ICE credentials (for the answer).
    pub fn local_credentials(&self) -> &Credentials {
        self.ice.local()
    }

    /// The browser's ICE credentials as its last offer gave them.
    pub fn remote_credentials(&self) -> Option<&Credentials> {
        self.ice.remote()
    }

    /// ICE restart: the browser offered new credentials (its network
    /// changed); we answer with `local`. DTLS and the SRTP keys stay: once a
    /// check from the new path nominates it, the dataplane is told the new
    /// address and media resumes.
    pub fn restart_ice(&mut self, local: Credentials, remote: Credentials) {
        tracing::info!(target: "switchyard::transport", endpoint = self.endpoint, "ICE restart");
        self.ice.restart(local, remote);
    }

    /// Whether checks naming `ufrag` as ours are still answered (see
    /// [`IceLite::restart`]).
    pub fn answers_ufrag(&self, ufrag: &str) -> bool {
        self.ice.answers_ufrag(ufrag)
    }

    /// Whether `addr` has passed a connectivity check (MESSAGE-INTEGRITY
    /// verified) and is still one of the pairs ICE keeps.
    pub fn verified(&self, addr: SocketAddr) -> bool {
        match &self.checker {
            Some(c) => c.peer() == addr,
            None => self.ice.verified(addr),
        }
    }

    /// A STUN or DTLS datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if self.failed {
            return;
        }
        match PacketKind::classify(data) {
            PacketKind::Stun if self.checker.is_some() => {
                if let Some(Err(e)) = self.checker.as_mut().map(|c| c.handle_response(now, from, data)) {
                    tracing::debug!(target: "switchyard::transport", endpoint = self.endpoint, error = %e, "relay check answer refused");
                }
            }
            PacketKind::Stun => {
                let mut buf = [0u8; 512];
                let response = match self.ice.handle(now, from, data, &mut buf) {
                    Ok(r) => Some(r),
                    Err((e, r)) => {
                        tracing::debug!(target: "switchyard::transport", endpoint = self.endpoint, error = %e, "STUN refused");
                        r
                    }
                };
                if let Some(r) = response {
                    self.out.push_back(Output::Send {
                        to: r.to,
                        data: buf[..r.len].to_vec(),
                    });
                }
            }
            PacketKind::Dtls
                // only from an address that passed an ICE check
                if self.verified(from) => {
                    if let Some(dtls) = &mut self.dtls {
                        self.dtls_from = Some(from);
                        dtls.handle_datagram(now, data);
                    }
                }
            _ => {}
        }
        self.progress(now, Some(from));
    }

    /// Runs ICE consent and DTLS timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failed {
            return;
        }
        self.ice.handle_timeout(now);
        if let Some(c) = &mut self.checker {
            c.handle_timeout(now);
            let mut buf = [0u8; 512];
            if let Some((len, to)) = c.poll_transmit(now, rand::random(), &mut buf) {
                self.out.push_back(Output::Send {
                    to,
                    data: buf[..len].to_vec(),
                });
            }
        }
        if let Some(dtls) = &mut self.dtls {
            dtls.handle_timeout(now);
        }
        self.progress(now, None);
    }

    /// When `handle_timeout` has something to do next: a check to send, a
    /// DTLS flight to repeat, consent to judge (`None`: nothing timed).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.failed {
            return None;
        }
        [
            self.ice.poll_timeout(),
            self.checker.as_ref().and_then(IceChecker::poll_timeout),
            self.dtls.as_ref().and_then(|d| d.poll_timeout(now)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Tears the transport down: close_notify, and the endpoint leaves the
    /// dataplane if it was there.
    pub fn close(&mut self) {
        if let Some(dtls) = &mut self.dtls {
            dtls.close();
        }
        self.flush_dtls();
        if std::mem::take(&mut self.in_dataplane) {
            self.out
                .push_back(Output::Dataplane(Command::RemoveEndpoint {
                    endpoint: self.endpoint,
                }));
        }
        self.failed = true;
    }

    fn fail(&mut self, reason: String) {
        if self.failed {
            return;
        }
        self.close();
        self.out.push_back(Output::Failed(reason));
    }

    fn flush_dtls(&mut self) {
        let to = self.remote.or(self.ice.selected());
        // a relay's checking side starts the handshake: its first flight
        // waits for the pair to answer
        if to.is_none() && self.checker.is_some() {
            return;
        }
        let Some(dtls) = &mut self.dtls else { return };
        while let Some(d) = dtls.poll_datagram() {
            if let Some(to) = to {
                self.out.push_back(Output::Send { to, data: d });
            }
        }
    }

    fn progress(&mut self, _now: Instant, from: Option<SocketAddr>) {
        while let Some(e) = self.checker.as_mut().and_then(IceChecker::poll_event) {
            match e {
                CheckerEvent::Selected(addr) => {
                    tracing::debug!(target: "switchyard::transport", endpoint = self.endpoint, %addr, "relay pair answered");
                    self.remote = Some(addr);
                }
                CheckerEvent::Failed => {
                    let peer = self.peer().map(|p| p.to_string()).unwrap_or_default();
                    return self.fail(format!("relay to {peer}: no answer to ICE checks"));
                }
            }
        }
        while let Some(e) = self.ice.poll_event() {
            match e {
                IceEvent::Selected(addr) => {
                    tracing::debug!(target: "switchyard::transport", endpoint = self.endpoint, %addr, "ICE nominated");
                    let moved = self.remote.is_some_and(|r| r != addr);
                    self.remote = Some(addr);
                    if moved && self.in_dataplane {
                        self.out.push_back(Output::Dataplane(Command::UpdateRemote {
                            endpoint: self.endpoint,
                            remote: addr,
                        }));
                    }
                }
                IceEvent::ConsentExpired(addr) => {
                    return self.fail(format!("ICE consent expired for {addr}"));
                }
            }
        }
        // DTLS replies go where the handshake came from until ICE nominates
        if self.remote.is_none()
            && let Some(from) = from
            && let Some(dtls) = &mut self.dtls
        {
            while let Some(d) = dtls.poll_datagram() {
                self.out.push_back(Output::Send { to: from, data: d });
            }
        }
        self.flush_dtls();
        while let Some(e) = self.dtls.as_mut().and_then(DtlsSession::poll_event) {
            match e {
                DtlsEvent::Connected(keys) => {
                    tracing::debug!(target: "switchyard::transport", endpoint = self.endpoint, "DTLS connected");
                    self.keys = Some(keys)
                }
                DtlsEvent::Failed(err) => return self.fail(format!("DTLS: {err}")),
                DtlsEvent::Closed => return self.fail("peer closed DTLS".into()),
            }
        }
        // keys may come before the nomination (browsers nominate late):
        // media starts on the checked pair the handshake came on, and a
        // later nomination of another pair moves it
        if !self.in_dataplane
            && self.keys.is_some()
            && self.remote.is_none()
            && let Some(from) = self.dtls_from
        {
            tracing::debug!(target: "switchyard::transport", endpoint = self.endpoint, addr = %from, "media on the handshake's pair until a nomination");
            self.remote = Some(from);
        }
        if !self.in_dataplane
            && let Some(remote) = self.remote
            && let Some(keys) = self.keys.take()
        {
            let spec = EndpointSpec {
                id: self.endpoint,
                remote,
                keys,
                ext: self.ext,
                user_data: self.user_data,
            };
            self.out
                .push_back(Output::Dataplane(Command::AddEndpoint(spec)));
            self.out.push_back(Output::Connected);
            self.in_dataplane = true;
            // a new endpoint counts as heard from (the dataplane reports it
            // idle after 5 s without a packet that authenticates)
            self.ice.set_media_flowing(true);
        }
    }

    /// The dataplane's word on this endpoint's media: idle (no packet that
    /// authenticates for 5 s) or flowing again. While it flows, consent
    /// does not expire without checks (see [`IceLite::set_media_flowing`]).
    pub fn media_flowing(&mut self, flowing: bool) {
        if self.in_dataplane {
            self.ice.set_media_flowing(flowing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_wire::stun::{StunWriter, attr};

    /// A browser's side: its offer facts, a DTLS client and STUN checks.
    struct Browser {
        creds: Credentials,
        cert: Certificate,
        dtls: DtlsSession,
        addr: SocketAddr,
    }

    /// A browser whose DTLS client expects the SFU's certificate.
    fn browser(sfu_cert: &Certificate, now: Instant) -> Browser {
        let cert = Certificate::generate().unwrap();
        let mut dtls = DtlsSession::new(DtlsRole::Client, &cert, now).unwrap();
        dtls.set_remote_fingerprint(sfu_cert.fingerprint());
        Browser {
            creds: Credentials::random(),
            cert,
            dtls,
            addr: "10.1.1.1:5000".parse().unwrap(),
        }
    }

    fn offer_from(browser: &Browser) -> Offer {
        Offer {
            ice: browser.creds.clone(),
            fingerprint: browser.cert.fingerprint(),
            setup: Setup::ActPass,
            media: vec![],
        }
    }

    fn check(b: &Browser, local: &Credentials, nominate: bool) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, 0x0001, &[9; 12]).unwrap();
        w.add(
            attr::USERNAME,
            format!("{}:{}", local.ufrag, b.creds.ufrag).as_bytes(),
        )
        .unwrap();
        w.add_u32(attr::PRIORITY, 1).unwrap();
        w.add_u64(attr::ICE_CONTROLLING, 7).unwrap();
        if nominate {
            w.add(attr::USE_CANDIDATE, &[]).unwrap();
        }
        w.add_message_integrity(local.pwd.as_bytes()).unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        buf[..n].to_vec()
    }

    #[test]
    fn ice_then_dtls_adds_the_endpoint_with_the_browsers_keys() {
        handshake(true);
    }

    #[test]
    fn dtls_before_the_nomination_starts_media_on_its_pair_and_a_nomination_moves_it() {
        // Chrome finishes DTLS on its first checked pair and may nominate
        // seconds later: media need not wait for it
        let (mut t, browser, local) = handshake(false);
        let now = Instant::now();
        let elsewhere = SocketAddr::from(([192, 0, 2, 9], 4000));
        t.handle_datagram(now, elsewhere, &check(&browser, &local, true));
        let mut moved = None;
        while let Some(o) = t.poll_output() {
            if let Output::Dataplane(Command::UpdateRemote { endpoint, remote }) = o {
                moved = Some((endpoint, remote));
            }
        }
        assert_eq!(moved, Some((42, elsewhere)));
    }

    /// A check (nominating or not), then the DTLS handshake: the endpoint
    /// is added with the browser's address and keys.
    fn handshake(nominate: bool) -> (Transport, Browser, Credentials) {
        let now = Instant::now();
        let sfu_cert = Certificate::generate().unwrap();
        let mut browser = browser(&sfu_cert, now);
        let local = Credentials::random();
        let mut t = Transport::new(
            42,
            local.clone(),
            &sfu_cert,
            &offer_from(&browser),
            ExtensionIds::default(),
            [1; 32],
            now,
        )
        .unwrap();
        t.handle_datagram(now, browser.addr, &check(&browser, &local, nominate));
        let mut added = None;
        for _ in 0..20 {
            while let Some(d) = browser.dtls.poll_datagram() {
                t.handle_datagram(now, browser.addr, &d);
            }
            while let Some(o) = t.poll_output() {
                match o {
                    Output::Send { to, data } => {
                        assert_eq!(to, browser.addr);
                        if PacketKind::classify(&data) == PacketKind::Dtls {
                            browser.dtls.handle_datagram(now, &data);
                        }
                    }
                    Output::Dataplane(Command::AddEndpoint(spec)) => added = Some(spec),
                    Output::Connected => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        let spec = added.expect("endpoint added to the dataplane");
        assert_eq!((spec.id, spec.remote), (42, browser.addr));
        let Some(DtlsEvent::Connected(bk)) = browser.dtls.poll_event() else {
            panic!("browser connected")
        };
        // what the browser sends with is what the dataplane receives with
        assert_eq!(bk.tx.key(), spec.keys.rx.key());
        assert_eq!(bk.rx.key(), spec.keys.tx.key());
        (t, browser, local)
    }

    #[test]
    fn a_wrong_fingerprint_fails_and_nothing_reaches_the_dataplane() {
        let now = Instant::now();
        let sfu_cert = Certificate::generate().unwrap();
        let browser = browser(&sfu_cert, now);
        let mut offer = offer_from(&browser);
        offer.fingerprint = crate::dtls::Fingerprint([7; 32]); // not the browser's certificate
        let local = Credentials::random();
        let mut t = Transport::new(
            1,
            local.clone(),
            &sfu_cert,
            &offer,
            ExtensionIds::default(),
            [0; 32],
            now,
        )
        .unwrap();
        t.handle_datagram(now, browser.addr, &check(&browser, &local, true));
        let mut browser = browser;
        let mut failed = false;
        for _ in 0..20 {
            while let Some(d) = browser.dtls.poll_datagram() {
                t.handle_datagram(now, browser.addr, &d);
            }
            while let Some(o) = t.poll_output() {
                match o {
                    Output::Send { data, .. } => browser.dtls.handle_datagram(now, &data),
                    Output::Failed(_) => failed = true,
                    Output::Dataplane(c) => panic!("dataplane must not see {c:?}"),
                    Output::Connected => panic!("must not connect"),
                }
            }
        }
        assert!(failed);
    }

    #[test]
    fn stun_with_wrong_credentials_only_gets_an_error_response() {
        let now = Instant::now();
        let sfu_cert = Certificate::generate().unwrap();
        let browser = browser(&sfu_cert, now);
        let local = Credentials::random();
        let mut t = Transport::new(
            1,
            local,
            &sfu_cert,
            &offer_from(&browser),
            ExtensionIds::default(),
            [0; 32],
            now,
        )
        .unwrap();
        let wrong = Credentials::random();
        t.handle_datagram(now, browser.addr, &check(&browser, &wrong, true));
        match t.poll_output() {
            Some(Output::Send { data, .. }) => {
                let m = switchyard_wire::stun::StunMessage::new_checked(&data[..]).unwrap();
                assert_eq!(m.class(), switchyard_wire::stun::MessageClass::Error);
            }
            other => panic!("{other:?}"),
        }
        assert!(t.poll_output().is_none());
        // DTLS from an address ICE never approved is ignored
        t.handle_datagram(
            now,
            "10.9.9.9:1".parse().unwrap(),
            &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 1, 2, 3],
        );
        assert!(t.poll_output().is_none());
    }
}
