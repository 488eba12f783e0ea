//! The shared memory itself: a sealed `memfd`, mapped shared, and the
//! `SCM_RIGHTS` handover of its descriptor over a unix socket.
//!
//! This module is the only place that touches the mapping through raw
//! pointers. Every access is bounds- and alignment-checked against the
//! mapping, and every access is atomic: the peer is another process that may
//! write any byte at any time, and a plain copy racing with it would be
//! undefined behaviour.

use super::AbiError;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::MemfdFlags;
use rustix::mm::{MapFlags, ProtFlags};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;

/// A mapped shared-memory region.
///
/// Every byte of it may be changed at any moment by the peer process, so it
/// is only ever touched through atomics: words through [`Region::u64_at`] /
/// [`Region::u32_at`], byte ranges through [`Region::write`] / [`Region::read`],
/// which copy with relaxed atomic byte loads and stores. A location is used
/// either as a word or as bytes, never both. Two writers racing on
/// the same bytes can garble what they write (the rings' protocol prevents
/// it for well-behaved peers, and readers check what they read), but never
/// make this process's behaviour undefined.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

enum Backing {
    /// A shared mapping of this memfd.
    Mapped(OwnedFd),
    /// Process-private heap memory, for tests under Miri (which cannot map
    /// files); same access rules.
    #[cfg(test)]
    Heap(std::alloc::Layout),
}

// SAFETY: the mapping is plain memory owned by this value until drop; all
// access goes through atomics, which are sound from any thread.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only hands out atomics and atomic copies.
unsafe impl Sync for Region {}

impl Region {
    /// Creates a zeroed region of `len` bytes backed by a new memfd whose
    /// size is sealed, so a peer cannot shrink it under us (SIGBUS).
    pub fn create(len: usize) -> Result<Region, AbiError> {
        let fd = rustix::fs::memfd_create(
            "switchyard-abi",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| AbiError::Io("memfd_create", e.into()))?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(|e| AbiError::Io("ftruncate", e.into()))?;
        rustix::fs::fcntl_add_seals(&fd, super::access::REQUIRED_SEALS)
            .map_err(|e| AbiError::Io("seal memfd", e.into()))?;
        Region::map(fd)
    }

    /// Maps a region received from a peer; its length is the file's size.
    pub fn map(fd: OwnedFd) -> Result<Region, AbiError> {
        let len = rustix::fs::fstat(&fd)
            .map_err(|e| AbiError::Io("fstat", e.into()))?
            .st_size as usize;
        if len == 0 {
            return Err(AbiError::BadRegion("empty region"));
        }
        // SAFETY: a fresh shared mapping of the whole file at an address the
        // kernel picks; it aliases no Rust object. It stays valid until the
        // munmap in Drop.
        let ptr = unsafe {
            rustix::mm::mmap(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(|e| AbiError::Io("mmap", e.into()))?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(AbiError::BadRegion("null mapping"))?;
        Ok(Region {
            ptr,
            len,
            backing: Backing::Mapped(fd),
        })
    }

    /// A zeroed region in this process's heap: the same access paths as a
    /// mapping, so the ring and table tests run under Miri.
    #[cfg(test)]
    pub fn heap(len: usize) -> Region {
        let layout = std::alloc::Layout::from_size_align(len.max(64), 64).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        Region {
            ptr: NonNull::new(ptr).expect("allocation failed"),
            len,
            backing: Backing::Heap(layout),
        }
    }

    /// A region for tests: heap memory under Miri, a memfd otherwise.
    #[cfg(test)]
    pub fn for_test(len: usize) -> Region {
        if cfg!(miri) {
            Region::heap(len)
        } else {
            Region::create(len).expect("memfd region")
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region has at least a header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd, for handing to a peer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.backing {
            Backing::Mapped(fd) => fd.as_fd(),
            #[cfg(test)]
            Backing::Heap(_) => panic!("a heap region has no descriptor"),
        }
    }

    fn check(&self, offset: usize, len: usize, align: usize) {
        // Offsets come from `Layout`, computed by this process and checked
        // against the mapping's length when the region was opened; a failure
        // here is a bug in this crate, not bad input.
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "region access out of bounds"
        );
        assert_eq!(offset % align, 0, "misaligned region access");
    }

    /// The 64-bit word at `offset` (8-byte aligned).
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: in bounds and aligned (checked); the memory lives as long
        // as `self`; AtomicU64 tolerates concurrent access from the peer, and
        // no non-atomic reference into the region is ever made.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// The 32-bit word at `offset` (4-byte aligned).
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: as for `u64_at`.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    fn u8_at(&self, offset: usize) -> &AtomicU8 {
        self.check(offset, 1, 1);
        // SAFETY: as for `u64_at` (bytes need no alignment).
        unsafe { AtomicU8::from_ptr(self.ptr.as_ptr().add(offset)) }
    }

    /// Copies `data` into the region at `offset` with relaxed atomic byte
    /// stores. Publishing it to the peer is the caller's release store of a
    /// ring index. Bytes copied here are never also accessed as words (mixed
    /// sizes on one location have no defined meaning in Rust's model), which
    /// is why this copies byte by byte; only exception packets, commands and
    /// events take this path, never media.
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len(), 1);
        for (i, &b) in data.iter().enumerate() {
            self.u8_at(offset + i).store(b, Ordering::Relaxed);
        }
    }

    /// Copies bytes at `offset` out into `out` with relaxed atomic loads.
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        self.check(offset, out.len(), 1);
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.u8_at(offset + i).load(Ordering::Relaxed);
        }
    }

    /// Sets `len` bytes at `offset` to zero (e.g. a consumed slot that held keys).
    pub fn zero(&self, offset: usize, len: usize) {
        self.check(offset, len, 1);
        for at in offset..offset + len {
            self.u8_at(at).store(0, Ordering::Relaxed);
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match &self.backing {
            Backing::Mapped(_) => {
                // SAFETY: `ptr`/`len` are exactly the mapping made in `map`,
                // and no reference into it outlives `self` (accessors borrow
                // `self`).
                let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
            }
            #[cfg(test)]
            Backing::Heap(layout) => {
                // SAFETY: allocated in `heap` with this layout; no reference
                // outlives `self`.
                unsafe { std::alloc::dealloc(self.ptr.as_ptr(), *layout) }
            }
        }
    }
}

/// Most descriptors one message carries (a worker's wake-up each, ABI 1.10).
pub const MAX_FDS: usize = super::layout::MAX_WORKERS;

/// Sends `fd` and a short message over a connected unix stream socket.
pub fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>, message: &[u8]) -> Result<(), AbiError> {
    send_fds(sock, &[fd], message)
}

/// Sends up to [`MAX_FDS`] descriptors and a short message over a connected
/// unix stream socket.
pub fn send_fds(sock: &UnixStream, fds: &[BorrowedFd<'_>], message: &[u8]) -> Result<(), AbiError> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    if fds.len() > MAX_FDS {
        return Err(AbiError::BadRegion("too many descriptors for one message"));
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(AbiError::BadRegion("ancillary buffer too small"));
    }
    let sent = sendmsg(
        sock,
        &[std::io::IoSlice::new(message)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| AbiError::Io("sendmsg SCM_RIGHTS", e.into()))?;
    if sent != message.len() {
        return Err(AbiError::BadRegion("short handover message"));
    }
    Ok(())
}

/// Receives one descriptor and its message (up to `buf.len()` bytes).
pub fn recv_fd(sock: &UnixStream, buf: &mut [u8]) -> Result<(OwnedFd, usize), AbiError> {
    let (fds, n) = recv_fds(sock, buf)?;
    let fd = fds
        .into_iter()
        .next()
        .ok_or(AbiError::BadRegion("handover carried no descriptor"))?;
    Ok((fd, n))
}

/// Receives a message (up to `buf.len()` bytes) and the descriptors it
/// carries (up to [`MAX_FDS`]; any beyond are closed by the kernel).
pub fn recv_fds(sock: &UnixStream, buf: &mut [u8]) -> Result<(Vec<OwnedFd>, usize), AbiError> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| AbiError::Io("recvmsg SCM_RIGHTS", e.into()))?;
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received);
        }
    }
    Ok((fds, got.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_copies_round_trip_at_any_alignment() {
        let r = Region::for_test(256);
        let data: Vec<u8> = (0..77u8).collect();
        for start in 0..9 {
            r.write(start, &data);
            let mut out = vec![0u8; data.len()];
            r.read(start, &mut out);
            assert_eq!(out, data, "offset {start}");
        }
        r.zero(3, 70);
        let mut out = [1u8; 80];
        r.read(0, &mut out);
        assert!(out[3..73].iter().all(|&b| b == 0));
    }

    #[test]
    #[cfg_attr(miri, ignore = "memfd and mmap")]
    fn two_mappings_share_memory_and_fd_crosses_a_socket() {
        let a = Region::create(8192).unwrap();
        let (s1, s2) = UnixStream::pair().unwrap();
        send_fd(&s1, a.fd(), b"hello").unwrap();
        let mut msg = [0u8; 16];
        let (fd, n) = recv_fd(&s2, &mut msg).unwrap();
        assert_eq!(&msg[..n], b"hello");
        let b = Region::map(fd).unwrap();
        assert_eq!(b.len(), 8192);
        a.u64_at(64).store(0xdead_beef, Ordering::Release);
        assert_eq!(b.u64_at(64).load(Ordering::Acquire), 0xdead_beef);
        a.write(100, b"abc");
        let mut out = [0u8; 3];
        b.read(100, &mut out);
        assert_eq!(&out, b"abc");
        b.zero(100, 3);
        a.read(100, &mut out);
        assert_eq!(out, [0; 3]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "memfd")]
    fn sealed_against_resizing() {
        let a = Region::create(4096).unwrap();
        assert!(rustix::fs::ftruncate(a.fd(), 0).is_err());
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn out_of_bounds_access_is_caught() {
        let a = Region::for_test(4096);
        a.u64_at(4096);
    }
}
