use alloc::string::String;

use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::encoding::LENIENT_BASE64;
use crate::{Error, Keyring};

/// The default timestamp tolerance: five minutes either way.
pub const DEFAULT_TOLERANCE_SECONDS: u32 = 300;
/// The largest timestamp tolerance: one day.
pub const MAX_TOLERANCE_SECONDS: u32 = 86_400;
/// The longest signature header accepted, in bytes.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 8192;
/// The most signature entries accepted in one header.
pub const MAX_SIGNATURE_ENTRIES: usize = 32;

/// The Standard Webhooks header names, then Svix's, read when none of the
/// first family is present.
const HEADER_FAMILIES: [[&str; 3]; 2] = [
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ["svix-id", "svix-timestamp", "svix-signature"],
];

/// HMAC-SHA256 output length; any other decoded length never matches.
const TAG_LEN: usize = 32;

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
        let [id, timestamp_text, signatures] = webhook_headers(headers)?;
        let timestamp = parse_timestamp(timestamp_text)?;
        let candidates = SignatureEntries::parse(signatures)?;

        // i128 cannot overflow for any pair of i64 values.
        let age = i128::from(now) - i128::from(timestamp);
        if age > i128::from(tolerance_seconds) {
            return Err(Error::TimestampTooOld);
        }
        if -age > i128::from(tolerance_seconds) {
            return Err(Error::TimestampTooNew);
        }

        let mut any_usable = false;
        for (index, secret) in self.usable(now) {
            any_usable = true;
            let expected = secret.tag(id, timestamp_text, payload);
            if candidates.contains(&expected) {
                return Ok(Verified {
                    secret: index,
                    id: String::from(id),
                    timestamp,
                });
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

/// Finds the id, timestamp and signature values, each present once and non-empty.
fn webhook_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> Result<[&str; 3], Error> {
    let is_one_of = |family: &[&str; 3], name: &str| {
        family
            .iter()
            .any(|wanted| name.eq_ignore_ascii_case(wanted))
    };
    let family = if headers
        .iter()
        .any(|(name, _)| is_one_of(&HEADER_FAMILIES[0], name.as_ref()))
    {
        &HEADER_FAMILIES[0]
    } else {
        &HEADER_FAMILIES[1]
    };

    let mut values: [Option<&str>; 3] = [None; 3];
    let mut counts = [0usize; 3];
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        for (slot, wanted) in family.iter().enumerate() {
            if name.eq_ignore_ascii_case(wanted) {
                counts[slot] += 1;
                if !value.is_empty() && values[slot].is_none() {
                    values[slot] = Some(value);
                }
            }
        }
    }
    let [Some(id), Some(timestamp), Some(signature)] = values else {
        return Err(Error::MissingHeader);
    };
    if counts.iter().any(|&count| count > 1) {
        return Err(Error::InvalidHeader);
    }
    Ok([id, timestamp, signature])
}

/// 1 to 19 ASCII digits that fit in an `i64`.
fn parse_timestamp(text: &str) -> Result<i64, Error> {
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
        if header.len() > MAX_SIGNATURE_HEADER_LEN
            || header.split(' ').filter(|entry| !entry.is_empty()).count() > MAX_SIGNATURE_ENTRIES
        {
            return Err(Error::InvalidHeader);
        }
        Ok(SignatureEntries(header))
    }

    /// The `v1` entries that are base64 of 32 bytes; others are skipped.
    fn tags(&self) -> impl Iterator<Item = [u8; TAG_LEN]> + 'h {
        self.0
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(decode_tag)
    }

    /// Whether any entry equals `expected`, compared in constant time.
    fn contains(&self, expected: &[u8; TAG_LEN]) -> bool {
        self.tags().any(|tag| tags_equal(&tag, expected))
    }
}

/// Constant-time equality of two tags, compared as four 64-bit words.
fn tags_equal(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    let words = |tag: &[u8; TAG_LEN]| -> [u64; 4] {
        core::array::from_fn(|i| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&tag[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(word)
        })
    };
    bool::from(words(a).ct_eq(&words(b)))
}

/// Base64 of exactly 32 bytes, or nothing.
fn decode_tag(value: &str) -> Option<[u8; TAG_LEN]> {
    // 43 or 44 characters encode 32 bytes; anything else cannot, so skip decoding it.
    if !(43..=44).contains(&value.len()) {
        return None;
    }
    // Room for the decoder's over-estimate of the output length.
    let mut buffer = [0u8; TAG_LEN + 3];
    let written = LENIENT_BASE64.decode_slice(value, &mut buffer).ok()?;
    buffer[..written].try_into().ok()
}
