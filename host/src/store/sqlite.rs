//! The embedded store: one SQLite file laid out as Spin's SQLite key-value
//! provider lays it out (table `spin_key_value`, the store's label in
//! `store`), so that a Spin and `hooksign serve` can read each other's file.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};
use tokio::sync::{Notify, oneshot};

use super::{Answer, KeyValueStore, Pairs, StoreError, answered};

/// The store label the component is granted (`key_value_stores = ["default"]`).
const LABEL: &str = "default";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
);";

/// How often the checkpointer copies the write-ahead log into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// A log longer than this (pages of 4 KiB) after a checkpoint is
/// checkpointed again with no write under way, so that the next write
/// starts the log over: under steady writes a checkpoint beside them never
/// catches up, and the log would grow without end.
const RESTART_AFTER_PAGES: i64 = 4_000;

/// Before that checkpoint, up to this many more without holding anything
/// back, until one finds at most [`FEW_PAGES`] written during the one
/// before (BENCHMARKS.md, nineteenth round: the one that holds the groups
/// back then took a median of 1.7 to 4.3 ms, not 6.2 to 7.7).
const CATCH_UP_TRIES: usize = 4;
const FEW_PAGES: i64 = 64;

/// The `default` store in a SQLite file: one connection, on which a
/// driver task runs the calls queued since its last turn as one
/// transaction (a group) and answers them once it is committed; a
/// checkpointer beside it.
///
/// A call waits for its group without holding its worker thread, as a
/// call to Redis waits for its answer, so requests take turns at every
/// store call; and a group commits once for the calls of every request
/// queued in it (BENCHMARKS.md, nineteenth round).
pub struct SqliteStore {
    shared: Arc<Shared>,
    _checkpointer: Checkpointer,
}

/// What the store's callers, its driver and its checkpointer share.
struct Shared {
    connection: Mutex<Connection>,
    queued: Mutex<Vec<Job>>,
    /// A job was queued while none were.
    ready: Notify,
    closed: AtomicBool,
}

/// A queued call.
struct Job {
    writes: bool,
    run: Run,
}

/// What a call does in its group's transaction (`Err`: the group could
/// not begin), and how it is then answered.
type Run = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Reply + Send>;

/// A call's answer, sent once its group's commit (or its failure) is known.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

impl SqliteStore {
    /// Opens or creates `key_value.db` in `dir`; its driver is a task on
    /// the current tokio runtime.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the SQLite store runs on a tokio runtime".to_string())?;
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
        // holds up every call (one connection), so give up after a second
        // and answer 503 store_unavailable.
        connection
            .busy_timeout(Duration::from_secs(1))
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let checkpoints =
            Connection::open(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        // Checkpoints, with their fsyncs, go to the checkpointer, not to
        // the group whose commit filled the log.
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let shared = Arc::new(Shared {
            connection: Mutex::new(connection),
            queued: Mutex::new(Vec::new()),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        runtime.spawn(drive(shared.clone()));
        Ok(SqliteStore {
            _checkpointer: Checkpointer::start(checkpoints, shared.clone()),
            shared,
        })
    }

    /// Queues `call` for the driver's next group; the answer comes once
    /// that group is committed. `writes`: whether it may write.
    fn call<T: Send + 'static>(
        &self,
        writes: bool,
        call: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Answer<'static, T> {
        let (sender, answer) = oneshot::channel();
        let run = Box::new(
            move |connection: Result<&Connection, &StoreError>| -> Reply {
                let result = match connection {
                    Ok(connection) => in_savepoint(connection, call),
                    Err(error) => Err(error.clone()),
                };
                Box::new(move |committed: Result<(), StoreError>| {
                    let _ = sender.send(committed.and(result));
                })
            },
        );
        let first = match self.shared.queued.lock() {
            Ok(mut queued) => {
                queued.push(Job { writes, run });
                queued.len() == 1
            }
            Err(_) => return answered(Err("the store's queue is poisoned".to_string())),
        };
        if first {
            self.shared.ready.notify_one();
        }
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err("the store stopped".to_string()))
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.ready.notify_one();
    }
}

/// Runs what is queued, a group at a time, until the store is dropped.
/// It gives its thread up after each group: the requests it answered run,
/// and queue their next calls for the next group.
async fn drive(shared: Arc<Shared>) {
    loop {
        let jobs = match shared.queued.lock() {
            Ok(mut queued) => std::mem::take(&mut *queued),
            Err(_) => return,
        };
        if jobs.is_empty() {
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            shared.ready.notified().await;
            continue;
        }
        match shared.connection.lock() {
            Ok(connection) => run_group(&connection, jobs),
            Err(_) => fail_all(jobs, "the store's connection is poisoned".to_string()),
        }
        tokio::task::yield_now().await;
    }
}

/// The jobs in one transaction, each in a savepoint of its own (one that
/// fails leaves nothing), answered once it is committed: all of them with
/// the error if it is not. The transaction is immediate if any job may
/// write, so that its writes cannot find another process's in the way.
fn run_group(connection: &Connection, jobs: Vec<Job>) {
    let begin = if jobs.iter().any(|job| job.writes) {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    if let Err(error) = execute(connection, begin, []) {
        return fail_all(jobs, error);
    }
    let replies: Vec<Reply> = jobs
        .into_iter()
        .map(|job| (job.run)(Ok(connection)))
        .collect();
    let committed = execute(connection, "COMMIT", []);
    if committed.is_err() {
        let _ = execute(connection, "ROLLBACK", []);
    }
    for reply in replies {
        reply(committed.clone());
    }
}

/// Answers every job with `error`, running none.
fn fail_all(jobs: Vec<Job>, error: StoreError) {
    for job in jobs {
        (job.run)(Err(&error))(Err(error.clone()));
    }
}

/// `call` in a savepoint, rolled back if it fails.
fn in_savepoint<T>(
    connection: &Connection,
    call: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    execute(connection, "SAVEPOINT call", [])?;
    let result = call(connection);
    if result.is_err() {
        execute(connection, "ROLLBACK TO call", [])?;
    }
    execute(connection, "RELEASE call", [])?;
    result
}

/// Runs a statement that answers no rows, prepared once.
fn execute(
    connection: &Connection,
    statement: &str,
    parameters: impl rusqlite::Params,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(statement)
        .and_then(|mut statement| statement.execute(parameters))
        .map(drop)
        .map_err(to_text)
}

/// A thread that checkpoints the store's log on a connection of its own
/// every [`CHECKPOINT_EVERY`], until the store is dropped.
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(checkpoints: Connection, store: Arc<Shared>) -> Checkpointer {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                // A failed checkpoint leaves the log as it was: the next
                // one copies it.
                let Ok(mut log_pages) = checkpoint(&checkpoints) else {
                    continue;
                };
                if log_pages <= RESTART_AFTER_PAGES {
                    continue;
                }
                // Catch up first without holding the groups back: each
                // checkpoint copies what was written during the one before,
                // so that the one that holds them back has little to copy
                // and sync.
                for _ in 0..CATCH_UP_TRIES {
                    let Ok(now) = checkpoint(&checkpoints) else {
                        break;
                    };
                    let written_meanwhile = now - log_pages;
                    log_pages = now;
                    if written_meanwhile <= FEW_PAGES {
                        break;
                    }
                }
                if let Ok(_groups_wait) = store.connection.lock() {
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
/// log's length in pages when it began.
fn checkpoint(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

impl KeyValueStore for SqliteStore {
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Vec<u8>>> {
        let key = key.to_string();
        self.call(false, move |connection| read(connection, &key))
    }

    /// In one group, so the values are of one moment.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Pairs> {
        let keys = keys.to_vec();
        self.call(false, move |connection| {
            keys.into_iter()
                .map(|key| {
                    let value = read(connection, &key)?;
                    Ok((key, value))
                })
                .collect()
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Answer<'a, ()> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.call(true, move |connection| write(connection, &key, &value))
    }

    /// All or none: one savepoint.
    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)]) -> Answer<'a, ()> {
        let pairs = pairs.to_vec();
        self.call(true, move |connection| {
            for (key, value) in &pairs {
                write(connection, key, value)?;
            }
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> Answer<'a, ()> {
        let key = key.to_string();
        self.call(true, move |connection| remove(connection, &key))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, ()> {
        if keys.is_empty() {
            return answered(Ok(()));
        }
        let keys = keys.to_vec();
        self.call(true, move |connection| {
            for key in &keys {
                remove(connection, key)?;
            }
            Ok(())
        })
    }

    fn keys(&self) -> Answer<'_, Vec<String>> {
        self.call(false, |connection| {
            connection
                .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")
                .and_then(|mut statement| {
                    statement
                        .query_map(params![LABEL], |row| row.get(0))?
                        .collect()
                })
                .map_err(to_text)
        })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
    ) -> Answer<'a, Result<(), Option<Vec<u8>>>> {
        let (key, expected, value) = (
            key.to_string(),
            expected.map(<[u8]>::to_vec),
            value.to_vec(),
        );
        self.call(true, move |connection| {
            let current = read(connection, &key)?;
            if current != expected {
                return Ok(Err(current));
            }
            write(connection, &key, &value)?;
            Ok(Ok(()))
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> Answer<'a, i64> {
        let key = key.to_string();
        self.call(true, move |connection| {
            let current = match read(connection, &key)? {
                None => 0,
                Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                    Ok(bytes) => i64::from_le_bytes(bytes),
                    Err(_) => return Err("the value is not a counter".to_string()),
                },
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| "the counter would overflow".to_string())?;
            write(connection, &key, &next.to_le_bytes())?;
            Ok(next)
        })
    }
}

fn to_text(error: rusqlite::Error) -> StoreError {
    error.to_string()
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
// cache), not parsed again for every call; their errors are the store's,
// in words.

fn read(connection: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    connection
        .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![LABEL, key], |row| row.get(0))
                .optional()
        })
        .map_err(to_text)
}

fn remove(connection: &Connection, key: &str) -> Result<(), StoreError> {
    execute(
        connection,
        "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
        params![LABEL, key],
    )
}

fn write(connection: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    execute(
        connection,
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
        params![LABEL, key, value],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::store::{open_sqlite, test_runtime};

    #[test]
    fn a_call_gives_its_thread_up_until_its_group_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = SqliteStore::open(dir.path()).unwrap();
            // Another task on the same thread, as another request: it runs
            // only while a call waits.
            let turns = Arc::new(AtomicU32::new(0));
            let counting = turns.clone();
            tokio::spawn(async move {
                loop {
                    counting.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            });
            for n in 1..=3 {
                store.set("k", b"v").await.unwrap();
                assert!(turns.load(Ordering::Relaxed) >= n, "call {n}");
            }
        });
    }

    #[test]
    fn calls_queued_together_are_committed_and_one_that_fails_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_sqlite(dir.path());
        let pairs = [("b".to_string(), b"2".to_vec()), ("c".into(), b"3".into())];
        let (a, counted, b_and_c, d) = test_runtime().block_on(async {
            // Queued before any is awaited: one group.
            tokio::join!(
                store.set("a", b"not a counter"),
                store.increment("a", 1),
                store.set_many(&pairs),
                store.increment("d", 5),
            )
        });
        assert!(a.is_ok() && b_and_c.is_ok());
        assert_eq!(counted.unwrap_err(), "the value is not a counter");
        assert_eq!(d.unwrap(), 5);
        // Answered once committed: another connection reads them all.
        let other = Connection::open(dir.path().join("key_value.db")).unwrap();
        let stored: Vec<Option<Vec<u8>>> = ["a", "b", "c", "d"]
            .iter()
            .map(|key| read(&other, key).unwrap())
            .collect();
        assert_eq!(
            stored,
            [
                Some(b"not a counter".to_vec()),
                Some(b"2".to_vec()),
                Some(b"3".to_vec()),
                Some(5_i64.to_le_bytes().to_vec()),
            ]
        );
    }

    #[test]
    fn the_log_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open_sqlite(dir.path()));
        // Two writers, as requests: each group commits at least one page
        // of 4 KiB, over 300 MiB of log if it never started over (a
        // checkpoint beside steady writes never catches up).
        const WRITES: usize = 40_000;
        test_runtime().block_on(async {
            let writers: Vec<_> = (0..2)
                .map(|writer| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        for n in 0..WRITES {
                            let value = format!("{writer}/{n}");
                            let key = format!("key/{writer}/{}", n % 64);
                            store.set(&key, value.as_bytes()).await.unwrap();
                            // And a read between, as a request makes.
                            store.get_many(&[key]).await.unwrap();
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.await.unwrap();
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
