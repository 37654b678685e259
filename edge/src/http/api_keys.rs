//! API keys' handlers: mint (the key is in that answer only), list
//! (minted keys, then the bootstrap keys of `api_keys`), revoke.

use serde_json::json;

use crate::domain::api_key::{self, KeyRecord, SHOWN_PREFIX, bootstrap_id};
use crate::foundation::credentials::new_api_key;
use crate::foundation::encoding::{new_uuid, sha256_hex};
use crate::foundation::problem::{Code, Problem};
use crate::http::context::{Api, with_secret};
use crate::http::request::Body;
use crate::platform::{Platform, Request, Response};

/// `POST /api-keys` `{name}`.
pub fn create<P: Platform>(api: &Api<'_, P>, request: &Request) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let name = body.required_string("name");
    body.finish()?;
    let Some(name) = name else {
        return Err(Problem::field("name", "is required"));
    };
    let key = new_api_key().map_err(|_| Problem::random_unavailable())?;
    let record = KeyRecord {
        id: new_uuid()?,
        org: api.org.clone(),
        name,
        prefix: key.chars().take(SHOWN_PREFIX).collect(),
        created_at_s: api.now_s,
        last_used_at_s: None,
        revoked_at_s: None,
        minted_by: Some(api.key_id.to_string()),
    };
    api_key::create(
        api.platform,
        &record,
        sha256_hex(&key),
        api.config.max_api_keys_per_org,
    )?;
    Ok(with_secret(Response::json(
        201,
        &json!({ "apiKey": record.view(), "key": key }),
    )))
}

/// `GET /api-keys`: minted keys newest first, then the bootstrap keys.
pub fn list<P: Platform>(api: &Api<'_, P>) -> Result<Response, Problem> {
    let mut data: Vec<_> = api_key::list(api.platform, api.org)?
        .iter()
        .map(KeyRecord::view)
        .collect();
    for hash in api.config.api_keys.hashes_of(api.org.as_str()) {
        data.push(json!({
            "id": bootstrap_id(hash),
            "name": "bootstrap key (the api_keys variable)",
            "prefix": null,
            "createdAt": null,
            "lastUsedAt": null,
            "revokedAt": null,
            "mintedBy": null,
            "bootstrap": true,
        }));
    }
    Ok(Response::json(200, &json!({ "data": data })))
}

/// `DELETE /api-keys/{id}`: revoked at once; revoking again changes
/// nothing.
pub fn revoke<P: Platform>(api: &Api<'_, P>, id: &str) -> Result<Response, Problem> {
    if api
        .config
        .api_keys
        .hashes_of(api.org.as_str())
        .any(|hash| bootstrap_id(hash) == id)
    {
        return Err(Problem::new(
            Code::BootstrapKey,
            "a key of the api_keys variable is revoked by taking it out of the variable",
        ));
    }
    api_key::revoke(api.platform, api.org, id, api.now_s)?;
    Ok(Response::new(204, Vec::new(), Vec::new()))
}
