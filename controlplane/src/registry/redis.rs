//! The registry in Redis, for many shards.
//!
//! Keys (under a prefix, `switchyard:` by default):
//! - `room:<room>` → the holding shard's id, with a millisecond expiry; a
//!   Lua script claims or refreshes many at once, each atomically.
//! - `shard:<id>` → a [`ShardRecord`] as JSON, with an expiry.
//! - `bridge:<id>` → a [`BridgeRecord`] as JSON, with an expiry.
//!
//! One multiplexed connection, opened on first use; a failed call drops it
//! and the next call opens a new one, so a Redis that restarts is used again
//! without anyone's help.

use super::{BridgeRecord, Call, Owner, Registry, RegistryError, ShardRecord, TIMEOUT, within};
use redis::aio::MultiplexedConnection;
use std::time::Duration;
use tokio::sync::Mutex;

/// Claims or refreshes each KEYS[i] for ARGV[1] with a ttl of ARGV[2] ms;
/// answers the holder of each.
const CLAIM: &str = r#"
local owners = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if not holder then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    holder = ARGV[1]
  elseif holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  end
  owners[i] = holder
end
return owners
"#;

/// Deletes KEYS[1] if ARGV[1] holds it.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Records listed at most (a cluster has tens of shards and bridges).
const MAX_LISTED: usize = 4096;

/// A registry in Redis.
pub struct RedisRegistry {
    client: redis::Client,
    prefix: String,
    shown: String,
    connection: Mutex<Option<MultiplexedConnection>>,
    claim: redis::Script,
    release: redis::Script,
}

fn unreachable(e: redis::RedisError) -> RegistryError {
    RegistryError::Unreachable(e.to_string())
}

impl RedisRegistry {
    /// A registry at `url` (`redis://[:password@]host[:port][/db]`), its
    /// keys under `prefix`. Nothing is connected yet.
    pub fn new(url: &str, prefix: &str) -> Result<RedisRegistry, RegistryError> {
        let client = redis::Client::open(url)
            .map_err(|e| RegistryError::Unreachable(format!("bad registry URL: {e}")))?;
        let info = client.get_connection_info();
        Ok(RedisRegistry {
            shown: format!("redis at {}", info.addr()),
            client,
            prefix: prefix.to_string(),
            connection: Mutex::new(None),
            claim: redis::Script::new(CLAIM),
            release: redis::Script::new(RELEASE),
        })
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> Result<MultiplexedConnection, RegistryError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unreachable)?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on a connection; a failure drops it (the next call opens a
    /// new one).
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, RegistryError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, RegistryError>>,
    {
        let result = within(async {
            let c = self.connection().await?;
            f(c).await
        })
        .await;
        if matches!(result, Err(RegistryError::Unreachable(_))) {
            *self.connection.lock().await = None;
        }
        result
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    async fn put<T: serde::Serialize + Sync>(
        &self,
        kind: &str,
        id: &str,
        record: &T,
        ttl: Duration,
    ) -> Result<(), RegistryError> {
        let json =
            serde_json::to_string(record).map_err(|e| RegistryError::BadRecord(e.to_string()))?;
        let key = self.key(kind, id);
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(json)
                .arg("PX")
                .arg(millis(ttl))
                .query_async::<()>(&mut c)
                .await
                .map_err(unreachable)
        })
        .await
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<Vec<T>, RegistryError> {
        let pattern = self.key(kind, "*");
        self.run(|mut c| async move {
            let mut keys: Vec<String> = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(256)
                    .query_async(&mut c)
                    .await
                    .map_err(unreachable)?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 || keys.len() >= MAX_LISTED {
                    break;
                }
            }
            keys.truncate(MAX_LISTED);
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            // a record may expire between SCAN and MGET: then it is nil
            let values: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .map_err(unreachable)?;
            values
                .into_iter()
                .flatten()
                .map(|v| super::parse_record(&v))
                .collect()
        })
        .await
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Registry for RedisRegistry {
    fn claim<'a>(
        &'a self,
        rooms: &'a [String],
        shard: &'a str,
        ttl: Duration,
    ) -> Call<'a, Vec<Owner>> {
        Box::pin(async move {
            if rooms.is_empty() {
                return Ok(Vec::new());
            }
            let holders: Vec<String> = self
                .run(|mut c| async move {
                    let mut invocation = self.claim.prepare_invoke();
                    for room in rooms {
                        invocation.key(self.key("room", room));
                    }
                    invocation.arg(shard).arg(millis(ttl));
                    invocation.invoke_async(&mut c).await.map_err(unreachable)
                })
                .await?;
            if holders.len() != rooms.len() {
                return Err(RegistryError::BadRecord(format!(
                    "{} holders for {} rooms",
                    holders.len(),
                    rooms.len()
                )));
            }
            Ok(holders
                .into_iter()
                .map(|h| {
                    if h == shard {
                        Owner::Us
                    } else {
                        Owner::Shard(h)
                    }
                })
                .collect())
        })
    }

    fn release<'a>(&'a self, room: &'a str, shard: &'a str) -> Call<'a, ()> {
        Box::pin(async move {
            self.run(|mut c| async move {
                self.release
                    .key(self.key("room", room))
                    .arg(shard)
                    .invoke_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
                    .map_err(unreachable)
            })
            .await
        })
    }

    fn put_shard<'a>(&'a self, shard: &'a ShardRecord, ttl: Duration) -> Call<'a, ()> {
        Box::pin(self.put("shard", &shard.id, shard, ttl))
    }

    fn shards(&self) -> Call<'_, Vec<ShardRecord>> {
        Box::pin(self.list("shard"))
    }

    fn put_bridge<'a>(&'a self, bridge: &'a BridgeRecord, ttl: Duration) -> Call<'a, ()> {
        Box::pin(self.put("bridge", &bridge.id, bridge, ttl))
    }

    fn bridges(&self) -> Call<'_, Vec<BridgeRecord>> {
        Box::pin(self.list("bridge"))
    }

    fn id_tag(&self) -> Call<'_, u16> {
        let key = format!("{}id-tags", self.prefix);
        Box::pin(async move {
            self.run(|mut c| async move {
                redis::cmd("INCR")
                    .arg(&key)
                    .query_async::<u64>(&mut c)
                    .await
                    .map(super::tag_of)
                    .map_err(unreachable)
            })
            .await
        })
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract;
    use super::*;

    /// A `redis-server` of this test's own on a free port, stopped on drop.
    pub(crate) struct TestRedis {
        child: std::process::Child,
        pub url: String,
        dir: std::path::PathBuf,
    }

    impl TestRedis {
        pub fn start() -> Option<TestRedis> {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let dir =
                std::env::temp_dir().join(format!("swyd-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let child = std::process::Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .arg("--dir")
                .arg(&dir)
                .stdout(std::process::Stdio::null())
                .spawn()
                .ok()?;
            let url = format!("redis://127.0.0.1:{port}/");
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(TestRedis { child, url, dir });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        }
    }

    impl Drop for TestRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn redis() -> TestRedis {
        // scripts/test.sh installs redis-server; a machine without it
        // fails here rather than skipping silently
        TestRedis::start().expect("redis-server (Debian package redis-server) must be installed")
    }

    #[tokio::test]
    async fn keeps_the_registry_contract_against_a_real_redis() {
        let server = redis();
        // two shards: two clients of their own
        let a = RedisRegistry::new(&server.url, "t:").unwrap();
        let b = RedisRegistry::new(&server.url, "t:").unwrap();
        contract::claim_races_have_one_winner(&a, &b).await;
        contract::claims_expire_unless_refreshed(&a).await;
        contract::records_expire(&b).await;
        contract::id_tags_differ(&a, &b).await;
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_in_time_and_is_used_again_once_back() {
        let server = redis();
        let port = server
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        let r = RedisRegistry::new(&server.url, "u:").unwrap();
        let room = vec!["r".to_string()];
        assert_eq!(
            r.claim(&room, "a", Duration::from_secs(5)).await.unwrap(),
            vec![Owner::Us]
        );
        drop(server);
        let t = std::time::Instant::now();
        let e = r
            .claim(&room, "a", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, RegistryError::Unreachable(_)), "{e}");
        assert!(
            t.elapsed() < TIMEOUT + Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        // a new server on the same port: the next call reconnects by itself
        let _again = Guard(
            std::process::Command::new("redis-server")
                .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut ok = false;
        for _ in 0..50 {
            if r.claim(&room, "a", Duration::from_secs(5)).await == Ok(vec![Owner::Us]) {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "not reconnected within 5 s");
    }

    /// A child process killed on drop.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_password_is_not_shown() {
        let r = RedisRegistry::new("redis://:hunter2@127.0.0.1:6390/0", "p:").unwrap();
        assert!(!r.describe().contains("hunter2"), "{}", r.describe());
    }
}
