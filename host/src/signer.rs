use std::path::Path;

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Engine, Store};

use crate::spin::{self, KeyValueFile, SpinState};

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
/// signer component, or the edge component, which exports it too. The linker
/// offers WASI, wasi:http and Spin's imports (backed by a store in memory) so
/// that either loads; the signer imports only clocks, random and what std
/// links.
#[derive(Clone)]
pub struct SignerComponent {
    engine: Engine,
    pre: SignerPre<SpinState>,
    store: KeyValueFile,
}

impl SignerComponent {
    /// Loads and compiles a component file.
    pub fn load(path: &Path) -> Result<SignerComponent, HostError> {
        let bytes = std::fs::read(path).map_err(|source| HostError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SignerComponent::from_bytes(&bytes)
    }

    /// Compiles a component from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignerComponent, HostError> {
        let engine = Engine::default();
        let component = Component::new(&engine, bytes)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        spin::add_to_linker(&mut linker)?;
        let pre = SignerPre::new(linker.instantiate_pre(&component)?)?;
        let store = KeyValueFile::in_memory().map_err(wasmtime::Error::msg)?;
        Ok(SignerComponent { engine, pre, store })
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
        let state = SpinState::new(self.store.clone(), Arc::new(HashMap::new()));
        let mut store = state.into_store(&self.engine);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok(Session { store, bindings })
    }
}

/// A keyring living inside one [`Session`]'s instance.
#[derive(Debug, Clone, Copy)]
pub struct KeyringHandle(ResourceAny);

/// One instance of the signer component and its store. Keyrings made in a
/// session can only be used in that session.
pub struct Session {
    store: Store<SpinState>,
    bindings: Signer,
}

impl Session {
    /// Parses secret records into a keyring.
    pub fn parse_keyring(
        &mut self,
        records: &[hooksign::SecretRecord],
    ) -> Result<KeyringHandle, HostError> {
        let records: Vec<signing::SecretRecord> = records.iter().map(to_wit_record).collect();
        let keyring = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_parse(&mut self.store, &records)?;
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
    ) -> Result<hooksign::Verified, HostError> {
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
            id: verified.id,
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
        let records = self
            .bindings
            .hooksign_webhooks_signing()
            .keyring()
            .call_secrets(&mut self.store, keyring.0)?;
        Ok(records.into_iter().map(from_wit_record).collect())
    }

    /// A new random secret.
    pub fn generate_secret(&mut self) -> Result<String, HostError> {
        Ok(self
            .bindings
            .hooksign_webhooks_signing()
            .call_generate_secret(&mut self.store)?)
    }

    /// Frees a keyring inside the instance.
    pub fn drop_keyring(&mut self, keyring: KeyringHandle) -> Result<(), HostError> {
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
