//! The dispatcher: sends each pending delivery when it is due, retries on
//! the schedule, holds deliveries for paused endpoints.
//!
//! Keys:
//! - `queue/{second}` lists the deliveries due in that second (Unix
//!   seconds); `queue/seconds` lists the seconds that may have entries. A
//!   delivery is listed before the second it is in is, so none is missed.
//! - `held/{endpoint}` lists an endpoint's held deliveries, in order.
//!
//! A dispatcher leases a delivery by compare-and-swap before sending
//! (`lease` in the delivery record, for the delivery timeout and a margin),
//! so several dispatchers never send one attempt at once; one that dies
//! mid-send leaves the delivery in its queue second, and another sends the
//! same attempt again once the lease has run out (at least once; receivers
//! dedupe on `webhook-id`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::deliver::{Delivered, Message, deliver};
use crate::limits::{self, SendSlot};
use crate::messages::{self, DeliveryRecord, DeliveryStatus, Lease, segment};
use crate::model::new_uuid;
use crate::store::{self, get_json, update_json, update_or_default};
use crate::{Config, Platform, Problem};

/// How long past the delivery timeout a lease lasts: time to record the
/// attempt. A dispatcher that dies is replaced after timeout + margin.
const LEASE_MARGIN_MS: i64 = 5_000;

/// A message accepted but never marked whole (its request failed and was
/// not retried) is given this long before its queue entries are dropped.
const UNFINISHED_GRACE_MS: i64 = 600_000;

/// How old an empty queue second must be before it is dropped.
const SETTLED_SECONDS: i64 = 120;

/// How many attempts one dispatch pass makes at most.
pub const MAX_PER_PASS: usize = 512;

/// How many deliveries one request sends after its answer; the dispatcher
/// takes the rest.
pub const MAX_FOLLOW_UP: usize = 100;

const SECONDS_KEY: &str = "queue/seconds";

fn queue_key(second: i64) -> String {
    format!("queue/{second}")
}

fn held_key(endpoint: &str) -> String {
    format!("held/{endpoint}")
}

/// One message at one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRef {
    org: String,
    message: String,
    endpoint: String,
}

impl DeliveryRef {
    /// The delivery of a message to an endpoint.
    pub fn new(org: &str, message: &str, endpoint: &str) -> DeliveryRef {
        DeliveryRef {
            org: org.into(),
            message: message.into(),
            endpoint: endpoint.into(),
        }
    }

    /// Its record's key.
    pub fn key(&self) -> String {
        format!(
            "delivery/{}/{}/{}",
            segment(&self.org),
            segment(&self.message),
            self.endpoint
        )
    }
}

/// Lists a delivery in the queue second of `at_ms`.
pub fn enqueue(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    at_ms: i64,
) -> Result<(), Problem> {
    enqueue_all(platform, std::slice::from_ref(delivery), at_ms)
}

/// Lists deliveries, in order, in the queue second of `at_ms`: one write
/// of the second's list for all of them. The second is listed first, so
/// no pass misses it.
pub fn enqueue_all(
    platform: &impl Platform,
    deliveries: &[DeliveryRef],
    at_ms: i64,
) -> Result<(), Problem> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let second = at_ms.div_euclid(1000);
    update_or_default(platform, SECONDS_KEY, |seconds: &mut Vec<i64>| {
        if !seconds.contains(&second) {
            seconds.push(second);
        }
    })?;
    update_or_default(
        platform,
        &queue_key(second),
        |listed: &mut Vec<DeliveryRef>| {
            for delivery in deliveries {
                if !listed.contains(delivery) {
                    listed.push(delivery.clone());
                }
            }
        },
    )
}

/// Lists a held delivery under its endpoint.
pub fn hold(platform: &impl Platform, delivery: &DeliveryRef) -> Result<(), Problem> {
    update_or_default(
        platform,
        &held_key(&delivery.endpoint),
        |listed: &mut Vec<DeliveryRef>| {
            if !listed.contains(delivery) {
                listed.push(delivery.clone());
            }
        },
    )
}

/// Makes an unpaused endpoint's held deliveries pending again, in order,
/// due now; returns them.
pub fn release(
    platform: &impl Platform,
    endpoint: &str,
    now_ms: i64,
) -> Result<Vec<DeliveryRef>, Problem> {
    let held: Vec<DeliveryRef> = get_json(platform, &held_key(endpoint))?.unwrap_or_default();
    let mut released = Vec::new();
    for delivery in &held {
        let pending = update_json(
            platform,
            &delivery.key(),
            |current: Option<DeliveryRecord>| {
                Ok(match current {
                    Some(mut record) if record.status == DeliveryStatus::Held => {
                        record.status = DeliveryStatus::Pending;
                        record.next_attempt_at = Some(now_ms);
                        (Some(record), true)
                    }
                    // Released by this call's own earlier write.
                    Some(record)
                        if record.status == DeliveryStatus::Pending
                            && record.next_attempt_at == Some(now_ms) =>
                    {
                        (None, true)
                    }
                    _ => (None, false),
                })
            },
        )?;
        if pending {
            released.push(delivery.clone());
        }
    }
    enqueue_all(platform, &released, now_ms)?;
    update_or_default(
        platform,
        &held_key(endpoint),
        |listed: &mut Vec<DeliveryRef>| {
            listed.retain(|delivery| !held.contains(delivery));
        },
    )?;
    Ok(released)
}

/// What happened to a delivery that a dispatcher looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// An attempt was made (whatever it answered).
    Attempted,
    /// Another dispatcher holds it, or its message is still being written:
    /// left where it is.
    Busy,
    /// Nothing to do here any more (done, held, rescheduled, gone).
    Settled,
}

/// What a dispatch pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    /// Attempts made.
    pub attempted: usize,
    /// Deliveries left to another dispatcher.
    pub busy: usize,
}

/// Sends the deliveries a request just queued, after its answer: one at a
/// time per endpoint, in order, endpoints side by side (at most the first
/// `MAX_FOLLOW_UP`).
pub async fn follow_up(
    platform: &impl Platform,
    deliveries: &[DeliveryRef],
) -> Result<(), Problem> {
    let config = &Config::load(platform)?;
    let mut by_endpoint: Vec<Vec<&DeliveryRef>> = Vec::new();
    for delivery in deliveries.iter().take(MAX_FOLLOW_UP) {
        match by_endpoint
            .iter_mut()
            .find(|group| group[0].endpoint == delivery.endpoint)
        {
            Some(group) => group.push(delivery),
            None => by_endpoint.push(vec![delivery]),
        }
    }
    for batch in by_endpoint.chunks(config.dispatch_concurrency) {
        let runs = batch.iter().map(|group| async move {
            for delivery in group {
                attempt(platform, config, delivery).await?;
            }
            Ok::<(), Problem>(())
        });
        for result in futures::future::join_all(runs).await {
            result?;
        }
    }
    Ok(())
}

/// One pass: prunes an expired day, then sends what is due, oldest first:
/// one attempt at a time per endpoint, in order, and at most
/// `dispatch_concurrency` endpoints at once; at most `MAX_PER_PASS`
/// attempts, so that a pass ends and the next sees new work.
pub async fn dispatch(platform: &impl Platform) -> Result<PassReport, Problem> {
    pass(platform, &Config::load(platform)?).await
}

/// [`dispatch`] with the variables read already.
pub async fn pass(platform: &impl Platform, config: &Config) -> Result<PassReport, Problem> {
    use futures::StreamExt as _;
    let now_ms = platform.now_millis();
    let now = now_ms.div_euclid(1000);
    messages::prune_expired_day(
        platform,
        now.div_euclid(messages::DAY_SECONDS),
        config.retention_days,
    )?;
    let mut seconds: Vec<i64> = get_json(platform, SECONDS_KEY)?.unwrap_or_default();
    seconds.retain(|second| *second <= now);
    seconds.sort_unstable();
    let mut report = PassReport::default();
    // Each endpoint's due deliveries, oldest first.
    let mut by_endpoint: BTreeMap<String, Vec<DeliveryRef>> = BTreeMap::new();
    let mut chosen = 0;
    'seconds: for second in seconds {
        let listed: Vec<DeliveryRef> = get_json(platform, &queue_key(second))?.unwrap_or_default();
        if listed.is_empty() {
            forget_second(platform, second, now)?;
        }
        let mut settled = Vec::new();
        for delivery in listed {
            if chosen == MAX_PER_PASS {
                break;
            }
            match due(platform, &delivery, second, now_ms)? {
                Due::Settled => settled.push(delivery),
                Due::Busy => report.busy += 1,
                Due::Now => {
                    chosen += 1;
                    by_endpoint
                        .entry(delivery.endpoint.clone())
                        .or_default()
                        .push(delivery);
                }
            }
        }
        // One write per second for every entry that is done with it.
        unlist(platform, second, &settled)?;
        if chosen == MAX_PER_PASS {
            break 'seconds;
        }
    }
    let mut runs = futures::stream::iter(by_endpoint.into_values().map(|group| async move {
        let mut outcomes = Vec::with_capacity(group.len());
        for delivery in &group {
            let outcome = attempt(platform, config, delivery).await?;
            outcomes.push(outcome);
        }
        Ok::<_, Problem>(outcomes)
    }))
    .buffer_unordered(config.dispatch_concurrency);
    while let Some(outcomes) = runs.next().await {
        for outcome in outcomes? {
            match outcome {
                Outcome::Busy => report.busy += 1,
                Outcome::Attempted => report.attempted += 1,
                Outcome::Settled => {}
            }
        }
    }
    Ok(report)
}

/// Whether a delivery listed in a queue second is due, by its record as
/// stored now.
enum Due {
    Now,
    /// Leased, or due later within this second.
    Busy,
    /// Done, held, gone, or listed again in another second.
    Settled,
}

fn due(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    second: i64,
    now_ms: i64,
) -> Result<Due, Problem> {
    let record: Option<DeliveryRecord> = get_json(platform, &delivery.key())?;
    let Some(record) = record.filter(|record| record.status == DeliveryStatus::Pending) else {
        return Ok(Due::Settled);
    };
    let at = record.next_attempt_at.unwrap_or(now_ms);
    Ok(if at.div_euclid(1000) != second {
        Due::Settled
    } else if at > now_ms || record.lease.is_some_and(|lease| lease.until > now_ms) {
        Due::Busy
    } else {
        Due::Now
    })
}

/// Removes deliveries from a queue second, in one write.
fn unlist(platform: &impl Platform, second: i64, done: &[DeliveryRef]) -> Result<(), Problem> {
    if done.is_empty() {
        return Ok(());
    }
    update_json(
        platform,
        &queue_key(second),
        |listed: Option<Vec<DeliveryRef>>| {
            Ok(match listed {
                Some(mut listed) if listed.iter().any(|entry| done.contains(entry)) => {
                    listed.retain(|entry| !done.contains(entry));
                    (Some(listed), ())
                }
                _ => (None, ()),
            })
        },
    )
}

/// Drops an empty queue second, once it is old enough that no dispatcher
/// can still list a delivery in it (every delivery is listed at its due
/// time, which is never in the past by more than a request's duration).
fn forget_second(platform: &impl Platform, second: i64, now: i64) -> Result<(), Problem> {
    if second > now - SETTLED_SECONDS {
        return Ok(());
    }
    let listed: Vec<DeliveryRef> = get_json(platform, &queue_key(second))?.unwrap_or_default();
    if !listed.is_empty() {
        return Ok(());
    }
    store::remove(platform, &queue_key(second))?;
    update_or_default(platform, SECONDS_KEY, |seconds: &mut Vec<i64>| {
        seconds.retain(|listed| *listed != second);
    })
}

/// What a lease attempt found.
enum Claim {
    Leased(DeliveryRecord, String),
    Busy,
    /// Nothing to send now.
    Settled,
}

/// When a lease (a delivery's, a send slot's) taken at `now_ms` ends: the
/// send's timeout and a margin.
fn lease_until(config: &Config, now_ms: i64) -> i64 {
    now_ms
        .saturating_add(i64::try_from(config.delivery_timeout_ms).unwrap_or(i64::MAX))
        .saturating_add(LEASE_MARGIN_MS)
}

/// Leases a delivery that is pending and due.
fn claim(
    platform: &impl Platform,
    config: &Config,
    delivery: &DeliveryRef,
    now_ms: i64,
) -> Result<Claim, Problem> {
    let token = new_uuid()?;
    let until = lease_until(config, now_ms);
    update_json(
        platform,
        &delivery.key(),
        |current: Option<DeliveryRecord>| {
            Ok(match current {
                None => (None, Claim::Settled),
                Some(record) if record.status != DeliveryStatus::Pending => (None, Claim::Settled),
                // Due later: the entry of its second sends it.
                Some(record) if record.next_attempt_at.is_some_and(|at| at > now_ms) => {
                    (None, Claim::Settled)
                }
                // Leased by this call's own earlier write.
                Some(record)
                    if record
                        .lease
                        .as_ref()
                        .is_some_and(|lease| lease.token == token) =>
                {
                    (None, Claim::Leased(record, token.clone()))
                }
                Some(record)
                    if record
                        .lease
                        .as_ref()
                        .is_some_and(|lease| lease.until > now_ms) =>
                {
                    (None, Claim::Busy)
                }
                Some(mut record) => {
                    record.lease = Some(Lease {
                        token: token.clone(),
                        until,
                    });
                    (Some(record.clone()), Claim::Leased(record, token.clone()))
                }
            })
        },
    )
}

/// Leases one delivery, sends its next attempt and records the result.
/// Its queue entry stays: the next pass sees that it is done with it (or
/// that it is due again in that second) and removes it with the others,
/// so that concurrent senders do not all rewrite the same list.
async fn attempt(
    platform: &impl Platform,
    config: &Config,
    delivery: &DeliveryRef,
) -> Result<Outcome, Problem> {
    let now_ms = platform.now_millis();
    match claim(platform, config, delivery, now_ms)? {
        Claim::Busy => Ok(Outcome::Busy),
        Claim::Settled => Ok(Outcome::Settled),
        Claim::Leased(record, token) => {
            attempt_leased(platform, config, delivery, &record, &token, now_ms).await
        }
    }
}

/// [`attempt`] once the lease is held.
async fn attempt_leased(
    platform: &impl Platform,
    config: &Config,
    delivery: &DeliveryRef,
    record: &DeliveryRecord,
    token: &str,
    now_ms: i64,
) -> Result<Outcome, Problem> {
    let message = match messages::find(platform, &delivery.org, &delivery.message)? {
        Some(message) if message.accepted => message,
        // Still being written by its request, which sends it: not ours yet.
        Some(message) if now_ms - message.created_at * 1000 < UNFINISHED_GRACE_MS => {
            finish(platform, delivery, token, |_| {})?;
            return Ok(Outcome::Busy);
        }
        // Never finished: never sent.
        _ => {
            finish(platform, delivery, token, |record| {
                record.status = DeliveryStatus::Failed;
                record.next_attempt_at = None;
                record.last_error = Some("the message was never accepted whole".into());
            })?;
            return Ok(Outcome::Settled);
        }
    };
    let Some(endpoint) = store::find(platform, &delivery.org, &delivery.endpoint)? else {
        finish(platform, delivery, token, |record| {
            record.status = DeliveryStatus::Failed;
            record.next_attempt_at = None;
            record.last_error = Some("the endpoint was deleted".into());
        })?;
        return Ok(Outcome::Settled);
    };
    if endpoint.paused {
        if finish(platform, delivery, token, |record| {
            record.status = DeliveryStatus::Held;
            record.next_attempt_at = None;
        })? {
            hold(platform, delivery)?;
        }
        return Ok(Outcome::Settled);
    }
    let slot = limits::take_send_slot(
        platform,
        &delivery.endpoint,
        config.max_in_flight_per_endpoint,
        now_ms,
        lease_until(config, now_ms),
    )?;
    if let SendSlot::Full = slot {
        // As many sends to the endpoint as it may take are out: a later pass.
        finish(platform, delivery, token, |_| {})?;
        return Ok(Outcome::Busy);
    }
    let number = record.attempts.saturating_add(1);
    let delivered = deliver(
        platform,
        config,
        &endpoint,
        &Message {
            id: &message.id,
            event_type: &message.event_type,
            body: message.body.as_bytes(),
            test: false,
            attempt_number: number,
        },
    )
    .await;
    limits::give_back(platform, &slot)?;
    record_result(platform, config, delivery, token, number, &delivered?)?;
    Ok(Outcome::Attempted)
}

/// The delivery's state after attempt `number`: succeeded; held if the
/// endpoint is paused now (a 410, or auto-pause); pending until the next
/// slot of the schedule; failed after the last.
fn record_result(
    platform: &impl Platform,
    config: &Config,
    delivery: &DeliveryRef,
    token: &str,
    number: u32,
    delivered: &Delivered,
) -> Result<(), Problem> {
    let now_ms = platform.now_millis();
    let paused = delivered
        .endpoint
        .as_ref()
        .is_none_or(|endpoint| endpoint.paused);
    let next = config
        .retry_schedule
        .get(number as usize)
        .map(|slot| now_ms.saturating_add(retry_delay_ms(*slot, delivered)));
    let status = match (delivered.attempt.succeeded, paused, next) {
        (true, _, _) => DeliveryStatus::Succeeded,
        (false, true, _) => DeliveryStatus::Held,
        (false, false, Some(_)) => DeliveryStatus::Pending,
        (false, false, None) => DeliveryStatus::Failed,
    };
    let next = next.filter(|_| status == DeliveryStatus::Pending);
    let written = finish(platform, delivery, token, |record| {
        record.attempts = number;
        record.status = status;
        record.last_attempt_at = Some(now_ms.div_euclid(1000));
        record.last_error.clone_from(&delivered.attempt.error);
        record.next_attempt_at = next;
    })?;
    if !written {
        return Ok(());
    }
    match (status, next) {
        (DeliveryStatus::Pending, Some(at)) => enqueue(platform, delivery, at),
        (DeliveryStatus::Held, _) => hold(platform, delivery),
        _ => Ok(()),
    }
}

/// The wait before the next attempt: the schedule's slot with up to 10 %
/// of jitter either way; a `Retry-After` (seconds) on 429 or 503 is
/// honoured up to the slot's length.
fn retry_delay_ms(slot_seconds: u64, delivered: &Delivered) -> i64 {
    let slot_ms = i64::try_from(slot_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let retry_after_ms = delivered
        .response
        .as_ref()
        .filter(|response| matches!(response.status, 429 | 503))
        .and_then(|response| {
            response
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        })
        .and_then(|(_, value)| value.trim().parse::<i64>().ok())
        .map(|seconds| seconds.saturating_mul(1000).max(0));
    if let Some(wait) = retry_after_ms {
        return wait.min(slot_ms);
    }
    let spread = slot_ms / 10;
    let mut random = [0u8; 4];
    // Without randomness the slot is used as it is.
    if spread == 0 || getrandom::fill(&mut random).is_err() {
        return slot_ms;
    }
    let offset = i64::from(u32::from_le_bytes(random)) % (2 * spread + 1) - spread;
    slot_ms + offset
}

/// Applies `change` to the delivery if this dispatcher still holds its
/// lease, and lets the lease go; `false` if another took it over.
fn finish(
    platform: &impl Platform,
    delivery: &DeliveryRef,
    token: &str,
    mut change: impl FnMut(&mut DeliveryRecord),
) -> Result<bool, Problem> {
    update_json(
        platform,
        &delivery.key(),
        |current: Option<DeliveryRecord>| {
            Ok(match current {
                Some(mut record)
                    if record
                        .lease
                        .as_ref()
                        .is_some_and(|lease| lease.token == token) =>
                {
                    change(&mut record);
                    record.lease = None;
                    record.finished_lease = Some(token.to_string());
                    (Some(record), true)
                }
                // Finished by this call's own earlier write.
                Some(record) if record.finished_lease.as_deref() == Some(token) => (None, true),
                _ => (None, false),
            })
        },
    )
}
