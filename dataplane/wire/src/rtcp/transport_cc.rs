//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): RTPFB with FMT 15.
//!
//! ```text
//! | base sequence number (16)     | packet status count (16)      |
//! | reference time (24, ×64 ms)                   | fb pkt count  |
//! | packet chunks (16 bits each)…                                 |
//! | receive deltas (1 or 2 bytes each)…  | padding                |
//! ```
//! A chunk is either a run (`0 | symbol(2) | length(13)`) or a status vector
//! (`1 | 0 | 14 one-bit symbols` or `1 | 1 | 7 two-bit symbols`). Symbols:
//! 0 not received, 1 received with a one-byte delta (0–255 × 250 µs),
//! 2 received with a signed two-byte delta, 3 reserved.

use super::feedback::{self, FEEDBACK_HEADER_LEN};
use super::header::packet_type;
use crate::{Result, WireError, be};

/// FMT of transport-cc feedback.
pub const FMT: u8 = 15;
/// Receive deltas are in multiples of this many microseconds.
pub const DELTA_TICK_US: i64 = 250;
/// The reference time is in multiples of this many microseconds.
pub const REFERENCE_TICK_US: i64 = 64_000;

const FIXED_FCI: usize = 8;

/// The status of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketStatus {
    /// Not received (yet).
    NotReceived,
    /// Received; arrival time minus the previous arrival (or the reference
    /// time for the first), in 250 µs ticks.
    Received(i16),
}

impl PacketStatus {
    fn symbol(self) -> u8 {
        match self {
            PacketStatus::NotReceived => 0,
            PacketStatus::Received(0..=255) => 1,
            PacketStatus::Received(_) => 2,
        }
    }
    fn delta_len(self) -> usize {
        self.symbol() as usize
    }
}

/// A view of a transport-cc feedback packet, checked end to end.
#[derive(Debug, Clone, Copy)]
pub struct TransportCc<'a> {
    sender_ssrc: u32,
    media_ssrc: u32,
    fci: &'a [u8],
    deltas_at: usize,
}

impl<'a> TransportCc<'a> {
    /// Checks type and FMT, walks every chunk and checks that the receive
    /// deltas they announce fit in the packet.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (sender_ssrc, media_ssrc, fci) = feedback::parse(buf, packet_type::RTPFB, FMT)?;
        if fci.len() < FIXED_FCI {
            return Err(WireError::Truncated);
        }
        let mut fb = TransportCc {
            sender_ssrc,
            media_ssrc,
            fci,
            deltas_at: fci.len(),
        };
        let count = fb.status_count() as usize;
        let (mut chunk_at, mut seen, mut delta_bytes) = (FIXED_FCI, 0usize, 0usize);
        while seen < count {
            if fci.len() < chunk_at + 2 {
                return Err(WireError::Truncated);
            }
            let chunk = be::u16_at(fci, chunk_at);
            chunk_at += 2;
            for i in 0..chunk_len(chunk).min(count - seen) {
                match chunk_symbol(chunk, i) {
                    3 => return Err(WireError::Malformed),
                    s => delta_bytes += s as usize,
                }
            }
            seen += chunk_len(chunk).min(count - seen);
        }
        if fci.len() < chunk_at + delta_bytes {
            return Err(WireError::Truncated);
        }
        fb.deltas_at = chunk_at;
        Ok(fb)
    }

    /// SSRC of the packet sender.
    pub fn sender_ssrc(&self) -> u32 {
        self.sender_ssrc
    }
    /// SSRC of the media source (unused by transport-cc; often the first stream).
    pub fn media_ssrc(&self) -> u32 {
        self.media_ssrc
    }
    /// Transport sequence number of the first packet reported.
    pub fn base_sequence(&self) -> u16 {
        be::u16_at(self.fci, 0)
    }
    /// Number of packets reported.
    pub fn status_count(&self) -> u16 {
        be::u16_at(self.fci, 2)
    }
    /// Reference time in 64 ms units (24 bits, wrapping).
    pub fn reference_time(&self) -> u32 {
        be::u24_at(self.fci, 4)
    }
    /// Feedback packet counter (wrapping), to detect lost feedback.
    pub fn feedback_count(&self) -> u8 {
        self.fci[7]
    }
    /// The status of every reported packet, with its sequence number.
    pub fn packets(&self) -> TransportCcIter<'a> {
        TransportCcIter {
            fci: self.fci,
            chunk_at: FIXED_FCI,
            in_chunk: 0,
            delta_at: self.deltas_at,
            left: self.status_count(),
            seq: self.base_sequence(),
        }
    }
}

/// Symbols a chunk carries.
fn chunk_len(chunk: u16) -> usize {
    match chunk >> 14 {
        0 | 1 => (chunk & 0x1fff) as usize,
        2 => 14,
        _ => 7,
    }
}

/// Symbol `i` of a chunk.
fn chunk_symbol(chunk: u16, i: usize) -> u8 {
    match chunk >> 14 {
        0 | 1 => ((chunk >> 13) & 3) as u8,
        2 => ((chunk >> (13 - i)) & 1) as u8,
        _ => ((chunk >> (12 - 2 * i)) & 3) as u8,
    }
}

/// Iterator over `(transport sequence number, status)`.
#[derive(Debug, Clone)]
pub struct TransportCcIter<'a> {
    fci: &'a [u8],
    chunk_at: usize,
    in_chunk: usize,
    delta_at: usize,
    left: u16,
    seq: u16,
}

impl Iterator for TransportCcIter<'_> {
    type Item = (u16, PacketStatus);

    fn next(&mut self) -> Option<(u16, PacketStatus)> {
        if self.left == 0 {
            return None;
        }
        let mut chunk = be::u16_at(self.fci, self.chunk_at);
        while self.in_chunk >= chunk_len(chunk) {
            self.chunk_at += 2;
            self.in_chunk = 0;
            chunk = be::u16_at(self.fci, self.chunk_at);
        }
        let status = match chunk_symbol(chunk, self.in_chunk) {
            1 => {
                self.delta_at += 1;
                PacketStatus::Received(i16::from(self.fci[self.delta_at - 1]))
            }
            2 => {
                self.delta_at += 2;
                PacketStatus::Received(be::u16_at(self.fci, self.delta_at - 2) as i16)
            }
            _ => PacketStatus::NotReceived,
        };
        self.in_chunk += 1;
        self.left -= 1;
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        Some((seq, status))
    }
}

/// A transport-cc feedback to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportCcRepr<'a> {
    /// SSRC of the packet sender.
    pub sender_ssrc: u32,
    /// SSRC of the media source.
    pub media_ssrc: u32,
    /// Sequence number of `packets[0]`.
    pub base_sequence: u16,
    /// Reference time in 64 ms units (low 24 bits used).
    pub reference_time: u32,
    /// Feedback packet counter.
    pub feedback_count: u8,
    /// Status of consecutive packets from `base_sequence` (at most 65535).
    pub packets: &'a [PacketStatus],
}

impl TransportCcRepr<'_> {
    /// Calls `f` with each chunk of a compact encoding of the statuses.
    fn chunks(&self, mut f: impl FnMut(u16)) {
        let p = self.packets;
        let mut i = 0;
        while i < p.len() {
            let sym = p[i].symbol();
            let run = p[i..]
                .iter()
                .take(0x1fff)
                .take_while(|s| s.symbol() == sym)
                .count();
            let rest = p.len() - i;
            let one_bit = p[i..].iter().take(14).all(|s| s.symbol() <= 1);
            if run >= 14 || run == rest {
                f((u16::from(sym) << 13) | run as u16);
                i += run;
            } else if one_bit {
                let mut c = 0x8000u16;
                for (k, s) in p[i..].iter().take(14).enumerate() {
                    c |= u16::from(s.symbol()) << (13 - k);
                }
                f(c);
                i += rest.min(14);
            } else if run >= 7 {
                f((u16::from(sym) << 13) | run as u16);
                i += run;
            } else {
                let mut c = 0xc000u16;
                for (k, s) in p[i..].iter().take(7).enumerate() {
                    c |= u16::from(s.symbol()) << (12 - 2 * k);
                }
                f(c);
                i += rest.min(7);
            }
        }
    }

    fn unpadded_len(&self) -> usize {
        let mut n = 0;
        self.chunks(|_| n += 1);
        FEEDBACK_HEADER_LEN
            + FIXED_FCI
            + 2 * n
            + self.packets.iter().map(|s| s.delta_len()).sum::<usize>()
    }

    /// Bytes `emit` writes (padded to 32 bits).
    pub fn len(&self) -> usize {
        self.unpadded_len().next_multiple_of(4)
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the packet; returns its length. Padding, when needed, is
    /// marked with the P bit as RFC 3550 §6.4.1 describes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let count = u16::try_from(self.packets.len()).map_err(|_| WireError::OutOfRange)?;
        if count == 0 || self.reference_time > 0xff_ffff {
            return Err(WireError::OutOfRange);
        }
        let (unpadded, len) = (self.unpadded_len(), self.len());
        feedback::emit_header(
            buf,
            FMT,
            packet_type::RTPFB,
            len,
            self.sender_ssrc,
            self.media_ssrc,
        )?;
        let f = FEEDBACK_HEADER_LEN;
        be::put_u16(buf, f, self.base_sequence);
        be::put_u16(buf, f + 2, count);
        be::put_u24(buf, f + 4, self.reference_time);
        buf[f + 7] = self.feedback_count;
        let mut at = f + FIXED_FCI;
        self.chunks(|c| {
            be::put_u16(buf, at, c);
            at += 2;
        });
        for s in self.packets {
            match (s.symbol(), s) {
                (1, PacketStatus::Received(d)) => {
                    buf[at] = *d as u8;
                    at += 1;
                }
                (2, PacketStatus::Received(d)) => {
                    be::put_u16(buf, at, *d as u16);
                    at += 2;
                }
                _ => {}
            }
        }
        if len > unpadded {
            buf[unpadded..len].fill(0);
            buf[len - 1] = (len - unpadded) as u8;
            buf[0] |= 0x20;
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PacketStatus::{NotReceived as L, Received as R};

    fn round_trip(packets: &[PacketStatus]) -> Vec<u8> {
        let repr = TransportCcRepr {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence: 65530,
            reference_time: 0x123456,
            feedback_count: 9,
            packets,
        };
        let mut buf = vec![0u8; repr.len() + 8];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(n % 4, 0);
        let fb = TransportCc::new_checked(&buf[..n]).unwrap();
        let got: Vec<_> = fb.packets().collect();
        let want: Vec<_> = packets
            .iter()
            .enumerate()
            .map(|(i, s)| (65530u16.wrapping_add(i as u16), *s))
            .collect();
        assert_eq!(got, want);
        assert_eq!((fb.reference_time(), fb.feedback_count()), (0x123456, 9));
        buf.truncate(n);
        buf
    }

    #[test]
    fn draft_example_run_length_chunk() {
        // §3.1.3 example: run of 221 "received, small delta" = 0b0_01_0000011011101
        let p = [R(1); 221];
        let buf = round_trip(&p);
        assert_eq!(be::u16_at(&buf, 20), 0b0010_0000_1101_1101);
    }

    #[test]
    fn draft_example_status_vectors() {
        // §3.1.4 example 1: 1-bit vector "received, lost×4, received×2, lost×7"... as symbols
        let p = [R(1), L, L, L, L, R(2), R(3), L, L, L, L, L, L, L, R(4)];
        let buf = round_trip(&p);
        assert_eq!(be::u16_at(&buf, 20), 0b1010_0001_1000_0000);
        // a large and a negative delta force two-bit vectors
        round_trip(&[R(1), R(-4), L, R(300), R(0), L, R(255), R(256)]);
    }

    #[test]
    fn long_and_mixed() {
        let mut p = vec![L; 9000];
        p.extend([R(5), R(-1)].repeat(20));
        round_trip(&p);
    }

    #[test]
    fn truncated_deltas_and_reserved_symbol() {
        let buf = round_trip(&[R(1), R(1000)]);
        let cut = buf.len() - 4;
        let mut short = buf[..cut].to_vec();
        short[3] -= 1;
        short[0] &= !0x20;
        assert_eq!(
            TransportCc::new_checked(&short).unwrap_err(),
            WireError::Truncated
        );
        let mut bad = buf.clone();
        bad[20..22].copy_from_slice(&[0x60, 0x02]); // run of two reserved symbols
        assert_eq!(
            TransportCc::new_checked(&bad).unwrap_err(),
            WireError::Malformed
        );
    }
}
