//! Credentials' formats: API keys (`sgn_live_…`), the `api_keys` variable
//! that lists the organisations' bootstrap keys by hash, and the dispatch
//! token. Checking a request's credentials is `http::auth`'s.

use subtle::ConstantTimeEq as _;

use crate::foundation::encoding::{hash_from_hex, hex, sha256, sha256_hex};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "sgn_live_";

/// The organisation of each configured key, by the key's SHA-256: keys are
/// never held in clear.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Vec<([u8; 32], String)>);

impl ApiKeys {
    /// `ORG:HEX,ORG:HEX`, HEX the lowercase SHA-256 of a whole key.
    pub fn parse(text: &str) -> Option<ApiKeys> {
        let mut keys = std::collections::BTreeMap::new();
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (org, hex) = entry.split_once(':')?;
            if org.is_empty() {
                return None;
            }
            keys.insert(hash_from_hex(hex)?, org.to_string());
        }
        Some(ApiKeys(keys.into_iter().collect()))
    }

    /// The hashes of an organisation's keys.
    pub fn hashes_of<'a>(&'a self, org: &'a str) -> impl Iterator<Item = &'a [u8; 32]> + 'a {
        self.0
            .iter()
            .filter(move |(_, owner)| owner == org)
            .map(|(hash, _)| hash)
    }

    /// The organisation an API key belongs to. Every configured hash is
    /// compared, in constant time.
    pub fn organisation(&self, api_key: &str) -> Option<&str> {
        let digest = sha256(api_key);
        let mut found = None;
        for (hash, org) in &self.0 {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(org.as_str());
            }
        }
        found
    }
}

/// The token of `POST /dispatch` (the `dispatch_token` variable), kept as
/// its SHA-256 so that `Debug` and comparisons never touch it in clear.
#[derive(Clone)]
pub struct DispatchToken([u8; 32]);

/// The shortest `dispatch_token` taken: one that guessing cannot reach.
pub const MIN_DISPATCH_TOKEN_LEN: usize = 32;

impl DispatchToken {
    /// Whether a configured token is long enough to be taken.
    pub fn long_enough(token: &str) -> bool {
        token.trim().len() >= MIN_DISPATCH_TOKEN_LEN
    }

    /// The token's hash.
    pub fn new(token: &str) -> DispatchToken {
        DispatchToken(sha256(token.trim()))
    }

    /// Whether `given` (a request's bearer token) is this one, in constant
    /// time.
    pub fn admits(&self, given: Option<&str>) -> bool {
        bool::from(self.0.ct_eq(&sha256(given.unwrap_or(""))))
    }
}

impl std::fmt::Debug for DispatchToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DispatchToken(..)")
    }
}

/// A new API key: the prefix and 24 random bytes in hex.
pub fn new_api_key() -> Result<String, getrandom::Error> {
    let mut random = [0u8; 24];
    getrandom::fill(&mut random)?;
    Ok(format!("{API_KEY_PREFIX}{}", hex(&random)))
}

/// The `api_keys` entry for a key: `ORG:` and the key's lowercase SHA-256.
pub fn api_key_entry(org: &str, api_key: &str) -> String {
    format!("{org}:{}", sha256_hex(api_key))
}

/// Whether `org` can name an organisation in `api_keys`.
pub fn is_valid_organisation(org: &str) -> bool {
    !org.is_empty() && !org.contains([':', ','])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_found_through_its_entry() {
        let key = new_api_key().unwrap_or_default();
        assert!(key.starts_with(API_KEY_PREFIX) && key.len() == API_KEY_PREFIX.len() + 48);
        let keys = ApiKeys::parse(&api_key_entry("acme", &key)).unwrap_or_default();
        assert_eq!(keys.organisation(&key), Some("acme"));
        assert_eq!(keys.organisation("sgn_live_other"), None);
    }

    #[test]
    fn entries_must_be_lowercase_hex_of_32_bytes() {
        let hash = sha256_hex("k");
        assert!(ApiKeys::parse(&format!("acme:{hash}")).is_some());
        assert!(ApiKeys::parse(&format!("acme:{}", hash.to_uppercase())).is_none());
        assert!(ApiKeys::parse(&format!("acme:{}", &hash[..62])).is_none());
        assert!(ApiKeys::parse(&format!(":{hash}")).is_none());
    }
}
