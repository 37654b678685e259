//! Secret text parsing: any string is a secret or `invalid-secret`, and a
//! parsed secret's text form parses back to the same key.
#![no_main]

use hooksign::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(secret) = Secret::parse(text) {
        let again = Secret::parse(&secret.to_text()).expect("a written secret parses");
        assert_eq!(again.to_text(), secret.to_text());
    }
});
