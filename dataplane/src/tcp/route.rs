//! Which worker an ICE-TCP connection belongs to.
//!
//! Every worker has its own UDP port, but ICE-TCP has one port for the whole
//! host. The front learns a connection's worker from its first packet: the
//! browser (the active side, RFC 6544 §4.1) opens with a STUN Binding
//! request whose USERNAME is `<bridge ufrag>:<browser ufrag>`, and the
//! bridge's ufrag begins with the worker's index in two characters of the
//! ICE alphabet (`A–Z a–z 0–9 + /` as digits 0–63, most significant
//! first): `AA…` is worker 0, `AB…` worker 1, `BA…` worker 64. The control
//! plane makes every ufrag that way ([`ufrag_prefix`]); docs/abi.md states
//! the rule for other control planes.

use switchyard_wire::stun::{MessageClass, StunMessage, method};

/// The ICE characters (RFC 8445 §5.3), in digit order.
pub const ICE_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Most workers two characters can name.
pub const MAX_ROUTED_WORKERS: usize = 64 * 64;

/// Why a connection's first packet names no worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// Not a STUN Binding request.
    NotBindingRequest,
    /// A Binding request without a USERNAME of the form `bridge:browser`
    /// whose bridge part starts with a worker index.
    BadUsername,
}

/// The first two characters of a ufrag for `worker` (below
/// [`MAX_ROUTED_WORKERS`]).
pub fn ufrag_prefix(worker: usize) -> [u8; 2] {
    let w = worker % MAX_ROUTED_WORKERS;
    [ICE_ALPHABET[w / 64], ICE_ALPHABET[w % 64]]
}

/// The worker a bridge ufrag names.
pub fn worker_of_ufrag(ufrag: &[u8]) -> Option<usize> {
    let digit = |c: u8| ICE_ALPHABET.iter().position(|&a| a == c);
    match ufrag {
        [a, b, ..] => Some(digit(*a)? * 64 + digit(*b)?),
        _ => None,
    }
}

/// The worker a connection's first packet is for.
pub fn route(packet: &[u8]) -> Result<usize, NoRoute> {
    let m = StunMessage::new_checked(packet).map_err(|_| NoRoute::NotBindingRequest)?;
    if m.class() != MessageClass::Request || m.method() != method::BINDING {
        return Err(NoRoute::NotBindingRequest);
    }
    let username = m.username().ok_or(NoRoute::BadUsername)?;
    let (bridge, _) = username.split_once(':').ok_or(NoRoute::BadUsername)?;
    worker_of_ufrag(bridge.as_bytes()).ok_or(NoRoute::BadUsername)
}

/// Whether a packet from the worker is a STUN Binding success response:
/// the control plane checked the request's MESSAGE-INTEGRITY before it
/// sent one, so the connection belongs to a real session.
pub fn is_binding_success(packet: &[u8]) -> bool {
    StunMessage::new_checked(packet)
        .is_ok_and(|m| m.class() == MessageClass::Success && m.method() == method::BINDING)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_wire::stun::{StunWriter, attr};

    fn request(username: Option<&str>, kind: u16) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(&mut buf, kind, &[7; 12]).unwrap();
        if let Some(u) = username {
            w.add(attr::USERNAME, u.as_bytes()).unwrap();
        }
        w.add_fingerprint().unwrap();
        let n = w.finish();
        buf[..n].to_vec()
    }

    #[test]
    fn every_worker_round_trips_through_its_prefix() {
        for w in 0..MAX_ROUTED_WORKERS {
            assert_eq!(worker_of_ufrag(&ufrag_prefix(w)), Some(w));
        }
        assert_eq!(&ufrag_prefix(0), b"AA");
        assert_eq!(&ufrag_prefix(1), b"AB");
        assert_eq!(&ufrag_prefix(64), b"BA");
        assert_eq!(worker_of_ufrag(b"A"), None);
        assert_eq!(worker_of_ufrag(b"A-xx"), None);
    }

    #[test]
    fn the_first_binding_request_names_the_worker() {
        assert_eq!(route(&request(Some("ADxyz123:brow"), 0x0001)), Ok(3));
        assert_eq!(
            route(&request(Some("ADxyz123"), 0x0001)),
            Err(NoRoute::BadUsername)
        );
        assert_eq!(route(&request(None, 0x0001)), Err(NoRoute::BadUsername));
        assert_eq!(
            route(&request(Some("AD:b"), 0x0101)),
            Err(NoRoute::NotBindingRequest),
            "a response is no opening"
        );
        assert_eq!(
            route(b"\x16\xfe\xfd garbage"),
            Err(NoRoute::NotBindingRequest)
        );
        assert!(is_binding_success(&request(None, 0x0101)));
        assert!(!is_binding_success(&request(None, 0x0111)));
    }
}
