//! The shared memory itself: a sealed `memfd`, mapped shared, and the
//! `SCM_RIGHTS` handover of its descriptor over a unix socket.
//!
//! This module and [`super::ring`] are the only places that touch the
//! mapping through raw pointers. Every access is bounds- and alignment-
//! checked against the mapping; fields both processes change are atomics.

use super::AbiError;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;

/// A mapped shared-memory region.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory owned by this value until drop;
// all access goes through atomics or bounds-checked raw copies, which are
// sound from any thread.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only hands out atomics and copying accessors.
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
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
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
        Ok(Region { ptr, len, fd })
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
        self.fd.as_fd()
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
        // as `self`; AtomicU64 tolerates concurrent access from the peer.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// The 32-bit word at `offset` (4-byte aligned).
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: as for `u64_at`.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// Copies `data` into the region at `offset`. The caller's protocol
    /// (ring indices) must give it exclusive use of those bytes.
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len(), 1);
        // SAFETY: destination in bounds (checked) and not overlapping `data`,
        // which is a Rust slice outside the mapping or a disjoint part of it.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len())
        }
    }

    /// Copies bytes at `offset` out into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        self.check(offset, out.len(), 1);
        // SAFETY: source in bounds (checked); `out` is a distinct Rust slice.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                out.as_mut_ptr(),
                out.len(),
            )
        }
    }

    /// Sets `len` bytes at `offset` to zero (e.g. a consumed slot that held keys).
    pub fn zero(&self, offset: usize, len: usize) {
        self.check(offset, len, 1);
        // SAFETY: in bounds (checked); exclusive by the caller's protocol.
        unsafe { core::ptr::write_bytes(self.ptr.as_ptr().add(offset), 0, len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `map`, and no
        // reference into it outlives `self` (accessors borrow `self`).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Sends `fd` and a short message over a connected unix stream socket.
pub fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>, message: &[u8]) -> Result<(), AbiError> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let fds = [fd];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
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
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| AbiError::Io("recvmsg SCM_RIGHTS", e.into()))?;
    let mut fd = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            fd = fds.next();
        }
    }
    let fd = fd.ok_or(AbiError::BadRegion("handover carried no descriptor"))?;
    Ok((fd, got.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;

    #[test]
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
    fn sealed_against_resizing() {
        let a = Region::create(4096).unwrap();
        assert!(rustix::fs::ftruncate(a.fd(), 0).is_err());
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn out_of_bounds_access_is_caught() {
        let a = Region::create(4096).unwrap();
        a.u64_at(4096);
    }
}
