//! API keys as records: minted through the API, stored by their SHA-256
//! (never in clear), listed and revoked per organisation. The keys of the
//! `api_keys` variable are the organisation's bootstrap keys: they work
//! and are listed, but only the variable revokes them.
//!
//! `apikey/{sha256 hex}` holds a key's record, so a request's key is
//! found by its hash (no comparison of secret bytes, so no timing to
//! measure); `org/{org}/apikeys` lists the organisation's `{id, hash}`,
//! and which of them are revoked, so that the live keys are counted
//! against `max_api_keys_per_org` in the same change that lists a new one.
//! A record names the key that minted it; revoking a key leaves the keys
//! it minted working (docs/API.md).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::foundation::credentials::API_KEY_PREFIX;
use crate::foundation::encoding::{hex, rfc3339, sha256_hex};
use crate::foundation::problem::{Code, Problem};
use crate::ids::OrgId;
use crate::platform::Platform;
use crate::store::keys::{self, OrgList};
use crate::store::{get_json, get_org_list, remove, set_json, update_json, update_org_list};

/// How many characters of a key its record shows.
pub const SHOWN_PREFIX: usize = API_KEY_PREFIX.len() + 4;

/// `lastUsedAt` is written at most this often per key.
const LAST_USED_EVERY_SECONDS: i64 = 60;

/// A minted key, as stored. Times are Unix seconds.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub id: String,
    pub org: OrgId,
    pub name: String,
    pub prefix: String,
    #[serde(rename = "createdAt")]
    pub created_at_s: i64,
    #[serde(rename = "lastUsedAt")]
    pub last_used_at_s: Option<i64>,
    #[serde(rename = "revokedAt")]
    pub revoked_at_s: Option<i64>,
    /// The id of the key whose request minted this one (a bootstrap key's
    /// listed id); absent for keys minted before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<String>,
}

impl KeyRecord {
    /// The API's view of it.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "createdAt": rfc3339(self.created_at_s),
            "lastUsedAt": self.last_used_at_s.map(rfc3339),
            "revokedAt": self.revoked_at_s.map(rfc3339),
            "mintedBy": self.minted_by,
            "bootstrap": false,
        })
    }
}

/// An entry of the organisation's list. Entries of before carry no
/// `revoked` and count as live until revoked again.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct Listed {
    id: String,
    hash: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    revoked: bool,
}

/// The record of a minted, unrevoked key, and a note of its use (written
/// at most once a minute).
pub fn find(platform: &impl Platform, key: &str, now: i64) -> Result<Option<KeyRecord>, Problem> {
    let hash = sha256_hex(key);
    let Some(record) = get_json::<KeyRecord>(platform, &keys::api_key(&hash))? else {
        return Ok(None);
    };
    if record.revoked_at_s.is_some() {
        return Ok(None);
    }
    if record
        .last_used_at_s
        .is_none_or(|used| now - used >= LAST_USED_EVERY_SECONDS)
    {
        update_json(
            platform,
            &keys::api_key(&hash),
            |stored: Option<KeyRecord>| {
                Ok(match stored {
                    Some(mut stored)
                        if stored
                            .last_used_at_s
                            .is_none_or(|used| now - used >= LAST_USED_EVERY_SECONDS) =>
                    {
                        stored.last_used_at_s = Some(now);
                        (Some(stored), ())
                    }
                    _ => (None, ()),
                })
            },
        )?;
    }
    Ok(Some(record))
}

/// The id under which a bootstrap key is listed: from its hash, never the key.
pub fn bootstrap_id(hash: &[u8; 32]) -> String {
    format!("bootstrap-{}", &hex(hash)[..16])
}

/// Stores a minted key (`hash` the SHA-256 of the key, in hex), then
/// lists it: a key that is listed always works. 409 `quota_exceeded` when
/// the organisation has `max_live` live keys (counted in the change that
/// would list it); the record stored for it is removed again (no one was
/// given its key).
pub fn create(
    platform: &impl Platform,
    record: &KeyRecord,
    hash: String,
    max_live: usize,
) -> Result<(), Problem> {
    set_json(platform, &keys::api_key(&hash), record)?;
    let listed = Listed {
        id: record.id.clone(),
        hash: hash.clone(),
        revoked: false,
    };
    let mut over = false;
    update_index(platform, &record.org, |entries: &mut Vec<Listed>| {
        if entries.contains(&listed) {
            over = false;
            return;
        }
        over = live(entries) >= max_live;
        if !over {
            entries.insert(0, listed.clone());
        }
    })?;
    if over {
        remove(platform, &keys::api_key(&hash))?;
        return Err(Problem::new(
            Code::QuotaExceeded,
            format!(
                "the organisation has max_api_keys_per_org ({max_live}) live API keys; revoke one first"
            ),
        ));
    }
    Ok(())
}

fn live(entries: &[Listed]) -> usize {
    entries.iter().filter(|entry| !entry.revoked).count()
}

/// The organisation's minted keys, newest first.
pub fn list(platform: &impl Platform, org: &OrgId) -> Result<Vec<KeyRecord>, Problem> {
    let mut records = Vec::new();
    for entry in index(platform, org)? {
        if let Some(record) = get_json::<KeyRecord>(platform, &keys::api_key(&entry.hash))? {
            records.push(record);
        }
    }
    Ok(records)
}

/// Revokes the organisation's minted key `id` at `now`, then marks it
/// revoked in the list (so it no longer counts as live); revoking again
/// changes nothing but a list that missed the mark. 404 for a key the
/// organisation does not have.
pub fn revoke(platform: &impl Platform, org: &OrgId, id: &str, now: i64) -> Result<(), Problem> {
    // Key ids are opaque: any other string is a key that does not exist.
    let entry = index(platform, org)?
        .into_iter()
        .find(|entry| entry.id == id)
        .ok_or_else(|| Problem::not_found(format!("no API key {id}")))?;
    update_json(
        platform,
        &keys::api_key(&entry.hash),
        |stored: Option<KeyRecord>| {
            Ok(match stored {
                Some(mut stored) if stored.revoked_at_s.is_none() => {
                    stored.revoked_at_s = Some(now);
                    (Some(stored), ())
                }
                _ => (None, ()),
            })
        },
    )?;
    if entry.revoked {
        return Ok(());
    }
    update_index(platform, org, |entries: &mut Vec<Listed>| {
        for listed in entries.iter_mut().filter(|listed| listed.id == id) {
            listed.revoked = true;
        }
    })
}

/// Removes every minted key of the organisation, and its list.
pub fn erase(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    for entry in index(platform, org)? {
        remove(platform, &keys::api_key(&entry.hash))?;
    }
    remove(platform, &keys::org_list(OrgList::ApiKeys, org))?;
    match keys::unencoded_org_list(OrgList::ApiKeys, org) {
        Some(old) => remove(platform, &old),
        None => Ok(()),
    }
}

fn index(platform: &impl Platform, org: &OrgId) -> Result<Vec<Listed>, Problem> {
    get_org_list(platform, OrgList::ApiKeys, org)
}

/// Changes the organisation's list.
fn update_index(
    platform: &impl Platform,
    org: &OrgId,
    change: impl FnMut(&mut Vec<Listed>),
) -> Result<(), Problem> {
    update_org_list(platform, OrgList::ApiKeys, org, change)
}
