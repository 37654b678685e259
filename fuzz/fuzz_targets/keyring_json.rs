//! Keyring JSON (what `--keyring` files and `inbound_sources` hold): parse,
//! build, rotate, write back; no panic, and what is written reads back.
#![no_main]

use hooksign::{Keyring, Secret, SecretRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(records) = serde_json::from_slice::<Vec<SecretRecord>>(data) else {
        return;
    };
    let Ok(keyring) = Keyring::from_records(&records) else {
        return;
    };
    let now = records
        .iter()
        .filter_map(|record| record.not_after)
        .next()
        .unwrap_or(0);
    let new = Secret::from_bytes(&[7; 32]).unwrap();
    if let Ok(rotated) = keyring.rotate(new, now, 3600) {
        let written = serde_json::to_vec(&rotated.to_records()).unwrap();
        let read: Vec<SecretRecord> = serde_json::from_slice(&written).unwrap();
        assert_eq!(read, rotated.to_records());
    }
    let _ = keyring.active(now);
});
