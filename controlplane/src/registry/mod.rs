//! The registry the shards of a cluster share: who owns which room, which
//! shards are alive and where clients reach them, which bridges run.
//!
//! Every record expires unless its writer refreshes it: a dead shard's room
//! claims and a dead bridge's record disappear by themselves, with no
//! sweeper. Two implementations: [`memory::MemoryRegistry`] (one shard, the
//! default, no other process) and [`redis::RedisRegistry`] (many shards).
//! A registry that cannot be reached answers [`RegistryError::Unreachable`]
//! within [`TIMEOUT`]; the caller decides what still works without it.

pub mod memory;
pub mod redis;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Longest a registry call may take before it counts as unreachable.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// The highest id tag ([`Registry::id_tag`]): ids are `tag << 40 | n`
/// and stay below 2^53, exact in JavaScript.
pub const MAX_ID_TAG: u16 = 8191;

/// The tag the `n`-th call of a shared counter (from 1) gives.
pub fn tag_of(n: u64) -> u16 {
    ((n.saturating_sub(1)) % u64::from(MAX_ID_TAG) + 1) as u16
}

/// A registry call's future.
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send + 'a>>;

/// Why a registry call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No answer (connection refused, timed out, closed).
    #[error("the registry is unreachable: {0}")]
    Unreachable(String),
    /// An answer that is not what this version writes.
    #[error("the registry holds a record this version cannot read: {0}")]
    BadRecord(String),
}

/// A shard as the others and the proxies need to know it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Its id (`--shard-id`).
    pub id: String,
    /// The signalling URL clients are sent to by `redirect` (`--shard-url`).
    pub url: String,
    /// The cluster URL its bridges link to (`--cluster-url`), if it takes
    /// bridges: a bridge started with `--registry` links to every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Rooms it holds.
    pub rooms: u64,
    /// Participants in them.
    pub participants: u64,
    /// Its version.
    pub version: String,
}

/// A bridge, as the shard that hears its heartbeats writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeRecord {
    /// Its id (`--bridge-id`, or `local` qualified by the shard).
    pub id: String,
    /// The shard it is linked to.
    pub shard: String,
    /// Its region, if it announced one.
    pub region: Option<String>,
    /// The stress it is placed by (1 = full).
    pub stress: f64,
    /// Endpoints on it.
    pub participants: u64,
    /// Whether it takes new rooms (healthy and not draining).
    pub available: bool,
}

/// Who holds a room after a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The claiming shard: the claim was taken or refreshed.
    Us,
    /// Another shard, whose claim has not expired.
    Shard(String),
}

/// What the shards share. Every method answers within [`TIMEOUT`].
pub trait Registry: Send + Sync {
    /// Claims each room for `shard` for `ttl` — taken if free, refreshed if
    /// `shard` holds it already, left alone if another shard does —
    /// atomically per room; answers who holds each, in order.
    fn claim<'a>(
        &'a self,
        rooms: &'a [String],
        shard: &'a str,
        ttl: Duration,
    ) -> Call<'a, Vec<Owner>>;
    /// Gives up `room` if `shard` holds it.
    fn release<'a>(&'a self, room: &'a str, shard: &'a str) -> Call<'a, ()>;
    /// Writes a shard's record, to expire after `ttl`.
    fn put_shard<'a>(&'a self, shard: &'a ShardRecord, ttl: Duration) -> Call<'a, ()>;
    /// The live shards.
    fn shards(&self) -> Call<'_, Vec<ShardRecord>>;
    /// Writes a bridge's record, to expire after `ttl`.
    fn put_bridge<'a>(&'a self, bridge: &'a BridgeRecord, ttl: Duration) -> Call<'a, ()>;
    /// The live bridges.
    fn bridges(&self) -> Call<'_, Vec<BridgeRecord>>;
    /// A tag for a starting shard's participant and source ids, 1 to
    /// [`MAX_ID_TAG`]: the next of a counter they share, so shards started
    /// fewer than [`MAX_ID_TAG`] apart never get the same one and their ids
    /// never meet on a bridge they share.
    fn id_tag(&self) -> Call<'_, u16>;
    /// What it is, for logs and `/health` (no password).
    fn describe(&self) -> String;
}

/// A record as the registry stores it (JSON), checked.
pub fn parse_record<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, RegistryError> {
    serde_json::from_str(text).map_err(|e| RegistryError::BadRecord(e.to_string()))
}

/// Runs `f` with the [`TIMEOUT`]: no answer in time is
/// [`RegistryError::Unreachable`].
pub async fn within<T>(
    f: impl Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(RegistryError::Unreachable("no answer within 1 s".into())))
}

/// The contract both implementations keep, run against each in its tests.
#[cfg(test)]
pub(crate) mod contract {
    use super::*;

    fn rooms(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Two shards claim the same rooms at the same time: exactly one holds
    /// each, and both agree on which.
    pub async fn claim_races_have_one_winner(a: &dyn Registry, b: &dyn Registry) {
        let ttl = Duration::from_secs(10);
        for round in 0..20 {
            let room = rooms(&[&format!("race-{round}-{}", std::process::id())]);
            let (x, y) = tokio::join!(
                a.claim(&room, "shard-a", ttl),
                b.claim(&room, "shard-b", ttl)
            );
            let (x, y) = (x.unwrap(), y.unwrap());
            match (&x[0], &y[0]) {
                (Owner::Us, Owner::Shard(s)) => assert_eq!(s, "shard-a"),
                (Owner::Shard(s), Owner::Us) => assert_eq!(s, "shard-b"),
                other => panic!("round {round}: {other:?}"),
            }
            // claiming again refreshes for the holder and tells the other
            let again = a.claim(&room, "shard-a", ttl).await.unwrap();
            let again_b = b.claim(&room, "shard-b", ttl).await.unwrap();
            assert!(
                (again[0] == Owner::Us) != (again_b[0] == Owner::Us),
                "{again:?} {again_b:?}"
            );
        }
    }

    /// A claim lives while it is refreshed and expires when it is not; a
    /// release frees it at once, but only by its holder.
    pub async fn claims_expire_unless_refreshed(r: &dyn Registry) {
        let tag = std::process::id();
        let room = rooms(&[&format!("expiry-{tag}")]);
        let ttl = Duration::from_millis(600);
        assert_eq!(r.claim(&room, "a", ttl).await.unwrap(), vec![Owner::Us]);
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // refreshed by its holder: still held after more than the ttl
            assert_eq!(r.claim(&room, "a", ttl).await.unwrap(), vec![Owner::Us]);
        }
        assert_eq!(
            r.claim(&room, "b", ttl).await.unwrap(),
            vec![Owner::Shard("a".into())]
        );
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(r.claim(&room, "b", ttl).await.unwrap(), vec![Owner::Us]);
        r.release(&room[0], "a").await.unwrap();
        assert_eq!(
            r.claim(&room, "a", ttl).await.unwrap(),
            vec![Owner::Shard("b".into())],
            "only the holder releases"
        );
        r.release(&room[0], "b").await.unwrap();
        assert_eq!(r.claim(&room, "a", ttl).await.unwrap(), vec![Owner::Us]);
        // many rooms in one call, in order
        let many = rooms(&[&format!("m1-{tag}"), &room[0], &format!("m2-{tag}")]);
        assert_eq!(
            r.claim(&many, "b", ttl).await.unwrap(),
            vec![Owner::Us, Owner::Shard("a".into()), Owner::Us]
        );
    }

    /// Two shards asking for id tags at once get different ones, each in
    /// range.
    pub async fn id_tags_differ(a: &dyn Registry, b: &dyn Registry) {
        for _ in 0..10 {
            let (x, y) = tokio::join!(a.id_tag(), b.id_tag());
            let (x, y) = (x.unwrap(), y.unwrap());
            assert_ne!(x, y);
            assert!((1..=MAX_ID_TAG).contains(&x) && (1..=MAX_ID_TAG).contains(&y));
        }
    }

    /// Shard and bridge records are listed while refreshed and gone once
    /// their ttl passed.
    pub async fn records_expire(r: &dyn Registry) {
        let tag = std::process::id();
        let shard = ShardRecord {
            id: format!("s-{tag}"),
            url: "wss://s.example/ws".into(),
            cluster: Some("ws://10.0.0.1:8080/cluster".into()),
            rooms: 2,
            participants: 5,
            version: "1".into(),
        };
        let bridge = BridgeRecord {
            id: format!("b-{tag}"),
            shard: shard.id.clone(),
            region: Some("eu".into()),
            stress: 0.25,
            participants: 5,
            available: true,
        };
        let short = Duration::from_millis(500);
        r.put_shard(&shard, short).await.unwrap();
        r.put_bridge(&bridge, short).await.unwrap();
        assert!(r.shards().await.unwrap().contains(&shard));
        assert!(r.bridges().await.unwrap().contains(&bridge));
        // a refresh replaces the record
        let busier = BridgeRecord {
            stress: 0.5,
            ..bridge.clone()
        };
        r.put_bridge(&busier, short).await.unwrap();
        let listed = r.bridges().await.unwrap();
        assert!(listed.contains(&busier) && !listed.contains(&bridge));
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(!r.shards().await.unwrap().iter().any(|s| s.id == shard.id));
        assert!(!r.bridges().await.unwrap().iter().any(|b| b.id == bridge.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_wrap_within_range() {
        assert_eq!(tag_of(0), 1);
        assert_eq!(tag_of(1), 1);
        assert_eq!(tag_of(2), 2);
        assert_eq!(tag_of(u64::from(MAX_ID_TAG)), MAX_ID_TAG);
        assert_eq!(tag_of(u64::from(MAX_ID_TAG) + 1), 1);
        assert_eq!(tag_of(u64::MAX), tag_of(u64::MAX % u64::from(MAX_ID_TAG)));
        // the largest id stays exact in JavaScript
        let largest = (u64::from(MAX_ID_TAG) << 40) + ((1 << 40) - 1);
        assert!(largest < 1 << 53, "{largest}");
    }
}
