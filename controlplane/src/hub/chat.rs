//! Chat: text messages to the whole room or to one participant, through the
//! signalling connection; and endpoint messages, small JSON values apps
//! send each other the same way (reactions, a shared pointer), passed on
//! untouched and never kept. The server keeps the room's last
//! [`HISTORY`] room-wide messages for those who join later (in `joined`),
//! never private ones; a sender gets [`BURST`] messages at once and
//! [`RATE`] a second after that, and a message over its budget is refused
//! with `limit` (the app shows it). Text is text: the server neither reads
//! nor changes it, and clients must show it as text (the demo app never
//! puts it into HTML).

use super::{Hub, VERSION, pid};
use crate::signalling::{ChatLine, ErrorCode, ProtocolError, ServerMessage};
use std::time::Instant;

/// Room-wide messages kept per room for later joiners.
pub const HISTORY: usize = 50;
/// Messages a sender may send at once.
pub const BURST: f64 = 5.0;
/// Messages a second a sender may send after its burst.
pub const RATE: f64 = 1.0;
/// Endpoint messages a sender may send at once.
pub const MESSAGE_BURST: f64 = 20.0;
/// Endpoint messages a second after that.
pub const MESSAGE_RATE: f64 = 10.0;

/// One sender's token bucket (its burst and rate given by the caller).
#[derive(Debug, Clone, Default)]
pub(super) struct Budget {
    tokens: Option<f64>,
    last: Option<Instant>,
}

impl Budget {
    /// Takes a message's token; false when the budget is spent.
    fn take(&mut self, now: Instant, burst: f64, rate: f64) -> bool {
        let elapsed = self
            .last
            .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
        let tokens = (self.tokens.unwrap_or(burst) + elapsed * rate).min(burst);
        self.last = Some(now);
        if tokens >= 1.0 {
            self.tokens = Some(tokens - 1.0);
            true
        } else {
            self.tokens = Some(tokens);
            false
        }
    }

    /// [`Budget::take`], or the `limit` error that refuses a `what`.
    fn spend(
        &mut self,
        now: Instant,
        (burst, rate): (f64, f64),
        what: &str,
    ) -> Result<(), ProtocolError> {
        match self.take(now, burst, rate) {
            true => Ok(()),
            false => Err(ProtocolError::new(
                ErrorCode::Limit,
                format!(
                    "{what}: at most {burst} at once and {rate} a second; this one was not sent"
                ),
            )),
        }
    }
}

impl Hub {
    /// `chat` from `id`: to everyone else in its room, or to `to` alone.
    pub(super) fn on_chat(
        &mut self,
        now: Instant,
        id: u64,
        text: String,
        to: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        p.chat_budget.spend(now, (BURST, RATE), "chat")?;
        let (name, room) = (p.name.clone(), p.room.clone());
        let line = ChatLine {
            from: pid(id),
            name,
            text,
        };
        let room_wide = self.deliver(id, to, |private| chat_message(&line, private))?;
        if room_wide && let Some(r) = self.rooms.get_mut(&room) {
            if r.chat.len() == HISTORY {
                r.chat.pop_front();
            }
            r.chat.push_back(line);
        }
        Ok(())
    }

    /// `endpoint_message` from `id`: `data` to everyone else in its room,
    /// or to `to` alone.
    pub(super) fn on_endpoint_message(
        &mut self,
        now: Instant,
        id: u64,
        data: serde_json::Value,
        to: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let Some(p) = self.participants.get_mut(&id) else {
            return Ok(());
        };
        p.message_budget
            .spend(now, (MESSAGE_BURST, MESSAGE_RATE), "endpoint_message")?;
        self.deliver(id, to, |private| ServerMessage::EndpointMessage {
            v: VERSION,
            from: pid(id),
            data: data.clone(),
            private,
        })?;
        Ok(())
    }

    /// Sends `msg(private)` from `id` to `to` alone (private), or to everyone
    /// else in its room; returns whether it went room-wide.
    fn deliver(
        &mut self,
        id: u64,
        to: Option<&str>,
        msg: impl Fn(bool) -> ServerMessage,
    ) -> Result<bool, ProtocolError> {
        match to {
            Some(target) => {
                let target = self.room_peer(id, target, "to")?;
                self.signal(target, msg(true));
                Ok(false)
            }
            None => {
                for o in self.room_others(id) {
                    self.signal(o, msg(false));
                }
                Ok(true)
            }
        }
    }

    /// The room's kept messages, oldest first.
    pub(super) fn chat_history(&self, room: &str) -> Vec<ChatLine> {
        self.rooms
            .get(room)
            .map(|r| r.chat.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn chat_message(line: &ChatLine, private: bool) -> ServerMessage {
    ServerMessage::Chat {
        v: VERSION,
        from: line.from.clone(),
        name: line.name.clone(),
        text: line.text.clone(),
        private,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_sender_gets_its_burst_then_its_rate() {
        let t = Instant::now();
        let mut b = Budget::default();
        let sent = (0..20).filter(|_| b.take(t, BURST, RATE)).count();
        assert_eq!(sent, BURST as usize);
        assert!(!b.take(t + Duration::from_millis(500), BURST, RATE));
        assert!(b.take(t + Duration::from_millis(1100), BURST, RATE));
        assert!(!b.take(t + Duration::from_millis(1200), BURST, RATE));
    }
}
