//! The focus's outboxes, one per bridge: what the hub asked of a bridge's
//! agent, waiting for that bridge's link to carry it. An outbox outlives
//! a link that drops for a moment (the agent reconnects and the messages
//! go then, in order) and is bounded: a bridge that takes nothing for
//! [`MAX_OUTBOX`] messages is cut off and counts as lost.

use crate::agent::ToAgent;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Messages that may wait for one bridge.
pub const MAX_OUTBOX: usize = 1 << 14;

struct Outbox {
    queue: VecDeque<ToAgent>,
    /// The serial of the link that carries it now, if one does.
    link: Option<u64>,
    wake: Arc<Notify>,
    /// It overflowed: the link must end.
    overflowed: bool,
}

/// Every bridge's outbox.
#[derive(Default)]
pub struct Links {
    map: Mutex<HashMap<String, Outbox>>,
    serials: std::sync::atomic::AtomicU64,
}

/// A link's claim on its bridge's outbox.
#[derive(Debug)]
pub struct Claim {
    /// Which link holds it.
    pub serial: u64,
    /// Woken when messages arrive.
    pub wake: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Links {
    /// Whether a live link carries `bridge`.
    pub fn in_use(&self, bridge: &str) -> bool {
        lock(&self.map)
            .get(bridge)
            .is_some_and(|o| o.link.is_some())
    }

    /// Claims `bridge`'s outbox for a new link (`None` if a live link holds
    /// it).
    pub fn claim(&self, bridge: &str) -> Option<Claim> {
        let mut map = lock(&self.map);
        let o = map.entry(bridge.to_string()).or_insert_with(|| Outbox {
            queue: VecDeque::new(),
            link: None,
            wake: Arc::new(Notify::new()),
            overflowed: false,
        });
        if o.link.is_some() {
            return None;
        }
        let serial = self
            .serials
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        o.link = Some(serial);
        o.overflowed = false;
        Some(Claim {
            serial,
            wake: o.wake.clone(),
        })
    }

    /// The link `serial` ended; the outbox waits for the next.
    pub fn release(&self, bridge: &str, serial: u64) {
        if let Some(o) = lock(&self.map).get_mut(bridge)
            && o.link == Some(serial)
        {
            o.link = None;
        }
    }

    /// Forgets a bridge that is gone for good, with what waited for it.
    pub fn forget(&self, bridge: &str) {
        lock(&self.map).remove(bridge);
    }

    /// Queues a message for `bridge`; false if it has no outbox (it never
    /// registered, or is gone).
    pub fn send(&self, bridge: &str, msg: ToAgent) -> bool {
        let mut map = lock(&self.map);
        let Some(o) = map.get_mut(bridge) else {
            return false;
        };
        if o.queue.len() >= MAX_OUTBOX {
            o.overflowed = true;
        } else {
            o.queue.push_back(msg);
        }
        o.wake.notify_one();
        true
    }

    /// What waits for the link `serial` of `bridge`; `Err` if its outbox
    /// overflowed (the link must end) or another link took it.
    pub fn take(&self, bridge: &str, serial: u64) -> Result<Vec<ToAgent>, &'static str> {
        let mut map = lock(&self.map);
        let Some(o) = map.get_mut(bridge).filter(|o| o.link == Some(serial)) else {
            return Err("another link took over");
        };
        if o.overflowed {
            o.queue.clear();
            return Err("it took nothing for too long (outbox full)");
        }
        Ok(o.queue.drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_waits_for_the_next_link_and_is_bounded() {
        let links = Links::default();
        assert!(!links.send("b", ToAgent::CloseTransport { endpoint: 1 }));
        let first = links.claim("b").unwrap();
        assert!(links.claim("b").is_none(), "one link per bridge");
        assert!(links.in_use("b"));
        links.release("b", first.serial);
        assert!(links.send("b", ToAgent::CloseTransport { endpoint: 1 }));
        let second = links.claim("b").unwrap();
        assert!(links.take("b", first.serial).is_err());
        assert_eq!(links.take("b", second.serial).unwrap().len(), 1);
        for i in 0..=MAX_OUTBOX as u64 {
            links.send("b", ToAgent::CloseTransport { endpoint: i });
        }
        assert!(
            links.take("b", second.serial).is_err(),
            "overflow ends the link"
        );
    }
}
