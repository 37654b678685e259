//! The credential check of every API request: the bearer key's
//! organisation (a bootstrap key of `api_keys`, or a minted key's record),
//! then the rate limits of that key and its organisation.

use crate::domain::{api_key, limits};
use crate::foundation::config::Config;
use crate::foundation::credentials::API_KEY_PREFIX;
use crate::foundation::encoding::sha256;
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

/// The API key the request's headers present: 401 when there is none, or
/// it lacks the `sgn_live_` prefix. Needs no store and no body.
pub fn presented_key(request: &Request) -> Result<&str, Problem> {
    let header = request.header("authorization").unwrap_or("").trim();
    if header.is_empty() {
        return Err(Problem::new(
            Code::MissingCredentials,
            "send an API key as `Authorization: Bearer sgn_live_…`",
        ));
    }
    bearer(request)
        .filter(|key| key.starts_with(API_KEY_PREFIX))
        .ok_or_else(invalid_key)
}

/// 401: the key is no API key, or none that works.
fn invalid_key() -> Problem {
    Problem::new(Code::InvalidCredentials, "the API key is not valid")
}

/// Who is calling: an organisation, through one of its keys.
pub struct Caller {
    pub org: OrgId,
    /// The key's listed id (a bootstrap key's is made from its hash).
    pub key_id: String,
}

/// The caller of the request's bearer key, once the rate limits of the
/// key and its organisation allow the request: a bootstrap key of the
/// `api_keys` variable, or a minted, unrevoked key. A key without the
/// `sgn_live_` prefix is never one.
pub fn authenticate(
    config: &Config,
    platform: &impl Platform,
    request: &Request,
    now: i64,
) -> Result<Caller, Problem> {
    let key = presented_key(request)?;
    let caller = match config.api_keys.organisation(key) {
        Some(org) => Caller {
            org: OrgId::new(org),
            key_id: api_key::bootstrap_id(&sha256(key)),
        },
        None => {
            let record = api_key::find(platform, key, now)?.ok_or_else(invalid_key)?;
            Caller {
                org: record.org,
                key_id: record.id,
            }
        }
    };
    let rates = limits::Rates {
        per_key: config.rate_limit_per_key,
        per_org: config.rate_limit_per_org,
    };
    limits::take(platform, &caller.org, key, rates, platform.now_millis())?;
    Ok(caller)
}
