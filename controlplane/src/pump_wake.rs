//! What a pump sleeps on between rounds: one eventfd that the dataplane's
//! workers signal when they have packets or events for it (once the client
//! registered for wake-ups, `abi::wakeup`), and that the WebSocket
//! handlers and cluster links signal after they give the hub or the agent
//! something to send. Without it (no eventfd could be made) the pump polls
//! every millisecond, as it did before wake-ups.

use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};
use switchyard_dataplane::abi::wakeup;

/// How often a pump without an eventfd looks for work (and one whose
/// commands wait for room in a ring).
pub const POLL_EVERY: Duration = Duration::from_millis(1);
/// Shortest sleep for a timer: a pump wakes for its transports' timers
/// (a relay's ICE checks paced every 50 ms, DTLS flights repeated every
/// 100 ms) no more often than this, and a deadline already past (one its
/// `handle_timeout` did not move) costs at most a round per this.
pub const PUMP_STEP: Duration = Duration::from_millis(20);
/// Longest a pump sleeps with nothing to do and no timer sooner: what has
/// no deadline of its own (rooms reallocated each second, the state saved
/// every 250 ms when it changed, sessions that were not resumed) needs no
/// finer step. Work wakes it at once.
pub const PUMP_IDLE: Duration = Duration::from_millis(100);

/// How long a pump sleeps before each round: not before its first (which
/// makes the hub or starts the agent's host), [`POLL_EVERY`] while
/// commands a full ring held back wait for room, else until its soonest
/// timer — no less than [`PUMP_STEP`], no more than [`PUMP_IDLE`].
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
    /// The sleep before the next round (`None`: none, the first round);
    /// `timer`: how long until the soonest timer, if any.
    pub fn next(&mut self, backlog: bool, timer: Option<Duration>) -> Option<Duration> {
        if std::mem::take(&mut self.first) {
            return None;
        }
        Some(match (backlog, timer) {
            (true, _) => POLL_EVERY,
            (false, Some(t)) => t.clamp(PUMP_STEP, PUMP_IDLE),
            (false, None) => PUMP_IDLE,
        })
    }
}

/// How long from `now` until `deadline` (zero if it passed).
pub fn until(now: Instant, deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(now))
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

    #[test]
    fn a_pump_sleeps_until_its_timer_within_bounds() {
        let mut pace = PumpPace::default();
        assert_eq!(
            pace.next(false, None),
            None,
            "no sleep before the first round"
        );
        assert_eq!(pace.next(false, None), Some(PUMP_IDLE));
        assert_eq!(pace.next(true, None), Some(POLL_EVERY), "a backlog polls");
        let ms = Duration::from_millis;
        assert_eq!(pace.next(false, Some(ms(50))), Some(ms(50)));
        assert_eq!(
            pace.next(false, Some(ms(0))),
            Some(PUMP_STEP),
            "a past deadline"
        );
        assert_eq!(pace.next(false, Some(ms(30_000))), Some(PUMP_IDLE));
        let now = Instant::now();
        assert_eq!(until(now, Some(now + ms(7))), Some(ms(7)));
        assert_eq!(until(now + ms(7), Some(now)), Some(ms(0)));
        assert_eq!(until(now, None), None);
    }

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
