//! Walking a compound RTCP packet (RFC 3550 §6.1) and typing its parts.

use super::header::{RtcpHeader, packet_type};
use super::{
    App, Bye, Feedback, Fir, Nack, PliRepr, ReceiverReport, Remb, Sdes, SenderReport, TransportCc,
    fir, nack, pli, remb, transport_cc,
};
use crate::{Result, WireError};

/// One RTCP packet of a compound, typed by PT and FMT.
#[derive(Debug, Clone, Copy)]
pub enum Packet<'a> {
    /// Sender report.
    SenderReport(SenderReport<&'a [u8]>),
    /// Receiver report.
    ReceiverReport(ReceiverReport<'a>),
    /// Source description.
    Sdes(Sdes<'a>),
    /// Goodbye.
    Bye(Bye<'a>),
    /// Application-defined.
    App(App<'a>),
    /// Generic NACK.
    Nack(Nack<'a>),
    /// Picture loss indication.
    Pli(PliRepr),
    /// Full intra request.
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate.
    Remb(Remb<'a>),
    /// Transport-wide congestion control feedback.
    TransportCc(TransportCc<'a>),
    /// Any other feedback message (e.g. SLI, RPSI, TMMBR).
    OtherFeedback(Feedback<&'a [u8]>),
    /// A packet type this crate does not interpret (e.g. XR); its raw bytes.
    Unknown(&'a [u8]),
}

impl<'a> Packet<'a> {
    /// Types one packet, `buf` holding exactly that packet.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>> {
        let h = RtcpHeader::parse(buf)?;
        Ok(match (h.packet_type, h.count) {
            (packet_type::SR, _) => Packet::SenderReport(SenderReport::new_checked(buf)?),
            (packet_type::RR, _) => Packet::ReceiverReport(ReceiverReport::new_checked(buf)?),
            (packet_type::SDES, _) => Packet::Sdes(Sdes::new_checked(buf)?),
            (packet_type::BYE, _) => Packet::Bye(Bye::new_checked(buf)?),
            (packet_type::APP, _) => Packet::App(App::new_checked(buf)?),
            (packet_type::RTPFB, nack::FMT) => Packet::Nack(Nack::new_checked(buf)?),
            (packet_type::RTPFB, transport_cc::FMT) => {
                Packet::TransportCc(TransportCc::new_checked(buf)?)
            }
            (packet_type::PSFB, pli::FMT) => Packet::Pli(PliRepr::parse(buf)?),
            (packet_type::PSFB, fir::FMT) => Packet::Fir(Fir::new_checked(buf)?),
            (packet_type::PSFB, remb::FMT) => match Remb::new_checked(buf) {
                Ok(r) => Packet::Remb(r),
                // other application-layer feedback shares FMT 15
                Err(WireError::WrongType) => Packet::OtherFeedback(Feedback::new_checked(buf)?),
                Err(e) => return Err(e),
            },
            (packet_type::RTPFB | packet_type::PSFB, _) => {
                Packet::OtherFeedback(Feedback::new_checked(buf)?)
            }
            _ => Packet::Unknown(buf),
        })
    }
}

/// Iterator over the packets of a compound RTCP datagram. Yields an error
/// once and then stops when a packet is malformed, since the boundary of the
/// next packet is then unknown.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Compound<'a> {
    /// Starts walking `datagram`.
    pub fn new(datagram: &'a [u8]) -> Self {
        Compound { rest: datagram }
    }

    /// Checks every packet of the compound; returns how many there are.
    pub fn validate(datagram: &'a [u8]) -> Result<usize> {
        let mut n = 0;
        for p in Compound::new(datagram) {
            p?;
            n += 1;
        }
        if n == 0 {
            Err(WireError::Truncated)
        } else {
            Ok(n)
        }
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<Packet<'a>>;

    fn next(&mut self) -> Option<Result<Packet<'a>>> {
        if self.rest.is_empty() {
            return None;
        }
        let len = match RtcpHeader::parse(self.rest) {
            Ok(h) => h.len,
            Err(e) => {
                self.rest = &[];
                return Some(Err(e));
            }
        };
        let (this, rest) = self.rest.split_at(len);
        self.rest = rest;
        let p = Packet::parse(this);
        if p.is_err() {
            self.rest = &[];
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn walks_a_browser_style_compound() {
        let mut buf = [0u8; 256];
        let mut n = ReceiverReportRepr {
            ssrc: 1,
            report_blocks: &[],
        }
        .emit(&mut buf)
        .unwrap();
        let cname = [SdesItem {
            kind: sdes_item::CNAME,
            text: b"abc",
        }];
        n += SdesRepr {
            chunks: &[(1, &cname)],
        }
        .emit(&mut buf[n..])
        .unwrap();
        n += PliRepr {
            sender_ssrc: 1,
            media_ssrc: 2,
        }
        .emit(&mut buf[n..])
        .unwrap();
        n += NackRepr {
            sender_ssrc: 1,
            media_ssrc: 2,
            pairs: &[NackPair { pid: 4, blp: 1 }],
        }
        .emit(&mut buf[n..])
        .unwrap();
        n += RembRepr {
            sender_ssrc: 1,
            bitrate: 500_000,
            ssrcs: &[2],
        }
        .emit(&mut buf[n..])
        .unwrap();
        let kinds: Vec<_> = Compound::new(&buf[..n])
            .map(|p| match p.unwrap() {
                Packet::ReceiverReport(_) => "rr",
                Packet::Sdes(_) => "sdes",
                Packet::Pli(_) => "pli",
                Packet::Nack(_) => "nack",
                Packet::Remb(_) => "remb",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["rr", "sdes", "pli", "nack", "remb"]);
        assert_eq!(Compound::validate(&buf[..n]), Ok(5));
        assert!(Compound::validate(&buf[..n - 1]).is_err());
        assert!(Compound::validate(&[]).is_err());
    }

    #[test]
    fn xr_is_passed_through_as_unknown() {
        let xr = [0x80, 207, 0, 1, 0, 0, 0, 9];
        assert!(matches!(
            Compound::new(&xr).next(),
            Some(Ok(Packet::Unknown(_)))
        ));
    }
}
