//! The portable backend: `recvmmsg` / `sendmmsg` batches, readiness from
//! `mio` (epoll). Buffers and message headers are allocated once; headers
//! are re-pointed at the buffers before each call (nothing self-referential
//! is stored).

use super::pktinfo::{self, CONTROL_WORDS, Control, Sources};
use super::wake::Wake;
use super::{BUFFER_SIZE, Handler, IoStats, PacketIo, Tx};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::SockAddr;
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);

/// Receive side: `batch` buffers and their kernel headers.
struct Rx {
    bufs: Box<[u8]>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    hdrs: Vec<libc::mmsghdr>,
    /// Each datagram's destination address (when `pktinfo`).
    ctrls: Vec<Control>,
}

/// Send side: queued datagrams awaiting one `sendmmsg`.
pub struct MmsgTx {
    fd: RawFd,
    bufs: Box<[u8]>,
    lens: Vec<usize>,
    dests: Vec<SockAddr>,
    to: Vec<SocketAddr>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Control messages per send: `UDP_SEGMENT`, the source address.
    ctrls: Vec<Control>,
    /// The socket is bound to a wildcard address: replies name their source.
    pktinfo: bool,
    sources: Sources,
    planner: super::gso::Planner,
    /// Whether the socket takes `UDP_SEGMENT` (probed; off after EIO/EINVAL).
    gso: bool,
    queued: usize,
    stats: IoStats,
}

/// recvmmsg/sendmmsg on one UDP socket.
pub struct MmsgIo {
    socket: UdpSocket,
    poll: Poll,
    events: Events,
    wake_fd: RawFd,
    rx: Rx,
    tx: MmsgTx,
}

fn zeroed<T>() -> T {
    // SAFETY: only used for libc C structs (iovec, mmsghdr,
    // sockaddr_storage) for which all-zero bytes are a valid value.
    unsafe { MaybeUninit::<T>::zeroed().assume_init() }
}

impl MmsgIo {
    /// Wraps a bound non-blocking socket.
    pub fn new(socket: UdpSocket, wake: &Wake, batch: usize) -> io::Result<MmsgIo> {
        let batch = batch.clamp(1, 1024);
        let poll = Poll::new()?;
        let fd = socket.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), SOCKET, Interest::READABLE)?;
        let wake_fd = wake.fd().as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&wake_fd), WAKE, Interest::READABLE)?;
        let placeholder = SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0)));
        let pktinfo = pktinfo::enable(fd, socket.local_addr()?);
        Ok(MmsgIo {
            socket,
            poll,
            events: Events::with_capacity(4),
            wake_fd,
            rx: Rx {
                bufs: vec![0u8; batch * BUFFER_SIZE].into_boxed_slice(),
                iovs: (0..batch).map(|_| zeroed()).collect(),
                names: (0..batch).map(|_| zeroed()).collect(),
                hdrs: (0..batch).map(|_| zeroed()).collect(),
                ctrls: vec![[0; CONTROL_WORDS]; batch],
            },
            tx: MmsgTx {
                fd,
                bufs: vec![0u8; batch * BUFFER_SIZE].into_boxed_slice(),
                lens: vec![0; batch],
                dests: vec![placeholder; batch],
                to: vec![SocketAddr::from(([0, 0, 0, 0], 0)); batch],
                iovs: (0..batch).map(|_| zeroed()).collect(),
                hdrs: (0..batch).map(|_| zeroed()).collect(),
                ctrls: vec![[0; CONTROL_WORDS]; batch],
                pktinfo,
                sources: Sources::default(),
                planner: super::gso::Planner::new(batch),
                gso: gso_supported(fd),
                queued: 0,
                stats: IoStats::default(),
            },
        })
    }

    fn recv_batch(&mut self) -> io::Result<usize> {
        let pktinfo = self.tx.pktinfo;
        let rx = &mut self.rx;
        let n = rx.hdrs.len();
        for i in 0..n {
            rx.iovs[i] = libc::iovec {
                iov_base: rx.bufs[i * BUFFER_SIZE..].as_mut_ptr().cast(),
                iov_len: BUFFER_SIZE,
            };
            let h = &mut rx.hdrs[i].msg_hdr;
            h.msg_name = (&mut rx.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut rx.iovs[i];
            h.msg_iovlen = 1;
            if pktinfo {
                h.msg_control = rx.ctrls[i].as_mut_ptr().cast();
                h.msg_controllen = size_of::<Control>() as _;
            } else {
                h.msg_control = core::ptr::null_mut();
                h.msg_controllen = 0;
            }
            h.msg_flags = 0;
            rx.hdrs[i].msg_len = 0;
        }
        // SAFETY: `hdrs` holds `n` initialised headers whose name, iovec and
        // buffer pointers point into `rx`'s own allocations, valid and not
        // otherwise borrowed for the duration of the call (recvmmsg(2)).
        let got = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                rx.hdrs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
                core::ptr::null_mut(),
            )
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(got as usize)
    }
}

/// Whether the kernel knows `UDP_SEGMENT` on this socket, and GSO is not
/// turned off with `SWITCHYARD_GSO=0`.
pub(super) fn gso_supported(fd: RawFd) -> bool {
    if std::env::var("SWITCHYARD_GSO").is_ok_and(|v| v == "0") {
        return false;
    }
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: reads an int option into a local of the stated size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0
}

/// Converts a kernel-filled sockaddr_storage holding `len` bytes.
pub(super) fn to_socket_addr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let mut s = socket2::SockAddrStorage::zeroed();
    // SAFETY: sockaddr_storage is one of this platform's sockaddr types.
    unsafe { *s.view_as::<libc::sockaddr_storage>() = *storage };
    let len = len.min(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
    // SAFETY: the storage holds a kernel-written address of `len` bytes.
    unsafe { SockAddr::new(s, len) }.as_socket()
}

impl MmsgIo {
    /// Also wakes `wait` when `fd` is readable (the AF_XDP backend's
    /// socket beside this one).
    pub(crate) fn watch(&mut self, fd: RawFd) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(2), Interest::READABLE)
    }
}

impl PacketIo for MmsgIo {
    fn name(&self) -> &'static str {
        "mmsg"
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if self.events.iter().any(|e| e.token() == WAKE) {
            let mut b = [0u8; 8];
            // SAFETY: reading 8 bytes into a local array from our eventfd.
            let _ = unsafe { libc::read(self.wake_fd, b.as_mut_ptr().cast(), 8) };
        }
        Ok(())
    }

    fn drain(&mut self, f: &mut Handler<'_>) -> io::Result<usize> {
        let got = self.recv_batch()?;
        for i in 0..got {
            let h = &self.rx.hdrs[i];
            let len = h.msg_len as usize;
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.tx.stats.truncated += 1;
                continue;
            }
            let Some(from) = to_socket_addr(&self.rx.names[i], h.msg_hdr.msg_namelen) else {
                continue;
            };
            if self.tx.pktinfo {
                let n = h.msg_hdr.msg_controllen.min(size_of::<Control>());
                // SAFETY: the kernel wrote `n` bytes of control messages
                // into this datagram's buffer, of at least that size.
                let ctl = unsafe {
                    std::slice::from_raw_parts(self.rx.ctrls[i].as_ptr().cast::<u8>(), n)
                };
                if let Some(local) = pktinfo::destination(ctl) {
                    self.tx.sources.learn(from, local);
                }
            }
            let buf = &mut self.rx.bufs[i * BUFFER_SIZE..i * BUFFER_SIZE + len];
            f(buf, from, &mut self.tx);
        }
        Ok(got)
    }

    fn tx(&mut self) -> &mut dyn Tx {
        &mut self.tx
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tx.flush();
        Ok(())
    }

    fn stats(&self) -> IoStats {
        self.tx.stats
    }
}

impl MmsgTx {
    /// Sends everything queued, as GSO groups where possible; what the
    /// kernel refuses is counted and dropped.
    fn flush(&mut self) {
        let n = self.queued;
        self.queued = 0;
        if n == 0 {
            return;
        }
        self.planner
            .plan(&self.lens[..n], &self.dests[..n], self.gso);
        let m = self.planner.groups.len();
        let mut iov = 0;
        for (g, group) in self.planner.groups.iter().enumerate() {
            let first_iov = iov;
            for k in 0..group.count {
                let slot = self.planner.order[group.first + k];
                self.iovs[iov] = libc::iovec {
                    iov_base: self.bufs[slot * BUFFER_SIZE..].as_mut_ptr().cast(),
                    iov_len: self.lens[slot],
                };
                iov += 1;
            }
            let lead = self.planner.order[group.first];
            let dest = &self.dests[lead];
            let to = self.to[lead];
            let h = &mut self.hdrs[g].msg_hdr;
            h.msg_name = dest.as_ptr() as *mut libc::c_void;
            h.msg_namelen = dest.len();
            h.msg_iov = &mut self.iovs[first_iov];
            h.msg_iovlen = group.count as _;
            let segment = (group.count > 1).then_some(group.segment as u16);
            let source = self.pktinfo.then(|| self.sources.source_for(to)).flatten();
            let len = pktinfo::send_control(&mut self.ctrls[g], segment, source, to);
            if len > 0 {
                h.msg_control = self.ctrls[g].as_mut_ptr().cast();
                h.msg_controllen = len as _;
            } else {
                h.msg_control = core::ptr::null_mut();
                h.msg_controllen = 0;
            }
            h.msg_flags = 0;
        }
        let mut start = 0;
        let mut retries = 0;
        while start < m {
            // SAFETY: headers `start..m` point at buffers, iovecs, control
            // messages and addresses owned by `self`, alive and unborrowed
            // during the call (sendmmsg(2)).
            let sent = unsafe {
                libc::sendmmsg(
                    self.fd,
                    self.hdrs[start..].as_mut_ptr(),
                    (m - start) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent > 0 {
                for g in &self.planner.groups[start..start + sent as usize] {
                    for k in 0..g.count {
                        self.stats.sent += 1;
                        self.stats.sent_bytes += self.lens[self.planner.order[g.first + k]] as u64;
                    }
                }
                start += sent as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            let group = self.planner.groups[start];
            if e.kind() == io::ErrorKind::WouldBlock && retries < 3 {
                // the socket buffer is full: give the NIC a moment
                retries += 1;
                let mut pfd = libc::pollfd {
                    fd: self.fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd on the stack.
                unsafe { libc::poll(&mut pfd, 1, 1) };
                continue;
            }
            if group.count > 1
                && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL))
                && self.gso
            {
                // the device cannot segment: stop using GSO on this socket
                tracing::warn!(target: "switchyard::io", error = %e, "UDP GSO refused; sending datagrams one by one");
                self.gso = false;
            }
            if e.kind() != io::ErrorKind::WouldBlock {
                tracing::trace!(target: "switchyard::io", error = %e, "sendmmsg refused a datagram");
                self.stats.send_failed += group.count as u64;
                start += 1;
                continue;
            }
            for g in &self.planner.groups[start..] {
                self.stats.send_failed += g.count as u64;
            }
            break;
        }
    }
}

impl Tx for MmsgTx {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        if self.queued == self.lens.len() {
            self.flush();
        }
        let i = self.queued;
        Some(&mut self.bufs[i * BUFFER_SIZE..(i + 1) * BUFFER_SIZE])
    }

    fn commit(&mut self, len: usize, to: SocketAddr) {
        let i = self.queued;
        if i < self.lens.len() {
            self.lens[i] = len.min(BUFFER_SIZE);
            self.dests[i] = SockAddr::from(to);
            self.to[i] = to;
            self.queued += 1;
        }
    }
}

// SAFETY: the raw pointers in the kernel headers point only into buffers
// owned by the same value and are rewritten before every use; moving the
// value to another thread moves the owner of everything they point at.
unsafe impl Send for MmsgIo {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_send_and_receive_on_loopback() {
        let wake = Wake::new().unwrap();
        let a = super::super::socket::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20, 1 << 20)
            .unwrap();
        let at = a.local_addr().unwrap();
        let mut io = MmsgIo::new(a, &wake, 8).unwrap();
        crate::io::test_support::echo(&mut io, at, 20, 100);
    }

    #[test]
    fn replies_leave_from_the_address_each_peer_reached() {
        for wildcard in ["0.0.0.0:0", "[::]:0"] {
            crate::io::test_support::answers_from_where_it_was_reached(wildcard, |s, w| {
                Box::new(MmsgIo::new(s, w, 16).unwrap())
            });
        }
    }

    #[test]
    fn wake_interrupts_wait() {
        crate::io::test_support::wake_interrupts_wait(|s, w| {
            Box::new(MmsgIo::new(s, w, 4).unwrap())
        });
    }
}
