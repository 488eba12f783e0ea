//! TURN credentials for browsers that cannot reach the bridge directly
//! (UDP blocked, only a relay allowed out): the time-limited scheme of the
//! "TURN REST API" draft that coturn implements as `use-auth-secret`.
//!
//! The operator's TURN server and Switchyard share a secret. For each
//! participant Switchyard makes a username `<expiry>:<participant id>`
//! (expiry in Unix seconds) and a password `base64(HMAC-SHA1(secret,
//! username))`; the TURN server recomputes the password from the username
//! and refuses it after the expiry. Nothing is stored, and a leaked
//! credential stops working by itself.
//!
//! The credentials go to the browser in `joined` and `resumed`
//! (`ice_servers`, docs/signalling.md); docs/deployment.md has a coturn
//! configuration.

use hmac::{KeyInit, Mac};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// Shortest shared secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 16;

/// Default lifetime of a credential: a day, long enough for a meeting and
/// its ICE restarts; `resumed` hands out a fresh one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why a TURN setting is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TurnError {
    /// The secret is too short to resist guessing.
    #[error("the TURN secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    /// A URL is not a `turn:` or `turns:` URI (RFC 7065).
    #[error("not a TURN URL (turn:host[:port][?transport=udp|tcp] or turns:…): {0}")]
    BadUrl(String),
    /// URLs without a secret, or a secret without URLs.
    #[error("TURN needs both --turn-url and --turn-secret-file")]
    Incomplete,
    /// A lifetime of zero.
    #[error("the TURN credential lifetime must be positive")]
    ZeroTtl,
}

/// One entry of `ice_servers`, as `RTCPeerConnection` takes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IceServer {
    /// The TURN server's URLs.
    pub urls: Vec<String>,
    /// `<expiry>:<participant id>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

/// The operator's TURN servers and the secret shared with them.
#[derive(Clone)]
pub struct Turn {
    urls: Vec<String>,
    secret: Zeroizing<Vec<u8>>,
    ttl: Duration,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("urls", &self.urls)
            .field("secret", &"…")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl PartialEq for Turn {
    fn eq(&self, other: &Turn) -> bool {
        self.urls == other.urls && self.ttl == other.ttl && *self.secret == *other.secret
    }
}

/// Whether `url` is a TURN URI: `turn:` or `turns:`, a host, an optional
/// port and an optional `?transport=udp|tcp`.
fn valid_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("turn:")
        .or_else(|| url.strip_prefix("turns:"))
    else {
        return false;
    };
    let (host_port, query) = rest.split_once('?').unwrap_or((rest, ""));
    let transport_ok = matches!(query, "" | "transport=udp" | "transport=tcp");
    let host_ok = !host_port.is_empty()
        && !host_port.contains(['/', '@', ' '])
        && host_port.chars().all(|c| c.is_ascii_graphic());
    transport_ok && host_ok
}

impl Turn {
    /// TURN servers at `urls` sharing `secret` (surrounding whitespace, as
    /// a file written by `echo` has, is not part of it); credentials live
    /// `ttl`.
    pub fn new(urls: Vec<String>, secret: &[u8], ttl: Duration) -> Result<Turn, TurnError> {
        if let Some(bad) = urls.iter().find(|u| !valid_url(u)) {
            return Err(TurnError::BadUrl(bad.clone()));
        }
        if urls.is_empty() {
            return Err(TurnError::Incomplete);
        }
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET_LEN {
            return Err(TurnError::WeakSecret);
        }
        if ttl.is_zero() {
            return Err(TurnError::ZeroTtl);
        }
        Ok(Turn {
            urls,
            secret: Zeroizing::new(secret.to_vec()),
            ttl,
        })
    }

    /// Credentials for participant `id`, valid from `now` for the lifetime.
    pub fn credentials(&self, id: &str, now: SystemTime) -> IceServer {
        let expiry = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(self.ttl)
            .as_secs();
        let username = format!("{expiry}:{id}");
        let mut mac = match HmacSha1::new_from_slice(&self.secret) {
            Ok(m) => m,
            // HMAC takes keys of any length; this arm is not reachable.
            Err(_) => unreachable!("HMAC accepts every key length"),
        };
        mac.update(username.as_bytes());
        let credential = openssl::base64::encode_block(&mac.finalize().into_bytes());
        IceServer {
            urls: self.urls.clone(),
            username,
            credential,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"north-sea-turn-secret\n";

    fn turn() -> Turn {
        Turn::new(
            vec!["turn:turn.example.com:3478?transport=udp".into()],
            SECRET,
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn the_password_is_the_base64_hmac_sha1_of_the_username() {
        // the vector from Python's hmac module (an implementation of its own):
        // base64.b64encode(hmac.new(b"north-sea-turn-secret",
        //   b"1700000000:p7", hashlib.sha1).digest())
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000 - 3600);
        let c = turn().credentials("p7", now);
        assert_eq!(c.username, "1700000000:p7");
        assert_eq!(c.credential, "+PR7RjvWMb7upsuMMZCSTuTL/yc=");
        assert_eq!(c.urls, ["turn:turn.example.com:3478?transport=udp"]);
    }

    #[test]
    fn each_participant_and_each_hour_gets_its_own() {
        let t = turn();
        let now = SystemTime::now();
        let a = t.credentials("p1", now);
        assert_ne!(a.credential, t.credentials("p2", now).credential);
        let later = t.credentials("p1", now + Duration::from_secs(3600));
        assert_ne!(a.username, later.username);
        assert_ne!(a.credential, later.credential);
    }

    #[test]
    fn bad_settings_are_refused() {
        let ok = || vec!["turns:turn.example.com:443?transport=tcp".to_string()];
        let ttl = Duration::from_secs(60);
        assert_eq!(
            Turn::new(ok(), b"short", ttl).unwrap_err(),
            TurnError::WeakSecret
        );
        assert_eq!(
            Turn::new(vec![], SECRET, ttl).unwrap_err(),
            TurnError::Incomplete
        );
        assert_eq!(
            Turn::new(ok(), SECRET, Duration::ZERO).unwrap_err(),
            TurnError::ZeroTtl
        );
        for bad in [
            "stun:turn.example.com",
            "turn:",
            "https://turn.example.com",
            "turn:user@turn.example.com",
            "turn:turn.example.com?transport=sctp",
            "turn:turn example.com",
        ] {
            assert_eq!(
                Turn::new(vec![bad.into()], SECRET, ttl).unwrap_err(),
                TurnError::BadUrl(bad.into()),
                "{bad}"
            );
        }
        for good in [
            "turn:10.0.0.1",
            "turn:[2001:db8::1]:3478",
            "turns:turn.example.com:443?transport=tcp",
        ] {
            assert!(Turn::new(vec![good.into()], SECRET, ttl).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let shown = format!("{:?}", turn());
        assert!(!shown.contains("north-sea"), "{shown}");
    }
}
