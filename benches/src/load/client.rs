//! One simulated browser against Switchyard: signalling over the documented
//! WebSocket protocol, an offer shaped like Chrome's (audio, three-layer VP8
//! simulcast with RTX), then one [`Leg`] for all media. Setup blocks;
//! afterwards [`Client::tick`] does a slice of work without blocking, so one
//! thread drives many clients.

use super::Participant;
use super::leg::{Leg, Path, role_for_answer, socket_toward, with_candidate};
use super::media::{Browser, Window};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchyard_controlplane::dtls::Certificate;
use switchyard_controlplane::ice::Credentials;
use tungstenite::{Message, WebSocket};

/// Chrome's offer, whose credentials and fingerprint each client replaces.
const OFFER: &str =
    include_str!("../../../controlplane/src/sdp/testdata/chrome_simulcast_offer.sdp");

/// Why a client could not get going.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Signalling failed.
    #[error("signalling: {0}")]
    Signalling(String),
    /// ICE or DTLS did not complete.
    #[error("media setup: {0}")]
    Media(String),
}

type Result<T> = std::result::Result<T, ClientError>;

pub(super) fn sig(e: impl std::fmt::Display) -> ClientError {
    ClientError::Signalling(e.to_string())
}

/// A simulated browser in a Switchyard room.
pub struct Client {
    ws: WebSocket<TcpStream>,
    leg: Leg,
    ice_local: Credentials,
    cert: Certificate,
    browser: Browser,
}

pub(super) fn next_message(
    ws: &mut WebSocket<TcpStream>,
    deadline: Instant,
) -> Result<serde_json::Value> {
    loop {
        if Instant::now() > deadline {
            return Err(sig("timed out waiting for the server"));
        }
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).map_err(sig),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(sig(e)),
        }
    }
}

pub(super) fn send_json(ws: &mut WebSocket<TcpStream>, v: serde_json::Value) -> Result<()> {
    ws.send(Message::Text(v.to_string().into())).map_err(sig)
}

/// Our offer: Chrome's, with our ICE credentials, certificate and audio
/// SSRC (the video layers are announced by rid).
pub(super) fn offer(ice: &Credentials, cert: &Certificate, audio_ssrc: u32) -> String {
    let mut out = String::new();
    for line in OFFER.lines() {
        let line = line.trim_end();
        let mapped = if let Some(rest) = line.strip_prefix("a=ssrc:1001 ") {
            format!("a=ssrc:{audio_ssrc} {rest}")
        } else if line.starts_with("a=ice-ufrag:") {
            format!("a=ice-ufrag:{}", ice.ufrag)
        } else if line.starts_with("a=ice-pwd:") {
            format!("a=ice-pwd:{}", ice.pwd)
        } else if line.starts_with("a=fingerprint:") {
            format!("a=fingerprint:{}", cert.fingerprint().to_sdp())
        } else {
            line.to_string()
        };
        out.push_str(&mapped);
        out.push_str("\r\n");
    }
    out
}

/// A browser's answer to a server offer: directions mirrored, our
/// credentials, the active DTLS role.
pub(super) fn answer(server_offer: &str, ice: &Credentials, cert: &Certificate) -> String {
    let mut out = String::new();
    for line in server_offer.lines() {
        let line = line.trim_end();
        let mapped = match line {
            "a=sendonly" => "a=recvonly".to_string(),
            "a=recvonly" => "a=sendonly".to_string(),
            "a=ice-lite" => continue,
            "a=setup:passive" | "a=setup:actpass" => "a=setup:active".to_string(),
            l if l.starts_with("a=ice-ufrag:") => format!("a=ice-ufrag:{}", ice.ufrag),
            l if l.starts_with("a=ice-pwd:") => format!("a=ice-pwd:{}", ice.pwd),
            l if l.starts_with("a=fingerprint:") => {
                format!("a=fingerprint:{}", cert.fingerprint().to_sdp())
            }
            l if l.starts_with("a=candidate") || l == "a=end-of-candidates" => continue,
            // the server's send lines become our receive lines: no ssrc/msid of ours
            l if l.starts_with("a=ssrc") || l.starts_with("a=msid:") => continue,
            l => l.to_string(),
        };
        out.push_str(&mapped);
        out.push_str("\r\n");
    }
    out.replace("a=rid:q recv", "a=rid:q send")
        .replace("a=rid:h recv", "a=rid:h send")
        .replace("a=rid:f recv", "a=rid:f send")
        .replace("a=simulcast:recv", "a=simulcast:send")
}

impl Client {
    /// Joins `room` on the server at `http` as `name` (from `region`, if
    /// given) and completes ICE and DTLS; sends nothing until
    /// [`Participant::resume_sending`].
    pub fn connect(
        http: SocketAddr,
        room: &str,
        name: &str,
        region: Option<&str>,
        tcp: bool,
        epoch: Instant,
    ) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(20);
        // a server still attaching its dataplane says so: try again shortly
        let mut ws = loop {
            let tcp = TcpStream::connect(http).map_err(sig)?;
            tcp.set_nodelay(true).map_err(sig)?;
            let (mut ws, _) = tungstenite::client(format!("ws://{http}/ws"), tcp).map_err(sig)?;
            let mut join = serde_json::json!({"v":1,"type":"join","room":room,"name":name});
            if let Some(region) = region {
                join["region"] = region.into();
            }
            send_json(&mut ws, join)?;
            let joined = next_message(&mut ws, deadline)?;
            if joined["type"] == "joined" {
                break ws;
            }
            let starting = joined["message"]
                .as_str()
                .is_some_and(|m| m.contains("retry"));
            if !starting || Instant::now() > deadline {
                return Err(sig(format!("join refused: {joined}")));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let ice_local = Credentials::random();
        let cert = Certificate::generate().map_err(sig)?;
        let browser = Browser::new(epoch);
        let (udp, local) = socket_toward(http)?;
        let sdp = with_candidate(&offer(&ice_local, &cert, browser.sender.ssrcs[0]), local);
        send_json(&mut ws, serde_json::json!({"v":1,"type":"offer","sdp":sdp}))?;
        let answer_sdp = loop {
            let m = next_message(&mut ws, deadline)?;
            match m["type"].as_str() {
                Some("answer") => break m["sdp"].as_str().unwrap_or_default().to_string(),
                Some("error") => return Err(sig(format!("offer refused: {m}"))),
                _ => {}
            }
        };
        let role = role_for_answer(&answer_sdp)?;
        // over ICE-TCP the UDP socket only named us in the offer (the
        // server, ICE-lite, never checks toward the browser)
        let path = if tcp { Path::Tcp } else { Path::Udp(udp) };
        let leg = Leg::connect(path, &answer_sdp, &ice_local, &cert, role, deadline)?;
        ws.get_mut().set_nonblocking(true).map_err(sig)?;
        Ok(Client {
            ws,
            leg,
            ice_local,
            cert,
            browser,
        })
    }

    /// Asks for every remote video at its top layer.
    pub fn want_top_layers(&mut self, sources: &[String]) -> Result<()> {
        let max: serde_json::Map<String, serde_json::Value> =
            sources.iter().map(|s| (s.clone(), 720.into())).collect();
        send_json(
            &mut self.ws,
            serde_json::json!({"v":1,"type":"constraints","max_height":max}),
        )
    }

    fn signalling(&mut self) -> Result<()> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let m: serde_json::Value = serde_json::from_str(&t).map_err(sig)?;
                    match m["type"].as_str() {
                        Some("offer") => {
                            let sdp = answer(
                                m["sdp"].as_str().unwrap_or_default(),
                                &self.ice_local,
                                &self.cert,
                            );
                            send_json(
                                &mut self.ws,
                                serde_json::json!({"v":1,"type":"answer","sdp":sdp}),
                            )?;
                        }
                        Some("source_added") if m["source"]["kind"] == "video" => {
                            let id = m["source"]["id"].as_str().unwrap_or_default().to_string();
                            self.want_top_layers(&[id])?;
                        }
                        Some("error") => return Err(sig(format!("server error: {m}"))),
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Ok(());
                }
                Err(e) => return Err(sig(e)),
            }
        }
    }
}

impl Participant for Client {
    fn tick(&mut self, now: Instant, window: &mut Window) -> Result<()> {
        self.signalling()?;
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
        use std::os::fd::AsRawFd;
        vec![self.ws.get_ref().as_raw_fd(), self.leg.fd()]
    }

    fn leave(&mut self) {
        let _ = send_json(&mut self.ws, serde_json::json!({"v":1,"type":"leave"}));
        let _ = self.ws.close(None);
    }
}
