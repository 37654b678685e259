//! Credentials' formats: API keys (`sgn_live_…`), the `api_keys` variable
//! that lists the organisations' bootstrap keys by hash, platform keys
//! (`sgn_plat_…`, listed by hash in `platform_keys`), dashboard links and
//! sessions (`sgn_link_…`, `sgn_sess_…`), and the dispatch and metrics
//! tokens. Checking
//! a request's credentials is `http::auth`'s.

use subtle::ConstantTimeEq as _;

use crate::foundation::encoding::{hash_from_hex, hex, sha256, sha256_hex};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "sgn_live_";

/// Every platform key starts with this.
pub const PLATFORM_KEY_PREFIX: &str = "sgn_plat_";

/// Every dashboard link's token starts with this.
pub const LINK_PREFIX: &str = "sgn_link_";

/// Every dashboard session's token starts with this.
pub const SESSION_PREFIX: &str = "sgn_sess_";

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

    /// Whether the variable names the organisation.
    pub fn has(&self, org: &str) -> bool {
        self.0.iter().any(|(_, owner)| owner == org)
    }

    /// The organisations the variable names, sorted, each once.
    pub fn organisations(&self) -> Vec<&str> {
        let mut orgs: Vec<&str> = self.0.iter().map(|(_, org)| org.as_str()).collect();
        orgs.sort_unstable();
        orgs.dedup();
        orgs
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

/// The `platform_keys` variable: the SHA-256 of each platform key.
#[derive(Debug, Clone, Default)]
pub struct PlatformKeys(Vec<[u8; 32]>);

impl PlatformKeys {
    /// `HEX,HEX`, each the lowercase SHA-256 of a whole key.
    pub fn parse(text: &str) -> Option<PlatformKeys> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(hash_from_hex)
            .collect::<Option<Vec<_>>>()
            .map(PlatformKeys)
    }

    /// The listed id of a platform key (from its hash, never the key), if
    /// it is one. Every configured hash is compared, in constant time.
    pub fn id_of(&self, key: &str) -> Option<String> {
        let digest = sha256(key);
        let mut found = false;
        for hash in &self.0 {
            found |= bool::from(hash.ct_eq(&digest));
        }
        found.then(|| format!("platform-{}", &hex(&digest)[..16]))
    }
}

/// A configured bearer token (`dispatch_token` for `POST /dispatch`,
/// `metrics_token` for `GET /metrics`), kept as its SHA-256 so that
/// `Debug` and comparisons never touch it in clear.
#[derive(Clone)]
pub struct BearerToken([u8; 32]);

/// The shortest bearer token taken: one that guessing cannot reach.
pub const MIN_BEARER_TOKEN_LEN: usize = 32;

/// What a token variable (`dispatch_token`, `metrics_token`) holds.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfiguredToken<'a> {
    /// Unset or empty: no token.
    Unset,
    /// Shorter than [`MIN_BEARER_TOKEN_LEN`]: refused.
    TooShort,
    /// A token, trimmed.
    Token(&'a str),
}

impl BearerToken {
    /// What a token variable's `value` configures.
    pub fn configured(value: Option<&str>) -> ConfiguredToken<'_> {
        match value.map(str::trim) {
            None | Some("") => ConfiguredToken::Unset,
            Some(token) if token.len() < MIN_BEARER_TOKEN_LEN => ConfiguredToken::TooShort,
            Some(token) => ConfiguredToken::Token(token),
        }
    }

    /// The token's hash.
    pub fn new(token: &str) -> BearerToken {
        BearerToken(sha256(token.trim()))
    }

    /// Whether `given` (a request's bearer token) is this one, in constant
    /// time.
    pub fn admits(&self, given: Option<&str>) -> bool {
        bool::from(self.0.ct_eq(&sha256(given.unwrap_or(""))))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

/// A new API key: the prefix and 24 random bytes in hex.
pub fn new_api_key() -> Result<String, getrandom::Error> {
    new_token(API_KEY_PREFIX)
}

/// A new secret token: `prefix` and 24 random bytes in hex.
pub fn new_token(prefix: &str) -> Result<String, getrandom::Error> {
    let mut random = [0u8; 24];
    getrandom::fill(&mut random)?;
    Ok(format!("{prefix}{}", hex(&random)))
}

/// The `api_keys` entry for a key: `ORG:` and the key's lowercase SHA-256.
pub fn api_key_entry(org: &str, api_key: &str) -> String {
    format!("{org}:{}", sha256_hex(api_key))
}

/// A new platform key.
pub fn new_platform_key() -> Result<String, getrandom::Error> {
    new_token(PLATFORM_KEY_PREFIX)
}

/// The `platform_keys` entry for a key: its lowercase SHA-256.
pub fn platform_key_entry(platform_key: &str) -> String {
    sha256_hex(platform_key)
}

/// Whether `org` can name an organisation in `api_keys`.
pub fn is_valid_organisation(org: &str) -> bool {
    !org.is_empty() && !org.contains([':', ','])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_variable_is_unset_when_empty_and_refused_when_short() {
        let long = "t".repeat(MIN_BEARER_TOKEN_LEN);
        let padded = format!(" {long} ");
        assert_eq!(BearerToken::configured(None), ConfiguredToken::Unset);
        assert_eq!(BearerToken::configured(Some("  ")), ConfiguredToken::Unset);
        assert_eq!(
            BearerToken::configured(Some(&long[1..])),
            ConfiguredToken::TooShort
        );
        assert_eq!(
            BearerToken::configured(Some(&padded)),
            ConfiguredToken::Token(long.as_str())
        );
    }

    #[test]
    fn a_new_key_is_found_through_its_entry() {
        let key = new_api_key().unwrap_or_default();
        assert!(key.starts_with(API_KEY_PREFIX) && key.len() == API_KEY_PREFIX.len() + 48);
        let keys = ApiKeys::parse(&api_key_entry("acme", &key)).unwrap_or_default();
        assert_eq!(keys.organisation(&key), Some("acme"));
        assert_eq!(keys.organisation("sgn_live_other"), None);
    }

    #[test]
    fn a_platform_key_is_known_by_its_hash_only() {
        let key = new_token(PLATFORM_KEY_PREFIX).unwrap_or_default();
        let keys = PlatformKeys::parse(&format!(" {} ,", sha256_hex(&key))).unwrap_or_default();
        let id = keys.id_of(&key).unwrap_or_default();
        assert!(id.starts_with("platform-") && !id.contains(&key[PLATFORM_KEY_PREFIX.len()..]));
        assert_eq!(keys.id_of("sgn_plat_other"), None);
        assert!(PlatformKeys::parse("acme:00").is_none());
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
