//! The credential check of every API request: the bearer key's
//! organisation (a bootstrap key of `api_keys`, a minted key's record, or
//! a dashboard session), or a platform key of `platform_keys` acting as an
//! organisation; then the rate limits of that credential.

use crate::domain::{api_key, limits, org, session};
use crate::foundation::config::Config;
use crate::foundation::credentials::{API_KEY_PREFIX, PLATFORM_KEY_PREFIX, SESSION_PREFIX};
use crate::foundation::encoding::{sha256, sha256_hex};
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

/// The organisation credential the request's headers present (an API key
/// or a dashboard session): 401 when there is none, or it has neither
/// prefix. Needs no store and no body.
pub fn presented_key(request: &Request) -> Result<&str, Problem> {
    require_credentials(
        request,
        "send an API key as `Authorization: Bearer sgn_live_…`",
    )?;
    bearer(request)
        .filter(|key| key.starts_with(API_KEY_PREFIX) || key.starts_with(SESSION_PREFIX))
        .ok_or_else(invalid_key)
}

/// The platform key the request's headers present. To an organisation's
/// credential (an API key, a session) the platform's routes are not there:
/// 404, as for an unknown route. No credential, or one of no kind, is 401.
pub fn presented_platform_key(request: &Request) -> Result<&str, Problem> {
    require_credentials(
        request,
        "send a platform key as `Authorization: Bearer sgn_plat_…`",
    )?;
    match bearer(request) {
        Some(key) if key.starts_with(PLATFORM_KEY_PREFIX) => Ok(key),
        Some(key) if key.starts_with(API_KEY_PREFIX) || key.starts_with(SESSION_PREFIX) => {
            Err(Problem::not_found(format!("no route {}", request.path)))
        }
        _ => Err(invalid_platform_key()),
    }
}

/// 401 `missing_credentials`, saying `how` to send one, when the request
/// has no `Authorization` header (or an empty one).
fn require_credentials(request: &Request, how: &str) -> Result<(), Problem> {
    if request
        .header("authorization")
        .unwrap_or("")
        .trim()
        .is_empty()
    {
        return Err(Problem::new(Code::MissingCredentials, how));
    }
    Ok(())
}

fn invalid_platform_key() -> Problem {
    Problem::new(Code::InvalidCredentials, "the platform key is not valid")
}

/// 401: the key is no API key, or none that works.
fn invalid_key() -> Problem {
    Problem::new(Code::InvalidCredentials, "the API key is not valid")
}

/// Who is calling: an organisation, through one of its keys, a dashboard
/// session, or a platform key acting as it.
pub struct Caller {
    pub org: OrgId,
    /// The key's listed id (a bootstrap key's and a platform key's are made
    /// from their hash; a session's is `session`).
    pub key_id: String,
    /// Whether the credential is a dashboard session (which may not mint or
    /// revoke API keys).
    pub by_session: bool,
}

/// The caller of the request's bearer credential, once the rate limits of
/// the key and its organisation allow the request: a bootstrap key of the
/// `api_keys` variable, a minted, unrevoked key, or an unexpired session of
/// a live organisation.
pub fn authenticate(
    config: &Config,
    platform: &impl Platform,
    request: &Request,
    now: i64,
) -> Result<Caller, Problem> {
    let key = presented_key(request)?;
    let caller = if key.starts_with(SESSION_PREFIX) {
        let grant =
            session::find_session(platform, &sha256_hex(key), now)?.ok_or_else(ended_session)?;
        if !is_live(config, platform, &grant.org)? {
            return Err(ended_session());
        }
        Caller {
            org: grant.org,
            key_id: "session".into(),
            by_session: true,
        }
    } else if let Some(org) = config.api_keys.organisation(key) {
        Caller {
            org: OrgId::new(org),
            key_id: api_key::bootstrap_id(&sha256(key)),
            by_session: false,
        }
    } else {
        let record = api_key::find(platform, key, now)?.ok_or_else(invalid_key)?;
        Caller {
            org: record.org,
            key_id: record.id,
            by_session: false,
        }
    };
    let rates = limits::Rates {
        per_key: config.rate_limit_per_key,
        per_org: config.rate_limit_per_org,
    };
    limits::take(platform, &caller.org, key, rates, platform.now_millis())?;
    Ok(caller)
}

fn ended_session() -> Problem {
    Problem::new(
        Code::InvalidCredentials,
        "the dashboard session has ended; open a new dashboard link",
    )
}

/// The listed id of the request's platform key, once its rate limit allows
/// the request: 404 for an organisation's credential, 401 for any other or
/// a platform key that `platform_keys` does not list.
pub fn authenticate_platform(
    config: &Config,
    platform: &impl Platform,
    request: &Request,
) -> Result<String, Problem> {
    let key = presented_platform_key(request)?;
    let id = config
        .platform_keys
        .id_of(key)
        .ok_or_else(invalid_platform_key)?;
    limits::take_platform(
        platform,
        key,
        config.rate_limit_per_key,
        platform.now_millis(),
    )?;
    Ok(id)
}

/// Whether the organisation exists and is not being deleted
/// ([`org::is_live`]).
pub fn is_live(config: &Config, platform: &impl Platform, org: &OrgId) -> Result<bool, Problem> {
    org::is_live(platform, org, config.api_keys.has(org.as_str()))
}
