//! Endpoints' handlers: create, list, read, change, delete, rotate, their
//! attempts and test sends. Each parses its request, then asks the
//! endpoint's domain module to change the store.

use std::collections::BTreeMap;

use hooksign::{Keyring, MAX_GRACE_SECONDS, MAX_PREVIOUS_SECRETS, Secret, SecretRecord};
use serde_json::{Map, Value, json};

use crate::dispatch::MAX_FOLLOW_UP;
use crate::dispatch::operational::is_operational;
use crate::dispatch::send::{Message, deliver, kept_headers};
use crate::domain::attempt;
use crate::domain::delivery;
use crate::domain::endpoint::{
    self, EndpointRecord, MAX_CUSTOM_HEADERS, MAX_RATE_LIMIT_PER_SECOND, SignatureKind,
};
use crate::domain::event_type;
use crate::domain::message::{self, DAY_SECONDS, envelope};
use crate::foundation::config::Config;
use crate::foundation::encoding::{new_endpoint_id, new_message_id, parse_rfc3339};
use crate::foundation::problem::{Code, Problem};
use crate::foundation::target::{TargetError, check_target};
use crate::http::context::{Api, with_secret};
use crate::http::request::{Body, Query, endpoint_id};
use crate::platform::{Platform, Request, Response};

pub fn create<P: Platform>(api: &Api<'_, P>, request: &Request) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let url = body.required_string("url");
    let description = body.optional_string("description");
    let event_types = body.optional_event_types();
    let signature = body.optional_string("signature");
    let headers = HeaderChange::parse(&mut body);
    let rate_limit = rate_limit(&mut body).flatten();
    body.finish()?;
    let (Some(url), description, event_types) = (url, description, event_types) else {
        return Err(Problem::field("url", "is required"));
    };
    let signature = match signature.as_deref() {
        None => SignatureKind::V1,
        Some(name) => SignatureKind::from_name(name)
            .ok_or_else(|| Problem::field("signature", "must be \"v1\" or \"v1a\""))?,
    };
    let url = check_url(api, &url)?;
    check_subscriptions(api, event_types.as_deref())?;
    // Read, not reserved: creates racing at the limit may pass it by
    // as many as run at once.
    let count = endpoint::list_ids(api.platform, api.org)?.len();
    if count >= api.config.max_endpoints_per_org {
        return Err(Problem::new(
            Code::QuotaExceeded,
            format!(
                "the organisation has {count} endpoints, as many as max_endpoints_per_org allows; delete one first"
            ),
        ));
    }
    let secret = generate_key(signature)?;
    let id = new_endpoint_id()?;
    let secrets = api
        .config
        .secrets
        .close(&id, &[SecretRecord::new(secret.to_text())])?;
    let mut record = EndpointRecord {
        id,
        org: api.org.clone(),
        url,
        description: description.unwrap_or_default(),
        event_types: event_types.unwrap_or_default(),
        paused: false,
        paused_reason: None,
        paused_at_s: None,
        consecutive_failures: 0,
        last_success_at_s: None,
        last_failure_at_s: None,
        created_at_s: api.now_s,
        updated_at_s: api.now_s,
        secrets,
        signature,
        signing_public_key: public_key_text(&secret),
        headers: BTreeMap::new(),
        sensitive_header_names: Vec::new(),
        sensitive_headers: None,
        rate_limit_per_second: rate_limit,
        attempt_count: 0,
        recent_attempts: Vec::new(),
    };
    headers.apply(api.config, &mut record)?;
    endpoint::create(api.platform, &record, api.config.max_endpoints_per_host)?;
    Ok(key_answer(201, &record, &secret))
}

pub fn list<P: Platform>(api: &Api<'_, P>, request: &Request) -> Result<Response, Problem> {
    let query = Query::parse(request);
    let limit = query.limit(50)?;
    let cursor = query.get("cursor");
    let ids = endpoint::list_ids(api.platform, api.org)?;
    let start = match cursor {
        None => 0,
        Some(cursor) => {
            ids.iter()
                .position(|id| id.as_str() == cursor)
                .ok_or_else(|| Problem::field("query.cursor", "is not a cursor from this list"))?
                + 1
        }
    };
    let page = &ids[start..ids.len().min(start.saturating_add(limit as usize))];
    let mut data = Vec::with_capacity(page.len());
    for id in page {
        // Deleted since the list was read: its record goes first.
        let Some(record) = endpoint::find(api.platform, api.org, id)? else {
            continue;
        };
        data.push(serde_json::to_value(record.view()).map_err(|_| Problem::store_unavailable())?);
    }
    let more = start + page.len() < ids.len();
    let next_cursor = page.last().filter(|_| more);
    Ok(Response::json(
        200,
        &json!({ "data": data, "nextCursor": next_cursor }),
    ))
}

pub fn get<P: Platform>(api: &Api<'_, P>, id: &str) -> Result<Response, Problem> {
    let record = load(api, id)?;
    Ok(Response::json(200, &record.view()))
}

pub fn patch<P: Platform>(
    api: &Api<'_, P>,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let url = body.optional_string("url");
    let description = body.optional_string("description");
    let event_types = body.optional_event_types();
    let paused = body.optional_bool("paused");
    let headers = HeaderChange::parse(&mut body);
    let rate_limit = rate_limit(&mut body);
    body.finish()?;
    let url = url.map(|url| check_url(api, &url)).transpose()?;
    check_subscriptions(api, event_types.as_deref())?;
    let id = &endpoint_id(id)?;
    if let Some(event_types) = &event_types {
        endpoint::widen_subscriptions(api.platform, api.org, id, event_types)?;
    }
    if let Some(url) = &url {
        endpoint::move_host(
            api.platform,
            api.org,
            id,
            url,
            api.config.max_endpoints_per_host,
        )?;
    }
    let mut unpaused = false;
    let record = endpoint::modify(api.platform, api.org, id, |record| {
        // A write seals the keyring anew if it is in clear or under an
        // older sealing key (only then: the write must be repeatable).
        if api.config.secrets.stale(&record.secrets) {
            let secrets = api.config.secrets.open(&record.id, &record.secrets)?;
            record.secrets = api.config.secrets.close(&record.id, &secrets)?;
        }
        // Sticky: a later round may find the unpause already written.
        unpaused |= record.paused && paused == Some(false);
        if let Some(url) = &url {
            record.url.clone_from(url);
        }
        if let Some(description) = &description {
            record.description.clone_from(description);
        }
        if let Some(event_types) = &event_types {
            record.event_types.clone_from(event_types);
        }
        match paused {
            Some(true) => record.pause("paused through the API".into(), api.now_s),
            Some(false) => record.unpause(),
            None => {}
        }
        headers.apply(api.config, record)?;
        if let Some(rate_limit) = rate_limit {
            record.rate_limit_per_second = rate_limit;
        }
        record.updated_at_s = api.now_s;
        Ok(())
    })?;
    let mut response = Response::json(200, &record.view());
    if unpaused {
        let now_ms = api.platform.now_millis();
        let first =
            delivery::FirstAttempts::leased(api.config.delivery_timeout_ms, now_ms, MAX_FOLLOW_UP)?;
        response.follow_up = delivery::release(api.platform, id, now_ms, &first)?;
    }
    Ok(response)
}

/// `rateLimitPerSecond`: absent, `None`; null (no limit), `Some(None)`.
fn rate_limit(body: &mut Body) -> Option<Option<u32>> {
    body.clearable_integer("rateLimitPerSecond", 1, MAX_RATE_LIMIT_PER_SECOND)
        .map(|limit| limit.and_then(|limit| u32::try_from(limit).ok()))
}

/// A request's change to an endpoint's custom headers: in `headers` (shown)
/// or `sensitiveHeaders` (sealed, never shown), a name to a value sets it
/// as that kind, to null removes it; headers it does not name stay as they
/// are. A name in both is set as sensitive.
struct HeaderChange {
    plain: BTreeMap<String, Option<String>>,
    sensitive: BTreeMap<String, Option<String>>,
}

impl HeaderChange {
    fn parse(body: &mut Body) -> HeaderChange {
        HeaderChange {
            plain: body.optional_headers("headers").unwrap_or_default(),
            sensitive: body
                .optional_headers("sensitiveHeaders")
                .unwrap_or_default(),
        }
    }

    /// Applies the change to the record; applied again to its own result,
    /// it writes the same (the seal is only made anew when the sensitive
    /// values change).
    fn apply(&self, config: &Config, record: &mut EndpointRecord) -> Result<(), Problem> {
        if self.plain.is_empty() && self.sensitive.is_empty() {
            return Ok(());
        }
        let before = match &record.sensitive_headers {
            Some(stored) => config.secrets.open_headers(&record.id, stored)?,
            None => BTreeMap::new(),
        };
        let mut sensitive = before.clone();
        for name in self.plain.keys().chain(self.sensitive.keys()) {
            record.headers.remove(name);
            sensitive.remove(name);
        }
        for (name, value) in &self.plain {
            if let Some(value) = value {
                record.headers.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.sensitive {
            if let Some(value) = value {
                // Named in both: sensitive.
                record.headers.remove(name);
                sensitive.insert(name.clone(), value.clone());
            }
        }
        if record.headers.len() + sensitive.len() > MAX_CUSTOM_HEADERS {
            return Err(Problem::field(
                "headers",
                format!("an endpoint has at most {MAX_CUSTOM_HEADERS} custom headers"),
            ));
        }
        record.sensitive_header_names = sensitive.keys().cloned().collect();
        if sensitive != before {
            record.sensitive_headers = if sensitive.is_empty() {
                None
            } else {
                Some(config.secrets.close_headers(&record.id, &sensitive)?)
            };
        }
        Ok(())
    }
}

/// How many failed deliveries one `POST /webhooks/{id}/recover` sends again.
pub const MAX_RECOVERED: usize = 10_000;

/// `POST /webhooks/{id}/recover` `{since, until?}`: every delivery to the
/// endpoint that failed, of the messages accepted in the window, made due
/// again now, oldest first (202 `{count}`); the dispatcher sends them in
/// that order.
pub fn recover<P: Platform>(
    api: &Api<'_, P>,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, true)?;
    let since = body.required_string("since");
    let until = body.optional_string("until");
    let mut time = |name: &str, text: Option<String>| {
        let parsed = text.as_deref().map(parse_rfc3339);
        if parsed == Some(None) {
            body.error(name, "must be an RFC 3339 time");
        }
        parsed.flatten()
    };
    let (since, until) = (time("since", since), time("until", until));
    body.finish()?;
    let since = since.ok_or_else(|| Problem::field("since", "is required"))?;
    // A window that ends before it starts holds nothing.
    let until = until.unwrap_or(api.now_s + 1);
    let record = load(api, id)?;
    // Nothing older is kept.
    let kept_since =
        (api.now_s.div_euclid(DAY_SECONDS) - api.config.retention_days as i64) * DAY_SECONDS;
    let window = (since.max(kept_since), until);
    let failed = message::failed_to(api.platform, api.org, &record.id, window, MAX_RECOVERED)?;
    let now_ms = api.platform.now_millis();
    for delivery in &failed {
        delivery::due_again(api.platform, delivery, now_ms)?;
    }
    // Listed in order, in entries of a bounded size.
    for chunk in failed.chunks(100) {
        delivery::enqueue_all(api.platform, chunk, now_ms)?;
    }
    Ok(Response::json(202, &json!({ "count": failed.len() })))
}

/// `GET /webhooks/{id}/held`: a paused endpoint's held deliveries, in the
/// order they were held; `limit` (50).
pub fn held<P: Platform>(
    api: &Api<'_, P>,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let limit = Query::parse(request).limit(50)? as usize;
    let record = load(api, id)?;
    let held = delivery::held(api.platform, &record.id)?;
    let mut data = Vec::new();
    for listed in held.iter().take(limit) {
        if let Some(found) = delivery::get(api.platform, listed)? {
            let mut view = found.view(&record.id);
            view["messageId"] = json!(listed.message);
            data.push(view);
        }
    }
    Ok(Response::json(
        200,
        &json!({ "data": data, "count": held.len() }),
    ))
}

pub fn delete<P: Platform>(api: &Api<'_, P>, id: &str) -> Result<Response, Problem> {
    let record = load(api, id)?;
    endpoint::delete(api.platform, &record)?;
    Ok(Response::new(204, Vec::new(), Vec::new()))
}

pub fn rotate<P: Platform>(
    api: &Api<'_, P>,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let mut body = Body::parse(request, false)?;
    let grace = body.optional_integer("graceSeconds", 0, i64::from(MAX_GRACE_SECONDS));
    body.finish()?;
    let grace = grace.map_or(hooksign::DEFAULT_GRACE_SECONDS, |grace| grace as u32);
    let id = &endpoint_id(id)?;
    let signature = endpoint::load(api.platform, api.org, id)?.signature;
    let secret = generate_key(signature)?;
    // Applied to the endpoint as stored at the write, so concurrent
    // rotations each keep the secrets the others added.
    let secret_text = secret.to_text();
    let record = endpoint::modify(api.platform, api.org, id, |record| {
        let secrets = api.config.secrets.open(&record.id, &record.secrets)?;
        // Rotated in already (by this request's own earlier write).
        if secrets.iter().any(|kept| kept.key == secret_text) {
            return Ok(());
        }
        let keyring = Keyring::from_records(&secrets).map_err(|_| stored_keyring_invalid())?;
        let rotated = match keyring.rotate(secret.clone(), api.now_s, grace) {
            Ok(rotated) => rotated,
            Err(hooksign::Error::TooManySecrets) => {
                return Err(Problem::new(
                    Code::TooManySecrets,
                    format!(
                        "the rotation would keep more than {MAX_PREVIOUS_SECRETS} previous secrets; wait for one to expire or rotate with a shorter grace"
                    ),
                ));
            }
            Err(_) => return Err(stored_keyring_invalid()),
        };
        record.secrets = api
            .config
            .secrets
            .close(&record.id, &rotated.to_records())?;
        record.signing_public_key = public_key_text(&secret);
        record.updated_at_s = api.now_s;
        Ok(())
    })?;
    Ok(key_answer(200, &record, &secret))
}

/// `?status=succeeded|failed` keeps those attempts only.
pub fn attempts<P: Platform>(
    api: &Api<'_, P>,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let query = Query::parse(request);
    let limit = query.limit(50)?;
    let wanted = match query.get("status") {
        None => None,
        Some("succeeded") => Some(true),
        Some("failed") => Some(false),
        Some(_) => {
            return Err(Problem::field(
                "query.status",
                "must be succeeded or failed",
            ));
        }
    };
    let record = load(api, id)?;
    let recorded = endpoint::attempts_recorded(api.platform, &record)?;
    let mut data = attempt::newest(api.platform, &record.id, recorded, attempt::KEPT_ATTEMPTS)?;
    data.retain(|attempt| wanted.is_none_or(|succeeded| attempt.succeeded == succeeded));
    data.truncate(limit as usize);
    Ok(Response::json(200, &json!({ "data": data })))
}

pub async fn test<P: Platform>(
    api: &Api<'_, P>,
    id: &str,
    request: &Request,
) -> Result<Response, Problem> {
    Body::parse(request, false)?;
    let record = load(api, id)?;
    let message_id = new_message_id()?;
    let envelope = envelope(
        "webhook.test",
        api.now_s,
        &json!({ "endpointId": record.id, "message": "hooksign test delivery" }),
    );
    let message = Message {
        id: &message_id,
        event_type: "webhook.test",
        body: envelope.as_bytes(),
        test: true,
        attempt_number: 1,
    };
    let attempts = attempt::Group::default();
    let delivered = deliver(api.platform, api.config, &record, &message, &attempts).await?;
    // A test send changes no state: one whose attempt was not kept fails.
    if let Some(problem) = delivered.unrecorded {
        return Err(problem);
    }
    attempts.write(api.platform).await?;
    let (attempt, response) = (delivered.attempt, delivered.response);
    let response = response.map(|response| {
        let headers: Map<String, Value> = kept_headers(response.headers)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), Value::String(value)))
            .collect();
        json!({
            "status": response.status,
            "headers": headers,
            "body": attempt.response_body,
        })
    });
    Ok(Response::json(
        200,
        &json!({ "attempt": attempt, "response": response }),
    ))
}

/// An endpoint of the caller's organisation, by a path id that must be a UUID.
pub fn load<P: Platform>(api: &Api<'_, P>, id: &str) -> Result<EndpointRecord, Problem> {
    endpoint::load(api.platform, api.org, &endpoint_id(id)?)
}

/// Once the organisation's catalogue has a type, an endpoint subscribes
/// only to listed types (and the service's own): a field error otherwise.
fn check_subscriptions<P: Platform>(
    api: &Api<'_, P>,
    event_types: Option<&[String]>,
) -> Result<(), Problem> {
    let Some(wanted) = event_types.filter(|wanted| !wanted.is_empty()) else {
        return Ok(());
    };
    let known = event_type::names(api.platform, api.org)?;
    if known.is_empty() {
        return Ok(());
    }
    match wanted
        .iter()
        .find(|name| !is_operational(name) && known.binary_search(name).is_err())
    {
        Some(unknown) => Err(Problem::field(
            "eventTypes",
            format!("{unknown} is not in the organisation's event-type catalogue"),
        )),
        None => Ok(()),
    }
}

pub fn check_url<P: Platform>(api: &Api<'_, P>, url: &str) -> Result<String, Problem> {
    match check_target(url, api.config.allow_private_targets) {
        Ok(url) => Ok(url.to_string()),
        Err(TargetError::Invalid(message)) => Err(Problem::field("url", message)),
        Err(TargetError::Forbidden) => Err(Problem::new(
            Code::ForbiddenTarget,
            "the url points at a loopback, private, link-local or metadata address",
        )),
    }
}

/// A new key of the endpoint's kind.
fn generate_key(signature: SignatureKind) -> Result<Secret, Problem> {
    match signature {
        SignatureKind::V1 => Secret::generate(),
        SignatureKind::V1a => Secret::generate_ed25519(),
    }
    .map_err(|_| Problem::random_unavailable())
}

/// An Ed25519 key's public key, `whpk_`; none for an HMAC secret.
fn public_key_text(secret: &Secret) -> Option<String> {
    secret.public_key().map(|public| public.to_text())
}

/// The answer to a create or rotate: the endpoint with what its receiver
/// verifies with, `signingSecret` (shown once) or `signingPublicKey` (the
/// private key never leaves the store).
fn key_answer(status: u16, record: &EndpointRecord, secret: &Secret) -> Response {
    match public_key_text(secret) {
        Some(public) => Response::json(
            status,
            &json!({ "endpoint": record.view(), "signingPublicKey": public }),
        ),
        None => with_secret(Response::json(
            status,
            &json!({ "endpoint": record.view(), "signingSecret": secret.to_text() }),
        )),
    }
}

fn stored_keyring_invalid() -> Problem {
    Problem::new(
        Code::InvalidKeyring,
        "the endpoint's stored keyring is invalid",
    )
}
