use alloc::borrow::Cow;
use alloc::vec::Vec;

use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::encoding::{LENIENT_BASE64, STANDARD_BASE64};
use crate::{Error, Keyring, Scheme, Secret};

/// The default timestamp tolerance: five minutes either way.
pub const DEFAULT_TOLERANCE_SECONDS: u32 = 300;
/// The largest timestamp tolerance: one day.
pub const MAX_TOLERANCE_SECONDS: u32 = 86_400;
/// The longest signature header accepted, in bytes.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 8192;
/// The most signature entries accepted in one header.
pub const MAX_SIGNATURE_ENTRIES: usize = 32;
/// The most `v1a` entries accepted in one header: each is an Ed25519
/// verification per usable public key, so they are bounded more tightly.
pub const MAX_V1A_ENTRIES: usize = 12;

/// The Standard Webhooks header names, then Svix's, read when none of the
/// first family is present.
const HEADER_FAMILIES: [[&str; 3]; 2] = [
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ["svix-id", "svix-timestamp", "svix-signature"],
];

/// HMAC-SHA256 output length; any other decoded length never matches.
pub(crate) const TAG_LEN: usize = 32;
/// A tag's base64 without its one padding character.
const ENCODED_TAG_LEN: usize = TAG_LEN.div_ceil(3) * 4 - 1;
/// An encoded tag, its padding and zeros, in 64-bit words.
const ENCODED_TAG_WORDS: usize = (ENCODED_TAG_LEN + 1).div_ceil(8);
/// Ed25519 signature length.
const ED25519_SIGNATURE_LEN: usize = 64;

/// A delivery that verified. It borrows the id from the headers it was
/// verified from where it can: nothing is allocated for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'h> {
    /// The keyring index of the first usable secret whose signature matched.
    pub secret: usize,
    /// The message id, as received.
    pub id: Cow<'h, str>,
    /// The message timestamp, Unix seconds.
    pub timestamp: i64,
}

/// The values of the headers a scheme's verification reads (see
/// [`HeaderValues::find`] for the names), looked up by the caller when it
/// calls [`Keyring::verify_values`]. A value the scheme does not read is
/// ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderValues<'h> {
    /// The message id; Stripe and Slack send none.
    pub id: Option<&'h str>,
    /// The timestamp; Stripe's is in its signature header, GitHub and
    /// Shopify send none.
    pub timestamp: Option<&'h str>,
    /// The signature header's value.
    pub signature: Option<&'h str>,
}

impl<'h> HeaderValues<'h> {
    /// Finds the values `scheme` reads among `headers` (name and value pairs
    /// as received, names matched case-insensitively):
    /// - Standard Webhooks: `webhook-id`, `webhook-timestamp` and
    ///   `webhook-signature`, or `svix-id`, `svix-timestamp` and
    ///   `svix-signature` when no `webhook-` one is present;
    /// - Stripe: `Stripe-Signature`;
    /// - GitHub: `X-GitHub-Delivery` and `X-Hub-Signature-256`;
    /// - Slack: `X-Slack-Request-Timestamp` and `X-Slack-Signature`;
    /// - Shopify: `X-Shopify-Webhook-Id` and `X-Shopify-Hmac-Sha256`.
    ///
    /// Each must be present and non-empty ([`Error::MissingHeader`]) and
    /// present once ([`Error::InvalidHeader`]).
    pub fn find<N: AsRef<str>, V: AsRef<str>>(
        scheme: Scheme,
        headers: &'h [(N, V)],
    ) -> Result<HeaderValues<'h>, Error> {
        let (id, timestamp, signature) = match scheme {
            Scheme::StandardWebhooks => {
                let [id, timestamp, signature] = header_values(headers, &HEADER_FAMILIES)?;
                (Some(id), Some(timestamp), signature)
            }
            Scheme::Stripe => {
                let [signature] = header_values(headers, &[["stripe-signature"]])?;
                (None, None, signature)
            }
            Scheme::Github => {
                let [id, signature] =
                    header_values(headers, &[["x-github-delivery", "x-hub-signature-256"]])?;
                (Some(id), None, signature)
            }
            Scheme::Slack => {
                let [timestamp, signature] = header_values(
                    headers,
                    &[["x-slack-request-timestamp", "x-slack-signature"]],
                )?;
                (None, Some(timestamp), signature)
            }
            Scheme::Shopify => {
                let [id, signature] = header_values(
                    headers,
                    &[["x-shopify-webhook-id", "x-shopify-hmac-sha256"]],
                )?;
                (Some(id), None, signature)
            }
        };
        Ok(HeaderValues {
            id,
            timestamp,
            signature: Some(signature),
        })
    }
}

/// A value a scheme reads: [`Error::MissingHeader`] if absent or empty.
pub(crate) fn required(value: Option<&str>) -> Result<&str, Error> {
    value
        .filter(|value| !value.is_empty())
        .ok_or(Error::MissingHeader)
}

impl Keyring {
    /// Verifies a delivery: its headers (name and value pairs as received,
    /// names matched case-insensitively; see [`HeaderValues::find`]) and its
    /// raw payload, at time `now`, accepting timestamps up to
    /// `tolerance_seconds` (0 to 86400) away.
    ///
    /// The checks run in the order of docs/SPEC.md section 3 and the first failure
    /// is returned. Signatures are compared in constant time.
    pub fn verify<'h, N: AsRef<str>, V: AsRef<str>>(
        &self,
        headers: &'h [(N, V)],
        payload: &[u8],
        now: i64,
        tolerance_seconds: u32,
    ) -> Result<Verified<'h>, Error> {
        check_tolerance(tolerance_seconds)?;
        if self.scheme() != Scheme::StandardWebhooks {
            let values = HeaderValues::find(self.scheme(), headers)?;
            return self.verify_provider(values, payload, now, tolerance_seconds);
        }
        // `HeaderValues::find` does this lookup too; going through it and
        // `verify_values` costs a native verify about 9 ns (its options
        // and their checks), measured side by side.
        let [id, timestamp, signature] = header_values(headers, &HEADER_FAMILIES)?;
        self.verify_standard(id, timestamp, signature, payload, now, tolerance_seconds)
    }

    /// [`Keyring::verify`] from the header values, looked up by the caller:
    /// the same checks and errors after the lookup's, and a value the
    /// scheme reads that is absent or empty is [`Error::MissingHeader`].
    pub fn verify_values<'h>(
        &self,
        values: HeaderValues<'h>,
        payload: &[u8],
        now: i64,
        tolerance_seconds: u32,
    ) -> Result<Verified<'h>, Error> {
        check_tolerance(tolerance_seconds)?;
        if self.scheme() != Scheme::StandardWebhooks {
            return self.verify_provider(values, payload, now, tolerance_seconds);
        }
        let id = required(values.id)?;
        let timestamp = required(values.timestamp)?;
        let signature = required(values.signature)?;
        self.verify_standard(id, timestamp, signature, payload, now, tolerance_seconds)
    }

    /// Standard Webhooks' checks after the header lookup (docs/SPEC.md
    /// section 3).
    fn verify_standard<'h>(
        &self,
        id: &'h str,
        timestamp_text: &str,
        signatures: &str,
        payload: &[u8],
        now: i64,
        tolerance_seconds: u32,
    ) -> Result<Verified<'h>, Error> {
        let timestamp = parse_timestamp(timestamp_text)?;
        let candidates = SignatureEntries::parse(signatures)?;
        check_age(timestamp, now, tolerance_seconds)?;

        let parts = Scheme::StandardWebhooks.signed_parts(id, timestamp_text, payload);
        // The signed content joined, once and only for an Ed25519 check.
        let mut content: Option<Vec<u8>> = None;
        let (index, ()) = self.first_match(now, |secret| {
            let matched = match secret.hmac_of(&parts) {
                Some(expected) => candidates.contains(&expected),
                None => {
                    let content = content.get_or_insert_with(|| parts.concat());
                    candidates
                        .asymmetric()
                        .any(|signature| secret.ed25519_verifies(content, &signature))
                }
            };
            matched.then_some(())
        })?;
        Ok(Verified {
            secret: index,
            id: Cow::Borrowed(id),
            timestamp,
        })
    }

    /// The index of the first key usable at `now` (keyring order) that
    /// `matches` accepts, with what it gave; else docs/SPEC.md section 3's
    /// check 4 or 5: [`Error::NoUsableSecret`] if no key is usable,
    /// [`Error::NoMatchingSignature`] if none matched.
    pub(crate) fn first_match<T>(
        &self,
        now: i64,
        mut matches: impl FnMut(&Secret) -> Option<T>,
    ) -> Result<(usize, T), Error> {
        let mut any_usable = false;
        for (index, secret) in self.usable(now) {
            any_usable = true;
            if let Some(found) = matches(secret) {
                return Ok((index, found));
            }
        }
        Err(if any_usable {
            Error::NoMatchingSignature
        } else {
            Error::NoUsableSecret
        })
    }

    /// [`Keyring::verify`] at the system clock's current time.
    #[cfg(feature = "std")]
    pub fn verify_now<'h, N: AsRef<str>, V: AsRef<str>>(
        &self,
        headers: &'h [(N, V)],
        payload: &[u8],
        tolerance_seconds: u32,
    ) -> Result<Verified<'h>, Error> {
        self.verify(headers, payload, crate::unix_now(), tolerance_seconds)
    }
}

/// The values of one family of named headers (matched case-insensitively):
/// the first family any of whose names is present, else the last. Each value
/// must be present and non-empty ([`Error::MissingHeader`]) and present once
/// ([`Error::InvalidHeader`]). One pass over the headers: this runs on every
/// verification.
pub(crate) fn header_values<
    'h,
    N: AsRef<str>,
    V: AsRef<str>,
    const COUNT: usize,
    const FAMILIES: usize,
>(
    headers: &'h [(N, V)],
    families: &[[&str; COUNT]; FAMILIES],
) -> Result<[&'h str; COUNT], Error> {
    let mut values: [[Option<&str>; COUNT]; FAMILIES] = [[None; COUNT]; FAMILIES];
    let mut counts = [[0usize; COUNT]; FAMILIES];
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        // Names usually arrive in lowercase, as HTTP/2 sends them: each is
        // compared exactly with every name first, then ignoring case.
        let exact = find_name(families, |wanted| {
            same_bytes(name.as_bytes(), wanted.as_bytes())
        });
        let Some((family, slot)) =
            exact.or_else(|| find_name(families, |wanted| name.eq_ignore_ascii_case(wanted)))
        else {
            continue;
        };
        counts[family][slot] += 1;
        if !value.is_empty() && values[family][slot].is_none() {
            values[family][slot] = Some(value);
        }
    }
    let chosen = counts
        .iter()
        .position(|family| family.iter().any(|&count| count > 0))
        .unwrap_or(FAMILIES - 1);
    let mut found = [""; COUNT];
    for (slot, value) in values[chosen].into_iter().enumerate() {
        found[slot] = value.ok_or(Error::MissingHeader)?;
    }
    if counts[chosen].iter().any(|&count| count > 1) {
        return Err(Error::InvalidHeader);
    }
    Ok(found)
}

/// The family and slot of the first name that `matches`.
fn find_name<const COUNT: usize, const FAMILIES: usize>(
    families: &[[&str; COUNT]; FAMILIES],
    matches: impl Fn(&str) -> bool,
) -> Option<(usize, usize)> {
    families.iter().enumerate().find_map(|(family, names)| {
        let slot = names.iter().position(|wanted| matches(wanted))?;
        Some((family, slot))
    })
}

/// Byte equality in 64-bit words, the last one overlapping: wasm's
/// `memcmp` (wasi-libc) goes a byte at a time, and header names are
/// compared on every verification.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (Some(a_last), Some(b_last)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) else {
        return a == b;
    };
    let word = |bytes: &[u8; 8]| u64::from_ne_bytes(*bytes);
    a.len() == b.len()
        && word(a_last) == word(b_last)
        && a.as_chunks::<8>()
            .0
            .iter()
            .zip(b.as_chunks::<8>().0)
            .all(|(x, y)| word(x) == word(y))
}

/// [`Error::InvalidInput`] for a tolerance over [`MAX_TOLERANCE_SECONDS`].
fn check_tolerance(tolerance_seconds: u32) -> Result<(), Error> {
    if tolerance_seconds > MAX_TOLERANCE_SECONDS {
        return Err(Error::InvalidInput);
    }
    Ok(())
}

/// [`Error::TimestampTooOld`] or [`Error::TimestampTooNew`] past the tolerance.
pub(crate) fn check_age(timestamp: i64, now: i64, tolerance_seconds: u32) -> Result<(), Error> {
    // i128 cannot overflow for any pair of i64 values.
    let age = i128::from(now) - i128::from(timestamp);
    if age > i128::from(tolerance_seconds) {
        return Err(Error::TimestampTooOld);
    }
    if -age > i128::from(tolerance_seconds) {
        return Err(Error::TimestampTooNew);
    }
    Ok(())
}

/// 1 to 19 ASCII digits that fit in an `i64`.
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, Error> {
    if !(1..=19).contains(&text.len()) {
        return Err(Error::InvalidHeader);
    }
    // Digits checked as they are added, in one pass (no sign, unlike
    // `parse`); 18 digits cannot overflow, so only the 19th is checked.
    let (head, last) = text.as_bytes().split_at(text.len().min(18));
    let digit = |byte: u8| Some(byte.wrapping_sub(b'0')).filter(|digit| *digit <= 9);
    let mut value = 0i64;
    for &byte in head {
        value = value * 10 + i64::from(digit(byte).ok_or(Error::InvalidHeader)?);
    }
    match last.first() {
        None => Ok(value),
        Some(&byte) => digit(byte)
            .and_then(|digit| value.checked_mul(10)?.checked_add(i64::from(digit)))
            .ok_or(Error::InvalidHeader),
    }
}

/// The signature header, checked for size and entry count. Entries are
/// matched as they are found: nothing is allocated.
struct SignatureEntries<'h>(&'h str);

impl<'h> SignatureEntries<'h> {
    fn parse(header: &'h str) -> Result<SignatureEntries<'h>, Error> {
        if header.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(Error::InvalidHeader);
        }
        // Every entry takes at least two bytes with its separator (a `v1a`
        // entry six), so a header this short is within both caps: skip
        // counting, which would be a second pass over it.
        if header.len() < 2 * MAX_SIGNATURE_ENTRIES {
            return Ok(SignatureEntries(header));
        }
        let (mut entries, mut asymmetric) = (0, 0);
        for entry in header.split(' ').filter(|entry| !entry.is_empty()) {
            entries += 1;
            asymmetric += usize::from(entry.starts_with("v1a,"));
        }
        if entries > MAX_SIGNATURE_ENTRIES || asymmetric > MAX_V1A_ENTRIES {
            return Err(Error::InvalidHeader);
        }
        Ok(SignatureEntries(header))
    }

    /// Whether any `v1` entry is the base64 of `expected`, compared in
    /// constant time. Decoding is strict (no stray bits after the last
    /// byte, padding optional), so 32 bytes have exactly one encoding with
    /// its padding and one without: comparing the text is comparing the
    /// bytes, and `expected` is encoded once instead of every entry decoded.
    fn contains(&self, expected: &[u8; TAG_LEN]) -> bool {
        let mut encoded = [0u8; ENCODED_TAG_WORDS * 8];
        let written = STANDARD_BASE64.encode_slice(expected, &mut encoded);
        debug_assert_eq!(written, Ok(ENCODED_TAG_LEN + 1));
        encoded[ENCODED_TAG_LEN] = 0;
        let encoded: [u64; ENCODED_TAG_WORDS] = words(&encoded);
        self.0
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .any(|entry| {
                let entry = match entry.as_bytes() {
                    [unpadded @ .., b'='] | unpadded => unpadded,
                };
                if entry.len() != ENCODED_TAG_LEN {
                    return false;
                }
                let mut received = [0u8; ENCODED_TAG_WORDS * 8];
                received[..ENCODED_TAG_LEN].copy_from_slice(entry);
                let received: [u64; ENCODED_TAG_WORDS] = words(&received);
                bool::from(received.ct_eq(&encoded))
            })
    }

    /// The `v1a` entries that are base64 of 64 bytes; others are skipped.
    fn asymmetric(&self) -> impl Iterator<Item = [u8; ED25519_SIGNATURE_LEN]> + 'h {
        self.0
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1a,"))
            .filter_map(decode_exact::<ED25519_SIGNATURE_LEN>)
    }
}

/// Constant-time equality of two tags, compared as four 64-bit words.
pub(crate) fn tags_equal(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    let (a, b): ([u64; 4], [u64; 4]) = (words(a), words(b));
    bool::from(a.ct_eq(&b))
}

/// Bytes as native-endian 64-bit words, for a constant-time compare.
fn words<const BYTES: usize, const WORDS: usize>(bytes: &[u8; BYTES]) -> [u64; WORDS] {
    const { assert!(WORDS * 8 == BYTES, "every byte in exactly one word") };
    core::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(word)
    })
}

/// Base64 of exactly `LEN` bytes, or nothing.
pub(crate) fn decode_exact<const LEN: usize>(value: &str) -> Option<[u8; LEN]> {
    // Only 4 * ceil(LEN / 3) characters, or that less its padding, encode
    // LEN bytes; anything else cannot, so skip decoding it.
    let padded = LEN.div_ceil(3) * 4;
    if !(padded - (3 - LEN % 3) % 3..=padded).contains(&value.len()) {
        return None;
    }
    // Room for the decoder's over-estimate of the output length.
    let mut buffer = [0u8; 96];
    let written = LENIENT_BASE64.decode_slice(value, &mut buffer).ok()?;
    buffer[..written].try_into().ok()
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;

    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Comparing a tag's encoding is comparing the decoded bytes: the
        /// same answer as decoding each entry, for the canonical encoding
        /// with or without its padding and for any one character changed.
        #[test]
        fn comparing_encodings_agrees_with_decoding(
            expected in any::<[u8; TAG_LEN]>(),
            change in proptest::option::of((0..44usize, proptest::char::range('*', 'z'))),
            padded in any::<bool>(),
        ) {
            let mut entry = STANDARD_BASE64.encode(expected);
            if let Some((at, replacement)) = change {
                entry.replace_range(at..at + 1, &String::from(replacement));
            }
            if !padded && entry.ends_with('=') {
                entry.pop();
            }
            let header = format!("v1,{entry}");
            let decoded = decode_exact::<TAG_LEN>(&entry);
            prop_assert_eq!(
                SignatureEntries(&header).contains(&expected),
                decoded == Some(expected),
                "entry {}", entry
            );
        }
    }
}
