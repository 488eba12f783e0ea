//! What a pump sleeps on between rounds: one eventfd that the dataplane's
//! workers signal when they have packets or events for it (once the client
//! registered for wake-ups, `abi::wakeup`), and that the WebSocket
//! handlers and cluster links signal after they give the hub or the agent
//! something to send. Without it (no eventfd could be made) the pump polls
//! every millisecond, as it did before wake-ups.

use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;
use switchyard_dataplane::abi::wakeup;

/// How often a pump without an eventfd looks for work (and one whose
/// commands wait for room in a ring).
pub const POLL_EVERY: Duration = Duration::from_millis(1);
/// Longest a pump sleeps with nothing to do: its timers need no finer step
/// (DTLS retransmissions are checked every 100 ms, a relay's ICE checks
/// paced every 50 ms, rooms reallocated each second).
pub const PUMP_IDLE: Duration = Duration::from_millis(20);

/// How long a pump sleeps before each round: not before its first (which
/// makes the hub or starts the agent's host), [`POLL_EVERY`] while
/// commands a full ring held back wait for room, else [`PUMP_IDLE`].
#[derive(Debug)]
pub struct PumpPace {
    first: bool,
}

impl Default for PumpPace {
    fn default() -> PumpPace {
        PumpPace { first: true }
    }
}

impl PumpPace {
    /// The sleep before the next round (`None`: none, the first round).
    pub fn next(&mut self, backlog: bool) -> Option<Duration> {
        if std::mem::take(&mut self.first) {
            return None;
        }
        Some(if backlog { POLL_EVERY } else { PUMP_IDLE })
    }
}

/// An eventfd to sleep on, if one could be made.
pub struct PumpWake {
    fd: Option<OwnedFd>,
}

impl Default for PumpWake {
    fn default() -> PumpWake {
        PumpWake::new()
    }
}

impl PumpWake {
    /// A new wake (logs and falls back to polling if the eventfd fails).
    pub fn new() -> PumpWake {
        match eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK) {
            Ok(fd) => PumpWake { fd: Some(fd) },
            Err(e) => {
                tracing::warn!(target: "switchyard::server", error = %e, "no eventfd for the pump: it polls every millisecond");
                PumpWake { fd: None }
            }
        }
    }

    /// The eventfd, to register with the dataplane.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// Wakes the pump (now, or at once when it next sleeps).
    pub fn notify(&self) {
        if let Some(fd) = &self.fd {
            wakeup::signal(fd);
        }
    }

    /// A guard that wakes the pump when it is dropped: held while a
    /// handler changes what the pump moves, however the handler leaves.
    pub fn on_drop(&self) -> NotifyOnDrop<'_> {
        NotifyOnDrop(self)
    }

    /// Sleeps until notified or `max` passed (without an eventfd: for
    /// [`POLL_EVERY`]), then clears what was notified.
    pub fn wait(&self, max: Duration) {
        match &self.fd {
            Some(fd) => {
                wakeup::wait(fd, max);
            }
            None => std::thread::sleep(POLL_EVERY.min(max)),
        }
    }
}

/// See [`PumpWake::on_drop`].
pub struct NotifyOnDrop<'a>(&'a PumpWake);

impl Drop for NotifyOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_notification_ends_the_wait_and_is_consumed() {
        let w = PumpWake::new();
        w.notify();
        let t = Instant::now();
        w.wait(Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1), "woken at once");
        let mut b = [0u8; 8];
        assert_eq!(
            rustix::io::read(w.fd().unwrap(), &mut b),
            Err(rustix::io::Errno::AGAIN),
            "the notification was consumed"
        );
    }

    #[test]
    fn a_notification_from_another_thread_wakes_a_sleeper() {
        let w = std::sync::Arc::new(PumpWake::new());
        let w2 = w.clone();
        let t = Instant::now();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.notify();
        });
        w.wait(Duration::from_secs(5));
        h.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
