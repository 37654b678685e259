//! The receiver gateway: `POST /inbound/{source}` verifies a delivery with
//! the source's keyring (SPEC.md section 3, through the hooksign library),
//! refuses replays, and forwards what verified to the origin.
//!
//! Keys: `inbound/{source}/seen/{webhook-id}` marks an id as being forwarded
//! or accepted until its timestamp plus the tolerance (set by
//! compare-and-swap, so of two copies arriving together one goes on);
//! `inbound/{source}/expiring/{n}` lists the accepted ids whose marks expire
//! in the 10 seconds from `10 n`, and `inbound/{source}/expiring` lists those
//! `n`, so that expired marks are pruned a bucket at a time and no key grows
//! with the accept rate times the tolerance; `inbound/{source}/stats` holds
//! the counters.

use std::collections::BTreeMap;

use hooksign::{DEFAULT_TOLERANCE_SECONDS, Keyring, SecretRecord};
use serde::{Deserialize, Serialize};

use crate::store::{get_json, update_json, update_or_default};
use crate::{Config, OutboundRequest, Platform, Problem, Request, Response, SendFailure};

/// One configured source (the `inbound_sources` variable).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Source {
    secrets: Vec<SecretRecord>,
    tolerance_seconds: Option<u32>,
    forward_url: String,
}

/// A webhook id seen for a source, and until when it is refused.
#[derive(Serialize, Deserialize)]
struct Seen {
    until: i64,
}

/// The counters of `GET /inbound/{source}/stats`.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    by_secret: BTreeMap<String, u64>,
}

fn invalid_configuration(detail: String) -> Problem {
    Problem::new(
        500,
        "invalid_configuration",
        "Invalid configuration",
        detail,
    )
}

/// The configured source, or 404 for an unknown one.
fn source(config: &Config, name: &str) -> Result<Source, Problem> {
    let text = config.inbound_sources.as_deref().unwrap_or("{}");
    let mut sources: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| {
            invalid_configuration("the variable inbound_sources is not a JSON object".into())
        })?;
    let source = sources
        .remove(name)
        .ok_or_else(|| Problem::not_found(format!("no inbound source {name}")))?;
    serde_json::from_value(source).map_err(|_| {
        invalid_configuration(format!(
            "inbound source {name} needs secrets, forwardUrl and optionally toleranceSeconds"
        ))
    })
}

/// The origins the gateway forwards to: the `forwardUrl` of every source of
/// the `inbound_sources` variable that the gateway can use.
pub fn forward_urls(inbound_sources: &str) -> Vec<String> {
    serde_json::from_str::<BTreeMap<String, serde_json::Value>>(inbound_sources)
        .map(|sources| {
            sources
                .into_values()
                .filter_map(|source| serde_json::from_value::<Source>(source).ok())
                .map(|source| source.forward_url)
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /inbound/{source}`.
pub async fn receive(
    platform: &impl Platform,
    config: &Config,
    name: &str,
    request: &Request,
    now: i64,
) -> Result<Response, Problem> {
    let source = source(config, name)?;
    let keyring = Keyring::from_records(&source.secrets).map_err(|_| {
        invalid_configuration(format!("inbound source {name} has an invalid secret"))
    })?;
    let tolerance = source
        .tolerance_seconds
        .unwrap_or(DEFAULT_TOLERANCE_SECONDS);
    let verified = match keyring.verify(&request.headers, &request.body, now, tolerance) {
        Ok(verified) => verified,
        Err(hooksign::Error::InvalidInput) => {
            return Err(invalid_configuration(format!(
                "inbound source {name} has a tolerance over 86400 seconds"
            )));
        }
        Err(error) => {
            let problem = verification_problem(error);
            count(platform, name, |stats| reject(stats, problem.code()))?;
            return Err(problem);
        }
    };

    let seen_key = seen_key(name, &verified.id);
    let until = verified.timestamp.saturating_add(i64::from(tolerance));
    // Marked before forwarding, in one compare-and-swap, so that of two
    // copies arriving together exactly one goes on; unmarked again unless
    // the origin accepts.
    let marked = update_json(platform, &seen_key, |seen: Option<Seen>| {
        Ok(match seen {
            Some(seen) if seen.until >= now => (None, false),
            _ => (Some(Seen { until }), true),
        })
    })?;
    if !marked {
        count(platform, name, |stats| reject(stats, "duplicate_delivery"))?;
        return Err(Problem::new(
            409,
            "duplicate_delivery",
            "Duplicate delivery",
            "this webhook-id was already accepted within the tolerance window",
        ));
    }

    let mut headers = vec![
        ("webhook-id".to_string(), verified.id.clone()),
        (
            "webhook-timestamp".to_string(),
            verified.timestamp.to_string(),
        ),
        (
            "hooksign-verified-secret".to_string(),
            verified.secret.to_string(),
        ),
    ];
    if let Some(content_type) = request.header("content-type") {
        headers.push(("content-type".into(), content_type.into()));
    }
    let forwarded = OutboundRequest {
        url: source.forward_url,
        headers,
        body: request.body.clone(),
    };
    let answer = platform.send(forwarded, config.delivery_timeout_ms).await;
    let accepted = matches!(&answer, Ok(response) if (200..300).contains(&response.status));
    if accepted {
        remember(platform, name, &verified.id, until, now)?;
    } else {
        platform.delete(&seen_key)?;
    }
    count(platform, name, |stats| match &answer {
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
    match answer {
        Ok(response) => {
            let headers = response
                .headers
                .into_iter()
                .filter(|(header, _)| header.eq_ignore_ascii_case("content-type"))
                .collect();
            Ok(Response {
                status: response.status,
                headers,
                body: response.body,
            })
        }
        Err(SendFailure::Timeout) => Err(Problem::new(
            504,
            "origin_timeout",
            "Origin timeout",
            format!(
                "the origin did not answer within {} ms",
                config.delivery_timeout_ms
            ),
        )),
        Err(SendFailure::Failed(reason)) => Err(Problem::new(
            502,
            "origin_unreachable",
            "Origin unreachable",
            format!("the delivery verified but could not be forwarded: {reason}"),
        )),
    }
}

/// `GET /inbound/{source}/stats`.
pub fn stats(platform: &impl Platform, config: &Config, name: &str) -> Result<Response, Problem> {
    source(config, name)?;
    let stats: Stats = get_json(platform, &stats_key(name))?.unwrap_or_default();
    Ok(Response::json(200, &stats))
}

/// 400 for malformed headers, 401 for everything that failed to verify.
fn verification_problem(error: hooksign::Error) -> Problem {
    let (status, code, title) = match error {
        hooksign::Error::MissingHeader => (400, "missing_header", "Missing header"),
        hooksign::Error::InvalidHeader => (400, "invalid_header", "Invalid header"),
        hooksign::Error::TimestampTooOld => (401, "timestamp_too_old", "Timestamp too old"),
        hooksign::Error::TimestampTooNew => (401, "timestamp_too_new", "Timestamp too new"),
        hooksign::Error::NoUsableSecret => (401, "no_usable_secret", "No usable secret"),
        _ => (401, "no_matching_signature", "No matching signature"),
    };
    Problem::new(status, code, title, error.to_string())
}

fn stats_key(name: &str) -> String {
    format!("inbound/{name}/stats")
}

fn reject(stats: &mut Stats, code: &str) {
    *stats.rejected.entry(code.to_string()).or_default() += 1;
}

fn count(
    platform: &impl Platform,
    name: &str,
    update: impl FnMut(&mut Stats),
) -> Result<(), Problem> {
    update_or_default(platform, &stats_key(name), update)
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
        &bucket_key(name, bucket),
        |ids: &mut Vec<String>| {
            ids.push(id.to_string());
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

fn bucket_key(name: &str, bucket: i64) -> String {
    format!("inbound/{name}/expiring/{bucket}")
}

/// Removes an expired bucket's marks (unless an id was accepted again
/// since, with a later mark), then the bucket.
fn prune(
    platform: &impl Platform,
    name: &str,
    directory_key: &str,
    bucket: i64,
    now: i64,
) -> Result<(), Problem> {
    let ids: Vec<String> = get_json(platform, &bucket_key(name, bucket))?.unwrap_or_default();
    for id in ids {
        let seen_key = seen_key(name, &id);
        if get_json::<Seen>(platform, &seen_key)?.is_some_and(|seen| seen.until < now) {
            platform.delete(&seen_key)?;
        }
    }
    platform.delete(&bucket_key(name, bucket))?;
    update_or_default(platform, directory_key, |buckets: &mut Vec<i64>| {
        buckets.retain(|listed| *listed != bucket);
    })
}
