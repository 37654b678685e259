//! Properties over generated inputs (proptest): signing round-trips, any
//! one-bit change fails, rotation keeps what it must, and verifying from
//! the header values is verifying from the headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hooksign::{Error, HeaderValues, KeyEntry, Keyring, Scheme, Secret, Window};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 24..=64)
}

/// Printable ASCII without `.` or space.
fn message_id() -> impl Strategy<Value = String> {
    "[!-\\-/-~]{1,256}"
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

fn keyring_of(key: &[u8]) -> Keyring {
    Keyring::new(vec![KeyEntry {
        secret: Secret::from_bytes(key).unwrap(),
        window: Window::default(),
    }])
}

fn headers(id: &str, timestamp: &str, signature: &str) -> [(String, String); 3] {
    [
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.into()),
        ("webhook-signature".into(), signature.into()),
    ]
}

proptest! {
    #[test]
    fn sign_then_verify(key in key(), id in message_id(), timestamp in 0..=i64::MAX, body in body()) {
        let keyring = keyring_of(&key);
        let signature = keyring.sign(&id, timestamp, &body).unwrap();
        let headers = headers(&id, &timestamp.to_string(), &signature);
        let verified = keyring.verify(&headers, &body, timestamp, 0).unwrap();
        prop_assert_eq!((verified.secret, &*verified.id, verified.timestamp), (0, id.as_str(), timestamp));
        // The text form of the key round-trips too.
        let reparsed = Secret::parse(&Secret::from_bytes(&key).unwrap().to_text()).unwrap();
        prop_assert_eq!(reparsed.to_text(), Secret::from_bytes(&key).unwrap().to_text());
    }

    #[test]
    fn any_one_bit_change_fails(
        key in key(),
        id in message_id(),
        timestamp in 1_000..=i64::MAX - 1_000,
        body in prop::collection::vec(any::<u8>(), 1..512),
        bit in any::<prop::sample::Index>(),
    ) {
        let keyring = keyring_of(&key);
        let signature = keyring.sign(&id, timestamp, &body).unwrap();
        let ts = timestamp.to_string();

        let mut changed_body = body.clone();
        let at = bit.index(body.len() * 8);
        changed_body[at / 8] ^= 1 << (at % 8);
        prop_assert_eq!(keyring.verify(&headers(&id, &ts, &signature), &changed_body, timestamp, 0).unwrap_err(), Error::NoMatchingSignature);

        let mut tag = STANDARD.decode(&signature[3..]).unwrap();
        let at = bit.index(tag.len() * 8);
        tag[at / 8] ^= 1 << (at % 8);
        let changed = format!("v1,{}", STANDARD.encode(&tag));
        prop_assert_eq!(keyring.verify(&headers(&id, &ts, &changed), &body, timestamp, 0).unwrap_err(), Error::NoMatchingSignature);

        // A one-bit change of an id byte that keeps it a printable id.
        let mut changed_id = id.clone().into_bytes();
        let at = bit.index(changed_id.len());
        changed_id[at] = if changed_id[at] == b'a' { b'b' } else { b'a' };
        let changed_id = String::from_utf8(changed_id).unwrap();
        prop_assert_eq!(keyring.verify(&headers(&changed_id, &ts, &signature), &body, timestamp, 0).unwrap_err(), Error::NoMatchingSignature);

        // The neighbouring timestamps, within the tolerance.
        for other in [timestamp - 1, timestamp + 1] {
            prop_assert_eq!(
                keyring.verify(&headers(&id, &other.to_string(), &signature), &body, timestamp, 10).unwrap_err(),
                Error::NoMatchingSignature
            );
        }
    }
}

/// A window relative to `now`, bounds optional.
fn window(now: i64) -> impl Strategy<Value = Window> {
    (
        prop::option::of(-100_000i64..100_000),
        prop::option::of(-100_000i64..1_000_000),
    )
        .prop_map(move |(before, after)| Window {
            not_before: before.map(|offset| now + offset),
            not_after: after.map(|offset| now + offset),
        })
}

fn entries(now: i64) -> impl Strategy<Value = Vec<(Vec<u8>, Window)>> {
    prop::collection::vec((key(), window(now)), 0..14)
}

fn keyring(entries: &[(Vec<u8>, Window)]) -> Keyring {
    Keyring::new(
        entries
            .iter()
            .map(|(key, window)| KeyEntry {
                secret: Secret::from_bytes(key).unwrap(),
                window: *window,
            })
            .collect(),
    )
}

const NOW: i64 = 1_800_000_000;

proptest! {
    #[test]
    fn rotation_keeps_what_is_usable_and_caps_the_rest(entries in entries(NOW), new in key(), grace in 0u32..=604_800) {
        let before = keyring(&entries);
        let grace_end = NOW + i64::from(grace);
        let expected: Vec<(String, Window)> = before
            .entries()
            .iter()
            .filter_map(|entry| {
                let not_after = entry.window.not_after.map_or(grace_end, |end| end.min(grace_end));
                (not_after > NOW).then(|| (entry.secret.to_text(), Window { not_before: entry.window.not_before, not_after: Some(not_after) }))
            })
            .collect();
        match before.rotate(Secret::from_bytes(&new).unwrap(), NOW, grace) {
            Err(error) => {
                prop_assert_eq!(error, Error::TooManySecrets);
                prop_assert!(expected.len() > 10);
            }
            Ok(after) => {
                prop_assert!(after.len() - 1 <= 10);
                prop_assert_eq!(after.entries()[0].secret.to_text(), Secret::from_bytes(&new).unwrap().to_text());
                prop_assert_eq!(after.entries()[0].window, Window::default());
                let kept: Vec<(String, Window)> = after.entries()[1..].iter().map(|e| (e.secret.to_text(), e.window)).collect();
                prop_assert_eq!(&kept, &expected);
                // Every secret usable now whose window outlasts now stays usable until the grace ends.
                for entry in before.entries() {
                    if entry.window.contains(NOW) && grace > 0 {
                        let key = entry.secret.to_text();
                        prop_assert!(kept.iter().any(|(kept_key, window)| *kept_key == key && window.contains(NOW)));
                    }
                }
            }
        }
    }

    #[test]
    fn rotation_ignores_expired_entries(entries in entries(NOW), expired in prop::collection::vec((key(), 0i64..100_000), 0..5), new in key(), grace in 0u32..=604_800) {
        let mut with_expired = entries.clone();
        for (key, age) in expired {
            with_expired.push((key, Window { not_before: None, not_after: Some(NOW - age) }));
        }
        let new = Secret::from_bytes(&new).unwrap();
        let plain = keyring(&entries).rotate(new.clone(), NOW, grace).map(|k| k.to_records());
        let noisy = keyring(&with_expired).rotate(new, NOW, grace).map(|k| k.to_records());
        prop_assert_eq!(plain, noisy);
    }
}

/// A header list a receiver might get for `scheme`: the headers it signs,
/// each kept or dropped, in any case, among others (every scheme's names,
/// with good, empty or bad values, so some repeat a signed one).
fn received_headers(scheme: Scheme) -> impl Strategy<Value = Vec<(String, String)>> {
    let names = vec![
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-timestamp",
        "svix-signature",
        "stripe-signature",
        "x-github-delivery",
        "x-hub-signature-256",
        "x-slack-request-timestamp",
        "x-slack-signature",
        "x-shopify-webhook-id",
        "x-shopify-hmac-sha256",
        "content-type",
    ];
    let mut values = vec![
        String::from("msg_1"),
        String::from("1700000000"),
        String::new(),
    ];
    values.extend(
        Scheme::ALL
            .iter()
            .map(|scheme| signed(*scheme).pop().unwrap().1),
    );
    let other = (prop::sample::select(names), prop::sample::select(values))
        .prop_map(|(name, value)| (name.to_string(), value));
    let signed = signed(scheme);
    let kept = prop::collection::vec(any::<u8>(), signed.len());
    (kept, prop::collection::vec(other, 0..4), any::<u64>()).prop_map(
        move |(kept, others, cases)| {
            let mut headers: Vec<(String, String)> = signed
                .iter()
                .zip(kept)
                .filter(|(_, keep)| keep % 5 != 0)
                .map(|(header, _)| header.clone())
                .chain(others)
                .collect();
            for (index, (name, _)) in headers.iter_mut().enumerate() {
                if cases >> (index % 64) & 1 == 1 {
                    *name = name.to_ascii_uppercase();
                }
            }
            headers
        },
    )
}

/// The headers `scheme` sends for `{}`, id `msg_1`, at 1700000000.
fn signed(scheme: Scheme) -> Vec<(String, String)> {
    common::signed_headers(scheme)
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

proptest! {
    #[test]
    fn verifying_the_values_found_is_verifying_the_headers(
        (scheme, headers) in prop::sample::select(Scheme::ALL.to_vec())
            .prop_flat_map(|scheme| (Just(scheme), received_headers(scheme))),
    ) {
        let keyring = common::keyring_for(scheme);
        let from_headers = keyring.verify(&headers, b"{}", 1_700_000_000, 300);
        match HeaderValues::find(scheme, &headers) {
            Ok(values) => prop_assert_eq!(
                keyring.verify_values(values, b"{}", 1_700_000_000, 300),
                from_headers
            ),
            Err(error) => prop_assert_eq!(from_headers, Err(error)),
        }
    }
}
