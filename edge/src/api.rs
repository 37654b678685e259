use hooksign::{Keyring, MAX_GRACE_SECONDS, Secret, SecretRecord};
use serde_json::{Map, Value, json};

use crate::deliver::{Message, deliver};
use crate::inbound;
use crate::model::{EndpointRecord, new_message_id, new_uuid, rfc3339};
use crate::problem::FieldError;
use crate::target::{TargetError, check_target};
use crate::{Config, MAX_BODY_BYTES, Platform, Problem, Request, Response, store};

/// The OpenAPI document, served at `GET /openapi.yaml`.
const OPENAPI: &str = include_str!("../../openapi.yaml");

/// The routes of API.md.
enum Route<'a> {
    OpenApi,
    Webhooks,
    Webhook(&'a str),
    Rotate(&'a str),
    Attempts(&'a str),
    Test(&'a str),
    Events,
    Inbound(&'a str),
    InboundStats(&'a str),
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        Some(match segments.as_slice() {
            ["openapi.yaml"] => Route::OpenApi,
            ["webhooks"] => Route::Webhooks,
            ["webhooks", id] => Route::Webhook(id),
            ["webhooks", id, "rotate"] => Route::Rotate(id),
            ["webhooks", id, "attempts"] => Route::Attempts(id),
            ["webhooks", id, "test"] => Route::Test(id),
            ["events"] => Route::Events,
            ["inbound", source] => Route::Inbound(source),
            ["inbound", source, "stats"] => Route::InboundStats(source),
            _ => return None,
        })
    }

    fn allowed(&self) -> &'static str {
        match self {
            Route::OpenApi | Route::Attempts(_) | Route::InboundStats(_) => "GET",
            Route::Webhooks => "GET, POST",
            Route::Webhook(_) => "GET, PATCH, DELETE",
            Route::Rotate(_) | Route::Test(_) | Route::Events | Route::Inbound(_) => "POST",
        }
    }
}

/// Serves one request. Checks run in API.md's order: route, credentials,
/// body size, JSON, fields, then the endpoint.
pub async fn handle(platform: &impl Platform, request: &Request) -> Response {
    match respond(platform, request).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn respond(platform: &impl Platform, request: &Request) -> Result<Response, Problem> {
    let route = Route::parse(&request.path)
        .ok_or_else(|| Problem::not_found(format!("no route {}", request.path)))?;
    if !route
        .allowed()
        .split(", ")
        .any(|method| method == request.method)
    {
        return Err(Problem::method_not_allowed(route.allowed()));
    }
    if let Route::OpenApi = route {
        return Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/yaml".into())],
            body: OPENAPI.as_bytes().to_vec(),
        });
    }
    let config = Config::load(platform)?;
    let now = platform.now_millis().div_euclid(1000);
    if let Route::Inbound(source) = route {
        // The signature is the credential here.
        check_size(request)?;
        return inbound::receive(platform, &config, source, request, now).await;
    }
    let org = authenticate(&config, request)?.to_string();
    check_size(request)?;
    let api = Api {
        platform,
        config: &config,
        org: &org,
        now,
    };
    match (route, request.method.as_str()) {
        (Route::Webhooks, "POST") => api.create(request),
        (Route::Webhooks, _) => api.list(request),
        (Route::Webhook(id), "GET") => api.get(id),
        (Route::Webhook(id), "PATCH") => api.patch(id, request),
        (Route::Webhook(id), _) => api.delete(id),
        (Route::Rotate(id), _) => api.rotate(id, request),
        (Route::Attempts(id), _) => api.attempts(id, request),
        (Route::Test(id), _) => api.test(id, request).await,
        (Route::Events, _) => api.events(request).await,
        (Route::InboundStats(source), _) => inbound::stats(platform, &config, source),
        (Route::OpenApi | Route::Inbound(_), _) => Err(Problem::not_found("unreachable")),
    }
}

/// 413 for a body over 1 MiB.
fn check_size(request: &Request) -> Result<(), Problem> {
    if request.body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            413,
            "payload_too_large",
            "Payload too large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The organisation of the request's bearer key.
fn authenticate<'c>(config: &'c Config, request: &Request) -> Result<&'c str, Problem> {
    let header = request.header("authorization").unwrap_or("").trim();
    if header.is_empty() {
        return Err(Problem::new(
            401,
            "missing_credentials",
            "Missing credentials",
            "send an API key as `Authorization: Bearer sgn_live_…`",
        ));
    }
    let key = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    key.and_then(|key| config.organisation(key)).ok_or_else(|| {
        Problem::new(
            401,
            "invalid_credentials",
            "Invalid credentials",
            "the API key is not valid",
        )
    })
}

struct Api<'a, P> {
    platform: &'a P,
    config: &'a Config,
    org: &'a str,
    now: i64,
}

impl<P: Platform> Api<'_, P> {
    fn create(&self, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, true)?;
        let url = body.required_string("url");
        let description = body.optional_string("description");
        let event_types = body.optional_event_types();
        body.finish()?;
        let (Some(url), description, event_types) = (url, description, event_types) else {
            return Err(Problem::field("url", "is required"));
        };
        let url = self.check_url(&url)?;
        let secret = generate_secret()?;
        let record = EndpointRecord {
            id: new_uuid()?,
            org: self.org.to_string(),
            url,
            description: description.unwrap_or_default(),
            event_types: event_types.unwrap_or_default(),
            paused: false,
            paused_reason: None,
            paused_at: None,
            consecutive_failures: 0,
            last_success_at: None,
            last_failure_at: None,
            created_at: self.now,
            updated_at: self.now,
            secrets: vec![SecretRecord::new(secret.to_text())],
            attempt_count: 0,
        };
        store::create(self.platform, &record)?;
        Ok(Response::json(
            201,
            &json!({ "endpoint": record.view(), "signingSecret": secret.to_text() }),
        ))
    }

    fn list(&self, request: &Request) -> Result<Response, Problem> {
        let query = Query::parse(request);
        let limit = query.limit(50)?;
        let cursor = query.get("cursor");
        let ids = store::list_ids(self.platform, self.org)?;
        let start = match cursor {
            None => 0,
            Some(cursor) => {
                ids.iter().position(|id| id == cursor).ok_or_else(|| {
                    Problem::field("query.cursor", "is not a cursor from this list")
                })? + 1
            }
        };
        let page = &ids[start..ids.len().min(start.saturating_add(limit as usize))];
        let mut data = Vec::with_capacity(page.len());
        for id in page {
            // Deleted since the list was read: its record goes first.
            let Some(record) = store::find(self.platform, self.org, id)? else {
                continue;
            };
            data.push(
                serde_json::to_value(record.view()).map_err(|_| Problem::store_unavailable())?,
            );
        }
        let more = start + page.len() < ids.len();
        let next_cursor = page.last().filter(|_| more);
        Ok(Response::json(
            200,
            &json!({ "data": data, "nextCursor": next_cursor }),
        ))
    }

    fn get(&self, id: &str) -> Result<Response, Problem> {
        let record = self.load(id)?;
        Ok(Response::json(200, &record.view()))
    }

    fn patch(&self, id: &str, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, true)?;
        let url = body.optional_string("url");
        let description = body.optional_string("description");
        let event_types = body.optional_event_types();
        let paused = body.optional_bool("paused");
        body.finish()?;
        let url = url.map(|url| self.check_url(&url)).transpose()?;
        check_id(id)?;
        if let Some(event_types) = &event_types {
            store::widen_subscriptions(self.platform, self.org, id, event_types)?;
        }
        let record = store::modify(self.platform, self.org, id, |record| {
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
                Some(true) if !record.paused => {
                    record.paused = true;
                    record.paused_reason = Some("paused through the API".into());
                    record.paused_at = Some(self.now);
                }
                Some(false) => {
                    record.paused = false;
                    record.paused_reason = None;
                    record.paused_at = None;
                    record.consecutive_failures = 0;
                }
                _ => {}
            }
            record.updated_at = self.now;
            Ok(())
        })?;
        Ok(Response::json(200, &record.view()))
    }

    fn delete(&self, id: &str) -> Result<Response, Problem> {
        let record = self.load(id)?;
        store::delete(self.platform, &record)?;
        Ok(Response {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    fn rotate(&self, id: &str, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, false)?;
        let grace = body.optional_integer("graceSeconds", 0, i64::from(MAX_GRACE_SECONDS));
        body.finish()?;
        let grace = grace.map_or(hooksign::DEFAULT_GRACE_SECONDS, |grace| grace as u32);
        check_id(id)?;
        let secret = generate_secret()?;
        // Applied to the endpoint as stored at the write, so concurrent
        // rotations each keep the secrets the others added.
        let record = store::modify(self.platform, self.org, id, |record| {
            let keyring =
                Keyring::from_records(&record.secrets).map_err(|_| stored_keyring_invalid())?;
            let rotated = match keyring.rotate(secret.clone(), self.now, grace) {
                Ok(rotated) => rotated,
                Err(hooksign::Error::TooManySecrets) => {
                    return Err(Problem::new(
                        409,
                        "too_many_secrets",
                        "Too many secrets",
                        "the rotation would keep more than 10 previous secrets; wait for one to expire or rotate with a shorter grace",
                    ));
                }
                Err(_) => return Err(stored_keyring_invalid()),
            };
            record.secrets = rotated.to_records();
            record.updated_at = self.now;
            Ok(())
        })?;
        Ok(Response::json(
            200,
            &json!({ "endpoint": record.view(), "signingSecret": secret.to_text() }),
        ))
    }

    fn attempts(&self, id: &str, request: &Request) -> Result<Response, Problem> {
        let limit = Query::parse(request).limit(50)?;
        let record = self.load(id)?;
        let data = store::attempts(self.platform, &record, limit)?;
        Ok(Response::json(200, &json!({ "data": data })))
    }

    async fn test(&self, id: &str, request: &Request) -> Result<Response, Problem> {
        Body::parse(request, false)?;
        let record = self.load(id)?;
        let message_id = new_message_id()?;
        let envelope = envelope(
            "webhook.test",
            self.now,
            &json!({ "endpointId": record.id, "message": "hooksign test delivery" }),
        );
        let message = Message {
            id: &message_id,
            event_type: "webhook.test",
            body: &envelope,
            test: true,
        };
        let (attempt, response) = deliver(self.platform, self.config, &record, &message).await?;
        let response = response.map(|response| {
            let headers: Map<String, Value> = response
                .headers
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

    async fn events(&self, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, true)?;
        let event_type = body.required_string("type");
        let data = body.take("data");
        let id = body.optional_string("id");
        if event_type.as_deref() == Some("") {
            body.error("type", "must not be empty");
        }
        if data.is_none() {
            body.error("data", "is required");
        }
        if id
            .as_deref()
            .is_some_and(|id| !hooksign::is_valid_message_id(id))
        {
            body.error(
                "id",
                "must be 1 to 256 printable ASCII characters without `.` or spaces",
            );
        }
        body.finish()?;
        let (Some(event_type), Some(data)) = (event_type, data) else {
            return Err(Problem::field("type", "is required"));
        };
        let message_id = match id {
            Some(id) => id,
            None => new_message_id()?,
        };
        let envelope = envelope(&event_type, self.now, &data);

        let mut targets = Vec::new();
        for id in store::may_want(self.platform, self.org, &event_type)? {
            // Deleted since the index was read: skipped.
            let Some(record) = store::find(self.platform, self.org, &id)? else {
                continue;
            };
            if !record.paused && record.subscribed(&event_type) {
                targets.push(record);
            }
        }
        let message = Message {
            id: &message_id,
            event_type: &event_type,
            body: &envelope,
            test: false,
        };
        let outcomes = futures::future::join_all(
            targets
                .iter()
                .map(|record| deliver(self.platform, self.config, record, &message)),
        )
        .await;
        let mut deliveries = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let (attempt, _) = outcome?;
            deliveries.push(json!({
                "endpointId": attempt.endpoint_id,
                "attemptId": attempt.id,
                "succeeded": attempt.succeeded,
            }));
        }
        Ok(Response::json(
            200,
            &json!({ "id": message_id, "deliveries": deliveries }),
        ))
    }

    /// An endpoint of the caller's organisation, by a path id that must be a UUID.
    fn load(&self, id: &str) -> Result<EndpointRecord, Problem> {
        check_id(id)?;
        store::load(self.platform, self.org, id)
    }

    fn check_url(&self, url: &str) -> Result<String, Problem> {
        match check_target(url, self.config.allow_private_targets) {
            Ok(url) => Ok(url.to_string()),
            Err(TargetError::Invalid(message)) => Err(Problem::field("url", message)),
            Err(TargetError::Forbidden) => Err(Problem::new(
                400,
                "forbidden_target",
                "Forbidden target",
                "the url points at a loopback, private, link-local or metadata address",
            )),
        }
    }
}

fn generate_secret() -> Result<Secret, Problem> {
    Secret::generate().map_err(|_| Problem::random_unavailable())
}

/// Endpoint ids are UUIDs; anything else is a bad path, not a missing endpoint.
fn check_id(id: &str) -> Result<(), Problem> {
    match uuid::Uuid::try_parse(id) {
        Ok(_) => Ok(()),
        Err(_) => Err(Problem::field("path.id", "is not a UUID")),
    }
}

fn stored_keyring_invalid() -> Problem {
    Problem::new(
        500,
        "invalid_keyring",
        "Invalid stored keyring",
        "the endpoint's stored keyring is invalid",
    )
}

/// `{"type", "timestamp", "data"}`, as sent.
fn envelope(event_type: &str, now: i64, data: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "type": event_type, "timestamp": rfc3339(now), "data": data }))
        .unwrap_or_default()
}

/// A JSON number without a fractional part (JSON Schema's `integer`: `5.0`
/// is one), as an `i64`.
fn whole_number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        // Beyond ±2^53 a float no longer holds every whole number exactly.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        value
            .as_f64()
            .filter(|number| number.fract() == 0.0 && number.abs() <= EXACT)
            .map(|number| number as i64)
    })
}

/// A JSON object body, read field by field; problems are collected so that
/// one answer lists every bad field.
struct Body {
    fields: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Body {
    /// Parses the body; an empty body is an empty object unless `required`.
    fn parse(request: &Request, required: bool) -> Result<Body, Problem> {
        if request.body.iter().all(u8::is_ascii_whitespace) && !required {
            return Ok(Body {
                fields: Map::new(),
                errors: Vec::new(),
            });
        }
        let value: Value = serde_json::from_slice(&request.body).map_err(|error| {
            Problem::new(
                400,
                "invalid_json",
                "Invalid JSON",
                format!(
                    "the body is not JSON (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            )
        })?;
        match value {
            Value::Object(fields) => Ok(Body {
                fields,
                errors: Vec::new(),
            }),
            _ => Err(Problem::field("body", "must be a JSON object")),
        }
    }

    fn error(&mut self, path: &str, message: &str) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name)
    }

    fn required_string(&mut self, name: &str) -> Option<String> {
        match self.take(name) {
            None | Some(Value::Null) => {
                self.error(name, "is required");
                None
            }
            Some(value) => self.string(name, value),
        }
    }

    fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.take(name) {
            None | Some(Value::Null) => None,
            Some(value) => self.string(name, value),
        }
    }

    fn string(&mut self, name: &str, value: Value) -> Option<String> {
        match value {
            Value::String(text) if text.chars().count() <= 4096 => Some(text),
            Value::String(_) => {
                self.error(name, "must be at most 4096 characters");
                None
            }
            _ => {
                self.error(name, "must be a string");
                None
            }
        }
    }

    fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.take(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(flag)) => Some(flag),
            Some(_) => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    fn optional_integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        match self.take(name) {
            None | Some(Value::Null) => None,
            Some(value) => match whole_number(&value).filter(|number| (min..=max).contains(number))
            {
                Some(number) => Some(number),
                None => {
                    self.error(name, &format!("must be a whole number from {min} to {max}"));
                    None
                }
            },
        }
    }

    /// A list of 0 to 100 event type names of 1 to 256 characters.
    fn optional_event_types(&mut self) -> Option<Vec<String>> {
        let value = match self.take("eventTypes") {
            None | Some(Value::Null) => return None,
            Some(value) => value,
        };
        let types: Option<Vec<String>> = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| {
                    item.as_str()
                        .filter(|name| !name.is_empty() && name.chars().count() <= 256)
                        .map(String::from)
                })
                .collect()
        });
        match types {
            Some(types) if types.len() <= 100 => Some(types),
            _ => {
                self.error(
                    "eventTypes",
                    "must be a list of at most 100 strings of 1 to 256 characters",
                );
                None
            }
        }
    }

    /// Fails with every collected problem, and one per unknown field.
    fn finish(mut self) -> Result<(), Problem> {
        let unknown: Vec<String> = self.fields.keys().cloned().collect();
        for name in unknown {
            self.error(&name, "is not a known field");
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(self.errors))
        }
    }
}

/// The query string's parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(request: &Request) -> Query {
        let pairs = form_urlencoded::parse(request.query.as_deref().unwrap_or("").as_bytes());
        Query(
            pairs
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }

    /// `limit`: 1 to 200.
    fn limit(&self, default: u64) -> Result<u64, Problem> {
        match self.get("limit") {
            None => Ok(default),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|limit| (1..=200).contains(limit))
                .ok_or_else(|| {
                    Problem::field("query.limit", "must be a whole number from 1 to 200")
                }),
        }
    }
}
