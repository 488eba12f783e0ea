//! The AF_XDP backend (`--io xdp`): a worker's media arrives as Ethernet
//! frames on the AF_XDP socket of its receive queue and leaves the same way,
//! with headers this backend writes; its kernel UDP socket stays beside it
//! for what the XDP program leaves to the kernel (media that arrived on
//! another queue) and for peers whose next hop is not known yet.
//!
//! The next hop of a peer is learned from its own frames: a browser, a
//! relay or the packet generator always sends to the dataplane before it
//! is answered (ICE-lite: the peer checks first; a relay's controlling side
//! sends through the kernel socket until the far side's first frame comes
//! back), so the source MAC of its last frame is the next hop towards it,
//! and the address that frame reached is the one to answer from. That
//! needs no neighbour table and follows a peer that moves. A table of
//! [`MAX_ROUTES`] peers is kept; beyond it, peers are answered through the
//! kernel socket.

use super::socket::{XskSocket, XskTx};
use crate::io::mmsg::MmsgIo;
use crate::io::{Handler, IoStats, PacketIo, Tx};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;
use switchyard_wire::udp_frame::{self, Route};

/// Peers whose next hop is remembered, at most.
pub const MAX_ROUTES: usize = 16_384;
/// Headers in front of a payload at most (Ethernet + IPv6 + UDP): payloads
/// are built this far into a frame, whatever the family.
const ROOM: usize = udp_frame::ETH_LEN + udp_frame::IPV6_LEN + udp_frame::UDP_LEN;
/// Frames taken per batch, and batches per `drain` at most.
const BATCH: u32 = 64;
const ROUNDS: u32 = 4;

/// What the send side keeps between calls.
#[derive(Default)]
struct Paths {
    /// Where to send to reach a peer, learned from its frames.
    routes: HashMap<SocketAddr, Route>,
    /// The frame `buffer` handed out, not yet committed.
    taken: Option<u64>,
    stats: IoStats,
}

/// A buffer for the next datagram: a free AF_XDP frame past the headers'
/// room, else (none free) the kernel socket's.
fn buffer<'b>(
    xsk: &'b mut XskTx,
    kernel: &'b mut dyn Tx,
    taken: &mut Option<u64>,
) -> Option<&'b mut [u8]> {
    if taken.is_none() {
        *taken = xsk.take();
    }
    match *taken {
        Some(addr) => xsk.frame(addr).map(|f| &mut f[ROOM..]),
        None => kernel.buffer(),
    }
}

/// Sends the datagram last built in [`buffer`]: on the AF_XDP socket when
/// the peer's next hop is known, else through the kernel socket.
fn commit(xsk: &mut XskTx, kernel: &mut dyn Tx, paths: &mut Paths, len: usize, to: SocketAddr) {
    let Some(addr) = paths.taken.take() else {
        kernel.commit(len, to);
        return;
    };
    let Some(route) = paths.routes.get(&to) else {
        if let (Some(frame), Some(buf)) = (xsk.frame(addr), kernel.buffer()) {
            let n = len.min(buf.len()).min(frame.len() - ROOM);
            buf[..n].copy_from_slice(&frame[ROOM..ROOM + n]);
            kernel.commit(n, to);
        }
        xsk.give_back(addr);
        return;
    };
    let start = ROOM - udp_frame::header_len(route.src.ip());
    let written = xsk
        .frame(addr)
        .and_then(|f| udp_frame::write_headers(&mut f[start..], route, len).ok());
    match written {
        Some(n) if xsk.submit(addr, start, n) => {
            paths.stats.sent += 1;
            paths.stats.sent_bytes += n as u64;
        }
        _ => paths.stats.send_failed += 1,
    }
}

/// The send side handed to the engine.
struct XdpTx<'a> {
    xsk: &'a mut XskTx,
    kernel: &'a mut dyn Tx,
    paths: &'a mut Paths,
}

impl Tx for XdpTx<'_> {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        buffer(self.xsk, self.kernel, &mut self.paths.taken)
    }

    fn commit(&mut self, len: usize, to: SocketAddr) {
        commit(self.xsk, self.kernel, self.paths, len, to);
    }
}

/// How the engine names a peer at `addr`: as the kernel socket does (a
/// dual-stack socket names IPv4 peers by IPv4-mapped IPv6 addresses).
fn engine_name(addr: SocketAddr, mapped: bool) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if mapped => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        a => a,
    }
}

/// One worker's AF_XDP socket and kernel socket.
pub struct XdpIo {
    kernel: MmsgIo,
    xsk: XskSocket,
    paths: Paths,
    /// The worker's port: frames to any other are not ours (counted).
    port: u16,
    /// The kernel socket is dual-stack.
    mapped: bool,
    /// Frames on the socket that were not UDP to our port (the program
    /// sends none; counted, never handled).
    foreign: u64,
    /// The last `drain` stopped with frames left.
    more: bool,
}

impl XdpIo {
    /// Serves `xsk` beside the worker's `kernel` backend (on the socket
    /// bound to `local`).
    pub fn new(mut kernel: MmsgIo, xsk: XskSocket, local: SocketAddr) -> io::Result<XdpIo> {
        kernel.watch(xsk.as_raw_fd())?;
        Ok(XdpIo {
            kernel,
            xsk,
            paths: Paths::default(),
            port: local.port(),
            mapped: local.is_ipv6(),
            foreign: 0,
            more: false,
        })
    }

    /// Frames the socket got that were not UDP to this worker's port.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    /// Peers whose next hop is known.
    pub fn routes(&self) -> usize {
        self.paths.routes.len()
    }
}

impl PacketIo for XdpIo {
    fn name(&self) -> &'static str {
        "af_xdp"
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let timeout = if self.more { Duration::ZERO } else { timeout };
        self.kernel.wait(timeout)
    }

    fn drain(&mut self, f: &mut Handler<'_>) -> io::Result<usize> {
        let XdpIo {
            kernel,
            xsk,
            paths,
            port,
            mapped,
            foreign,
            more,
        } = self;
        let XskSocket { rx, tx, .. } = xsk;
        let (port, mapped) = (*port, *mapped);
        let mut on_frame = |frame: &mut [u8]| {
            let Ok(d) = udp_frame::parse(frame) else {
                *foreign += 1;
                return;
            };
            if d.dst.port() != port {
                *foreign += 1;
                return;
            }
            let from = engine_name(d.src, mapped);
            let route = Route {
                src_mac: d.dst_mac,
                dst_mac: d.src_mac,
                src: d.dst,
                dst: d.src,
            };
            let (at, len) = (d.payload_offset, d.payload.len());
            let known = paths.routes.get(&from);
            if known != Some(&route) && (known.is_some() || paths.routes.len() < MAX_ROUTES) {
                paths.routes.insert(from, route);
            }
            let mut send = XdpTx {
                xsk: tx,
                kernel: kernel.tx(),
                paths,
            };
            f(&mut frame[at..at + len], from, &mut send);
        };
        // a few batches at most, then the other work of the loop; `wait`
        // does not sleep while frames are left (epoll reports a socket
        // once per new arrival, not per frame left)
        let mut n = 0;
        *more = true;
        for _ in 0..ROUNDS {
            let got = rx.recv(BATCH, &mut on_frame);
            n += got as usize;
            if got < BATCH {
                *more = false;
                break;
            }
        }
        // and what the program left to the kernel
        n += kernel.drain(&mut |data, from, ktx| {
            let mut send = XdpTx {
                xsk: tx,
                kernel: ktx,
                paths,
            };
            f(data, from, &mut send);
        })?;
        Ok(n)
    }

    fn tx(&mut self) -> &mut dyn Tx {
        self
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(addr) = self.paths.taken.take() {
            self.xsk.tx.give_back(addr);
        }
        self.xsk.tx.flush();
        self.kernel.flush()
    }

    fn stats(&self) -> IoStats {
        let (x, k) = (self.paths.stats, self.kernel.stats());
        IoStats {
            sent: x.sent + k.sent,
            sent_bytes: x.sent_bytes + k.sent_bytes,
            send_failed: x.send_failed + k.send_failed,
            truncated: k.truncated,
        }
    }
}

/// The send side outside `drain` (timers, other workers' packets).
impl Tx for XdpIo {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        buffer(&mut self.xsk.tx, self.kernel.tx(), &mut self.paths.taken)
    }

    fn commit(&mut self, len: usize, to: SocketAddr) {
        commit(&mut self.xsk.tx, self.kernel.tx(), &mut self.paths, len, to);
    }
}
