//! Sender report (RFC 3550 §6.4.1).
//!
//! ```text
//! header (PT=200, count = report blocks) | SSRC of sender
//! NTP timestamp (64) | RTP timestamp | sender's packet count | octet count
//! report blocks (24 bytes each) | profile-specific extensions
//! ```
//! The SFU rewrites SSRC and RTP timestamp in place when it translates a
//! publisher's SR to a subscriber's outgoing stream.

use super::header::{self, HEADER_LEN, RtcpHeader, packet_type};
use super::report_block::{self, REPORT_BLOCK_LEN, ReportBlock};
use crate::{Result, WireError, be, ensure_room};

const SENDER_INFO_END: usize = HEADER_LEN + 24;

/// A view of one sender report.
#[derive(Debug, Clone, Copy)]
pub struct SenderReport<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> SenderReport<T> {
    /// Checks the packet type and that the sender info and report blocks fit.
    pub fn new_checked(buf: T) -> Result<Self> {
        let (h, body) = header::body(buf.as_ref())?;
        if h.packet_type != packet_type::SR {
            return Err(WireError::WrongType);
        }
        if body.len() < 24 + h.count as usize * REPORT_BLOCK_LEN {
            return Err(WireError::Truncated);
        }
        Ok(SenderReport { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    /// SSRC of the sender.
    pub fn ssrc(&self) -> u32 {
        be::u32_at(self.b(), 4)
    }
    /// 64-bit NTP timestamp of the report.
    pub fn ntp_time(&self) -> u64 {
        be::u64_at(self.b(), 8)
    }
    /// RTP timestamp matching the NTP time.
    pub fn rtp_timestamp(&self) -> u32 {
        be::u32_at(self.b(), 16)
    }
    /// Packets sent on this SSRC.
    pub fn packet_count(&self) -> u32 {
        be::u32_at(self.b(), 20)
    }
    /// Payload octets sent on this SSRC.
    pub fn octet_count(&self) -> u32 {
        be::u32_at(self.b(), 24)
    }
    /// The reception report blocks.
    pub fn report_blocks(&self) -> impl ExactSizeIterator<Item = ReportBlock> + '_ {
        let n = (self.b()[0] & 0x1f) as usize;
        report_block::blocks(&self.b()[SENDER_INFO_END..SENDER_INFO_END + n * REPORT_BLOCK_LEN])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SenderReport<T> {
    /// Sets the sender SSRC.
    pub fn set_ssrc(&mut self, v: u32) {
        be::put_u32(self.buf.as_mut(), 4, v);
    }
    /// Sets the NTP time.
    pub fn set_ntp_time(&mut self, v: u64) {
        be::put_u64(self.buf.as_mut(), 8, v);
    }
    /// Sets the RTP timestamp.
    pub fn set_rtp_timestamp(&mut self, v: u32) {
        be::put_u32(self.buf.as_mut(), 16, v);
    }
    /// Sets the packet count.
    pub fn set_packet_count(&mut self, v: u32) {
        be::put_u32(self.buf.as_mut(), 20, v);
    }
    /// Sets the octet count.
    pub fn set_octet_count(&mut self, v: u32) {
        be::put_u32(self.buf.as_mut(), 24, v);
    }
}

/// The fields of a sender report, for building one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderReportRepr<'a> {
    /// SSRC of the sender.
    pub ssrc: u32,
    /// NTP timestamp.
    pub ntp_time: u64,
    /// RTP timestamp.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
    /// Report blocks (at most 31).
    pub report_blocks: &'a [ReportBlock],
}

impl SenderReportRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        SENDER_INFO_END + REPORT_BLOCK_LEN * self.report_blocks.len()
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the report; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.len();
        ensure_room(buf, len)?;
        let count = u8::try_from(self.report_blocks.len()).map_err(|_| WireError::OutOfRange)?;
        RtcpHeader::emit(buf, count, packet_type::SR, len)?;
        be::put_u32(buf, 4, self.ssrc);
        be::put_u64(buf, 8, self.ntp_time);
        be::put_u32(buf, 16, self.rtp_timestamp);
        be::put_u32(buf, 20, self.packet_count);
        be::put_u32(buf, 24, self.octet_count);
        for (i, rb) in self.report_blocks.iter().enumerate() {
            rb.emit(&mut buf[SENDER_INFO_END + i * REPORT_BLOCK_LEN..])?;
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_parse_rewrite() {
        let rb = [ReportBlock {
            ssrc: 7,
            jitter: 3,
            ..Default::default()
        }];
        let r = SenderReportRepr {
            ssrc: 1,
            ntp_time: 0x0102_0304_0506_0708,
            rtp_timestamp: 90000,
            packet_count: 10,
            octet_count: 12000,
            report_blocks: &rb,
        };
        let mut buf = [0u8; 64];
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(n, 52);
        let mut sr = SenderReport::new_checked(&mut buf[..n]).unwrap();
        assert_eq!(sr.ntp_time(), 0x0102_0304_0506_0708);
        assert_eq!(sr.report_blocks().collect::<Vec<_>>(), rb);
        sr.set_ssrc(99);
        sr.set_rtp_timestamp(5);
        let sr = SenderReport::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            (sr.ssrc(), sr.rtp_timestamp(), sr.packet_count()),
            (99, 5, 10)
        );
        assert_eq!(
            SenderReport::new_checked(&buf[..n - 4]).unwrap_err(),
            WireError::Truncated
        );
    }
}
