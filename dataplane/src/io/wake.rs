//! Waking a sleeping worker from another thread (an eventfd that the
//! backends wait on together with their socket). A worker marks itself
//! sleeping before it blocks; producers write the eventfd only then, so
//! the busy path costs one atomic swap and no system call.

use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// An eventfd plus a "sleeping" flag.
pub struct Wake {
    fd: OwnedFd,
    sleeping: AtomicBool,
}

impl Wake {
    /// A new, unsignalled wake.
    pub fn new() -> std::io::Result<Wake> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Wake {
            fd,
            sleeping: AtomicBool::new(false),
        })
    }

    /// The eventfd to wait on.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Called by the owner before blocking.
    pub fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.store(sleeping, Ordering::SeqCst);
    }

    /// Wakes the owner if it sleeps.
    pub fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
        }
    }

    /// Consumes pending wake-ups (after waking).
    pub fn reset(&self) {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut b);
    }
}
