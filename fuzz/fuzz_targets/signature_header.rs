//! The signature and timestamp headers against a model of docs/SPEC.md section 3
//! written from the text (checks 1 to 5, in order), with HMAC computed
//! straight from the hmac crate: `verify` must give the model's answer (the
//! keyring holds HMAC secrets only, so `v1a` entries count but never match).
//!
//! Input: timestamp text, NUL, signature text, NUL, payload. `{A}` and `{B}`
//! in the signature text stand for the right base64 tag for the first and
//! second secret, so matches are reachable.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use hooksign::{Error, Keyring, SecretRecord};
use libfuzzer_sys::fuzz_target;

const SECRETS: [&str; 2] = [
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
];
const ID: &str = "msg_fuzz";
const NOW: i64 = 1_700_000_000;
const TOLERANCE: i64 = 300;

fn tag(secret: &str, timestamp: &str, payload: &[u8]) -> [u8; 32] {
    let key = STANDARD.decode(&secret["whsec_".len()..]).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{ID}.{timestamp}.").as_bytes());
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// docs/SPEC.md section 3, checks 1 to 5, for these two header values.
fn model(timestamp: &str, signature: &str, payload: &[u8]) -> Result<usize, Error> {
    if timestamp.is_empty() || signature.is_empty() {
        return Err(Error::MissingHeader);
    }
    let digits =
        (1..=19).contains(&timestamp.len()) && timestamp.bytes().all(|b| b.is_ascii_digit());
    let Some(sent) = timestamp.parse::<i64>().ok().filter(|_| digits) else {
        return Err(Error::InvalidHeader);
    };
    let entries: Vec<&str> = signature
        .split(' ')
        .filter(|entry| !entry.is_empty())
        .collect();
    let asymmetric = entries
        .iter()
        .filter(|entry| entry.starts_with("v1a,"))
        .count();
    if signature.len() > 8192 || entries.len() > 32 || asymmetric > 12 {
        return Err(Error::InvalidHeader);
    }
    if NOW - sent > TOLERANCE {
        return Err(Error::TimestampTooOld);
    }
    if sent - NOW > TOLERANCE {
        return Err(Error::TimestampTooNew);
    }
    let tags: Vec<[u8; 32]> = entries
        .iter()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, value)| STANDARD.decode(value).ok())
        .filter_map(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .collect();
    SECRETS
        .iter()
        .position(|secret| tags.contains(&tag(secret, timestamp, payload)))
        .ok_or(Error::NoMatchingSignature)
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |byte| *byte == 0);
    let (Some(timestamp), Some(signature)) = (parts.next(), parts.next()) else {
        return;
    };
    let payload = parts.next().unwrap_or_default();
    let (Ok(timestamp), Ok(signature)) = (
        std::str::from_utf8(timestamp),
        std::str::from_utf8(signature),
    ) else {
        return;
    };
    let mut signature = signature.to_string();
    for (placeholder, secret) in ["{A}", "{B}"].into_iter().zip(SECRETS) {
        if signature.contains(placeholder) {
            let right = STANDARD.encode(tag(secret, timestamp, payload));
            signature = signature.replace(placeholder, &right);
        }
    }
    let keyring = Keyring::from_records(&SECRETS.map(SecretRecord::new)).unwrap();
    let headers = [
        ("webhook-id", ID),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature.as_str()),
    ];
    let got = keyring
        .verify(&headers, payload, NOW, TOLERANCE as u32)
        .map(|verified| verified.secret);
    assert_eq!(
        got,
        model(timestamp, &signature, payload),
        "{timestamp:?} {signature:?}"
    );
});
