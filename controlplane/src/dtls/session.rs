//! One DTLS association (one transport of one participant).

use super::buffer::DatagramBuffer;
use super::{Certificate, Fingerprint};
use openssl::ssl::{
    HandshakeError, MidHandshakeSslStream, Ssl, SslContextBuilder, SslMethod, SslOptions,
    SslStream, SslVerifyMode, SslVersion,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::SrtpKeys;
use switchyard_dataplane::srtp::{MasterKey, Profile};
use thiserror::Error;

/// A handshake not finished after this long has failed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest DTLS datagram we produce (fits any path with ICE/UDP/IP overhead).
const MTU: u32 = 1200;
/// Profiles offered / accepted, preferred first: GCM is cheaper (docs/benchmarks.md).
const SRTP_PROFILES: &str =
    "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";
/// Forward-secret AEAD suites for ECDSA and RSA peer certificates.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// Why a DTLS association failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtlsError {
    /// OpenSSL refused the setup or the handshake.
    #[error("DTLS: {0}")]
    Ssl(String),
    /// The peer's certificate does not match the SDP fingerprint.
    #[error("peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// No SDP fingerprint was given before the handshake ended.
    #[error("no remote fingerprint to check the peer certificate against")]
    NoFingerprint,
    /// No common SRTP protection profile.
    #[error("no common SRTP profile")]
    NoSrtpProfile,
    /// The handshake took longer than [`HANDSHAKE_TIMEOUT`].
    #[error("DTLS handshake timed out")]
    Timeout,
}

/// Which side of the handshake we are (SDP `a=setup`: active = client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// `a=setup:active`: we send the ClientHello.
    Client,
    /// `a=setup:passive`: the browser does.
    Server,
}

/// What the session reports.
pub enum DtlsEvent {
    /// Handshake done, peer verified: the keys for the dataplane.
    Connected(SrtpKeys),
    /// The association failed; tear the transport down.
    Failed(DtlsError),
    /// The peer sent close_notify.
    Closed,
}

impl core::fmt::Debug for DtlsEvent {
    /// Never prints keys.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtlsEvent::Connected(k) => write!(f, "Connected({})", k.profile.name()),
            DtlsEvent::Failed(e) => write!(f, "Failed({e})"),
            DtlsEvent::Closed => f.write_str("Closed"),
        }
    }
}

enum State {
    Handshaking(MidHandshakeSslStream<DatagramBuffer>),
    Connected(SslStream<DatagramBuffer>),
    Done,
}

/// A DTLS-SRTP association driven by datagrams and time.
pub struct DtlsSession {
    state: State,
    role: DtlsRole,
    remote: Option<Fingerprint>,
    started: Instant,
    events: VecDeque<DtlsEvent>,
    /// Datagrams produced after the handshake (close_notify).
    spare: DatagramBuffer,
}

impl DtlsSession {
    /// Starts an association with our certificate. A client sends its
    /// first flight at once (see [`DtlsSession::poll_datagram`]).
    pub fn new(role: DtlsRole, cert: &Certificate, now: Instant) -> Result<DtlsSession, DtlsError> {
        let ssl_err = |e: openssl::error::ErrorStack| DtlsError::Ssl(e.to_string());
        let mut ctx = SslContextBuilder::new(SslMethod::dtls()).map_err(ssl_err)?;
        ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(ssl_err)?;
        ctx.set_cipher_list(CIPHERS).map_err(ssl_err)?;
        ctx.set_private_key(&cert.key).map_err(ssl_err)?;
        ctx.set_certificate(&cert.x509).map_err(ssl_err)?;
        ctx.check_private_key().map_err(ssl_err)?;
        ctx.set_tlsext_use_srtp(SRTP_PROFILES).map_err(ssl_err)?;
        ctx.set_options(SslOptions::NO_QUERY_MTU | SslOptions::SINGLE_ECDH_USE);
        // Self-signed certificates are the rule in WebRTC: accept any chain
        // here and check the fingerprint against the SDP when connected.
        ctx.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            |_, _| true,
        );
        let ctx = ctx.build();
        let mut ssl = Ssl::new(&ctx).map_err(ssl_err)?;
        ssl.set_mtu(MTU).map_err(ssl_err)?;
        let result = match role {
            DtlsRole::Client => ssl.connect(DatagramBuffer::default()),
            DtlsRole::Server => ssl.accept(DatagramBuffer::default()),
        };
        let state = match result {
            Ok(stream) => State::Connected(stream),
            Err(HandshakeError::WouldBlock(mid)) => State::Handshaking(mid),
            Err(HandshakeError::SetupFailure(e)) => return Err(ssl_err(e)),
            Err(HandshakeError::Failure(mid)) => {
                return Err(DtlsError::Ssl(mid.error().to_string()));
            }
        };
        Ok(DtlsSession {
            state,
            role,
            remote: None,
            started: now,
            events: VecDeque::new(),
            spare: DatagramBuffer::default(),
        })
    }

    /// The fingerprint the peer's certificate must have (from its SDP).
    pub fn set_remote_fingerprint(&mut self, fp: Fingerprint) {
        self.remote = Some(fp);
    }

    /// True once keys were produced.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }

    fn buffer(&mut self) -> &mut DatagramBuffer {
        match &mut self.state {
            State::Handshaking(mid) => mid.get_mut(),
            State::Connected(stream) => stream.get_mut(),
            State::Done => &mut self.spare,
        }
    }

    /// Feeds a received DTLS datagram.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.buffer().push_incoming(datagram);
        self.drive(now);
    }

    /// Runs timers: retransmission of lost flights (OpenSSL's own timer,
    /// checked when driven) and the overall handshake timeout. Only a
    /// handshake has timers: after it, what arrives drives the session
    /// (alerts, a peer's repeated last flight).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !matches!(self.state, State::Handshaking(_)) {
            return;
        }
        if now.saturating_duration_since(self.started) >= HANDSHAKE_TIMEOUT {
            self.fail(DtlsError::Timeout);
            return;
        }
        self.drive(now);
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        match self.state {
            State::Handshaking(_) => Some(now + Duration::from_millis(100)),
            _ => None,
        }
    }

    /// The next datagram to send to the peer.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.buffer().outgoing.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// Sends close_notify.
    pub fn close(&mut self) {
        if let State::Connected(stream) = &mut self.state {
            let _ = stream.shutdown();
            let out = std::mem::take(&mut stream.get_mut().outgoing);
            self.spare.outgoing.extend(out);
        }
        self.state = State::Done;
    }

    fn fail(&mut self, e: DtlsError) {
        tracing::debug!(target: "switchyard::dtls", error = %e, "DTLS failed");
        let out = std::mem::take(&mut self.buffer().outgoing);
        self.spare.outgoing = out;
        self.state = State::Done;
        self.events.push_back(DtlsEvent::Failed(e));
    }

    fn drive(&mut self, _now: Instant) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Handshaking(mid) => match mid.handshake() {
                Ok(stream) => {
                    self.state = State::Connected(stream);
                    match self.keys() {
                        Ok(keys) => self.events.push_back(DtlsEvent::Connected(keys)),
                        Err(e) => self.fail(e),
                    }
                }
                Err(HandshakeError::WouldBlock(mid)) => self.state = State::Handshaking(mid),
                Err(HandshakeError::Failure(mut mid)) => {
                    // keep the alert OpenSSL produced for the peer
                    let e = DtlsError::Ssl(mid.error().to_string());
                    self.spare.outgoing = std::mem::take(&mut mid.get_mut().outgoing);
                    self.fail(e);
                }
                Err(HandshakeError::SetupFailure(e)) => self.fail(DtlsError::Ssl(e.to_string())),
            },
            State::Connected(mut stream) => {
                // Only alerts arrive after the handshake (no data channels
                // here); reading processes them.
                let mut buf = [0u8; 2048];
                loop {
                    match stream.ssl_read(&mut buf) {
                        Ok(_) => continue,
                        Err(e) if e.code() == openssl::ssl::ErrorCode::ZERO_RETURN => {
                            self.spare.outgoing = std::mem::take(&mut stream.get_mut().outgoing);
                            self.events.push_back(DtlsEvent::Closed);
                            return;
                        }
                        Err(_) => break,
                    }
                }
                self.state = State::Connected(stream);
            }
            State::Done => {}
        }
    }

    /// Checks the peer certificate and exports the SRTP keys (RFC 5764 §4.2).
    fn keys(&mut self) -> Result<SrtpKeys, DtlsError> {
        let State::Connected(stream) = &self.state else {
            return Err(DtlsError::Ssl("not connected".into()));
        };
        let ssl = stream.ssl();
        let expected = self.remote.ok_or(DtlsError::NoFingerprint)?;
        let cert = ssl
            .peer_certificate()
            .ok_or(DtlsError::FingerprintMismatch)?;
        if Fingerprint::of(&cert)? != expected {
            return Err(DtlsError::FingerprintMismatch);
        }
        let name = ssl
            .selected_srtp_profile()
            .ok_or(DtlsError::NoSrtpProfile)?
            .name();
        let profile = Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or(DtlsError::NoSrtpProfile)?;
        let mut material = vec![0u8; 2 * profile.keying_material_len()];
        ssl.export_keying_material(&mut material, "EXTRACTOR-dtls_srtp", None)
            .map_err(|e| DtlsError::Ssl(e.to_string()))?;
        let split = MasterKey::from_dtls_keying_material(profile, &material);
        zeroize::Zeroize::zeroize(&mut material);
        let (client, server) = split.map_err(|_| DtlsError::NoSrtpProfile)?;
        // the client protects with the client key; we receive with the peer's
        let (rx, tx) = match self.role {
            DtlsRole::Server => (client, server),
            DtlsRole::Client => (server, client),
        };
        Ok(SrtpKeys { profile, rx, tx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves datagrams between two sessions until both are quiet.
    fn pump(a: &mut DtlsSession, b: &mut DtlsSession, now: Instant) {
        for _ in 0..50 {
            let mut moved = false;
            while let Some(d) = a.poll_datagram() {
                b.handle_datagram(now, &d);
                moved = true;
            }
            while let Some(d) = b.poll_datagram() {
                a.handle_datagram(now, &d);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn pair() -> (DtlsSession, DtlsSession, Certificate, Certificate) {
        let (cc, sc) = (
            Certificate::generate().unwrap(),
            Certificate::generate().unwrap(),
        );
        let now = Instant::now();
        let mut client = DtlsSession::new(DtlsRole::Client, &cc, now).unwrap();
        let mut server = DtlsSession::new(DtlsRole::Server, &sc, now).unwrap();
        client.set_remote_fingerprint(sc.fingerprint());
        server.set_remote_fingerprint(cc.fingerprint());
        (client, server, cc, sc)
    }

    fn connected(s: &mut DtlsSession) -> SrtpKeys {
        match s.poll_event() {
            Some(DtlsEvent::Connected(k)) => k,
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    #[test]
    fn handshake_gives_mirrored_srtp_keys_and_prefers_gcm() {
        let (mut client, mut server, ..) = pair();
        pump(&mut client, &mut server, Instant::now());
        let (ck, sk) = (connected(&mut client), connected(&mut server));
        assert_eq!(ck.profile, Profile::AeadAes128Gcm);
        assert_eq!((ck.tx.key(), ck.tx.salt()), (sk.rx.key(), sk.rx.salt()));
        assert_eq!((ck.rx.key(), ck.rx.salt()), (sk.tx.key(), sk.tx.salt()));
        assert_ne!(ck.tx.key(), ck.rx.key());
        // close_notify reaches the other side
        client.close();
        pump(&mut client, &mut server, Instant::now());
        assert!(matches!(server.poll_event(), Some(DtlsEvent::Closed)));
    }

    #[test]
    fn a_wrong_fingerprint_fails_the_handshake() {
        let (mut client, mut server, ..) = pair();
        server.set_remote_fingerprint(Fingerprint([0xab; 32]));
        pump(&mut client, &mut server, Instant::now());
        assert!(matches!(
            server.poll_event(),
            Some(DtlsEvent::Failed(DtlsError::FingerprintMismatch))
        ));
    }

    #[test]
    fn a_lost_flight_is_retransmitted() {
        let (mut client, mut server, ..) = pair();
        let t = Instant::now();
        let first = client.poll_datagram().expect("ClientHello");
        drop(first); // lost
        assert!(client.poll_datagram().is_none());
        // OpenSSL's retransmission timer starts at one second
        std::thread::sleep(Duration::from_millis(1100));
        client.handle_timeout(t + Duration::from_millis(1100));
        assert!(client.poll_datagram().is_some(), "ClientHello sent again");
        client.handle_timeout(t + HANDSHAKE_TIMEOUT);
        assert!(matches!(
            client.poll_event(),
            Some(DtlsEvent::Failed(DtlsError::Timeout))
        ));
        let _ = server.poll_event();
    }

    #[test]
    fn garbage_never_panics_and_leaves_the_handshake_possible() {
        let (mut client, mut server, ..) = pair();
        let mut seed = 0x1234_5678u64;
        for len in 0..300usize {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut junk: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
            if let Some(b) = junk.first_mut() {
                *b = 22; // handshake content type, so OpenSSL parses further
            }
            server.handle_datagram(Instant::now(), &junk);
        }
        while server.poll_datagram().is_some() {}
        assert!(
            server.poll_event().is_none(),
            "junk records are discarded, not fatal"
        );
        pump(&mut client, &mut server, Instant::now());
        connected(&mut client);
        connected(&mut server);
    }
}
