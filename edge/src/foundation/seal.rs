//! Secrets at rest. An endpoint's keyring, and its sensitive custom
//! headers, are stored sealed
//! (XChaCha20-Poly1305, a random 24-byte nonce per sealing, the endpoint's
//! id as associated data so that a sealed keyring cannot be moved to
//! another endpoint) under the first key of the secret variable
//! `sealing_keys`; every key listed there unseals, so the sealing key can be
//! rotated: list the new key first and keep the old one until every record
//! has been written again. Without `sealing_keys` the service refuses to
//! store or use a secret, unless `insecure_plaintext_secrets=true`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hooksign::SecretRecord;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::foundation::problem::{Code, Problem};
use crate::ids::EndpointId;

/// A secret value as stored: sealed, or in clear (written under
/// `insecure_plaintext_secrets`, or before sealing was configured).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stored<T> {
    /// `{"sealed": {"key", "nonce", "data"}}`.
    Sealed { sealed: Sealed },
    /// The value in clear.
    Plain(T),
}

/// An endpoint's keyring as stored.
pub type StoredSecrets = Stored<Vec<SecretRecord>>;

/// An endpoint's sensitive custom headers as stored, by name.
pub type StoredHeaders = Stored<BTreeMap<String, String>>;

/// What a sealed value is: part of its associated data, so that one kind
/// cannot be opened as another.
#[derive(Clone, Copy)]
enum Purpose {
    Keyring,
    Headers,
}

/// A sealed value: the sealing key's id, the nonce and the ciphertext with
/// its tag, base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    key: String,
    nonce: String,
    data: String,
}

/// A key of `sealing_keys`; its bytes never leave the cipher.
#[derive(Clone)]
pub struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// How stored secrets are kept, from the variables.
#[derive(Clone)]
pub enum SecretPolicy {
    /// Sealed under the first key; any key unseals.
    Seal(Vec<SealingKey>),
    /// `insecure_plaintext_secrets=true` without `sealing_keys`.
    Plaintext,
    /// Neither: secrets are neither stored nor used.
    Refuse,
}

impl std::fmt::Debug for SecretPolicy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretPolicy::Seal(keys) => {
                let ids: Vec<&str> = keys.iter().map(|key| key.id.as_str()).collect();
                formatter.debug_tuple("Seal").field(&ids).finish()
            }
            SecretPolicy::Plaintext => formatter.write_str("Plaintext"),
            SecretPolicy::Refuse => formatter.write_str("Refuse"),
        }
    }
}

fn misconfigured(detail: impl Into<String>) -> Problem {
    Problem::new(Code::InvalidConfiguration, detail)
}

fn unusable() -> Problem {
    Problem::new(
        Code::InvalidKeyring,
        "the endpoint's sealed secrets do not open with their sealing key",
    )
}

/// A sealing key's id: 1 to 32 letters, digits, `-` or `_`.
fn is_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The associated data of an endpoint's sealed value.
fn context(endpoint: &EndpointId, purpose: Purpose) -> Vec<u8> {
    match purpose {
        Purpose::Keyring => format!("hooksign endpoint secrets {endpoint}").into_bytes(),
        Purpose::Headers => format!("hooksign endpoint headers {endpoint}").into_bytes(),
    }
}

impl SecretPolicy {
    /// From `sealing_keys` (`ID:BASE64` entries of 32-byte keys, comma
    /// separated) and `insecure_plaintext_secrets`; `None` if malformed.
    pub fn from_variables(sealing_keys: Option<&str>, insecure_plaintext: bool) -> Option<Self> {
        let Some(text) = sealing_keys.map(str::trim).filter(|text| !text.is_empty()) else {
            return Some(if insecure_plaintext {
                SecretPolicy::Plaintext
            } else {
                SecretPolicy::Refuse
            });
        };
        let mut keys: Vec<SealingKey> = Vec::new();
        for entry in text.split(',') {
            let (id, encoded) = entry.trim().split_once(':')?;
            if !is_key_id(id) || keys.iter().any(|key| key.id == id) {
                return None;
            }
            let bytes = Zeroizing::new(STANDARD.decode(encoded.trim()).ok()?);
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes).ok()?;
            keys.push(SealingKey {
                id: id.to_string(),
                cipher,
            });
        }
        Some(SecretPolicy::Seal(keys))
    }

    /// The endpoint's keyring, unsealed.
    pub fn open(
        &self,
        endpoint: &EndpointId,
        stored: &StoredSecrets,
    ) -> Result<Vec<SecretRecord>, Problem> {
        self.open_as(endpoint, Purpose::Keyring, stored)
    }

    /// The keyring to store for the endpoint.
    pub fn close(
        &self,
        endpoint: &EndpointId,
        records: &[SecretRecord],
    ) -> Result<StoredSecrets, Problem> {
        self.close_as(endpoint, Purpose::Keyring, &records.to_vec())
    }

    /// The endpoint's sensitive headers, unsealed.
    pub fn open_headers(
        &self,
        endpoint: &EndpointId,
        stored: &StoredHeaders,
    ) -> Result<BTreeMap<String, String>, Problem> {
        self.open_as(endpoint, Purpose::Headers, stored)
    }

    /// The sensitive headers to store for the endpoint.
    pub fn close_headers(
        &self,
        endpoint: &EndpointId,
        headers: &BTreeMap<String, String>,
    ) -> Result<StoredHeaders, Problem> {
        self.close_as(endpoint, Purpose::Headers, headers)
    }

    fn open_as<T: Clone + serde::de::DeserializeOwned>(
        &self,
        endpoint: &EndpointId,
        purpose: Purpose,
        stored: &Stored<T>,
    ) -> Result<T, Problem> {
        match (self, stored) {
            (SecretPolicy::Refuse, _) => Err(refused()),
            (_, Stored::Plain(value)) => Ok(value.clone()),
            (SecretPolicy::Plaintext, Stored::Sealed { .. }) => Err(misconfigured(
                "this endpoint's secrets are sealed and the variable sealing_keys is not set",
            )),
            (SecretPolicy::Seal(keys), Stored::Sealed { sealed }) => {
                let key = keys.iter().find(|key| key.id == sealed.key).ok_or_else(|| {
                    misconfigured(format!(
                        "this endpoint's secrets are sealed with the key {}, which sealing_keys no longer lists",
                        sealed.key
                    ))
                })?;
                let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| unusable())?;
                let nonce = XNonce::try_from(nonce.as_slice()).map_err(|_| unusable())?;
                let data = STANDARD.decode(&sealed.data).map_err(|_| unusable())?;
                let aad = context(endpoint, purpose);
                let payload = Payload {
                    msg: &data,
                    aad: &aad,
                };
                let plain = Zeroizing::new(
                    key.cipher
                        .decrypt(&nonce, payload)
                        .map_err(|_| unusable())?,
                );
                serde_json::from_slice(&plain).map_err(|_| unusable())
            }
        }
    }

    fn close_as<T: Clone + Serialize>(
        &self,
        endpoint: &EndpointId,
        purpose: Purpose,
        value: &T,
    ) -> Result<Stored<T>, Problem> {
        let keys = match self {
            SecretPolicy::Refuse => return Err(refused()),
            SecretPolicy::Plaintext => return Ok(Stored::Plain(value.clone())),
            SecretPolicy::Seal(keys) => keys,
        };
        let Some(key) = keys.first() else {
            return Err(refused());
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(value).map_err(|_| misconfigured("unserialisable secret"))?,
        );
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|_| Problem::random_unavailable())?;
        let aad = context(endpoint, purpose);
        let payload = Payload {
            msg: &plain,
            aad: &aad,
        };
        let data = key
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| unusable())?;
        Ok(Stored::Sealed {
            sealed: Sealed {
                key: key.id.clone(),
                nonce: STANDARD.encode(nonce),
                data: STANDARD.encode(data),
            },
        })
    }

    /// Whether a stored value should be written again: in clear or under
    /// another key while sealing is on.
    pub fn stale<T>(&self, stored: &Stored<T>) -> bool {
        match (self, stored) {
            (SecretPolicy::Seal(keys), Stored::Plain(_)) => !keys.is_empty(),
            (SecretPolicy::Seal(keys), Stored::Sealed { sealed }) => {
                keys.first().is_some_and(|first| first.id != sealed.key)
            }
            _ => false,
        }
    }
}

/// A new `sealing_keys` entry: `ID:` and 32 random bytes, base64; `None`
/// if the id is not 1 to 32 letters, digits, `-` or `_`.
pub fn new_sealing_key(id: &str) -> Option<Result<String, getrandom::Error>> {
    if !is_key_id(id) {
        return None;
    }
    let mut key = Zeroizing::new([0u8; 32]);
    Some(getrandom::fill(key.as_mut_slice()).map(|()| format!("{id}:{}", STANDARD.encode(*key))))
}

fn refused() -> Problem {
    misconfigured(
        "signing secrets are stored sealed: set the secret variable sealing_keys (or insecure_plaintext_secrets=true for local experiments)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";

    fn policy(text: &str) -> SecretPolicy {
        SecretPolicy::from_variables(Some(text), false).unwrap_or(SecretPolicy::Refuse)
    }

    /// Endpoint `n`'s id.
    fn endpoint(n: u8) -> EndpointId {
        let id = EndpointId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02}"));
        id.unwrap_or_else(|| unreachable!("a UUID"))
    }

    fn keyring() -> Vec<SecretRecord> {
        vec![SecretRecord::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    }

    #[test]
    fn a_sealed_keyring_opens_with_any_listed_key_for_its_endpoint_only() {
        let sealed = policy(K1)
            .close(&endpoint(1), &keyring())
            .unwrap_or(StoredSecrets::Plain(vec![]));
        let text = serde_json::to_string(&sealed).unwrap_or_default();
        assert!(text.starts_with("{\"sealed\":{\"key\":\"k1\""), "{text}");
        assert!(!text.contains("whsec_") && !text.contains("MfKQ9r8"));
        let rotated = policy(&format!("{K2},{K1}"));
        assert!(
            rotated
                .open(&endpoint(1), &sealed)
                .is_ok_and(|opened| opened == keyring())
        );
        assert!(rotated.stale(&sealed));
        let moved = rotated
            .open(&endpoint(2), &sealed)
            .err()
            .map(|problem| problem.code());
        assert_eq!(moved, Some("invalid_keyring"));
        let dropped = policy(K2)
            .open(&endpoint(1), &sealed)
            .err()
            .map(|problem| problem.code());
        assert_eq!(dropped, Some("invalid_configuration"));
    }

    #[test]
    fn sealed_headers_open_as_headers_only() {
        let headers = BTreeMap::from([("authorization".to_string(), "Bearer s3cret".to_string())]);
        let sealed = policy(K1).close_headers(&endpoint(1), &headers);
        let sealed = sealed.unwrap_or(Stored::Plain(BTreeMap::new()));
        let text = serde_json::to_string(&sealed).unwrap_or_default();
        assert!(
            text.starts_with("{\"sealed\"") && !text.contains("s3cret"),
            "{text}"
        );
        let opened = policy(K1).open_headers(&endpoint(1), &sealed);
        assert!(opened.is_ok_and(|opened| opened == headers));
        // The same ciphertext as a keyring does not open.
        let Stored::Sealed { sealed } = sealed else {
            unreachable!("sealed above")
        };
        let as_keyring: StoredSecrets = Stored::Sealed { sealed };
        assert!(policy(K1).open(&endpoint(1), &as_keyring).is_err());
    }

    #[test]
    fn malformed_keys_are_refused_and_never_shown() {
        for text in [
            "k1",
            "k1:short",
            ":AAAA",
            "k 1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            &format!("{K1},{K1}"),
        ] {
            assert!(
                SecretPolicy::from_variables(Some(text), false).is_none(),
                "{text}"
            );
        }
        let shown = format!("{:?}", policy(&format!("{K1},{K2}")));
        assert_eq!(shown, "Seal([\"k1\", \"k2\"])");
    }

    #[test]
    fn without_sealing_keys_secrets_are_refused_unless_plaintext_is_allowed() {
        let refuse = SecretPolicy::from_variables(None, false);
        let closed = refuse.map(|policy| policy.close(&endpoint(1), &keyring()).is_err());
        assert_eq!(closed, Some(true));
        let plain = SecretPolicy::from_variables(None, true);
        let closed = plain.and_then(|policy| policy.close(&endpoint(1), &keyring()).ok());
        assert!(closed.is_some_and(|stored| stored == StoredSecrets::Plain(keyring())));
    }
}
