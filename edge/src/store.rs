//! The key-value layout. Spin's key-value store writes one key atomically
//! and has no transactions, so every change is ordered to leave no
//! half-written endpoint:
//!
//! - `endpoint/{id}` holds the whole endpoint, keyring included: creating,
//!   patching, rotating and recording delivery state are each one write.
//! - `org/{org}/endpoints` lists the organisation's endpoints, newest first:
//!   each id with the event types it may subscribe to, so that an event
//!   loads only the endpoints that may want it. Those types are a superset
//!   of the endpoint's: a change of event types widens the entry before the
//!   endpoint is written and never narrows it, so no failure or race can
//!   hide a subscriber (an event re-checks each endpoint it loads). Creation writes the endpoint before listing it (a failure
//!   leaves an unlisted record that nobody was told about); deletion unlists
//!   first (a failure leaves the endpoint whole and listed, or unlisted and
//!   unreachable).
//! - `attempt/{endpoint}/{n % 200}` holds attempt `n`, and `n` with it: a
//!   ring of the newest 200. A delivery first takes its number by counting
//!   it in the endpoint's `attemptCount`, then writes the attempt, so two
//!   deliveries never share a slot; a slot whose number is not the expected
//!   one (a failure between the two writes) is skipped when listing.
//! - `inbound/…` keys belong to the receiver gateway.
//! - `created/{key}` counts the requests that found `key` absent and would
//!   create it: the first creates it (see [`update_json`]).
//!
//! Every read-modify-write of a shared key (an endpoint, an index, a
//! counter) goes through [`update_json`]: the write is a compare-and-swap
//! against what was read, retried on a fresh read if another request wrote
//! first, so concurrent changes are applied one after the other, none lost.

use serde::{Deserialize, Serialize};

use crate::model::{Attempt, EndpointRecord};
use crate::problem::Code;
use crate::request::MAX_EVENT_TYPES;
use crate::{Platform, Problem};

/// How many attempts an endpoint keeps.
pub const KEPT_ATTEMPTS: u64 = 200;

/// How many recorded attempt ids an endpoint remembers, so that recording
/// one twice counts it once.
const RECENT_ATTEMPTS: usize = 32;

/// How many times a change is retried when other requests keep changing
/// the same key first; past it the request gets 503 `store_busy`.
const MAX_TRIES: usize = 128;

/// An attempt in its ring slot, with its number.
#[derive(Serialize, Deserialize)]
struct Numbered<T> {
    number: u64,
    #[serde(flatten)]
    attempt: T,
}

fn endpoint_key(id: &str) -> String {
    format!("endpoint/{id}")
}

fn index_key(org: &str) -> String {
    format!("org/{org}/endpoints")
}

fn attempt_key(endpoint: &str, number: u64) -> String {
    format!("attempt/{endpoint}/{}", number % KEPT_ATTEMPTS)
}

/// A stored JSON value; an unreadable one is a store failure.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|_| Problem::store_unavailable())
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value).map_err(|_| Problem::store_unavailable())
}

/// Reads a JSON value.
pub fn get_json<T: serde::de::DeserializeOwned>(
    platform: &impl Platform,
    key: &str,
) -> Result<Option<T>, Problem> {
    platform.get(key)?.as_deref().map(decode).transpose()
}

/// Writes a JSON value.
pub fn set_json(
    platform: &impl Platform,
    key: &str,
    value: &impl Serialize,
) -> Result<(), Problem> {
    Ok(platform.set(key, &encode(value)?)?)
}

/// Reads a JSON value, lets `change` compute its successor (`None`: leave
/// the key as it is) and a result, and writes the successor by
/// compare-and-swap against what was read. Whatever the swap reports, the
/// key is read again and `change` applied again, until it finds itself in
/// place (it returns `None`, or the value it would write is the one
/// stored): a change is only taken as made once a read shows it.
///
/// So `change` must be idempotent: applied to its own result, it writes
/// nothing and returns the same result. That keeps every update correct on
/// stores whose compare-and-swap misreports (Spin's Redis provider reports
/// every swap as failed, and with that fixed would report a conflicting
/// one as done; its SQLite provider upserts a swap on an absent key), and
/// on a swap whose answer is lost.
pub fn update_json<T, R>(
    platform: &impl Platform,
    key: &str,
    mut change: impl FnMut(Option<T>) -> Result<(Option<T>, R), Problem>,
) -> Result<R, Problem>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    for _ in 0..MAX_TRIES {
        let read = platform.get(key)?;
        let current = read.as_deref().map(decode).transpose()?;
        let (next, result) = change(current)?;
        let Some(next) = next else {
            return Ok(result);
        };
        let next = encode(&next)?;
        if read.as_deref() == Some(next.as_slice()) {
            return Ok(result);
        }
        let creating = read.is_none();
        if creating && !may_create(platform, key)? {
            // Another request is creating the key: wait for its write.
            std::thread::sleep(CREATION_WAIT);
            continue;
        }
        // Not trusted either way: the next round's read decides.
        if let Err(error) = platform.compare_and_swap(key, read.as_deref(), &next) {
            if creating {
                // Hand the turn on rather than leave others waiting for it.
                let _ = platform.delete(&creation_key(key));
            }
            return Err(error.into());
        }
    }
    Err(Problem::new(
        Code::StoreBusy,
        "other requests kept changing the same record; try again",
    ))
}

/// Whether this request may write an absent key. Spin's SQLite store
/// upserts a compare-and-swap on an absent key, so two requests that both
/// read "absent" would both write, the second over the first after the
/// first had confirmed its write. So only one request per key creates it:
/// the one whose count of the key's creation counter is 1, since counting
/// is atomic on every store. A creator whose write fails hands the turn
/// on; should it die before writing, the turn passes on after
/// [`CREATOR_TURN`] more counts.
fn may_create(platform: &impl Platform, key: &str) -> Result<bool, Problem> {
    let ticket = platform.increment(&creation_key(key), 1)?;
    Ok(ticket % CREATOR_TURN == 1)
}

/// How many creation counts one creator's turn lasts (each waiting round
/// of another request counts one).
const CREATOR_TURN: i64 = 256;

/// How long a request waits for another's creation before reading again.
const CREATION_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

fn creation_key(key: &str) -> String {
    format!("created/{key}")
}

/// Removes a key written through [`update_json`], and its creation counter.
pub fn remove(platform: &impl Platform, key: &str) -> Result<(), Problem> {
    platform.delete(key)?;
    Ok(platform.delete(&creation_key(key))?)
}

/// A counter written by [`Platform::increment`] (absent: 0). Stores keep
/// them differently: Spin's SQLite store as 8 little-endian bytes, Redis as
/// decimal text; 8 decimal digits never end in a zero byte, and a count
/// small enough to matter (under 2^56) always does.
pub fn read_counter(platform: &impl Platform, key: &str) -> Result<i64, Problem> {
    let Some(bytes) = platform.get(key)? else {
        return Ok(0);
    };
    if let Ok(little_endian) = <[u8; 8]>::try_from(bytes.as_slice())
        && little_endian[7] == 0
    {
        return Ok(i64::from_le_bytes(little_endian));
    }
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(Problem::store_unavailable)
}

/// [`update_json`] for a value that starts as its default: sets kept as
/// lists. `change` must be idempotent (add if absent, remove).
pub fn update_or_default<T>(
    platform: &impl Platform,
    key: &str,
    mut change: impl FnMut(&mut T),
) -> Result<(), Problem>
where
    T: Default + Serialize + serde::de::DeserializeOwned,
{
    update_json(platform, key, |value: Option<T>| {
        let mut value = value.unwrap_or_default();
        change(&mut value);
        Ok((Some(value), ()))
    })
}

/// An endpoint in its organisation's index: its id, and event types that
/// include every type it subscribes to (none: every type).
#[derive(Clone, Serialize, Deserialize)]
struct Listed {
    id: String,
    #[serde(rename = "eventTypes")]
    event_types: Vec<String>,
}

impl Listed {
    fn may_want(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|wanted| wanted == event_type)
    }
}

fn index(platform: &impl Platform, org: &str) -> Result<Vec<Listed>, Problem> {
    Ok(get_json(platform, &index_key(org))?.unwrap_or_default())
}

/// The organisation's endpoint ids, newest first.
pub fn list_ids(platform: &impl Platform, org: &str) -> Result<Vec<String>, Problem> {
    Ok(index(platform, org)?
        .iter()
        .map(|listed| listed.id.clone())
        .collect())
}

/// The ids of the organisation's endpoints that may subscribe to
/// `event_type` (a superset: load each and check).
pub fn may_want(
    platform: &impl Platform,
    org: &str,
    event_type: &str,
) -> Result<Vec<String>, Problem> {
    Ok(index(platform, org)?
        .iter()
        .filter(|listed| listed.may_want(event_type))
        .map(|listed| listed.id.clone())
        .collect())
}

/// Widens an endpoint's index entry to include `event_types` (empty: every
/// type), before the endpoint itself is changed to them. An entry is never
/// narrowed (a narrowing racing another patch could hide a subscriber), so
/// one that would list more types than an endpoint may have becomes "every
/// type": an event then loads the endpoint and checks it.
pub fn widen_subscriptions(
    platform: &impl Platform,
    org: &str,
    id: &str,
    event_types: &[String],
) -> Result<(), Problem> {
    update_or_default(platform, &index_key(org), |listed: &mut Vec<Listed>| {
        for Listed {
            id: listed_id,
            event_types: types,
        } in listed
        {
            if listed_id == id && !types.is_empty() {
                if event_types.is_empty() {
                    types.clear();
                } else {
                    for wanted in event_types {
                        if !types.contains(wanted) {
                            types.push(wanted.clone());
                        }
                    }
                    // Past what one endpoint may hold, "every type" is the
                    // superset: the entry never grows with the patches.
                    if types.len() > MAX_EVENT_TYPES {
                        types.clear();
                    }
                }
            }
        }
    })
}

/// An endpoint of this organisation, if it exists.
pub fn find(
    platform: &impl Platform,
    org: &str,
    id: &str,
) -> Result<Option<EndpointRecord>, Problem> {
    Ok(get_json::<EndpointRecord>(platform, &endpoint_key(id))?.filter(|record| record.org == org))
}

/// An endpoint of this organisation; another organisation's is not found.
pub fn load(platform: &impl Platform, org: &str, id: &str) -> Result<EndpointRecord, Problem> {
    find(platform, org, id)?.ok_or_else(|| Problem::not_found(format!("no endpoint {id}")))
}

/// Stores a new endpoint, then lists it.
pub fn create(platform: &impl Platform, record: &EndpointRecord) -> Result<(), Problem> {
    set_json(platform, &endpoint_key(&record.id), record)?;
    update_or_default(
        platform,
        &index_key(&record.org),
        |listed: &mut Vec<Listed>| {
            if !listed.iter().any(|listed| listed.id == record.id) {
                let entry = Listed {
                    id: record.id.clone(),
                    event_types: record.event_types.clone(),
                };
                listed.insert(0, entry);
            }
        },
    )
}

/// Applies `change` to this organisation's endpoint as stored now (see
/// [`update_json`]) and returns the endpoint as written.
pub fn modify(
    platform: &impl Platform,
    org: &str,
    id: &str,
    mut change: impl FnMut(&mut EndpointRecord) -> Result<(), Problem>,
) -> Result<EndpointRecord, Problem> {
    update_json(
        platform,
        &endpoint_key(id),
        |record: Option<EndpointRecord>| match record {
            Some(mut record) if record.org == org => {
                change(&mut record)?;
                Ok((Some(record.clone()), record))
            }
            _ => Err(Problem::not_found(format!("no endpoint {id}"))),
        },
    )
}

/// Unlists an endpoint, then removes it and its attempts.
pub fn delete(platform: &impl Platform, record: &EndpointRecord) -> Result<(), Problem> {
    update_or_default(
        platform,
        &index_key(&record.org),
        |listed: &mut Vec<Listed>| listed.retain(|entry| entry.id != record.id),
    )?;
    platform.delete(&endpoint_key(&record.id))?;
    let kept = record.attempt_count.min(KEPT_ATTEMPTS);
    for number in record.attempt_count - kept..record.attempt_count {
        platform.delete(&attempt_key(&record.id, number))?;
    }
    Ok(())
}

/// Records an attempt against the endpoint as stored now (a delivery may
/// have taken seconds), applying `update` to its delivery state. Returns
/// the endpoint as written, or `None` if it was deleted meanwhile.
pub fn record_attempt(
    platform: &impl Platform,
    attempt: &Attempt,
    mut update: impl FnMut(&mut EndpointRecord),
) -> Result<Option<EndpointRecord>, Problem> {
    let key = endpoint_key(&attempt.endpoint_id);
    let written = update_json(platform, &key, |record: Option<EndpointRecord>| {
        Ok(match record {
            None => (None, None),
            // Counted already (a swap that reported failure but was made).
            Some(record)
                if record
                    .recent_attempts
                    .iter()
                    .any(|(id, _)| *id == attempt.id) =>
            {
                let number = record
                    .recent_attempts
                    .iter()
                    .find(|(id, _)| *id == attempt.id)
                    .map(|(_, number)| *number);
                (None, number.map(|number| (record, number)))
            }
            Some(mut record) => {
                let number = record.attempt_count;
                record.attempt_count += 1;
                record.recent_attempts.push((attempt.id.clone(), number));
                let excess = record.recent_attempts.len().saturating_sub(RECENT_ATTEMPTS);
                record.recent_attempts.drain(..excess);
                update(&mut record);
                (Some(record.clone()), Some((record, number)))
            }
        })
    })?;
    let Some((written, number)) = written else {
        return Ok(None);
    };
    set_json(
        platform,
        &attempt_key(&attempt.endpoint_id, number),
        &Numbered { number, attempt },
    )?;
    Ok(Some(written))
}

/// The newest `limit` attempts, newest first.
pub fn attempts(
    platform: &impl Platform,
    record: &EndpointRecord,
    limit: u64,
) -> Result<Vec<Attempt>, Problem> {
    let count = limit.min(KEPT_ATTEMPTS).min(record.attempt_count);
    let mut found = Vec::with_capacity(count as usize);
    for number in (record.attempt_count - count..record.attempt_count).rev() {
        let slot: Option<Numbered<Attempt>> = get_json(platform, &attempt_key(&record.id, number))?;
        if let Some(slot) = slot.filter(|slot| slot.number == number) {
            found.push(slot.attempt);
        }
    }
    Ok(found)
}
