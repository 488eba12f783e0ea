//! The cluster handshake as two small state machines, one per end, and
//! the sealing of the messages after it (docs/cluster.md,
//! "Authentication"). No I/O: each step takes the text of a frame and
//! returns the text to send.

use super::auth::{self, AuthError, Direction, NONCE_LEN, Secret, Session};
use super::wire::{self, Handshake, Sealed, VERSION};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a handshake or a frame failed: a stable code (sent to an agent in
/// `refused`, logged by both ends) and the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct LinkError {
    /// `bad_proof`, `id_in_use`, `unsupported_version`, `bad_message`.
    pub code: &'static str,
    /// Detail.
    pub reason: String,
}

impl LinkError {
    fn new(code: &'static str, reason: impl Into<String>) -> LinkError {
        LinkError {
            code,
            reason: reason.into(),
        }
    }

    /// The `refused` frame that tells the agent.
    pub fn refused_frame(&self) -> String {
        serde_json::to_string(&Handshake::Refused {
            v: VERSION,
            code: self.code.into(),
            reason: self.reason.clone(),
        })
        .unwrap_or_default()
    }
}

fn bad_message(e: impl std::fmt::Display) -> LinkError {
    LinkError::new("bad_message", crate::signalling::clip(&e.to_string()))
}

fn bad_proof(e: AuthError) -> LinkError {
    LinkError::new("bad_proof", e.to_string())
}

fn version(v: u32) -> Result<(), LinkError> {
    if v != VERSION {
        return Err(LinkError::new(
            "unsupported_version",
            format!("cluster protocol {v}; this end speaks {VERSION}"),
        ));
    }
    Ok(())
}

/// The focus's end before the agent proved itself.
pub struct FocusHandshake {
    secret: Secret,
    nonce: [u8; NONCE_LEN],
}

impl FocusHandshake {
    /// Starts a handshake; the text is the `challenge` to send.
    pub fn start(secret: Secret) -> (FocusHandshake, String) {
        let nonce = auth::nonce();
        let challenge = serde_json::to_string(&Handshake::Challenge {
            v: VERSION,
            nonce: hex::encode(nonce),
        })
        .unwrap_or_default();
        (FocusHandshake { secret, nonce }, challenge)
    }

    /// The agent's `hello`: on success its id, the `welcome` to send and
    /// the session. `in_use` says whether an id has a live link already
    /// (a second agent claiming it is refused).
    pub fn on_hello(
        self,
        text: &str,
        in_use: impl Fn(&str) -> bool,
    ) -> Result<(String, String, Session), LinkError> {
        let Handshake::Hello {
            v,
            id,
            nonce,
            proof,
        } = serde_json::from_str(text).map_err(bad_message)?
        else {
            return Err(bad_message("expected `hello`"));
        };
        version(v)?;
        wire::check_name(&id, "id").map_err(bad_message)?;
        let agent_nonce: [u8; NONCE_LEN] = auth::from_hex(&nonce, "nonce").map_err(bad_message)?;
        let proof: [u8; 32] = auth::from_hex(&proof, "proof").map_err(bad_message)?;
        let expected = self
            .secret
            .agent_proof(&self.nonce, &agent_nonce, &id)
            .map_err(bad_proof)?;
        if !auth::proofs_match(&proof, &expected) {
            return Err(bad_proof(AuthError::BadMac));
        }
        if in_use(&id) {
            return Err(LinkError::new(
                "id_in_use",
                format!("bridge {id} is connected already"),
            ));
        }
        let focus_proof = self
            .secret
            .focus_proof(&self.nonce, &agent_nonce, &id)
            .map_err(bad_proof)?;
        let welcome = serde_json::to_string(&Handshake::Welcome {
            v: VERSION,
            proof: hex::encode(focus_proof),
        })
        .map_err(bad_message)?;
        let session = self
            .secret
            .session(&self.nonce, &agent_nonce, Direction::Down)
            .map_err(bad_proof)?;
        Ok((id, welcome, session))
    }
}

/// The agent's end after it sent `hello`.
pub struct AgentHandshake {
    secret: Secret,
    id: String,
    focus_nonce: [u8; NONCE_LEN],
    nonce: [u8; NONCE_LEN],
}

impl AgentHandshake {
    /// The focus's `challenge`: the handshake and the `hello` to send.
    pub fn on_challenge(
        secret: Secret,
        id: &str,
        text: &str,
    ) -> Result<(AgentHandshake, String), LinkError> {
        let Handshake::Challenge { v, nonce } = serde_json::from_str(text).map_err(bad_message)?
        else {
            return Err(bad_message("expected `challenge`"));
        };
        version(v)?;
        let focus_nonce = auth::from_hex(&nonce, "nonce").map_err(bad_message)?;
        let nonce = auth::nonce();
        let proof = secret
            .agent_proof(&focus_nonce, &nonce, id)
            .map_err(bad_proof)?;
        let hello = serde_json::to_string(&Handshake::Hello {
            v: VERSION,
            id: id.to_string(),
            nonce: hex::encode(nonce),
            proof: hex::encode(proof),
        })
        .map_err(bad_message)?;
        Ok((
            AgentHandshake {
                secret,
                id: id.to_string(),
                focus_nonce,
                nonce,
            },
            hello,
        ))
    }

    /// The focus's `welcome` (or `refused`): the session once the focus
    /// proved it holds the secret too.
    pub fn on_welcome(self, text: &str) -> Result<Session, LinkError> {
        let proof = match serde_json::from_str(text).map_err(bad_message)? {
            Handshake::Welcome { v, proof } => {
                version(v)?;
                proof
            }
            Handshake::Refused { code, reason, .. } => {
                return Err(LinkError::new("refused", format!("{code}: {reason}")));
            }
            _ => return Err(bad_message("expected `welcome`")),
        };
        let proof: [u8; 32] = auth::from_hex(&proof, "proof").map_err(bad_message)?;
        let expected = self
            .secret
            .focus_proof(&self.focus_nonce, &self.nonce, &self.id)
            .map_err(bad_proof)?;
        if !auth::proofs_match(&proof, &expected) {
            return Err(bad_proof(AuthError::BadMac));
        }
        self.secret
            .session(&self.focus_nonce, &self.nonce, Direction::Up)
            .map_err(bad_proof)
    }
}

/// A message sealed for the link.
pub fn seal<M: Serialize>(session: &mut Session, msg: M) -> Result<String, LinkError> {
    let json = serde_json::to_string(&Sealed {
        v: VERSION,
        seq: session.next_seq(),
        msg,
    })
    .map_err(bad_message)?;
    session.seal(&json).map_err(bad_proof)
}

/// A message from the link: its MAC checked, then its sequence number.
pub fn open<M: DeserializeOwned>(session: &mut Session, frame: &str) -> Result<M, LinkError> {
    let json = session.open(frame).map_err(bad_proof)?;
    let sealed: Sealed<M> = serde_json::from_str(json).map_err(bad_message)?;
    version(sealed.v)?;
    session.accept_seq(sealed.seq).map_err(bad_proof)?;
    Ok(sealed.msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::{Down, Up};

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes()).unwrap()
    }

    /// docs/cluster.md's test vectors (computed from its definitions by
    /// an independent implementation).
    #[test]
    fn the_documented_vectors() {
        let secret = secret("0123456789abcdef0123");
        let (nf, na) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        assert_eq!(
            hex::encode(secret.agent_proof(&nf, &na, "b1").unwrap()),
            "98a57ca6be8a8280aa7490767091a6440a875ce407e3386010f28f1f923dd094"
        );
        assert_eq!(
            hex::encode(secret.focus_proof(&nf, &na, "b1").unwrap()),
            "9a0d9edf702154bbb2e8f311ecc8fe4e098d67302174c5c94771eca3b86bb42f"
        );
        let mut up = secret.session(&nf, &na, Direction::Up).unwrap();
        let frame = seal(&mut up, Up::Connected { endpoint: 4 }).unwrap();
        assert_eq!(
            frame,
            "5c00a4e8682409ff7430ab98359dbb7ebab23708aae99a60c6111331d8e2114d.\
             {\"v\":1,\"seq\":0,\"type\":\"connected\",\"endpoint\":4}"
        );
    }

    #[test]
    fn both_ends_prove_the_secret_then_talk_sealed() {
        let (focus, challenge) = FocusHandshake::start(secret("a cluster secret!"));
        let (agent, hello) =
            AgentHandshake::on_challenge(secret("a cluster secret!"), "b1", &challenge).unwrap();
        let (id, welcome, mut down) = focus.on_hello(&hello, |_| false).unwrap();
        assert_eq!(id, "b1");
        let mut up = agent.on_welcome(&welcome).unwrap();
        let frame = seal(&mut up, Up::Connected { endpoint: 4 }).unwrap();
        assert_eq!(
            open::<Up>(&mut down, &frame).unwrap(),
            Up::Connected { endpoint: 4 }
        );
        assert!(open::<Up>(&mut down, &frame).is_err(), "replayed");
        let frame = seal(&mut down, Down::Close { endpoint: 4 }).unwrap();
        assert_eq!(
            open::<Down>(&mut up, &frame).unwrap(),
            Down::Close { endpoint: 4 }
        );
    }

    #[test]
    fn a_wrong_secret_a_taken_id_and_garbage_are_refused() {
        let (focus, challenge) = FocusHandshake::start(secret("a cluster secret!"));
        let (_, hello) =
            AgentHandshake::on_challenge(secret("another secret!!"), "b1", &challenge).unwrap();
        assert_eq!(
            focus.on_hello(&hello, |_| false).unwrap_err().code,
            "bad_proof"
        );

        let (focus, challenge) = FocusHandshake::start(secret("a cluster secret!"));
        let (_, hello) =
            AgentHandshake::on_challenge(secret("a cluster secret!"), "b1", &challenge).unwrap();
        let e = focus.on_hello(&hello, |id| id == "b1").unwrap_err();
        assert_eq!(e.code, "id_in_use");
        assert!(e.refused_frame().contains("\"type\":\"refused\""));

        for garbage in [
            "",
            "{}",
            "\u{0}",
            r#"{"type":"hello","v":2}"#,
            &"[".repeat(10_000),
        ] {
            let (focus, _) = FocusHandshake::start(secret("a cluster secret!"));
            assert!(focus.on_hello(garbage, |_| false).is_err(), "{garbage:.20}");
        }
        // an impostor focus without the secret cannot answer with a welcome
        let (_, challenge) = FocusHandshake::start(secret("a cluster secret!"));
        let (agent, hello) =
            AgentHandshake::on_challenge(secret("a cluster secret!"), "b1", &challenge).unwrap();
        let impostor = FocusHandshake {
            secret: secret("not the secret!!!"),
            nonce: match serde_json::from_str(&challenge).unwrap() {
                Handshake::Challenge { nonce, .. } => auth::from_hex(&nonce, "nonce").unwrap(),
                _ => unreachable!(),
            },
        };
        let forged = impostor.on_hello(&hello, |_| false);
        assert!(forged.is_err(), "the impostor cannot even check the agent");
        let fake_welcome = serde_json::to_string(&Handshake::Welcome {
            v: VERSION,
            proof: hex::encode([0u8; 32]),
        })
        .unwrap();
        assert_eq!(
            agent.on_welcome(&fake_welcome).unwrap_err().code,
            "bad_proof"
        );
    }
}
