//! The Spin interfaces the edge component imports, as Spin itself provides
//! them locally: the key-value store on SQLite, and variables from the
//! environment (`SPIN_VARIABLE_<NAME>`) and the command line.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension as _, params};
use wasmtime::component::Resource;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "edge",
        path: "../wit",
        with: {
            "fermyon:spin/key-value.store": super::OpenStore,
        },
    });
}

use bindings::fermyon::spin::{key_value, variables};

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
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, key_value::Error> {
        let connection = self
            .connection
            .lock()
            .map_err(|_| key_value::Error::Other("the store's lock is poisoned".into()))?;
        query(&connection).map_err(|error| key_value::Error::Other(error.to_string()))
    }
}

/// An open store handle inside a component instance.
pub struct OpenStore {
    label: String,
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
            hooks: Default::default(),
        }
    }
}

impl SpinState {
    /// State for one store: no files, no environment, stdio discarded; the
    /// given key-value store and variables.
    pub fn new(store: KeyValueFile, variables: Arc<HashMap<String, String>>) -> SpinState {
        SpinState {
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
    key_value::add_to_linker::<_, HasSelf<SpinState>>(linker, |state| state)?;
    variables::add_to_linker::<_, HasSelf<SpinState>>(linker, |state| state)?;
    Ok(())
}

impl key_value::Host for SpinState {}

impl key_value::HostStore for SpinState {
    fn open(&mut self, label: String) -> Result<Resource<OpenStore>, key_value::Error> {
        if label != DEFAULT_STORE {
            return Err(key_value::Error::NoSuchStore);
        }
        self.table
            .push(OpenStore { label })
            .map_err(|error| key_value::Error::Other(error.to_string()))
    }

    fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, key_value::Error> {
        let label = self.label(&store)?;
        self.store.with(|connection| {
            connection
                .query_row(
                    "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    params![label, key],
                    |row| row.get(0),
                )
                .optional()
        })
    }

    fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), key_value::Error> {
        let label = self.label(&store)?;
        self.store.with(|connection| {
            connection
                .execute(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    params![label, key, value],
                )
                .map(drop)
        })
    }

    fn delete(&mut self, store: Resource<OpenStore>, key: String) -> Result<(), key_value::Error> {
        let label = self.label(&store)?;
        self.store.with(|connection| {
            connection
                .execute(
                    "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    params![label, key],
                )
                .map(drop)
        })
    }

    fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> Result<bool, key_value::Error> {
        Ok(self.get(store, key)?.is_some())
    }

    fn get_keys(&mut self, store: Resource<OpenStore>) -> Result<Vec<String>, key_value::Error> {
        let label = self.label(&store)?;
        self.store.with(|connection| {
            let mut statement = connection
                .prepare("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            let keys = statement.query_map(params![label], |row| row.get(0))?;
            keys.collect()
        })
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl SpinState {
    fn label(&self, store: &Resource<OpenStore>) -> Result<String, key_value::Error> {
        self.table
            .get(store)
            .map(|open| open.label.clone())
            .map_err(|error| key_value::Error::Other(error.to_string()))
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
