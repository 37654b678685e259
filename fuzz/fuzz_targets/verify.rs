//! The whole of `verify` over arbitrary header lists, bodies, clocks and
//! tolerances, under every scheme, with a keyring that can match (an HMAC
//! secret, an expiring one and, for Standard Webhooks, an Ed25519 key): it
//! returns, never panics.
#![no_main]

use arbitrary::Arbitrary;
use hooksign::{Keyring, Scheme, SecretRecord};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    scheme: u8,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    now: i64,
    tolerance: u32,
    /// Sign the body first and add the real signature to the headers.
    sign: Option<(String, i64)>,
}

fuzz_target!(|input: Input| {
    let scheme = Scheme::ALL[usize::from(input.scheme) % Scheme::ALL.len()];
    let mut records = vec![
        SecretRecord::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        SecretRecord {
            not_after: Some(input.now),
            ..SecretRecord::new("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        },
    ];
    if scheme == Scheme::StandardWebhooks {
        records.push(SecretRecord::new(
            "whsk_KCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkc=",
        ));
    }
    let keyring = Keyring::from_records_for(scheme, &records).unwrap();
    let mut headers = input.headers;
    if let Some((id, timestamp)) = input.sign {
        if let Ok(signed) = keyring.sign_headers(&id, timestamp, &input.body) {
            headers.extend(
                signed
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value)),
            );
        }
    }
    let _ = keyring.verify(&headers, &input.body, input.now, input.tolerance);
});
