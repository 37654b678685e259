//! Deliveries: one message at one endpoint ([`DeliveryRef`]). The record
//! (`delivery/{org}/{message}/{endpoint}`) holds its status, attempts, next
//! attempt and the lease of the dispatcher sending it. A delivery whose
//! first attempt follows its request's answer has no record until that
//! attempt is recorded: its message stands for it (pending since the
//! message was accepted, under the lease of the request that marked the
//! message whole: [`crate::domain::message::MessageRecord::unwritten`]),
//! so an accept writes nothing per delivery. The queue
//! ([`crate::domain::queue`]: a pending delivery is listed in the second
//! it is due) and the held lists
//! (`held/{endpoint}`, a paused endpoint's deliveries in order) say where
//! to find them.
//!
//! A dispatcher leases a delivery by compare-and-swap before sending (for
//! the delivery timeout and a margin), so several dispatchers never send
//! one attempt at once; one that dies mid-send leaves the delivery in its
//! queue second, and another sends the same attempt again once the lease
//! has run out (at least once; receivers dedupe on `webhook-id`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{metrics, queue};
use crate::foundation::encoding::{new_uuid, rfc3339};
use crate::foundation::problem::Problem;
use crate::ids::EndpointId;
use crate::platform::{DeliveryRef, FollowUp, Platform};
use crate::store::{
    self, ReadAhead, get_json, get_many_json, keys, update_json, update_or_default,
};

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

/// How long past the delivery timeout a lease lasts: time to record the
/// attempt. A dispatcher that dies is replaced after timeout + margin.
pub const LEASE_MARGIN_MS: i64 = 5_000;

/// When a lease taken at `now_ms` for a send of at most `timeout_ms` ends.
pub fn lease_until(timeout_ms: u64, now_ms: i64) -> i64 {
    now_ms
        .saturating_add(i64::try_from(timeout_ms).unwrap_or(i64::MAX))
        .saturating_add(LEASE_MARGIN_MS)
}

/// The lease a request that accepts an event (or releases held
/// deliveries) takes on the first `count` pending deliveries, for the
/// first attempts that follow its answer: no dispatcher takes them
/// meanwhile, and those attempts need no lease of their own. Should the
/// request die, the lease runs out and a dispatcher sends them. An accept
/// keeps it in the message it marks whole, and writes no record for those
/// deliveries.
pub struct FirstAttempts {
    pub lease: Lease,
    pub count: usize,
}

impl FirstAttempts {
    /// The first `count` leased from `now_ms` for sends of at most
    /// `timeout_ms`, under a new token.
    pub fn leased(timeout_ms: u64, now_ms: i64, count: usize) -> Result<FirstAttempts, Problem> {
        Ok(FirstAttempts {
            lease: Lease {
                token: new_uuid()?,
                until_ms: lease_until(timeout_ms, now_ms),
            },
            count,
        })
    }
}

/// A dispatcher's claim on a delivery while it sends one attempt.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub token: String,
    /// After it, another dispatcher may take over.
    #[serde(rename = "until")]
    pub until_ms: i64,
}

/// A stored delivery.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// While pending.
    #[serde(rename = "nextAttemptAt")]
    pub next_attempt_at_ms: Option<i64>,
    #[serde(rename = "lastAttemptAt")]
    pub last_attempt_at_s: Option<i64>,
    pub last_error: Option<String>,
    pub lease: Option<Lease>,
    /// The last lease that finished, so that finishing twice is one finish.
    #[serde(default)]
    pub finished_lease: Option<String>,
}

impl DeliveryRecord {
    pub fn new(status: DeliveryStatus, now_ms: i64) -> DeliveryRecord {
        DeliveryRecord {
            status,
            attempts: 0,
            next_attempt_at_ms: (status == DeliveryStatus::Pending).then_some(now_ms),
            last_attempt_at_s: None,
            last_error: None,
            lease: None,
            finished_lease: None,
        }
    }

    pub fn view(&self, endpoint_id: &EndpointId) -> Value {
        json!({
            "endpointId": endpoint_id,
            "status": self.status,
            "attempts": self.attempts,
            "nextAttemptAt": self.next_attempt_at_ms.map(|at| rfc3339(at.div_euclid(1000))),
            "lastAttemptAt": self.last_attempt_at_s.map(rfc3339),
            "lastError": self.last_error,
        })
    }
}

/// A delivery's record as stored now.
pub fn get(
    platform: &impl Platform,
    delivery: &DeliveryRef,
) -> Result<Option<DeliveryRecord>, Problem> {
    get_json(platform, &keys::delivery(delivery))
}

/// The records of these deliveries, in their order, in one batch read.
pub fn get_many(
    platform: &impl Platform,
    deliveries: &[DeliveryRef],
) -> Result<Vec<Option<DeliveryRecord>>, Problem> {
    let keys: Vec<String> = deliveries.iter().map(keys::delivery).collect();
    get_many_json(platform, &keys)
}

/// The delivery's record, created with `status` (pending: due at
/// `now_ms`) unless it exists.
pub fn create(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    status: DeliveryStatus,
    now_ms: i64,
) -> Result<DeliveryRecord, Problem> {
    update(platform, delivery, |current| {
        Ok(match current {
            Some(record) => (None, record),
            None => {
                let record = DeliveryRecord::new(status, now_ms);
                (Some(record.clone()), record)
            }
        })
    })
}

/// Makes the delivery pending and due at `now_ms`, whatever its status
/// (a recovery); creates it if absent. A lease on it stays: its holder's
/// send goes first.
pub fn due_again(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    now_ms: i64,
) -> Result<DeliveryRecord, Problem> {
    update(platform, delivery, |current| {
        let record = pending_now(current, now_ms);
        Ok((Some(record.clone()), record))
    })
}

/// [`due_again`] for a resend, which lets go a lease on the delivery: an
/// attempt in flight then records no result over the resend (its attempt
/// stays listed), and the resend's own send claims it at once.
pub fn resent(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    now_ms: i64,
) -> Result<DeliveryRecord, Problem> {
    update(platform, delivery, |current| {
        let mut record = pending_now(current, now_ms);
        record.lease = None;
        Ok((Some(record.clone()), record))
    })
}

/// The record, or a new one, pending and due at `now_ms`.
fn pending_now(current: Option<DeliveryRecord>, now_ms: i64) -> DeliveryRecord {
    let mut record =
        current.unwrap_or_else(|| DeliveryRecord::new(DeliveryStatus::Pending, now_ms));
    record.status = DeliveryStatus::Pending;
    record.next_attempt_at_ms = Some(now_ms);
    record
}

/// [`update_json`] of a delivery's record.
fn update<R>(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    change: impl FnMut(Option<DeliveryRecord>) -> Result<(Option<DeliveryRecord>, R), Problem>,
) -> Result<R, Problem> {
    update_json(platform, &keys::delivery(delivery), change)
}

/// Whether this lease is the one held: the test of lease ownership.
fn holds(record: &DeliveryRecord, token: &str) -> bool {
    record
        .lease
        .as_ref()
        .is_some_and(|lease| lease.token == token)
}

/// The token of the lease on the record if it still covers a send of at
/// most `timeout_ms` started at `now_ms`, with half the margin left to
/// record it.
pub fn lease_covering(record: &DeliveryRecord, now_ms: i64, timeout_ms: u64) -> Option<&str> {
    let needed = lease_until(timeout_ms, now_ms) - LEASE_MARGIN_MS / 2;
    record
        .lease
        .as_ref()
        .filter(|lease| lease.until_ms >= needed)
        .map(|lease| lease.token.as_str())
}

/// Whether a dispatcher's lease on the delivery still runs at `now_ms`.
fn leased_at(record: &DeliveryRecord, now_ms: i64) -> bool {
    record
        .lease
        .as_ref()
        .is_some_and(|lease| lease.until_ms > now_ms)
}

/// Lists a delivery in the queue as due at `at_ms`.
pub fn enqueue(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    at_ms: i64,
) -> Result<(), Problem> {
    queue::enqueue_all(platform, std::slice::from_ref(delivery), at_ms)
}

/// Queues deliveries due at `at_ms`, in order, as one entry.
pub fn enqueue_all(
    platform: &impl Platform,
    deliveries: &[DeliveryRef],
    at_ms: i64,
) -> Result<(), Problem> {
    queue::enqueue_all(platform, deliveries, at_ms)
}

/// Lists a held delivery under its endpoint.
pub fn hold(platform: &impl Platform, delivery: &DeliveryRef) -> Result<(), Problem> {
    // Sticky: a confirming read finds it listed already.
    let mut listed_now = false;
    update_or_default(
        platform,
        &keys::held(&delivery.endpoint),
        |listed: &mut Vec<DeliveryRef>| {
            if !listed.contains(delivery) {
                listed.push(delivery.clone());
                listed_now = true;
            }
        },
    )?;
    if listed_now {
        metrics::count_held(platform, 1);
    }
    Ok(())
}

/// A paused endpoint's held deliveries, in the order they were held.
pub fn held(platform: &impl Platform, endpoint: &EndpointId) -> Result<Vec<DeliveryRef>, Problem> {
    Ok(get_json(platform, &keys::held(endpoint))?.unwrap_or_default())
}

/// Forgets a deleted endpoint's held deliveries.
pub fn forget_held(platform: &impl Platform, endpoint: &EndpointId) -> Result<(), Problem> {
    let forgotten = held(platform, endpoint)?.len();
    store::remove(platform, &keys::held(endpoint))?;
    metrics::count_held(platform, -(forgotten as i64));
    Ok(())
}

/// Makes an unpaused endpoint's held deliveries pending again, in order,
/// due now; returns them as a follow-up. The first `first.count` are
/// leased for the sends that follow the answer, and handed on with their
/// messages (read in the batch with the records), so that each send
/// neither claims its delivery nor reads its message again.
pub fn release(
    platform: &impl Platform,
    endpoint: &EndpointId,
    now_ms: i64,
    first: &FirstAttempts,
) -> Result<FollowUp, Problem> {
    let held: Vec<DeliveryRef> = get_json(platform, &keys::held(endpoint))?.unwrap_or_default();
    // Each release is a swap: on a host that begins one from what its
    // instance read, their records are read in batches first.
    let platform = &ReadAhead::new(platform);
    let records: Vec<String> = held.iter().map(keys::delivery).collect();
    let messages: Vec<String> = held
        .iter()
        .take(first.count)
        .map(|delivery| keys::message(&delivery.org, &delivery.message))
        .collect();
    platform.read(&messages, &records)?;
    let mut released = Vec::new();
    let mut known = Vec::new();
    for delivery in &held {
        let lease = (released.len() < first.count).then_some(&first.lease);
        let stored = update(platform, delivery, |current| {
            Ok(match current {
                Some(mut record) if record.status == DeliveryStatus::Held => {
                    record.status = DeliveryStatus::Pending;
                    record.next_attempt_at_ms = Some(now_ms);
                    if let Some(lease) = lease {
                        record.lease = Some(lease.clone());
                    }
                    (Some(record.clone()), Some(record))
                }
                // Released by this call's own earlier write.
                Some(record)
                    if record.status == DeliveryStatus::Pending
                        && record.next_attempt_at_ms == Some(now_ms) =>
                {
                    (None, Some(record))
                }
                _ => (None, None),
            })
        })?;
        let Some(record) = stored else { continue };
        if lease.is_some() && record.lease.as_ref() == lease {
            known.push(store::known(keys::delivery(delivery), &record)?);
        }
        released.push(delivery.clone());
    }
    queue::enqueue_all(platform, &released, now_ms)?;
    update_or_default(
        platform,
        &keys::held(endpoint),
        |listed: &mut Vec<DeliveryRef>| {
            listed.retain(|delivery| !held.contains(delivery));
        },
    )?;
    metrics::count_held(platform, -(held.len() as i64));
    // Messages never change once accepted: what the batch read stands.
    for key in messages {
        if let Some(message) = platform.get(&key)? {
            known.push((key, message));
        }
    }
    Ok(FollowUp {
        deliveries: released,
        known,
    })
}

/// Whether a delivery listed in a queue second is due, by its record as
/// stored now.
pub enum Due {
    Now,
    /// Leased, or due later within this second.
    Busy,
    /// Done, held, gone, or listed again in another second.
    Settled,
}

/// A delivery without a record is one an accept listed in `second` and
/// left to its first attempt, under a lease of at most `timeout_ms` and the
/// margin taken in that second: busy until such a lease would have ended;
/// after it, due if `message_kept` says its message is still stored (its
/// lease is checked when it is claimed), and gone (settled) otherwise.
pub fn due(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    (second, now_ms): (i64, i64),
    timeout_ms: u64,
    message_kept: impl FnOnce() -> Result<bool, Problem>,
) -> Result<Due, Problem> {
    let Some(record) = get(platform, delivery)? else {
        let leased_until = lease_until(timeout_ms, (second + 1) * 1000);
        return Ok(if now_ms < leased_until {
            Due::Busy
        } else if message_kept()? {
            Due::Now
        } else {
            Due::Settled
        });
    };
    if record.status != DeliveryStatus::Pending {
        return Ok(Due::Settled);
    }
    let at = record.next_attempt_at_ms.unwrap_or(now_ms);
    Ok(if at.div_euclid(1000) != second {
        Due::Settled
    } else if at > now_ms || leased_at(&record, now_ms) {
        Due::Busy
    } else {
        Due::Now
    })
}

/// What a lease attempt found.
pub enum Claim {
    /// Leased: the record as leased.
    Leased(DeliveryRecord),
    /// Another dispatcher holds it.
    Busy,
    /// Nothing to send now.
    Settled,
}

/// Leases a delivery that is pending and due, as `token` until
/// `until_ms`. `unwritten` is what an absent record stands for (none: the
/// delivery is gone).
pub fn claim(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    unwritten: Option<&DeliveryRecord>,
    token: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<Claim, Problem> {
    update(platform, delivery, |current| {
        Ok(match current.or_else(|| unwritten.cloned()) {
            None => (None, Claim::Settled),
            Some(record) if record.status != DeliveryStatus::Pending => (None, Claim::Settled),
            // Due later: the entry of its second sends it.
            Some(record) if record.next_attempt_at_ms.is_some_and(|at| at > now_ms) => {
                (None, Claim::Settled)
            }
            // Leased under this token: by this call's own earlier write, or
            // by the request a first attempt follows, its lease extended to
            // cover the send.
            Some(mut record) if holds(&record, token) => match record.lease.as_mut() {
                Some(lease) if lease.until_ms < until_ms => {
                    lease.until_ms = until_ms;
                    (Some(record.clone()), Claim::Leased(record))
                }
                _ => (None, Claim::Leased(record)),
            },
            Some(record) if leased_at(&record, now_ms) => (None, Claim::Busy),
            Some(mut record) => {
                record.lease = Some(Lease {
                    token: token.to_string(),
                    until_ms,
                });
                (Some(record.clone()), Claim::Leased(record))
            }
        })
    })
}

/// The record of an attempt's result, to be written plainly (no swap), by
/// the sender that holds the lease a request took for it: an accept's,
/// kept in its message while the delivery has no record (`handed` is
/// then [`crate::domain::message::MessageRecord::unwritten`]), or an
/// unpause's, in the record it released (`handed` as released). While
/// that lease runs with half its margin left, no dispatcher claims the
/// delivery ([`due`] and [`claim`] wait such a lease out) and no request
/// writes its record but a resend ([`resent`]), whose own result this
/// write then replaces (its attempt stays listed). `None` once that is
/// past: then [`finish`].
pub fn finished_plainly(
    handed: &DeliveryRecord,
    token: &str,
    now_ms: i64,
    change: impl FnOnce(&mut DeliveryRecord),
) -> Option<DeliveryRecord> {
    let time_left = handed
        .lease
        .as_ref()
        .is_some_and(|lease| now_ms <= lease.until_ms - LEASE_MARGIN_MS / 2);
    if !(time_left && holds(handed, token)) {
        return None;
    }
    let mut record = handed.clone();
    finished(&mut record, token, change);
    Some(record)
}

/// `record`, its lease held under `token`, changed and let go: the mark
/// of its finish left for a retried write to recognise.
fn finished(record: &mut DeliveryRecord, token: &str, change: impl FnOnce(&mut DeliveryRecord)) {
    change(record);
    record.lease = None;
    record.finished_lease = Some(token.to_string());
}

/// Applies `change` to the delivery if this dispatcher still holds its
/// lease, and lets the lease go; `false` if another took it over.
/// `unwritten` is what an absent record stands for, as for [`claim`].
pub fn finish(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    unwritten: Option<&DeliveryRecord>,
    token: &str,
    mut change: impl FnMut(&mut DeliveryRecord),
) -> Result<bool, Problem> {
    update(platform, delivery, |current| {
        Ok(match current.or_else(|| unwritten.cloned()) {
            Some(mut record) if holds(&record, token) => {
                finished(&mut record, token, &mut change);
                (Some(record), true)
            }
            // Finished by this call's own earlier write.
            Some(record) if record.finished_lease.as_deref() == Some(token) => (None, true),
            _ => (None, false),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_written_plainly_only_under_its_lease_with_half_the_margin_left() {
        let until_ms = 100_000;
        let mut handed = DeliveryRecord::new(DeliveryStatus::Pending, 0);
        handed.lease = Some(Lease {
            token: "mine".into(),
            until_ms,
        });
        let succeeded = |record: &mut DeliveryRecord| record.status = DeliveryStatus::Succeeded;
        let last_plain = until_ms - LEASE_MARGIN_MS / 2;
        let record = finished_plainly(&handed, "mine", last_plain, succeeded);
        let written =
            record.map(|record| (record.status, record.lease.is_none(), record.finished_lease));
        assert_eq!(
            written,
            Some((DeliveryStatus::Succeeded, true, Some("mine".to_string()))),
            "half the margin left"
        );
        // Later, a pass may be about to claim it: the swap decides.
        assert!(finished_plainly(&handed, "mine", last_plain + 1, succeeded).is_none());
        assert!(finished_plainly(&handed, "another", 0, succeeded).is_none());
    }
}
