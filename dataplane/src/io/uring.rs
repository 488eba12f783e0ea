//! The io_uring backend.
//!
//! Receive: one multishot `RecvMsg` (kernel ≥ 6.0) selecting buffers from a
//! provided-buffer ring (registered with `IORING_REGISTER_PBUF_RING`); each
//! completion names the buffer holding `io_uring_recvmsg_out`, the source
//! address and the datagram. Buffers go back to the ring after the engine
//! is done with them; the request is re-armed when the kernel ends it
//! (`!IORING_CQE_F_MORE`, e.g. on `ENOBUFS`).
//!
//! Send: a fixed pool of send slots (buffer + `msghdr` + iovec + address),
//! one `SendMsg` SQE per datagram, submitted in batches at `flush`; a slot
//! is free again when its completion arrives.
//!
//! Wake-ups: a multishot `PollAdd` on the worker's eventfd.
//!
//! Completion work is deferred to the worker's own waits and submits
//! (`IORING_SETUP_DEFER_TASKRUN`, one issuer): the kernel does not
//! interrupt the worker for each datagram's completion but runs them
//! together when it next enters the ring with `GETEVENTS`, as every wait
//! here does (`wait`, a send waiting for a slot, teardown).
//!
//! All memory the kernel reads or writes is allocated once in `new` and
//! outlives the ring: `Drop` cancels outstanding requests and waits for
//! them before the memory is freed.

use super::pktinfo::{self, CONTROL_WORDS, Control, Sources};
use super::wake::Wake;
use super::{BUFFER_SIZE, Handler, IoStats, PacketIo, Tx};
use io_uring::types::{Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, Probe, cqueue, opcode};
use socket2::SockAddr;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

const RECV: u64 = 1;
const WAKE: u64 = 2;
const CANCEL: u64 = 3;
const SEND: u64 = 1 << 32;
const BUF_GROUP: u16 = 7;
/// Receive buffer: `io_uring_recvmsg_out` (16) + address room + datagram.
const RX_BUF: usize = 4096;
const ENTRY: usize = 16;
const NO_SLOT: u16 = u16::MAX;
const SEGS: usize = super::gso::MAX_SEGMENTS;

fn zeroed<T>() -> T {
    // SAFETY: used only for libc C structs (msghdr, iovec) where all-zero is valid.
    unsafe { MaybeUninit::<T>::zeroed().assume_init() }
}

/// A page-aligned, zeroed allocation the kernel may access.
struct KernelMemory {
    ptr: *mut u8,
    layout: Layout,
}

impl KernelMemory {
    fn new(len: usize) -> io::Result<KernelMemory> {
        let layout = Layout::from_size_align(len.max(4096), 4096)
            .map_err(|_| io::Error::other("bad layout"))?;
        // SAFETY: non-zero size, valid power-of-two alignment.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(io::Error::other("out of memory for io_uring buffers"));
        }
        Ok(KernelMemory { ptr, layout })
    }
}

impl KernelMemory {
    /// Gives the allocation up for good: the kernel may still write to it.
    fn leak(&mut self) {
        self.ptr = std::ptr::null_mut();
    }
}

impl Drop for KernelMemory {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return; // leaked on purpose
        }
        // SAFETY: allocated in `new` with this layout; the ring that used it
        // is gone and every request on it ended (see UringIo's Drop).
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// Teardowns that had to leak their buffers because the kernel did not
/// confirm the end of every request in time (process-wide count).
pub static LEAKED_TEARDOWNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The provided-buffer ring and its buffers.
struct BufRing {
    ring: KernelMemory,
    bufs: KernelMemory,
    entries: u16,
    tail: u16,
}

impl BufRing {
    fn new(entries: u16) -> io::Result<BufRing> {
        let mut r = BufRing {
            ring: KernelMemory::new(entries as usize * ENTRY)?,
            bufs: KernelMemory::new(entries as usize * RX_BUF)?,
            entries,
            tail: 0,
        };
        for bid in 0..entries {
            r.push(bid);
        }
        r.publish();
        Ok(r)
    }

    /// Writes buffer `bid` into the next ring entry (published by `publish`).
    fn push(&mut self, bid: u16) {
        let slot = (self.tail & (self.entries - 1)) as usize;
        let addr = self.bufs.ptr as u64 + bid as u64 * RX_BUF as u64;
        // SAFETY: `slot < entries`, so the 16-byte entry is inside the ring
        // allocation; the kernel reads entries only up to the published tail.
        unsafe {
            let e = self.ring.ptr.add(slot * ENTRY);
            e.cast::<u64>().write(addr);
            e.add(8).cast::<u32>().write(RX_BUF as u32);
            e.add(12).cast::<u16>().write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes pushed entries visible to the kernel (release store of the tail,
    /// which lives in the `resv` field of entry 0).
    fn publish(&self) {
        // SAFETY: offset 14 of the page-aligned ring is the u16 tail field,
        // aligned for AtomicU16; the kernel only reads it.
        let tail = unsafe { &*self.ring.ptr.add(14).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// Buffer `bid`.
    fn buffer(&mut self, bid: u16) -> &mut [u8] {
        let bid = bid % self.entries;
        // SAFETY: in bounds of `bufs`; the kernel finished writing it (its
        // completion was reaped) and it is not in the ring until pushed back.
        unsafe { std::slice::from_raw_parts_mut(self.bufs.ptr.add(bid as usize * RX_BUF), RX_BUF) }
    }
}

/// The send side, which also owns the ring (completions of every kind are
/// reaped here; receive completions are kept for `drain`).
pub struct UringTx {
    ring: IoUring,
    fd: RawFd,
    slots: KernelMemory,
    lens: Box<[usize]>,
    hdrs: Box<[libc::msghdr]>,
    /// Per group (indexed by its first slot): MAX_SEGMENTS iovecs.
    iovs: Box<[libc::iovec]>,
    /// Control messages per send: `UDP_SEGMENT`, the source address.
    ctrls: Box<[Control]>,
    names: Box<[SockAddr]>,
    to: Box<[SocketAddr]>,
    /// The socket is bound to a wildcard address: replies name their source.
    pktinfo: bool,
    sources: Sources,
    /// Next slot of the same send (NO_SLOT ends the chain).
    next: Box<[u16]>,
    free: Vec<u16>,
    current: Option<u16>,
    /// Committed slots not yet turned into SQEs, in commit order.
    pending: Vec<u16>,
    plan_lens: Vec<usize>,
    plan_dests: Vec<SockAddr>,
    planner: super::gso::Planner,
    gso: bool,
    unsubmitted: usize,
    in_flight: usize,
    /// Receive completions: (buffer id, result, flags).
    recv_done: Vec<(u16, i32, u32)>,
    rearm_recv: bool,
    /// Last error that ended the multishot receive.
    recv_error: Option<i32>,
    rearm_wake: bool,
    wake_fired: bool,
    stats: IoStats,
}

struct Rx {
    bufring: BufRing,
    msghdr: Box<libc::msghdr>,
}

/// io_uring on one UDP socket.
pub struct UringIo {
    // Field order matters: `tx` (which owns the ring) is dropped before the
    // memory in `rx`.
    tx: UringTx,
    rx: Rx,
    socket: UdpSocket,
    wake_fd: RawFd,
}

// SAFETY: raw pointers inside point only at allocations owned by this value;
// moving it to another thread moves their owner. It is used by one thread.
unsafe impl Send for UringIo {}

impl UringIo {
    /// Sets up the ring, probing what it needs; an error means "use mmsg".
    pub fn new(socket: UdpSocket, wake: &Wake, batch: usize) -> io::Result<UringIo> {
        // Deferred completion work needs the ring used by one thread (this
        // one: workers open their I/O on their own thread); a kernel
        // before 6.1 refuses it and gets the plain ring.
        let ring: IoUring = match IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(1024)
        {
            Ok(ring) => ring,
            Err(_) => IoUring::builder().build(1024)?,
        };
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in [
            (opcode::RecvMsg::CODE, "RecvMsg"),
            (opcode::SendMsg::CODE, "SendMsg"),
            (opcode::PollAdd::CODE, "PollAdd"),
            (opcode::AsyncCancel::CODE, "AsyncCancel"),
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("io_uring lacks {name}"),
                ));
            }
        }
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring lacks EXT_ARG (kernel < 5.11)",
            ));
        }
        let bufring = BufRing::new(1024)?;
        // SAFETY: the ring memory is page aligned, holds 1024 entries and
        // lives until after the ring is dropped (field order, Drop).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufring.ring.ptr as u64,
                bufring.entries,
                BUF_GROUP,
                0,
            )?;
        }
        let mut msghdr: Box<libc::msghdr> = Box::new(zeroed());
        msghdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // room for the destination address in each buffer, after the name
        let pktinfo = pktinfo::enable(socket.as_raw_fd(), socket.local_addr()?);
        if pktinfo {
            msghdr.msg_controllen = size_of::<Control>() as _;
        }
        let batch = batch.clamp(8, 1024);
        let placeholder = SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0)));
        let fd = socket.as_raw_fd();
        let mut io = UringIo {
            tx: UringTx {
                ring,
                fd,
                slots: KernelMemory::new(batch * BUFFER_SIZE)?,
                lens: vec![0; batch].into_boxed_slice(),
                hdrs: (0..batch).map(|_| zeroed()).collect(),
                iovs: (0..batch * SEGS).map(|_| zeroed()).collect(),
                ctrls: vec![[0; CONTROL_WORDS]; batch].into_boxed_slice(),
                names: vec![placeholder.clone(); batch].into_boxed_slice(),
                to: vec![SocketAddr::from(([0, 0, 0, 0], 0)); batch].into_boxed_slice(),
                pktinfo,
                sources: Sources::default(),
                next: vec![NO_SLOT; batch].into_boxed_slice(),
                free: (0..batch as u16).rev().collect(),
                current: None,
                pending: Vec::with_capacity(batch),
                plan_lens: Vec::with_capacity(batch),
                plan_dests: vec![placeholder; batch],
                planner: super::gso::Planner::new(batch),
                gso: super::mmsg::gso_supported(fd),
                unsubmitted: 0,
                in_flight: 0,
                recv_done: Vec::with_capacity(4096),
                rearm_recv: true,
                recv_error: None,
                rearm_wake: true,
                wake_fired: false,
                stats: IoStats::default(),
            },
            rx: Rx { bufring, msghdr },
            socket,
            wake_fd: wake.fd().as_raw_fd(),
        };
        io.arm()?;
        io.tx.ring.submit()?;
        // A kernel without multishot recvmsg fails the request at once.
        io.tx.reap();
        if let Some(res) = io.tx.recv_error {
            return Err(io::Error::from_raw_os_error(-res));
        }
        Ok(io)
    }

    /// (Re-)arms the multishot receive and the wake poll when needed.
    fn arm(&mut self) -> io::Result<()> {
        if self.tx.rearm_recv {
            let sqe =
                opcode::RecvMsgMulti::new(Fd(self.socket.as_raw_fd()), &*self.rx.msghdr, BUF_GROUP)
                    .build()
                    .user_data(RECV);
            self.tx.push(&sqe)?;
            self.tx.rearm_recv = false;
        }
        if self.tx.rearm_wake {
            let sqe = opcode::PollAdd::new(Fd(self.wake_fd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(WAKE);
            self.tx.push(&sqe)?;
            self.tx.rearm_wake = false;
        }
        Ok(())
    }
}

impl UringTx {
    /// Pushes an SQE, submitting first if the queue is full.
    fn push(&mut self, sqe: &io_uring::squeue::Entry) -> io::Result<()> {
        // SAFETY: every SQE built here points only at memory owned by
        // UringIo that outlives the request (buffers, msghdrs, addresses).
        if unsafe { self.ring.submission().push(sqe) }.is_err() {
            self.ring.submit()?;
            self.unsubmitted = 0;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(sqe) }
                .map_err(|_| io::Error::other("submission queue full"))?;
        }
        self.unsubmitted += 1;
        Ok(())
    }

    /// Processes every available completion.
    fn reap(&mut self) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let (data, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            match data {
                RECV => {
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        self.recv_done.push((bid, res, flags));
                    } else if res < 0 && res != -libc::ENOBUFS && res != -libc::ECANCELED {
                        tracing::debug!(target: "switchyard::io", errno = -res, "multishot recvmsg ended");
                        self.recv_error = Some(res);
                    }
                    if !cqueue::more(flags) {
                        self.rearm_recv = true;
                    }
                }
                WAKE => {
                    self.wake_fired = true;
                    if !cqueue::more(flags) {
                        self.rearm_wake = true;
                    }
                }
                CANCEL => {}
                d if d & SEND != 0 => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    let mut slot = (d & 0xffff) as u16;
                    let mut segments = 0u64;
                    while (slot as usize) < self.next.len() {
                        segments += 1;
                        self.free.push(slot);
                        slot = std::mem::replace(&mut self.next[slot as usize], NO_SLOT);
                    }
                    if res < 0 {
                        self.stats.send_failed += segments;
                        if segments > 1 && (res == -libc::EIO || res == -libc::EINVAL) && self.gso {
                            tracing::warn!(target: "switchyard::io", errno = -res, "UDP GSO refused; sending datagrams one by one");
                            self.gso = false;
                        }
                    } else {
                        self.stats.sent += segments;
                        self.stats.sent_bytes += res as u64;
                    }
                }
                _ => {}
            }
        }
    }

    /// Turns committed slots into SendMsg SQEs, one per GSO group.
    fn queue_pending(&mut self) {
        let n = self.pending.len();
        if n == 0 {
            return;
        }
        self.plan_lens.clear();
        for (i, &slot) in self.pending.iter().enumerate() {
            self.plan_lens.push(self.lens[slot as usize]);
            self.plan_dests[i] = self.names[slot as usize].clone();
        }
        self.planner
            .plan(&self.plan_lens, &self.plan_dests[..n], self.gso);
        for g in 0..self.planner.groups.len() {
            let group = self.planner.groups[g];
            let first = self.pending[self.planner.order[group.first]] as usize;
            let mut prev = NO_SLOT;
            for k in 0..group.count {
                let slot = self.pending[self.planner.order[group.first + k]];
                self.iovs[first * SEGS + k] = libc::iovec {
                    // SAFETY: slot < batch: inside `slots`.
                    iov_base: unsafe { self.slots.ptr.add(slot as usize * BUFFER_SIZE) }.cast(),
                    iov_len: self.lens[slot as usize],
                };
                if prev != NO_SLOT {
                    self.next[prev as usize] = slot;
                }
                prev = slot;
            }
            self.next[prev as usize] = NO_SLOT;
            let h = &mut self.hdrs[first];
            h.msg_name = self.names[first].as_ptr() as *mut libc::c_void;
            h.msg_namelen = self.names[first].len();
            h.msg_iov = &mut self.iovs[first * SEGS];
            h.msg_iovlen = group.count as _;
            let to = self.to[first];
            let segment = (group.count > 1).then_some(group.segment as u16);
            let source = self.pktinfo.then(|| self.sources.source_for(to)).flatten();
            let len = pktinfo::send_control(&mut self.ctrls[first], segment, source, to);
            if len > 0 {
                h.msg_control = self.ctrls[first].as_mut_ptr().cast();
                h.msg_controllen = len as _;
            } else {
                h.msg_control = core::ptr::null_mut();
                h.msg_controllen = 0;
            }
            let sqe = opcode::SendMsg::new(Fd(self.fd), &self.hdrs[first])
                .build()
                .user_data(SEND | first as u64);
            if self.push(&sqe).is_ok() {
                self.in_flight += 1;
            } else {
                // could not queue: give the slots back
                let mut slot = first as u16;
                while (slot as usize) < self.next.len() {
                    self.stats.send_failed += 1;
                    self.free.push(slot);
                    slot = std::mem::replace(&mut self.next[slot as usize], NO_SLOT);
                }
            }
        }
        self.pending.clear();
    }

    fn submit(&mut self) -> io::Result<()> {
        self.queue_pending();
        if self.unsubmitted > 0 {
            self.ring.submit()?;
            self.unsubmitted = 0;
        }
        Ok(())
    }
}

impl Tx for UringTx {
    fn buffer(&mut self) -> Option<&mut [u8]> {
        if self.current.is_none() {
            if self.free.is_empty() {
                self.reap();
            }
            for _ in 0..100 {
                if !self.free.is_empty() {
                    break;
                }
                // every slot is in flight: submit and wait for one to complete
                if self.submit().is_err() || self.ring.submit_and_wait(1).is_err() {
                    break;
                }
                self.reap();
            }
            self.current = self.free.pop();
        }
        let slot = self.current? as usize;
        // SAFETY: slot < batch, so the range is inside `slots`; the slot is
        // free (its previous send completed), so the kernel does not read it.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.slots.ptr.add(slot * BUFFER_SIZE), BUFFER_SIZE)
        })
    }

    fn commit(&mut self, len: usize, to: SocketAddr) {
        let Some(slot) = self.current.take() else {
            return;
        };
        self.names[slot as usize] = SockAddr::from(to);
        self.to[slot as usize] = to;
        self.lens[slot as usize] = len.min(BUFFER_SIZE);
        self.pending.push(slot);
    }
}

impl PacketIo for UringIo {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.tx.queue_pending();
        self.arm()?;
        self.tx.reap();
        if !self.tx.recv_done.is_empty() || self.tx.wake_fired {
            return self.tx.submit();
        }
        let ts = Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = SubmitArgs::new().timespec(&ts);
        match self.tx.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e)
                if e.raw_os_error() == Some(libc::ETIME)
                    || e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        self.tx.unsubmitted = 0;
        self.tx.reap();
        Ok(())
    }

    fn drain(&mut self, f: &mut Handler<'_>) -> io::Result<usize> {
        self.tx.reap();
        if std::mem::take(&mut self.tx.wake_fired) {
            let mut b = [0u8; 8];
            // SAFETY: reading 8 bytes from our eventfd into a local array.
            let _ = unsafe { libc::read(self.wake_fd, b.as_mut_ptr().cast(), 8) };
        }
        let mut i = 0;
        let mut count = 0;
        // completions reaped while handling (send-slot waits) are appended
        while i < self.tx.recv_done.len() {
            let (bid, res, _) = self.tx.recv_done[i];
            i += 1;
            if res >= 0 {
                let buf = self.rx.bufring.buffer(bid);
                let parsed = RecvMsgOut::parse(&buf[..res as usize], &self.rx.msghdr)
                    .ok()
                    .map(|m| {
                        let start = m.payload_data().as_ptr() as usize - buf.as_ptr() as usize;
                        (
                            m.is_payload_truncated(),
                            start,
                            m.payload_data().len(),
                            sockaddr(m.name_data(), m.incoming_name_len()),
                            pktinfo::destination(m.control_data()),
                        )
                    });
                match parsed {
                    Some((true, ..)) => self.tx.stats.truncated += 1,
                    Some((false, start, len, Some(from), local)) => {
                        if let Some(local) = local {
                            self.tx.sources.learn(from, local);
                        }
                        let buf = self.rx.bufring.buffer(bid);
                        f(&mut buf[start..start + len], from, &mut self.tx);
                        count += 1;
                    }
                    _ => {}
                }
            }
            self.rx.bufring.push(bid);
        }
        self.tx.recv_done.clear();
        self.rx.bufring.publish();
        self.arm()?;
        Ok(count)
    }

    fn tx(&mut self) -> &mut dyn Tx {
        &mut self.tx
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tx.submit()?;
        self.tx.reap();
        Ok(())
    }

    fn stats(&self) -> IoStats {
        self.tx.stats
    }
}

/// A socket address from the name bytes the kernel wrote.
fn sockaddr(name: &[u8], len: u32) -> Option<SocketAddr> {
    let mut storage: libc::sockaddr_storage = zeroed();
    let n = name
        .len()
        .min(size_of::<libc::sockaddr_storage>())
        .min(len as usize);
    // SAFETY: copies at most sizeof(sockaddr_storage) bytes into the storage.
    unsafe {
        std::ptr::copy_nonoverlapping(
            name.as_ptr(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            n,
        )
    };
    super::mmsg::to_socket_addr(&storage, n as libc::socklen_t)
}

impl UringIo {
    /// Cancels the multishot requests and waits (up to `attempts` × 10 ms)
    /// for every request to end. True when the kernel confirmed that none
    /// holds our memory any more.
    fn quiesce(&mut self, attempts: u32) -> bool {
        for target in [RECV, WAKE] {
            let sqe = opcode::AsyncCancel::new(target).build().user_data(CANCEL);
            let _ = self.tx.push(&sqe);
        }
        let _ = self.tx.submit();
        for _ in 0..attempts {
            self.tx.reap();
            if self.quiet() {
                return true;
            }
            let ts = Timespec::new().nsec(10_000_000);
            let _ = self
                .tx
                .ring
                .submitter()
                .submit_with_args(1, &SubmitArgs::new().timespec(&ts));
        }
        self.tx.reap();
        self.quiet()
    }

    /// No send in flight and neither multishot request armed.
    fn quiet(&self) -> bool {
        self.tx.in_flight == 0 && self.tx.rearm_recv && self.tx.rearm_wake
    }

    /// Leaks every allocation the kernel reads or writes (receive buffers and
    /// their ring, the receive `msghdr`, send slots, headers, iovecs, control
    /// and address buffers): closing the ring cancels its requests only
    /// asynchronously, so freeing them could let the kernel write into memory
    /// that has been reused.
    fn leak_kernel_memory(&mut self) {
        self.rx.bufring.ring.leak();
        self.rx.bufring.bufs.leak();
        std::mem::forget(std::mem::replace(&mut self.rx.msghdr, Box::new(zeroed())));
        self.tx.slots.leak();
        std::mem::forget(std::mem::take(&mut self.tx.hdrs));
        std::mem::forget(std::mem::take(&mut self.tx.iovs));
        std::mem::forget(std::mem::take(&mut self.tx.ctrls));
        std::mem::forget(std::mem::take(&mut self.tx.names));
        LEAKED_TEARDOWNS.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // Every request must end before the buffers it uses are freed; if
        // the kernel does not confirm that within a second, the buffers are
        // leaked rather than freed under it.
        if !self.quiesce(100) {
            tracing::warn!(
                target: "switchyard::io",
                in_flight = self.tx.in_flight,
                "io_uring requests did not end in time; leaking their buffers"
            );
            self.leak_kernel_memory();
        }
        let _ = self.tx.ring.submitter().unregister_buf_ring(BUF_GROUP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_send_and_receive_on_loopback() {
        let wake = Wake::new().unwrap();
        let a = super::super::socket::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20, 1 << 20)
            .unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut io = UringIo::new(a, &wake, 8).expect("io_uring available on the test machine");
        // 4000 datagrams through 1024 provided buffers: they must be recycled
        let mut received = 0u32;
        let mut next = 0u32;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while received < 4000 && std::time::Instant::now() < deadline {
            while next < 4000 && next < received + 500 {
                b.send_to(&next.to_be_bytes(), a_addr).unwrap();
                next += 1;
            }
            io.wait(Duration::from_millis(10)).unwrap();
            io.drain(&mut |data, from, _| {
                assert_eq!(from, b_addr);
                assert_eq!(data.len(), 4);
                received += 1;
            })
            .unwrap();
        }
        assert_eq!(received, 4000);
        // echo: 50 datagrams in, 50 out through 8 send slots
        let c = super::super::socket::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20, 1 << 20)
            .unwrap();
        let at = c.local_addr().unwrap();
        let mut io2 = UringIo::new(c, &wake, 8).unwrap();
        crate::io::test_support::echo(&mut io2, at, 50, 300);
        drop(io);
    }

    #[test]
    fn teardown_frees_only_what_the_kernel_gave_back() {
        let wake = Wake::new().unwrap();
        let open = || {
            let s =
                super::super::socket::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 16, 1 << 16)
                    .unwrap();
            UringIo::new(s, &wake, 8).unwrap()
        };
        // A clean teardown: both multishot requests end, nothing in flight.
        let mut io = open();
        assert!(io.quiesce(100), "a quiet ring confirms every request ended");
        // A send whose completion never arrives (as when the kernel is still
        // busy with it): the teardown must not report the ring quiet, and
        // dropping leaks the buffers instead of freeing them.
        let mut io = open();
        io.tx.in_flight += 1;
        assert!(!io.quiesce(3));
        let leaked = LEAKED_TEARDOWNS.load(Ordering::Relaxed);
        drop(io);
        assert!(LEAKED_TEARDOWNS.load(Ordering::Relaxed) > leaked);
    }

    #[test]
    fn replies_leave_from_the_address_each_peer_reached() {
        for wildcard in ["0.0.0.0:0", "[::]:0"] {
            crate::io::test_support::answers_from_where_it_was_reached(wildcard, |s, w| {
                Box::new(UringIo::new(s, w, 16).unwrap())
            });
        }
    }

    #[test]
    fn wake_interrupts_wait() {
        crate::io::test_support::wake_interrupts_wait(|s, w| {
            Box::new(UringIo::new(s, w, 8).unwrap())
        });
    }
}
