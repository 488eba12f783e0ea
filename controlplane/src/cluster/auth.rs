//! Who is on the other end of a cluster link, and that every frame after
//! the handshake comes from it (docs/cluster.md, "Authentication").
//!
//! Both ends hold the cluster secret and never send it. The focus opens
//! with a random nonce; the agent proves it holds the secret with an
//! HMAC over both nonces and its id; the focus proves the same the other
//! way. Both then derive a session key from the secret and the nonces, and
//! every later frame is `MAC.JSON`: 64 hex digits of HMAC-SHA256 under the
//! session key over the direction and the JSON text, which carries a
//! sequence number counting from 0 in each direction. A frame replayed,
//! reordered, reflected or changed fails the check.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use zeroize::Zeroizing;

/// Bytes in a nonce.
pub const NONCE_LEN: usize = 32;
/// Shortest cluster secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 16;
/// Hex digits of a MAC at the start of a sealed frame.
const MAC_HEX: usize = 64;

/// Labels that keep each use of the secret apart.
const AGENT_PROOF: &[u8] = b"switchyard-cluster-v1 agent";
const FOCUS_PROOF: &[u8] = b"switchyard-cluster-v1 focus";
const SESSION_KEY: &[u8] = b"switchyard-cluster-v1 session";

/// Which way a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Agent to focus.
    Up,
    /// Focus to agent.
    Down,
}

impl Direction {
    fn label(self) -> &'static [u8] {
        match self {
            Direction::Up => b"up",
            Direction::Down => b"down",
        }
    }
}

/// Why a frame or proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The proof or MAC does not match: another secret, or a changed frame.
    #[error("wrong cluster secret or altered frame")]
    BadMac,
    /// Not `MAC.JSON`.
    #[error("frame not sealed (expected 64 hex digits, '.', JSON)")]
    NotSealed,
    /// A frame out of order or replayed.
    #[error("frame {got} where {expected} was due")]
    OutOfOrder {
        /// Sequence number received.
        got: u64,
        /// Sequence number due.
        expected: u64,
    },
    /// Not hex, or the wrong length.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The secret is too short to protect anything.
    #[error("the cluster secret must have at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    /// The crypto library failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

/// The cluster secret (zeroized on drop, never printed).
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        proofs_match(&self.0, &other.0)
    }
}

impl Secret {
    /// A secret from its bytes (surrounding whitespace, as a file written
    /// by `echo` has, is not part of it).
    pub fn new(bytes: &[u8]) -> Result<Secret, AuthError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret);
        }
        Ok(Secret(Zeroizing::new(trimmed.to_vec())))
    }

    /// Whether `candidate` is the secret (as [`Secret::new`] reads it), in
    /// constant time.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        proofs_match(&self.0, candidate.trim_ascii())
    }

    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; 32], AuthError> {
        hmac(&self.0, parts)
    }

    /// The agent's proof: HMAC(secret, label ‖ focus nonce ‖ agent nonce ‖ id).
    pub fn agent_proof(
        &self,
        focus_nonce: &[u8; NONCE_LEN],
        agent_nonce: &[u8; NONCE_LEN],
        id: &str,
    ) -> Result<[u8; 32], AuthError> {
        self.mac(&[AGENT_PROOF, focus_nonce, agent_nonce, id.as_bytes()])
    }

    /// The focus's proof: HMAC(secret, label ‖ agent nonce ‖ focus nonce ‖ id).
    pub fn focus_proof(
        &self,
        focus_nonce: &[u8; NONCE_LEN],
        agent_nonce: &[u8; NONCE_LEN],
        id: &str,
    ) -> Result<[u8; 32], AuthError> {
        self.mac(&[FOCUS_PROOF, agent_nonce, focus_nonce, id.as_bytes()])
    }

    /// The session key: HMAC(secret, label ‖ focus nonce ‖ agent nonce).
    pub fn session(
        &self,
        focus_nonce: &[u8; NONCE_LEN],
        agent_nonce: &[u8; NONCE_LEN],
        sending: Direction,
    ) -> Result<Session, AuthError> {
        let key = self.mac(&[SESSION_KEY, focus_nonce, agent_nonce])?;
        Ok(Session {
            key: Zeroizing::new(key),
            sending,
            sent: 0,
            received: 0,
        })
    }
}

/// A random nonce.
pub fn nonce() -> [u8; NONCE_LEN] {
    use rand::Rng;
    rand::rng().random()
}

/// Whether two proofs are equal, in constant time.
pub fn proofs_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// `n` bytes from hex.
pub fn from_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], AuthError> {
    let v = hex::decode(s).map_err(|_| AuthError::Malformed(what))?;
    v.try_into().map_err(|_| AuthError::Malformed(what))
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], AuthError> {
    let crypto = |e: openssl::error::ErrorStack| AuthError::Crypto(e.to_string());
    let pkey = PKey::hmac(key).map_err(crypto)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &pkey).map_err(crypto)?;
    for p in parts {
        // each part with its length, so that no two splits collide
        signer
            .update(&(p.len() as u64).to_be_bytes())
            .map_err(crypto)?;
        signer.update(p).map_err(crypto)?;
    }
    let mut out = [0u8; 32];
    signer.sign(&mut out).map_err(crypto)?;
    Ok(out)
}

/// One end of an authenticated link: seals what it sends, opens what it
/// receives, and keeps both sequences.
pub struct Session {
    key: Zeroizing<[u8; 32]>,
    sending: Direction,
    sent: u64,
    received: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sending", &self.sending)
            .field("sent", &self.sent)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The sequence number the next sealed frame must carry.
    pub fn next_seq(&self) -> u64 {
        self.sent
    }

    /// Seals `json` (which carries `"seq": next_seq()`) as `MAC.JSON`.
    pub fn seal(&mut self, json: &str) -> Result<String, AuthError> {
        let mac = hmac(&*self.key, &[self.sending.label(), json.as_bytes()])?;
        self.sent += 1;
        Ok(format!("{}.{json}", hex::encode(mac)))
    }

    /// Checks a received frame's MAC and returns its JSON; `seq` is what
    /// the JSON says its sequence number is, checked by
    /// [`Session::accept_seq`] once parsed.
    pub fn open<'a>(&self, frame: &'a str) -> Result<&'a str, AuthError> {
        let incoming = match self.sending {
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        };
        let (mac, json) = frame
            .split_at_checked(MAC_HEX)
            .and_then(|(m, rest)| Some((m, rest.strip_prefix('.')?)))
            .ok_or(AuthError::NotSealed)?;
        let mac: [u8; 32] = from_hex(mac, "MAC")?;
        let expected = hmac(&*self.key, &[incoming.label(), json.as_bytes()])?;
        if !proofs_match(&mac, &expected) {
            return Err(AuthError::BadMac);
        }
        Ok(json)
    }

    /// Accepts the sequence number of an opened frame: it must be the next.
    pub fn accept_seq(&mut self, seq: u64) -> Result<(), AuthError> {
        if seq != self.received {
            return Err(AuthError::OutOfOrder {
                got: seq,
                expected: self.received,
            });
        }
        self.received += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session) {
        let s = Secret::new(b"0123456789abcdef0123").unwrap();
        let (f, a) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        (
            s.session(&f, &a, Direction::Down).unwrap(),
            s.session(&f, &a, Direction::Up).unwrap(),
        )
    }

    #[test]
    fn proofs_bind_the_secret_the_nonces_and_the_id() {
        let s = Secret::new(b"0123456789abcdef0123\n").unwrap();
        let other = Secret::new(b"0123456789abcdef0124").unwrap();
        let (f, a) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let p = s.agent_proof(&f, &a, "b1").unwrap();
        assert_eq!(
            p,
            Secret::new(b"0123456789abcdef0123")
                .unwrap()
                .agent_proof(&f, &a, "b1")
                .unwrap()
        );
        assert_ne!(p, other.agent_proof(&f, &a, "b1").unwrap());
        assert_ne!(p, s.agent_proof(&f, &a, "b2").unwrap());
        assert_ne!(p, s.agent_proof(&a, &f, "b1").unwrap());
        assert_ne!(p, s.focus_proof(&f, &a, "b1").unwrap(), "no reflection");
        assert_eq!(Secret::new(b"short").unwrap_err(), AuthError::WeakSecret);
    }

    #[test]
    fn sealed_frames_open_once_in_order_and_only_the_other_way() {
        let (mut focus, mut agent) = pair();
        let one = focus.seal(r#"{"seq":0}"#).unwrap();
        let two = focus.seal(r#"{"seq":1}"#).unwrap();
        assert_eq!(agent.open(&one).unwrap(), r#"{"seq":0}"#);
        agent.accept_seq(0).unwrap();
        assert!(
            matches!(agent.accept_seq(0), Err(AuthError::OutOfOrder { .. })),
            "replay"
        );
        assert_eq!(agent.open(&two).unwrap(), r#"{"seq":1}"#);
        agent.accept_seq(1).unwrap();
        // reflected back to its sender
        assert_eq!(focus.open(&one), Err(AuthError::BadMac));
        // changed in flight
        let changed = one.replace("0}", "9}");
        assert_eq!(agent.open(&changed), Err(AuthError::BadMac));
        assert_eq!(agent.open("not sealed"), Err(AuthError::NotSealed));
        assert_eq!(agent.open(&"z".repeat(70)), Err(AuthError::NotSealed));
        let up = agent.seal(r#"{"seq":0}"#).unwrap();
        assert!(focus.open(&up).is_ok());
    }
}
