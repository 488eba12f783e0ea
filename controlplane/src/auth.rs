//! Optional room tokens (JWT), in the spirit of Jitsi's token
//! authentication: with a configured secret (HS256) or public key (RS256)
//! a `join` must carry a token whose `room` claim names the room (or `*`)
//! and which has not expired. Without one, rooms are open.

use crate::signalling::{ErrorCode, ProtocolError};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How joins are authorised.
#[derive(Clone)]
pub enum TokenPolicy {
    /// No token needed.
    Open,
    /// Tokens signed with HMAC-SHA256 under this secret.
    Hs256(DecodingKey),
    /// Tokens signed with RSA-SHA256 by the holder of this public key.
    Rs256(DecodingKey),
}

impl TokenPolicy {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> TokenPolicy {
        TokenPolicy::Hs256(DecodingKey::from_secret(secret))
    }

    /// RS256 with a PEM public key.
    pub fn rs256(pem: &[u8]) -> Result<TokenPolicy, String> {
        DecodingKey::from_rsa_pem(pem)
            .map(TokenPolicy::Rs256)
            .map_err(|e| format!("RS256 public key: {e}"))
    }
}

/// The claims Switchyard reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct RoomClaims {
    /// The room the token admits to, or `*` for any.
    pub room: String,
    /// Expiry, unix seconds (required).
    pub exp: u64,
    /// Optional subject (user id), kept for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The holder may mute and remove others in the room.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
}

/// An HS256 room token with `claims`, signed with `secret` — what a
/// service in front of Switchyard hands its users (docs/signalling.md,
/// "Room tokens"); the tests make theirs with it.
pub fn hs256_token(
    secret: &[u8],
    claims: &RoomClaims,
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
}

/// Checks a join against the policy.
pub fn authorize(
    policy: &TokenPolicy,
    token: Option<&str>,
    room: &str,
) -> Result<Option<RoomClaims>, ProtocolError> {
    let unauthorized = |m: &str| ProtocolError::new(ErrorCode::Unauthorized, m);
    let (key, alg) = match policy {
        TokenPolicy::Open => return Ok(None),
        TokenPolicy::Hs256(k) => (k, Algorithm::HS256),
        TokenPolicy::Rs256(k) => (k, Algorithm::RS256),
    };
    let token = token.ok_or_else(|| unauthorized("this server requires a token"))?;
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = 30;
    let data = jsonwebtoken::decode::<RoomClaims>(token, key, &validation)
        .map_err(|e| unauthorized(&format!("token rejected: {e}")))?;
    let claims = data.claims;
    if claims.room != "*" && claims.room != room {
        return Err(unauthorized("token is for another room"));
    }
    Ok(Some(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(secret: &[u8], room: &str, exp: u64) -> String {
        let claims = RoomClaims {
            room: room.into(),
            exp,
            sub: None,
            moderator: false,
        };
        hs256_token(secret, &claims).unwrap()
    }

    #[test]
    fn open_rooms_need_nothing() {
        assert_eq!(authorize(&TokenPolicy::Open, None, "r"), Ok(None));
    }

    #[test]
    fn hs256_tokens_are_checked() {
        let p = TokenPolicy::hs256(b"s3cret");
        let ok = token(b"s3cret", "standup", now() + 600);
        assert_eq!(
            authorize(&p, Some(&ok), "standup").unwrap().unwrap().room,
            "standup"
        );
        let any = token(b"s3cret", "*", now() + 600);
        assert!(authorize(&p, Some(&any), "other").is_ok());
        for (t, room) in [
            (None, "standup"),
            (Some(ok.clone()), "other"),
            (Some(token(b"wrong", "standup", now() + 600)), "standup"),
            (Some(token(b"s3cret", "standup", now() - 3600)), "standup"),
            (Some("not.a.jwt".to_string()), "standup"),
        ] {
            let e = authorize(&p, t.as_deref(), room).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthorized, "{t:?} {room}");
        }
    }

    #[test]
    fn bad_rs256_key_is_a_clear_error() {
        assert!(TokenPolicy::rs256(b"not a pem").is_err());
    }
}
