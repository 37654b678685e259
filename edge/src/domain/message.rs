//! Messages: an accepted event, stored before anything is sent, with one
//! delivery per subscribed endpoint; the envelope every attempt signs; the
//! daily log and retention.
//!
//! `message/{org}/{id}` holds the message, its payload exactly as signed
//! and the endpoints it goes to. It is written first, by compare-and-swap
//! on an absent key, which makes the caller's `id` an idempotency key; it
//! is marked `accepted` last, once every delivery, queue entry and log
//! entry is written, so a repost of a half-written message completes it.
//! `log/{org}/{day}` lists the day's messages in the order accepted (id,
//! type, time); `retention/{day}` lists the organisations that logged
//! messages that day and `retention/days` those days, so an expired day is
//! pruned through its organisations' logs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::delivery::{self, DeliveryRecord, DeliveryStatus, FirstAttempts};
use crate::domain::endpoint::{self, EndpointRecord};
use crate::domain::queue;
use crate::foundation::encoding::{new_uuid, rfc3339};
use crate::foundation::problem::{Code, Problem};
use crate::ids::{EndpointId, MessageId, OrgId};
use crate::platform::{DeliveryRef, FollowUp, Platform};
use crate::store::{self, get_json, keys, update_json, update_or_default};

/// Seconds in a day: the log and retention are kept a day at a time.
pub const DAY_SECONDS: i64 = 86_400;

/// A stored message.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    pub id: MessageId,
    pub org: OrgId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
    /// The envelope, exactly as every attempt signs and sends it.
    pub body: String,
    /// Unix seconds.
    #[serde(rename = "createdAt")]
    pub created_at_s: i64,
    /// The endpoints it goes to, chosen when it was accepted.
    pub endpoints: Vec<EndpointId>,
    /// Whole: every delivery, queue entry and log entry is written.
    pub accepted: bool,
    /// The request that claimed the id (to know its own write again).
    pub claim: String,
}

impl MessageRecord {
    /// Its delivery to `endpoint`.
    pub fn delivery(&self, endpoint: &EndpointId) -> DeliveryRef {
        DeliveryRef::new(&self.org, &self.id, endpoint)
    }
}

/// One entry of an organisation's daily log.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logged {
    pub id: MessageId,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds.
    #[serde(rename = "createdAt")]
    pub created_at_s: i64,
}

/// `{"type", "timestamp", "data"}`: the body every attempt of an event
/// (and a test send) signs and sends.
pub fn envelope(event_type: &str, now: i64, data: &Value) -> String {
    json!({ "type": event_type, "timestamp": rfc3339(now), "data": data }).to_string()
}

/// A message of this organisation, if it exists.
pub fn find(
    platform: &impl Platform,
    org: &OrgId,
    id: &MessageId,
) -> Result<Option<MessageRecord>, Problem> {
    get_json(platform, &keys::message(org, id))
}

/// An event to accept: its type, payload and id.
pub struct Event {
    pub event_type: String,
    pub data: Value,
    pub id: MessageId,
}

/// A message's deliveries as stored, by endpoint.
pub type Deliveries = Vec<(EndpointId, DeliveryRecord)>;

/// What accepting an event found.
pub enum Accepted {
    /// Written now, or completed after an earlier request left it half
    /// written: each endpoint's delivery as stored, and the pending ones
    /// to send after the answer, with the message and endpoints they need.
    Written(MessageRecord, Deliveries, FollowUp),
    /// Accepted whole before, with the same type and payload.
    Before(MessageRecord),
}

/// Stores an event as a message of `org` with its deliveries (the id an
/// idempotency key: a repost with another type or payload is 409), the
/// first pending ones leased for the attempts that follow the answer.
pub fn accept(
    platform: &impl Platform,
    org: &OrgId,
    now: i64,
    Event {
        event_type,
        data,
        id,
    }: Event,
    first: &FirstAttempts,
) -> Result<Accepted, Problem> {
    let mut subscribers = Vec::new();
    for candidate in endpoint::may_want(platform, org, &event_type)? {
        // Deleted since the index was read: skipped.
        if let Some(record) = endpoint::find(platform, org, &candidate)?
            && record.subscribed(&event_type)
        {
            subscribers.push(record);
        }
    }
    let endpoints = subscribers.iter().map(|record| record.id.clone()).collect();
    let fresh = MessageRecord {
        id: id.clone(),
        org: org.clone(),
        body: envelope(&event_type, now, &data),
        event_type,
        data,
        created_at_s: now,
        endpoints,
        accepted: false,
        claim: new_uuid()?,
    };
    let message = match claim(platform, &fresh)? {
        None => fresh,
        Some(found) if found.event_type != fresh.event_type || found.data != fresh.data => {
            return Err(Problem::new(
                Code::IdempotencyConflict,
                format!("the message {id} was accepted with another type or payload"),
            ));
        }
        Some(found) if found.accepted => return Ok(Accepted::Before(found)),
        // Half-written by an earlier request: complete it.
        Some(found) => found,
    };
    let (deliveries, pending) = write_deliveries(platform, &message, &subscribers, first)?;
    log(platform, &message)?;
    let whole = mark_accepted(platform, &message)?;
    // The first attempts need the message (whole now) and the endpoints
    // this request read: they are handed on, not read again.
    let mut known = Vec::with_capacity(1 + subscribers.len());
    if let Some(whole) = &whole {
        known.push(store::known(keys::message(org, &id), whole)?);
    }
    for record in subscribers
        .iter()
        .filter(|record| message.endpoints.contains(&record.id))
    {
        known.push(store::known(keys::endpoint(&record.id), record)?);
    }
    // The deliveries this request leased as it created them (not those an
    // earlier request created and may be sending).
    for (endpoint, record) in &deliveries {
        if record.lease.as_ref() == Some(&first.lease) {
            known.push(store::known(
                keys::delivery(&message.delivery(endpoint)),
                record,
            )?);
        }
    }
    let follow_up = FollowUp {
        deliveries: pending,
        known,
    };
    Ok(Accepted::Written(message, deliveries, follow_up))
}

/// Marks the message whole, last of its writes; returns it as stored.
fn mark_accepted(
    platform: &impl Platform,
    message: &MessageRecord,
) -> Result<Option<MessageRecord>, Problem> {
    update_json(
        platform,
        &keys::message(&message.org, &message.id),
        |current: Option<MessageRecord>| {
            Ok(match current {
                Some(mut record) if !record.accepted => {
                    record.accepted = true;
                    (Some(record.clone()), Some(record))
                }
                stored => (None, stored),
            })
        },
    )
}

/// The claim on the message's id: the first writer of the id owns it;
/// `Some` with the message another request wrote.
fn claim(
    platform: &impl Platform,
    fresh: &MessageRecord,
) -> Result<Option<MessageRecord>, Problem> {
    update_json(
        platform,
        &keys::message(&fresh.org, &fresh.id),
        |current: Option<MessageRecord>| match current {
            None => Ok((Some(fresh.clone()), None)),
            // This request's own claim, found by the confirming read.
            Some(found) if found.claim == fresh.claim => Ok((None, None)),
            Some(found) => Ok((None, Some(found))),
        },
    )
}

/// Creates each missing delivery (held for a paused endpoint) and puts
/// the pending ones in the queue; returns every delivery as stored, and
/// the pending ones. `read` holds the endpoints this request read already
/// (a message completed for an earlier request may go to others).
fn write_deliveries(
    platform: &impl Platform,
    message: &MessageRecord,
    read: &[EndpointRecord],
    first: &FirstAttempts,
) -> Result<(Deliveries, Vec<DeliveryRef>), Problem> {
    let now_ms = platform.now_millis();
    let mut written = Vec::with_capacity(message.endpoints.len());
    let mut pending = Vec::new();
    for endpoint in &message.endpoints {
        let paused = match read.iter().find(|record| record.id == *endpoint) {
            Some(record) => record.paused,
            None => endpoint::find(platform, &message.org, endpoint)?
                .is_some_and(|record| record.paused),
        };
        let status = if paused {
            DeliveryStatus::Held
        } else {
            DeliveryStatus::Pending
        };
        let delivery = message.delivery(endpoint);
        let lease = (pending.len() < first.count).then_some(&first.lease);
        let record = delivery::create(platform, &delivery, status, now_ms, lease)?;
        match record.status {
            DeliveryStatus::Pending => pending.push(delivery),
            DeliveryStatus::Held => delivery::hold(platform, &delivery)?,
            DeliveryStatus::Succeeded | DeliveryStatus::Failed => {}
        }
        written.push((endpoint.clone(), record));
    }
    queue::enqueue_all(platform, &pending, now_ms)?;
    Ok((written, pending))
}

/// Lists the message in its day's log and for pruning.
fn log(platform: &impl Platform, message: &MessageRecord) -> Result<(), Problem> {
    let day = message.created_at_s.div_euclid(DAY_SECONDS);
    let entry = Logged {
        id: message.id.clone(),
        event_type: message.event_type.clone(),
        created_at_s: message.created_at_s,
    };
    // Each list is written before the one that points at it.
    update_or_default(
        platform,
        &keys::message_log(&message.org, day),
        |entries: &mut Vec<Logged>| {
            if !entries.contains(&entry) {
                entries.push(entry.clone());
            }
        },
    )?;
    // The day's organisations, not its messages: the list changes with an
    // organisation's first message of the day only, and grows with no
    // organisation's traffic.
    let listed = Retained::Org {
        org: message.org.clone(),
    };
    update_or_default(
        platform,
        &keys::retention(day),
        |retained: &mut Vec<Retained>| {
            if !retained.contains(&listed) {
                retained.push(listed.clone());
            }
        },
    )?;
    update_or_default(platform, keys::RETENTION_DAYS, |days: &mut Vec<i64>| {
        if !days.contains(&day) {
            days.push(day);
        }
    })
}

/// The organisation's log of one day, in the order accepted.
pub fn logged(platform: &impl Platform, org: &OrgId, day: i64) -> Result<Vec<Logged>, Problem> {
    Ok(get_json(platform, &keys::message_log(org, day))?.unwrap_or_default())
}

/// Adds an endpoint to the message's (a resend to an endpoint it was not
/// accepted for).
pub fn add_endpoint(
    platform: &impl Platform,
    message: &MessageRecord,
    endpoint: &EndpointId,
) -> Result<(), Problem> {
    if message.endpoints.iter().any(|listed| listed == endpoint) {
        return Ok(());
    }
    update_json(
        platform,
        &keys::message(&message.org, &message.id),
        |current: Option<MessageRecord>| {
            Ok(match current {
                Some(mut found) if !found.endpoints.iter().any(|listed| listed == endpoint) => {
                    found.endpoints.push(endpoint.clone());
                    (Some(found), ())
                }
                _ => (None, ()),
            })
        },
    )
}

/// An entry of a day's retention list.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Retained {
    /// An organisation that logged messages that day: its log lists them.
    Org { org: OrgId },
    /// A message's key, as lists were written before they named
    /// organisations.
    Message(String),
}

/// Removes the oldest expired day: its messages, their deliveries and the
/// organisations' logs. At most one day per call.
pub fn prune_expired_day(
    platform: &impl Platform,
    today: i64,
    keep_days: u64,
) -> Result<(), Problem> {
    let days: Vec<i64> = get_json(platform, keys::RETENTION_DAYS)?.unwrap_or_default();
    let Some(day) = days
        .iter()
        .copied()
        .filter(|day| *day < today - keep_days as i64)
        .min()
    else {
        return Ok(());
    };
    let retained: Vec<Retained> = get_json(platform, &keys::retention(day))?.unwrap_or_default();
    for entry in retained {
        match entry {
            Retained::Org { org } => {
                for logged in logged(platform, &org, day)? {
                    prune_message(platform, &keys::message(&org, &logged.id), day)?;
                }
                store::remove(platform, &keys::message_log(&org, day))?;
            }
            Retained::Message(key) => prune_message(platform, &key, day)?,
        }
    }
    store::remove(platform, &keys::retention(day))?;
    update_or_default(platform, keys::RETENTION_DAYS, |days: &mut Vec<i64>| {
        days.retain(|listed| *listed != day);
    })
}

/// Removes a message of an expired day, its deliveries and its
/// organisation's log of that day.
fn prune_message(platform: &impl Platform, key: &str, day: i64) -> Result<(), Problem> {
    if let Some(message) = get_json::<MessageRecord>(platform, key)? {
        for endpoint in &message.endpoints {
            delivery::remove(platform, &message.delivery(endpoint))?;
        }
        store::remove(platform, &keys::message_log(&message.org, day))?;
    }
    store::remove(platform, key)
}
