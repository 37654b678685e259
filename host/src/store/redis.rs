//! A shared store: the `default` store in Redis, laid out as Spin's Redis
//! key-value provider lays it out (each key as it is, each value as its
//! bytes), so that Spin nodes and `hooksign serve` nodes can share one
//! Redis. Compare-and-swap is a Lua script, atomic across every client.
//!
//! Errors never quote the URL: it may hold a password.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};

use super::{Answer, KeyValueStore, Pairs, StoreError};

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

/// One connection, multiplexed: every request's calls are written to it
/// as they come and answered in order, and a request's instance waits for
/// its answer without holding a worker thread (a connection per waiting
/// call made the node's threads wait on Redis: BENCHMARKS.md). Made on
/// first use and made again after a failure.
pub struct RedisStore {
    client: Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    swap: redis::Script,
}

/// Whether a failed call leaves the connection unfit for the next: closed,
/// reset or silent past the timeout; or a replica's now (`READONLY`
/// after a failover), where connecting again by name may reach the new
/// primary. A refusal Redis answers (out of memory, a wrong type) comes
/// over a working connection, shared by every call in flight, and keeps it.
fn broken(error: &redis::RedisError) -> bool {
    error.is_unrecoverable_error()
        || error.is_timeout()
        || error.kind() == redis::ErrorKind::ReadOnly
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
            connection: Mutex::new(None),
            swap: redis::Script::new(SWAP),
        })
    }

    /// The connection, made if there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(connection) = self.lock()?.as_ref() {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| failed(&error))?;
        // Calls that found no connection at once each made one; the first
        // kept serves them all from here on.
        Ok(self.lock()?.get_or_insert(connection).clone())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Option<MultiplexedConnection>>, StoreError> {
        self.connection
            .lock()
            .map_err(|_| "the store's lock is poisoned".to_string())
    }

    /// Runs `call` on the connection; a call that finds it broken drops
    /// it, so the next call connects again.
    async fn with<T, Call>(
        &self,
        call: impl FnOnce(MultiplexedConnection) -> Call,
    ) -> Result<T, StoreError>
    where
        Call: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection().await?;
        call(connection).await.map_err(|error| {
            if broken(&error)
                && let Ok(mut slot) = self.lock()
            {
                *slot = None;
            }
            failed(&error)
        })
    }

    /// Sends one command and reads its answer as `T`.
    async fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        self.with(move |mut connection| async move { command.query_async(&mut connection).await })
            .await
    }
}

impl KeyValueStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Vec<u8>>> {
        let mut command = redis::cmd("GET");
        command.arg(key);
        Box::pin(self.query(command))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Pairs> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut command = redis::cmd("MGET");
            command.arg(keys);
            let values: Vec<Option<Vec<u8>>> = self.query(command).await?;
            if values.len() != keys.len() {
                return Err("the Redis store answered a batch read oddly".into());
            }
            Ok(keys.iter().cloned().zip(values).collect())
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Answer<'a, ()> {
        let mut command = redis::cmd("SET");
        command.arg(key).arg(value);
        Box::pin(self.query(command))
    }

    /// `MSET`, atomic, as Spin's Redis provider writes a batch.
    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)]) -> Answer<'a, ()> {
        Box::pin(async move {
            if pairs.is_empty() {
                return Ok(());
            }
            let mut command = redis::cmd("MSET");
            for (key, value) in pairs {
                command.arg(key).arg(value);
            }
            self.query(command).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> Answer<'a, ()> {
        let mut command = redis::cmd("DEL");
        command.arg(key);
        Box::pin(self.query(command))
    }

    /// One `DEL`, as Spin's Redis provider removes a batch.
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, ()> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            let mut command = redis::cmd("DEL");
            command.arg(keys);
            self.query(command).await
        })
    }

    /// Every key: SCAN, not KEYS, so Redis is never blocked.
    fn keys(&self) -> Answer<'_, Vec<String>> {
        Box::pin(async move {
            let mut keys: Vec<String> = self
                .with(move |mut connection| async move {
                    let mut keys = Vec::new();
                    let mut cursor: u64 = 0;
                    loop {
                        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut connection)
                            .await?;
                        keys.extend(batch);
                        if next == 0 {
                            return Ok(keys);
                        }
                        cursor = next;
                    }
                })
                .await?;
            keys.sort();
            Ok(keys)
        })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
    ) -> Answer<'a, Result<(), Option<Vec<u8>>>> {
        Box::pin(async move {
            let answer: Vec<Value> = self
                .with(move |mut connection| async move {
                    self.swap
                        .key(key)
                        .arg(if expected.is_some() { "1" } else { "0" })
                        .arg(expected.unwrap_or_default())
                        .arg(value)
                        .invoke_async(&mut connection)
                        .await
                })
                .await?;
            match answer.as_slice() {
                [Value::Int(1)] => Ok(Ok(())),
                [Value::Int(0)] => Ok(Err(None)),
                [Value::Int(0), Value::BulkString(current)] => Ok(Err(Some(current.clone()))),
                _ => Err("the Redis store answered a swap oddly".into()),
            }
        })
    }

    /// Spin's counter format in Redis: INCRBY on a decimal string.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> Answer<'a, i64> {
        let mut command = redis::cmd("INCRBY");
        command.arg(key).arg(delta);
        Box::pin(self.query(command))
    }
}
