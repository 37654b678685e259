//! Limits that hold across instances and nodes, so they live in the store.
//!
//! - `rate_limit_per_key` and `rate_limit_per_org`: token buckets whose
//!   burst equals their rate, one per API key and one per organisation
//!   (all its keys together, so minting keys adds no rate), kept in one
//!   record per organisation (`ratelimit/org/{org}`), so a request takes
//!   from both in one change. A request past either is 429 `rate_limited`
//!   with `Retry-After`.
//! - Refused `POST /dispatch` tokens: at most
//!   [`DISPATCH_GUESSES_PER_SECOND`] across every node
//!   (`ratelimit/dispatch`), then 429.
//! - `max_in_flight_per_endpoint`: sends to one endpoint at once, as that
//!   many slots (`inflight/{endpoint}/{n}`) leased like deliveries.
//! - `max_stored_bytes_per_org`: the bytes of an organisation's stored
//!   messages, an atomic count (`usage/{org}/bytes`) charged before a
//!   message is written and given back when it is pruned.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::foundation::encoding::{new_uuid, sha256_hex};
use crate::foundation::problem::{Code, Problem};
use crate::ids::{EndpointId, OrgId};
use crate::platform::Platform;
use crate::store::{self, keys, remember, update_json};

/// How many takes a record remembers where swaps are confirmed, so that a
/// take confirmed by a second read is not taken twice: a take is counted
/// once as long as fewer others land between its swap and that read (16
/// were too few for 60 requests at once on two cores).
const RECENT_TAKES: usize = 64;

/// Hex digits of a key's SHA-256 that name its bucket.
const KEY_NAME_LEN: usize = 32;

/// Requests per second, and the burst; 0: no limit.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub per_key: u64,
    pub per_org: u64,
}

/// Thousandths of a token, and when they were counted.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bucket {
    milli_tokens: i64,
    at_ms: i64,
}

/// An organisation's bucket and those of its keys that are not full (a
/// full bucket is the same as none), and the newest takes.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Buckets {
    org: Option<Bucket>,
    keys: BTreeMap<String, Bucket>,
    recent: Vec<String>,
}

/// What stopped a request.
enum Over {
    Key,
    Org,
}

/// Takes a token from the bucket of the API key `key` and from its
/// organisation's; 429 with the seconds to wait when either has none.
pub fn take(
    platform: &impl Platform,
    org: &OrgId,
    key: &str,
    rates: Rates,
    now_ms: i64,
) -> Result<(), Problem> {
    let name = &sha256_hex(key)[..KEY_NAME_LEN];
    let Some((over, seconds)) = take_from(platform, &keys::rate_limit(org), name, rates, now_ms)?
    else {
        return Ok(());
    };
    let detail = match over {
        Over::Key => format!(
            "this API key is over rate_limit_per_key ({} requests per second); retry in {seconds} s",
            rates.per_key
        ),
        Over::Org => format!(
            "this organisation's API keys together are over rate_limit_per_org ({} requests per second); retry in {seconds} s",
            rates.per_org
        ),
    };
    Err(Problem::new(Code::RateLimited, detail).with_retry_after(seconds))
}

/// Refused `POST /dispatch` tokens the service answers per second, across
/// every node: a guess past them is 429, so a token cannot be searched
/// for. A valid token takes nothing: guesses cannot hold up dispatch.
pub const DISPATCH_GUESSES_PER_SECOND: u64 = 10;

/// Takes a token from the bucket of the platform key `key` (all platform
/// keys' buckets are one record); 429 when it has none.
pub fn take_platform(
    platform: &impl Platform,
    key: &str,
    per_key: u64,
    now_ms: i64,
) -> Result<(), Problem> {
    let name = &sha256_hex(key)[..KEY_NAME_LEN];
    let rates = Rates {
        per_key,
        per_org: 0,
    };
    let Some((_, seconds)) = take_from(platform, keys::PLATFORM_RATE_LIMIT, name, rates, now_ms)?
    else {
        return Ok(());
    };
    Err(Problem::new(
        Code::RateLimited,
        format!(
            "this platform key is over rate_limit_per_key ({per_key} requests per second); retry in {seconds} s"
        ),
    )
    .with_retry_after(seconds))
}

/// Takes a send to the endpoint from its bucket (`per_second`, the burst
/// as much), across every node; `false` when it has none: the delivery
/// waits for a later pass, neither failed nor counted against the endpoint.
pub fn take_endpoint_send(
    platform: &impl Platform,
    endpoint: &EndpointId,
    per_second: u32,
    now_ms: i64,
) -> Result<bool, Problem> {
    let rates = Rates {
        per_key: 0,
        per_org: u64::from(per_second),
    };
    let record = keys::endpoint_rate_limit(endpoint);
    Ok(take_from(platform, &record, "", rates, now_ms)?.is_none())
}

/// Removes an organisation's buckets and its storage count.
pub fn erase_org(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    store::remove(platform, &keys::rate_limit(org))?;
    store::remove(platform, &keys::stored_bytes(org))
}

/// Removes a deleted endpoint's send slots and send bucket.
pub fn erase_slots(
    platform: &impl Platform,
    endpoint: &EndpointId,
    limit: u64,
) -> Result<(), Problem> {
    for n in 0..limit {
        store::remove(platform, &keys::send_slot(endpoint, n))?;
    }
    store::remove(platform, &keys::endpoint_rate_limit(endpoint))
}

/// Counts a refused dispatch token; 429 when past
/// [`DISPATCH_GUESSES_PER_SECOND`].
pub fn take_dispatch_guess(platform: &impl Platform, now_ms: i64) -> Result<(), Problem> {
    let rates = Rates {
        per_key: 0,
        per_org: DISPATCH_GUESSES_PER_SECOND,
    };
    let Some((_, seconds)) = take_from(platform, keys::DISPATCH_GUESSES, "", rates, now_ms)? else {
        return Ok(());
    };
    Err(Problem::new(
        Code::RateLimited,
        format!(
            "more than {DISPATCH_GUESSES_PER_SECOND} refused dispatch tokens a second; retry in {seconds} s"
        ),
    )
    .with_retry_after(seconds))
}

/// Takes a token from the record's buckets: its own (`per_org`) and
/// `name`'s (`per_key`). `Some` with what was short and the whole seconds
/// to wait when either has none.
fn take_from(
    platform: &impl Platform,
    record: &str,
    name: &str,
    rates: Rates,
    now_ms: i64,
) -> Result<Option<(Over, i64)>, Problem> {
    if rates.per_key == 0 && rates.per_org == 0 {
        return Ok(None);
    }
    let take = new_uuid()?;
    // A truthful swap needs no memory of takes: nothing confirms it.
    let confirmed = !platform.swaps_are_truthful();
    let over = update_json(platform, record, |buckets: Option<Buckets>| {
        let mut buckets = buckets.unwrap_or_default();
        if buckets.recent.contains(&take) {
            return Ok((None, None));
        }
        let org_level = level(buckets.org.as_ref(), rates.per_org, now_ms);
        let key_level = level(buckets.keys.get(name), rates.per_key, now_ms);
        if let Some(wait_ms) = wait_for_token(key_level, rates.per_key) {
            return Ok((None, Some((Over::Key, wait_ms))));
        }
        if let Some(wait_ms) = wait_for_token(org_level, rates.per_org) {
            return Ok((None, Some((Over::Org, wait_ms))));
        }
        buckets.org = org_level.map(|level| drawn(buckets.org.as_ref(), level, now_ms));
        let key_bucket = key_level.map(|level| drawn(buckets.keys.get(name), level, now_ms));
        buckets
            .keys
            .retain(|other, bucket| other != name && !is_full(bucket, rates.per_key, now_ms));
        if let Some(bucket) = key_bucket {
            buckets.keys.insert(name.to_string(), bucket);
        }
        if confirmed {
            remember(&mut buckets.recent, take.clone(), RECENT_TAKES);
        } else {
            buckets.recent.clear();
        }
        Ok((Some(buckets), None))
    })?;
    Ok(over.map(|(over, wait_ms)| (over, ((wait_ms + 999) / 1000).max(1))))
}

/// A bucket's thousandths of a token at `now_ms`, refilled at `rate` per
/// second up to its burst; absent is full. `None`: no limit.
fn level(bucket: Option<&Bucket>, rate: u64, now_ms: i64) -> Option<i64> {
    if rate == 0 {
        return None;
    }
    let rate = i64::try_from(rate).unwrap_or(i64::MAX);
    let full = rate.saturating_mul(1000);
    Some(bucket.map_or(full, |bucket| {
        let elapsed = now_ms.saturating_sub(bucket.at_ms).max(0);
        bucket
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(rate))
            .min(full)
    }))
}

/// A bucket at `level` less the token taken; its time never goes back,
/// whatever the clocks of the nodes.
fn drawn(bucket: Option<&Bucket>, level: i64, now_ms: i64) -> Bucket {
    Bucket {
        milli_tokens: level - 1000,
        at_ms: bucket.map_or(now_ms, |bucket| bucket.at_ms.max(now_ms)),
    }
}

fn is_full(bucket: &Bucket, rate: u64, now_ms: i64) -> bool {
    level(Some(bucket), rate, now_ms)
        .is_none_or(|level| level >= i64::try_from(rate).unwrap_or(i64::MAX).saturating_mul(1000))
}

/// Milliseconds until a whole token: 1000 milli-tokens at `rate` per ms;
/// `None` when there is one (or no limit).
fn wait_for_token(level: Option<i64>, rate: u64) -> Option<i64> {
    let level = level?;
    if level >= 1000 {
        return None;
    }
    let rate = i64::try_from(rate).unwrap_or(i64::MAX);
    Some((1000 - level + rate - 1) / rate)
}

/// Charges `bytes` to the organisation's stored bytes; `false` when that
/// would pass `budget` (0: none), and the charge is taken back. Counted
/// with one atomic step, so racing charges on any node never pass the
/// budget together.
pub fn charge_storage(
    platform: &impl Platform,
    org: &OrgId,
    bytes: i64,
    budget: u64,
) -> Result<bool, Problem> {
    let key = keys::stored_bytes(org);
    let total = platform.increment(&key, bytes)?;
    let budget = i64::try_from(budget).unwrap_or(i64::MAX);
    if budget == 0 || total <= budget {
        return Ok(true);
    }
    platform.increment(&key, -bytes)?;
    Ok(false)
}

/// 409 `quota_exceeded`: the organisation's stored messages would pass
/// `budget` bytes.
pub fn storage_exceeded(budget: u64) -> Problem {
    Problem::new(
        Code::QuotaExceeded,
        format!(
            "the organisation's stored messages would pass max_stored_bytes_per_org ({budget} bytes); they are pruned after retention_days"
        ),
    )
}

/// Gives bytes back to the organisation's stored bytes.
pub fn refund_storage(platform: &impl Platform, org: &OrgId, bytes: i64) -> Result<(), Problem> {
    platform.increment(&keys::stored_bytes(org), -bytes)?;
    Ok(())
}

/// A send slot of an endpoint (`inflight/{endpoint}/{n}`): held until
/// `until` by the send `token`. A send that dies leaves its slot to expire
/// with its lease.
#[derive(Clone, Serialize, Deserialize)]
struct Slot {
    #[serde(rename = "until")]
    until_ms: i64,
    token: String,
}

/// What asking for a send slot got.
pub enum SendSlot {
    /// No limit is set: send.
    Unlimited,
    /// This slot, until given back: send.
    Held { key: String, token: String },
    /// Every slot is held: not now.
    Full,
}

/// Takes one of the endpoint's `limit` send slots until `until_ms`
/// (`limit` 0: no limit).
pub fn take_send_slot(
    platform: &impl Platform,
    endpoint: &EndpointId,
    limit: u64,
    now_ms: i64,
    until_ms: i64,
) -> Result<SendSlot, Problem> {
    if limit == 0 {
        return Ok(SendSlot::Unlimited);
    }
    let token = new_uuid()?;
    for n in 0..limit {
        let key = keys::send_slot(endpoint, n);
        let taken = update_json(platform, &key, |slot: Option<Slot>| {
            Ok(match slot {
                Some(slot) if slot.token == token => (None, true),
                Some(slot) if slot.until_ms > now_ms => (None, false),
                _ => {
                    let slot = Slot {
                        until_ms,
                        token: token.clone(),
                    };
                    (Some(slot), true)
                }
            })
        })?;
        if taken {
            return Ok(SendSlot::Held { key, token });
        }
    }
    Ok(SendSlot::Full)
}

/// Gives a held send slot back (marks it expired, if it is still this
/// send's).
pub fn give_back(platform: &impl Platform, slot: &SendSlot) -> Result<(), Problem> {
    let SendSlot::Held { key, token } = slot else {
        return Ok(());
    };
    update_json(platform, key, |slot: Option<Slot>| {
        Ok(match slot {
            Some(slot) if slot.token == *token && slot.until_ms != 0 => {
                let expired = Slot {
                    until_ms: 0,
                    token: token.clone(),
                };
                (Some(expired), ())
            }
            _ => (None, ()),
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, SwapDefect};

    fn org_bucket(platform: &FakePlatform, org: &OrgId) -> Buckets {
        let stored = platform.entries.borrow()[&keys::rate_limit(org)].clone();
        serde_json::from_slice(&stored).unwrap()
    }

    #[test]
    fn a_confirmed_take_is_counted_once_after_twenty_others_land_before_its_read() {
        let platform = FakePlatform::default();
        platform.defect.set(Some(SwapDefect::ReportsFailure));
        let org = OrgId::new("acme");
        let rates = Rates {
            per_key: 0,
            per_org: 100,
        };
        let now_ms = platform.now_ms.get();
        take(&platform, &org, "sgn_live_a", rates, now_ms).unwrap();
        let before = org_bucket(&platform, &org).org.unwrap().milli_tokens;
        // Twenty takes of other requests land after this one's swap and
        // before its confirming read (their tokens left out: only the
        // memory of takes is under test).
        let key = keys::rate_limit(&org);
        *platform.after_swap.borrow_mut() = Some(Box::new(move |entries| {
            let mut buckets: Buckets = serde_json::from_slice(&entries[&key]).unwrap();
            for n in 0..20 {
                remember(&mut buckets.recent, format!("other-{n}"), RECENT_TAKES);
            }
            entries.insert(key.clone(), serde_json::to_vec(&buckets).unwrap());
            false
        }));
        take(&platform, &org, "sgn_live_a", rates, now_ms).unwrap();
        let after = org_bucket(&platform, &org).org.unwrap().milli_tokens;
        assert_eq!(before - after, 1000);
    }

    #[test]
    fn a_truthful_store_keeps_no_takes() {
        let platform = FakePlatform::default();
        let org = OrgId::new("acme");
        let rates = Rates {
            per_key: 0,
            per_org: 100,
        };
        take(&platform, &org, "sgn_live_a", rates, platform.now_ms.get()).unwrap();
        let buckets = org_bucket(&platform, &org);
        assert!(buckets.recent.is_empty());
        assert_eq!(buckets.org.unwrap().milli_tokens, 99_000);
    }
}
