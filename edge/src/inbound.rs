//! The receiver gateway: `POST /inbound/{source}` verifies a delivery with
//! the source's keyring (docs/SPEC.md section 3, through the hooksign library),
//! refuses replays, and forwards what verified to the origin.
//!
//! Keys: `inbound/{source}/claims/{webhook-id}` counts the requests that
//! claimed an id (the one that counts 1 marks it);
//! `inbound/{source}/seen/{webhook-id}` marks an id as being forwarded
//! or accepted until its timestamp plus the tolerance (so of two copies
//! arriving together one goes on);
//! `inbound/{source}/expiring/{n}/{shard}` lists the accepted ids whose marks
//! expire in the 10 seconds from `10 n`, spread over 32 shards by their
//! hash, and `inbound/{source}/expiring` lists those `n`, so that expired
//! marks are pruned a bucket at a time, no key grows with the accept rate
//! times the tolerance, and concurrent deliveries rarely rewrite the same
//! list; `inbound/{source}/stats` holds
//! the counters of verified deliveries; `inbound/{source}/refused/{code}`
//! counts the deliveries that failed verification (see [`count_refusal`]).

use std::collections::BTreeMap;

use hooksign::{DEFAULT_TOLERANCE_SECONDS, Keyring, Scheme, Verified};
use serde::{Deserialize, Serialize};

use crate::config::InboundSource;
use crate::model::new_uuid;
use crate::problem::Code;
use crate::store::{self, get_json, set_json, update_json, update_or_default};
use crate::{
    Config, OutboundRequest, OutboundResponse, Platform, Problem, Request, Response, SendFailure,
};

/// How much of the origin's answer the gateway relays: 1 MiB, as much as it
/// accepts; the rest is dropped unread.
pub const MAX_RELAYED_BYTES: usize = crate::MAX_BODY_BYTES;

/// A webhook id seen for a source, until when it is refused, and the
/// request that marked it.
#[derive(Serialize, Deserialize)]
struct Seen {
    until: i64,
    token: String,
}

/// The stored counters, with the requests already counted (so that a
/// count applied twice counts once).
#[derive(Default, Serialize, Deserialize)]
struct Counted {
    #[serde(flatten)]
    stats: Stats,
    #[serde(default)]
    recent: Vec<String>,
}

/// How many counted requests the stats remember.
const RECENT_COUNTS: usize = 64;

/// The counters of `GET /inbound/{source}/stats`.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    by_secret: BTreeMap<String, u64>,
}

/// `POST /inbound/{source}`: verify, refuse a replay, forward, relay.
pub async fn receive(
    platform: &impl Platform,
    config: &Config,
    name: &str,
    request: &Request,
) -> Result<Response, Problem> {
    let source = config.inbound_sources.get(name)?;
    let now = platform.now_millis().div_euclid(1000);
    let tolerance = source
        .tolerance_seconds
        .unwrap_or(DEFAULT_TOLERANCE_SECONDS);
    let token = new_uuid()?;
    let verified = verify(platform, source, name, request, now, tolerance)?;
    let until = verified.timestamp.saturating_add(i64::from(tolerance));
    if !mark(platform, name, &verified.id, until, now, &token)? {
        count(platform, name, &token, |stats| {
            reject(stats, "duplicate_delivery");
        })?;
        return Err(Problem::new(
            Code::DuplicateDelivery,
            "this webhook-id was already accepted within the tolerance window",
        ));
    }
    let answer = forward(platform, config, source, request, &verified).await;
    let accepted = matches!(&answer, Ok(response) if (200..300).contains(&response.status));
    if accepted {
        remember(platform, name, &verified.id, until, now)?;
    } else {
        unmark(platform, name, &verified.id, &token)?;
    }
    count(platform, name, &token, |stats| match &answer {
        _ if accepted => {
            stats.accepted += 1;
            *stats
                .by_secret
                .entry(verified.secret.to_string())
                .or_default() += 1;
        }
        Ok(_) => reject(stats, "origin_rejected"),
        Err(SendFailure::Timeout) => reject(stats, "origin_timeout"),
        Err(SendFailure::Failed(_)) => reject(stats, "origin_unreachable"),
    })?;
    relay(answer, config)
}

/// Verifies the delivery with the source's keyring; a failure is counted
/// (sampled past the first hundred) and becomes the problem of its library
/// error.
fn verify<'r>(
    platform: &impl Platform,
    source: &InboundSource,
    name: &str,
    request: &'r Request,
    now: i64,
    tolerance: u32,
) -> Result<Verified<'r>, Problem> {
    let keyring = Keyring::from_records_for(source.scheme, &source.secrets).map_err(|_| {
        Problem::new(
            Code::InvalidConfiguration,
            format!("inbound source {name} has an invalid secret"),
        )
    })?;
    keyring
        .verify(&request.headers, &request.body, now, tolerance)
        .or_else(|error| {
            let code = Code::of_verification(error);
            if code == Code::InvalidConfiguration {
                return Err(Problem::new(
                    code,
                    format!("inbound source {name} has a tolerance over 86400 seconds"),
                ));
            }
            count_refusal(platform, name, code)?;
            Err(Problem::new(code, error.to_string()).with_cause(error.code(), error.to_string()))
        })
}

/// Marks the id as being forwarded, so that of two copies arriving
/// together exactly one goes on; `false` if it is marked. The first request
/// to count the id's claim counter to 1 creates the mark (a counter is
/// atomic on every store; a compare-and-swap on an absent key is not on
/// Spin's SQLite store). An expired mark is taken over by compare-and-swap
/// on the existing record.
fn mark(
    platform: &impl Platform,
    name: &str,
    id: &str,
    until: i64,
    now: i64,
    token: &str,
) -> Result<bool, Problem> {
    let ours = Seen {
        until,
        token: token.to_string(),
    };
    if platform.increment(&claim_key(name, id), 1)? == 1 {
        set_json(platform, &seen_key(name, id), &ours)?;
        return Ok(true);
    }
    // Counted before: marked now, or being marked (a 409; the sender
    // retries), or expired, which one request takes over.
    update_json(platform, &seen_key(name, id), |seen: Option<Seen>| {
        Ok(match seen {
            Some(seen) if seen.token == token => (None, true),
            Some(seen) if seen.until < now => (
                Some(Seen {
                    until,
                    token: token.to_string(),
                }),
                true,
            ),
            _ => (None, false),
        })
    })
}

fn claim_key(name: &str, id: &str) -> String {
    format!("inbound/{name}/claims/{id}")
}

/// Removes this request's mark after the origin refused: a mark that
/// another request took meanwhile (after this one's expired) stays.
fn unmark(platform: &impl Platform, name: &str, id: &str, token: &str) -> Result<(), Problem> {
    let key = seen_key(name, id);
    if get_json::<Seen>(platform, &key)?.is_some_and(|seen| seen.token == token) {
        // The claim first: a copy counting 1 meanwhile owns the id anew.
        platform.delete(&claim_key(name, id))?;
        store::remove(platform, &key)?;
    }
    Ok(())
}

/// Marks the gateway's own forwards, the only requests `hooksign serve`
/// lets reach an internal origin (a tenant's endpoint at the same address
/// is checked like any other); the host removes it before sending.
/// Deliveries carry a fixed set of headers, so no tenant can set it.
pub const GATEWAY_FORWARD_HEADER: &str = "hooksign-gateway-forward";

/// A provider's headers that say what a delivery is (its event type), which
/// the origin needs as much as the body.
fn passed_on(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::StandardWebhooks | Scheme::Stripe | Scheme::Slack => &[],
        Scheme::Github => &["x-github-event", "x-github-hook-id"],
        Scheme::Shopify => &["x-shopify-topic", "x-shopify-shop-domain"],
    }
}

/// Sends the verified delivery to the source's origin.
async fn forward(
    platform: &impl Platform,
    config: &Config,
    source: &InboundSource,
    request: &Request,
    verified: &Verified<'_>,
) -> Result<OutboundResponse, SendFailure> {
    let mut headers = vec![
        ("webhook-id".to_string(), verified.id.to_string()),
        (
            "webhook-timestamp".to_string(),
            verified.timestamp.to_string(),
        ),
        (
            "hooksign-verified-secret".to_string(),
            verified.secret.to_string(),
        ),
        // Only this request may reach an operator's internal origin.
        (GATEWAY_FORWARD_HEADER.to_string(), "1".to_string()),
    ];
    if let Some(content_type) = request.header("content-type") {
        headers.push(("content-type".into(), content_type.into()));
    }
    for name in passed_on(source.scheme) {
        if let Some(value) = request.header(name) {
            headers.push(((*name).into(), value.into()));
        }
    }
    let forwarded = OutboundRequest::post(
        source.forward_url.clone(),
        headers,
        request.body.clone(),
        MAX_RELAYED_BYTES,
    );
    platform.send(forwarded, config.delivery_timeout_ms).await
}

/// The origin's answer (status, body and content type), or the problem of
/// its failure.
fn relay(
    answer: Result<OutboundResponse, SendFailure>,
    config: &Config,
) -> Result<Response, Problem> {
    match answer {
        Ok(response) => Ok(Response::new(
            response.status,
            response
                .headers
                .into_iter()
                .filter(|(header, _)| header.eq_ignore_ascii_case("content-type"))
                .collect(),
            response.body,
        )),
        Err(SendFailure::Timeout) => {
            let detail = format!(
                "the origin did not answer within {} ms",
                config.delivery_timeout_ms
            );
            Err(Problem::new(Code::OriginTimeout, detail.clone()).with_cause("timeout", detail))
        }
        Err(SendFailure::Failed(reason)) => Err(Problem::new(
            Code::OriginUnreachable,
            format!("the delivery verified but could not be forwarded: {reason}"),
        )
        .with_cause("connection_failed", reason)),
    }
}

/// `GET /inbound/{source}/stats`.
pub fn stats(platform: &impl Platform, config: &Config, name: &str) -> Result<Response, Problem> {
    config.inbound_sources.get(name)?;
    let mut counted: Counted = get_json(platform, &stats_key(name))?.unwrap_or_default();
    for code in refusals() {
        let refused = store::read_counter(platform, &refusal_key(name, code))?;
        if refused > 0 {
            *counted
                .stats
                .rejected
                .entry(code.as_str().into())
                .or_default() += refused.unsigned_abs();
        }
    }
    Ok(Response::json(200, &counted.stats))
}

/// The codes a failed verification can have (the others are the source's
/// configuration, never counted).
fn refusals() -> impl Iterator<Item = Code> {
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

fn refusal_key(name: &str, code: Code) -> String {
    format!("inbound/{name}/refused/{}", code.as_str())
}

/// Counts a delivery that failed verification, by an atomic count of its
/// own (never a compare-and-swap that verified deliveries wait on): each
/// one up to [`EXACT_REFUSALS`], then one in [`REFUSAL_SAMPLE`], so that a
/// flood of bad signatures costs a store write for few of its requests.
fn count_refusal(platform: &impl Platform, name: &str, code: Code) -> Result<(), Problem> {
    let key = refusal_key(name, code);
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

fn stats_key(name: &str) -> String {
    format!("inbound/{name}/stats")
}

fn reject(stats: &mut Stats, code: &str) {
    *stats.rejected.entry(code.to_string()).or_default() += 1;
}

/// Counts this request (`token`) once, however often the count is applied.
fn count(
    platform: &impl Platform,
    name: &str,
    token: &str,
    mut update: impl FnMut(&mut Stats),
) -> Result<(), Problem> {
    update_or_default(platform, &stats_key(name), |counted: &mut Counted| {
        if counted.recent.iter().any(|seen| seen == token) {
            return;
        }
        update(&mut counted.stats);
        counted.recent.push(token.to_string());
        let excess = counted.recent.len().saturating_sub(RECENT_COUNTS);
        counted.recent.drain(..excess);
    })
}

/// The width of an expiry bucket, seconds.
const BUCKET_SECONDS: i64 = 10;

/// Lists an accepted id in the bucket of its mark's expiry, and prunes the
/// buckets whose marks have all expired.
fn remember(
    platform: &impl Platform,
    name: &str,
    id: &str,
    until: i64,
    now: i64,
) -> Result<(), Problem> {
    let directory_key = format!("inbound/{name}/expiring");
    let bucket = until.div_euclid(BUCKET_SECONDS);
    // The bucket is listed before it is written, so none goes unpruned.
    let buckets = update_json(platform, &directory_key, |buckets: Option<Vec<i64>>| {
        let mut buckets = buckets.unwrap_or_default();
        if buckets.contains(&bucket) {
            return Ok((None, buckets));
        }
        buckets.push(bucket);
        Ok((Some(buckets.clone()), buckets))
    })?;
    update_or_default(
        platform,
        &bucket_key(name, bucket, shard_of(id)),
        |ids: &mut Vec<String>| {
            if !ids.iter().any(|listed| listed == id) {
                ids.push(id.to_string());
            }
        },
    )?;
    for expired in buckets
        .into_iter()
        .filter(|bucket| (bucket + 1) * BUCKET_SECONDS <= now)
    {
        prune(platform, name, &directory_key, expired, now)?;
    }
    Ok(())
}

fn seen_key(name: &str, id: &str) -> String {
    format!("inbound/{name}/seen/{id}")
}

/// How many lists one bucket's ids are spread over: each delivery rewrites
/// one list, so a bucket's list holds a thirty-second of the ids accepted in
/// its ten seconds, and deliveries at once mostly touch different keys.
const BUCKET_SHARDS: u8 = 32;

fn shard_of(id: &str) -> u8 {
    use sha2::Digest as _;
    sha2::Sha256::digest(id.as_bytes())[0] % BUCKET_SHARDS
}

fn bucket_key(name: &str, bucket: i64, shard: u8) -> String {
    format!("inbound/{name}/expiring/{bucket}/{shard}")
}

/// A bucket's one list, as stored before the shards.
fn unsharded_bucket_key(name: &str, bucket: i64) -> String {
    format!("inbound/{name}/expiring/{bucket}")
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
    let lists = (0..BUCKET_SHARDS)
        .map(|shard| bucket_key(name, bucket, shard))
        .chain([unsharded_bucket_key(name, bucket)]);
    for list in lists {
        let ids: Vec<String> = get_json(platform, &list)?.unwrap_or_default();
        for id in ids {
            let seen_key = seen_key(name, &id);
            if get_json::<Seen>(platform, &seen_key)?.is_some_and(|seen| seen.until < now) {
                store::remove(platform, &seen_key)?;
                platform.delete(&claim_key(name, &id))?;
            }
        }
        store::remove(platform, &list)?;
    }
    update_or_default(platform, directory_key, |buckets: &mut Vec<i64>| {
        buckets.retain(|listed| *listed != bucket);
    })
}
