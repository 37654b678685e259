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
//! - `attempt/{endpoint}/{n % 200}` holds attempt `n`: a ring of the newest
//!   200. An attempt is written before the endpoint's `attemptCount` counts
//!   it, so a failure between the two leaves the count, and every listed
//!   attempt, intact.
//! - `inbound/…` keys belong to the receiver gateway.
//!
//! Two requests that change one endpoint at the same moment can still lose
//! one update (the store has no compare-and-swap).

use crate::model::{Attempt, EndpointRecord};
use crate::{Platform, Problem};

/// How many attempts an endpoint keeps.
pub const KEPT_ATTEMPTS: u64 = 200;

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
    value: &impl serde::Serialize,
) -> Result<(), Problem> {
    let bytes = serde_json::to_vec(value).map_err(|_| Problem::store_unavailable())?;
    Ok(platform.set(key, &bytes)?)
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
    let mut ids = list_ids(platform, &record.org)?;
    ids.insert(0, record.id.clone());
    set_json(platform, &index_key(&record.org), &ids)
}

/// Replaces an endpoint in one write.
pub fn save(platform: &impl Platform, record: &EndpointRecord) -> Result<(), Problem> {
    set_json(platform, &endpoint_key(&record.id), record)
}

/// Unlists an endpoint, then removes it and its attempts.
pub fn delete(platform: &impl Platform, record: &EndpointRecord) -> Result<(), Problem> {
    let mut ids = list_ids(platform, &record.org)?;
    ids.retain(|id| *id != record.id);
    set_json(platform, &index_key(&record.org), &ids)?;
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
    update: impl FnOnce(&mut EndpointRecord),
) -> Result<bool, Problem> {
    let Some(mut record) =
        get_json::<EndpointRecord>(platform, &endpoint_key(&attempt.endpoint_id))?
    else {
        return Ok(false);
    };
    set_json(
        platform,
        &attempt_key(&record.id, record.attempt_count),
        attempt,
    )?;
    record.attempt_count += 1;
    update(&mut record);
    save(platform, &record)?;
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
        if let Some(attempt) = get_json(platform, &attempt_key(&record.id, number))? {
            found.push(attempt);
        }
    }
    Ok(found)
}
