//! What the edge component imports beyond WASI and wasi:http, as Spin
//! provides it: the `default` key-value store through wasi:keyvalue
//! `store`, `atomics` and `batch` (on any [`KeyValueStore`]), and Spin's variables
//! (from `SPIN_VARIABLE_<NAME>` and the command line). [`EdgeState`] is one
//! request's instance state.
//!
//! On a store that answers swaps truthfully, a compare-and-swap begins
//! from the value the instance last read or wrote at its key, when it has
//! one, instead of reading it again ([`Seen`]): the swap still compares
//! with the store, so a value changed since fails it and hands back the
//! value that won, as any conflict does. wasi:keyvalue leaves `cas`'s
//! mapping to the host for this ("avoiding reads", atomic.wit).

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Resource;

use crate::outbound::OutboundPolicy;
use crate::store::KeyValueStore;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "edge",
        path: "../wit",
        // A store call waits for the store (Redis: a round trip) without
        // holding the worker thread.
        imports: { "wasi:keyvalue": async },
        with: {
            "wasi:keyvalue/store.bucket": super::OpenStore,
            "wasi:keyvalue/atomics.cas": super::PendingSwap,
        },
    });
}

use bindings::fermyon::spin::variables;
use bindings::wasi::keyvalue::{atomics, batch, store as wasi_store};

/// The only store label the component is granted (`key_value_stores = ["default"]`).
const DEFAULT_STORE: &str = "default";

/// The open `default` bucket inside a component instance.
pub struct OpenStore;

/// A wasi:keyvalue compare-and-swap in progress: the value read when it began.
pub struct PendingSwap {
    key: String,
    read: Option<Vec<u8>>,
}

/// The state of one request's instance: WASI, wasi:http and the Spin
/// imports share one resource table.
pub struct EdgeState {
    wasi: wasmtime_wasi::WasiCtx,
    http: wasmtime_wasi_http::WasiHttpCtx,
    table: wasmtime::component::ResourceTable,
    store: Arc<dyn KeyValueStore>,
    variables: Arc<HashMap<String, String>>,
    limits: wasmtime::StoreLimits,
    outbound: OutboundPolicy,
    /// Unset: every swap begins with a read (stores that misreport, as
    /// Spin's do, and their test mode).
    seen: Option<Seen>,
}

/// The values an instance last read or wrote, by key (`None`: absent),
/// up to [`Seen::MAX_BYTES`] of them.
#[derive(Default)]
struct Seen {
    values: HashMap<String, Option<Vec<u8>>>,
    bytes: usize,
}

impl Seen {
    /// Enough for a request's records; a dispatcher pass over a large
    /// backlog starts over when it passes this, rather than grow.
    const MAX_BYTES: usize = 4 << 20;

    fn note(&mut self, key: &str, value: Option<&[u8]>) {
        self.forget(key);
        let size = key.len() + value.map_or(0, <[u8]>::len);
        if self.bytes + size > Self::MAX_BYTES {
            self.values.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        self.values
            .insert(key.to_string(), value.map(<[u8]>::to_vec));
    }

    fn forget(&mut self, key: &str) {
        if let Some(value) = self.values.remove(key) {
            self.bytes -= key.len() + value.map_or(0, |value| value.len());
        }
    }
}

impl wasmtime_wasi::WasiView for EdgeState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for EdgeState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl EdgeState {
    /// State for one store: no files, no environment, stdio discarded; the
    /// given key-value store and variables, and the outbound policy.
    pub fn new(
        store: Arc<dyn KeyValueStore>,
        variables: Arc<HashMap<String, String>>,
        outbound: OutboundPolicy,
    ) -> EdgeState {
        EdgeState {
            outbound,
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            table: wasmtime::component::ResourceTable::new(),
            store,
            variables,
            limits: crate::engine::instance_limits(),
            seen: None,
        }
    }

    /// The state, its swaps beginning from the values it last read or
    /// wrote: only for a store whose swaps are truthful.
    pub fn remembering_values(mut self) -> EdgeState {
        self.seen = Some(Seen::default());
        self
    }

    fn note(&mut self, key: &str, value: Option<&[u8]>) {
        if let Some(seen) = &mut self.seen {
            seen.note(key, value);
        }
    }

    fn forget(&mut self, key: &str) {
        if let Some(seen) = &mut self.seen {
            seen.forget(key);
        }
    }

    /// A store for this state, its memory capped at [`MAX_INSTANCE_MEMORY`](crate::MAX_INSTANCE_MEMORY):
    /// growing past it fails the guest's allocation (a trap), not the host.
    pub fn into_store(self, engine: &wasmtime::Engine) -> wasmtime::Store<EdgeState> {
        let mut store = wasmtime::Store::new(engine, self);
        store.limiter(|state| &mut state.limits);
        store
    }

    fn bucket(&self, bucket: &Resource<OpenStore>) -> Result<(), wasi_store::Error> {
        self.table
            .get(bucket)
            .map(drop)
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }
}

/// Adds wasi:keyvalue and Spin's variables to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<EdgeState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    variables::add_to_linker::<_, HasSelf<EdgeState>>(linker, |state| state)?;
    wasi_store::add_to_linker::<_, HasSelf<EdgeState>>(linker, |state| state)?;
    atomics::add_to_linker::<_, HasSelf<EdgeState>>(linker, |state| state)?;
    batch::add_to_linker::<_, HasSelf<EdgeState>>(linker, |state| state)?;
    Ok(())
}

impl wasi_store::Host for EdgeState {
    async fn open(&mut self, identifier: String) -> Result<Resource<OpenStore>, wasi_store::Error> {
        if identifier != DEFAULT_STORE {
            return Err(wasi_store::Error::NoSuchStore);
        }
        self.table
            .push(OpenStore)
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }
}

impl wasi_store::HostBucket for EdgeState {
    async fn get(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        self.bucket(&bucket)?;
        let value = self
            .store
            .get(&key)
            .await
            .map_err(wasi_store::Error::Other)?;
        self.note(&key, value.as_deref());
        Ok(value)
    }

    async fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store
            .set(&key, &value)
            .await
            .map_err(wasi_store::Error::Other)?;
        self.note(&key, Some(&value));
        Ok(())
    }

    async fn delete(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<(), wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store
            .delete(&key)
            .await
            .map_err(wasi_store::Error::Other)?;
        self.note(&key, None);
        Ok(())
    }

    async fn exists(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<bool, wasi_store::Error> {
        Ok(wasi_store::HostBucket::get(self, bucket, key)
            .await?
            .is_some())
    }

    /// Every key in one page: the stores this host serves are small.
    async fn list_keys(
        &mut self,
        bucket: Resource<OpenStore>,
        _cursor: Option<String>,
    ) -> Result<wasi_store::KeyResponse, wasi_store::Error> {
        self.bucket(&bucket)?;
        let keys = self.store.keys().await.map_err(wasi_store::Error::Other)?;
        Ok(wasi_store::KeyResponse { keys, cursor: None })
    }

    async fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl batch::Host for EdgeState {
    async fn get_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, wasi_store::Error> {
        self.bucket(&bucket)?;
        let answer = self
            .store
            .get_many(&keys)
            .await
            .map_err(wasi_store::Error::Other)?;
        for (key, value) in &answer {
            self.note(key, value.as_deref());
        }
        Ok(answer)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<OpenStore>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store
            .set_many(&key_values)
            .await
            .map_err(wasi_store::Error::Other)?;
        for (key, value) in &key_values {
            self.note(key, Some(value));
        }
        Ok(())
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> Result<(), wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store
            .delete_many(&keys)
            .await
            .map_err(wasi_store::Error::Other)?;
        for key in &keys {
            self.note(key, None);
        }
        Ok(())
    }
}

impl atomics::Host for EdgeState {
    async fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> Result<i64, wasi_store::Error> {
        self.bucket(&bucket)?;
        // A counter is stored in the store's own format: read it again.
        self.forget(&key);
        self.store
            .increment(&key, delta)
            .await
            .map_err(wasi_store::Error::Other)
    }

    async fn swap(
        &mut self,
        pending: Resource<PendingSwap>,
        value: Vec<u8>,
    ) -> Result<(), atomics::CasError> {
        let other = |error: String| atomics::CasError::StoreError(wasi_store::Error::Other(error));
        let PendingSwap { key, read } = self
            .table
            .delete(pending)
            .map_err(|error| other(error.to_string()))?;
        match self
            .store
            .swap(&key, read.as_deref(), &value)
            .await
            .map_err(other)?
        {
            Ok(()) => {
                self.note(&key, Some(&value));
                Ok(())
            }
            // A fresh handle from the value that won, for the guest's retry.
            Err(current) => {
                self.note(&key, current.as_deref());
                let retry = self
                    .table
                    .push(PendingSwap { key, read: current })
                    .map_err(|error| other(error.to_string()))?;
                Err(atomics::CasError::CasFailed(retry))
            }
        }
    }
}

impl atomics::HostCas for EdgeState {
    async fn new(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Resource<PendingSwap>, wasi_store::Error> {
        self.bucket(&bucket)?;
        let seen = self.seen.as_ref().and_then(|seen| seen.values.get(&key));
        let read = match seen {
            Some(value) => value.clone(),
            None => {
                let read = self
                    .store
                    .get(&key)
                    .await
                    .map_err(wasi_store::Error::Other)?;
                self.note(&key, read.as_deref());
                read
            }
        };
        self.table
            .push(PendingSwap { key, read })
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }

    async fn current(
        &mut self,
        pending: Resource<PendingSwap>,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        self.table
            .get(&pending)
            .map(|pending| pending.read.clone())
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }

    async fn drop(&mut self, pending: Resource<PendingSwap>) -> wasmtime::Result<()> {
        self.table.delete(pending)?;
        Ok(())
    }
}

impl variables::Host for EdgeState {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::store::{Counting, Counts, blocking, open_sqlite};

    /// A state on a fresh SQLite store, its calls counted, and the bucket.
    fn state(dir: &std::path::Path, remembering: bool) -> (EdgeState, Arc<Counts>) {
        let counts = Arc::new(Counts::default());
        let store = Arc::new(Counting {
            inner: Arc::new(open_sqlite(dir)),
            counts: counts.clone(),
        });
        let state = EdgeState::new(store, Arc::default(), OutboundPolicy::default());
        let state = if remembering {
            state.remembering_values()
        } else {
            state
        };
        (state, counts)
    }

    fn open(state: &mut EdgeState) -> Resource<OpenStore> {
        blocking(wasi_store::Host::open(state, DEFAULT_STORE.into())).unwrap()
    }

    /// Swaps `key` to `value` from a fresh handle; the value the handle began from.
    fn swap(state: &mut EdgeState, key: &str, value: &[u8]) -> (Option<Vec<u8>>, bool) {
        let bucket = open(state);
        let pending = blocking(atomics::HostCas::new(state, bucket, key.into())).unwrap();
        let began = blocking(atomics::HostCas::current(
            state,
            Resource::new_borrow(pending.rep()),
        ))
        .unwrap();
        let made = blocking(atomics::Host::swap(state, pending, value.to_vec())).is_ok();
        (began, made)
    }

    #[test]
    fn a_swap_begins_from_the_value_the_instance_last_wrote_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let (mut state, counts) = state(dir.path(), true);
        assert_eq!(swap(&mut state, "k", b"1"), (None, true));
        let before = counts.summary();
        assert_eq!(swap(&mut state, "k", b"2"), (Some(b"1".to_vec()), true));
        assert_eq!(
            counts.summary(),
            "3 store calls (1 get, 2 swap)",
            "{before}"
        );
        let bucket = open(&mut state);
        let stored = blocking(wasi_store::HostBucket::get(&mut state, bucket, "k".into())).unwrap();
        assert_eq!(stored.as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn a_value_changed_since_fails_the_swap_and_hands_back_the_one_that_won() {
        let dir = tempfile::tempdir().unwrap();
        let (mut mine, _) = state(dir.path(), true);
        let (mut other, _) = state(dir.path(), true);
        assert!(swap(&mut mine, "k", b"mine").1);
        // Another instance (another node) changes it.
        assert_eq!(
            swap(&mut other, "k", b"other"),
            (Some(b"mine".to_vec()), true)
        );
        // Begun from the stale value: refused, and the retry has the winner.
        let bucket = open(&mut mine);
        let pending = blocking(atomics::HostCas::new(&mut mine, bucket, "k".into())).unwrap();
        let Err(atomics::CasError::CasFailed(retry)) =
            blocking(atomics::Host::swap(&mut mine, pending, b"lost".to_vec()))
        else {
            panic!("a stale swap was made");
        };
        let current = blocking(atomics::HostCas::current(
            &mut mine,
            Resource::new_borrow(retry.rep()),
        ));
        assert_eq!(current.unwrap().as_deref(), Some(&b"other"[..]));
        assert!(
            blocking(atomics::Host::swap(
                &mut mine,
                retry,
                b"mine again".to_vec()
            ))
            .is_ok()
        );
        assert_eq!(
            swap(&mut other, "k", b"x").0.as_deref(),
            Some(&b"other"[..])
        );
        // `other` remembered its own write: refused, then right.
        assert_eq!(
            swap(&mut other, "k", b"y"),
            (Some(b"mine again".to_vec()), true)
        );
    }

    #[test]
    fn without_remembering_every_swap_reads_first() {
        let dir = tempfile::tempdir().unwrap();
        let (mut state, counts) = state(dir.path(), false);
        assert!(swap(&mut state, "k", b"1").1);
        assert!(swap(&mut state, "k", b"2").1);
        assert_eq!(counts.summary(), "4 store calls (2 get, 2 swap)");
    }
}
