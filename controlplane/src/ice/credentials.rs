//! ICE credentials (RFC 8445 §5.3): a username fragment of at least 4 and a
//! password of at least 22 `ice-char`s (`A–Z a–z 0–9 + /`).

use rand::Rng;

const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A ufrag / password pair.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`; the MESSAGE-INTEGRITY key.
    pub pwd: String,
}

impl core::fmt::Debug for Credentials {
    /// The password is a secret: only the ufrag is shown.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Fresh random credentials (8-character ufrag, 24-character password).
    pub fn random() -> Credentials {
        let mut rng = rand::rng();
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| ICE_CHARS[rng.random_range(0..ICE_CHARS.len())] as char)
                .collect()
        };
        Credentials {
            ufrag: pick(8),
            pwd: pick(24),
        }
    }

    /// Fresh random credentials for a transport on dataplane worker
    /// `worker`: the ufrag's first two characters name the worker, so the
    /// dataplane's ICE-TCP front knows where a connection belongs
    /// (`switchyard_dataplane::tcp::route`).
    pub fn for_worker(worker: usize) -> Credentials {
        let mut c = Credentials::random();
        let prefix = switchyard_dataplane::tcp::route::ufrag_prefix(worker);
        c.ufrag
            .replace_range(..2, &String::from_utf8_lossy(&prefix));
        c
    }

    /// Checks remote credentials from SDP against the RFC's grammar.
    pub fn parse(ufrag: &str, pwd: &str) -> Option<Credentials> {
        let ok = |s: &str, min: usize| {
            (min..=256).contains(&s.len()) && s.bytes().all(|b| ICE_CHARS.contains(&b))
        };
        (ok(ufrag, 4) && ok(pwd, 22)).then(|| Credentials {
            ufrag: ufrag.into(),
            pwd: pwd.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_s_credentials_name_it_and_stay_valid() {
        for w in [0, 1, 63, 64, 4095] {
            let c = Credentials::for_worker(w);
            assert_eq!(
                switchyard_dataplane::tcp::route::worker_of_ufrag(c.ufrag.as_bytes()),
                Some(w)
            );
            assert_eq!(Credentials::parse(&c.ufrag, &c.pwd), Some(c));
        }
    }

    #[test]
    fn random_credentials_are_valid_and_distinct() {
        let a = Credentials::random();
        let b = Credentials::random();
        assert!(Credentials::parse(&a.ufrag, &a.pwd).is_some());
        assert_ne!(a.pwd, b.pwd);
        assert!(Credentials::parse("abc", &a.pwd).is_none());
        assert!(Credentials::parse("abcd", "short").is_none());
        assert!(Credentials::parse("ab;d", &a.pwd).is_none());
        assert!(!format!("{a:?}").contains(&a.pwd));
    }
}
