//! The embedded store: one SQLite file laid out as Spin's SQLite key-value
//! provider lays it out (table `spin_key_value`, the store's label in
//! `store`), so that a Spin and `hooksign serve` can read each other's file.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{KeyValueStore, Pairs, StoreError};

/// The store label the component is granted (`key_value_stores = ["default"]`).
const LABEL: &str = "default";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
);";

/// The `default` store in a SQLite file; one connection, shared.
pub struct SqliteStore {
    connection: Mutex<Connection>,
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
            .busy_timeout(std::time::Duration::from_secs(1))
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(
        &self,
        query: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| "the store's lock is poisoned".to_string())?;
        query(&mut connection).map_err(|error| error.to_string())
    }
}

impl KeyValueStore for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|connection| read(connection, key))
    }

    /// One read transaction, so the values are of one moment.
    fn get_many(&self, keys: &[String]) -> Result<Pairs, StoreError> {
        self.with(|connection| {
            let transaction = connection.transaction()?;
            let values = keys
                .iter()
                .map(|key| Ok((key.clone(), read(&transaction, key)?)))
                .collect::<rusqlite::Result<_>>()?;
            transaction.commit()?;
            Ok(values)
        })
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.with(|connection| write(connection, key, value))
    }

    /// One transaction: one commit for the batch.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (key, value) in pairs {
                write(&transaction, key, value)?;
            }
            transaction.commit()
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.with(|connection| remove(connection, key))
    }

    /// One transaction: one commit for the batch.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for key in keys {
                remove(&transaction, key)?;
            }
            transaction.commit()
        })
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.with(|connection| {
            let mut statement = connection
                .prepare("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            let keys = statement.query_map(params![LABEL], |row| row.get(0))?;
            keys.collect()
        })
    }

    /// One immediate transaction, so other processes on the file see it whole.
    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Result<(), Option<Vec<u8>>>, StoreError> {
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = read(&transaction, key)?;
            if current.as_deref() != expected {
                return Ok(Err(current));
            }
            write(&transaction, key, value)?;
            transaction.commit()?;
            Ok(Ok(()))
        })
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
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
        })?
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
