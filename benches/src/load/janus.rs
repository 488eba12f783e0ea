//! One simulated browser against Janus's videoroom plugin, over Janus's own
//! WebSocket API (`janus-protocol`): a session, a publisher handle that
//! joins with the same Chrome-shaped offer as against Switchyard, and — once
//! everyone has published — a multistream subscriber handle that takes
//! Janus's offer for the other members' feeds. Two peer connections, so two
//! [`Leg`]s: Janus answers the publisher as the DTLS client.
//!
//! Janus runs ICE-lite here (`nat.ice_lite`), as Switchyard does, so the
//! client's ICE is the same for both.

use super::Participant;
use super::client::{ClientError, answer, next_message, offer, send_json, sig};
use super::leg::{Leg, Path, role_for_answer, socket_toward, with_candidate};
use super::media::{Browser, Window};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use switchyard_controlplane::dtls::{Certificate, DtlsRole};
use switchyard_controlplane::ice::Credentials;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

type Result<T> = std::result::Result<T, ClientError>;

/// Our offer lists its rids lowest layer first (as Chrome's does); Janus
/// assumes the opposite unless told.
const LAYERS_LOW_TO_HIGH: &str = "lmh";

/// Janus's "room already exists".
const ROOM_EXISTS: i64 = 427;

/// Where a participant sits: Janus room and feed ids are numbers, made
/// unique per run from `run`.
#[derive(Debug, Clone, Copy)]
pub struct Seat {
    /// Random per run, so runs against one Janus never meet.
    pub run: u32,
    /// Room index in the run.
    pub room: usize,
    /// Client index in the run.
    pub client: usize,
    /// Publishers a room holds.
    pub room_size: usize,
}

impl Seat {
    /// The room's id in Janus.
    pub fn room_id(&self) -> u64 {
        (u64::from(self.run) << 16) | self.room as u64
    }

    /// Client `i`'s feed id in Janus.
    pub fn feed_id(&self, i: usize) -> u64 {
        (u64::from(self.run) << 20) | (i as u64 + 1)
    }
}

/// A simulated browser in a Janus videoroom.
pub struct JanusClient {
    ws: WebSocket<TcpStream>,
    server: SocketAddr,
    session: u64,
    seat: Seat,
    ice_local: Credentials,
    cert: Certificate,
    publisher: Leg,
    subscriber: Option<Leg>,
    browser: Browser,
    next_keepalive: Instant,
}

/// A fresh transaction id: Janus echoes it in what answers a request.
fn transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Sends a Janus request and waits for its outcome: the `success` or the
/// plugin's `event` with the same transaction (`ack`s and other events are
/// skipped).
fn request(ws: &mut WebSocket<TcpStream>, mut body: Value, deadline: Instant) -> Result<Value> {
    let tx = transaction();
    body["transaction"] = tx.clone().into();
    send_json(ws, body)?;
    loop {
        let m = next_message(ws, deadline)?;
        if m["transaction"] != tx.as_str() || m["janus"] == "ack" {
            continue;
        }
        if m["janus"] == "error" {
            return Err(sig(format!("janus: {}", m["error"])));
        }
        return Ok(m);
    }
}

/// The plugin's error code in a response, if it reports one.
fn plugin_error(m: &Value) -> Option<(i64, String)> {
    let data = &m["plugindata"]["data"];
    data["error_code"].as_i64().map(|code| {
        let text = data["error"].as_str().unwrap_or_default().to_string();
        (code, text)
    })
}

fn jsep_sdp(m: &Value, kind: &str) -> Result<String> {
    if m["jsep"]["type"] != kind {
        return Err(sig(format!("expected a JSEP {kind}, got {m}")));
    }
    Ok(m["jsep"]["sdp"].as_str().unwrap_or_default().to_string())
}

impl JanusClient {
    /// Opens a session on Janus's WebSocket API at `addr`, makes sure the
    /// seat's room exists, joins it as a publisher and completes ICE and
    /// DTLS; sends nothing until [`Participant::resume_sending`].
    pub fn connect(addr: SocketAddr, seat: Seat, name: &str, epoch: Instant) -> Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let tcp = TcpStream::connect(addr).map_err(sig)?;
        tcp.set_nodelay(true).map_err(sig)?;
        let mut req = format!("ws://{addr}/").into_client_request().map_err(sig)?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static("janus-protocol"),
        );
        let (mut ws, _) = tungstenite::client(req, tcp).map_err(sig)?;
        let created = request(&mut ws, json!({"janus":"create"}), deadline)?;
        let session = created["data"]["id"]
            .as_u64()
            .ok_or_else(|| sig(format!("no session id in {created}")))?;
        let handle = attach(&mut ws, session, deadline)?;
        let room = request(
            &mut ws,
            json!({"janus":"message","session_id":session,"handle_id":handle,"body":{
                "request":"create","room":seat.room_id(),"publishers":seat.room_size,
                "videocodec":"vp8","audiocodec":"opus","bitrate":0,"fir_freq":0,
            }}),
            deadline,
        )?;
        match plugin_error(&room) {
            None => {}
            Some((ROOM_EXISTS, _)) => {} // a room mate made it first
            Some((code, text)) => return Err(sig(format!("creating the room: {code} {text}"))),
        }
        let ice_local = Credentials::random();
        let cert = Certificate::generate().map_err(sig)?;
        let browser = Browser::new(epoch);
        let (udp, local) = socket_toward(addr)?;
        let sdp = with_candidate(&offer(&ice_local, &cert, browser.sender.ssrcs[0]), local);
        let joined = request(
            &mut ws,
            json!({"janus":"message","session_id":session,"handle_id":handle,
                "body":{"request":"joinandconfigure","ptype":"publisher","room":seat.room_id(),
                        "id":seat.feed_id(seat.client),"display":name,"audio":true,"video":true},
                "jsep":{"type":"offer","sdp":sdp,"rid_order":LAYERS_LOW_TO_HIGH}}),
            deadline,
        )?;
        if let Some((code, text)) = plugin_error(&joined) {
            return Err(sig(format!("joining as publisher: {code} {text}")));
        }
        let answer_sdp = jsep_sdp(&joined, "answer")?;
        candidates_done(&mut ws, session, handle)?;
        let role = role_for_answer(&answer_sdp)?;
        let publisher = Leg::connect(
            Path::Udp(udp),
            &answer_sdp,
            &ice_local,
            &cert,
            role,
            deadline,
        )?;
        // requests from here on wait through `next_message`, which polls
        ws.get_mut().set_nonblocking(true).map_err(sig)?;
        Ok(JanusClient {
            ws,
            server: addr,
            session,
            seat,
            ice_local,
            cert,
            publisher,
            subscriber: None,
            browser,
            next_keepalive: Instant::now() + Duration::from_secs(20),
        })
    }

    fn keepalive(&mut self, now: Instant) -> Result<()> {
        if now >= self.next_keepalive {
            self.next_keepalive = now + Duration::from_secs(20);
            let tx = transaction();
            send_json(
                &mut self.ws,
                json!({"janus":"keepalive","session_id":self.session,"transaction":tx}),
            )?;
        }
        Ok(())
    }

    /// Reads what Janus pushed; a hangup of either peer connection ends the
    /// client.
    fn signalling(&mut self) -> Result<()> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let m: Value = serde_json::from_str(&t).map_err(sig)?;
                    if m["janus"] == "hangup" || m["janus"] == "detached" {
                        return Err(sig(format!("janus hung up: {m}")));
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

/// Tells Janus it has all our candidates (they are in our SDP).
fn candidates_done(ws: &mut WebSocket<TcpStream>, session: u64, handle: u64) -> Result<()> {
    let tx = transaction();
    send_json(
        ws,
        json!({"janus":"trickle","session_id":session,"handle_id":handle,
            "candidate":{"completed":true},"transaction":tx}),
    )
}

fn attach(ws: &mut WebSocket<TcpStream>, session: u64, deadline: Instant) -> Result<u64> {
    let attached = request(
        ws,
        json!({"janus":"attach","session_id":session,"plugin":"janus.plugin.videoroom"}),
        deadline,
    )?;
    attached["data"]["id"]
        .as_u64()
        .ok_or_else(|| sig(format!("no handle id in {attached}")))
}

impl Participant for JanusClient {
    fn subscribe(&mut self, others: &[usize]) -> Result<()> {
        if others.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let handle = attach(&mut self.ws, self.session, deadline)?;
        // audio, and the video at its top layer (mids of our offer)
        let streams: Vec<Value> = others
            .iter()
            .flat_map(|&i| {
                let feed = self.seat.feed_id(i);
                [
                    json!({"feed": feed, "mid": "0"}),
                    json!({"feed": feed, "mid": "1", "substream": 2, "temporal": 2}),
                ]
            })
            .collect();
        let attached = request(
            &mut self.ws,
            json!({"janus":"message","session_id":self.session,"handle_id":handle,
                "body":{"request":"join","ptype":"subscriber","room":self.seat.room_id(),
                        "streams":streams}}),
            deadline,
        )?;
        if let Some((code, text)) = plugin_error(&attached) {
            return Err(sig(format!("subscribing: {code} {text}")));
        }
        let janus_offer = jsep_sdp(&attached, "offer")?;
        let (udp, local) = socket_toward(self.server)?;
        let ours = with_candidate(&answer(&janus_offer, &self.ice_local, &self.cert), local);
        let started = request(
            &mut self.ws,
            json!({"janus":"message","session_id":self.session,"handle_id":handle,
                "body":{"request":"start"},"jsep":{"type":"answer","sdp":ours}}),
            deadline,
        )?;
        if let Some((code, text)) = plugin_error(&started) {
            return Err(sig(format!("starting the subscription: {code} {text}")));
        }
        candidates_done(&mut self.ws, self.session, handle)?;
        // Janus offered actpass; our answer took the active role
        let leg = Leg::connect(
            Path::Udp(udp),
            &janus_offer,
            &self.ice_local,
            &self.cert,
            DtlsRole::Client,
            deadline,
        )?;
        self.subscriber = Some(leg);
        Ok(())
    }

    fn tick(&mut self, now: Instant, window: &mut Window) -> Result<()> {
        self.signalling()?;
        self.keepalive(now)?;
        // the publisher's connection only carries RTCP back: keyframe requests
        self.browser.publish_on(&mut self.publisher, now, window);
        if let Some(sub) = &mut self.subscriber {
            self.browser.receive_on(sub, now, window);
        }
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
        let mut fds = vec![self.ws.get_ref().as_raw_fd(), self.publisher.fd()];
        fds.extend(self.subscriber.as_ref().map(Leg::fd));
        fds
    }

    fn leave(&mut self) {
        let tx = transaction();
        let _ = send_json(
            &mut self.ws,
            json!({"janus":"destroy","session_id":self.session,"transaction":tx}),
        );
        let _ = self.ws.close(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_run_and_fit_a_javascript_number() {
        let a = Seat {
            run: u32::MAX,
            room: 3,
            client: 7,
            room_size: 5,
        };
        let b = Seat { run: 1, ..a };
        assert_ne!(a.room_id(), b.room_id());
        assert_ne!(a.feed_id(7), a.feed_id(8));
        assert!(a.feed_id(7) < 1 << 53 && a.room_id() < 1 << 53);
    }

    #[test]
    fn plugin_errors_are_read() {
        let m = json!({"plugindata":{"data":{"error_code":427,"error":"Room 1 already exists"}}});
        assert_eq!(plugin_error(&m).map(|e| e.0), Some(ROOM_EXISTS));
        assert_eq!(plugin_error(&json!({"janus":"success"})), None);
    }
}
