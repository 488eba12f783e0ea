//! Packet I/O: one [`PacketIo`] trait, three backends.
//!
//! - [`uring`]: io_uring with multishot `RecvMsg` into a provided-buffer
//!   ring and batched `SendMsg` submissions (probed at start).
//! - [`mmsg`]: `recvmmsg` / `sendmmsg` batches with `mio` readiness; works
//!   wherever io_uring is refused (Docker's default seccomp profile,
//!   `kernel.io_uring_disabled`).
//! - [`xdp`]: AF_XDP, one socket per worker on its receive queue beside the
//!   worker's kernel socket, opened by [`open_xdp`] when asked for
//!   (`--io xdp`).
//!
//! [`open`] picks one of the first two: the configured choice, else the
//! `SWITCHYARD_IO` environment variable, else io_uring if it probes,
//! falling back to mmsg with a log line saying why.

pub mod gso;
#[allow(unsafe_code)] // kernel interface: recvmmsg / sendmmsg
pub mod mmsg;
#[allow(unsafe_code)] // kernel interface: control messages
pub mod pktinfo;
pub mod socket;
#[allow(unsafe_code)] // kernel interface: io_uring SQEs, buffer ring, msghdr
pub mod uring;
pub mod wake;
pub mod xdp;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// Bytes of each receive and send buffer.
pub const BUFFER_SIZE: usize = 2048;

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IoChoice {
    /// io_uring if available, else mmsg.
    Auto,
    /// io_uring only (fail if unavailable).
    Uring,
    /// recvmmsg/sendmmsg.
    Mmsg,
    /// AF_XDP on the interface `--xdp-interface` names, one socket per
    /// worker on the receive queue of the worker's index; a worker whose
    /// socket cannot be made uses `auto` (logged). Never picked by `auto`.
    Xdp,
}

/// The send side of a backend: buffers the engine writes into.
pub trait Tx {
    /// A free buffer of `BUFFER_SIZE` bytes for the next datagram. Flushes
    /// (and possibly waits for send completions) when the batch is full;
    /// `None` only when no buffer can be freed.
    fn buffer(&mut self) -> Option<&mut [u8]>;
    /// Queues the first `len` bytes of the last buffer for `to`.
    fn commit(&mut self, len: usize, to: SocketAddr);
}

/// What `drain` calls per datagram: its bytes (mutable, for in-place
/// decryption), its source, and the send side.
pub type Handler<'a> = dyn FnMut(&mut [u8], SocketAddr, &mut dyn Tx) + 'a;

/// Counters a backend keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Bytes handed to the kernel.
    pub sent_bytes: u64,
    /// Datagrams the kernel refused or that could not be queued.
    pub send_failed: u64,
    /// Received datagrams larger than a buffer (dropped).
    pub truncated: u64,
}

/// A UDP socket's batched receive and send.
pub trait PacketIo: Send {
    /// Backend name for logs: "io_uring" or "mmsg".
    fn name(&self) -> &'static str;
    /// Waits until a datagram or a wake-up arrives, or `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;
    /// Calls `f` with each received datagram (mutable, for in-place
    /// decryption), its source and the send side.
    fn drain(&mut self, f: &mut Handler<'_>) -> io::Result<usize>;
    /// The send side, outside of `drain`.
    fn tx(&mut self) -> &mut dyn Tx;
    /// Hands every queued datagram to the kernel.
    fn flush(&mut self) -> io::Result<()>;
    /// Counters.
    fn stats(&self) -> IoStats;
}

/// Opens a backend on `socket`, also waking on `wake`.
pub fn open(
    choice: IoChoice,
    socket: UdpSocket,
    wake: &wake::Wake,
    batch: usize,
) -> io::Result<Box<dyn PacketIo>> {
    let env = std::env::var("SWITCHYARD_IO").ok();
    let choice = match (choice, env.as_deref()) {
        (IoChoice::Auto, Some("uring" | "io_uring")) => IoChoice::Uring,
        (IoChoice::Auto, Some("mmsg")) => IoChoice::Mmsg,
        (c, _) => c,
    };
    match choice {
        IoChoice::Mmsg => {
            tracing::info!(target: "switchyard::io", backend = "mmsg", "packet I/O: recvmmsg/sendmmsg (chosen by configuration)");
            Ok(Box::new(mmsg::MmsgIo::new(socket, wake, batch)?))
        }
        IoChoice::Uring => Ok(Box::new(uring::UringIo::new(socket, wake, batch)?)),
        // a worker without its AF_XDP socket (see `open_xdp`)
        IoChoice::Auto | IoChoice::Xdp => {
            let fallback = socket.try_clone()?;
            match uring::UringIo::new(socket, wake, batch) {
                Ok(io) => {
                    tracing::info!(target: "switchyard::io", backend = "io_uring", "packet I/O: io_uring (multishot recvmsg, provided buffers)");
                    Ok(Box::new(io))
                }
                Err(e) => {
                    tracing::warn!(target: "switchyard::io", backend = "mmsg", reason = %e, "io_uring unavailable, using recvmmsg/sendmmsg");
                    Ok(Box::new(mmsg::MmsgIo::new(fallback, wake, batch)?))
                }
            }
        }
    }
}

/// Opens the AF_XDP backend of worker `queue` on `socket` (bound to the
/// worker's port): its socket on that receive queue, registered with
/// `filter`, which then sends the port's media arriving on that queue to it.
pub fn open_xdp(
    filter: &xdp::XdpFilter,
    queue: u32,
    socket: UdpSocket,
    wake: &wake::Wake,
    batch: usize,
) -> io::Result<Box<dyn PacketIo>> {
    let local = socket.local_addr()?;
    let kernel = mmsg::MmsgIo::new(socket, wake, batch)?;
    let xsk = xdp::socket::XskSocket::open(
        filter.ifindex(),
        queue,
        xdp::socket::XskConfig::default(),
        true,
    )?;
    let binding = xsk.binding();
    filter.set_socket(queue, &xsk).map_err(io::Error::other)?;
    filter
        .serve_port(local.port(), Some(queue))
        .map_err(io::Error::other)?;
    tracing::info!(target: "switchyard::io", backend = "af_xdp", queue, port = local.port(), ?binding, "packet I/O: AF_XDP");
    Ok(Box::new(xdp::backend::XdpIo::new(kernel, xsk, local)?))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::PacketIo;
    use super::wake::Wake;
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// `count` datagrams of `size` bytes in, each echoed back through the
    /// send batch, all in order.
    pub fn echo(io: &mut dyn PacketIo, at: std::net::SocketAddr, count: u8, size: usize) {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer_addr = peer.local_addr().unwrap();
        for i in 0..count {
            peer.send_to(&vec![i; size], at).unwrap();
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < count as usize && Instant::now() < deadline {
            io.wait(Duration::from_millis(50)).unwrap();
            io.drain(&mut |data, from, tx| {
                assert_eq!(from, peer_addr);
                got.push(data[0]);
                let buf = tx.buffer().unwrap();
                buf[..data.len()].copy_from_slice(data);
                tx.commit(data.len(), from);
            })
            .unwrap();
            io.flush().unwrap();
        }
        assert_eq!(got, (0..count).collect::<Vec<_>>());
        peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut echo = vec![0u8; size + 100];
        for i in 0..count {
            let (n, from) = peer.recv_from(&mut echo).unwrap();
            assert_eq!((n, from, echo[0]), (size, at, i));
        }
        io.flush().unwrap();
        assert_eq!(io.stats().sent, u64::from(count));
    }

    /// On a socket bound to `wildcard` (`0.0.0.0:0` or `[::]:0`), replies
    /// leave from the address the peer reached it at: a peer on 127.0.0.5
    /// sends five datagrams to 127.0.0.2, then five to 127.0.0.3, then to
    /// 127.0.0.2 again (every 127/8 address is the host's), and every answer
    /// (the five of a round go back as one GSO run) comes from the address
    /// its round went to.
    pub fn answers_from_where_it_was_reached(
        wildcard: &str,
        open: impl FnOnce(UdpSocket, &Wake) -> Box<dyn PacketIo>,
    ) {
        let wake = Wake::new().unwrap();
        let socket = super::socket::bind_udp(wildcard.parse().unwrap(), 1 << 20, 1 << 20).unwrap();
        let port = socket.local_addr().unwrap().port();
        let mut io = open(socket, &wake);
        let peer = UdpSocket::bind("127.0.0.5:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        for (round, ip) in ["127.0.0.2", "127.0.0.3", "127.0.0.2"].iter().enumerate() {
            let to = std::net::SocketAddr::new(ip.parse().unwrap(), port);
            for i in 0..5u8 {
                peer.send_to(&[round as u8, i, 0, 0, 0, 0, 0, 0], to)
                    .unwrap();
            }
            let mut got = 0;
            let deadline = Instant::now() + Duration::from_secs(5);
            while got < 5 && Instant::now() < deadline {
                io.wait(Duration::from_millis(50)).unwrap();
                io.drain(&mut |data, from, tx| {
                    got += 1;
                    let buf = tx.buffer().unwrap();
                    buf[..data.len()].copy_from_slice(data);
                    tx.commit(data.len(), from);
                })
                .unwrap();
                io.flush().unwrap();
            }
            assert_eq!(got, 5);
            let mut buf = [0u8; 64];
            for _ in 0..5 {
                let (n, from) = peer.recv_from(&mut buf).unwrap();
                assert_eq!((n, buf[0]), (8, round as u8));
                assert_eq!(
                    (from.ip().to_canonical(), from.port()),
                    (to.ip(), to.port()),
                    "the answer to a request sent to {to} came from {from}"
                );
            }
        }
    }

    /// A wake-up from another thread ends a long `wait` early.
    pub fn wake_interrupts_wait(open: impl FnOnce(UdpSocket, &Wake) -> Box<dyn PacketIo>) {
        let wake = Arc::new(Wake::new().unwrap());
        let socket =
            super::socket::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 16, 1 << 16).unwrap();
        let mut io = open(socket, &wake);
        wake.set_sleeping(true);
        let w = wake.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.wake();
        });
        let start = Instant::now();
        io.wait(Duration::from_secs(5)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
        t.join().unwrap();
    }
}
