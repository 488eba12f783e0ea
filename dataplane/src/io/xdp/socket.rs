//! One AF_XDP socket on one receive queue, with a UMEM of its own: the
//! frames the kernel (or a zero-copy NIC) writes received packets into and
//! reads packets to send from, and the four rings that pass frames back and
//! forth (fill and rx for receiving, tx and completion for sending).
//!
//! The rings are memory shared with the kernel, each a single-producer
//! single-consumer queue of descriptors with a producer and a consumer
//! index: whoever produces writes descriptors, then publishes the new
//! producer index (release); whoever consumes reads the producer index
//! (acquire), the descriptors, then publishes its consumer index (release).
//! Frames are owned by exactly one side at a time: a frame this socket put
//! on the fill or tx ring is the kernel's until it comes back on rx or
//! completion. [`XskSocket`] keeps that bookkeeping behind `&mut self`, so
//! safe code can only see a frame it owns.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Sizes of a socket's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskConfig {
    /// Frames in the UMEM (a power of two): half for receiving, half for
    /// sending.
    pub frames: u32,
    /// Bytes per frame (2048 or 4096).
    pub frame_size: u32,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frames: 4096,
            frame_size: 2048,
        }
    }
}

/// How the socket was bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The NIC reads and writes the UMEM itself.
    ZeroCopy,
    /// The kernel copies between its buffers and the UMEM.
    Copy,
}

/// An anonymous or shared mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// `len` bytes of zeroed private memory, populated now.
    fn anonymous(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh anonymous mapping aliases nothing; the kernel
        // picks the address.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::POPULATE,
            )
        }?;
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?,
            len,
        })
    }

    /// A ring of socket `fd` at page offset `offset`.
    fn ring(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Mapping> {
        // SAFETY: maps `len` bytes of the socket's ring (sized by the
        // socket option set before, `len` from the kernel's offsets); the
        // mapping is new and aliases no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::POPULATE,
                fd,
                offset,
            )
        }?;
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?,
            len,
        })
    }
}

// SAFETY: a mapping is plain memory owned by this value alone (the kernel
// shares the rings, under their index discipline); moving the owner to
// another thread moves nothing the old thread still uses.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly a mapping this value made and
        // owns; nothing borrowed from it outlives `self` (borrows of frames
        // and descriptors are tied to `&mut XskSocket`).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One ring: indices and descriptors of `T` in shared memory.
struct Ring<T> {
    map: Mapping,
    producer: usize,
    consumer: usize,
    flags: usize,
    descs: usize,
    mask: u32,
    /// Our view of the producer and consumer indices.
    cached_prod: u32,
    cached_cons: u32,
    _t: std::marker::PhantomData<T>,
}

impl<T: Copy> Ring<T> {
    fn new(map: Mapping, off: &libc::xdp_ring_offset, size: u32) -> Ring<T> {
        let mut r = Ring {
            map,
            producer: off.producer as usize,
            consumer: off.consumer as usize,
            flags: off.flags as usize,
            descs: off.desc as usize,
            mask: size - 1,
            cached_prod: 0,
            cached_cons: 0,
            _t: std::marker::PhantomData,
        };
        r.cached_prod = r.index(r.producer).load(Ordering::Acquire);
        r.cached_cons = r.index(r.consumer).load(Ordering::Acquire);
        r
    }

    fn index(&self, at: usize) -> &AtomicU32 {
        assert!(at + 4 <= self.map.len && at.is_multiple_of(4));
        // SAFETY: in bounds and aligned (checked); the kernel places a u32
        // index there that both sides access only atomically.
        unsafe { &*self.map.ptr.as_ptr().add(at).cast::<AtomicU32>() }
    }

    fn size(&self) -> u32 {
        self.mask + 1
    }

    /// Whether the kernel asked to be woken for this ring.
    fn needs_wakeup(&self) -> bool {
        self.index(self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    fn slot(&self, i: u32) -> *mut T {
        let at = self.descs + (i & self.mask) as usize * std::mem::size_of::<T>();
        assert!(at + std::mem::size_of::<T>() <= self.map.len);
        // SAFETY: in bounds (checked); the descriptor array is aligned for
        // T by the kernel's layout.
        unsafe { self.map.ptr.as_ptr().add(at).cast::<T>() }
    }

    // --- as producer (fill, tx) ---

    /// Free slots to produce into.
    fn free(&mut self) -> u32 {
        let free = self.size() - self.cached_prod.wrapping_sub(self.cached_cons);
        if free > 0 {
            return free;
        }
        self.cached_cons = self.index(self.consumer).load(Ordering::Acquire);
        self.size() - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes `value` to the next slot (call only with `free() > 0`);
    /// published by [`Ring::publish`].
    fn push(&mut self, value: T) {
        // SAFETY: slots from the producer index up to consumer + size are
        // ours (the caller checked free space); the kernel reads them only
        // after `publish`.
        unsafe { self.slot(self.cached_prod).write_volatile(value) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
    }

    fn publish(&mut self) {
        self.index(self.producer)
            .store(self.cached_prod, Ordering::Release);
    }

    /// Published descriptors the kernel has not consumed yet.
    fn unconsumed(&mut self) -> u32 {
        self.cached_cons = self.index(self.consumer).load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    // --- as consumer (rx, completion) ---

    /// Descriptors ready to consume.
    fn ready(&mut self) -> u32 {
        let n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n > 0 {
            return n;
        }
        self.cached_prod = self.index(self.producer).load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// The next ready descriptor (call only with `ready() > 0`).
    fn pop(&mut self) -> T {
        // SAFETY: slots from the consumer index up to the producer index
        // were published by the kernel (acquire in `ready`) and are ours
        // until `release`.
        let v = unsafe { self.slot(self.cached_cons).read_volatile() };
        self.cached_cons = self.cached_cons.wrapping_add(1);
        v
    }

    fn release(&mut self) {
        self.index(self.consumer)
            .store(self.cached_cons, Ordering::Release);
    }
}

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live T of the size passed, the layout the
    // option expects (the callers pass libc's if_xdp.h types or u32).
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The frames of the UMEM one half of a socket owns: `[first, end)`.
struct Frames {
    base: NonNull<u8>,
    first: u64,
    end: u64,
    size: u32,
}

// SAFETY: a pointer into the socket's UMEM, which the socket owns and
// moves with it; each half touches only its own range.
unsafe impl Send for Frames {}

impl Frames {
    /// The frame holding `addr`, from `addr` on for `len` bytes, if it
    /// lies in this half and inside one frame.
    fn get(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let frame_end = (addr / u64::from(self.size) + 1) * u64::from(self.size);
        let stop = addr.checked_add(len as u64)?;
        if addr < self.first || stop > frame_end.min(self.end) {
            return None;
        }
        // SAFETY: inside this half's range of the UMEM and inside one frame
        // (checked); the frame is this half's (taken off its ring or free
        // list, not yet given back), and the borrow of `self` keeps any
        // other view of it away.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(addr as usize), len) })
    }

    /// The start of the frame holding `addr`.
    fn base_of(&self, addr: u64) -> u64 {
        addr - addr % u64::from(self.size)
    }
}

/// Pokes the socket so the kernel looks at its rings (copy mode, or when a
/// ring asks for it): `sendto` for tx, `recvfrom` for the fill ring.
fn kick(fd: libc::c_int, tx: bool) {
    // SAFETY: with no buffer these calls only wake the socket.
    let _ = unsafe {
        if tx {
            libc::sendto(
                fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        } else {
            libc::recvfrom(
                fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        }
    };
}

/// Kicks per flush at most in copy mode (each sends up to the kernel's
/// budget; 64 of 32 frames cover a full ring of 2048).
const KICKS: u32 = 64;

/// The receiving half: rx and fill rings, the first half of the frames.
pub struct XskRx {
    rx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    frames: Frames,
    fd: libc::c_int,
    /// Descriptors naming memory outside this half (never from a sane
    /// kernel): skipped.
    pub invalid: u64,
}

impl XskRx {
    /// Hands up to `max` received frames to `f`, then gives their frames
    /// back to the kernel. Returns how many.
    pub fn recv(&mut self, max: u32, f: &mut dyn FnMut(&mut [u8])) -> u32 {
        let n = self.rx.ready().min(max);
        for _ in 0..n {
            let d = self.rx.pop();
            match self.frames.get(d.addr, d.len as usize) {
                Some(frame) => f(frame),
                None => {
                    self.invalid += 1;
                    continue;
                }
            }
            // back to the fill ring, where consuming rx made room
            let base = self.frames.base_of(d.addr);
            if self.fill.free() > 0 {
                self.fill.push(base);
            }
        }
        if n > 0 {
            self.rx.release();
            self.fill.publish();
        }
        if self.fill.needs_wakeup() {
            kick(self.fd, false);
        }
        n
    }
}

/// The sending half: tx and completion rings, the second half of the
/// frames.
pub struct XskTx {
    tx: Ring<libc::xdp_desc>,
    completion: Ring<u64>,
    frames: Frames,
    /// Frames free for sending.
    free: Vec<u64>,
    /// Sends queued since the last kick.
    queued: u32,
    copy: bool,
    fd: libc::c_int,
}

impl XskTx {
    /// Frames sent before and done with: back to the free list.
    fn reclaim(&mut self) {
        let n = self.completion.ready();
        for _ in 0..n {
            let addr = self.completion.pop();
            if addr >= self.frames.first && addr < self.frames.end {
                self.free.push(self.frames.base_of(addr));
            }
        }
        if n > 0 {
            self.completion.release();
        }
    }

    /// A free frame to build a packet in (its UMEM offset), if a frame and
    /// a tx slot are free.
    pub fn take(&mut self) -> Option<u64> {
        if self.free.is_empty() {
            self.reclaim();
        }
        if self.tx.free() == 0 {
            return None;
        }
        self.free.pop()
    }

    /// The whole frame `addr` (from [`XskTx::take`]).
    pub fn frame(&mut self, addr: u64) -> Option<&mut [u8]> {
        let size = self.frames.size as usize;
        self.frames.get(addr, size)
    }

    /// A taken frame not sent after all.
    pub fn give_back(&mut self, addr: u64) {
        self.free.push(self.frames.base_of(addr));
    }

    /// Queues `len` bytes at `addr + offset` of taken frame `addr` (false,
    /// and the frame given back, if that does not fit the frame).
    pub fn submit(&mut self, addr: u64, offset: usize, len: usize) -> bool {
        if offset + len > self.frames.size as usize || len == 0 {
            self.give_back(addr);
            return false;
        }
        self.tx.push(libc::xdp_desc {
            addr: addr + offset as u64,
            len: len as u32,
            options: 0,
        });
        self.queued += 1;
        true
    }

    /// Queues one frame: `build` writes it into a free frame and returns its
    /// length. False when no frame or tx slot is free, or `build` returned 0.
    pub fn send(&mut self, build: impl FnOnce(&mut [u8]) -> usize) -> bool {
        let Some(addr) = self.take() else {
            return false;
        };
        let len = self.frame(addr).map_or(0, build);
        self.submit(addr, 0, len)
    }

    /// Publishes the queued frames and, when the kernel wants it (always
    /// in copy mode), kicks it to send them. In copy mode one kick sends a
    /// bounded batch (the kernel's per-call budget, 32 frames in Linux
    /// 6.x), so it kicks until the ring is empty — else a burst would wait
    /// in the ring for the next flush, fill it, and spill onto the kernel
    /// socket. A ring the kernel stops draining (the device's queue full)
    /// is left for the next flush after `KICKS` tries.
    pub fn flush(&mut self) {
        if self.queued == 0 {
            return;
        }
        self.tx.publish();
        self.queued = 0;
        if self.copy {
            for _ in 0..KICKS {
                kick(self.fd, true);
                if self.tx.unconsumed() == 0 {
                    break;
                }
            }
        } else if self.tx.needs_wakeup() {
            kick(self.fd, true);
        }
        self.reclaim();
    }
}

/// An AF_XDP socket bound to one queue of one interface: a receiving and a
/// sending half over one UMEM.
pub struct XskSocket {
    pub rx: XskRx,
    pub tx: XskTx,
    binding: Binding,
    // after the halves, which point into it
    _umem: Mapping,
    fd: OwnedFd,
}

impl std::fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskSocket")
            .field("fd", &self.fd)
            .field("binding", &self.binding)
            .field("free", &self.tx.free.len())
            .finish()
    }
}

impl XskSocket {
    /// A socket on `queue` of interface `ifindex`: zero-copy when the driver
    /// offers it (and `zero_copy` asks), else copy mode — the fallback is
    /// logged.
    pub fn open(
        ifindex: u32,
        queue: u32,
        config: XskConfig,
        zero_copy: bool,
    ) -> io::Result<XskSocket> {
        if zero_copy {
            match XskSocket::open_as(ifindex, queue, config, Binding::ZeroCopy) {
                Ok(s) => return Ok(s),
                Err(e) => {
                    tracing::info!(target: "switchyard::io", ifindex, queue, error = %e, "zero-copy refused; AF_XDP in copy mode");
                }
            }
        }
        XskSocket::open_as(ifindex, queue, config, Binding::Copy)
    }

    fn open_as(
        ifindex: u32,
        queue: u32,
        config: XskConfig,
        binding: Binding,
    ) -> io::Result<XskSocket> {
        if !config.frames.is_power_of_two() || config.frames < 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frames: a power of two, at least 64",
            ));
        }
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem_len = config.frames as usize * config.frame_size as usize;
        let umem = Mapping::anonymous(umem_len)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: config.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(&fd, libc::XDP_UMEM_REG, &reg)?;
        let ring = config.frames / 2;
        for opt in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(&fd, opt, &ring)?;
        }
        // SAFETY: zeroed is a valid xdp_mmap_offsets (plain integers).
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is a live, writable xdp_mmap_offsets of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let desc = std::mem::size_of::<libc::xdp_desc>();
        let addr = std::mem::size_of::<u64>();
        let map = |o: &libc::xdp_ring_offset, each: usize, pgoff: u64| {
            Mapping::ring(fd.as_fd(), o.desc as usize + ring as usize * each, pgoff)
        };
        let rx = Ring::new(
            map(&off.rx, desc, libc::XDP_PGOFF_RX_RING as u64)?,
            &off.rx,
            ring,
        );
        let tx = Ring::new(
            map(&off.tx, desc, libc::XDP_PGOFF_TX_RING as u64)?,
            &off.tx,
            ring,
        );
        let mut fill = Ring::new(
            map(&off.fr, addr, libc::XDP_UMEM_PGOFF_FILL_RING)?,
            &off.fr,
            ring,
        );
        let completion = Ring::new(
            map(&off.cr, addr, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?,
            &off.cr,
            ring,
        );
        // the first half of the frames waits for packets, the rest sends
        let size = u64::from(config.frame_size);
        for i in 0..u64::from(ring) {
            fill.push(i * size);
        }
        fill.publish();
        let free = (u64::from(ring)..u64::from(config.frames))
            .map(|i| i * size)
            .collect();
        let flags = libc::XDP_USE_NEED_WAKEUP
            | match binding {
                Binding::ZeroCopy => libc::XDP_ZEROCOPY,
                Binding::Copy => libc::XDP_COPY,
            };
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a live sockaddr_xdp of the length passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let half = u64::from(ring) * size;
        let frames = |first, end| Frames {
            base: umem.ptr,
            first,
            end,
            size: config.frame_size,
        };
        let raw = fd.as_raw_fd();
        Ok(XskSocket {
            rx: XskRx {
                rx,
                fill,
                frames: frames(0, half),
                fd: raw,
                invalid: 0,
            },
            tx: XskTx {
                tx,
                completion,
                frames: frames(half, umem_len as u64),
                free,
                queued: 0,
                copy: binding == Binding::Copy,
                fd: raw,
            },
            binding,
            _umem: umem,
            fd,
        })
    }

    /// How it was bound.
    pub fn binding(&self) -> Binding {
        self.binding
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
