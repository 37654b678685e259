//! The Spin interfaces the edge component imports, as Spin itself provides
//! them locally: the `default` key-value store (wasi:keyvalue `store` and
//! `atomics`) on SQLite, and variables from the environment
//! (`SPIN_VARIABLE_<NAME>`) and the command line.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::outbound::OutboundPolicy;
use wasmtime::component::Resource;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "edge",
        path: "../wit",
        with: {
            "wasi:keyvalue/store.bucket": super::OpenStore,
            "wasi:keyvalue/atomics.cas": super::PendingSwap,
        },
    });
}

use bindings::fermyon::spin::variables;
use bindings::wasi::keyvalue::{atomics, store as wasi_store};

/// The only store label the component is granted (`key_value_stores = ["default"]`).
const DEFAULT_STORE: &str = "default";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
);";

/// An on-disk key-value store shared by every request, like Spin's default
/// SQLite store. Each `set` is one SQLite statement, so one key is written
/// atomically.
#[derive(Clone)]
pub struct KeyValueFile {
    connection: Arc<Mutex<Connection>>,
}

impl KeyValueFile {
    /// Opens or creates `key_value.db` in `dir`.
    pub fn open(dir: &Path) -> Result<KeyValueFile, String> {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let path = dir.join("key_value.db");
        let connection =
            Connection::open(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        connection
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; {SCHEMA}"
            ))
            .map_err(|error| format!("{}: {error}", path.display()))?;
        // Only another process can hold the file's lock; waiting for it
        // blocks every request (one connection), so give up after a second
        // and answer 503 store_unavailable.
        connection
            .busy_timeout(std::time::Duration::from_secs(1))
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(KeyValueFile {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// A store that lives as long as the process: for components run without
    /// a data directory (the signer, the vector runner).
    pub fn in_memory() -> Result<KeyValueFile, String> {
        let connection = Connection::open_in_memory().map_err(|error| error.to_string())?;
        connection
            .execute_batch(SCHEMA)
            .map_err(|error| error.to_string())?;
        Ok(KeyValueFile {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn with<T>(
        &self,
        query: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, String> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| "the store's lock is poisoned".to_string())?;
        query(&mut connection).map_err(|error| error.to_string())
    }

    fn get(&self, label: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.with(|connection| read(connection, label, key))
    }

    fn set(&self, label: &str, key: &str, value: &[u8]) -> Result<(), String> {
        self.with(|connection| write(connection, label, key, value))
    }

    fn delete(&self, label: &str, key: &str) -> Result<(), String> {
        self.with(|connection| {
            connection
                .execute(
                    "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    params![label, key],
                )
                .map(drop)
        })
    }

    fn keys(&self, label: &str) -> Result<Vec<String>, String> {
        self.with(|connection| {
            let mut statement = connection
                .prepare("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            let keys = statement.query_map(params![label], |row| row.get(0))?;
            keys.collect()
        })
    }

    /// Writes `value` if the key still holds `expected`; otherwise returns
    /// what it holds now. One SQLite transaction, so other processes on the
    /// same file see it whole too.
    fn swap(
        &self,
        label: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Result<(), Option<Vec<u8>>>, String> {
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current = read(&transaction, label, key)?;
            if current.as_deref() != expected {
                return Ok(Err(current));
            }
            write(&transaction, label, key, value)?;
            transaction.commit()?;
            Ok(Ok(()))
        })
    }

    /// Adds `delta` to a counter stored as 8 little-endian bytes.
    fn increment(&self, label: &str, key: &str, delta: i64) -> Result<i64, String> {
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current = match read(&transaction, label, key)? {
                None => 0,
                Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                    Ok(bytes) => i64::from_le_bytes(bytes),
                    Err(_) => return Ok(Err("the value is not a counter".to_string())),
                },
            };
            let Some(next) = current.checked_add(delta) else {
                return Ok(Err("the counter would overflow".to_string()));
            };
            write(&transaction, label, key, &next.to_le_bytes())?;
            transaction.commit()?;
            Ok(Ok(next))
        })?
    }
}

fn read(connection: &Connection, label: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    connection
        .query_row(
            "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
            params![label, key],
            |row| row.get(0),
        )
        .optional()
}

fn write(connection: &Connection, label: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    connection
        .execute(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            params![label, key, value],
        )
        .map(drop)
}

/// An open wasi:keyvalue bucket inside a component instance.
pub struct OpenStore {
    label: String,
}

/// A wasi:keyvalue compare-and-swap in progress: the value read when it began.
pub struct PendingSwap {
    label: String,
    key: String,
    read: Option<Vec<u8>>,
}

/// The state of one request's store: WASI, wasi:http and the Spin imports
/// share one resource table.
pub struct SpinState {
    pub(crate) wasi: wasmtime_wasi::WasiCtx,
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) table: wasmtime::component::ResourceTable,
    pub(crate) store: KeyValueFile,
    pub(crate) variables: Arc<HashMap<String, String>>,
    pub(crate) limits: wasmtime::StoreLimits,
    pub(crate) outbound: OutboundPolicy,
}

/// The most linear memory one instance may grow to: room for a 64 MiB
/// payload and its copy, not for a runaway guest.
pub const MAX_INSTANCE_MEMORY: usize = 512 << 20;

impl wasmtime_wasi::WasiView for SpinState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for SpinState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl SpinState {
    /// State for one store: no files, no environment, stdio discarded; the
    /// given key-value store and variables, and the outbound policy.
    pub fn new(
        store: KeyValueFile,
        variables: Arc<HashMap<String, String>>,
        outbound: OutboundPolicy,
    ) -> SpinState {
        SpinState {
            outbound,
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            table: wasmtime::component::ResourceTable::new(),
            store,
            variables,
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(MAX_INSTANCE_MEMORY)
                .instances(4)
                .build(),
        }
    }

    /// A store for this state, its memory capped at [`MAX_INSTANCE_MEMORY`]:
    /// growing past it fails the guest's allocation (a trap), not the host.
    pub fn into_store(self, engine: &wasmtime::Engine) -> wasmtime::Store<SpinState> {
        let mut store = wasmtime::Store::new(engine, self);
        store.limiter(|state| &mut state.limits);
        store
    }
}

/// Adds the Spin imports to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<SpinState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    variables::add_to_linker::<_, HasSelf<SpinState>>(linker, |state| state)?;
    wasi_store::add_to_linker::<_, HasSelf<SpinState>>(linker, |state| state)?;
    atomics::add_to_linker::<_, HasSelf<SpinState>>(linker, |state| state)?;
    Ok(())
}

impl SpinState {
    fn label(&self, store: &Resource<OpenStore>) -> Result<String, String> {
        self.table
            .get(store)
            .map(|open| open.label.clone())
            .map_err(|error| error.to_string())
    }
}

impl wasi_store::Host for SpinState {
    fn open(&mut self, identifier: String) -> Result<Resource<OpenStore>, wasi_store::Error> {
        if identifier != DEFAULT_STORE {
            return Err(wasi_store::Error::NoSuchStore);
        }
        self.table
            .push(OpenStore { label: identifier })
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }
}

impl wasi_store::HostBucket for SpinState {
    fn get(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        let label = self.label(&bucket).map_err(wasi_store::Error::Other)?;
        self.store
            .get(&label, &key)
            .map_err(wasi_store::Error::Other)
    }

    fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi_store::Error> {
        let label = self.label(&bucket).map_err(wasi_store::Error::Other)?;
        self.store
            .set(&label, &key, &value)
            .map_err(wasi_store::Error::Other)
    }

    fn delete(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<(), wasi_store::Error> {
        let label = self.label(&bucket).map_err(wasi_store::Error::Other)?;
        self.store
            .delete(&label, &key)
            .map_err(wasi_store::Error::Other)
    }

    fn exists(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<bool, wasi_store::Error> {
        Ok(wasi_store::HostBucket::get(self, bucket, key)?.is_some())
    }

    /// Every key in one page: the stores this host serves are small.
    fn list_keys(
        &mut self,
        bucket: Resource<OpenStore>,
        _cursor: Option<String>,
    ) -> Result<wasi_store::KeyResponse, wasi_store::Error> {
        let label = self.label(&bucket).map_err(wasi_store::Error::Other)?;
        let keys = self.store.keys(&label).map_err(wasi_store::Error::Other)?;
        Ok(wasi_store::KeyResponse { keys, cursor: None })
    }

    fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for SpinState {
    fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> Result<i64, wasi_store::Error> {
        let label = self.label(&bucket).map_err(wasi_store::Error::Other)?;
        self.store
            .increment(&label, &key, delta)
            .map_err(wasi_store::Error::Other)
    }

    fn swap(
        &mut self,
        pending: Resource<PendingSwap>,
        value: Vec<u8>,
    ) -> Result<(), atomics::CasError> {
        let other = |error: String| atomics::CasError::StoreError(wasi_store::Error::Other(error));
        let PendingSwap { label, key, read } = self
            .table
            .delete(pending)
            .map_err(|error| other(error.to_string()))?;
        match self
            .store
            .swap(&label, &key, read.as_deref(), &value)
            .map_err(other)?
        {
            Ok(()) => Ok(()),
            // A fresh handle from the value that won, for the guest's retry.
            Err(current) => {
                let retry = self
                    .table
                    .push(PendingSwap {
                        label,
                        key,
                        read: current,
                    })
                    .map_err(|error| other(error.to_string()))?;
                Err(atomics::CasError::CasFailed(retry))
            }
        }
    }
}

impl atomics::HostCas for SpinState {
    fn new(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Resource<PendingSwap>, wasi_store::Error> {
        let label = self.label(&bucket).map_err(wasi_store::Error::Other)?;
        let read = self
            .store
            .get(&label, &key)
            .map_err(wasi_store::Error::Other)?;
        self.table
            .push(PendingSwap { label, key, read })
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }

    fn current(
        &mut self,
        pending: Resource<PendingSwap>,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        self.table
            .get(&pending)
            .map(|pending| pending.read.clone())
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }

    fn drop(&mut self, pending: Resource<PendingSwap>) -> wasmtime::Result<()> {
        self.table.delete(pending)?;
        Ok(())
    }
}

impl variables::Host for SpinState {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.variables
            .get(&name)
            .cloned()
            .ok_or(variables::Error::Undefined(name))
    }
}

/// Variables as Spin's environment provider reads them (`SPIN_VARIABLE_API_KEYS`
/// is `api_keys`), overridden by `name=value` pairs from the command line.
pub fn variables_from(
    environment: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> HashMap<String, String> {
    let mut variables: HashMap<String, String> = environment
        .into_iter()
        .filter_map(|(name, value)| {
            name.strip_prefix("SPIN_VARIABLE_")
                .map(|name| (name.to_ascii_lowercase(), value))
        })
        .collect();
    variables.extend(overrides.iter().cloned());
    variables
}
