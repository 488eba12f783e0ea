//! Commands on their way to the dataplane (see [`CommandQueue`]).

use std::collections::VecDeque;
use std::time::Instant;
use switchyard_dataplane::abi::{AbiError, Client, Command};
use switchyard_dataplane::log_budget::LogBudget;

/// Commands on their way to the dataplane, in order. One that meets a full
/// ring waits (with everything after it) for the next pass instead of being
/// lost; the queue is bounded, and what overflows it is counted and logged.
#[derive(Default)]
pub struct CommandQueue {
    queue: VecDeque<(usize, Command)>,
    dropped: u64,
    log: Option<LogBudget>,
}

/// Commands a stalled dataplane may leave waiting.
const MAX_QUEUED_COMMANDS: usize = 1 << 16;

impl CommandQueue {
    /// Commands waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a command for `worker`.
    pub fn push(&mut self, worker: usize, command: Command) {
        if self.queue.len() >= MAX_QUEUED_COMMANDS {
            self.dropped += 1;
            return;
        }
        self.queue.push_back((worker, command));
    }

    /// Replaces what waits with a rebuild of the whole state (which already
    /// includes the effect of everything that waited).
    pub fn restore(&mut self, rebuild: Vec<(usize, Command)>) {
        self.queue = rebuild.into();
    }

    /// Sends what the rings take.
    pub fn flush(&mut self, now: Instant, client: &mut Client) {
        while let Some((worker, command)) = self.queue.front() {
            match client.send(*worker, command) {
                Ok(()) => {}
                Err(AbiError::Full) => break,
                Err(e) => {
                    let log = self.log.get_or_insert_with(LogBudget::per_minute);
                    if let Some(suppressed) = log.allow(now) {
                        tracing::warn!(target: "switchyard::server", error = %e, ?command, suppressed, "command not sent");
                    }
                }
            }
            self.queue.pop_front();
        }
        if self.dropped > 0 {
            let log = self.log.get_or_insert_with(LogBudget::per_minute);
            if let Some(suppressed) = log.allow(now) {
                tracing::error!(target: "switchyard::server", dropped = self.dropped, suppressed, "the dataplane takes no commands; commands dropped");
            }
            self.dropped = 0;
        }
    }
}
