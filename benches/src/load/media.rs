//! What a simulated browser sends and what it makes of what it receives:
//! Opus-shaped audio with an audio level, three-layer VP8-shaped simulcast
//! with keyframes (periodic and on request), each payload stamped; received
//! SRTP decrypted, checked and counted per stream with its one-way latency.

use super::leg::Leg;
use super::stream::{STAMP_LEN, Stamp, StreamStats};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use switchyard_wire::demux::PacketKind;
use switchyard_wire::rtcp::{Compound, Packet};
use switchyard_wire::rtp::{Extension, RtpHeader, RtpPacket};

/// Simulcast layers: rid, bit/s (the frame size that makes it at 30 fps)
/// and picture size.
pub const LAYERS: [(&str, u32, (u16, u16)); 3] = [
    ("q", 150_000, (320, 180)),
    ("h", 500_000, (640, 360)),
    ("f", 1_500_000, (1280, 720)),
];
const FPS: u64 = 30;
/// A keyframe every 5 s.
const KEYFRAME_INTERVAL_S: u64 = 5;
/// Opus packets every 20 ms.
const AUDIO_INTERVAL_US: u64 = 20_000;
/// Largest payload per video packet.
const MTU_PAYLOAD: usize = 1100;
/// Where the stamp sits in a video payload (after the VP8 descriptor and
/// frame header).
const VIDEO_STAMP_AT: usize = 16;
/// Extension ids of the Chrome offer the clients send.
const EXT_AUDIO_LEVEL: u8 = 1;
const EXT_TWCC: u8 = 3;
const EXT_MID: u8 = 4;
const EXT_RID: u8 = 10;
/// Payload types of that offer.
const PT_OPUS: u8 = 111;
const PT_VP8: u8 = 96;

/// What a client sends.
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    /// Stream id of its audio; video layers are `base + 1 + layer`.
    pub stream_base: u32,
    /// Only the top video layer (for a forwarder that sends everything it
    /// gets: what an SFU would forward of this publisher).
    pub top_only: bool,
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

/// What one client measured.
pub struct Stats {
    /// What it received, per stream id.
    pub streams: HashMap<u32, StreamStats>,
    /// One-way latency of everything received (µs).
    pub latency: Histogram<u64>,
    /// Counters.
    pub counts: Counts,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            streams: HashMap::new(),
            latency: super::stream::latency_histogram(),
            counts: Counts::default(),
        }
    }
}

/// What the clients of one thread saw since the last look: one-way latency
/// and packets seen missing on arrival (a later one came first; most are
/// lost, some only late) — the per-second view of a run.
pub struct Window {
    /// One-way latency (µs).
    pub latency: Histogram<u64>,
    /// Packets missing on arrival.
    pub gaps: u64,
    /// Latency counts for packets sent from here on (ns of the run's
    /// clock): the first second of media, every client's first keyframe at
    /// once, is a join transient, not the steady state measured.
    pub latency_from_ns: u64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            latency: super::stream::latency_histogram(),
            gaps: 0,
            latency_from_ns: 0,
        }
    }
}

impl Window {
    /// Adds `other` to this window.
    pub fn add(&mut self, other: &Window) {
        let _ = self.latency.add(&other.latency);
        self.gaps += other.gaps;
    }

    /// Empties the window (the warm-up stays).
    pub fn reset(&mut self) {
        self.latency.reset();
        self.gaps = 0;
    }
}

/// The sending half of a publishing client.
pub struct Sender {
    publish: Option<Publish>,
    epoch: Instant,
    next_audio: Instant,
    next_video: Instant,
    frame: u64,
    keyframe_due: bool,
    seq: [u16; 4],
    stream_seq: [u64; 4],
    twcc: u16,
    /// Audio, then the three video layers.
    pub ssrcs: [u32; 4],
}

impl Sender {
    /// A sender with random SSRCs that does not send yet; stamps count
    /// time from `epoch`.
    pub fn new(epoch: Instant) -> Sender {
        let base = rand::random::<u32>() & 0xffff_ff00;
        let now = Instant::now();
        Sender {
            publish: None,
            epoch,
            next_audio: now,
            next_video: now,
            frame: 0,
            keyframe_due: true,
            seq: [1000; 4],
            stream_seq: [0; 4],
            twcc: 1,
            ssrcs: [base + 1, base + 2, base + 3, base + 4],
        }
    }

    /// Sends what is due by `now` over `leg`.
    pub fn tick(&mut self, now: Instant, leg: &mut Leg, counts: &mut Counts) {
        if self.publish.is_none() {
            return;
        }
        while now >= self.next_audio {
            self.send_audio(leg, counts);
            self.next_audio += Duration::from_micros(AUDIO_INTERVAL_US);
        }
        while now >= self.next_video {
            self.send_frame(leg, counts);
            self.next_video += Duration::from_nanos(1_000_000_000 / FPS);
        }
    }

    /// When the next packet is due (`None` while not sending).
    pub fn next_due(&self) -> Option<Instant> {
        self.publish.map(|_| self.next_audio.min(self.next_video))
    }

    /// The next frame is a keyframe (the SFU asked for one).
    pub fn keyframe(&mut self, counts: &mut Counts) {
        if self.publish.is_some() {
            self.keyframe_due = true;
            counts.keyframes_on_request += 1;
        }
    }

    /// Stops sending (what is in flight still arrives).
    pub fn stop(&mut self) {
        self.publish = None;
    }

    /// Starts (again) sending as `publish` says, with a keyframe, at a
    /// random phase of the audio and frame intervals: browsers do not send
    /// in step, and clients that did would meet the SFU as one burst.
    pub fn resume(&mut self, publish: Publish) {
        let now = Instant::now();
        self.publish = Some(publish);
        // periodic keyframes at a phase of their own, as in separate browsers
        self.frame = rand::random_range(0..FPS * KEYFRAME_INTERVAL_S);
        self.next_audio = now + Duration::from_micros(rand::random_range(0..AUDIO_INTERVAL_US));
        self.next_video = now + Duration::from_micros(rand::random_range(0..1_000_000 / FPS));
        self.keyframe_due = true;
    }

    #[allow(clippy::too_many_arguments)]
    fn send_rtp(
        &mut self,
        leg: &mut Leg,
        counts: &mut Counts,
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
        let Ok(len) = leg.send.protect_rtp(&mut pkt, n + payload.len()) else {
            return;
        };
        if leg.send_to_peer(&pkt[..len]) {
            counts.sent += 1;
            counts.sent_bytes += len as u64;
        }
    }

    /// The stamp of stream `i`'s next packet, timed now (as it leaves).
    fn stamp(&mut self, i: usize) -> Stamp {
        let base = self.publish.map_or(0, |p| p.stream_base);
        let s = Stamp {
            stream: base + i as u32,
            seq: self.stream_seq[i],
            sent_ns: Instant::now()
                .saturating_duration_since(self.epoch)
                .as_nanos() as u64,
        };
        self.stream_seq[i] += 1;
        s
    }

    fn send_audio(&mut self, leg: &mut Leg, counts: &mut Counts) {
        let mut payload = [0u8; 100];
        self.stamp(0).write(&mut payload);
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
        self.send_rtp(leg, counts, 0, PT_OPUS, false, ts, &ext, &payload);
    }

    fn send_frame(&mut self, leg: &mut Leg, counts: &mut Counts) {
        let key = std::mem::take(&mut self.keyframe_due)
            || self.frame.is_multiple_of(FPS * KEYFRAME_INTERVAL_S);
        let ts = (self.frame as u32).wrapping_mul(3000);
        let top_only = self.publish.is_some_and(|p| p.top_only);
        for (layer, (rid, bps, (width, height))) in LAYERS.iter().enumerate() {
            if top_only && layer + 1 < LAYERS.len() {
                continue;
            }
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
                if k == 0 {
                    // VP8 frame tag (show_frame, P bit clear on keyframes),
                    // and a keyframe's start code and picture size, which
                    // SFUs that parse the bitstream (Janus) look for
                    payload[6] = if key { 0x10 } else { 0x11 };
                    if key {
                        payload[9..12].copy_from_slice(&[0x9d, 0x01, 0x2a]);
                        payload[12..14].copy_from_slice(&width.to_le_bytes());
                        payload[14..16].copy_from_slice(&height.to_le_bytes());
                    }
                }
                let stamp = self.stamp(i);
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
                let last = k + 1 == packets;
                self.send_rtp(leg, counts, i, PT_VP8, last, ts, &ext, &payload[..size]);
            }
        }
        self.frame += 1;
    }
}

/// What a simulated browser keeps whichever SFU it talks to: what it sends,
/// what it measured, and the run's clock its stamps count from.
pub struct Browser {
    /// The sending half.
    pub sender: Sender,
    /// What it measured.
    pub stats: Stats,
    epoch: Instant,
}

impl Browser {
    /// A browser that does not send yet.
    pub fn new(epoch: Instant) -> Browser {
        Browser {
            sender: Sender::new(epoch),
            stats: Stats::default(),
            epoch,
        }
    }

    /// A slice of work on the leg it publishes on: what came back (media
    /// counted, keyframe requests obeyed), consent, the packets due.
    pub fn publish_on(&mut self, leg: &mut Leg, now: Instant, window: &mut Window) {
        if receive(leg, self.epoch, &mut self.stats, window) {
            self.sender.keyframe(&mut self.stats.counts);
        }
        leg.consent(now);
        self.sender.tick(now, leg, &mut self.stats.counts);
    }

    /// A slice of work on a leg it only receives on.
    pub fn receive_on(&mut self, leg: &mut Leg, now: Instant, window: &mut Window) {
        receive(leg, self.epoch, &mut self.stats, window);
        leg.consent(now);
    }
}

/// Reads everything `leg` has received: media into `stats` (latency
/// against the time each packet is read); whether the peer asked for a
/// keyframe (PLI or FIR).
fn receive(leg: &mut Leg, epoch: Instant, stats: &mut Stats, window: &mut Window) -> bool {
    let mut buf = [0u8; 2048];
    let mut keyframe_asked = false;
    while let Some(n) = leg.recv(&mut buf) {
        match PacketKind::classify(&buf[..n]) {
            PacketKind::Rtp => {
                let Ok(len) = leg.recv.unprotect_rtp(&mut buf[..n]) else {
                    stats.counts.bad += 1;
                    continue;
                };
                let Ok(p) = RtpPacket::new_checked(&buf[..len]) else {
                    stats.counts.bad += 1;
                    continue;
                };
                let payload = p.payload();
                let stamp = Stamp::read(payload)
                    .or_else(|| Stamp::read(payload.get(VIDEO_STAMP_AT..).unwrap_or(&[])));
                let Some(stamp) = stamp else {
                    continue; // RTX padding probes carry copies; count only stamped media
                };
                if p.payload_type() != PT_OPUS && p.payload_type() != PT_VP8 {
                    continue; // retransmissions and probes
                }
                stats.counts.received += 1;
                stats.counts.received_bytes += n as u64;
                let stream = stats.streams.entry(stamp.stream).or_default();
                if let Some(h) = stream.highest
                    && stamp.seq > h + 1
                {
                    window.gaps += stamp.seq - h - 1;
                }
                stream.packet(stamp.seq);
                if stamp.sent_ns >= window.latency_from_ns {
                    let now_ns = Instant::now().saturating_duration_since(epoch).as_nanos() as u64;
                    let us = (now_ns.saturating_sub(stamp.sent_ns) / 1000).max(1);
                    let _ = stats.latency.record(us);
                    let _ = window.latency.record(us);
                }
            }
            PacketKind::Rtcp => {
                let Ok(len) = leg.recv.unprotect_rtcp(&mut buf[..n]) else {
                    continue;
                };
                keyframe_asked |= Compound::new(&buf[..len])
                    .any(|p| matches!(p, Ok(Packet::Pli(_)) | Ok(Packet::Fir(_))));
            }
            PacketKind::Stun => leg.answer_check(&buf[..n]),
            _ => {}
        }
    }
    keyframe_asked
}
