//! The whole of `verify` over arbitrary header lists, bodies, clocks and
//! tolerances, with a keyring that can match: it returns, never panics.
#![no_main]

use arbitrary::Arbitrary;
use hooksign::{Keyring, SecretRecord};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    now: i64,
    tolerance: u32,
    /// Sign the body first and add the real signature to the headers.
    sign: Option<(String, i64)>,
}

fuzz_target!(|input: Input| {
    let keyring = Keyring::from_records(&[
        SecretRecord::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        SecretRecord {
            not_after: Some(input.now),
            ..SecretRecord::new("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        },
    ])
    .unwrap();
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
