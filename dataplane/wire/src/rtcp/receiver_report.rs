//! Receiver report (RFC 3550 §6.4.2): header (PT=201, count = report
//! blocks), SSRC of the packet sender, report blocks.

use super::header::{self, HEADER_LEN, RtcpHeader, packet_type};
use super::report_block::{self, REPORT_BLOCK_LEN, ReportBlock};
use crate::{Result, WireError, be, ensure_room};

/// A view of one receiver report.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverReport<'a> {
    buf: &'a [u8],
    count: usize,
}

impl<'a> ReceiverReport<'a> {
    /// Checks the packet type and that the report blocks fit.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let (h, body) = header::body(buf)?;
        if h.packet_type != packet_type::RR {
            return Err(WireError::WrongType);
        }
        let count = h.count as usize;
        if body.len() < 4 + count * REPORT_BLOCK_LEN {
            return Err(WireError::Truncated);
        }
        Ok(ReceiverReport { buf, count })
    }
    /// SSRC of the packet sender.
    pub fn ssrc(&self) -> u32 {
        be::u32_at(self.buf, 4)
    }
    /// The reception report blocks.
    pub fn report_blocks(&self) -> impl ExactSizeIterator<Item = ReportBlock> + 'a {
        let start = HEADER_LEN + 4;
        report_block::blocks(&self.buf[start..start + self.count * REPORT_BLOCK_LEN])
    }
}

/// The fields of a receiver report, for building one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverReportRepr<'a> {
    /// SSRC of the packet sender.
    pub ssrc: u32,
    /// Report blocks (at most 31).
    pub report_blocks: &'a [ReportBlock],
}

impl ReceiverReportRepr<'_> {
    /// Bytes `emit` writes.
    pub fn len(&self) -> usize {
        HEADER_LEN + 4 + REPORT_BLOCK_LEN * self.report_blocks.len()
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
        RtcpHeader::emit(buf, count, packet_type::RR, len)?;
        be::put_u32(buf, 4, self.ssrc);
        for (i, rb) in self.report_blocks.iter().enumerate() {
            rb.emit(&mut buf[HEADER_LEN + 4 + i * REPORT_BLOCK_LEN..])?;
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_rr_and_blocks() {
        let mut buf = [0u8; 64];
        let n = ReceiverReportRepr {
            ssrc: 5,
            report_blocks: &[],
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(&buf[..n], &[0x80, 201, 0, 1, 0, 0, 0, 5]);
        let rb = [ReportBlock {
            ssrc: 1,
            fraction_lost: 12,
            ..Default::default()
        }; 2];
        let n = ReceiverReportRepr {
            ssrc: 5,
            report_blocks: &rb,
        }
        .emit(&mut buf)
        .unwrap();
        let rr = ReceiverReport::new_checked(&buf[..n]).unwrap();
        assert_eq!(rr.report_blocks().collect::<Vec<_>>(), rb);
        assert_eq!(
            ReceiverReport::new_checked(&buf[..n - 4]).unwrap_err(),
            WireError::Truncated
        );
        let mut bad = buf;
        bad[2..4].copy_from_slice(&[0, 6]);
        assert!(ReceiverReport::new_checked(&bad[..28]).is_err());
    }
}
