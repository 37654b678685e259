//! Limits that hold across instances and nodes, so they live in the store.
//!
//! - `rate_limit_per_key`: a token bucket per API key whose burst equals
//!   its rate (`ratelimit/{sha256 of the key}`). A request past it is 429
//!   `rate_limited` with `Retry-After`.
//! - `max_in_flight_per_endpoint`: sends to one endpoint at once, as that
//!   many slots (`inflight/{endpoint}/{n}`) leased like deliveries.

use serde::{Deserialize, Serialize};

use crate::foundation::encoding::{new_uuid, sha256_hex};
use crate::foundation::problem::{Code, Problem};
use crate::ids::EndpointId;
use crate::platform::Platform;
use crate::store::{keys, remember, update_json};

/// How many takes a bucket remembers, so that a take confirmed by a
/// second read is not taken twice.
const RECENT_TAKES: usize = 16;

/// A bucket: thousandths of a token, when they were counted, and the
/// newest takes.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bucket {
    milli_tokens: i64,
    at_ms: i64,
    recent: Vec<String>,
}

/// Takes a token from the bucket of the API key `key` at `rate` per second
/// (0: no limit); 429 with the seconds to wait when there is none.
pub fn take(platform: &impl Platform, key: &str, rate: u64, now_ms: i64) -> Result<(), Problem> {
    if rate == 0 {
        return Ok(());
    }
    let rate = i64::try_from(rate).unwrap_or(i64::MAX);
    let full = rate.saturating_mul(1000);
    let take = new_uuid()?;
    let wait_ms = update_json(
        platform,
        &keys::rate_limit(&sha256_hex(key)),
        |bucket: Option<Bucket>| {
            let mut bucket = bucket.unwrap_or(Bucket {
                milli_tokens: full,
                at_ms: now_ms,
                recent: Vec::new(),
            });
            if bucket.recent.contains(&take) {
                return Ok((None, 0));
            }
            let elapsed = now_ms.saturating_sub(bucket.at_ms).max(0);
            bucket.milli_tokens = bucket
                .milli_tokens
                .saturating_add(elapsed.saturating_mul(rate))
                .min(full);
            bucket.at_ms = bucket.at_ms.max(now_ms);
            if bucket.milli_tokens < 1000 {
                // Milliseconds until a whole token: 1000 milli-tokens at `rate` per ms.
                let missing = 1000 - bucket.milli_tokens;
                return Ok((None, (missing + rate - 1) / rate));
            }
            bucket.milli_tokens -= 1000;
            remember(&mut bucket.recent, take.clone(), RECENT_TAKES);
            Ok((Some(bucket), 0))
        },
    )?;
    if wait_ms == 0 {
        return Ok(());
    }
    let seconds = ((wait_ms + 999) / 1000).max(1);
    Err(Problem::new(
        Code::RateLimited,
        format!("this API key is over rate_limit_per_key ({rate} requests per second); retry in {seconds} s"),
    )
    .with_retry_after(seconds))
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
