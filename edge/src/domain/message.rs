//! Messages: an accepted event, stored before anything is sent, with one
//! delivery per subscribed endpoint; the envelope every attempt signs; the
//! daily log and retention.
//!
//! `message/{org}/{id}` holds the message, its payload exactly as signed
//! and the endpoints it goes to. It is written first, by compare-and-swap
//! on an absent key, which makes the caller's `id` an idempotency key; it
//! is marked `accepted` last, once every delivery, queue entry and log
//! entry is written, so a repost of a half-written message completes it.
//! The day's log holds the messages in the order accepted (id, type,
//! time), one key each (`log/{org}/{day}/{n}`, `n` counted atomically in
//! `log/{org}/{day}/count` and kept in the message, so that a repost
//! writes the same entry), so an accept writes a few bytes however long the
//! day; days logged before keep their list (`log/{org}/{day}`), read
//! after the keyed entries. `retention/{day}` lists the organisations that logged
//! messages that day and `retention/days` those days (a day is listed
//! there before an organisation in it), so an expired day is pruned
//! through its organisations' logs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::delivery::{self, DeliveryRecord, DeliveryStatus, FirstAttempts, Lease};
use crate::domain::endpoint::{self, EndpointRecord};
use crate::domain::limits;
use crate::domain::queue;
use crate::foundation::encoding::{new_uuid, rfc3339};
use crate::foundation::problem::{Code, Problem};
use crate::ids::{EndpointId, MessageId, OrgId};
use crate::platform::{DeliveryRef, FollowUp, Platform};
use crate::store::keys::OrgList;
use crate::store::{self, ReadAhead, Writes, get_json, keys, update_json, update_or_default};

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
    /// The envelope, exactly as every attempt signs and sends it; it holds
    /// the payload, which is stored only here (messages of before also
    /// have a `data` field, no longer read).
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
    /// Its entry in the day's log; absent for messages logged in a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_slot: Option<LogSlot>,
    /// The lease of the request that marked it whole, on the deliveries it
    /// left without a record for the first attempts after its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempts: Option<Lease>,
    /// When that request queued them: the second of their queue entry.
    #[serde(rename = "queuedAt", default, skip_serializing_if = "Option::is_none")]
    pub queued_at_ms: Option<i64>,
}

/// A message's entry in an organisation's log: its day and number.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSlot {
    pub day: i64,
    pub n: i64,
}

impl MessageRecord {
    /// The payload, as posted: the envelope's `data`.
    pub fn data(&self) -> Value {
        #[derive(Deserialize)]
        struct Envelope {
            data: Value,
        }
        serde_json::from_str::<Envelope>(&self.body).map_or(Value::Null, |envelope| envelope.data)
    }

    /// What it counts against its organisation's storage budget.
    pub fn stored_bytes(&self) -> i64 {
        stored_bytes(&self.id, &self.event_type, &self.body)
    }

    /// Its delivery to `endpoint`.
    pub fn delivery(&self, endpoint: &EndpointId) -> DeliveryRef {
        DeliveryRef::new(&self.org, &self.id, endpoint)
    }

    /// What a delivery of it without a record stands for: pending, due
    /// when it was queued (in its queue entry's second), never attempted,
    /// under the lease of its first attempts.
    pub fn unwritten(&self) -> DeliveryRecord {
        let queued_at_ms = self.queued_at_ms.unwrap_or(self.created_at_s * 1000);
        let mut record = DeliveryRecord::new(DeliveryStatus::Pending, queued_at_ms);
        record.lease.clone_from(&self.first_attempts);
        record
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

/// What a message counts against its organisation's storage budget: its
/// fields that never change once accepted, the envelope foremost.
fn stored_bytes(id: &MessageId, event_type: &str, body: &str) -> i64 {
    i64::try_from(id.as_str().len() + event_type.len() + body.len()).unwrap_or(i64::MAX)
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
    /// An endpoint it never goes to (the one an operational event is about).
    pub skip: Option<EndpointId>,
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

/// Reads ahead, in one batch, what accepting `event` at `now_ms` reads
/// before it writes, and the event type's record that `POST /events`
/// reads to check the payload; and the message's key, which its claim
/// begins with ([`ReadAhead::read`]).
pub fn read_first<P: Platform>(
    platform: &ReadAhead<'_, P>,
    org: &OrgId,
    event: &Event,
    now_ms: i64,
) -> Result<(), Problem> {
    let now = now_ms.div_euclid(1000);
    let reads = [
        keys::event_type(org, &event.event_type),
        // endpoint::may_want's index, queue::enqueue_into's second, log's day.
        keys::org_list(OrgList::Endpoints, org),
        keys::due_orgs(now),
        keys::retention(now.div_euclid(DAY_SECONDS)),
    ];
    Ok(platform.read(&reads, &[keys::message(org, &event.id)])?)
}

/// Stores an event as a message of `org` with its deliveries (the id an
/// idempotency key: a repost with another type or payload is 409), the
/// first pending ones leased for the attempts that follow the answer.
pub fn accept<P: Platform>(
    platform: &ReadAhead<'_, P>,
    org: &OrgId,
    now: i64,
    Event {
        event_type,
        data,
        id,
        skip,
    }: Event,
    first: &FirstAttempts,
    storage_budget: u64,
) -> Result<Accepted, Problem> {
    let subscribers = subscribers(platform, org, &id, &event_type, skip.as_ref())?;
    let body = envelope(&event_type, now, &data);
    // Charged before anything is written, so an organisation past its
    // budget writes nothing; given back below if the id was claimed before.
    let bytes = stored_bytes(&id, &event_type, &body);
    let charged = charge(platform, org, &id, bytes, storage_budget)?;
    // Taken before the claim, so the claim stores it; a repost of an
    // accepted id leaves its number unused, which listing skips.
    let day = now.div_euclid(DAY_SECONDS);
    let log_slot = LogSlot {
        day,
        n: platform.increment(&keys::message_log_count(org, day), 1)?,
    };
    let fresh = MessageRecord {
        id: id.clone(),
        org: org.clone(),
        body,
        event_type,
        created_at_s: now,
        endpoints: subscribers.iter().map(|record| record.id.clone()).collect(),
        accepted: false,
        claim: new_uuid()?,
        log_slot: Some(log_slot),
        first_attempts: None,
        queued_at_ms: None,
    };
    let claimed = claim(platform, &fresh)?;
    if claimed.is_some() && charged {
        limits::refund_storage(platform, org, bytes)?;
    }
    let message = match claimed {
        None => fresh,
        Some(found) if found.event_type != fresh.event_type || found.data() != data => {
            return Err(Problem::new(
                Code::IdempotencyConflict,
                format!("the message {id} was accepted with another type or payload"),
            ));
        }
        Some(found) if found.accepted => return Ok(Accepted::Before(found)),
        // Half-written by an earlier request: complete it.
        Some(found) => found,
    };
    // In this request's slot if the message was claimed before messages
    // had one.
    let slot = message.log_slot.unwrap_or(log_slot);
    let (deliveries, follow_up) = complete(platform, &message, &subscribers, first, slot)?;
    Ok(Accepted::Written(message, deliveries, follow_up))
}

/// Writes a claimed message's deliveries, queue entry and log entry in
/// `slot`, then marks it whole; returns its deliveries as they stand and
/// what its first attempts send.
fn complete(
    platform: &impl Platform,
    message: &MessageRecord,
    subscribers: &[EndpointRecord],
    first: &FirstAttempts,
    slot: LogSlot,
) -> Result<(Deliveries, FollowUp), Problem> {
    // The queue's and the log's entries, keys of their own, go in one batch.
    let mut entries = Writes::default();
    let queued_at_ms = platform.now_millis();
    let (deliveries, unwritten) = write_deliveries(
        platform,
        message,
        subscribers,
        (first, queued_at_ms),
        &mut entries,
    )?;
    log(platform, message, slot, &mut entries)?;
    entries.write(platform)?;
    let whole = mark_accepted(platform, message, &first.lease, queued_at_ms)?;
    // Only the request whose lease the message holds sends the deliveries
    // left without a record; a repost that completed it second leaves
    // them to that request, or to a dispatcher once the lease ends.
    let follow_up = match whole {
        Some(whole) if whole.first_attempts.as_ref() == Some(&first.lease) => FollowUp {
            deliveries: unwritten,
            known: handed_on(&whole, subscribers)?,
        },
        _ => FollowUp::default(),
    };
    Ok((deliveries, follow_up))
}

/// Charges a message's bytes to the organisation's budget; `false` when
/// the budget is spent but the id is stored already: a repost, answered
/// from what is stored, charges nothing.
fn charge(
    platform: &impl Platform,
    org: &OrgId,
    id: &MessageId,
    bytes: i64,
    budget: u64,
) -> Result<bool, Problem> {
    if limits::charge_storage(platform, org, bytes, budget)? {
        return Ok(true);
    }
    if find(platform, org, id)?.is_some() {
        return Ok(false);
    }
    Err(limits::storage_exceeded(budget))
}

/// The organisation's endpoints subscribed to the type, as stored now,
/// but `skip`. Read in one batch with the keys of the message's
/// deliveries to them, which their creation begins with.
fn subscribers<P: Platform>(
    platform: &ReadAhead<'_, P>,
    org: &OrgId,
    message: &MessageId,
    event_type: &str,
    skip: Option<&EndpointId>,
) -> Result<Vec<EndpointRecord>, Problem> {
    let mut wanted = endpoint::may_want(platform, org, event_type)?;
    wanted.retain(|id| Some(id) != skip);
    let endpoints: Vec<String> = wanted.iter().map(keys::endpoint).collect();
    let deliveries: Vec<String> = wanted
        .iter()
        .map(|endpoint| keys::delivery(&DeliveryRef::new(org, message, endpoint)))
        .collect();
    platform.read(&endpoints, &deliveries)?;
    // Deleted since the index was read: left out.
    let mut subscribers = endpoint::find_many(platform, org, &wanted)?;
    subscribers.retain(|record| record.subscribed(event_type));
    Ok(subscribers)
}

/// What the first attempts need that this request holds, handed on so
/// they do not read it again: the message (whole now) and the endpoints it
/// read.
fn handed_on(
    whole: &MessageRecord,
    subscribers: &[EndpointRecord],
) -> Result<Vec<(String, Vec<u8>)>, Problem> {
    let mut known = Vec::with_capacity(1 + subscribers.len());
    known.push(store::known(keys::message(&whole.org, &whole.id), whole)?);
    for record in subscribers
        .iter()
        .filter(|record| whole.endpoints.contains(&record.id))
    {
        known.push(store::known(keys::endpoint(&record.id), record)?);
    }
    Ok(known)
}

/// Marks the message whole, last of its writes, with this request's
/// `lease` on its first attempts and when it queued them; returns it as
/// stored (another's lease in it: another request marked it).
fn mark_accepted(
    platform: &impl Platform,
    message: &MessageRecord,
    lease: &Lease,
    queued_at_ms: i64,
) -> Result<Option<MessageRecord>, Problem> {
    update_json(
        platform,
        &keys::message(&message.org, &message.id),
        |current: Option<MessageRecord>| {
            Ok(match current {
                Some(mut record) if !record.accepted => {
                    record.accepted = true;
                    record.first_attempts = Some(lease.clone());
                    record.queued_at_ms = Some(queued_at_ms);
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

/// Puts the pending deliveries in the queue, due at `now_ms` (the entry
/// left in `entries`). Of those not stored yet, the first `first.count`
/// are left without a record, for the first attempts under `first.lease`
/// (the message stands for them: [`MessageRecord::unwritten`]); the others
/// are created, held for a paused endpoint. Returns every delivery as it
/// stands, and those left without a record. `read` holds the endpoints
/// this request read already (a message completed for an earlier request
/// may go to others), and their deliveries' records, read ahead.
fn write_deliveries(
    platform: &impl Platform,
    message: &MessageRecord,
    read: &[EndpointRecord],
    (first, now_ms): (&FirstAttempts, i64),
    entries: &mut Writes,
) -> Result<(Deliveries, Vec<DeliveryRef>), Problem> {
    let mut written = Vec::with_capacity(message.endpoints.len());
    let mut pending = Vec::new();
    let mut unwritten = Vec::new();
    for endpoint in &message.endpoints {
        let paused = match read.iter().find(|record| record.id == *endpoint) {
            Some(record) => record.paused,
            None => endpoint::find(platform, &message.org, endpoint)?
                .is_some_and(|record| record.paused),
        };
        let delivery = message.delivery(endpoint);
        let record = match delivery::get(platform, &delivery)? {
            // Stored by a request that completed the message before.
            Some(record) => record,
            None if !paused && unwritten.len() < first.count => {
                unwritten.push(delivery.clone());
                DeliveryRecord::new(DeliveryStatus::Pending, now_ms)
            }
            None if paused => delivery::create(platform, &delivery, DeliveryStatus::Held, now_ms)?,
            None => delivery::create(platform, &delivery, DeliveryStatus::Pending, now_ms)?,
        };
        match record.status {
            DeliveryStatus::Pending => pending.push(delivery),
            DeliveryStatus::Held => delivery::hold(platform, &delivery)?,
            DeliveryStatus::Succeeded | DeliveryStatus::Failed => {}
        }
        written.push((endpoint.clone(), record));
    }
    queue::enqueue_into(platform, &pending, now_ms, entries)?;
    Ok((written, unwritten))
}

/// Lists the message in its day's log, in `slot` (the entry left in
/// `entries`), and for pruning.
fn log(
    platform: &impl Platform,
    message: &MessageRecord,
    slot: LogSlot,
    entries: &mut Writes,
) -> Result<(), Problem> {
    let entry = Logged {
        id: message.id.clone(),
        event_type: message.event_type.clone(),
        created_at_s: message.created_at_s,
    };
    // Its own key: written as it is, the same bytes by any repost.
    entries.set_json(
        keys::message_log_entry(&message.org, slot.day, slot.n),
        &entry,
    )?;
    let day = slot.day;
    // The day's organisations, not its messages: the list changes with an
    // organisation's first message of the day only, and grows with no
    // organisation's traffic.
    let listed = Retained::Org {
        org: message.org.clone(),
    };
    let retained: Option<Vec<Retained>> = get_json(platform, &keys::retention(day))?;
    if retained.is_some_and(|retained| retained.contains(&listed)) {
        return Ok(());
    }
    // The day before the organisation in it: an organisation listed in a
    // day says the day is listed, so every later message reads one list.
    update_or_default(platform, keys::RETENTION_DAYS, |days: &mut Vec<i64>| {
        if !days.contains(&day) {
            days.push(day);
        }
    })?;
    update_or_default(
        platform,
        &keys::retention(day),
        |retained: &mut Vec<Retained>| {
            if !retained.contains(&listed) {
                retained.push(listed.clone());
            }
        },
    )
}

/// Where a day's log entries are numbered for cursors: those with a key of
/// their own from here up (`KEYED + n`), the list of before by index
/// from 0, as cursors into it always were.
const KEYED: u64 = 1 << 32;

/// Visits the organisation's log of one day, newest first, from below
/// `below` (a position `visit` was given; `None`: from the newest), until
/// `visit` says stop. A number taken but never written (a repost of an
/// accepted id, a request that failed) is skipped.
pub fn visit_log(
    platform: &impl Platform,
    org: &OrgId,
    day: i64,
    below: Option<u64>,
    mut visit: impl FnMut(u64, Logged) -> bool,
) -> Result<(), Problem> {
    let below = below.unwrap_or(u64::MAX);
    if below > KEYED {
        let count = store::read_counter(platform, &keys::message_log_count(org, day))?;
        let top = u64::try_from(count).unwrap_or(0).min(below - KEYED - 1);
        for n in (1..=top).rev() {
            let key = keys::message_log_entry(org, day, n as i64);
            if let Some(entry) = get_json::<Logged>(platform, &key)?
                && !visit(KEYED + n, entry)
            {
                return Ok(());
            }
        }
    }
    let listed: Vec<Logged> = get_json(platform, &keys::message_log(org, day))?.unwrap_or_default();
    let end = listed
        .len()
        .min(usize::try_from(below.min(KEYED)).unwrap_or(usize::MAX));
    for (position, entry) in listed.into_iter().take(end).enumerate().rev() {
        if !visit(position as u64, entry) {
            return Ok(());
        }
    }
    Ok(())
}

/// Removes the organisation's log of one day, both kinds.
fn remove_log(platform: &impl Platform, org: &OrgId, day: i64) -> Result<(), Problem> {
    let count = store::read_counter(platform, &keys::message_log_count(org, day))?;
    for n in 1..=count {
        store::remove(platform, &keys::message_log_entry(org, day, n))?;
    }
    store::remove(platform, &keys::message_log_count(org, day))?;
    store::remove(platform, &keys::message_log(org, day))
}

/// The deliveries to `endpoint` that failed, of messages accepted from
/// `since_s` up to (not including) `until_s`, oldest first; at most `max`.
pub fn failed_to(
    platform: &impl Platform,
    org: &OrgId,
    endpoint: &EndpointId,
    (since_s, until_s): (i64, i64),
    max: usize,
) -> Result<Vec<DeliveryRef>, Problem> {
    let mut failed = Vec::new();
    for day in since_s.div_euclid(DAY_SECONDS)..=until_s.div_euclid(DAY_SECONDS) {
        let mut logged = Vec::new();
        visit_log(platform, org, day, None, |_, entry| {
            if (since_s..until_s).contains(&entry.created_at_s) {
                logged.push(entry.id);
            }
            true
        })?;
        // The log is visited newest first.
        for id in logged.into_iter().rev() {
            let Some(message) = find(platform, org, &id)? else {
                continue;
            };
            if !message.endpoints.contains(endpoint) {
                continue;
            }
            let delivery = message.delivery(endpoint);
            if delivery::get(platform, &delivery)?
                .is_some_and(|record| record.status == DeliveryStatus::Failed)
            {
                failed.push(delivery);
                if failed.len() == max {
                    return Ok(failed);
                }
            }
        }
    }
    Ok(failed)
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
                let mut messages = Vec::new();
                visit_log(platform, &org, day, None, |_, logged| {
                    messages.push(logged.id);
                    true
                })?;
                for id in messages {
                    prune_message(platform, &keys::message(&org, &id))?;
                }
                remove_log(platform, &org, day)?;
            }
            Retained::Message(key) => {
                if let Some(message) = get_json::<MessageRecord>(platform, &key)? {
                    remove_log(platform, &message.org, day)?;
                }
                prune_message(platform, &key)?;
            }
        }
    }
    store::remove(platform, &keys::retention(day))?;
    update_or_default(platform, keys::RETENTION_DAYS, |days: &mut Vec<i64>| {
        days.retain(|listed| *listed != day);
    })
}

/// Removes every message of the organisation, their deliveries and its
/// logs, and takes it off each day's retention list.
pub fn erase_org(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    let days: Vec<i64> = get_json(platform, keys::RETENTION_DAYS)?.unwrap_or_default();
    // Lists of before name messages by key: `message/{org}/…`.
    let own_prefix = keys::message(org, &MessageId::new(""));
    for day in days {
        let retained: Vec<Retained> =
            get_json(platform, &keys::retention(day))?.unwrap_or_default();
        let ours = |entry: &Retained| match entry {
            Retained::Org { org: listed } => listed == org,
            Retained::Message(key) => key.starts_with(&own_prefix),
        };
        if !retained.iter().any(ours) {
            continue;
        }
        let mut messages = Vec::new();
        visit_log(platform, org, day, None, |_, logged| {
            messages.push(logged.id);
            true
        })?;
        for id in messages {
            prune_message(platform, &keys::message(org, &id))?;
        }
        for entry in retained.iter().filter(|entry| ours(entry)) {
            if let Retained::Message(key) = entry {
                prune_message(platform, key)?;
            }
        }
        remove_log(platform, org, day)?;
        update_or_default(
            platform,
            &keys::retention(day),
            |listed: &mut Vec<Retained>| {
                listed.retain(|entry| !ours(entry));
            },
        )?;
    }
    Ok(())
}

/// Removes a message of an expired day and its deliveries, and gives its
/// bytes back to the organisation's budget (after the removal: a prune cut
/// off between them leaves the count high, never low). The message goes
/// with its deliveries' records, in one batch (the message last, should
/// there be more): a pass that found a queued retry's record gone and its
/// message still there would take it for one never written, and send it.
fn prune_message(platform: &impl Platform, key: &str) -> Result<(), Problem> {
    let Some(message) = get_json::<MessageRecord>(platform, key)? else {
        return Ok(());
    };
    let mut removed: Vec<String> = message
        .endpoints
        .iter()
        .map(|endpoint| keys::delivery(&message.delivery(endpoint)))
        .collect();
    removed.push(key.to_string());
    store::remove_together(platform, removed)?;
    limits::refund_storage(platform, &message.org, message.stored_bytes())
}
