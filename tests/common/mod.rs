//! What the library's test files share: one signed delivery per scheme.

use hooksign::{Keyring, Scheme, SecretRecord};

/// A keyring of one secret for `scheme`: the Standard Webhooks
/// specification's example secret, or GitHub's documented one as a
/// provider's text.
pub fn keyring_for(scheme: Scheme) -> Keyring {
    let key = match scheme {
        Scheme::StandardWebhooks => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "It's a Secret to Everybody",
    };
    Keyring::from_records_for(scheme, &[SecretRecord::new(key)]).unwrap()
}

/// The headers [`keyring_for`] sends for `{}`, id `msg_1`, at 1700000000.
pub fn signed_headers(scheme: Scheme) -> Vec<(&'static str, String)> {
    keyring_for(scheme)
        .sign_headers("msg_1", 1_700_000_000, b"{}")
        .unwrap()
}
