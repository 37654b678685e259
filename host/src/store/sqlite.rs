//! The embedded store: one SQLite file laid out as Spin's SQLite key-value
//! provider lays it out (table `spin_key_value`, the store's label in
//! `store`), so that a Spin and `hooksign serve` can read each other's file.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{Answer, KeyValueStore, Pairs, StoreError, answered};

/// The store label the component is granted (`key_value_stores = ["default"]`).
const LABEL: &str = "default";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
);";

/// How long a store call spins for the connection before it sleeps on it.
/// A call holds it for tens of microseconds; a worker thread that sleeps
/// instead leaves its core idle and costs two context switches and a
/// wake-up (BENCHMARKS.md, fourteenth round).
const SPIN: Duration = Duration::from_micros(50);

/// How often the checkpointer copies the write-ahead log into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// A log longer than this (pages of 4 KiB) after a checkpoint is
/// checkpointed again with no write under way, so that the next write
/// starts the log over: under steady writes a checkpoint beside them never
/// catches up, and the log would grow without end.
const RESTART_AFTER_PAGES: i64 = 4_000;

/// The `default` store in a SQLite file; one connection, shared, and a
/// checkpointer beside it.
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    /// Whether a store call spins before it sleeps: not on one core, where
    /// the holder cannot run while it spins.
    spin: bool,
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens or creates `key_value.db` in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let path = dir.join("key_value.db");
        create_private(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        let connection =
            Connection::open(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        // secure_delete: a deleted value's bytes are overwritten, so that an
        // organisation's deletion leaves nothing of it in the file (once
        // the WAL's earlier page images are checkpointed away).
        connection
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA secure_delete = ON; {SCHEMA}"
            ))
            .map_err(|error| format!("{}: {error}", path.display()))?;
        // Only another process can hold the file's lock; waiting for it
        // blocks every request (one connection), so give up after a second
        // and answer 503 store_unavailable.
        connection
            .busy_timeout(Duration::from_secs(1))
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let checkpoints =
            Connection::open(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        // Checkpoints, with their fsyncs, go to the checkpointer, not to
        // the request whose commit filled the log while holding the
        // connection.
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let connection = Arc::new(Mutex::new(connection));
        Ok(SqliteStore {
            _checkpointer: Checkpointer::start(checkpoints, Arc::clone(&connection)),
            connection,
            spin: std::thread::available_parallelism().is_ok_and(|cores| cores.get() > 1),
        })
    }

    fn with<T>(
        &self,
        query: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut connection = self.lock()?;
        query(&mut connection).map_err(|error| error.to_string())
    }

    /// The connection, spun for up to [`SPIN`] before sleeping on it.
    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let poisoned = |_| "the store's lock is poisoned".to_string();
        if self.spin {
            let started = Instant::now();
            while started.elapsed() < SPIN {
                match self.connection.try_lock() {
                    Ok(connection) => return Ok(connection),
                    Err(TryLockError::Poisoned(error)) => return Err(poisoned(error)),
                    Err(TryLockError::WouldBlock) => std::hint::spin_loop(),
                }
            }
        }
        self.connection.lock().map_err(poisoned)
    }
}

/// A thread that checkpoints the store's log on a connection of its own
/// every [`CHECKPOINT_EVERY`], until the store is dropped.
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(checkpoints: Connection, writer: Arc<Mutex<Connection>>) -> Checkpointer {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                // A failed checkpoint leaves the log as it was: the next
                // one copies it.
                let Ok(log_pages) = checkpoint(&checkpoints) else {
                    continue;
                };
                if log_pages > RESTART_AFTER_PAGES
                    && let Ok(_writes_wait) = writer.lock()
                {
                    let _ = checkpoint(&checkpoints);
                }
            }
        });
        Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies what it can of the log into the file, waiting for no one; the
/// log's length in pages.
fn checkpoint(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

impl KeyValueStore for SqliteStore {
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Vec<u8>>> {
        answered(self.with(|connection| read(connection, key)))
    }

    /// One read transaction, so the values are of one moment.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Pairs> {
        answered(self.with(|connection| {
            let transaction = connection.transaction()?;
            let values = keys
                .iter()
                .map(|key| Ok((key.clone(), read(&transaction, key)?)))
                .collect::<rusqlite::Result<_>>()?;
            transaction.commit()?;
            Ok(values)
        }))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Answer<'a, ()> {
        answered(self.with(|connection| write(connection, key, value)))
    }

    /// One transaction: one commit for the batch.
    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)]) -> Answer<'a, ()> {
        answered(self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (key, value) in pairs {
                write(&transaction, key, value)?;
            }
            transaction.commit()
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> Answer<'a, ()> {
        answered(self.with(|connection| remove(connection, key)))
    }

    /// One transaction: one commit for the batch.
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, ()> {
        if keys.is_empty() {
            return answered(Ok(()));
        }
        answered(self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for key in keys {
                remove(&transaction, key)?;
            }
            transaction.commit()
        }))
    }

    fn keys(&self) -> Answer<'_, Vec<String>> {
        answered(self.with(|connection| {
            let mut statement = connection
                .prepare("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            let keys = statement.query_map(params![LABEL], |row| row.get(0))?;
            keys.collect()
        }))
    }

    /// One immediate transaction, so other processes on the file see it whole.
    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
    ) -> Answer<'a, Result<(), Option<Vec<u8>>>> {
        answered(self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = read(&transaction, key)?;
            if current.as_deref() != expected {
                return Ok(Err(current));
            }
            write(&transaction, key, value)?;
            transaction.commit()?;
            Ok(Ok(()))
        }))
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> Answer<'a, i64> {
        answered(
            self.with(|connection| {
                let transaction =
                    connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let current = match read(&transaction, key)? {
                    None => 0,
                    Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                        Ok(bytes) => i64::from_le_bytes(bytes),
                        Err(_) => return Ok(Err("the value is not a counter".to_string())),
                    },
                };
                let Some(next) = current.checked_add(delta) else {
                    return Ok(Err("the counter would overflow".to_string()));
                };
                write(&transaction, key, &next.to_le_bytes())?;
                transaction.commit()?;
                Ok(Ok(next))
            })
            .and_then(|counted| counted),
        )
    }
}

/// Creates the file readable by its owner only (SQLite gives its journal
/// files the same mode); an existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

// Statements are prepared once per connection (rusqlite's statement
// cache), not parsed again for every call.

fn read(connection: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    connection
        .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row(params![LABEL, key], |row| row.get(0))
        .optional()
}

fn remove(connection: &Connection, key: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .execute(params![LABEL, key])
        .map(drop)
}

fn write(connection: &Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![LABEL, key, value])
        .map(drop)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::at_once;

    #[test]
    fn the_log_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Two threads, as requests on two cores: each write is a commit of
        // at least one page of 4 KiB, over 300 MiB of log if it never
        // started over (a checkpoint beside steady writes never catches up).
        const WRITES: usize = 40_000;
        std::thread::scope(|scope| {
            for writer in 0..2 {
                let store = &store;
                scope.spawn(move || {
                    for n in 0..WRITES {
                        let value = format!("{writer}/{n}");
                        let key = format!("key/{writer}/{}", n % 64);
                        at_once(store.set(&key, value.as_bytes())).unwrap();
                        // And a read between, as a request makes.
                        at_once(store.get_many(&[key])).unwrap();
                    }
                });
            }
        });
        let log = std::fs::metadata(dir.path().join("key_value.db-wal"))
            .unwrap()
            .len();
        let unchecked = 2 * WRITES as u64 * 4096;
        assert!(
            log < unchecked / 4,
            "the log is {log} bytes after {} writes",
            2 * WRITES
        );
    }
}
