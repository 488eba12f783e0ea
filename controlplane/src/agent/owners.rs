//! Which focus drives each endpoint and source of a bridge that serves
//! several (shards sharing bridges, docs/cluster.md "Shared bridges").
//!
//! The focus that opened an endpoint, or added a source, owns it: reports
//! about it go to that focus alone, its registration lists only what it
//! owns (so it never closes another shard's endpoints as orphans), and a
//! focus gone for good has what it owned closed. Ids are unique across the
//! cluster (each shard's carry its registry tag), so one map serves.
//! Sans-IO; saved with the agent, so a restarted bridge process still knows.

use super::{FromAgent, ToAgent};
use std::collections::BTreeMap;
use switchyard_dataplane::abi::{Command, Event};

/// Id (endpoint or source) → the cluster URL of the focus that owns it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owners {
    by_id: BTreeMap<u64, String>,
}

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// An endpoint (closed with `CloseTransport`).
    Endpoint(u64),
    /// A source (removed with `RemoveSource`).
    Source(u64),
}

impl Owners {
    /// Owners as saved.
    pub fn from_saved(by_id: BTreeMap<u64, String>) -> Owners {
        Owners { by_id }
    }

    /// The map, to save.
    pub fn saved(&self) -> &BTreeMap<u64, String> {
        &self.by_id
    }

    /// Notes what `msg` from the focus at `focus` opens or closes.
    pub fn note(&mut self, focus: &str, msg: &ToAgent) {
        match msg {
            ToAgent::OpenTransport(spec) => {
                self.by_id.insert(spec.endpoint, focus.to_string());
            }
            ToAgent::CloseTransport { endpoint } => {
                self.by_id.remove(endpoint);
            }
            ToAgent::Dataplane {
                command: Command::AddSource(spec),
                ..
            } => {
                self.by_id.insert(spec.id, focus.to_string());
            }
            ToAgent::Dataplane {
                command: Command::RemoveSource { source },
                ..
            } => {
                self.by_id.remove(source);
            }
            _ => {}
        }
    }

    /// The focus a report is for (`None`: every focus — the drain's
    /// `evacuate`, or an id nobody owns).
    pub fn of(&self, msg: &FromAgent) -> Option<&str> {
        let id = match msg {
            FromAgent::Connected(id) | FromAgent::Failed(id, _) => *id,
            FromAgent::Refused { id, .. } => *id,
            FromAgent::Event(e) => event_subject(e)?,
            FromAgent::Evacuate => return None,
        };
        self.by_id.get(&id).map(String::as_str)
    }

    /// Whether `id` is owned by `focus`, or by nobody (an endpoint saved
    /// before owners were: every focus hears of it).
    pub fn reported_to(&self, id: u64, focus: &str) -> bool {
        self.by_id.get(&id).is_none_or(|f| f == focus)
    }

    /// Forgets what `focus` owns and says what it was, endpoints first
    /// (`sources`: whether an id is a source; everything else is taken
    /// for an endpoint).
    pub fn release(&mut self, focus: &str, sources: impl Fn(u64) -> bool) -> Vec<Owned> {
        let ids: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, f)| *f == focus)
            .map(|(id, _)| *id)
            .collect();
        let mut out: Vec<Owned> = Vec::with_capacity(ids.len());
        for id in ids {
            self.by_id.remove(&id);
            out.push(if sources(id) {
                Owned::Source(id)
            } else {
                Owned::Endpoint(id)
            });
        }
        out.sort_by_key(|o| matches!(o, Owned::Source(_)));
        out
    }

    /// Keeps only the ids `live` says still exist.
    pub fn retain(&mut self, live: impl Fn(u64) -> bool) {
        self.by_id.retain(|id, _| live(*id));
    }

    /// How many ids it knows.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether it knows none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The endpoint or source a dataplane event is about.
fn event_subject(e: &Event) -> Option<u64> {
    Some(match e {
        Event::CommandFailed { id, .. } => *id,
        Event::LayerSwitched { endpoint, .. }
        | Event::Feedback { endpoint, .. }
        | Event::EndpointIdle { endpoint, .. }
        | Event::EndpointActive { endpoint }
        | Event::Bandwidth { endpoint, .. } => *endpoint,
        Event::AudioLevel { source, .. }
        | Event::KeyframeRequested { source, .. }
        | Event::SourceRates { source, .. } => *source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_source(id: u64, endpoint: u64) -> ToAgent {
        ToAgent::Dataplane {
            worker: 0,
            command: crate::replica::tests::source(id, endpoint),
        }
    }

    fn open(endpoint: u64) -> ToAgent {
        ToAgent::OpenTransport(crate::agent::tests::spec(endpoint))
    }

    #[test]
    fn reports_go_to_the_focus_that_opened_what_they_name() {
        let mut o = Owners::default();
        o.note("ws://a/cluster", &open(1));
        o.note("ws://a/cluster", &add_source(10, 1));
        o.note("ws://b/cluster", &open(2));
        assert_eq!(o.of(&FromAgent::Connected(1)), Some("ws://a/cluster"));
        assert_eq!(
            o.of(&FromAgent::Failed(2, "x".into())),
            Some("ws://b/cluster")
        );
        let level = Event::AudioLevel {
            source: 10,
            level: 3,
            voice: true,
        };
        assert_eq!(o.of(&FromAgent::Event(level)), Some("ws://a/cluster"));
        assert_eq!(o.of(&FromAgent::Evacuate), None);
        assert_eq!(o.of(&FromAgent::Connected(99)), None);
        // each registration lists its own and the unowned
        assert!(o.reported_to(1, "ws://a/cluster") && !o.reported_to(1, "ws://b/cluster"));
        assert!(o.reported_to(77, "ws://b/cluster"));
        // closing forgets
        o.note("ws://b/cluster", &ToAgent::CloseTransport { endpoint: 2 });
        o.note(
            "ws://a/cluster",
            &ToAgent::Dataplane {
                worker: 0,
                command: Command::RemoveSource { source: 10 },
            },
        );
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn a_gone_focus_releases_its_endpoints_before_its_sources() {
        let mut o = Owners::default();
        o.note("a", &add_source(10, 1));
        o.note("a", &open(1));
        o.note("b", &open(2));
        let released = o.release("a", |id| id == 10);
        assert_eq!(released, vec![Owned::Endpoint(1), Owned::Source(10)]);
        assert_eq!(o.saved().keys().copied().collect::<Vec<_>>(), vec![2]);
        o.retain(|id| id != 2);
        assert!(o.is_empty());
    }
}
