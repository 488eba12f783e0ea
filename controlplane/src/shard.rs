//! This process as one shard of a cluster (docs/cluster.md, "Shards"):
//! it claims each room it opens in the shared registry, sends joins for a
//! room another shard holds there with a `redirect`, keeps its claims, its
//! own record and its bridges' records fresh, and gives rooms up once they
//! are gone.
//!
//! Rooms that are open here need no registry: a registry that cannot be
//! reached stops only new rooms (`room_unavailable`), never a call.

use crate::registry::{BridgeRecord, Owner, Registry, RegistryError, ShardRecord};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A room claim lives this long unless refreshed: how long a dead shard's
/// rooms stay unreachable before another shard may open them.
pub const ROOM_TTL: Duration = Duration::from_secs(6);
/// A shard record's life: a dead shard is out of the list this soon.
pub const SHARD_TTL: Duration = Duration::from_secs(5);
/// A bridge record's life: a dead bridge is out of the list this soon.
pub const BRIDGE_TTL: Duration = Duration::from_secs(3);
/// How often claims and records are refreshed.
pub const REFRESH: Duration = Duration::from_secs(1);
/// A claimed room not open here for this long is given up (the join that
/// claimed it failed, or everyone left).
const RELEASE_AFTER: Duration = Duration::from_secs(2);

/// Where a join for a room goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Here: the room is open here, or was just claimed for this shard.
    Here,
    /// Another shard holds the room: the client is sent there.
    Redirect {
        /// That shard's id.
        shard: String,
        /// Its signalling URL.
        url: String,
    },
    /// The room cannot be opened now; the client should retry in a few
    /// seconds (the text says why).
    Unavailable(String),
}

/// What a refresh sees of this process.
pub struct Snapshot {
    /// Rooms open here.
    pub rooms: Vec<String>,
    /// Participants in them.
    pub participants: u64,
    /// The bridges this shard hears from.
    pub bridges: Vec<BridgeRecord>,
}

/// This shard.
pub struct Shard {
    id: String,
    url: String,
    cluster: Option<String>,
    registry: Arc<dyn Registry>,
    /// The tag of its ids, once the registry gave one.
    id_tag: std::sync::OnceLock<u16>,
    /// Rooms claimed for this shard, with when each was last seen open.
    claimed: Mutex<HashMap<String, Instant>>,
    /// The registry answered the last call.
    up: AtomicBool,
    /// Rooms another shard turned out to hold too (after a registry outage).
    conflicts: AtomicU64,
    log_budget: Mutex<switchyard_dataplane::log_budget::LogBudget>,
}

impl Shard {
    /// Shard `id`, reached by clients at `url` and by bridges at `cluster`
    /// (if it takes bridges), sharing `registry`.
    pub fn new(
        id: String,
        url: String,
        cluster: Option<String>,
        registry: Arc<dyn Registry>,
    ) -> Shard {
        Shard {
            id,
            url,
            cluster,
            registry,
            id_tag: std::sync::OnceLock::new(),
            claimed: Mutex::new(HashMap::new()),
            up: AtomicBool::new(true),
            conflicts: AtomicU64::new(0),
            log_budget: Mutex::new(switchyard_dataplane::log_budget::LogBudget::per_minute()),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the registry answered the last call.
    pub fn registry_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// What the registry is (no password).
    pub fn registry_name(&self) -> String {
        self.registry.describe()
    }

    /// Rooms found held by another shard as well, since start.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// The tag of the ids it hands out (`None` until the registry gave
    /// one).
    pub fn id_tag(&self) -> Option<u16> {
        self.id_tag.get().copied()
    }

    /// Asks the registry for the id tag if there is none yet.
    async fn ensure_id_tag(&self) -> Option<u16> {
        if let Some(t) = self.id_tag() {
            return Some(t);
        }
        let tag = self.noted(self.registry.id_tag().await).ok()?;
        let tag = *self.id_tag.get_or_init(|| tag);
        tracing::info!(target: "switchyard::shard", tag, "id tag");
        Some(tag)
    }

    fn claimed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.claimed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn noted<T>(&self, r: Result<T, RegistryError>) -> Result<T, RegistryError> {
        let was = self.up.swap(r.is_ok(), Ordering::Relaxed);
        match &r {
            Err(e) if was => {
                tracing::warn!(target: "switchyard::shard", error = %e, "registry lost: open rooms go on, new rooms wait for it")
            }
            Ok(_) if !was => tracing::info!(target: "switchyard::shard", "registry back"),
            _ => {}
        }
        r
    }

    /// Where a join for `room` goes; `open_here` says whether the room is
    /// open on this shard already.
    pub async fn admit(&self, room: &str, open_here: bool) -> Route {
        // (no ids before the tag: they could meet another shard's)
        if self.ensure_id_tag().await.is_none() {
            return Route::Unavailable(UNREACHABLE.into());
        }
        if open_here {
            return Route::Here;
        }
        let rooms = [room.to_string()];
        let claimed = self
            .noted(self.registry.claim(&rooms, &self.id, ROOM_TTL).await)
            .map(|mut owners| owners.pop());
        match claimed {
            Ok(Some(Owner::Us)) => {
                self.claimed().insert(room.to_string(), Instant::now());
                Route::Here
            }
            Ok(Some(Owner::Shard(other))) => {
                let shards = self.noted(self.registry.shards().await);
                match shards.map(|list| list.into_iter().find(|s| s.id == other)) {
                    Ok(Some(s)) => Route::Redirect {
                        shard: s.id,
                        url: s.url,
                    },
                    // its record expired first: the shard is gone, and
                    // its claim follows within ROOM_TTL
                    Ok(None) => Route::Unavailable(format!(
                        "the server that held this room stopped; it reopens here within {} s",
                        ROOM_TTL.as_secs()
                    )),
                    Err(_) => Route::Unavailable(UNREACHABLE.into()),
                }
            }
            Ok(None) | Err(RegistryError::BadRecord(_)) => {
                Route::Unavailable("the cluster registry gave no answer; retry".into())
            }
            Err(_) => Route::Unavailable(UNREACHABLE.into()),
        }
    }

    /// One refresh: claims of the rooms open here, this shard's record and
    /// its bridges' records; rooms no longer open are given up. Run every
    /// [`REFRESH`].
    pub async fn refresh(&self, now: Instant, snapshot: Snapshot) {
        self.ensure_id_tag().await;
        let (release, rooms) = {
            let mut claimed = self.claimed();
            for room in &snapshot.rooms {
                claimed.insert(room.clone(), now);
            }
            let gone: Vec<String> = claimed
                .iter()
                .filter(|(_, seen)| now.saturating_duration_since(**seen) >= RELEASE_AFTER)
                .map(|(room, _)| room.clone())
                .collect();
            for room in &gone {
                claimed.remove(room);
            }
            (gone, snapshot.rooms)
        };
        // (a release that fails, or is skipped while the registry is away so
        // that the refresh is not held up, expires by itself)
        if self.registry_up() {
            for room in &release {
                let _ = self.registry.release(room, &self.id).await;
            }
        }
        // (no rooms: nothing to ask; an empty answer would say nothing of
        // whether the registry is there)
        let owners = match rooms.is_empty() {
            true => Vec::new(),
            false => self
                .noted(self.registry.claim(&rooms, &self.id, ROOM_TTL).await)
                .unwrap_or_default(),
        };
        for (room, owner) in rooms.iter().zip(owners) {
            if let Owner::Shard(other) = owner {
                // both shards opened it while the registry was away: the
                // calls go on where they are
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                let budget = self
                    .log_budget
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .allow(now);
                if let Some(suppressed) = budget {
                    tracing::warn!(target: "switchyard::shard", room, other, suppressed, "room open here is claimed by another shard too");
                }
            }
        }
        let record = ShardRecord {
            id: self.id.clone(),
            url: self.url.clone(),
            cluster: self.cluster.clone(),
            rooms: rooms.len() as u64,
            participants: snapshot.participants,
            version: env!("CARGO_PKG_VERSION").into(),
        };
        if self
            .noted(self.registry.put_shard(&record, SHARD_TTL).await)
            .is_ok()
        {
            for bridge in &snapshot.bridges {
                let _ = self.registry.put_bridge(bridge, BRIDGE_TTL).await;
            }
        }
    }

    /// The whole cluster as the registry lists it, for autoscaling (`None`
    /// while the registry cannot be reached). `threshold` is the stress at
    /// which placement stops choosing a bridge.
    pub async fn totals(&self, threshold: f64) -> Option<Totals> {
        let shards = self.shards().await.ok()?;
        let bridges = self.bridges().await.ok()?;
        Some(Totals::of(&shards, bridges, threshold))
    }

    /// The live shards, as the registry lists them.
    pub async fn shards(&self) -> Result<Vec<ShardRecord>, RegistryError> {
        self.noted(self.registry.shards().await)
    }

    /// The live bridges of the whole cluster.
    pub async fn bridges(&self) -> Result<Vec<BridgeRecord>, RegistryError> {
        self.noted(self.registry.bridges().await)
    }
}

/// The cluster in numbers, from the registry's records.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Live shards.
    pub shards: u64,
    /// Rooms on them.
    pub rooms: u64,
    /// Participants in those rooms.
    pub participants: u64,
    /// Live bridges, each with its stress.
    pub bridges: Vec<BridgeRecord>,
    /// Bridges that take new rooms.
    pub available: u64,
    /// Room left before placement's threshold, in empty bridges: the sum
    /// over available bridges of `max(0, threshold − stress) / threshold`
    /// (2.5 = two and a half idle bridges' worth).
    pub free_capacity: f64,
}

impl Totals {
    fn of(shards: &[ShardRecord], mut bridges: Vec<BridgeRecord>, threshold: f64) -> Totals {
        bridges.sort_by(|a, b| a.id.cmp(&b.id));
        let available: Vec<&BridgeRecord> = bridges.iter().filter(|b| b.available).collect();
        Totals {
            shards: shards.len() as u64,
            rooms: shards.iter().map(|s| s.rooms).sum(),
            participants: shards.iter().map(|s| s.participants).sum(),
            available: available.len() as u64,
            free_capacity: available
                .iter()
                .map(|b| ((threshold - b.stress) / threshold).clamp(0.0, 1.0))
                .sum(),
            bridges,
        }
    }
}

const UNREACHABLE: &str =
    "the cluster registry is unreachable: new rooms cannot open now; retry in a few seconds";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::memory::MemoryRegistry;

    fn snapshot(rooms: &[&str]) -> Snapshot {
        Snapshot {
            rooms: rooms.iter().map(|s| s.to_string()).collect(),
            participants: rooms.len() as u64,
            bridges: Vec::new(),
        }
    }

    #[test]
    fn totals_add_the_shards_up_and_count_free_room_in_idle_bridges() {
        let shard = |id: &str, rooms, participants| ShardRecord {
            id: id.into(),
            url: String::new(),
            cluster: None,
            rooms,
            participants,
            version: "1".into(),
        };
        let bridge = |id: &str, stress, available| BridgeRecord {
            id: id.into(),
            shard: "a".into(),
            region: None,
            stress,
            participants: 0,
            available,
        };
        let t = Totals::of(
            &[shard("a", 3, 10), shard("b", 2, 5)],
            vec![
                bridge("b2", 0.4, true),
                bridge("b1", 0.0, true),
                bridge("b3", 0.9, true),
                bridge("b4", 0.0, false),
            ],
            0.8,
        );
        assert_eq!(
            (t.shards, t.rooms, t.participants, t.available),
            (2, 5, 15, 3)
        );
        // idle: 1, half way to the threshold: 0.5, over it: 0, draining: not counted
        assert!((t.free_capacity - 1.5).abs() < 1e-9, "{}", t.free_capacity);
        assert_eq!(t.bridges[0].id, "b1");
    }

    #[tokio::test]
    async fn a_room_is_opened_by_one_shard_and_the_other_redirects() {
        let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
        let a = Shard::new("a".into(), "wss://a/ws".into(), None, registry.clone());
        let b = Shard::new("b".into(), "wss://b/ws".into(), None, registry.clone());
        let now = Instant::now();
        a.refresh(now, snapshot(&[])).await;
        b.refresh(now, snapshot(&[])).await;
        assert_eq!(a.admit("r", false).await, Route::Here);
        assert_eq!(
            b.admit("r", false).await,
            Route::Redirect {
                shard: "a".into(),
                url: "wss://a/ws".into()
            }
        );
        // open here: no registry needed
        assert_eq!(b.admit("r", true).await, Route::Here);
    }

    #[tokio::test]
    async fn a_room_that_never_opened_or_closed_is_given_up() {
        let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
        let a = Shard::new("a".into(), "wss://a/ws".into(), None, registry.clone());
        let b = Shard::new("b".into(), "wss://b/ws".into(), None, registry.clone());
        let t = Instant::now();
        assert_eq!(a.admit("r", false).await, Route::Here);
        // the join failed: the room is not open at the next refreshes
        a.refresh(t, snapshot(&[])).await;
        assert!(matches!(b.admit("r", false).await, Route::Redirect { .. }));
        a.refresh(t + RELEASE_AFTER + REFRESH, snapshot(&[])).await;
        assert_eq!(b.admit("r", false).await, Route::Here);
    }
}
