//! Reception report blocks carried by SR and RR (RFC 3550 §6.4.1).

use crate::{Result, WireError, be, ensure_room};

/// Size of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;

/// One reception report block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// Reads a block from the first 24 bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<ReportBlock> {
        if b.len() < REPORT_BLOCK_LEN {
            return Err(WireError::Truncated);
        }
        let lost = be::u24_at(b, 5);
        Ok(ReportBlock {
            ssrc: be::u32_at(b, 0),
            fraction_lost: b[4],
            // sign-extend the 24-bit field
            cumulative_lost: ((lost << 8) as i32) >> 8,
            extended_highest_seq: be::u32_at(b, 8),
            jitter: be::u32_at(b, 12),
            last_sr: be::u32_at(b, 16),
            delay_since_last_sr: be::u32_at(b, 20),
        })
    }

    /// Writes the block into the first 24 bytes of `b`. The cumulative loss
    /// is clamped to the 24-bit signed range, as RFC 3550 §6.4.1 asks.
    pub fn emit(&self, b: &mut [u8]) -> Result<usize> {
        ensure_room(b, REPORT_BLOCK_LEN)?;
        be::put_u32(b, 0, self.ssrc);
        b[4] = self.fraction_lost;
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff);
        be::put_u24(b, 5, lost as u32 & 0xff_ffff);
        be::put_u32(b, 8, self.extended_highest_seq);
        be::put_u32(b, 12, self.jitter);
        be::put_u32(b, 16, self.last_sr);
        be::put_u32(b, 20, self.delay_since_last_sr);
        Ok(REPORT_BLOCK_LEN)
    }
}

/// Iterates over the report blocks in `data` (a whole number of blocks).
pub(crate) fn blocks(data: &[u8]) -> impl ExactSizeIterator<Item = ReportBlock> + '_ {
    data.chunks_exact(REPORT_BLOCK_LEN)
        .map(|c| ReportBlock::parse(c).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_loss_round_trips_and_clamps() {
        let b = ReportBlock {
            ssrc: 1,
            cumulative_lost: -5,
            ..Default::default()
        };
        let mut out = [0u8; 24];
        b.emit(&mut out).unwrap();
        assert_eq!(&out[5..8], &[0xff, 0xff, 0xfb]);
        assert_eq!(ReportBlock::parse(&out).unwrap(), b);
        let big = ReportBlock {
            cumulative_lost: 1 << 30,
            ..Default::default()
        };
        big.emit(&mut out).unwrap();
        assert_eq!(ReportBlock::parse(&out).unwrap().cumulative_lost, 0x7f_ffff);
    }
}
