//! The providers' schemes a receiver meets besides Standard Webhooks: each
//! an HMAC-SHA256 of its own signed bytes in its own headers and encoding,
//! keyed by the secret's text.

use alloc::borrow::Cow;
use alloc::string::String;

use base64::Engine as _;

use crate::encoding::STANDARD_BASE64;
use crate::verify::{
    MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_HEADER_LEN, TAG_LEN, check_age, decode_exact,
    parse_timestamp, required, tags_equal,
};
use crate::{Error, HeaderValues, Keyring, Verified, is_valid_message_id};

/// How deliveries are signed: the headers, the signed bytes and the encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum Scheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (or `svix-*`):
    /// `v1` HMAC-SHA256 and `v1a` Ed25519 over `id.timestamp.payload`.
    #[default]
    StandardWebhooks,
    /// `Stripe-Signature: t=…,v1=<hex>`: HMAC-SHA256 of `t.payload`.
    Stripe,
    /// `X-Hub-Signature-256: sha256=<hex>` of the payload; the id is
    /// `X-GitHub-Delivery`. No timestamp.
    Github,
    /// `X-Slack-Signature: v0=<hex>` of `v0:timestamp:payload`, the time in
    /// `X-Slack-Request-Timestamp`.
    Slack,
    /// `X-Shopify-Hmac-Sha256: <base64>` of the payload; the id is
    /// `X-Shopify-Webhook-Id`. No timestamp.
    Shopify,
}

impl Scheme {
    /// Every scheme.
    pub const ALL: [Scheme; 5] = [
        Scheme::StandardWebhooks,
        Scheme::Stripe,
        Scheme::Github,
        Scheme::Slack,
        Scheme::Shopify,
    ];

    /// Its kebab-case name, as in WIT, JSON and the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Stripe => "stripe",
            Scheme::Github => "github",
            Scheme::Slack => "slack",
            Scheme::Shopify => "shopify",
        }
    }

    /// The scheme of this name, if there is one.
    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.into_iter().find(|scheme| scheme.name() == name)
    }

    /// The bytes a signature covers, in parts (to hash without copying):
    /// `id.timestamp.payload`, `timestamp.payload` (Stripe),
    /// `v0:timestamp:payload` (Slack), or the payload alone.
    pub(crate) fn signed_parts<'a>(
        self,
        id: &'a str,
        timestamp: &'a str,
        payload: &'a [u8],
    ) -> [&'a [u8]; 5] {
        let (id, timestamp) = (id.as_bytes(), timestamp.as_bytes());
        match self {
            Scheme::StandardWebhooks => [id, b".", timestamp, b".", payload],
            Scheme::Stripe => [timestamp, b".", payload, b"", b""],
            Scheme::Slack => [b"v0:", timestamp, b":", payload, b""],
            Scheme::Github | Scheme::Shopify => [payload, b"", b"", b"", b""],
        }
    }
}

/// Lowercase hex of a tag.
fn hex(tag: &[u8; TAG_LEN]) -> String {
    let mut buffer = [0u8; TAG_LEN * 2];
    // The buffer is exactly twice the input: encoding cannot fail.
    String::from(base16ct::lower::encode_str(tag, &mut buffer).unwrap_or_default())
}

/// Hex (either case) of exactly 32 bytes, or nothing.
fn decode_hex(value: &str) -> Option<[u8; TAG_LEN]> {
    if value.len() != TAG_LEN * 2 {
        return None;
    }
    let mut tag = [0u8; TAG_LEN];
    base16ct::mixed::decode(value, &mut tag).ok()?;
    Some(tag)
}

impl Keyring {
    /// A provider's signature value, made with the first usable secret
    /// (Stripe: every usable secret, one `v1` each).
    pub(crate) fn sign_provider(
        &self,
        timestamp: &str,
        payload: &[u8],
        now: i64,
    ) -> Result<String, Error> {
        let scheme = self.scheme();
        let parts = scheme.signed_parts("", timestamp, payload);
        let mut tags = self
            .usable(now)
            .filter_map(|(_, secret)| secret.hmac_of(&parts));
        let first = tags.next().ok_or(Error::NoUsableSecret)?;
        Ok(match scheme {
            Scheme::Stripe => {
                let mut header = alloc::format!("t={timestamp},v1={}", hex(&first));
                for tag in tags {
                    header.push_str(",v1=");
                    header.push_str(&hex(&tag));
                }
                header
            }
            Scheme::Github => alloc::format!("sha256={}", hex(&first)),
            Scheme::Slack => alloc::format!("v0={}", hex(&first)),
            _ => STANDARD_BASE64.encode(first),
        })
    }

    /// Verifies a delivery signed under a provider's scheme. The id of a
    /// scheme without one (Stripe, Slack) is the hex of the matching tag:
    /// a replayed request carries the same one.
    pub(crate) fn verify_provider<'h>(
        &self,
        values: HeaderValues<'h>,
        payload: &[u8],
        now: i64,
        tolerance_seconds: u32,
    ) -> Result<Verified<'h>, Error> {
        let scheme = self.scheme();
        let (id, timestamp_text, candidates) = match scheme {
            Scheme::Stripe => {
                let (timestamp, entries) = stripe_entries(required(values.signature)?)?;
                (None, Some(timestamp), entries)
            }
            Scheme::Slack => {
                let timestamp = required(values.timestamp)?;
                let signature = required(values.signature)?;
                (None, Some(timestamp), Candidates::one(signature, "v0=")?)
            }
            Scheme::Github => {
                let id = required(values.id)?;
                let signature = required(values.signature)?;
                (Some(id), None, Candidates::one(signature, "sha256=")?)
            }
            // Shopify (Standard Webhooks is verified in verify.rs).
            _ => {
                let id = required(values.id)?;
                let signature = required(values.signature)?;
                (Some(id), None, Candidates::one(signature, "")?)
            }
        };
        if id.is_some_and(|id| !is_valid_message_id(id)) {
            return Err(Error::InvalidHeader);
        }
        let timestamp = match timestamp_text {
            Some(text) => {
                let timestamp = parse_timestamp(text)?;
                check_age(timestamp, now, tolerance_seconds)?;
                timestamp
            }
            None => now,
        };
        let parts = scheme.signed_parts("", timestamp_text.unwrap_or(""), payload);
        let (index, expected) = self.first_match(now, |secret| {
            secret
                .hmac_of(&parts)
                .filter(|expected| candidates.contains(scheme, expected))
        })?;
        Ok(Verified {
            secret: index,
            id: id.map_or_else(|| Cow::Owned(hex(&expected)), Cow::Borrowed),
            timestamp,
        })
    }
}

/// A provider's signature values: Stripe's `v1` entries, or one value
/// after its prefix. Each is decoded when compared, and skipped if it is
/// not a 32-byte tag in the scheme's encoding.
struct Candidates<'h> {
    header: &'h str,
    prefix: &'static str,
}

impl<'h> Candidates<'h> {
    fn one(value: &'h str, prefix: &'static str) -> Result<Candidates<'h>, Error> {
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(Error::InvalidHeader);
        }
        Ok(Candidates {
            header: value,
            prefix,
        })
    }

    fn contains(&self, scheme: Scheme, expected: &[u8; TAG_LEN]) -> bool {
        let decode = |value: &str| match scheme {
            Scheme::Shopify => decode_exact::<TAG_LEN>(value),
            _ => decode_hex(value),
        };
        let matches = |tag: [u8; TAG_LEN]| tags_equal(&tag, expected);
        if scheme == Scheme::Stripe {
            return self
                .header
                .split(',')
                .filter_map(|item| item.strip_prefix(self.prefix))
                .filter_map(decode)
                .any(matches);
        }
        self.header
            .strip_prefix(self.prefix)
            .and_then(decode)
            .is_some_and(matches)
    }
}

/// `t=<timestamp>` (once) and the entries of a `Stripe-Signature` value.
fn stripe_entries(value: &str) -> Result<(&str, Candidates<'_>), Error> {
    if value.len() > MAX_SIGNATURE_HEADER_LEN || value.split(',').count() > MAX_SIGNATURE_ENTRIES {
        return Err(Error::InvalidHeader);
    }
    let mut timestamps = value.split(',').filter_map(|item| item.strip_prefix("t="));
    let (Some(timestamp), None) = (timestamps.next(), timestamps.next()) else {
        return Err(Error::InvalidHeader);
    };
    Ok((
        timestamp,
        Candidates {
            header: value,
            prefix: "v1=",
        },
    ))
}
