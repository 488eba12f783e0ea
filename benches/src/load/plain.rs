//! One participant against `switchyard-plainfwd`, the baseline of
//! `benches/compare.sh`: `JOIN <room>` over its media socket (answered
//! `OK`), then media as a Switchyard client sends it — SRTP with the key
//! every plain participant shares, audio and only the top video layer —
//! and whatever the forwarder copies to it from the room.

use super::Participant;
use super::client::ClientError;
use super::leg::{Leg, socket_toward};
use super::media::{Browser, Window};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_srtp::{MasterKey, Profile};

/// The key and salt every plain participant protects and unprotects with
/// (a benchmark's, never a secret).
const KEY: [u8; 16] = *b"plain-fwd-bench!";
const SALT: [u8; 14] = *b"baseline-salt!";

/// A simulated browser in a plain forwarder's room.
pub struct PlainClient {
    leg: Leg,
    browser: Browser,
}

impl PlainClient {
    /// Joins `room` at the forwarder `server` (tries for 5 s).
    pub fn connect(
        server: SocketAddr,
        room: &str,
        epoch: Instant,
    ) -> Result<PlainClient, ClientError> {
        let media = |e: std::io::Error| ClientError::Media(e.to_string());
        let (udp, _) = socket_toward(server)?;
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(media)?;
        let join = format!("JOIN {room}");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 64];
        loop {
            if Instant::now() > deadline {
                return Err(ClientError::Signalling(format!(
                    "no OK from the plain forwarder at {server}"
                )));
            }
            udp.send_to(join.as_bytes(), server).map_err(media)?;
            if let Ok((n, from)) = udp.recv_from(&mut buf)
                && from == server
                && &buf[..n] == b"OK"
            {
                break;
            }
        }
        let key = MasterKey::new(Profile::Aes128CmHmacSha1_80, &KEY, &SALT)
            .map_err(|e| ClientError::Media(e.to_string()))?;
        Ok(PlainClient {
            leg: Leg::plain(udp, server, &key)?,
            browser: Browser::new(epoch),
        })
    }
}

impl Participant for PlainClient {
    fn tick(&mut self, now: Instant, window: &mut Window) -> Result<(), ClientError> {
        self.browser.publish_on(&mut self.leg, now, window);
        Ok(())
    }

    fn browser(&self) -> &Browser {
        &self.browser
    }

    fn browser_mut(&mut self) -> &mut Browser {
        &mut self.browser
    }

    fn fds(&self) -> Vec<std::os::fd::RawFd> {
        vec![self.leg.fd()]
    }

    fn leave(&mut self) {
        let _ = self.leg.send_to_peer(b"LEAVE");
    }
}
