//! What the edge component imports beyond WASI and wasi:http, as Spin
//! provides it: the `default` key-value store through wasi:keyvalue
//! `store` and `atomics` (on any [`KeyValueStore`]), and Spin's variables
//! (from `SPIN_VARIABLE_<NAME>` and the command line). [`EdgeState`] is one
//! request's instance state.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Resource;

use crate::outbound::OutboundPolicy;
use crate::store::KeyValueStore;

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
    Ok(())
}

impl wasi_store::Host for EdgeState {
    fn open(&mut self, identifier: String) -> Result<Resource<OpenStore>, wasi_store::Error> {
        if identifier != DEFAULT_STORE {
            return Err(wasi_store::Error::NoSuchStore);
        }
        self.table
            .push(OpenStore)
            .map_err(|error| wasi_store::Error::Other(error.to_string()))
    }
}

impl wasi_store::HostBucket for EdgeState {
    fn get(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store.get(&key).map_err(wasi_store::Error::Other)
    }

    fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store
            .set(&key, &value)
            .map_err(wasi_store::Error::Other)
    }

    fn delete(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<(), wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store.delete(&key).map_err(wasi_store::Error::Other)
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
        self.bucket(&bucket)?;
        let keys = self.store.keys().map_err(wasi_store::Error::Other)?;
        Ok(wasi_store::KeyResponse { keys, cursor: None })
    }

    fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for EdgeState {
    fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> Result<i64, wasi_store::Error> {
        self.bucket(&bucket)?;
        self.store
            .increment(&key, delta)
            .map_err(wasi_store::Error::Other)
    }

    fn swap(
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
            .map_err(other)?
        {
            Ok(()) => Ok(()),
            // A fresh handle from the value that won, for the guest's retry.
            Err(current) => {
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
    fn new(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Resource<PendingSwap>, wasi_store::Error> {
        self.bucket(&bucket)?;
        let read = self.store.get(&key).map_err(wasi_store::Error::Other)?;
        self.table
            .push(PendingSwap { key, read })
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
