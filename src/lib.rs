#![doc = include_str!("README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod encoding;
mod error;
mod keyring;
mod scheme;
mod secret;
mod verify;

pub use error::Error;
pub use keyring::{
    DEFAULT_GRACE_SECONDS, KeyEntry, Keyring, MAX_GRACE_SECONDS, MAX_ID_LEN, MAX_PREVIOUS_SECRETS,
    SignedHeaders, is_valid_message_id,
};
pub use scheme::Scheme;
pub use secret::{
    GENERATED_KEY_LEN, KeyKind, MAX_KEY_LEN, MAX_TEXT_SECRET_LEN, MIN_KEY_LEN, PUBLIC_KEY_PREFIX,
    RandomUnavailable, SECRET_PREFIX, SIGNING_KEY_PREFIX, Secret, SecretRecord, Window,
};
pub use verify::{
    DEFAULT_TOLERANCE_SECONDS, HeaderValues, MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_HEADER_LEN,
    MAX_TOLERANCE_SECONDS, MAX_V1A_ENTRIES, Verified,
};

/// The system clock in Unix seconds; times before 1970 come out negative.
#[cfg(feature = "std")]
pub fn unix_now() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |secs| -secs),
    }
}
