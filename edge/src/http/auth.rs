//! The credential check of every API request: the bearer key's
//! organisation (a bootstrap key of `api_keys`, or a minted key's record),
//! then the rate limit of that key.

use crate::domain::{api_key, limits};
use crate::foundation::config::Config;
use crate::foundation::credentials::API_KEY_PREFIX;
use crate::foundation::problem::{Code, Problem};
use crate::ids::OrgId;
use crate::platform::{Platform, Request};

/// The key of an `Authorization: Bearer KEY` header.
pub fn bearer(request: &Request) -> Option<&str> {
    request
        .header("authorization")?
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
}

/// The organisation of the request's bearer key, once the key's rate limit
/// allows the request: a bootstrap key of the `api_keys` variable, or a
/// minted, unrevoked key. A key without the `sgn_live_` prefix is never one.
pub fn authenticate(
    config: &Config,
    platform: &impl Platform,
    request: &Request,
    now: i64,
) -> Result<OrgId, Problem> {
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
    let org = match config.api_keys.organisation(key) {
        Some(org) => OrgId::new(org),
        None => api_key::organisation(platform, key, now)?.ok_or_else(invalid)?,
    };
    limits::take(
        platform,
        key,
        config.rate_limit_per_key,
        platform.now_millis(),
    )?;
    Ok(org)
}
