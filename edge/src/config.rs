use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::{Platform, Problem};

/// The service's variables (API.md, Configuration), read per request as
/// Spin does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Organisation of each API key, by the key's SHA-256.
    api_keys: Vec<([u8; 32], String)>,
    /// Consecutive failed event deliveries that pause an endpoint.
    pub auto_pause_after: u32,
    /// How long a delivery may take, in milliseconds.
    pub delivery_timeout_ms: u64,
    /// Whether loopback and private targets may be used (local development).
    pub allow_private_targets: bool,
    /// The receiver gateway's sources, as configured JSON.
    pub inbound_sources: Option<String>,
}

impl Config {
    /// Reads the variables; a malformed one is a 500 `invalid_configuration`
    /// that names the variable, never its value.
    pub fn load(platform: &impl Platform) -> Result<Config, Problem> {
        let invalid = |name: &str, rule: &str| {
            Problem::new(
                500,
                "invalid_configuration",
                "Invalid configuration",
                format!("the variable {name} is not {rule}"),
            )
        };
        let api_keys = match platform.variable("api_keys") {
            Some(text) => parse_api_keys(&text)
                .ok_or_else(|| invalid("api_keys", "a comma-separated list of ORG:SHA256HEX"))?,
            None => Vec::new(),
        };
        let number = |name: &str, default: u64, min: u64| -> Result<u64, Problem> {
            match platform.variable(name) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|value| *value >= min)
                    .ok_or_else(|| invalid(name, "a whole number in range")),
            }
        };
        let auto_pause_after = u32::try_from(number("auto_pause_after", 5, 1)?)
            .map_err(|_| invalid("auto_pause_after", "a whole number in range"))?;
        let delivery_timeout_ms = number("delivery_timeout_ms", 15_000, 1)?;
        let allow_private_targets = match platform
            .variable("allow_private_targets")
            .as_deref()
            .map(str::trim)
        {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(invalid("allow_private_targets", "true or false")),
        };
        Ok(Config {
            api_keys,
            auto_pause_after,
            delivery_timeout_ms,
            allow_private_targets,
            inbound_sources: platform.variable("inbound_sources"),
        })
    }

    /// The organisation an API key belongs to. Keys are compared by their
    /// SHA-256, in constant time.
    pub fn organisation(&self, api_key: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(api_key.as_bytes()).into();
        let mut found = None;
        for (hash, org) in &self.api_keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(org.as_str());
            }
        }
        found
    }
}

/// `ORG:HEX,ORG:HEX`: HEX is the lowercase SHA-256 of a whole key.
fn parse_api_keys(text: &str) -> Option<Vec<([u8; 32], String)>> {
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
    Some(keys.into_iter().collect())
}

/// The `api_keys` entry for a key: `ORG:` and the key's lowercase SHA-256.
pub fn api_key_entry(org: &str, api_key: &str) -> String {
    let digest = Sha256::digest(api_key.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{org}:{hex}")
}
