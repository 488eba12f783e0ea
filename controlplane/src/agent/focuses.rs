//! The focuses a bridge serves: those named with `--focus`, and with
//! `--registry` every live shard's focus the registry lists (shards sharing
//! bridges, docs/cluster.md). One link each (`agent::focus_link`); reports
//! go to the focus that owns what they name (`agent::owners`).
//!
//! A focus the registry no longer lists whose link has been down for
//! [`GONE_AFTER`] is gone for good (its shard died or was scaled away): its
//! link stops and the endpoints and sources it owned are closed, so they
//! hold no place on the dataplane. A focus named with `--focus` is never
//! given up (media flows on while it is away, and it closes what it no
//! longer has when it comes back). While the registry cannot be reached,
//! nothing changes.

use super::bridge::Shared;
use super::focus_link::{LinkState, keep_linked};
use crate::cluster::auth::Secret;
use crate::cluster::wire::Up;
use crate::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Reports that may wait for one link before new ones are dropped.
const UP_QUEUE: usize = 1 << 14;
/// How often the registry is asked for the shards.
const DISCOVER_EVERY: Duration = Duration::from_secs(1);
/// A focus the registry stopped listing, with its link down this long, is
/// gone.
pub const GONE_AFTER: Duration = Duration::from_secs(10);
/// Most focuses a bridge links to (a registry listing more is taken in
/// part: every link costs a task and a queue).
pub const MAX_FOCUSES: usize = 256;

/// One focus's link as the bridge holds it.
pub struct Link {
    /// Reports for it.
    pub up: mpsc::Sender<Up>,
    /// Whether it is up, since when down.
    pub state: Arc<LinkState>,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

/// The links, by focus cluster URL.
#[derive(Default)]
pub struct Links {
    by_focus: BTreeMap<Arc<str>, Link>,
}

impl Links {
    /// The link to `focus`.
    pub fn get(&self, focus: &str) -> Option<&Link> {
        self.by_focus.get(focus)
    }

    /// Every link.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Link)> {
        self.by_focus.iter()
    }

    /// (up, all).
    pub fn counts(&self) -> (usize, usize) {
        let up = self.by_focus.values().filter(|l| l.state.is_up()).count();
        (up, self.by_focus.len())
    }
}

/// What to change, given the focuses wanted now.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Start linking to it.
    Link(String),
    /// Stop linking and close what it owned.
    GiveUp(String),
}

/// The changes that make the focuses `linked` now into those `wanted`
/// (named ones and those listed); `down_for` tells how long a link has
/// been down.
pub fn changes(
    wanted: &BTreeSet<String>,
    linked: &BTreeSet<String>,
    down_for: impl Fn(&str) -> Duration,
) -> Vec<Change> {
    let mut out: Vec<Change> = wanted
        .difference(linked)
        .map(|f| Change::Link(f.clone()))
        .collect();
    out.extend(
        linked
            .difference(wanted)
            .filter(|f| down_for(f) >= GONE_AFTER)
            .map(|f| Change::GiveUp(f.clone())),
    );
    out
}

/// Keeps the links matching the focuses wanted, every second.
pub async fn keep_focuses(
    s: Arc<Shared>,
    fixed: Vec<String>,
    registry: Option<Arc<dyn Registry>>,
    secret: Secret,
) {
    let mut tick = tokio::time::interval(DISCOVER_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registry_up = true;
    let mut warned_many = false;
    loop {
        tick.tick().await;
        // (None: the registry cannot say)
        let listed: Option<BTreeSet<String>> = match &registry {
            None => Some(BTreeSet::new()),
            Some(r) => match r.shards().await {
                Ok(shards) => {
                    if !registry_up {
                        tracing::info!(target: "switchyard::agent", "registry back");
                    }
                    registry_up = true;
                    // (only ws:// URLs; the handshake proves each is a
                    // focus holding the cluster secret)
                    let urls: BTreeSet<String> = shards
                        .into_iter()
                        .filter_map(|sh| sh.cluster)
                        .filter(|u| u.starts_with("ws://"))
                        .collect();
                    if urls.len() > MAX_FOCUSES && !warned_many {
                        tracing::warn!(target: "switchyard::agent", listed = urls.len(), linked = MAX_FOCUSES, "the registry lists more focuses than a bridge links to");
                    }
                    warned_many = urls.len() > MAX_FOCUSES;
                    Some(urls.into_iter().take(MAX_FOCUSES).collect())
                }
                Err(e) => {
                    if registry_up {
                        tracing::warn!(target: "switchyard::agent", error = %e, "registry lost: the focuses linked stay, none found there is added or given up");
                    }
                    registry_up = false;
                    None
                }
            },
        };
        // without the registry's word every focus linked is still wanted
        let listed =
            listed.unwrap_or_else(|| s.links().iter().map(|(f, _)| f.to_string()).collect());
        let wanted: BTreeSet<String> = fixed.iter().cloned().chain(listed).collect();
        let now = Instant::now();
        let todo = {
            let links = s.links();
            let linked = links.by_focus.keys().map(|f| f.to_string()).collect();
            changes(&wanted, &linked, |f| {
                links
                    .get(f)
                    .map_or(Duration::ZERO, |l| l.state.down_for(now, l.started))
            })
        };
        for change in todo {
            match change {
                Change::Link(focus) => {
                    tracing::info!(target: "switchyard::agent", focus, "linking to a focus");
                    let focus: Arc<str> = focus.into();
                    let (tx, rx) = mpsc::channel(UP_QUEUE);
                    let state = Arc::new(LinkState::default());
                    let task = tokio::spawn(keep_linked(
                        s.clone(),
                        focus.clone(),
                        secret.clone(),
                        state.clone(),
                        rx,
                    ));
                    s.links().by_focus.insert(
                        focus,
                        Link {
                            up: tx,
                            state,
                            started: now,
                            task,
                        },
                    );
                }
                Change::GiveUp(focus) => {
                    if let Some(link) = s.links().by_focus.remove(focus.as_str()) {
                        link.task.abort();
                    }
                    tracing::warn!(target: "switchyard::agent", focus, after_s = GONE_AFTER.as_secs(), "a focus the registry no longer lists is gone: closing what it owned");
                    s.give_up(focus);
                }
            }
        }
    }
}

/// Stops every link (the bridge stops).
pub fn stop_all(links: &mut Links) {
    for (_, l) in std::mem::take(&mut links.by_focus) {
        l.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn new_focuses_are_linked_and_unlisted_ones_given_up_once_down_long_enough() {
        let down = |f: &str| match f {
            "old" => GONE_AFTER,
            "blip" => GONE_AFTER / 2,
            _ => Duration::ZERO,
        };
        let c = changes(
            &set(&["a", "new"]),
            &set(&["a", "old", "blip", "alive"]),
            down,
        );
        assert_eq!(
            c,
            vec![Change::Link("new".into()), Change::GiveUp("old".into())],
            "a focus down briefly, or still linked, is kept though unlisted"
        );
        assert!(changes(&set(&["a"]), &set(&["a"]), down).is_empty());
    }
}
