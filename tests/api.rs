//! The library's API beyond the vector files: secret hygiene, generation,
//! text forms, headers and the clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hooksign::{
    Error, HeaderValues, Keyring, MAX_KEY_LEN, MIN_KEY_LEN, Scheme, Secret, SecretRecord,
};

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY_BASE64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn debug_output_never_shows_key_material() {
    let secret = Secret::parse(KEY).unwrap();
    let record = SecretRecord {
        key: KEY.into(),
        not_before: Some(1),
        not_after: Some(2),
    };
    let keyring = Keyring::from_records(std::slice::from_ref(&record)).unwrap();
    for shown in [
        format!("{secret:?}"),
        format!("{record:?}"),
        format!("{keyring:?}"),
        format!("{:#?}", keyring.entries()),
    ] {
        assert!(!shown.contains(KEY_BASE64), "key bytes shown: {shown}");
        assert!(!shown.contains("MfKQ"), "key prefix shown: {shown}");
    }
    assert!(format!("{record:?}").contains("not_after: Some(2)"));
}

#[test]
fn errors_have_stable_codes_and_quiet_messages() {
    for error in Error::ALL {
        assert_eq!(Error::from_code(error.code()), Some(error));
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(Error::from_code("unknown"), None);
    assert_eq!(Error::InvalidSecret.code(), "invalid-secret");
    let error = Secret::parse("whsec_c2hvcnQtc2VjcmV0").unwrap_err();
    assert_eq!(error, Error::InvalidSecret);
    assert!(!error.to_string().contains("c2hvcnQ"));
}

#[test]
fn generated_secrets_are_32_random_bytes_in_canonical_form() {
    let first = Secret::generate().unwrap();
    let second = Secret::generate().unwrap();
    assert_eq!(first.len(), 32);
    let text = first.to_text();
    assert!(text.starts_with("whsec_"));
    assert!(text.ends_with('='), "padded base64: {text}");
    assert_eq!(text.len(), "whsec_".len() + 44);
    assert_ne!(text, second.to_text());
    assert_eq!(Secret::parse(&text).unwrap().to_text(), text);
}

#[test]
fn key_length_bounds() {
    assert!(Secret::from_bytes(&[7; MIN_KEY_LEN]).is_ok());
    assert!(Secret::from_bytes(&[7; MAX_KEY_LEN]).is_ok());
    assert_eq!(
        Secret::from_bytes(&[7; MIN_KEY_LEN - 1]).unwrap_err(),
        Error::InvalidSecret
    );
    assert_eq!(
        Secret::from_bytes(&[7; MAX_KEY_LEN + 1]).unwrap_err(),
        Error::InvalidSecret
    );
    assert_eq!(
        Secret::parse(&"A".repeat(100_000)).unwrap_err(),
        Error::InvalidSecret
    );
}

#[test]
fn sign_headers_verify_with_the_system_clock() {
    let keyring = Keyring::from_records(&[SecretRecord::new(KEY)]).unwrap();
    let now = hooksign::unix_now();
    assert!(now > 1_700_000_000, "clock reads {now}");
    let headers = keyring.sign_headers("msg_1", now, b"{}").unwrap();
    assert_eq!(headers[0], ("webhook-id", "msg_1".to_string()));
    assert_eq!(headers[1], ("webhook-timestamp", now.to_string()));
    assert!(headers[2].1.starts_with("v1,"));
    let verified = keyring.verify_now(&headers, b"{}", 300).unwrap();
    assert_eq!(verified.secret, 0);
    assert_eq!(verified.id, "msg_1");
    assert_eq!(verified.timestamp, now);
    assert_eq!(
        keyring.verify_now(&headers, b"{ }", 300).unwrap_err(),
        Error::NoMatchingSignature
    );
}

#[test]
fn rotation_leaves_the_original_keyring_unchanged() {
    let keyring = Keyring::from_records(&[SecretRecord::new(KEY)]).unwrap();
    let rotated = keyring
        .rotate(Secret::generate().unwrap(), 1_000, 60)
        .unwrap();
    assert_eq!(keyring.len(), 1);
    assert_eq!(keyring.entries()[0].window.not_after, None);
    assert_eq!(rotated.len(), 2);
    assert_eq!(rotated.entries()[1].window.not_after, Some(1_060));
    assert_eq!(rotated.active(1_059), vec![0, 1]);
    assert_eq!(rotated.active(1_060), vec![0]);
}

#[test]
fn headers_may_be_borrowed_or_owned() {
    let keyring = Keyring::from_records(&[SecretRecord::new(KEY)]).unwrap();
    let signature = keyring.sign("msg_1", 10, b"x").unwrap();
    let borrowed = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "10"),
        ("webhook-signature", signature.as_str()),
    ];
    let owned: Vec<(String, String)> = borrowed
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    assert_eq!(keyring.verify(&borrowed, b"x", 10, 0).unwrap().secret, 0);
    assert_eq!(keyring.verify(&owned, b"x", 10, 0).unwrap().secret, 0);
}

#[test]
fn header_values_verify_as_the_headers_they_were_found_in() {
    for scheme in Scheme::ALL {
        let (keyring, headers) = (common::keyring_for(scheme), common::signed_headers(scheme));
        let values = HeaderValues::find(scheme, &headers).unwrap();
        let from_headers = keyring.verify(&headers, b"{}", 1_700_000_000, 300);
        let from_values = keyring.verify_values(values, b"{}", 1_700_000_000, 300);
        assert_eq!(from_values, from_headers, "{scheme:?}");
        assert_eq!(from_values.unwrap().secret, 0, "{scheme:?}");
        assert_eq!(
            keyring.verify_values(values, b"{ }", 1_700_000_000, 300),
            Err(Error::NoMatchingSignature),
            "{scheme:?}"
        );
    }
}

#[test]
fn a_header_value_the_scheme_reads_must_be_there_and_others_are_ignored() {
    type Field = for<'a> fn(&'a mut HeaderValues<'static>) -> &'a mut Option<&'static str>;
    let fields: [(&str, Field); 3] = [
        ("id", |values| &mut values.id),
        ("timestamp", |values| &mut values.timestamp),
        ("signature", |values| &mut values.signature),
    ];
    let mut read_by_some_scheme = [false; 3];
    for scheme in Scheme::ALL {
        let (keyring, headers) = (common::keyring_for(scheme), common::signed_headers(scheme));
        let headers: &'static [(&str, String)] = Vec::leak(headers);
        let found = HeaderValues::find(scheme, headers).unwrap();
        for (index, (name, field)) in fields.into_iter().enumerate() {
            let mut values = found;
            if field(&mut values).is_some() {
                read_by_some_scheme[index] = true;
                for missing in [None, Some("")] {
                    *field(&mut values) = missing;
                    let got = keyring.verify_values(values, b"{}", 1_700_000_000, 300);
                    assert_eq!(got, Err(Error::MissingHeader), "{scheme:?} {name}");
                }
            } else {
                *field(&mut values) = Some("not read");
                let got = keyring.verify_values(values, b"{}", 1_700_000_000, 300);
                assert_eq!(got.unwrap().secret, 0, "{scheme:?} {name}");
            }
        }
    }
    assert_eq!(read_by_some_scheme, [true; 3]);
}
