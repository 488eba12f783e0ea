//! One peer connection's media path, as a browser has it: a UDP socket (or
//! an ICE-TCP connection, RFC 6544 active side with RFC 4571 framing), ICE
//! connectivity checks with the peer's credentials (we are the controlling,
//! nominating side: both servers we drive are ICE-lite), a DTLS handshake in
//! whichever role the SDP gave us, then SRTP both ways.

use super::client::ClientError;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use switchyard_controlplane::dtls::{Certificate, DtlsEvent, DtlsRole, DtlsSession};
use switchyard_controlplane::ice::Credentials;
use switchyard_controlplane::sdp::Offer;
use switchyard_srtp::{Config as SrtpConfig, MasterKey, Profile, Session};
use switchyard_wire::demux::PacketKind;
use switchyard_wire::stun::{StunMessage, StunWriter, attr};

/// How a leg reaches its peer.
pub enum Path {
    /// This UDP socket, to the peer's first UDP candidate.
    Udp(UdpSocket),
    /// A TCP connection to the peer's first passive TCP candidate.
    Tcp,
}

/// Bytes a TCP leg holds for sending before it drops whole packets.
const TCP_QUEUE: usize = 256 << 10;

/// The socket under a leg.
enum Wire {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        /// Received bytes not yet split into packets.
        inbox: Vec<u8>,
        /// Framed packets the socket has not taken yet.
        outbox: Vec<u8>,
    },
}

impl Wire {
    /// Sends one packet to `to`; whether it went (or was queued whole).
    fn send(&mut self, packet: &[u8], to: SocketAddr) -> bool {
        match self {
            Wire::Udp(udp) => udp.send_to(packet, to).is_ok(),
            Wire::Tcp { stream, outbox, .. } => {
                flush(stream, outbox);
                if outbox.len() + 2 + packet.len() > TCP_QUEUE
                    || packet.len() > usize::from(u16::MAX)
                {
                    return false;
                }
                outbox.extend_from_slice(&(packet.len() as u16).to_be_bytes());
                outbox.extend_from_slice(packet);
                flush(stream, outbox);
                true
            }
        }
    }

    /// The next packet received (non-blocking, or within the socket's read
    /// timeout while it blocks), with its sender.
    fn recv(&mut self, buf: &mut [u8], peer: SocketAddr) -> Option<(usize, SocketAddr)> {
        match self {
            Wire::Udp(udp) => udp.recv_from(buf).ok(),
            Wire::Tcp {
                stream,
                inbox,
                outbox,
            } => {
                flush(stream, outbox);
                loop {
                    if let Ok(Some(f)) = switchyard_wire::framing::next_frame(inbox, buf.len()) {
                        let n = f.packet.len();
                        buf[..n].copy_from_slice(f.packet);
                        inbox.drain(..f.consumed);
                        return Some((n, peer));
                    }
                    let mut chunk = [0u8; 16 << 10];
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return None,
                        Ok(n) => inbox.extend_from_slice(&chunk[..n]),
                    }
                }
            }
        }
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Wire::Udp(udp) => udp.as_raw_fd(),
            Wire::Tcp { stream, .. } => stream.as_raw_fd(),
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        match self {
            Wire::Udp(udp) => udp.set_read_timeout(t),
            Wire::Tcp { stream, .. } => stream.set_read_timeout(t),
        }
    }

    fn set_nonblocking(&self) -> std::io::Result<()> {
        match self {
            Wire::Udp(udp) => udp.set_nonblocking(true),
            Wire::Tcp { stream, .. } => stream.set_nonblocking(true),
        }
    }
}

/// Writes what the socket takes of `outbox`.
fn flush(stream: &mut TcpStream, outbox: &mut Vec<u8>) {
    while !outbox.is_empty() {
        match stream.write(outbox) {
            Ok(0) => return,
            Ok(n) => {
                outbox.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A connected media path.
pub struct Leg {
    wire: Wire,
    remote: SocketAddr,
    ice_local: Credentials,
    ice_remote: Credentials,
    /// Protects what we send.
    pub send: Session,
    /// Unprotects what we receive.
    pub recv: Session,
    next_consent: Instant,
}

fn media(e: impl std::fmt::Display) -> ClientError {
    ClientError::Media(e.to_string())
}

/// The first UDP host candidate in an SDP.
pub fn candidate(sdp: &str) -> Option<SocketAddr> {
    candidates(sdp, "udp").next()
}

/// The host candidates of `protocol` (`udp`, or `tcp`: passive ones only,
/// those that take connections) in an SDP, IPv4 and IPv6, in its order.
fn candidates<'a>(sdp: &'a str, protocol: &'a str) -> impl Iterator<Item = SocketAddr> + 'a {
    sdp.lines().filter_map(move |l| {
        let f: Vec<&str> = l.strip_prefix("a=candidate:")?.split_whitespace().collect();
        if !f.get(2)?.eq_ignore_ascii_case(protocol) {
            return None;
        }
        if protocol == "tcp" && !l.contains(" tcptype passive") {
            return None;
        }
        let ip: std::net::IpAddr = f.get(4)?.parse().ok()?;
        Some(SocketAddr::new(ip, f.get(5)?.parse().ok()?))
    })
}

/// A UDP socket for a leg, bound where this host reaches `server` from (the
/// server's media sits where its signalling does, in every setup we drive),
/// and that address as the host candidate to name it by.
pub fn socket_toward(server: SocketAddr) -> Result<(UdpSocket, SocketAddr), ClientError> {
    let any = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let probe = UdpSocket::bind(any).map_err(media)?;
    probe.connect(server).map_err(media)?; // picks a route; sends nothing
    let ip = probe.local_addr().map_err(media)?.ip();
    let udp = UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(media)?;
    let local = udp.local_addr().map_err(media)?;
    Ok((udp, local))
}

/// `sdp` with `local` as the host candidate of every m-line (as a browser
/// that gathered before sending: complete, no trickle).
pub fn with_candidate(sdp: &str, local: SocketAddr) -> String {
    let mut out = String::with_capacity(sdp.len() + 256);
    for line in sdp.lines() {
        let line = line.trim_end();
        if line == "a=end-of-candidates"
            || line == "a=ice-options:trickle"
            || line.starts_with("a=candidate:")
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
        if line.starts_with("a=mid:") {
            out.push_str(&format!(
                "a=candidate:1 1 udp 2122260223 {} {} typ host\r\na=end-of-candidates\r\n",
                local.ip(),
                local.port()
            ));
        }
    }
    out
}

impl Leg {
    /// Connects over `path` to the peer described by `remote_sdp` (its
    /// offer or answer): ICE checks to its first candidate of the path's
    /// protocol, then DTLS as `role` says.
    pub fn connect(
        path: Path,
        remote_sdp: &str,
        ice_local: &Credentials,
        cert: &Certificate,
        role: DtlsRole,
        deadline: Instant,
    ) -> Result<Leg, ClientError> {
        let remote = Offer::parse(remote_sdp).map_err(media)?;
        let (mut wire, to) = match path {
            Path::Udp(udp) => {
                // one of the socket's address family (a dual-stack server
                // offers both)
                let family = udp.local_addr().map_err(media)?.is_ipv4();
                let to = candidates(remote_sdp, "udp")
                    .find(|c| c.is_ipv4() == family)
                    .ok_or_else(|| media("no UDP candidate of our address family in the SDP"))?;
                (Wire::Udp(udp), to)
            }
            Path::Tcp => {
                let to = candidates(remote_sdp, "tcp")
                    .next()
                    .ok_or_else(|| media("no passive TCP candidate in the SDP"))?;
                let wait = deadline.saturating_duration_since(Instant::now());
                let stream = TcpStream::connect_timeout(&to, wait.max(Duration::from_millis(1)))
                    .map_err(media)?;
                stream.set_nodelay(true).map_err(media)?;
                let wire = Wire::Tcp {
                    stream,
                    inbox: Vec::with_capacity(32 << 10),
                    outbox: Vec::with_capacity(TCP_QUEUE),
                };
                (wire, to)
            }
        };
        let (send, recv) = handshake(&mut wire, to, ice_local, &remote, cert, role, deadline)?;
        wire.set_nonblocking().map_err(media)?;
        Ok(Leg {
            wire,
            remote: to,
            ice_local: ice_local.clone(),
            ice_remote: remote.ice,
            send,
            recv,
            next_consent: Instant::now() + Duration::from_secs(2),
        })
    }

    /// A leg without ICE or DTLS to a plain forwarder at `remote` over
    /// `udp`, protecting and unprotecting with `key` (the one every
    /// participant of a plain run shares); no consent checks.
    pub fn plain(udp: UdpSocket, remote: SocketAddr, key: &MasterKey) -> Result<Leg, ClientError> {
        let cfg = SrtpConfig::default();
        let profile = Profile::Aes128CmHmacSha1_80;
        let send = Session::new(profile, key, cfg).map_err(media)?;
        let recv = Session::new(profile, key, cfg).map_err(media)?;
        udp.set_nonblocking(true).map_err(media)?;
        Ok(Leg {
            wire: Wire::Udp(udp),
            remote,
            ice_local: Credentials::random(),
            ice_remote: Credentials::random(),
            send,
            recv,
            next_consent: Instant::now() + Duration::from_secs(365 * 24 * 3600),
        })
    }

    /// The socket, to wait on.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.wire.raw_fd()
    }

    /// Sends a datagram to the peer; whether it went.
    pub fn send_to_peer(&mut self, datagram: &[u8]) -> bool {
        self.wire.send(datagram, self.remote)
    }

    /// The next datagram received, if any (non-blocking).
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.wire.recv(buf, self.remote).map(|(n, _)| n)
    }

    /// Answers the peer's connectivity check in `datagram`, if it is one.
    pub fn answer_check(&mut self, datagram: &[u8]) {
        if let Some(response) = check_response(datagram, self.remote, &self.ice_local) {
            let _ = self.wire.send(&response, self.remote);
        }
    }

    /// Keeps consent fresh (RFC 7675): a check every 5 s.
    pub fn consent(&mut self, now: Instant) {
        if now >= self.next_consent {
            self.next_consent = now + Duration::from_secs(5);
            let check = binding_request(&self.ice_local, &self.ice_remote, false);
            let _ = self.wire.send(&check, self.remote);
        }
    }
}

/// A STUN binding request from us (the controlling side) to the peer.
fn binding_request(local: &Credentials, remote: &Credentials, nominate: bool) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let txid: [u8; 12] = rand::random();
    let Ok(mut w) = StunWriter::new(&mut buf, 0x0001, &txid) else {
        return Vec::new();
    };
    let user = format!("{}:{}", remote.ufrag, local.ufrag);
    let ok = w.add(attr::USERNAME, user.as_bytes()).is_ok()
        && w.add_u32(attr::PRIORITY, 2_130_706_431).is_ok()
        && w.add_u64(attr::ICE_CONTROLLING, rand::random()).is_ok()
        && (!nominate || w.add(attr::USE_CANDIDATE, &[]).is_ok())
        && w.add_message_integrity(remote.pwd.as_bytes()).is_ok()
        && w.add_fingerprint().is_ok();
    if !ok {
        return Vec::new();
    }
    let n = w.finish();
    buf[..n].to_vec()
}

/// Our response to a connectivity check from the peer (a full agent checks
/// back, and libnice does even in Janus's lite mode): success with the
/// address it came from, signed with our password. `None` when `datagram`
/// is no binding request for us.
fn check_response(datagram: &[u8], from: SocketAddr, local: &Credentials) -> Option<Vec<u8>> {
    let m = StunMessage::new_checked(datagram).ok()?;
    if m.message_type() != 0x0001 {
        return None;
    }
    let (ours, _) = m.username()?.split_once(':')?;
    if ours != local.ufrag {
        return None;
    }
    m.verify_integrity(local.pwd.as_bytes()).ok()?;
    let mut buf = [0u8; 256];
    let mut w = StunWriter::new(&mut buf, 0x0101, &m.transaction_id()).ok()?;
    w.add_xor_mapped_address(from).ok()?;
    w.add_message_integrity(local.pwd.as_bytes()).ok()?;
    w.add_fingerprint().ok()?;
    let n = w.finish();
    Some(buf[..n].to_vec())
}

/// ICE check with nomination, then the DTLS handshake: the SRTP sessions
/// (send, receive).
fn handshake(
    udp: &mut Wire,
    to: SocketAddr,
    local: &Credentials,
    remote: &Offer,
    cert: &Certificate,
    role: DtlsRole,
    deadline: Instant,
) -> Result<(Session, Session), ClientError> {
    udp.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(media)?;
    let mut buf = [0u8; 2048];
    let mut dtls = DtlsSession::new(role, cert, Instant::now()).map_err(media)?;
    dtls.set_remote_fingerprint(remote.fingerprint);
    let mut checked = false;
    let mut next_check = Instant::now();
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(media(format!(
                "no {} with {to}",
                if checked { "DTLS" } else { "ICE" }
            )));
        }
        if !checked && now >= next_check {
            next_check = now + Duration::from_millis(100);
            let _ = udp.send(&binding_request(local, &remote.ice, true), to);
        }
        if let Some((n, from)) = udp.recv(&mut buf, to) {
            match PacketKind::classify(&buf[..n]) {
                PacketKind::Stun => {
                    if let Some(response) = check_response(&buf[..n], from, local) {
                        let _ = udp.send(&response, from);
                    } else if StunMessage::new_checked(&buf[..n])
                        .is_ok_and(|m| m.message_type() == 0x0101)
                    {
                        checked = true;
                    }
                }
                PacketKind::Dtls => dtls.handle_datagram(now, &buf[..n]),
                _ => {}
            }
        }
        if checked {
            dtls.handle_timeout(now);
            while let Some(d) = dtls.poll_datagram() {
                let _ = udp.send(&d, to);
            }
            match dtls.poll_event() {
                Some(DtlsEvent::Connected(keys)) => {
                    let cfg = SrtpConfig::default();
                    let send = Session::new(keys.profile, &keys.tx, cfg).map_err(media)?;
                    let recv = Session::new(keys.profile, &keys.rx, cfg).map_err(media)?;
                    return Ok((send, recv));
                }
                Some(DtlsEvent::Failed(e)) => return Err(media(e)),
                _ => {}
            }
        }
    }
}

/// Our DTLS role given the peer's `a=setup` in its answer (`active`: it
/// sends the ClientHello).
pub fn role_for_answer(answer: &str) -> Result<DtlsRole, ClientError> {
    use switchyard_controlplane::sdp::Setup;
    match Offer::parse(answer).map_err(media)?.setup {
        Setup::Active => Ok(DtlsRole::Server),
        _ => Ok(DtlsRole::Client),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_udp_candidate() {
        let sdp = "a=candidate:1 1 tcp 1 10.0.0.1 9 typ host\r\n\
                   a=candidate:1 1 udp 2015363327 192.0.2.2 31914 typ host\r\n";
        assert_eq!(candidate(sdp), Some("192.0.2.2:31914".parse().unwrap()));
        assert_eq!(candidate("a=candidate:1 1 udp 1 nonsense\r\n"), None);
        // IPv6, written without brackets as SDP has it
        let v6 = "a=candidate:2 1 udp 1 2001:db8::7 40000 typ host\r\n";
        assert_eq!(candidate(v6), Some("[2001:db8::7]:40000".parse().unwrap()));
        let both = format!("{v6}a=candidate:1 1 udp 1 192.0.2.2 9 typ host\r\n");
        let v4: Vec<_> = candidates(&both, "udp").filter(|c| c.is_ipv4()).collect();
        assert_eq!(v4, ["192.0.2.2:9".parse().unwrap()]);
    }

    #[test]
    fn answers_checks_with_our_password_only() {
        let (ours, theirs) = (Credentials::random(), Credentials::random());
        // the peer checks us: binding_request from its side
        let check = binding_request(&theirs, &ours, false);
        let from: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let response = check_response(&check, from, &ours).expect("a response");
        let m = StunMessage::new_checked(&response[..]).unwrap();
        assert_eq!(m.message_type(), 0x0101);
        assert!(m.verify_integrity(ours.pwd.as_bytes()).is_ok());
        let request = StunMessage::new_checked(&check[..]).unwrap();
        assert_eq!(m.transaction_id(), request.transaction_id());
        // a check for someone else, or signed with another password
        assert!(check_response(&check, from, &theirs).is_none());
        let forged = binding_request(
            &theirs,
            &Credentials {
                pwd: theirs.pwd.clone(),
                ..ours.clone()
            },
            false,
        );
        assert!(check_response(&forged, from, &ours).is_none());
        assert!(check_response(b"garbage", from, &ours).is_none());
    }

    #[test]
    fn names_our_socket_on_every_m_line() {
        let (udp, local) = socket_toward("127.0.0.1:9".parse().unwrap()).unwrap();
        let port = udp.local_addr().unwrap().port();
        assert_eq!(local, format!("127.0.0.1:{port}").parse().unwrap());
        let sdp = with_candidate(
            "v=0\r\nm=audio 9 x\r\na=mid:0\r\na=candidate:9 1 udp 1 10.0.0.9 9 typ host\r\n\
             m=video 9 x\r\na=mid:1\r\n",
            local,
        );
        let line = format!("a=candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host");
        assert_eq!(sdp.matches(&line).count(), 2, "{sdp}");
        assert!(!sdp.contains("10.0.0.9"));
        assert_eq!(
            candidate(&sdp),
            Some(format!("127.0.0.1:{port}").parse().unwrap())
        );
    }
}
