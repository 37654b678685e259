use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::encoding::{LENIENT_BASE64, STANDARD_BASE64};
use crate::{Error, Scheme};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The prefix of an HMAC secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// The prefix of an Ed25519 signing key's text form (Standard Webhooks `v1a`).
pub const SIGNING_KEY_PREFIX: &str = "whsk_";
/// The prefix of an Ed25519 public key's text form.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// The shortest HMAC key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 24;
/// The longest HMAC key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 64;
/// The length of a generated HMAC key, in bytes.
pub const GENERATED_KEY_LEN: usize = 32;
/// The longest provider secret (a scheme other than Standard Webhooks), in bytes.
pub const MAX_TEXT_SECRET_LEN: usize = 256;

/// What a key is, and so what it signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A shared HMAC-SHA256 secret (`whsec_`, or a provider's secret text):
    /// signs and verifies `v1` and the providers' schemes.
    HmacSha256,
    /// An Ed25519 signing key (`whsk_`): signs and verifies `v1a`.
    Ed25519,
    /// An Ed25519 public key (`whpk_`): verifies `v1a` only.
    Ed25519Public,
}

/// A decoded key of one of the [`KeyKind`]s, ready to use: an HMAC secret
/// with its HMAC-SHA256 state already keyed (each signature costs only the
/// hashing), or an Ed25519 key pair or public key.
///
/// `Debug` shows only the kind, and there is no `Display`: the text form is
/// only written by [`Secret::to_text`]. Key bytes are zeroed on drop (the
/// keyed HMAC state is not: `hmac` offers no way to).
#[derive(Clone)]
pub struct Secret(Key);

#[derive(Clone)]
enum Key {
    Hmac {
        key: Zeroizing<Vec<u8>>,
        mac: HmacSha256,
        /// A provider's secret text, used as its UTF-8 bytes (not base64).
        text: bool,
    },
    Ed25519(SigningKey),
    Ed25519Public(VerifyingKey),
}

impl Secret {
    /// Parses a Standard Webhooks key by its prefix: `whsk_` (base64 of a
    /// 32-byte Ed25519 seed, or of the 64-byte seed and public key, whose
    /// public half must match), `whpk_` (base64 of a 32-byte Ed25519 public
    /// key), or `whsec_<base64>` and bare base64 of a 24-to-64-byte HMAC key.
    /// Padding is optional.
    pub fn parse(text: &str) -> Result<Secret, Error> {
        if let Some(encoded) = text.strip_prefix(SIGNING_KEY_PREFIX) {
            let bytes = decode_key(encoded, 64)?;
            let key = match bytes.len() {
                32 => SigningKey::from_bytes(array(&bytes)?),
                64 => SigningKey::from_keypair_bytes(array(&bytes)?)
                    .map_err(|_| Error::InvalidSecret)?,
                _ => return Err(Error::InvalidSecret),
            };
            return Ok(Secret(Key::Ed25519(key)));
        }
        if let Some(encoded) = text.strip_prefix(PUBLIC_KEY_PREFIX) {
            let bytes = decode_key(encoded, 32)?;
            let key = VerifyingKey::from_bytes(array(&bytes)?).map_err(|_| Error::InvalidSecret)?;
            // A small-order key lets one signature verify for many messages.
            if key.is_weak() {
                return Err(Error::InvalidSecret);
            }
            return Ok(Secret(Key::Ed25519Public(key)));
        }
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        Secret::from_bytes(&decode_key(encoded, MAX_KEY_LEN)?)
    }

    /// Parses a key as a keyring of `scheme` holds it: [`Secret::parse`] for
    /// Standard Webhooks; for the providers' schemes the text itself, 1 to 256
    /// bytes, is the HMAC key (as Stripe uses its `whsec_` secrets).
    pub fn parse_for(scheme: Scheme, text: &str) -> Result<Secret, Error> {
        if scheme == Scheme::StandardWebhooks {
            return Secret::parse(text);
        }
        if !(1..=MAX_TEXT_SECRET_LEN).contains(&text.len()) {
            return Err(Error::InvalidSecret);
        }
        Secret::hmac(text.as_bytes(), true)
    }

    /// Takes a raw HMAC key of 24 to 64 bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Secret, Error> {
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(Error::InvalidSecret);
        }
        Secret::hmac(key, false)
    }

    /// `text`: a provider's secret, written back as given.
    fn hmac(key: &[u8], text: bool) -> Result<Secret, Error> {
        let mac = HmacSha256::new_from_slice(key).map_err(|_| Error::InvalidSecret)?;
        Ok(Secret(Key::Hmac {
            key: Zeroizing::new(key.to_vec()),
            mac,
            text,
        }))
    }

    /// A new HMAC secret of 32 random bytes from the operating system (or WASI).
    pub fn generate() -> Result<Secret, RandomUnavailable> {
        Secret::from_bytes(random_seed()?.as_slice()).map_err(|_| RandomUnavailable)
    }

    /// A new Ed25519 signing key from a 32-byte random seed.
    pub fn generate_ed25519() -> Result<Secret, RandomUnavailable> {
        Ok(Secret(Key::Ed25519(SigningKey::from_bytes(
            &*random_seed()?
        ))))
    }

    /// The text form: `whsec_` and padded base64 of an HMAC key (a
    /// provider's secret as given), `whsk_` and padded base64 of an Ed25519
    /// key's 32-byte seed, `whpk_` and padded base64 of a public key. Treat
    /// the first two as the secret itself.
    pub fn to_text(&self) -> String {
        let (prefix, bytes): (&str, &[u8]) = match &self.0 {
            Key::Hmac {
                key, text: true, ..
            } => {
                return String::from_utf8_lossy(key).into_owned();
            }
            Key::Hmac { key, .. } => (SECRET_PREFIX, key),
            Key::Ed25519(key) => (SIGNING_KEY_PREFIX, key.as_bytes()),
            Key::Ed25519Public(key) => (PUBLIC_KEY_PREFIX, key.as_bytes()),
        };
        let mut text = String::from(prefix);
        STANDARD_BASE64.encode_string(bytes, &mut text);
        text
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self.0 {
            Key::Hmac { .. } => KeyKind::HmacSha256,
            Key::Ed25519(_) => KeyKind::Ed25519,
            Key::Ed25519Public(_) => KeyKind::Ed25519Public,
        }
    }

    /// The public key of an Ed25519 key (itself, for a public key); `None`
    /// for an HMAC secret, which has none.
    pub fn public_key(&self) -> Option<Secret> {
        match &self.0 {
            Key::Hmac { .. } => None,
            Key::Ed25519(key) => Some(Secret(Key::Ed25519Public(key.verifying_key()))),
            Key::Ed25519Public(key) => Some(Secret(Key::Ed25519Public(*key))),
        }
    }

    /// The key's length in bytes (an Ed25519 key's: 32).
    pub fn len(&self) -> usize {
        match &self.0 {
            Key::Hmac { key, .. } => key.len(),
            Key::Ed25519(_) | Key::Ed25519Public(_) => 32,
        }
    }

    /// Always false: every key holds bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// HMAC-SHA256 over the concatenation of `parts`; `None` for an Ed25519 key.
    pub(crate) fn hmac_of(&self, parts: &[&[u8]]) -> Option<[u8; 32]> {
        let Key::Hmac { mac, .. } = &self.0 else {
            return None;
        };
        let mut mac = mac.clone();
        for part in parts {
            mac.update(part);
        }
        Some(mac.finalize().into_bytes().into())
    }

    /// The Ed25519 signature of `message`; `None` unless this is a signing key.
    pub(crate) fn ed25519_sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        use ed25519_dalek::Signer as _;
        let Key::Ed25519(key) = &self.0 else {
            return None;
        };
        Some(key.sign(message).to_bytes())
    }

    /// Whether `signature` is this Ed25519 key's over `message`, checked
    /// strictly (no malleable signature, no small-order component); false
    /// for an HMAC secret.
    pub(crate) fn ed25519_verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let key = match &self.0 {
            Key::Hmac { .. } => return false,
            Key::Ed25519(key) => key.verifying_key(),
            Key::Ed25519Public(key) => *key,
        };
        key.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

/// Base64 (padding optional) of at most `max` bytes, checked for size
/// before it is decoded.
fn decode_key(encoded: &str, max: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    if encoded.len() > max.div_ceil(3) * 4 {
        return Err(Error::InvalidSecret);
    }
    LENIENT_BASE64
        .decode(encoded)
        .map(Zeroizing::new)
        .map_err(|_| Error::InvalidSecret)
}

fn array<const N: usize>(bytes: &[u8]) -> Result<&[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::InvalidSecret)
}

fn random_seed() -> Result<Zeroizing<[u8; GENERATED_KEY_LEN]>, RandomUnavailable> {
    let mut seed = Zeroizing::new([0u8; GENERATED_KEY_LEN]);
    getrandom::fill(seed.as_mut_slice()).map_err(|_| RandomUnavailable)?;
    Ok(seed)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?}, ..)", self.kind())
    }
}

/// The random source failed; no secret could be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomUnavailable;

impl fmt::Display for RandomUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the system random source is unavailable")
    }
}

impl core::error::Error for RandomUnavailable {}

/// When a secret may be used: from `not_before` (inclusive) until
/// `not_after` (exclusive), each bound optional. Unix seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Window {
    /// The first second the secret is usable, if bounded.
    pub not_before: Option<i64>,
    /// The first second the secret is no longer usable, if bounded.
    pub not_after: Option<i64>,
}

impl Window {
    /// Whether the secret is usable at `now`.
    pub fn contains(&self, now: i64) -> bool {
        self.not_before.is_none_or(|start| start <= now)
            && self.not_after.is_none_or(|end| now < end)
    }
}

/// A secret in its text form with its validity window: what is stored,
/// configured and exchanged (`{"key": "whsec_…", "notBefore": …, "notAfter": …}`).
///
/// `Debug` hides the key. (Its text is not zeroed on drop: a `Drop` would
/// forbid building records with `..SecretRecord::new(key)`.)
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "camelCase", deny_unknown_fields)
)]
pub struct SecretRecord {
    /// The key's text form (see [`Secret::parse`] and [`Secret::parse_for`]).
    pub key: String,
    /// The first second the secret is usable, if bounded.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub not_before: Option<i64>,
    /// The first second the secret is no longer usable, if bounded.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub not_after: Option<i64>,
}

impl SecretRecord {
    /// A record with no validity window.
    pub fn new(key: impl Into<String>) -> SecretRecord {
        SecretRecord {
            key: key.into(),
            not_before: None,
            not_after: None,
        }
    }

    /// The record's validity window.
    pub fn window(&self) -> Window {
        Window {
            not_before: self.not_before,
            not_after: self.not_after,
        }
    }
}

impl fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRecord")
            .field("key", &"..")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}
