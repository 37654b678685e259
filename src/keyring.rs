use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use base64::Engine as _;

use crate::encoding::STANDARD_BASE64;
use crate::{Error, KeyKind, Scheme, Secret, SecretRecord, Window};

/// The longest message id accepted for signing, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// The default rotation grace: the previous secret stays valid for 24 hours.
pub const DEFAULT_GRACE_SECONDS: u32 = 86_400;
/// The longest rotation grace: seven days.
pub const MAX_GRACE_SECONDS: u32 = 604_800;
/// How many previous secrets a rotation may keep.
pub const MAX_PREVIOUS_SECRETS: usize = 10;

/// A secret and the window in which it may be used.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The decoded, ready-to-use key.
    pub secret: Secret,
    /// When it may be used.
    pub window: Window,
}

/// An ordered list of secrets, the current one first, parsed once so that
/// signing and verification do no key work; with the [`Scheme`] it signs
/// and verifies.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<KeyEntry>,
    scheme: Scheme,
}

/// The headers of a signed delivery, in sending order.
pub type SignedHeaders = Vec<(&'static str, String)>;

impl Keyring {
    /// A Standard Webhooks keyring of already parsed entries, in order.
    pub fn new(entries: Vec<KeyEntry>) -> Keyring {
        Keyring {
            entries,
            scheme: Scheme::StandardWebhooks,
        }
    }

    /// Parses secret records of a Standard Webhooks keyring (any mix of
    /// `whsec_`, `whsk_` and `whpk_` keys); any invalid key is
    /// [`Error::InvalidSecret`].
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = &'a SecretRecord>,
    ) -> Result<Keyring, Error> {
        Keyring::from_records_for(Scheme::StandardWebhooks, records)
    }

    /// Parses secret records for `scheme` (keys read by [`Secret::parse_for`]).
    pub fn from_records_for<'a>(
        scheme: Scheme,
        records: impl IntoIterator<Item = &'a SecretRecord>,
    ) -> Result<Keyring, Error> {
        let entries = records
            .into_iter()
            .map(|record| {
                Ok(KeyEntry {
                    secret: Secret::parse_for(scheme, &record.key)?,
                    window: record.window(),
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Keyring { entries, scheme })
    }

    /// The scheme it signs and verifies.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The records to persist this keyring: text keys and windows.
    pub fn to_records(&self) -> Vec<SecretRecord> {
        self.entries
            .iter()
            .map(|entry| SecretRecord {
                key: entry.secret.to_text(),
                not_before: entry.window.not_before,
                not_after: entry.window.not_after,
            })
            .collect()
    }

    /// The records a receiver needs to verify `v1a` signatures and cannot
    /// sign with: each Ed25519 key's public key (`whpk_`) with its window,
    /// in keyring order. HMAC secrets have no public form and are left out.
    pub fn public_records(&self) -> Vec<SecretRecord> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let public = entry.secret.public_key()?;
                Some(SecretRecord {
                    key: public.to_text(),
                    not_before: entry.window.not_before,
                    not_after: entry.window.not_after,
                })
            })
            .collect()
    }

    /// The entries, current first.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// How many secrets the keyring holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the keyring holds no secret.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The indices of the secrets usable at `now`, in keyring order.
    pub fn active(&self, now: i64) -> Vec<usize> {
        self.usable(now).map(|(index, _)| index).collect()
    }

    pub(crate) fn usable(&self, now: i64) -> impl Iterator<Item = (usize, &Secret)> {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, entry)| entry.window.contains(now))
            .map(|(index, entry)| (index, &entry.secret))
    }

    /// The signature header's value for a message. Standard Webhooks: one
    /// entry per key usable at `timestamp`, in keyring order, space-separated:
    /// `v1,<base64>` for an HMAC secret, `v1a,<base64>` for an Ed25519
    /// signing key (public keys cannot sign and are skipped). A provider's
    /// scheme: its own value, with the first usable secret (Stripe: one `v1`
    /// per usable secret).
    ///
    /// The id must be 1 to 256 printable ASCII bytes without `.` or space and
    /// the timestamp non-negative ([`Error::InvalidInput`]); at least one
    /// key must be able to sign ([`Error::NoUsableSecret`]).
    pub fn sign(&self, id: &str, timestamp: i64, payload: &[u8]) -> Result<String, Error> {
        if !is_valid_message_id(id) || timestamp < 0 {
            return Err(Error::InvalidInput);
        }
        let mut digits = itoa::Buffer::new();
        let timestamp_text = digits.format(timestamp);
        if self.scheme != Scheme::StandardWebhooks {
            return self.sign_provider(timestamp_text, payload, timestamp);
        }
        let content = self.scheme.signed_parts(id, timestamp_text, payload);
        // Built once, and only for an Ed25519 key.
        let mut joined: Option<Vec<u8>> = None;
        let mut header = String::new();
        for (_, secret) in self.usable(timestamp) {
            let (version, signature) = match secret.kind() {
                KeyKind::HmacSha256 => match secret.hmac_of(&content) {
                    Some(tag) => ("v1,", STANDARD_BASE64.encode(tag)),
                    None => continue,
                },
                KeyKind::Ed25519 => {
                    let joined = joined.get_or_insert_with(|| content.concat());
                    match secret.ed25519_sign(joined) {
                        Some(signature) => ("v1a,", STANDARD_BASE64.encode(signature)),
                        None => continue,
                    }
                }
                KeyKind::Ed25519Public => continue,
            };
            if !header.is_empty() {
                header.push(' ');
            }
            header.push_str(version);
            header.push_str(&signature);
        }
        if header.is_empty() {
            return Err(Error::NoUsableSecret);
        }
        Ok(header)
    }

    /// The headers to send with a payload, for the keyring's scheme:
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature` (see
    /// [`Keyring::sign`]); `stripe-signature`; `x-github-delivery` and
    /// `x-hub-signature-256`; `x-slack-request-timestamp` and
    /// `x-slack-signature`; `x-shopify-webhook-id` and `x-shopify-hmac-sha256`.
    pub fn sign_headers(
        &self,
        id: &str,
        timestamp: i64,
        payload: &[u8],
    ) -> Result<SignedHeaders, Error> {
        let signature = self.sign(id, timestamp, payload)?;
        let timestamp = || String::from(itoa::Buffer::new().format(timestamp));
        Ok(match self.scheme {
            Scheme::StandardWebhooks => vec![
                ("webhook-id", String::from(id)),
                ("webhook-timestamp", timestamp()),
                ("webhook-signature", signature),
            ],
            Scheme::Stripe => vec![("stripe-signature", signature)],
            Scheme::Github => vec![
                ("x-github-delivery", String::from(id)),
                ("x-hub-signature-256", signature),
            ],
            Scheme::Slack => vec![
                ("x-slack-request-timestamp", timestamp()),
                ("x-slack-signature", signature),
            ],
            Scheme::Shopify => vec![
                ("x-shopify-webhook-id", String::from(id)),
                ("x-shopify-hmac-sha256", signature),
            ],
        })
    }

    /// Starts using `new_secret`: it goes first, with no window, and every
    /// previous secret stays usable until at most `now + grace_seconds`.
    /// Secrets no longer usable at `now` are dropped; ones not yet valid are
    /// kept.
    ///
    /// A grace over seven days is [`Error::InvalidInput`]; keeping more than
    /// ten previous secrets is [`Error::TooManySecrets`] (and `self` is
    /// unchanged either way).
    pub fn rotate(
        &self,
        new_secret: Secret,
        now: i64,
        grace_seconds: u32,
    ) -> Result<Keyring, Error> {
        if grace_seconds > MAX_GRACE_SECONDS {
            return Err(Error::InvalidInput);
        }
        let grace_end = now.saturating_add(i64::from(grace_seconds));
        let previous = self.entries.iter().filter_map(|entry| {
            let not_after = entry
                .window
                .not_after
                .map_or(grace_end, |end| end.min(grace_end));
            (not_after > now).then(|| KeyEntry {
                secret: entry.secret.clone(),
                window: Window {
                    not_before: entry.window.not_before,
                    not_after: Some(not_after),
                },
            })
        });
        let mut entries = Vec::with_capacity(self.entries.len() + 1);
        entries.push(KeyEntry {
            secret: new_secret,
            window: Window::default(),
        });
        entries.extend(previous);
        if entries.len() - 1 > MAX_PREVIOUS_SECRETS {
            return Err(Error::TooManySecrets);
        }
        Ok(Keyring {
            entries,
            scheme: self.scheme,
        })
    }
}

/// Whether `id` may be a message id (docs/SPEC.md section 2): printable ASCII
/// without space or `.`, 1 to 256 bytes.
pub fn is_valid_message_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b'.')
}
