//! API keys: their format, the `api_keys` variable that configures them,
//! and the bearer check of every API request.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::problem::Code;
use crate::{Config, Platform, Problem, Request};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "sgn_live_";

/// The organisation of each configured key, by the key's SHA-256: keys are
/// never held in clear.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Vec<([u8; 32], String)>);

impl ApiKeys {
    /// `ORG:HEX,ORG:HEX`, HEX the lowercase SHA-256 of a whole key.
    pub fn parse(text: &str) -> Option<ApiKeys> {
        let mut keys = BTreeMap::new();
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (org, hex) = entry.split_once(':')?;
            if org.is_empty() || hex.len() != 64 {
                return None;
            }
            let mut hash = [0u8; 32];
            for (byte, pair) in hash.iter_mut().zip(hex.as_bytes().chunks(2)) {
                let pair = std::str::from_utf8(pair).ok()?;
                if pair.bytes().any(|digit| digit.is_ascii_uppercase()) {
                    return None;
                }
                *byte = u8::from_str_radix(pair, 16).ok()?;
            }
            keys.insert(hash, org.to_string());
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
        let digest: [u8; 32] = Sha256::digest(api_key.as_bytes()).into();
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

impl DispatchToken {
    /// The token's hash.
    pub fn new(token: &str) -> DispatchToken {
        DispatchToken(Sha256::digest(token.trim().as_bytes()).into())
    }

    /// Whether the request's bearer token is this one (constant time).
    pub fn admits(&self, request: &Request) -> bool {
        let given = bearer(request).unwrap_or("");
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(self.0.ct_eq(&digest))
    }
}

impl std::fmt::Debug for DispatchToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DispatchToken(..)")
    }
}

/// The key of an `Authorization: Bearer KEY` header.
pub(crate) fn bearer(request: &Request) -> Option<&str> {
    request
        .header("authorization")?
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
}

/// A new API key: the prefix and 24 random bytes in hex.
pub fn new_api_key() -> Result<String, getrandom::Error> {
    let mut random = [0u8; 24];
    getrandom::fill(&mut random)?;
    Ok(format!("{API_KEY_PREFIX}{}", hex(&random)))
}

/// The `api_keys` entry for a key: `ORG:` and the key's lowercase SHA-256.
pub fn api_key_entry(org: &str, api_key: &str) -> String {
    format!("{org}:{}", hex(&Sha256::digest(api_key.as_bytes())))
}

/// Whether `org` can name an organisation in `api_keys`.
pub fn is_valid_organisation(org: &str) -> bool {
    !org.is_empty() && !org.contains([':', ','])
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The organisation of the request's bearer key: a bootstrap key of the
/// `api_keys` variable, or a minted, unrevoked key. A key without the
/// `sgn_live_` prefix is never one.
pub fn authenticate(
    config: &Config,
    platform: &impl Platform,
    request: &Request,
    now: i64,
) -> Result<String, Problem> {
    let header = request.header("authorization").unwrap_or("").trim();
    if header.is_empty() {
        return Err(Problem::new(
            Code::MissingCredentials,
            "send an API key as `Authorization: Bearer sgn_live_…`",
        ));
    }
    let invalid = || Problem::new(Code::InvalidCredentials, "the API key is not valid");
    let key = bearer(request)
        .filter(|key| key.starts_with(API_KEY_PREFIX))
        .ok_or_else(invalid)?;
    if let Some(org) = config.api_keys.organisation(key) {
        return Ok(org.to_string());
    }
    crate::keys::organisation(platform, key, now)?.ok_or_else(invalid)
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
}
