//! Wake-ups instead of polling (ABI 1.10).
//!
//! Without them a client polls its rings (the control plane did every
//! millisecond) and a worker polls its command ring (every 2 ms): an idle
//! server woke 2 500 times a second, and that fixed cost was most of what
//! the control plane spent per forwarded packet at low load.
//!
//! A client that wants wake-ups sends [`REQUEST`] on its control socket,
//! with one eventfd of its own attached. The dataplane answers with
//! [`Reply`]: 8 bytes and one eventfd per worker, in worker order. From
//! then on, until another client attaches:
//! - a worker that pushed exception packets or events checks the header's
//!   `CLIENT_SLEEPING` word after the push and, if it was nonzero, clears
//!   it and adds 1 to the client's eventfd;
//! - the client adds 1 to a worker's eventfd after pushing commands or
//!   datagrams to it, and the worker, which now sleeps until its timers or
//!   that eventfd, picks them up at once.
//!
//! A client going to sleep stores 1 in `CLIENT_SLEEPING`, then looks at its
//! rings once more and sleeps only if they are empty; a worker stores its
//! ring's tail before it reads the word. Both sides order these with
//! sequentially consistent operations, so either the worker sees the flag
//! or the client sees the message: no wake-up is lost.

use super::layout::header;
use super::region::Region;
use core::sync::atomic::{AtomicBool, Ordering, fence};
use rustix::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a client sends to register (with its eventfd attached).
pub const REQUEST: [u8; 8] = *b"SYWAKEUP";

/// The dataplane's answer to [`REQUEST`]: how many worker eventfds are
/// attached (one per worker, in worker order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// Eventfds attached.
    pub workers: u32,
}

impl Reply {
    /// The 8 bytes on the wire: `u32` workers, `u32` reserved (0).
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.workers.to_le_bytes());
        b
    }

    /// Reads a reply; `None` unless it is 8 bytes.
    pub fn decode(bytes: &[u8]) -> Option<Reply> {
        let b: [u8; 8] = bytes.try_into().ok()?;
        Some(Reply {
            workers: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        })
    }
}

/// Adds 1 to an eventfd (what waking its owner means).
pub fn signal(fd: impl AsFd) {
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// Waits up to `timeout` for an eventfd to be signalled, then clears it:
/// whether it was.
pub fn wait(fd: impl AsFd, timeout: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ready = poll(&mut fds, Some(&ts)).unwrap_or(0) > 0;
    let mut b = [0u8; 8];
    let _ = rustix::io::read(&fd, &mut b);
    ready
}

/// The dataplane's side: the current client's eventfd, if it registered.
/// Shared by the control-socket thread (which sets it) and the workers
/// (which signal it).
#[derive(Default)]
pub struct ClientWake {
    fd: Mutex<Option<Arc<OwnedFd>>>,
    registered: AtomicBool,
}

impl ClientWake {
    /// True while the current client takes wake-ups: workers may then sleep
    /// until their timers, since the client wakes them for commands.
    pub fn registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// Registers the current client's eventfd, or forgets it (`None`: a new
    /// client attached, which polls until it registers).
    pub fn set(&self, fd: Option<OwnedFd>) {
        let mut slot = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        self.registered.store(fd.is_some(), Ordering::Release);
        *slot = fd.map(Arc::new);
    }

    /// Called by a worker after it pushed into a ring the client consumes:
    /// wakes the client if it sleeps. Costs one atomic swap when it does
    /// not.
    pub fn notify(&self, region: &Region) {
        if !self.registered() {
            return;
        }
        // the push (a release store of the tail) comes before this load
        fence(Ordering::SeqCst);
        if region
            .u32_at(header::CLIENT_SLEEPING)
            .swap(0, Ordering::SeqCst)
            == 0
        {
            return;
        }
        let fd = self.fd.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(fd) = fd {
            signal(&*fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_round_trips_and_rejects_other_lengths() {
        let r = Reply { workers: 12 };
        assert_eq!(Reply::decode(&r.encode()), Some(r));
        assert_eq!(Reply::decode(&[0; 7]), None);
        assert_eq!(Reply::decode(&[0; 9]), None);
    }

    #[test]
    #[cfg_attr(miri, ignore = "eventfd")]
    fn a_worker_signals_only_a_sleeping_registered_client() {
        use rustix::event::{EventfdFlags, eventfd};
        let region = Region::for_test(4096);
        let wake = ClientWake::default();
        let fd = eventfd(0, EventfdFlags::NONBLOCK).unwrap();
        let pending = |fd: &OwnedFd| {
            let mut b = [0u8; 8];
            rustix::io::read(fd, &mut b).is_ok()
        };
        let sleeping = region.u32_at(header::CLIENT_SLEEPING);
        // not registered: nothing, even while "sleeping"
        sleeping.store(1, Ordering::SeqCst);
        wake.notify(&region);
        assert_eq!(sleeping.load(Ordering::SeqCst), 1);
        wake.set(Some(rustix::io::dup(&fd).unwrap()));
        assert!(wake.registered());
        wake.notify(&region);
        assert!(pending(&fd), "a sleeping client is signalled");
        assert_eq!(sleeping.load(Ordering::SeqCst), 0, "and its flag cleared");
        wake.notify(&region);
        assert!(!pending(&fd), "an awake client is not");
        wake.set(None);
        assert!(!wake.registered());
        sleeping.store(1, Ordering::SeqCst);
        wake.notify(&region);
        assert!(!pending(&fd), "a client that attached since polls");
    }
}
