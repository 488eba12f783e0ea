//! The registry of a single shard: in this process's memory.

use super::{BridgeRecord, Call, Owner, Registry, ShardRecord};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records with their expiry; an expired one counts as absent and is
/// dropped when next written near.
#[derive(Default)]
struct Tables {
    rooms: HashMap<String, (String, Instant)>,
    shards: HashMap<String, (ShardRecord, Instant)>,
    bridges: HashMap<String, (BridgeRecord, Instant)>,
    tags: u64,
}

/// A registry in memory: the default, for one shard.
#[derive(Default)]
pub struct MemoryRegistry {
    tables: Mutex<Tables>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> MemoryRegistry {
        MemoryRegistry::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Tables, Instant) -> T) -> T {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut t, Instant::now())
    }
}

fn live<K, V>(map: &mut HashMap<K, (V, Instant)>, now: Instant) {
    map.retain(|_, (_, until)| *until > now);
}

/// Writes a record to expire `ttl` after `now`.
fn put<V: Clone>(
    map: &mut HashMap<String, (V, Instant)>,
    id: &str,
    v: &V,
    now: Instant,
    ttl: Duration,
) {
    live(map, now);
    map.insert(id.to_string(), (v.clone(), now + ttl));
}

/// The records that have not expired.
fn listed<V: Clone>(map: &mut HashMap<String, (V, Instant)>, now: Instant) -> Vec<V> {
    live(map, now);
    map.values().map(|(v, _)| v.clone()).collect()
}

impl Registry for MemoryRegistry {
    fn claim<'a>(
        &'a self,
        rooms: &'a [String],
        shard: &'a str,
        ttl: Duration,
    ) -> Call<'a, Vec<Owner>> {
        let owners = self.with(|t, now| {
            live(&mut t.rooms, now);
            rooms
                .iter()
                .map(|room| match t.rooms.get_mut(room) {
                    Some((holder, _)) if holder != shard => Owner::Shard(holder.clone()),
                    Some((_, until)) => {
                        *until = now + ttl;
                        Owner::Us
                    }
                    None => {
                        t.rooms.insert(room.clone(), (shard.to_string(), now + ttl));
                        Owner::Us
                    }
                })
                .collect()
        });
        Box::pin(async move { Ok(owners) })
    }

    fn release<'a>(&'a self, room: &'a str, shard: &'a str) -> Call<'a, ()> {
        self.with(|t, _| {
            if t.rooms.get(room).is_some_and(|(holder, _)| holder == shard) {
                t.rooms.remove(room);
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn put_shard<'a>(&'a self, shard: &'a ShardRecord, ttl: Duration) -> Call<'a, ()> {
        self.with(|t, now| put(&mut t.shards, &shard.id, shard, now, ttl));
        Box::pin(async { Ok(()) })
    }

    fn shards(&self) -> Call<'_, Vec<ShardRecord>> {
        let list = self.with(|t, now| listed(&mut t.shards, now));
        Box::pin(async move { Ok(list) })
    }

    fn put_bridge<'a>(&'a self, bridge: &'a BridgeRecord, ttl: Duration) -> Call<'a, ()> {
        self.with(|t, now| put(&mut t.bridges, &bridge.id, bridge, now, ttl));
        Box::pin(async { Ok(()) })
    }

    fn bridges(&self) -> Call<'_, Vec<BridgeRecord>> {
        let list = self.with(|t, now| listed(&mut t.bridges, now));
        Box::pin(async move { Ok(list) })
    }

    fn id_tag(&self) -> Call<'_, u16> {
        let n = self.with(|t, _| {
            t.tags += 1;
            t.tags
        });
        Box::pin(async move { Ok(super::tag_of(n)) })
    }

    fn describe(&self) -> String {
        "memory (one shard)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract;
    use super::*;

    #[tokio::test]
    async fn keeps_the_registry_contract() {
        let r = MemoryRegistry::new();
        contract::claim_races_have_one_winner(&r, &r).await;
        contract::claims_expire_unless_refreshed(&r).await;
        contract::records_expire(&r).await;
        contract::id_tags_differ(&r, &r).await;
    }
}
