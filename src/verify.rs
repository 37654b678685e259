use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::encoding::LENIENT_BASE64;
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
/// Ed25519 signature length.
const ED25519_SIGNATURE_LEN: usize = 64;

/// A delivery that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The keyring index of the first usable secret whose signature matched.
    pub secret: usize,
    /// The message id, as received.
    pub id: String,
    /// The message timestamp, Unix seconds.
    pub timestamp: i64,
}

impl Keyring {
    /// Verifies a delivery: its headers (name and value pairs as received,
    /// names matched case-insensitively) and its raw payload, at time `now`,
    /// accepting timestamps up to `tolerance_seconds` (0 to 86400) away.
    ///
    /// The checks run in the order of docs/SPEC.md section 3 and the first failure
    /// is returned. Signatures are compared in constant time.
    pub fn verify<N: AsRef<str>, V: AsRef<str>>(
        &self,
        headers: &[(N, V)],
        payload: &[u8],
        now: i64,
        tolerance_seconds: u32,
    ) -> Result<Verified, Error> {
        if tolerance_seconds > MAX_TOLERANCE_SECONDS {
            return Err(Error::InvalidInput);
        }
        if self.scheme() != Scheme::StandardWebhooks {
            return self.verify_provider(headers, payload, now, tolerance_seconds);
        }
        let [id, timestamp_text, signatures] = header_values(headers, family(headers))?;
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
            id: String::from(id),
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
    pub fn verify_now<N: AsRef<str>, V: AsRef<str>>(
        &self,
        headers: &[(N, V)],
        payload: &[u8],
        tolerance_seconds: u32,
    ) -> Result<Verified, Error> {
        self.verify(headers, payload, crate::unix_now(), tolerance_seconds)
    }
}

/// The Standard Webhooks names, or Svix's when none of them is present.
fn family<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> &'static [&'static str; 3] {
    let standard = &HEADER_FAMILIES[0];
    if headers.iter().any(|(name, _)| {
        standard
            .iter()
            .any(|wanted| name.as_ref().eq_ignore_ascii_case(wanted))
    }) {
        standard
    } else {
        &HEADER_FAMILIES[1]
    }
}

/// The values of the named headers (matched case-insensitively), each
/// present and non-empty ([`Error::MissingHeader`]) and present once
/// ([`Error::InvalidHeader`]).
pub(crate) fn header_values<'h, N: AsRef<str>, V: AsRef<str>, const COUNT: usize>(
    headers: &'h [(N, V)],
    names: &[&str; COUNT],
) -> Result<[&'h str; COUNT], Error> {
    let mut values: [Option<&str>; COUNT] = [None; COUNT];
    let mut counts = [0usize; COUNT];
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        for (slot, wanted) in names.iter().enumerate() {
            if name.eq_ignore_ascii_case(wanted) {
                counts[slot] += 1;
                if !value.is_empty() && values[slot].is_none() {
                    values[slot] = Some(value);
                }
            }
        }
    }
    let mut found = [""; COUNT];
    for (slot, value) in values.into_iter().enumerate() {
        found[slot] = value.ok_or(Error::MissingHeader)?;
    }
    if counts.iter().any(|&count| count > 1) {
        return Err(Error::InvalidHeader);
    }
    Ok(found)
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
    if !(1..=19).contains(&text.len()) || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Error::InvalidHeader);
    }
    text.parse().map_err(|_| Error::InvalidHeader)
}

/// The signature header, checked for size and entry count. Tags are decoded
/// while matching, into a stack buffer: nothing is allocated or copied.
struct SignatureEntries<'h>(&'h str);

impl<'h> SignatureEntries<'h> {
    fn parse(header: &'h str) -> Result<SignatureEntries<'h>, Error> {
        if header.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(Error::InvalidHeader);
        }
        // One pass: this runs on every verification.
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

    /// The `v1` entries that are base64 of 32 bytes; others are skipped.
    fn tags(&self) -> impl Iterator<Item = [u8; TAG_LEN]> + 'h {
        self.0
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(decode_exact::<TAG_LEN>)
    }

    /// Whether any entry equals `expected`, compared in constant time.
    fn contains(&self, expected: &[u8; TAG_LEN]) -> bool {
        self.tags().any(|tag| tags_equal(&tag, expected))
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
    let words = |tag: &[u8; TAG_LEN]| -> [u64; 4] {
        core::array::from_fn(|i| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&tag[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(word)
        })
    };
    bool::from(words(a).ct_eq(&words(b)))
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
