//! Messages: an accepted event, stored before anything is sent, with one
//! delivery per subscribed endpoint; the message log and resends.
//!
//! Keys (organisation and message id percent-encoded):
//! - `message/{org}/{id}`: the message, its payload exactly as signed and
//!   the endpoints it goes to. It is written first, by compare-and-swap on
//!   an absent key, which makes the caller's `id` an idempotency key; it is
//!   marked `accepted` last, once every delivery, queue entry and log entry
//!   is written, so a repost of a half-written message completes it.
//! - `delivery/{org}/{id}/{endpoint}`: status, attempts, the next attempt
//!   and the lease of the dispatcher sending it (see `dispatch.rs`).
//! - `log/{org}/{day}`: the day's messages in the order accepted (id, type,
//!   time), for `GET /messages`; `retention/{day}` and `retention/days` list
//!   what to prune when the day expires.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::Api;
use crate::dispatch::{self, DeliveryRef};
use crate::model::{new_message_id, new_uuid, rfc3339};
use crate::problem::Code;
use crate::request::{Body, Query, check_id};
use crate::store::{self, get_json, update_json, update_or_default};
use crate::{Platform, Problem, Request, Response};

/// Seconds in a day: the log and retention are kept a day at a time.
pub const DAY_SECONDS: i64 = 86_400;

/// A stored message.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    pub id: String,
    pub org: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
    /// The envelope, exactly as every attempt signs and sends it.
    pub body: String,
    pub created_at: i64,
    /// The endpoints it goes to, chosen when it was accepted.
    pub endpoints: Vec<String>,
    /// Whole: every delivery, queue entry and log entry is written.
    pub accepted: bool,
    /// The request that claimed the id (to know its own write again).
    pub claim: String,
}

/// Where one message stands at one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint is paused; unpausing releases it.
    Held,
    /// A receiver answered 2xx.
    Succeeded,
    /// Every attempt of the schedule failed.
    Failed,
}

/// A dispatcher's claim on a delivery while it sends one attempt.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub token: String,
    /// Unix milliseconds; after it, another dispatcher may take over.
    pub until: i64,
}

/// A stored delivery.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Unix milliseconds, while pending.
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub lease: Option<Lease>,
    /// The last lease that finished, so that finishing twice is one finish.
    #[serde(default)]
    pub finished_lease: Option<String>,
}

impl DeliveryRecord {
    fn new(status: DeliveryStatus, now_ms: i64) -> DeliveryRecord {
        DeliveryRecord {
            status,
            attempts: 0,
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(now_ms),
            last_attempt_at: None,
            last_error: None,
            lease: None,
            finished_lease: None,
        }
    }

    fn view(&self, endpoint_id: &str) -> Value {
        json!({
            "endpointId": endpoint_id,
            "status": self.status,
            "attempts": self.attempts,
            "nextAttemptAt": self.next_attempt_at.map(|at| rfc3339(at.div_euclid(1000))),
            "lastAttemptAt": self.last_attempt_at.map(rfc3339),
            "lastError": self.last_error,
        })
    }
}

/// One entry of an organisation's daily log.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Logged {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created_at: i64,
}

/// A key segment: organisation names and message ids may hold `/`.
pub fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub fn message_key(org: &str, id: &str) -> String {
    format!("message/{}/{}", segment(org), segment(id))
}

fn log_key(org: &str, day: i64) -> String {
    format!("log/{}/{day}", segment(org))
}

const RETENTION_DAYS_KEY: &str = "retention/days";

fn retention_key(day: i64) -> String {
    format!("retention/{day}")
}

/// A message of this organisation, if it exists.
pub fn find(
    platform: &impl Platform,
    org: &str,
    id: &str,
) -> Result<Option<MessageRecord>, Problem> {
    get_json(platform, &message_key(org, id))
}

impl<P: Platform> Api<'_, P> {
    /// `POST /events`: stores the message and its deliveries, then answers
    /// 202; the first attempts follow the answer (`Response::follow_up`).
    pub fn accept_event(&self, request: &Request) -> Result<Response, Problem> {
        let (event_type, data, id) = event_fields(request)?;
        let id = match id {
            Some(id) => id,
            None => new_message_id()?,
        };
        let mut endpoints = Vec::new();
        for endpoint in store::may_want(self.platform, self.org, &event_type)? {
            // Deleted since the index was read: skipped.
            if let Some(record) = store::find(self.platform, self.org, &endpoint)?
                && record.subscribed(&event_type)
            {
                endpoints.push(record.id);
            }
        }
        let body = serde_json::to_string(
            &json!({ "type": event_type, "timestamp": rfc3339(self.now), "data": data }),
        )
        .map_err(|_| Problem::store_unavailable())?;
        let fresh = MessageRecord {
            id: id.clone(),
            org: self.org.to_string(),
            event_type,
            data,
            body,
            created_at: self.now,
            endpoints,
            accepted: false,
            claim: new_uuid()?,
        };
        // The claim: the first writer of the id owns it.
        let found = update_json(
            self.platform,
            &message_key(self.org, &id),
            |current: Option<MessageRecord>| match current {
                None => Ok((Some(fresh.clone()), None)),
                // This request's own claim, found by the confirming read.
                Some(found) if found.claim == fresh.claim => Ok((None, None)),
                Some(found) => Ok((None, Some(found))),
            },
        )?;
        let message = match found {
            None => fresh,
            Some(found) if found.event_type != fresh.event_type || found.data != fresh.data => {
                return Err(Problem::new(
                    Code::IdempotencyConflict,
                    format!("the message {id} was accepted with another type or payload"),
                ));
            }
            Some(found) if found.accepted => {
                return Ok(Response::json(200, &self.message_view(&found)?));
            }
            // Half-written by an earlier request: complete it.
            Some(found) => found,
        };
        let follow_up = self.write_deliveries(&message)?;
        self.log(&message)?;
        update_json(
            self.platform,
            &message_key(self.org, &id),
            |current: Option<MessageRecord>| {
                Ok(match current {
                    Some(mut record) if !record.accepted => {
                        record.accepted = true;
                        (Some(record), ())
                    }
                    _ => (None, ()),
                })
            },
        )?;
        let mut response = Response::json(202, &self.message_view(&message)?);
        response.follow_up = follow_up;
        Ok(response)
    }

    /// Creates each missing delivery (held for a paused endpoint) and puts
    /// the pending ones in the queue; returns those.
    fn write_deliveries(&self, message: &MessageRecord) -> Result<Vec<DeliveryRef>, Problem> {
        let now_ms = self.platform.now_millis();
        let mut pending = Vec::new();
        for endpoint in &message.endpoints {
            let paused =
                store::find(self.platform, self.org, endpoint)?.is_some_and(|record| record.paused);
            let status = if paused {
                DeliveryStatus::Held
            } else {
                DeliveryStatus::Pending
            };
            let delivery = DeliveryRef::new(self.org, &message.id, endpoint);
            let record = update_json(
                self.platform,
                &delivery.key(),
                |current: Option<DeliveryRecord>| {
                    Ok(match current {
                        Some(record) => (None, record),
                        None => {
                            let record = DeliveryRecord::new(status, now_ms);
                            (Some(record.clone()), record)
                        }
                    })
                },
            )?;
            match record.status {
                DeliveryStatus::Pending => pending.push(delivery),
                DeliveryStatus::Held => dispatch::hold(self.platform, &delivery)?,
                DeliveryStatus::Succeeded | DeliveryStatus::Failed => {}
            }
        }
        dispatch::enqueue_all(self.platform, &pending, now_ms)?;
        Ok(pending)
    }

    /// Lists the message in its day's log and for pruning.
    fn log(&self, message: &MessageRecord) -> Result<(), Problem> {
        let day = message.created_at.div_euclid(DAY_SECONDS);
        let entry = Logged {
            id: message.id.clone(),
            event_type: message.event_type.clone(),
            created_at: message.created_at,
        };
        // Each list is written before the one that points at it.
        update_or_default(
            self.platform,
            &log_key(self.org, day),
            |entries: &mut Vec<Logged>| {
                if !entries.contains(&entry) {
                    entries.push(entry.clone());
                }
            },
        )?;
        let key = message_key(self.org, &message.id);
        update_or_default(
            self.platform,
            &retention_key(day),
            |keys: &mut Vec<String>| {
                if !keys.contains(&key) {
                    keys.push(key.clone());
                }
            },
        )?;
        update_or_default(self.platform, RETENTION_DAYS_KEY, |days: &mut Vec<i64>| {
            if !days.contains(&day) {
                days.push(day);
            }
        })
    }

    /// The message with each endpoint's delivery, as stored now.
    fn message_view(&self, message: &MessageRecord) -> Result<Value, Problem> {
        let mut deliveries = Vec::with_capacity(message.endpoints.len());
        for endpoint in &message.endpoints {
            let delivery = DeliveryRef::new(self.org, &message.id, endpoint);
            if let Some(record) = get_json::<DeliveryRecord>(self.platform, &delivery.key())? {
                deliveries.push(record.view(endpoint));
            }
        }
        Ok(json!({
            "id": message.id,
            "type": message.event_type,
            "createdAt": rfc3339(message.created_at),
            "data": message.data,
            "deliveries": deliveries,
        }))
    }

    /// `GET /messages`: newest first, a day of the log at a time.
    pub fn list_messages(&self, request: &Request) -> Result<Response, Problem> {
        let query = Query::parse(request);
        let limit = query.limit(50)? as usize;
        let wanted_type = query.get("type");
        let today = self.now.div_euclid(DAY_SECONDS);
        let oldest = today - self.config.retention_days as i64;
        // A cursor is `DAY.POSITION`: continue below that entry of that day.
        let (mut day, mut below) = match query.get("cursor") {
            None => (today, None),
            Some(cursor) => {
                let parsed = cursor.split_once('.').and_then(|(day, position)| {
                    Some((day.parse::<i64>().ok()?, position.parse::<usize>().ok()?))
                });
                let (day, position) = parsed
                    .filter(|(day, _)| (oldest..=today).contains(day))
                    .ok_or_else(|| {
                        Problem::field("query.cursor", "is not a cursor from this list")
                    })?;
                (day, Some(position))
            }
        };
        let mut data = Vec::new();
        let mut next_cursor = None;
        'days: while day >= oldest {
            let entries: Vec<Logged> =
                get_json(self.platform, &log_key(self.org, day))?.unwrap_or_default();
            let end = below.unwrap_or(entries.len()).min(entries.len());
            for position in (0..end).rev() {
                let entry = &entries[position];
                if wanted_type.is_some_and(|wanted| wanted != entry.event_type) {
                    continue;
                }
                if data.len() == limit {
                    next_cursor = Some(format!("{day}.{}", position + 1));
                    break 'days;
                }
                data.push(json!({
                    "id": entry.id,
                    "type": entry.event_type,
                    "createdAt": rfc3339(entry.created_at),
                }));
            }
            day -= 1;
            below = None;
        }
        Ok(Response::json(
            200,
            &json!({ "data": data, "nextCursor": next_cursor }),
        ))
    }

    /// `GET /messages/{id}`.
    pub fn get_message(&self, id: &str) -> Result<Response, Problem> {
        let message = self.load_message(id)?;
        Ok(Response::json(200, &self.message_view(&message)?))
    }

    /// `POST /messages/{id}/resend` `{endpointId}`: a new attempt at once,
    /// whatever the delivery's status.
    pub fn resend(&self, id: &str, request: &Request) -> Result<Response, Problem> {
        let mut body = Body::parse(request, true)?;
        let endpoint = body.required_string("endpointId");
        body.finish()?;
        let Some(endpoint) = endpoint else {
            return Err(Problem::field("endpointId", "is required"));
        };
        check_id(&endpoint).map_err(|_| Problem::field("endpointId", "is not a UUID"))?;
        let message = self.load_message(id)?;
        store::load(self.platform, self.org, &endpoint)?;
        let now_ms = self.platform.now_millis();
        let delivery = DeliveryRef::new(self.org, &message.id, &endpoint);
        let record = update_json(
            self.platform,
            &delivery.key(),
            |current: Option<DeliveryRecord>| {
                let mut record =
                    current.unwrap_or_else(|| DeliveryRecord::new(DeliveryStatus::Pending, now_ms));
                record.status = DeliveryStatus::Pending;
                record.next_attempt_at = Some(now_ms);
                Ok((Some(record.clone()), record))
            },
        )?;
        if !message.endpoints.contains(&endpoint) {
            update_json(
                self.platform,
                &message_key(self.org, &message.id),
                |current: Option<MessageRecord>| {
                    Ok(match current {
                        Some(mut found) if !found.endpoints.contains(&endpoint) => {
                            found.endpoints.push(endpoint.clone());
                            (Some(found), ())
                        }
                        _ => (None, ()),
                    })
                },
            )?;
        }
        dispatch::enqueue(self.platform, &delivery, now_ms)?;
        let mut response = Response::json(202, &record.view(&endpoint));
        response.follow_up = vec![delivery];
        Ok(response)
    }

    fn load_message(&self, id: &str) -> Result<MessageRecord, Problem> {
        find(self.platform, self.org, id)?
            .filter(|message| message.accepted)
            .ok_or_else(|| Problem::not_found(format!("no message {id}")))
    }
}

/// `{type, data, id?}` of `POST /events`.
fn event_fields(request: &Request) -> Result<(String, Value, Option<String>), Problem> {
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
    match (event_type, data) {
        (Some(event_type), Some(data)) => Ok((event_type, data, id)),
        _ => Err(Problem::field("type", "is required")),
    }
}

/// Removes the oldest expired day: its messages, their deliveries and the
/// organisations' log entries. At most one day per call.
pub fn prune_expired_day(
    platform: &impl Platform,
    today: i64,
    keep_days: u64,
) -> Result<(), Problem> {
    let days: Vec<i64> = get_json(platform, RETENTION_DAYS_KEY)?.unwrap_or_default();
    let Some(day) = days
        .iter()
        .copied()
        .filter(|day| *day < today - keep_days as i64)
        .min()
    else {
        return Ok(());
    };
    let keys: Vec<String> = get_json(platform, &retention_key(day))?.unwrap_or_default();
    for key in keys {
        if let Some(message) = get_json::<MessageRecord>(platform, &key)? {
            for endpoint in &message.endpoints {
                store::remove(
                    platform,
                    &DeliveryRef::new(&message.org, &message.id, endpoint).key(),
                )?;
            }
            store::remove(platform, &log_key(&message.org, day))?;
        }
        store::remove(platform, &key)?;
    }
    store::remove(platform, &retention_key(day))?;
    update_or_default(platform, RETENTION_DAYS_KEY, |days: &mut Vec<i64>| {
        days.retain(|listed| *listed != day);
    })
}
