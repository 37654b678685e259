//! Encodings the service writes in more than one place: hex (as the
//! library writes it, through `base16ct`), SHA-256 in hex, RFC 3339 times
//! and random ids.

use chrono::{DateTime, SecondsFormat};
use sha2::{Digest as _, Sha256};

use crate::foundation::problem::Problem;
use crate::ids::{EndpointId, MessageId};

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// The SHA-256 of `text`.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The SHA-256 of `text`, in lowercase hex: how keys and tokens are
/// stored and looked up, never in clear.
pub fn sha256_hex(text: &str) -> String {
    hex(&sha256(text))
}

/// 32 bytes from 64 lowercase hex digits; `None` for anything else.
pub fn hash_from_hex(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    let decoded = base16ct::lower::decode(text, &mut hash).ok()?;
    (decoded.len() == 32).then_some(hash)
}

/// Unix seconds as RFC 3339 UTC, `2019-08-24T14:15:22Z`.
pub fn rfc3339(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// RFC 3339 text as Unix seconds (fractions dropped); `None` if it is not
/// one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp())
}

/// A fresh random UUID (v4); 503 if the random source fails, rather than
/// an id that could collide.
fn random_uuid() -> Result<uuid::Uuid, Problem> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| Problem::random_unavailable())?;
    Ok(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// A fresh random UUID, as text: tokens and records' ids.
pub fn new_uuid() -> Result<String, Problem> {
    Ok(random_uuid()?.to_string())
}

/// A fresh endpoint id.
pub fn new_endpoint_id() -> Result<EndpointId, Problem> {
    Ok(random_uuid()?.into())
}

/// A fresh message id, `msg_` and 32 random hex digits.
pub fn new_message_id() -> Result<MessageId, Problem> {
    Ok(MessageId::new(format!("msg_{}", random_uuid()?.simple())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex_and_uppercase_is_refused() {
        let hash = sha256("sgn_live_x");
        assert_eq!(hash_from_hex(&hex(&hash)), Some(hash));
        assert_eq!(hash_from_hex(&hex(&hash).to_uppercase()), None);
        assert_eq!(hash_from_hex(&hex(&hash)[..62]), None);
        assert_eq!(rfc3339(1_566_656_122), "2019-08-24T14:15:22Z");
    }
}
