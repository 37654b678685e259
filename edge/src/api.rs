//! The organisation's API: endpoints, rotation, attempts, test sends and
//! events. Each handler parses its request, then changes the store.

use hooksign::{Keyring, MAX_GRACE_SECONDS, Secret, SecretRecord};
use serde_json::{Map, Value, json};

use crate::deliver::{Message, deliver};
use crate::model::{EndpointRecord, SignatureKind, new_message_id, new_uuid, rfc3339};
use crate::problem::Code;
use crate::request::{Body, Query, check_id};
use crate::routes::ApiOperation;
use crate::target::{TargetError, check_target};
use crate::{Config, Platform, Problem, Request, Response, store};
use crate::{dispatch, inbound};

/// One authenticated request's context.
pub struct Api<'a, P> {
    pub platform: &'a P,
    pub config: &'a Config,
    pub org: &'a str,
    pub now: i64,
}

impl<P: Platform> Api<'_, P> {
    /// Runs an operation; `id` is the path's parameter.
    pub async fn run(
        &self,
        operation: ApiOperation,
        id: &str,
        request: &Request,
    ) -> Result<Response, Problem> {
        match operation {
            ApiOperation::ListEndpoints => self.list(request),
            ApiOperation::CreateEndpoint => self.create(request),
            ApiOperation::GetEndpoint => self.get(id),
            ApiOperation::PatchEndpoint => self.patch(id, request),
            ApiOperation::DeleteEndpoint => self.delete(id),
            ApiOperation::RotateSecret => self.rotate(id, request),
            ApiOperation::ListAttempts => self.attempts(id, request),
            ApiOperation::TestSend => self.test(id, request).await,
            ApiOperation::SendEvent => self.accept_event(request),
            ApiOperation::ListMessages => self.list_messages(request),
            ApiOperation::GetMessage => self.get_message(id),
            ApiOperation::Resend => self.resend(id, request),
            ApiOperation::InboundStats => inbound::stats(self.platform, self.config, id),
            ApiOperation::ListKeys => self.list_keys(),
            ApiOperation::CreateKey => self.create_key(request),
            ApiOperation::RevokeKey => self.revoke_key(id),
        }
    }

    fn create(&self, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, true)?;
        let url = body.required_string("url");
        let description = body.optional_string("description");
        let event_types = body.optional_event_types();
        let signature = body.optional_string("signature");
        body.finish()?;
        let (Some(url), description, event_types) = (url, description, event_types) else {
            return Err(Problem::field("url", "is required"));
        };
        let signature = match signature.as_deref() {
            None => SignatureKind::V1,
            Some(name) => SignatureKind::from_name(name)
                .ok_or_else(|| Problem::field("signature", "must be \"v1\" or \"v1a\""))?,
        };
        let url = self.check_url(&url)?;
        // Read, not reserved: creates racing at the limit may pass it by
        // as many as run at once.
        let count = store::list_ids(self.platform, self.org)?.len();
        if count >= self.config.max_endpoints_per_org {
            return Err(Problem::new(
                Code::QuotaExceeded,
                format!(
                    "the organisation has {count} endpoints, as many as max_endpoints_per_org allows; delete one first"
                ),
            ));
        }
        let secret = generate_key(signature)?;
        let id = new_uuid()?;
        let secrets = self
            .config
            .secrets
            .close(&id, &[SecretRecord::new(secret.to_text())])?;
        let record = EndpointRecord {
            id,
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
            secrets,
            signature,
            signing_public_key: public_key_text(&secret),
            attempt_count: 0,
            recent_attempts: Vec::new(),
        };
        store::create(self.platform, &record)?;
        Ok(key_answer(201, &record, &secret))
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
        let mut unpaused = false;
        let record = store::modify(self.platform, self.org, id, |record| {
            // A write seals the keyring anew if it is in clear or under an
            // older sealing key (only then: the write must be repeatable).
            if self.config.secrets.stale(&record.secrets) {
                let secrets = self.config.secrets.open(&record.id, &record.secrets)?;
                record.secrets = self.config.secrets.close(&record.id, &secrets)?;
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
        let mut response = Response::json(200, &record.view());
        if unpaused {
            response.follow_up = dispatch::release(self.platform, id, self.platform.now_millis())?;
        }
        Ok(response)
    }

    fn delete(&self, id: &str) -> Result<Response, Problem> {
        let record = self.load(id)?;
        store::delete(self.platform, &record)?;
        Ok(Response::new(204, Vec::new(), Vec::new()))
    }

    fn rotate(&self, id: &str, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, false)?;
        let grace = body.optional_integer("graceSeconds", 0, i64::from(MAX_GRACE_SECONDS));
        body.finish()?;
        let grace = grace.map_or(hooksign::DEFAULT_GRACE_SECONDS, |grace| grace as u32);
        check_id(id)?;
        let signature = self.load(id)?.signature;
        let secret = generate_key(signature)?;
        // Applied to the endpoint as stored at the write, so concurrent
        // rotations each keep the secrets the others added.
        let secret_text = secret.to_text();
        let record = store::modify(self.platform, self.org, id, |record| {
            let secrets = self.config.secrets.open(&record.id, &record.secrets)?;
            // Rotated in already (by this request's own earlier write).
            if secrets.iter().any(|kept| kept.key == secret_text) {
                return Ok(());
            }
            let keyring = Keyring::from_records(&secrets).map_err(|_| stored_keyring_invalid())?;
            let rotated = match keyring.rotate(secret.clone(), self.now, grace) {
                Ok(rotated) => rotated,
                Err(hooksign::Error::TooManySecrets) => {
                    return Err(Problem::new(
                        Code::TooManySecrets,
                        "the rotation would keep more than 10 previous secrets; wait for one to expire or rotate with a shorter grace",
                    ));
                }
                Err(_) => return Err(stored_keyring_invalid()),
            };
            record.secrets = self
                .config
                .secrets
                .close(&record.id, &rotated.to_records())?;
            record.signing_public_key = public_key_text(&secret);
            record.updated_at = self.now;
            Ok(())
        })?;
        Ok(key_answer(200, &record, &secret))
    }

    /// `?status=succeeded|failed` keeps those attempts only.
    fn attempts(&self, id: &str, request: &Request) -> Result<Response, Problem> {
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
        let record = self.load(id)?;
        let mut data = store::attempts(self.platform, &record, store::KEPT_ATTEMPTS)?;
        data.retain(|attempt| wanted.is_none_or(|succeeded| attempt.succeeded == succeeded));
        data.truncate(limit as usize);
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
            attempt_number: 1,
        };
        let delivered = deliver(self.platform, self.config, &record, &message).await?;
        let (attempt, response) = (delivered.attempt, delivered.response);
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
                Code::ForbiddenTarget,
                "the url points at a loopback, private, link-local or metadata address",
            )),
        }
    }
}

/// An answer that carries a secret: never stored by a cache.
pub fn with_secret(mut response: Response) -> Response {
    response
        .headers
        .push(("cache-control".into(), "no-store".into()));
    response
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

/// `{"type", "timestamp", "data"}`, as sent.
fn envelope(event_type: &str, now: i64, data: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "type": event_type, "timestamp": rfc3339(now), "data": data }))
        .unwrap_or_default()
}
