//! API keys as records: minted through the API, stored by their SHA-256
//! (never in clear), listed and revoked per organisation. The keys of the
//! `api_keys` variable are the organisation's bootstrap keys: they work
//! and are listed, but only the variable revokes them.
//!
//! Keys: `apikey/{sha256 hex}` holds a key's record, so a request's key is
//! found by its hash (no comparison of secret bytes, so no timing to
//! measure); `org/{org}/apikeys` lists the organisation's `{id, hash}`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::api::{Api, with_secret};
use crate::auth::{API_KEY_PREFIX, hex, new_api_key};
use crate::model::{new_uuid, rfc3339};
use crate::problem::Code;
use crate::request::Body;
use crate::store::{get_json, set_json, update_json, update_or_default};
use crate::{Platform, Problem, Request, Response};

/// How many characters of a key its record shows.
const SHOWN_PREFIX: usize = API_KEY_PREFIX.len() + 4;

/// `lastUsedAt` is written at most this often per key.
const LAST_USED_EVERY_SECONDS: i64 = 60;

/// A minted key, as stored.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyRecord {
    id: String,
    org: String,
    name: String,
    prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl KeyRecord {
    fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "createdAt": rfc3339(self.created_at),
            "lastUsedAt": self.last_used_at.map(rfc3339),
            "revokedAt": self.revoked_at.map(rfc3339),
            "bootstrap": false,
        })
    }
}

/// An entry of the organisation's list.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct Listed {
    id: String,
    hash: String,
}

fn record_key(hash: &str) -> String {
    format!("apikey/{hash}")
}

fn index_key(org: &str) -> String {
    format!("org/{org}/apikeys")
}

/// The SHA-256 of a key, in hex.
pub fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The organisation of a minted, unrevoked key, and a note of its use
/// (written at most once a minute).
pub fn organisation(
    platform: &impl Platform,
    key: &str,
    now: i64,
) -> Result<Option<String>, Problem> {
    let hash = key_hash(key);
    let Some(record) = get_json::<KeyRecord>(platform, &record_key(&hash))? else {
        return Ok(None);
    };
    if record.revoked_at.is_some() {
        return Ok(None);
    }
    if record
        .last_used_at
        .is_none_or(|used| now - used >= LAST_USED_EVERY_SECONDS)
    {
        update_json(platform, &record_key(&hash), |stored: Option<KeyRecord>| {
            Ok(match stored {
                Some(mut stored)
                    if stored
                        .last_used_at
                        .is_none_or(|used| now - used >= LAST_USED_EVERY_SECONDS) =>
                {
                    stored.last_used_at = Some(now);
                    (Some(stored), ())
                }
                _ => (None, ()),
            })
        })?;
    }
    Ok(Some(record.org))
}

/// The id under which a bootstrap key is listed: from its hash, never the key.
fn bootstrap_id(hash: &[u8; 32]) -> String {
    format!("bootstrap-{}", &hex(hash)[..16])
}

impl<P: Platform> Api<'_, P> {
    /// `POST /api-keys` `{name}`: the key is in this answer only.
    pub fn create_key(&self, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, true)?;
        let name = body.required_string("name");
        body.finish()?;
        let Some(name) = name else {
            return Err(Problem::field("name", "is required"));
        };
        let key = new_api_key().map_err(|_| Problem::random_unavailable())?;
        let hash = key_hash(&key);
        let record = KeyRecord {
            id: new_uuid()?,
            org: self.org.to_string(),
            name,
            prefix: key.chars().take(SHOWN_PREFIX).collect(),
            created_at: self.now,
            last_used_at: None,
            revoked_at: None,
        };
        // The record first: a key that is listed always works.
        set_json(self.platform, &record_key(&hash), &record)?;
        let listed = Listed {
            id: record.id.clone(),
            hash,
        };
        update_or_default(
            self.platform,
            &index_key(self.org),
            |entries: &mut Vec<Listed>| {
                if !entries.contains(&listed) {
                    entries.insert(0, listed.clone());
                }
            },
        )?;
        Ok(with_secret(Response::json(
            201,
            &json!({ "apiKey": record.view(), "key": key }),
        )))
    }

    /// `GET /api-keys`: minted keys newest first, then the bootstrap keys.
    pub fn list_keys(&self) -> Result<Response, Problem> {
        let entries: Vec<Listed> =
            get_json(self.platform, &index_key(self.org))?.unwrap_or_default();
        let mut data = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(record) = get_json::<KeyRecord>(self.platform, &record_key(&entry.hash))? {
                data.push(record.view());
            }
        }
        for hash in self.config.api_keys.hashes_of(self.org) {
            data.push(json!({
                "id": bootstrap_id(hash),
                "name": "bootstrap key (the api_keys variable)",
                "prefix": null,
                "createdAt": null,
                "lastUsedAt": null,
                "revokedAt": null,
                "bootstrap": true,
            }));
        }
        Ok(Response::json(200, &json!({ "data": data })))
    }

    /// `DELETE /api-keys/{id}`: revoked at once; revoking again changes
    /// nothing.
    pub fn revoke_key(&self, id: &str) -> Result<Response, Problem> {
        if self
            .config
            .api_keys
            .hashes_of(self.org)
            .any(|hash| bootstrap_id(hash) == id)
        {
            return Err(Problem::new(
                Code::BootstrapKey,
                "a key of the api_keys variable is revoked by taking it out of the variable",
            ));
        }
        // Key ids are opaque: any other string is a key that does not exist.
        let entries: Vec<Listed> =
            get_json(self.platform, &index_key(self.org))?.unwrap_or_default();
        let entry = entries
            .into_iter()
            .find(|entry| entry.id == id)
            .ok_or_else(|| Problem::not_found(format!("no API key {id}")))?;
        let now = self.now;
        update_json(
            self.platform,
            &record_key(&entry.hash),
            |stored: Option<KeyRecord>| {
                Ok(match stored {
                    Some(mut stored) if stored.revoked_at.is_none() => {
                        stored.revoked_at = Some(now);
                        (Some(stored), ())
                    }
                    _ => (None, ()),
                })
            },
        )?;
        Ok(Response::new(204, Vec::new(), Vec::new()))
    }
}
