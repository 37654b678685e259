//! The receiver gateway's records, per source: replay marks, their expiry
//! lists, and the counters of `GET /inbound/{source}/stats`.
//!
//! `inbound/{source}/claims/{webhook-id}` counts the requests that claimed
//! an id where swaps misreport (the one that counts 1 marks it);
//! `inbound/{source}/seen/{webhook-id}`
//! marks an id as being forwarded or accepted until its timestamp plus the
//! tolerance (so of two copies arriving together one goes on);
//! `inbound/{source}/expiring/{n}/{shard}` lists the accepted ids whose
//! marks expire in the 10 seconds from `10 n`, spread over 256 shards by
//! their hash, and `inbound/{source}/expiring` lists those `n`, so that
//! a dispatcher pass prunes expired marks a bucket at a time
//! ([`prune_expired`]), no key grows with the accept rate times the
//! tolerance, and concurrent deliveries rarely rewrite the same list;
//! `inbound/{source}/stats` holds the counters of
//! verified deliveries; `inbound/{source}/refused/{code}` counts the
//! deliveries that failed verification (see [`count_refusal`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::foundation::config::InboundSources;
use crate::foundation::encoding::sha256;
use crate::foundation::problem::{Code, Problem};
use crate::platform::Platform;
use crate::store::{
    self, BATCH_KEYS, ReadAhead, get_json, keys, set_json, update_json, update_or_default,
};

/// A webhook id seen for a source, until when it is refused, and the
/// request that marked it.
#[derive(Clone, Serialize, Deserialize)]
struct Seen {
    /// Unix seconds.
    #[serde(rename = "until")]
    until_s: i64,
    token: String,
}

/// The counters as one record kept them before each had a count of its
/// own: still read and added, never written.
#[derive(Default, Deserialize)]
struct Counted {
    #[serde(flatten)]
    stats: Stats,
}

/// The rejection counted when the origin answers outside 2xx (its answer
/// is relayed, so it is no problem of the gateway's).
pub const ORIGIN_REJECTED: &str = "origin_rejected";

/// The counters of `GET /inbound/{source}/stats`.
#[derive(Default, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub accepted: u64,
    pub rejected: BTreeMap<String, u64>,
    pub by_secret: BTreeMap<String, u64>,
}

/// Reads ahead, in one batch, the keys that a delivery's mark and its
/// expiry listing begin their swaps with, where the host begins a swap
/// from what was read ([`ReadAhead::read`]).
pub fn read_first<P: Platform>(
    platform: &ReadAhead<'_, P>,
    name: &str,
    id: &str,
    until: i64,
) -> Result<(), Problem> {
    let bucket = until.div_euclid(BUCKET_SECONDS);
    let swapped = [
        keys::inbound_seen(name, id),
        keys::inbound_expiring(name),
        keys::inbound_expiring_shard(name, bucket, shard_of(id)),
    ];
    Ok(platform.read(&[], &swapped)?)
}

/// Marks the id as being forwarded, so that of two copies arriving
/// together exactly one goes on; `false` if it is marked. On a store whose
/// swaps are truthful the mark is one compare-and-swap, an absent or
/// expired mark replaced. Elsewhere the first request to count the id's
/// claim counter to 1 creates the mark (a counter is atomic on every
/// store; a compare-and-swap on an absent key is not on Spin's SQLite
/// store), and an expired mark is taken over by compare-and-swap.
pub fn mark(
    platform: &impl Platform,
    name: &str,
    id: &str,
    until: i64,
    now: i64,
    token: &str,
) -> Result<bool, Problem> {
    let ours = Seen {
        until_s: until,
        token: token.to_string(),
    };
    let truthful = platform.swaps_are_truthful();
    if !truthful && platform.increment(&keys::inbound_claim(name, id), 1)? == 1 {
        set_json(platform, &keys::inbound_seen(name, id), &ours)?;
        return Ok(true);
    }
    // Counted before: marked now, or being marked (a 409; the sender
    // retries), or expired, which one request takes over.
    update_json(
        platform,
        &keys::inbound_seen(name, id),
        |seen: Option<Seen>| {
            Ok(match seen {
                None if truthful => (Some(ours.clone()), true),
                Some(seen) if seen.token == token => (None, true),
                Some(seen) if seen.until_s < now => (Some(ours.clone()), true),
                _ => (None, false),
            })
        },
    )
}

/// Removes this request's mark after the origin refused: a mark that
/// another request took meanwhile (after this one's expired) stays.
pub fn unmark(platform: &impl Platform, name: &str, id: &str, token: &str) -> Result<(), Problem> {
    let key = keys::inbound_seen(name, id);
    if get_json::<Seen>(platform, &key)?.is_some_and(|seen| seen.token == token) {
        // The claim first: a copy counting 1 meanwhile owns the id anew.
        platform.delete(&keys::inbound_claim(name, id))?;
        store::remove(platform, &key)?;
    }
    Ok(())
}

/// The codes a failed verification can have (the others are the source's
/// configuration, never counted).
pub fn refusals() -> impl Iterator<Item = Code> {
    hooksign::Error::ALL
        .into_iter()
        .map(Code::of_verification)
        .filter(|code| *code != Code::InvalidConfiguration)
}

/// Refusals of one kind counted one by one, before sampling starts.
const EXACT_REFUSALS: i64 = 100;

/// Past [`EXACT_REFUSALS`], one refusal in this many is counted, as this
/// many.
const REFUSAL_SAMPLE: i64 = 16;

/// Counts a delivery that failed verification, by an atomic count of its
/// own (never a compare-and-swap that verified deliveries wait on): each
/// one up to [`EXACT_REFUSALS`], then one in [`REFUSAL_SAMPLE`], so that a
/// flood of bad signatures costs a store write for few of its requests.
pub fn count_refusal(platform: &impl Platform, name: &str, code: Code) -> Result<(), Problem> {
    let key = keys::inbound_refused(name, code.as_str());
    if store::read_counter(platform, &key)? < EXACT_REFUSALS {
        platform.increment(&key, 1)?;
        return Ok(());
    }
    let mut draw = [0u8; 1];
    getrandom::fill(&mut draw).map_err(|_| Problem::random_unavailable())?;
    if i64::from(draw[0]) % REFUSAL_SAMPLE == 0 {
        platform.increment(&key, REFUSAL_SAMPLE)?;
    }
    Ok(())
}

/// What one delivery through the gateway counts as, besides a failed
/// verification ([`count_refusal`]).
pub enum Outcome<'a> {
    /// Verified by the keyring's secret at this index, and taken by the
    /// origin.
    Accepted { secret: usize },
    /// Refused with this code after it verified.
    Rejected(&'a str),
}

/// Counts a delivery by an atomic count of its own: no record that every
/// delivery rewrites by compare-and-swap, and waits on.
pub fn count(platform: &impl Platform, name: &str, outcome: Outcome<'_>) -> Result<(), Problem> {
    let key = match outcome {
        Outcome::Accepted { secret } => keys::inbound_accepted(name, secret),
        Outcome::Rejected(code) => keys::inbound_refused(name, code),
    };
    platform.increment(&key, 1)?;
    Ok(())
}

/// The width of an expiry bucket, seconds.
const BUCKET_SECONDS: i64 = 10;

/// Lists an accepted id in the bucket of its mark's expiry. Pruning is a
/// pass's ([`prune_expired`]): a bucket holds ten seconds of a source's
/// accepted ids, and a delivery that pruned one waited for all of them
/// (as did every delivery at the same moment, each pruning it too).
pub fn remember_accepted(
    platform: &impl Platform,
    name: &str,
    id: &str,
    until: i64,
) -> Result<(), Problem> {
    let bucket = until.div_euclid(BUCKET_SECONDS);
    // The bucket is listed before it is written, so none goes unpruned.
    update_json(
        platform,
        &keys::inbound_expiring(name),
        |buckets: Option<Vec<i64>>| {
            let mut buckets = buckets.unwrap_or_default();
            if buckets.contains(&bucket) {
                return Ok((None, ()));
            }
            buckets.push(bucket);
            Ok((Some(buckets), ()))
        },
    )?;
    update_or_default(
        platform,
        &keys::inbound_expiring_shard(name, bucket, shard_of(id)),
        |ids: &mut Vec<String>| {
            if !ids.iter().any(|listed| listed == id) {
                ids.push(id.to_string());
            }
        },
    )
}

/// Which of its bucket's 256 lists an id goes in: the first byte of its
/// hash. Each delivery rewrites one list, so a list holds a 256th of the
/// ids accepted in its ten seconds (about 120 at 3,000 forwards/s), and
/// deliveries at once mostly touch different keys.
fn shard_of(id: &str) -> u8 {
    sha256(id)[0]
}

/// Prunes, for each source, its oldest bucket whose marks have all expired
/// (a pass a second prunes ten seconds of accepted ids, so it keeps up):
/// one batch read of the sources' bucket directories, and for a bucket its
/// lists and its ids' marks read and removed a batch at a time.
pub fn prune_expired(
    platform: &impl Platform,
    sources: &InboundSources,
    now: i64,
) -> Result<(), Problem> {
    let names: Vec<&str> = sources.usable().map(|(name, _)| name).collect();
    let directories: Vec<String> = names
        .iter()
        .map(|name| keys::inbound_expiring(name))
        .collect();
    let listed = store::get_many_json::<Vec<i64>>(platform, &directories)?;
    for ((name, directory_key), buckets) in names.iter().zip(&directories).zip(listed) {
        let oldest = buckets
            .unwrap_or_default()
            .into_iter()
            .filter(|bucket| (bucket + 1) * BUCKET_SECONDS <= now)
            .min();
        if let Some(bucket) = oldest {
            prune(platform, name, directory_key, bucket, now)?;
        }
    }
    Ok(())
}

/// Removes an expired bucket's marks (unless an id was accepted again
/// since, with a later mark), then its lists, then the bucket.
fn prune(
    platform: &impl Platform,
    name: &str,
    directory_key: &str,
    bucket: i64,
    now: i64,
) -> Result<(), Problem> {
    let lists: Vec<String> = (0..=u8::MAX)
        .map(|shard| keys::inbound_expiring_shard(name, bucket, shard))
        .chain([keys::inbound_expiring_unsharded(name, bucket)])
        .collect();
    // An unreadable list or mark protects nothing and would stop every
    // pass: its list is dropped, the mark removed.
    let ids: Vec<String> = store::get_many(platform, &lists)?
        .into_iter()
        .flatten()
        .flat_map(|list| store::decode::<Vec<String>>(&list).unwrap_or_default())
        .collect();
    for ids in ids.chunks(BATCH_KEYS) {
        let marks: Vec<String> = ids.iter().map(|id| keys::inbound_seen(name, id)).collect();
        let seen = store::get_many(platform, &marks)?;
        let expired = ids
            .iter()
            .zip(marks)
            .zip(seen)
            .filter(|(_, seen)| {
                seen.as_deref().is_some_and(|seen| {
                    store::decode::<Seen>(seen).map_or(true, |seen| seen.until_s < now)
                })
            })
            // The mark before its claim: a copy counting the claim between
            // the two finds it past 1 and is refused, where the other order
            // could let it mark the id anew and then lose that mark here.
            .flat_map(|((id, mark), _)| [mark, keys::inbound_claim(name, id)]);
        store::remove_together(platform, expired.collect())?;
    }
    store::remove_together(platform, lists)?;
    update_or_default(platform, directory_key, |buckets: &mut Vec<i64>| {
        buckets.retain(|listed| *listed != bucket);
    })
}

/// The codes a delivery is rejected with after it verified.
const REJECTIONS: [Code; 3] = [
    Code::DuplicateDelivery,
    Code::OriginTimeout,
    Code::OriginUnreachable,
];

/// Removes a source's counts (its keyring has `secrets` secrets).
pub fn erase_counts(platform: &impl Platform, name: &str, secrets: usize) -> Result<(), Problem> {
    store::remove(platform, &keys::inbound_stats(name))?;
    for secret in 0..secrets {
        store::remove(platform, &keys::inbound_accepted(name, secret))?;
    }
    let codes = refusals()
        .chain(REJECTIONS)
        .map(Code::as_str)
        .chain([ORIGIN_REJECTED]);
    for code in codes {
        store::remove(platform, &keys::inbound_refused(name, code))?;
    }
    Ok(())
}

/// The counters of a source whose keyring has `secrets` secrets, the
/// record of before the counts included.
pub fn stats(platform: &impl Platform, name: &str, secrets: usize) -> Result<Stats, Problem> {
    let mut stats = get_json::<Counted>(platform, &keys::inbound_stats(name))?
        .unwrap_or_default()
        .stats;
    for secret in 0..secrets {
        let accepted = store::read_counter(platform, &keys::inbound_accepted(name, secret))?;
        if accepted > 0 {
            *stats.by_secret.entry(secret.to_string()).or_default() += accepted.unsigned_abs();
            stats.accepted += accepted.unsigned_abs();
        }
    }
    let codes = refusals()
        .chain(REJECTIONS)
        .map(Code::as_str)
        .chain([ORIGIN_REJECTED]);
    for code in codes {
        let refused = store::read_counter(platform, &keys::inbound_refused(name, code))?;
        if refused > 0 {
            *stats.rejected.entry(code.into()).or_default() += refused.unsigned_abs();
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, SwapDefect};

    fn claims(platform: &FakePlatform) -> usize {
        platform
            .entries
            .borrow()
            .keys()
            .filter(|key| key.starts_with("inbound/shop/claims/"))
            .count()
    }

    /// The first copy marks the id, a second is refused, and a mark that
    /// expired is taken over; on a truthful store with no claim counter.
    fn marks_once(platform: &FakePlatform) -> Result<(), Problem> {
        assert!(mark(platform, "shop", "msg_1", 100, 50, "first")?);
        assert!(!mark(platform, "shop", "msg_1", 100, 50, "second")?);
        assert!(mark(platform, "shop", "msg_1", 100, 50, "first")?);
        assert!(mark(platform, "shop", "msg_1", 200, 150, "third")?);
        assert!(!mark(platform, "shop", "msg_1", 200, 150, "fourth")?);
        Ok(())
    }

    #[test]
    fn a_mark_is_one_swap_where_swaps_are_truthful() -> Result<(), Problem> {
        let platform = FakePlatform::default();
        marks_once(&platform)?;
        assert_eq!(claims(&platform), 0);
        Ok(())
    }

    #[test]
    fn a_mark_is_claimed_by_count_where_swaps_misreport() -> Result<(), Problem> {
        let platform = FakePlatform::default();
        platform.defect.set(Some(SwapDefect::AbsentUpserts));
        marks_once(&platform)?;
        assert_eq!(claims(&platform), 1);
        Ok(())
    }
}
