//! The key-value layout. Spin's key-value store writes one key atomically
//! and has no transactions, so every change is ordered to leave no
//! half-written endpoint:
//!
//! - `endpoint/{id}` holds the whole endpoint, keyring included: creating,
//!   patching, rotating and recording delivery state are each one write.
//! - `org/{org}/endpoints` lists the organisation's endpoint ids, newest
//!   first. Creation writes the endpoint before listing it (a failure leaves
//!   an unlisted record that nobody was told about); deletion unlists first
//!   (a failure leaves the endpoint whole and listed, or unlisted and
//!   unreachable).
//! - `attempt/{endpoint}/{n % 200}` holds attempt `n`, and `n` with it: a
//!   ring of the newest 200. A delivery first takes its number by counting
//!   it in the endpoint's `attemptCount`, then writes the attempt, so two
//!   deliveries never share a slot; a slot whose number is not the expected
//!   one (a failure between the two writes) is skipped when listing.
//! - `inbound/…` keys belong to the receiver gateway.
//!
//! Every read-modify-write of a shared key (an endpoint, an index, a
//! counter) goes through [`update_json`]: the write is a compare-and-swap
//! against what was read, retried on a fresh read if another request wrote
//! first, so concurrent changes are applied one after the other, none lost.

use serde::{Deserialize, Serialize};

use crate::model::{Attempt, EndpointRecord};
use crate::{Platform, Problem};

/// How many attempts an endpoint keeps.
pub const KEPT_ATTEMPTS: u64 = 200;

/// How many times a change is retried when other requests keep changing
/// the same key first; past it the request gets 503 `store_busy`.
const MAX_TRIES: usize = 64;

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

/// Reads a JSON value; an unreadable one is a store failure.
pub fn get_json<T: serde::de::DeserializeOwned>(
    platform: &impl Platform,
    key: &str,
) -> Result<Option<T>, Problem> {
    match platform.get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| Problem::store_unavailable()),
    }
}

/// Writes a JSON value.
pub fn set_json(
    platform: &impl Platform,
    key: &str,
    value: &impl Serialize,
) -> Result<(), Problem> {
    let bytes = serde_json::to_vec(value).map_err(|_| Problem::store_unavailable())?;
    Ok(platform.set(key, &bytes)?)
}

/// Reads a JSON value, lets `change` compute its successor (`None`: leave
/// the key as it is) and a result, and writes the successor only if the key
/// still holds what was read; otherwise starts again from a fresh read.
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
        let current = read
            .as_deref()
            .map(serde_json::from_slice)
            .transpose()
            .map_err(|_| Problem::store_unavailable())?;
        let (next, result) = change(current)?;
        let Some(next) = next else {
            return Ok(result);
        };
        let bytes = serde_json::to_vec(&next).map_err(|_| Problem::store_unavailable())?;
        if platform.compare_and_swap(key, read.as_deref(), &bytes)? {
            return Ok(result);
        }
    }
    Err(Problem::store_busy())
}

/// The organisation's endpoint ids, newest first.
pub fn list_ids(platform: &impl Platform, org: &str) -> Result<Vec<String>, Problem> {
    Ok(get_json(platform, &index_key(org))?.unwrap_or_default())
}

/// An endpoint of this organisation; another organisation's is not found.
pub fn load(platform: &impl Platform, org: &str, id: &str) -> Result<EndpointRecord, Problem> {
    match get_json::<EndpointRecord>(platform, &endpoint_key(id))? {
        Some(record) if record.org == org => Ok(record),
        _ => Err(Problem::not_found(format!("no endpoint {id}"))),
    }
}

/// Stores a new endpoint, then lists it.
pub fn create(platform: &impl Platform, record: &EndpointRecord) -> Result<(), Problem> {
    set_json(platform, &endpoint_key(&record.id), record)?;
    update_json(
        platform,
        &index_key(&record.org),
        |ids: Option<Vec<String>>| {
            let mut ids = ids.unwrap_or_default();
            ids.insert(0, record.id.clone());
            Ok((Some(ids), ()))
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
    update_json(
        platform,
        &index_key(&record.org),
        |ids: Option<Vec<String>>| {
            let mut ids = ids.unwrap_or_default();
            ids.retain(|id| *id != record.id);
            Ok((Some(ids), ()))
        },
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
/// `false` if the endpoint was deleted meanwhile.
pub fn record_attempt(
    platform: &impl Platform,
    attempt: &Attempt,
    mut update: impl FnMut(&mut EndpointRecord),
) -> Result<bool, Problem> {
    let key = endpoint_key(&attempt.endpoint_id);
    let number = update_json(platform, &key, |record: Option<EndpointRecord>| {
        Ok(match record {
            None => (None, None),
            Some(mut record) => {
                let number = record.attempt_count;
                record.attempt_count += 1;
                update(&mut record);
                (Some(record), Some(number))
            }
        })
    })?;
    let Some(number) = number else {
        return Ok(false);
    };
    set_json(
        platform,
        &attempt_key(&attempt.endpoint_id, number),
        &Numbered { number, attempt },
    )?;
    Ok(true)
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
