//! The component and the native library give the same answer for the same
//! generated input: signatures, verification outcomes, rotations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use hooksign::{Keyring, SecretRecord};
use hooksign_host::HostError;
use proptest::prelude::*;

use common::component;

/// Secret texts: mostly valid keys, sometimes malformed ones.
fn secret_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 24..=64).prop_map(|key| hooksign::Secret::from_bytes(&key).unwrap().to_text()),
        1 => "(whsec_)?[A-Za-z0-9+/=]{0,90}",
    ]
}

fn records() -> impl Strategy<Value = Vec<SecretRecord>> {
    prop::collection::vec(
        (
            secret_text(),
            prop::option::of(-1000i64..1000),
            prop::option::of(-1000i64..1000),
        ),
        0..4,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .map(|(key, before, after)| SecretRecord {
                key,
                not_before: before.map(|offset| 1_700_000_000 + offset),
                not_after: after.map(|offset| 1_700_000_000 + offset),
            })
            .collect()
    })
}

fn outcome<T>(result: Result<T, HostError>) -> Result<T, hooksign::Error> {
    result.map_err(|error| match error {
        HostError::Signing(error) => error,
        other => panic!("the component failed: {other}"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn component_and_native_agree(
        records in records(),
        id in "[ -~]{0,40}",
        timestamp in prop_oneof![Just(1_700_000_000i64), any::<i64>()],
        body in prop::collection::vec(any::<u8>(), 0..256),
        now_offset in -400i64..400,
        tolerance in prop_oneof![Just(300u32), 0u32..90_000],
        tamper in any::<bool>(),
        grace in prop_oneof![Just(86_400u32), 0u32..700_000],
    ) {
        let mut session = component().session().unwrap();
        let native = Keyring::from_records(&records);
        let parsed = outcome(session.parse_keyring(&records));
        prop_assert_eq!(native.as_ref().err(), parsed.as_ref().err());
        let (Ok(native), Ok(handle)) = (native, parsed) else { return Ok(()) };

        let signed = native.sign(&id, timestamp, &body);
        prop_assert_eq!(&signed, &outcome(session.sign(handle, &id, timestamp, &body)));

        let now = 1_700_000_000 + now_offset;
        let signature = signed.unwrap_or_else(|_| "v1,".into());
        let mut payload = body.clone();
        if tamper { payload.push(b'!'); }
        let headers = vec![
            ("webhook-id".to_string(), id.clone()),
            ("Webhook-Timestamp".to_string(), timestamp.to_string()),
            ("webhook-signature".to_string(), signature),
        ];
        prop_assert_eq!(
            native.verify(&headers, &payload, now, tolerance),
            outcome(session.verify(handle, &headers, &payload, Some(now), Some(tolerance)))
        );

        let new = hooksign::Secret::generate().unwrap().to_text();
        let rotated = native.rotate(hooksign::Secret::parse(&new).unwrap(), now, grace).map(|k| k.to_records());
        let from_component = outcome(session.rotate(handle, &new, Some(now), Some(grace))).map(|k| session.secrets(k).unwrap());
        prop_assert_eq!(rotated, from_component);
        prop_assert_eq!(
            native.active(now).into_iter().map(|i| i as u32).collect::<Vec<_>>(),
            session.active(handle, Some(now)).unwrap()
        );
    }
}
