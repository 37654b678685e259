//! The platform's API (a platform key is the credential): organisations
//! as records, and dashboard links. Also the link's exchange for a
//! dashboard session, whose credential is the link's token.

use serde_json::json;

use crate::domain::erasure::{self, Owned};
use crate::domain::org::{self, OrgRecord};
use crate::domain::session::{self, Grant, Refusal};
use crate::foundation::config::Config;
use crate::foundation::credentials::{LINK_PREFIX, SESSION_PREFIX, new_token};
use crate::foundation::encoding::{new_uuid, rfc3339, sha256_hex};
use crate::foundation::problem::{Code, Problem};
use crate::http::auth::{bearer, is_live};
use crate::http::context::with_secret;
use crate::http::request::{Body, Query};
use crate::ids::OrgId;
use crate::platform::{Platform, Request, Response};

/// A dashboard link's lifetime when the request names none, seconds.
pub const DEFAULT_LINK_TTL_SECONDS: i64 = 600;

/// The longest a dashboard link may live, seconds.
pub const MAX_LINK_TTL_SECONDS: i64 = 86_400;

/// How long a dashboard session lasts, seconds.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// What the platform's handlers are given.
pub struct PlatformCall<'a, P: Platform> {
    pub platform: &'a P,
    pub config: &'a Config,
    /// The request's time, Unix seconds.
    pub now_s: i64,
}

impl<P: Platform> PlatformCall<'_, P> {
    /// A live organisation's view; 404 for any other.
    fn view(&self, org: &OrgId) -> Result<serde_json::Value, Problem> {
        let bootstrap = self.config.api_keys.has(org.as_str());
        match org::live(self.platform, org, bootstrap)? {
            Some(live) => Ok(live.view(org)),
            None => Err(no_org(org)),
        }
    }
}

fn no_org(org: &OrgId) -> Problem {
    Problem::not_found(format!("no organisation {org}"))
}

/// `GET /orgs`: recorded organisations and those of `api_keys`, by id.
pub fn list<P: Platform>(
    call: &PlatformCall<'_, P>,
    request: &Request,
) -> Result<Response, Problem> {
    let query = Query::parse(request);
    let limit = query.limit(50)? as usize;
    let mut ids = org::ids(call.platform)?;
    ids.extend(
        call.config
            .api_keys
            .organisations()
            .into_iter()
            .map(OrgId::new),
    );
    ids.sort_unstable();
    ids.dedup();
    let start = match query.get("cursor") {
        None => 0,
        Some(cursor) => ids.partition_point(|id| id.as_str() <= cursor),
    };
    let page = &ids[start..ids.len().min(start + limit)];
    let mut data = Vec::with_capacity(page.len());
    for id in page {
        // Deleted since the list was read, or being deleted: left out.
        if let Ok(view) = call.view(id) {
            data.push(view);
        }
    }
    let next_cursor = page.last().filter(|_| start + page.len() < ids.len());
    Ok(Response::json(
        200,
        &json!({ "data": data, "nextCursor": next_cursor }),
    ))
}

/// `POST /orgs` `{id?, name}`.
pub fn create<P: Platform>(
    call: &PlatformCall<'_, P>,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let id = body.optional_string("id");
    let name = body.required_string("name");
    if id.as_deref().is_some_and(|id| !org::is_valid_id(id)) {
        body.error("id", "must be 1 to 64 lowercase letters, digits and -");
    }
    check_name(&mut body, name.as_deref());
    body.finish()?;
    let Some(name) = name else {
        return Err(Problem::field("name", "is required"));
    };
    let id = OrgId::new(match id {
        Some(id) => id,
        None => format!("org-{}", new_uuid()?),
    });
    if call.config.api_keys.has(id.as_str()) {
        return Err(Problem::new(
            Code::Conflict,
            format!("the organisation {id} exists"),
        ));
    }
    let record = OrgRecord {
        id,
        name,
        created_at_s: call.now_s,
        deleting: false,
        claim: new_uuid()?,
    };
    org::create(call.platform, &record)?;
    Ok(Response::json(201, &record.view()))
}

fn check_name(body: &mut Body, name: Option<&str>) {
    if name.is_some_and(|name| name.is_empty() || name.chars().count() > org::MAX_NAME_LEN) {
        body.error("name", "must be 1 to 200 characters");
    }
}

/// `GET /orgs/{org}`.
pub fn get<P: Platform>(call: &PlatformCall<'_, P>, org: &OrgId) -> Result<Response, Problem> {
    Ok(Response::json(200, &call.view(org)?))
}

/// `PATCH /orgs/{org}` `{name}`.
pub fn patch<P: Platform>(
    call: &PlatformCall<'_, P>,
    org: &OrgId,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let name = body.optional_string("name");
    check_name(&mut body, name.as_deref());
    body.finish()?;
    let fallback = call.config.api_keys.has(org.as_str()).then(|| OrgRecord {
        id: org.clone(),
        name: org.to_string(),
        created_at_s: 0,
        deleting: false,
        claim: String::new(),
    });
    let record = org::change(call.platform, org, fallback, |record| {
        if let Some(name) = &name {
            record.name.clone_from(name);
        }
    })?;
    Ok(Response::json(200, &record.view()))
}

/// `DELETE /orgs/{org}`: gone to every credential at once, then erased;
/// answered once nothing of it is left.
pub fn delete<P: Platform>(call: &PlatformCall<'_, P>, org: &OrgId) -> Result<Response, Problem> {
    if call.config.api_keys.has(org.as_str()) {
        return Err(Problem::new(
            Code::Conflict,
            format!(
                "{org} is an organisation of the api_keys variable: take it out of the variable"
            ),
        ));
    }
    if !org::begin_delete(call.platform, org)? {
        return Err(no_org(org));
    }
    let sources = call
        .config
        .inbound_sources
        .owned_by(org.as_str())
        .map(|(name, source)| (name, source.secrets.len()))
        .collect();
    let owned = Owned {
        send_slots: call.config.max_in_flight_per_endpoint,
        sources,
    };
    erasure::erase(call.platform, org, &owned)?;
    org::remove(call.platform, org)?;
    Ok(Response::new(204, Vec::new(), Vec::new()))
}

/// `POST /orgs/{org}/dashboard-links` `{ttlSeconds?}`: a single-use link
/// to the dashboard, signed in as the organisation. Its token travels in
/// the URL's fragment, which browsers send to no server.
pub fn create_link<P: Platform>(
    call: &PlatformCall<'_, P>,
    org: &OrgId,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, false)?;
    let ttl = body.optional_integer("ttlSeconds", 1, MAX_LINK_TTL_SECONDS);
    body.finish()?;
    call.view(org)?;
    let token = new_token(LINK_PREFIX).map_err(|_| Problem::random_unavailable())?;
    let grant = Grant {
        org: org.clone(),
        expires_at_s: call.now_s + ttl.unwrap_or(DEFAULT_LINK_TTL_SECONDS),
    };
    session::create_link(call.platform, &sha256_hex(&token), &grant, call.now_s)?;
    let url = format!("{}/dashboard#link={token}", origin(call.config, request));
    Ok(with_secret(Response::json(
        201,
        &json!({ "url": url, "expiresAt": rfc3339(grant.expires_at_s) }),
    )))
}

/// The service's public origin: `public_url`, or the request's `Host`
/// (plain HTTP only on a loopback name).
fn origin(config: &Config, request: &Request) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let host = request.header("host").unwrap_or("").trim();
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let loopback = name == "localhost" || name.starts_with("127.") || name == "[::1]";
    if host.is_empty() {
        String::new()
    } else if loopback {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    }
}

/// `POST /dashboard/sessions` with a link's token as the bearer: the
/// link's one session (201 `{token, expiresAt, org}`).
pub fn open_session<P: Platform>(
    platform: &P,
    config: &Config,
    request: &Request,
    now: i64,
) -> Result<Response, Problem> {
    let link = bearer(request)
        .filter(|token| token.starts_with(LINK_PREFIX))
        .ok_or_else(|| Problem::new(Code::MissingCredentials, "send a dashboard link's token"))?;
    let token = new_token(SESSION_PREFIX).map_err(|_| Problem::random_unavailable())?;
    let expires = now + SESSION_SECONDS;
    let grant = match session::open_link(
        platform,
        &sha256_hex(link),
        &sha256_hex(&token),
        expires,
        now,
    )? {
        Ok(grant) => grant,
        Err(refusal) => return Err(refused(refusal)),
    };
    if !is_live(config, platform, &grant.org)? {
        return Err(refused(Refusal::Unknown));
    }
    let call = PlatformCall {
        platform,
        config,
        now_s: now,
    };
    Ok(with_secret(Response::json(
        201,
        &json!({ "token": token, "expiresAt": rfc3339(expires), "org": call.view(&grant.org)? }),
    )))
}

fn refused(refusal: Refusal) -> Problem {
    match refusal {
        Refusal::Unknown => Problem::new(
            Code::InvalidCredentials,
            "this dashboard link is not valid; ask for a new one",
        ),
        Refusal::Expired => Problem::new(
            Code::LinkExpired,
            "this dashboard link has expired; ask for a new one",
        ),
        Refusal::Used => Problem::new(
            Code::LinkUsed,
            "this dashboard link was opened before, and a link opens once; ask for a new one",
        ),
    }
}
