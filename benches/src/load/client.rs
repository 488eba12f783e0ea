//! One simulated browser: signalling over the documented WebSocket protocol,
//! an offer shaped like Chrome's (audio, three-layer VP8 simulcast with
//! RTX), ICE connectivity checks with its credentials, a DTLS client
//! handshake, then SRTP. Setup blocks; afterwards [`Client::tick`] does a
//! slice of work without blocking, so one thread drives many clients.

use super::stream::{STAMP_LEN, Stamp, StreamStats};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use switchyard_controlplane::dtls::{Certificate, DtlsEvent, DtlsRole, DtlsSession};
use switchyard_controlplane::ice::Credentials;
use switchyard_controlplane::sdp::Offer;
use switchyard_srtp::{Config as SrtpConfig, Session};
use switchyard_wire::demux::PacketKind;
use switchyard_wire::rtcp::{Compound, Packet};
use switchyard_wire::rtp::{Extension, RtpHeader, RtpPacket};
use switchyard_wire::stun::{StunMessage, StunWriter, attr};
use tungstenite::{Message, WebSocket};

/// Chrome's offer, whose credentials and fingerprint each client replaces.
const OFFER: &str =
    include_str!("../../../controlplane/src/sdp/testdata/chrome_simulcast_offer.sdp");

/// Simulcast layers: rid, bit/s, and the frame size that makes it at 30 fps.
pub const LAYERS: [(&str, u32); 3] = [("q", 150_000), ("h", 500_000), ("f", 1_500_000)];
const FPS: u64 = 30;
/// Largest payload per video packet.
const MTU_PAYLOAD: usize = 1100;
/// Where the stamp sits in a video payload (after the VP8 descriptor and
/// frame header).
const VIDEO_STAMP_AT: usize = 16;
/// Extension ids in [`OFFER`].
const EXT_AUDIO_LEVEL: u8 = 1;
const EXT_TWCC: u8 = 3;
const EXT_MID: u8 = 4;
const EXT_RID: u8 = 10;

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

fn sig(e: impl std::fmt::Display) -> ClientError {
    ClientError::Signalling(e.to_string())
}

/// What a client sends.
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    /// Stream id of its audio; video layers are `base + 1 + layer`.
    pub stream_base: u32,
}

/// Counters of one client.
#[derive(Default)]
pub struct Counts {
    /// RTP packets sent.
    pub sent: u64,
    /// Bytes sent.
    pub sent_bytes: u64,
    /// RTP packets received and decrypted.
    pub received: u64,
    /// Bytes received.
    pub received_bytes: u64,
    /// Packets that failed to decrypt or carried no stamp.
    pub bad: u64,
    /// Keyframes sent because the SFU asked (PLI).
    pub keyframes_on_request: u64,
}

/// A simulated browser.
pub struct Client {
    ws: WebSocket<TcpStream>,
    udp: UdpSocket,
    server: SocketAddr,
    ice_local: Credentials,
    ice_remote: Credentials,
    send: Session,
    recv: Session,
    cert: Certificate,
    publish: Option<Publish>,
    epoch: Instant,
    next_audio: Instant,
    next_video: Instant,
    next_consent: Instant,
    frame: u64,
    keyframe_due: bool,
    seq: [u16; 4],
    stream_seq: [u64; 4],
    twcc: u16,
    ssrcs: [u32; 4],
    /// What this client received, per stream id.
    pub streams: HashMap<u32, StreamStats>,
    /// One-way latency of everything received (µs).
    pub latency: Histogram<u64>,
    /// Counters.
    pub counts: Counts,
    buf: Vec<u8>,
}

fn next_message(ws: &mut WebSocket<TcpStream>, deadline: Instant) -> Result<serde_json::Value> {
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

fn send_json(ws: &mut WebSocket<TcpStream>, v: serde_json::Value) -> Result<()> {
    ws.send(Message::Text(v.to_string().into())).map_err(sig)
}

/// Our offer: Chrome's, with our ICE credentials, certificate and audio
/// SSRC (the video layers are announced by rid).
fn offer(ice: &Credentials, cert: &Certificate, audio_ssrc: u32) -> String {
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
fn answer(server_offer: &str, ice: &Credentials, cert: &Certificate) -> String {
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
    /// Joins `room` on the server at `http` as `name`, publishing if
    /// `publish` says so, and completes ICE and DTLS.
    pub fn connect(
        http: SocketAddr,
        room: &str,
        name: &str,
        publish: Option<Publish>,
        epoch: Instant,
    ) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(20);
        // a server still attaching its dataplane says so: try again shortly
        let mut ws = loop {
            let tcp = TcpStream::connect(http).map_err(sig)?;
            tcp.set_nodelay(true).map_err(sig)?;
            let (mut ws, _) = tungstenite::client(format!("ws://{http}/ws"), tcp).map_err(sig)?;
            send_json(
                &mut ws,
                serde_json::json!({"v":1,"type":"join","room":room,"name":name}),
            )?;
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
        let ssrc_base = rand::random::<u32>() & 0xffff_ff00;
        let ssrcs = [ssrc_base + 1, ssrc_base + 2, ssrc_base + 3, ssrc_base + 4];
        send_json(
            &mut ws,
            serde_json::json!({"v":1,"type":"offer","sdp":offer(&ice_local, &cert, ssrcs[0])}),
        )?;
        let answer_sdp = loop {
            let m = next_message(&mut ws, deadline)?;
            match m["type"].as_str() {
                Some("answer") => break m["sdp"].as_str().unwrap_or_default().to_string(),
                Some("error") => return Err(sig(format!("offer refused: {m}"))),
                _ => {}
            }
        };
        let answer = Offer::parse(&answer_sdp).map_err(sig)?;
        let server = answer_sdp
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.strip_prefix("a=candidate:")?.split_whitespace().collect();
                format!("{}:{}", f.get(4)?, f.get(5)?)
                    .parse::<SocketAddr>()
                    .ok()
            })
            .ok_or_else(|| sig("no candidate in the answer"))?;
        let bind = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let udp = UdpSocket::bind(bind).map_err(|e| ClientError::Media(e.to_string()))?;
        let (send, recv) = handshake(&udp, server, &ice_local, &answer, &cert, deadline)?;
        udp.set_nonblocking(true)
            .map_err(|e| ClientError::Media(e.to_string()))?;
        ws.get_mut().set_nonblocking(true).map_err(sig)?;
        let now = Instant::now();
        Ok(Client {
            ws,
            udp,
            server,
            ice_local,
            ice_remote: answer.ice.clone(),
            send,
            recv,
            cert,
            publish,
            epoch,
            next_audio: now,
            next_video: now,
            next_consent: now + Duration::from_secs(2),
            frame: 0,
            keyframe_due: true,
            seq: [1000; 4],
            stream_seq: [0; 4],
            twcc: 1,
            ssrcs,
            streams: HashMap::new(),
            latency: super::stream::latency_histogram(),
            counts: Counts::default(),
            buf: vec![0u8; 2048],
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

    /// A slice of work: signalling, received packets, due sends.
    pub fn tick(&mut self, now: Instant) -> Result<()> {
        self.signalling()?;
        self.receive(now);
        if now >= self.next_consent {
            self.next_consent = now + Duration::from_secs(5);
            let check = binding_request(&self.ice_local, &self.ice_remote, false);
            let _ = self.udp.send_to(&check, self.server);
        }
        if self.publish.is_some() {
            while now >= self.next_audio {
                self.send_audio(now);
                self.next_audio += Duration::from_millis(20);
            }
            while now >= self.next_video {
                self.send_frame(now);
                self.next_video += Duration::from_nanos(1_000_000_000 / FPS);
            }
        }
        Ok(())
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

    fn receive(&mut self, now: Instant) {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        loop {
            let n = match self.udp.recv(&mut self.buf) {
                Ok(n) => n,
                Err(_) => return,
            };
            match PacketKind::classify(&self.buf[..n]) {
                PacketKind::Rtp => {
                    let Ok(len) = self.recv.unprotect_rtp(&mut self.buf[..n]) else {
                        self.counts.bad += 1;
                        continue;
                    };
                    let Ok(p) = RtpPacket::new_checked(&self.buf[..len]) else {
                        self.counts.bad += 1;
                        continue;
                    };
                    let payload = p.payload();
                    let stamp = Stamp::read(payload)
                        .or_else(|| Stamp::read(payload.get(VIDEO_STAMP_AT..).unwrap_or(&[])));
                    let Some(stamp) = stamp else {
                        continue; // RTX padding probes carry copies; count only stamped media
                    };
                    if p.payload_type() != 111 && p.payload_type() != 96 {
                        continue; // retransmissions and probes
                    }
                    self.counts.received += 1;
                    self.counts.received_bytes += n as u64;
                    self.streams
                        .entry(stamp.stream)
                        .or_default()
                        .packet(stamp.seq);
                    let us = now_ns.saturating_sub(stamp.sent_ns) / 1000;
                    let _ = self.latency.record(us.max(1));
                }
                PacketKind::Rtcp => {
                    let Ok(len) = self.recv.unprotect_rtcp(&mut self.buf[..n]) else {
                        continue;
                    };
                    let pli = Compound::new(&self.buf[..len])
                        .any(|p| matches!(p, Ok(Packet::Pli(_)) | Ok(Packet::Fir(_))));
                    if pli && self.publish.is_some() {
                        self.keyframe_due = true;
                        self.counts.keyframes_on_request += 1;
                    }
                }
                _ => {} // STUN responses to consent checks
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_rtp(
        &mut self,
        i: usize,
        pt: u8,
        marker: bool,
        ts: u32,
        ext: &[Extension<'_>],
        payload: &[u8],
    ) {
        let twcc = self.twcc.to_be_bytes();
        self.twcc = self.twcc.wrapping_add(1);
        let mut exts = [Extension {
            id: EXT_TWCC,
            data: &twcc,
        }; 3];
        let n_ext = 1 + ext.len().min(2);
        exts[1..n_ext].copy_from_slice(&ext[..n_ext - 1]);
        let exts = &exts[..n_ext];
        let h = RtpHeader {
            marker,
            payload_type: pt,
            sequence_number: self.seq[i],
            timestamp: ts,
            ssrc: self.ssrcs[i],
            csrcs: &[],
            extensions: exts,
        };
        self.seq[i] = self.seq[i].wrapping_add(1);
        let mut pkt = [0u8; 1500];
        let Ok(n) = h.emit(&mut pkt) else { return };
        if n + payload.len() + 16 > pkt.len() {
            return;
        }
        pkt[n..n + payload.len()].copy_from_slice(payload);
        let Ok(len) = self.send.protect_rtp(&mut pkt, n + payload.len()) else {
            return;
        };
        if self.udp.send_to(&pkt[..len], self.server).is_ok() {
            self.counts.sent += 1;
            self.counts.sent_bytes += len as u64;
        }
    }

    fn stamp(&mut self, now: Instant, i: usize) -> Stamp {
        let base = self.publish.map_or(0, |p| p.stream_base);
        let s = Stamp {
            stream: base + i as u32,
            seq: self.stream_seq[i],
            sent_ns: now.saturating_duration_since(self.epoch).as_nanos() as u64,
        };
        self.stream_seq[i] += 1;
        s
    }

    fn send_audio(&mut self, now: Instant) {
        let mut payload = [0u8; 100];
        self.stamp(now, 0).write(&mut payload);
        let level = [0x80 | 30u8]; // voice, −30 dBov
        let ts = (self.stream_seq[0] as u32).wrapping_mul(960);
        let ext = [
            Extension {
                id: EXT_MID,
                data: b"0",
            },
            Extension {
                id: EXT_AUDIO_LEVEL,
                data: &level,
            },
        ];
        self.send_rtp(0, 111, false, ts, &ext, &payload);
    }

    fn send_frame(&mut self, now: Instant) {
        let key = std::mem::take(&mut self.keyframe_due) || self.frame.is_multiple_of(FPS * 5);
        let ts = (self.frame as u32).wrapping_mul(3000);
        for (layer, (rid, bps)) in LAYERS.iter().enumerate() {
            let mut frame_bytes = (*bps as u64 / 8 / FPS) as usize;
            if key {
                frame_bytes *= 3;
            }
            let packets = frame_bytes.div_ceil(MTU_PAYLOAD).max(1);
            for k in 0..packets {
                let i = 1 + layer;
                let size = (frame_bytes / packets).max(VIDEO_STAMP_AT + STAMP_LEN);
                let mut payload = [0u8; MTU_PAYLOAD + 64];
                let pid = (self.frame as u16) & 0x7fff;
                // X S | I | M + picture id | TL0PICIDX | TID Y
                payload[..6].copy_from_slice(&[
                    if k == 0 { 0x90 } else { 0x80 },
                    0xe0,
                    0x80 | (pid >> 8) as u8,
                    pid as u8,
                    self.frame as u8,
                    0x20,
                ]);
                // VP8 frame tag: P bit clear on keyframes
                payload[6] = if key { 0x10 } else { 0x11 };
                let stamp = self.stamp(now, i);
                stamp.write(&mut payload[VIDEO_STAMP_AT..]);
                let ext = [
                    Extension {
                        id: EXT_MID,
                        data: b"1",
                    },
                    Extension {
                        id: EXT_RID,
                        data: rid.as_bytes(),
                    },
                ];
                self.send_rtp(i, 96, k + 1 == packets, ts, &ext, &payload[..size]);
            }
        }
        self.frame += 1;
    }

    /// Stops sending (what is in flight still arrives).
    pub fn stop_sending(&mut self) {
        self.publish = None;
    }

    /// Starts (again) sending as `publish` says, from now on, with a keyframe.
    pub fn resume_sending(&mut self, publish: Option<Publish>) {
        let now = Instant::now();
        self.publish = publish;
        self.next_audio = now;
        self.next_video = now;
        self.keyframe_due = true;
    }

    /// Leaves the room.
    pub fn leave(mut self) {
        let _ = send_json(&mut self.ws, serde_json::json!({"v":1,"type":"leave"}));
        let _ = self.ws.close(None);
    }
}

/// A STUN binding request from us (the controlling browser) to the server.
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

/// ICE check with nomination, then the DTLS client handshake: the SRTP
/// sessions (send, receive).
fn handshake(
    udp: &UdpSocket,
    server: SocketAddr,
    local: &Credentials,
    answer: &Offer,
    cert: &Certificate,
    deadline: Instant,
) -> Result<(Session, Session)> {
    let media = |e: &dyn std::fmt::Display| ClientError::Media(e.to_string());
    udp.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| media(&e))?;
    let mut buf = [0u8; 2048];
    let mut dtls =
        DtlsSession::new(DtlsRole::Client, cert, Instant::now()).map_err(|e| media(&e))?;
    dtls.set_remote_fingerprint(answer.fingerprint);
    let mut checked = false;
    let mut next_check = Instant::now();
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(ClientError::Media(format!(
                "no {} with {server}",
                if checked { "DTLS" } else { "ICE" }
            )));
        }
        if !checked && now >= next_check {
            next_check = now + Duration::from_millis(100);
            let _ = udp.send_to(&binding_request(local, &answer.ice, true), server);
        }
        if let Ok((n, _)) = udp.recv_from(&mut buf) {
            match PacketKind::classify(&buf[..n]) {
                PacketKind::Stun
                    if StunMessage::new_checked(&buf[..n])
                        .is_ok_and(|m| m.message_type() == 0x0101) =>
                {
                    checked = true;
                }
                PacketKind::Dtls => dtls.handle_datagram(now, &buf[..n]),
                _ => {}
            }
        }
        if checked {
            dtls.handle_timeout(now);
            while let Some(d) = dtls.poll_datagram() {
                let _ = udp.send_to(&d, server);
            }
            match dtls.poll_event() {
                Some(DtlsEvent::Connected(keys)) => {
                    let cfg = SrtpConfig::default();
                    let send = Session::new(keys.profile, &keys.tx, cfg).map_err(|e| media(&e))?;
                    let recv = Session::new(keys.profile, &keys.rx, cfg).map_err(|e| media(&e))?;
                    return Ok((send, recv));
                }
                Some(DtlsEvent::Failed(e)) => return Err(media(&e)),
                _ => {}
            }
        }
    }
}
