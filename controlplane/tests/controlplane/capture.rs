//! What crosses a link: `tcpdump` in a test's network namespace writes
//! pcap to a file, and this reads the UDP datagrams back and sorts them the
//! way RFC 7983 demultiplexes them (STUN, DTLS, RTP/RTCP).

use crate::netns::NetnsPair;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};

/// A running capture.
pub struct Capture {
    child: Child,
    path: PathBuf,
}

/// One captured UDP datagram's payload (cut at the snap length).
pub struct Datagram {
    pub payload: Vec<u8>,
}

/// What a datagram is, by its first byte (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stun,
    /// With the DTLS record's content type (22 = handshake).
    Dtls(u8),
    Rtp,
    Rtcp,
    Other,
}

impl Datagram {
    pub fn kind(&self) -> Kind {
        let p = &self.payload;
        match p.first() {
            Some(0..=3) => Kind::Stun,
            Some(&t @ 20..=63) => Kind::Dtls(t),
            Some(128..=191) if p.len() >= 12 => {
                if (64..=95).contains(&(p[1] & 0x7f)) {
                    Kind::Rtcp
                } else {
                    Kind::Rtp
                }
            }
            _ => Kind::Other,
        }
    }

    /// An RTP packet's SSRC (clear in SRTP too).
    pub fn ssrc(&self) -> Option<u32> {
        (self.kind() == Kind::Rtp)
            .then(|| u32::from_be_bytes(self.payload[8..12].try_into().unwrap()))
    }

    /// An RTP packet's first payload byte (after CSRCs and extensions).
    pub fn first_payload_byte(&self) -> Option<u8> {
        if self.kind() != Kind::Rtp {
            return None;
        }
        let p = &self.payload;
        let mut at = 12 + 4 * usize::from(p[0] & 0x0f);
        if p[0] & 0x10 != 0 {
            let words = u16::from_be_bytes([*p.get(at + 2)?, *p.get(at + 3)?]);
            at += 4 + 4 * usize::from(words);
        }
        p.get(at).copied()
    }
}

impl Capture {
    /// Starts `tcpdump` on `iface` in `ns` with the filter `filter`, and
    /// returns once it listens.
    pub fn start(ns: &str, iface: &str, filter: &str, name: &str) -> Capture {
        let path = std::env::temp_dir().join(format!(
            "swyd-{name}-{}-{}.pcap",
            std::process::id(),
            super::rand_suffix()
        ));
        let file = std::fs::File::create(&path).unwrap();
        let mut child = NetnsPair::command(ns, "tcpdump")
            // packet-buffered, to stdout (the test's file), 512 bytes each
            .args(["-i", iface, "-n", "-U", "-s", "512", "-w", "-", filter])
            .stdout(file)
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (scripts/test.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("listening on"), "tcpdump: {line}");
        Capture { child, path }
    }

    /// Stops the capture; its UDP-over-IPv4 datagrams in order.
    pub fn finish(mut self) -> Vec<Datagram> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        let _ = self.child.wait();
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        parse_pcap(&bytes)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The UDP datagrams of a classic pcap file of Ethernet frames.
fn parse_pcap(bytes: &[u8]) -> Vec<Datagram> {
    let mut out = Vec::new();
    if bytes.len() < 24 {
        return out;
    }
    let le = bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || bytes[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32_at(&bytes[at + 8..at + 12]) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + len) else {
            break;
        };
        at += 16 + len;
        // Ethernet, IPv4, UDP
        if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
            continue;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let Some(payload) = frame.get(14 + ihl + 8..) else {
            continue;
        };
        out.push(Datagram {
            payload: payload.to_vec(),
        });
    }
    out
}
