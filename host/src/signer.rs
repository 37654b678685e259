//! The signer host: the `hooksign:webhooks/signing` interface of a
//! component, compiled and linked once, each use in a fresh store.

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Engine, Store};

use crate::engine::{self, ticks};

mod bindings {
    wasmtime::component::bindgen!({
        world: "signer",
        path: "../wit",
    });
}

use bindings::exports::hooksign::webhooks::signing;
use bindings::{Signer, SignerPre};

/// A failure to run the component, or a contract error it returned.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component file could not be read.
    #[error("cannot read component {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The component could not be compiled, linked or instantiated, or it trapped.
    #[error("component failure: {0}")]
    Wasm(#[from] wasmtime::Error),
    /// The component answered with a contract error.
    #[error("{code}: {0}", code = .0.code())]
    Signing(#[from] hooksign::Error),
}

/// The signing interface of a component, compiled and linked once: the
/// signer component, or the edge component, which exports it too. The
/// linker offers WASI and wasi:http (whose types share wasi:io's streams);
/// any other import (the edge's key-value store and variables) is linked
/// to a trap, which signing never calls.
///
/// Limits: each instance's memory is capped at [`crate::MAX_INSTANCE_MEMORY`],
/// and each call is interrupted (a trap, so an error) once it has run for
/// the call deadline, [`DEFAULT_CALL_DEADLINE`] unless set. Instances come
/// from a pool of reused slots, which makes a fresh one cheaper: at most
/// [`crate::MAX_POOLED_INSTANCES`] sessions live at once, and one more is
/// an error until another ends.
#[derive(Clone)]
pub struct SignerComponent {
    engine: Engine,
    pre: SignerPre<SignerState>,
    deadline_ticks: u64,
}

/// How long one call into the component may run by default.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(10);

/// One instance's state: WASI and wasi:http with nothing granted, and the
/// memory cap.
pub struct SignerState {
    wasi: wasmtime_wasi::WasiCtx,
    http: wasmtime_wasi_http::WasiHttpCtx,
    no_outbound: NoOutbound,
    table: wasmtime::component::ResourceTable,
    limits: wasmtime::StoreLimits,
}

impl wasmtime_wasi_http::WasiHttpView for SignerState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.no_outbound,
        }
    }
}

/// The signer sends nothing: every outgoing request is refused.
pub struct NoOutbound;

impl wasmtime_wasi_http::WasiHttpHooks for NoOutbound {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = crate::http_send::Exchange> + Send> {
        Box::new(std::future::ready(Err(
            wasmtime_wasi_http::Error::HttpRequestDenied,
        )))
    }
}

/// Links every import that WASI and wasi:http do not provide to a trap.
/// (wasmtime's `define_unknown_imports_as_traps` cannot follow WASI: it
/// redefines interfaces that WASI provides under another 0.2.x version.)
fn link_traps(
    linker: &mut Linker<SignerState>,
    component: &Component,
    engine: &Engine,
) -> wasmtime::Result<()> {
    use wasmtime::component::ResourceType;
    use wasmtime::component::types::ComponentItem;
    for (name, import) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        if name.starts_with("wasi:") && !name.starts_with("wasi:keyvalue/") {
            continue;
        }
        let mut linked = linker.instance(name)?;
        for (item, export) in instance.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => {
                    let what = format!("{name}#{item}");
                    linked.func_new(item, move |_, _, _, _| {
                        Err(wasmtime::Error::msg(format!(
                            "{what} is not available to the signer"
                        )))
                    })?;
                }
                // One host type for all: resources used across these
                // interfaces (a bucket in atomics) stay the same type.
                ComponentItem::Resource(_) => {
                    linked.resource(item, ResourceType::host::<()>(), |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

impl wasmtime_wasi::WasiView for SignerState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl SignerComponent {
    /// Loads and compiles a component file, with the default call deadline.
    pub fn load(path: &Path) -> Result<SignerComponent, HostError> {
        SignerComponent::load_with(path, Some(DEFAULT_CALL_DEADLINE))
    }

    /// Loads a component file; `None` runs calls without a deadline, which
    /// spares the guest the epoch checks in its loops (see BENCHMARKS.md).
    pub fn load_with(
        path: &Path,
        call_deadline: Option<Duration>,
    ) -> Result<SignerComponent, HostError> {
        let bytes = std::fs::read(path).map_err(|source| HostError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SignerComponent::from_bytes_with(&bytes, call_deadline)
    }

    /// Compiles a component from its bytes, with the default call deadline.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignerComponent, HostError> {
        SignerComponent::from_bytes_with(bytes, Some(DEFAULT_CALL_DEADLINE))
    }

    /// Compiles a component from its bytes; see [`SignerComponent::load_with`].
    pub fn from_bytes_with(
        bytes: &[u8],
        call_deadline: Option<Duration>,
    ) -> Result<SignerComponent, HostError> {
        // The first 128 KiB: the signer's stack (64 KiB,
        // guest/signer/build.rs), data and first heap pages.
        let slots = engine::InstancePool {
            instances: engine::MAX_POOLED_INSTANCES,
            keep_resident: 128 << 10,
        };
        let engine = engine::engine(call_deadline.is_some(), slots)?;
        let component = Component::new(&engine, bytes)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        link_traps(&mut linker, &component, &engine)?;
        let pre = SignerPre::new(linker.instantiate_pre(&component)?)?;
        Ok(SignerComponent {
            engine,
            pre,
            deadline_ticks: ticks(call_deadline.unwrap_or(DEFAULT_CALL_DEADLINE)),
        })
    }

    /// The same component with another call deadline.
    pub fn with_call_deadline(mut self, deadline: Duration) -> SignerComponent {
        self.deadline_ticks = ticks(deadline);
        self
    }

    /// The names of the interfaces the component imports.
    pub fn imports(&self) -> Vec<String> {
        let component = self.pre.instance_pre().component();
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A fresh instance in a fresh store.
    pub fn session(&self) -> Result<Session, HostError> {
        let state = SignerState {
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            no_outbound: NoOutbound,
            table: wasmtime::component::ResourceTable::new(),
            limits: engine::instance_limits(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok(Session {
            store,
            bindings,
            deadline_ticks: self.deadline_ticks,
        })
    }
}

/// What `verify-values` found: the matching key's index and the message
/// timestamp (the id is the one passed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedValues {
    /// The keyring index of the first usable key that matched.
    pub secret: usize,
    /// The message timestamp, Unix seconds.
    pub timestamp: i64,
}

/// A keyring living inside one [`Session`]'s instance.
#[derive(Debug, Clone, Copy)]
pub struct KeyringHandle(ResourceAny);

/// One instance of the signer component and its store. Keyrings made in a
/// session can only be used in that session.
pub struct Session {
    store: Store<SignerState>,
    bindings: Signer,
    deadline_ticks: u64,
}

impl Session {
    /// Changes the deadline of this session's later calls.
    pub fn set_call_deadline(&mut self, deadline: Duration) {
        self.deadline_ticks = ticks(deadline);
    }

    /// Parses secret records into a Standard Webhooks keyring.
    pub fn parse_keyring(
        &mut self,
        records: &[hooksign::SecretRecord],
    ) -> Result<KeyringHandle, HostError> {
        self.parse_keyring_for(hooksign::Scheme::StandardWebhooks, records)
    }

    /// Parses secret records into a keyring of `scheme`.
    pub fn parse_keyring_for(
        &mut self,
        scheme: hooksign::Scheme,
        records: &[hooksign::SecretRecord],
    ) -> Result<KeyringHandle, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let records: Vec<signing::SecretRecord> = records.iter().map(to_wit_record).collect();
        let keyring = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_parse(&mut self.store, &records, Some(to_wit_scheme(scheme)))?;
        Ok(KeyringHandle(keyring.map_err(from_wit_error)?))
    }

    /// The `webhook-signature` value for a message.
    pub fn sign(
        &mut self,
        keyring: KeyringHandle,
        id: &str,
        timestamp: i64,
        payload: &[u8],
    ) -> Result<String, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let signed = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_sign(&mut self.store, keyring.0, id, timestamp, payload)?;
        Ok(signed.map_err(from_wit_error)?)
    }

    /// Verifies a delivery; `None` takes the component's clock and the default tolerance.
    pub fn verify(
        &mut self,
        keyring: KeyringHandle,
        headers: &[(String, String)],
        payload: &[u8],
        now: Option<i64>,
        tolerance_seconds: Option<u32>,
    ) -> Result<hooksign::Verified<'static>, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let verified = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_verify(
                &mut self.store,
                keyring.0,
                headers,
                payload,
                now,
                tolerance_seconds,
            )?;
        let verified = verified.map_err(from_wit_error)?;
        Ok(hooksign::Verified {
            secret: verified.secret as usize,
            id: verified.id.into(),
            timestamp: verified.timestamp,
        })
    }

    /// Verifies a delivery from the header values its scheme reads
    /// (`verify-values`); `None` takes the component's clock and the
    /// default tolerance. The result has no id: it is `values.id`.
    pub fn verify_values(
        &mut self,
        keyring: KeyringHandle,
        values: hooksign::HeaderValues<'_>,
        payload: &[u8],
        now: Option<i64>,
        tolerance_seconds: Option<u32>,
    ) -> Result<VerifiedValues, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let verified = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_verify_values(
                &mut self.store,
                keyring.0,
                values.id,
                values.timestamp,
                values.signature.unwrap_or_default(),
                payload,
                now,
                tolerance_seconds,
            )?;
        let verified = verified.map_err(from_wit_error)?;
        Ok(VerifiedValues {
            secret: verified.secret as usize,
            timestamp: verified.timestamp,
        })
    }

    /// A rotated copy of a keyring.
    pub fn rotate(
        &mut self,
        keyring: KeyringHandle,
        new_secret: &str,
        now: Option<i64>,
        grace_seconds: Option<u32>,
    ) -> Result<KeyringHandle, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let rotated = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_rotate(&mut self.store, keyring.0, new_secret, now, grace_seconds)?;
        Ok(KeyringHandle(rotated.map_err(from_wit_error)?))
    }

    /// Indices of the secrets usable at `now`.
    pub fn active(
        &mut self,
        keyring: KeyringHandle,
        now: Option<i64>,
    ) -> Result<Vec<u32>, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        Ok(self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_active(&mut self.store, keyring.0, now)?)
    }

    /// The keyring's secret records, to persist it.
    pub fn secrets(
        &mut self,
        keyring: KeyringHandle,
    ) -> Result<Vec<hooksign::SecretRecord>, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let records = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_secrets(&mut self.store, keyring.0)?;
        Ok(records.into_iter().map(from_wit_record).collect())
    }

    /// The keyring's Ed25519 public keys with their windows.
    pub fn public_keys(
        &mut self,
        keyring: KeyringHandle,
    ) -> Result<Vec<hooksign::SecretRecord>, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let records = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_public_keys(&mut self.store, keyring.0)?;
        Ok(records.into_iter().map(from_wit_record).collect())
    }

    /// A new random secret.
    pub fn generate_secret(&mut self) -> Result<String, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        Ok(self
            .bindings
            .hooksign_webhooks_signing()
            .call_generate_secret(&mut self.store)?)
    }

    /// A new random Ed25519 signing key, `whsk_`.
    pub fn generate_ed25519_key(&mut self) -> Result<String, HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        Ok(self
            .bindings
            .hooksign_webhooks_signing()
            .call_generate_key(&mut self.store, signing::KeyKind::Ed25519)?)
    }

    /// Frees a keyring inside the instance.
    pub fn drop_keyring(&mut self, keyring: KeyringHandle) -> Result<(), HostError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        Ok(keyring.0.resource_drop(&mut self.store)?)
    }
}

fn to_wit_record(record: &hooksign::SecretRecord) -> signing::SecretRecord {
    signing::SecretRecord {
        key: record.key.clone(),
        not_before: record.not_before,
        not_after: record.not_after,
    }
}

fn from_wit_record(record: signing::SecretRecord) -> hooksign::SecretRecord {
    hooksign::SecretRecord {
        key: record.key,
        not_before: record.not_before,
        not_after: record.not_after,
    }
}

fn to_wit_scheme(scheme: hooksign::Scheme) -> signing::Scheme {
    match scheme {
        hooksign::Scheme::StandardWebhooks => signing::Scheme::StandardWebhooks,
        hooksign::Scheme::Stripe => signing::Scheme::Stripe,
        hooksign::Scheme::Github => signing::Scheme::Github,
        hooksign::Scheme::Slack => signing::Scheme::Slack,
        hooksign::Scheme::Shopify => signing::Scheme::Shopify,
    }
}

fn from_wit_error(error: signing::Error) -> hooksign::Error {
    match error {
        signing::Error::MissingHeader => hooksign::Error::MissingHeader,
        signing::Error::InvalidHeader => hooksign::Error::InvalidHeader,
        signing::Error::TimestampTooOld => hooksign::Error::TimestampTooOld,
        signing::Error::TimestampTooNew => hooksign::Error::TimestampTooNew,
        signing::Error::NoUsableSecret => hooksign::Error::NoUsableSecret,
        signing::Error::NoMatchingSignature => hooksign::Error::NoMatchingSignature,
        signing::Error::InvalidSecret => hooksign::Error::InvalidSecret,
        signing::Error::InvalidInput => hooksign::Error::InvalidInput,
        signing::Error::TooManySecrets => hooksign::Error::TooManySecrets,
    }
}
