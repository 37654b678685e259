use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;
use crate::encoding::{LENIENT_BASE64, STANDARD_BASE64};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 24;
/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 64;
/// The length of a generated key, in bytes.
pub const GENERATED_KEY_LEN: usize = 32;

/// A decoded signing key with its HMAC-SHA256 state already keyed, so each
/// signature costs only the hashing of the message.
///
/// `Debug` shows no key bytes, and there is no `Display`: the text form is
/// only written by [`Secret::to_text`]. The key bytes are zeroed on drop
/// (the keyed HMAC state is not: `hmac` offers no way to).
#[derive(Clone)]
pub struct Secret {
    key: Zeroizing<Vec<u8>>,
    mac: HmacSha256,
}

impl Secret {
    /// Parses `whsec_<base64>` or bare base64 (standard alphabet, padding
    /// optional) of a 24-to-64-byte key.
    pub fn parse(text: &str) -> Result<Secret, Error> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        // Reject oversized text before decoding it.
        if encoded.len() > MAX_KEY_LEN.div_ceil(3) * 4 {
            return Err(Error::InvalidSecret);
        }
        let key = Zeroizing::new(
            LENIENT_BASE64
                .decode(encoded)
                .map_err(|_| Error::InvalidSecret)?,
        );
        Secret::from_bytes(&key)
    }

    /// Takes a raw key of 24 to 64 bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Secret, Error> {
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(Error::InvalidSecret);
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|_| Error::InvalidSecret)?;
        Ok(Secret {
            key: Zeroizing::new(key.to_vec()),
            mac,
        })
    }

    /// A new secret of 32 random bytes from the operating system (or WASI).
    pub fn generate() -> Result<Secret, RandomUnavailable> {
        let mut key = Zeroizing::new([0u8; GENERATED_KEY_LEN]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| RandomUnavailable)?;
        Secret::from_bytes(key.as_slice()).map_err(|_| RandomUnavailable)
    }

    /// The text form, `whsec_` and padded base64. Treat the result as the
    /// secret itself.
    pub fn to_text(&self) -> String {
        let mut text = String::from(SECRET_PREFIX);
        STANDARD_BASE64.encode_string(&self.key, &mut text);
        text
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.key.len()
    }

    /// Always false: a secret holds at least 24 bytes.
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// HMAC-SHA256 over the signed content `{id}.{timestamp}.{payload}`.
    pub(crate) fn tag(&self, id: &str, timestamp: &str, payload: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
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
    /// `whsec_<base64>` or bare base64.
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
