//! RTCP (RFC 3550 §6) compound packets and the feedback messages of
//! RFC 4585, RFC 5104, REMB and transport-wide congestion control.
//!
//! [`Compound::new`] walks a compound datagram (after SRTCP decryption) and
//! yields one [`Packet`] per RTCP packet, typed by packet type and FMT. Each
//! type lives in its own module with a view for reading and a `*Repr` (or
//! writer) for building; every builder emits into a caller buffer and
//! returns the bytes written.

mod app;
mod bye;
mod compound;
mod feedback;
mod fir;
mod header;
mod nack;
mod pli;
mod receiver_report;
mod remb;
mod report_block;
mod sdes;
mod sender_report;
mod transport_cc;

pub use app::{App, AppRepr};
pub use bye::{Bye, ByeRepr};
pub use compound::{Compound, Packet};
pub use feedback::Feedback;
pub use fir::{Fir, FirEntry, FirRepr};
pub use header::{HEADER_LEN, RtcpHeader, packet_type};
pub use nack::{Nack, NackPair, NackRepr};
pub use pli::PliRepr;
pub use receiver_report::{ReceiverReport, ReceiverReportRepr};
pub use remb::{Remb, RembRepr};
pub use report_block::{REPORT_BLOCK_LEN, ReportBlock};
pub use sdes::{Sdes, SdesChunk, SdesItem, SdesRepr, sdes_item};
pub use sender_report::{SenderReport, SenderReportRepr};
pub use transport_cc::{
    DELTA_TICK_US, PacketStatus, REFERENCE_TICK_US, TransportCc, TransportCcIter, TransportCcRepr,
};
