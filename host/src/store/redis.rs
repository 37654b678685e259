//! A shared store: the `default` store in Redis, laid out as Spin's Redis
//! key-value provider lays it out (each key as it is, each value as its
//! bytes), so that Spin nodes and `hooksign serve` nodes can share one
//! Redis. Compare-and-swap is a Lua script, atomic across every client.
//!
//! Errors never quote the URL: it may hold a password.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::{Client, Connection, Value};

use super::{KeyValueStore, Pairs, StoreError};

/// How long to wait for Redis before a call fails (503 `store_unavailable`).
const TIMEOUT: Duration = Duration::from_secs(1);

/// Writes `ARGV[3]` if the key holds `ARGV[2]` (`ARGV[1] = "1"`) or nothing
/// (`ARGV[1] = "0"`); otherwise answers what it holds.
const SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
local expected = ARGV[1] == '1' and ARGV[2] or false
if current == expected then
  redis.call('SET', KEYS[1], ARGV[3])
  return {1}
end
if current then return {0, current} end
return {0}
";

/// How many connections a node keeps: requests on different threads wait
/// on Redis side by side, one call per connection at a time (one shared
/// connection made every call wait for the one before: BENCHMARKS.md).
const CONNECTIONS: usize = 8;

/// A few connections, each made on first use and made again after a
/// failure.
pub struct RedisStore {
    client: Client,
    connections: Vec<Mutex<Option<Connection>>>,
    /// Where the next call starts looking for a free connection.
    next: AtomicUsize,
    swap: redis::Script,
}

/// A failure in words that never hold the URL.
fn failed(error: &redis::RedisError) -> StoreError {
    format!("the Redis store failed ({})", error.category())
}

impl RedisStore {
    /// A store on `redis://[:PASSWORD@]HOST:PORT[/DB]` or `rediss://…`
    /// (whose certificate chains to `ca`, PEM, if given); connects on
    /// first use, so a Redis that is down now is not an error.
    pub fn open(url: &str, ca: Option<Vec<u8>>) -> Result<RedisStore, StoreError> {
        // When a build enables two providers (ring and aws-lc-rs, e.g. a
        // workspace build with the benches' peers), rustls picks neither
        // and a rediss:// connection panics. An error here means one is
        // installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let not_a_url = |_| "the --store URL is not a redis:// or rediss:// URL".to_string();
        let client = match ca {
            None => Client::open(url).map_err(not_a_url)?,
            Some(root_cert) => {
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                Client::build_with_tls(url, certificates).map_err(|error| {
                    format!(
                        "--store-ca needs a rediss:// URL and PEM certificates ({})",
                        error.category()
                    )
                })?
            }
        };
        Ok(RedisStore {
            client,
            connections: (0..CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            swap: redis::Script::new(SWAP),
        })
    }

    /// A free connection's slot, or, when all are busy, the next one's
    /// once it is free.
    fn slot(&self) -> Result<MutexGuard<'_, Option<Connection>>, StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for n in 0..CONNECTIONS {
            if let Ok(slot) = self.connections[(start + n) % CONNECTIONS].try_lock() {
                return Ok(slot);
            }
        }
        self.connections[start % CONNECTIONS]
            .lock()
            .map_err(|_| "the store's lock is poisoned".to_string())
    }

    /// Runs `call` on a connection, connecting first if there is none; a
    /// failed call drops the connection, so the next one reconnects.
    fn with<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.slot()?;
        if slot.is_none() {
            let connection = self
                .client
                .get_connection_with_timeout(TIMEOUT)
                .map_err(|error| failed(&error))?;
            connection
                .set_read_timeout(Some(TIMEOUT))
                .and_then(|()| connection.set_write_timeout(Some(TIMEOUT)))
                .map_err(|error| failed(&error))?;
            *slot = Some(connection);
        }
        let Some(connection) = slot.as_mut() else {
            return Err("no Redis connection".into());
        };
        call(connection).map_err(|error| {
            *slot = None;
            failed(&error)
        })
    }
}

impl KeyValueStore for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|connection| redis::cmd("GET").arg(key).query(connection))
    }

    fn get_many(&self, keys: &[String]) -> Result<Pairs, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> =
            self.with(|connection| redis::cmd("MGET").arg(keys).query(connection))?;
        if values.len() != keys.len() {
            return Err("the Redis store answered a batch read oddly".into());
        }
        Ok(keys.iter().cloned().zip(values).collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.with(|connection| redis::cmd("SET").arg(key).arg(value).query(connection))
    }

    /// `MSET`, atomic, as Spin's Redis provider writes a batch.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.with(|connection| {
            let mut command = redis::cmd("MSET");
            for (key, value) in pairs {
                command.arg(key).arg(value);
            }
            command.query(connection)
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.with(|connection| redis::cmd("DEL").arg(key).query(connection))
    }

    /// One `DEL`, as Spin's Redis provider removes a batch.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with(|connection| redis::cmd("DEL").arg(keys).query(connection))
    }

    /// Every key: SCAN, not KEYS, so Redis is never blocked.
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let mut keys: Vec<String> = self.with(|connection| {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(1000)
                    .query(connection)?;
                keys.extend(batch);
                if next == 0 {
                    return Ok(keys);
                }
                cursor = next;
            }
        })?;
        keys.sort();
        Ok(keys)
    }

    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Result<(), Option<Vec<u8>>>, StoreError> {
        let answer: Vec<Value> = self.with(|connection| {
            self.swap
                .key(key)
                .arg(if expected.is_some() { "1" } else { "0" })
                .arg(expected.unwrap_or_default())
                .arg(value)
                .invoke(connection)
        })?;
        match answer.as_slice() {
            [Value::Int(1)] => Ok(Ok(())),
            [Value::Int(0)] => Ok(Err(None)),
            [Value::Int(0), Value::BulkString(current)] => Ok(Err(Some(current.clone()))),
            _ => Err("the Redis store answered a swap oddly".into()),
        }
    }

    /// Spin's counter format in Redis: INCRBY on a decimal string.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.with(|connection| redis::cmd("INCRBY").arg(key).arg(delta).query(connection))
    }
}
