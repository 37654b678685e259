//! The service's metrics (`GET /metrics`, docs/API.md): counts kept in the
//! store by atomic increments, so that every node reports the whole
//! service, and rendered in the Prometheus text format. Nothing is counted
//! unless the `metrics_token` variable is set, so that a service without
//! metrics pays no store call for them; a count that fails is dropped,
//! never the request's answer.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::domain::inbound;
use crate::foundation::credentials::{BearerToken, ConfiguredToken};
use crate::foundation::problem::Problem;
use crate::platform::Platform;
use crate::store::{self, get_json, keys, set_json};

/// The upper bounds of the request latency histogram's buckets, in
/// milliseconds (the last bucket, `+Inf`, is implied).
pub const LATENCY_BUCKETS_MS: [u64; 10] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Answered with a status outside 2xx, by its class (`3`, `4`, `5`;
    /// anything else is `0`).
    Failed(u16),
    TimedOut,
    ConnectionFailed,
    /// The host's outbound policy refused the target.
    Refused,
}

impl AttemptOutcome {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed(3) => "failed_3xx",
            AttemptOutcome::Failed(4) => "failed_4xx",
            AttemptOutcome::Failed(5) => "failed_5xx",
            AttemptOutcome::Failed(_) => "failed_other",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::ConnectionFailed => "connection_failed",
            AttemptOutcome::Refused => "refused",
        }
    }

    const ALL: [AttemptOutcome; 8] = [
        AttemptOutcome::Succeeded,
        AttemptOutcome::Failed(3),
        AttemptOutcome::Failed(4),
        AttemptOutcome::Failed(5),
        AttemptOutcome::Failed(0),
        AttemptOutcome::TimedOut,
        AttemptOutcome::ConnectionFailed,
        AttemptOutcome::Refused,
    ];
}

/// Whether metrics are on: `metrics_token` is set (read as every token
/// variable is, [`BearerToken::configured`]).
pub fn enabled(platform: &impl Platform) -> bool {
    let token = platform.variable("metrics_token");
    BearerToken::configured(token.as_deref()) != ConfiguredToken::Unset
}

/// Adds `delta` to a count, when metrics are on.
fn add(platform: &impl Platform, name: &[&str], delta: i64) {
    if delta != 0 && enabled(platform) {
        let _ = platform.increment(&keys::metric(name), delta);
    }
}

/// An accepted event.
pub fn count_event(platform: &impl Platform) {
    add(platform, &["events_accepted"], 1);
}

/// An attempt, by its outcome.
pub fn count_attempt(platform: &impl Platform, outcome: AttemptOutcome) {
    add(platform, &["attempts", outcome.label()], 1);
}

/// A delivery that failed its last slot.
pub fn count_failed_delivery(platform: &impl Platform) {
    add(platform, &["deliveries_failed"], 1);
}

/// Deliveries held (`delta` > 0) or released from a held list.
pub fn count_held(platform: &impl Platform, delta: i64) {
    add(platform, &["deliveries_held"], delta);
}

/// One request: its route (the table's pattern), how long it took, and
/// the store calls it made and how many failed.
pub fn count_request(platform: &impl Platform, route: &str, millis: u64, calls: u64, errors: u64) {
    if !enabled(platform) {
        return;
    }
    let bucket = LATENCY_BUCKETS_MS
        .iter()
        .position(|bound| millis <= *bound)
        .map_or("inf".to_string(), |at| LATENCY_BUCKETS_MS[at].to_string());
    let _ = platform.increment(&keys::metric(&["latency", route, &bucket]), 1);
    let _ = platform.increment(&keys::metric(&["latency", route, "sum_ms"]), millis as i64);
    count_store_calls(platform, calls, errors);
}

/// Store calls made outside a request (a follow-up, a dispatcher pass).
pub fn count_store_calls(platform: &impl Platform, calls: u64, errors: u64) {
    add(platform, &["store_calls"], calls as i64);
    add(platform, &["store_errors"], errors as i64);
}

/// What the last dispatcher pass found due, on any node.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LastPass {
    due: u64,
    /// How long the oldest due delivery had waited past its time, ms.
    lag_ms: i64,
}

/// Notes a dispatcher pass: the deliveries it found due, and how late the
/// oldest of them was.
pub fn note_pass(platform: &impl Platform, due: u64, lag_ms: i64) {
    if enabled(platform) {
        let pass = LastPass {
            due,
            lag_ms: lag_ms.max(0),
        };
        let _ = set_json(platform, &keys::metric(&["last_pass"]), &pass);
    }
}

/// A gateway source to report: its name and how many secrets it has.
pub struct Source<'a> {
    pub name: &'a str,
    pub secrets: usize,
}

/// The counters shown as they are counted: name, help, count's key.
const COUNTERS: [(&str, &str, &str); 4] = [
    (
        "hooksign_events_accepted_total",
        "Events accepted (POST /events).",
        "events_accepted",
    ),
    (
        "hooksign_deliveries_failed_total",
        "Deliveries that failed their last slot.",
        "deliveries_failed",
    ),
    (
        "hooksign_store_calls_total",
        "Key-value store calls.",
        "store_calls",
    ),
    (
        "hooksign_store_errors_total",
        "Key-value store calls that failed.",
        "store_errors",
    ),
];

/// The scrape: every metric in the Prometheus text format (version 0.0.4).
pub fn render(
    platform: &impl Platform,
    routes: &[&str],
    sources: &[Source<'_>],
) -> Result<String, Problem> {
    let read = |name: &[&str]| store::read_counter(platform, &keys::metric(name));
    let mut text = String::new();
    for (name, help, key) in COUNTERS {
        family(&mut text, name, "counter", help);
        sample(&mut text, name, &[], read(&[key])?);
    }
    let name = "hooksign_attempts_total";
    family(
        &mut text,
        name,
        "counter",
        "Delivery attempts and test sends, by outcome.",
    );
    for outcome in AttemptOutcome::ALL {
        let count = read(&["attempts", outcome.label()])?;
        sample(&mut text, name, &[("outcome", outcome.label())], count);
    }
    let name = "hooksign_deliveries_held";
    family(
        &mut text,
        name,
        "gauge",
        "Deliveries held for paused endpoints.",
    );
    sample(&mut text, name, &[], read(&["deliveries_held"])?.max(0));
    dispatch_pass(&mut text, platform)?;
    gateway(&mut text, platform, sources)?;
    latency(&mut text, platform, routes)?;
    Ok(text)
}

fn dispatch_pass(text: &mut String, platform: &impl Platform) -> Result<(), Problem> {
    let pass: LastPass = get_json(platform, &keys::metric(&["last_pass"]))?.unwrap_or_default();
    let name = "hooksign_deliveries_due";
    let help = "Deliveries due, as the last dispatcher pass found them (at most 512).";
    family(text, name, "gauge", help);
    sample(text, name, &[], pass.due as i64);
    let name = "hooksign_dispatch_lag_seconds";
    let help = "How late the oldest due delivery was at the last dispatcher pass.";
    family(text, name, "gauge", help);
    sample_f(text, name, &[], pass.lag_ms as f64 / 1000.0);
    Ok(())
}

fn gateway(
    text: &mut String,
    platform: &impl Platform,
    sources: &[Source<'_>],
) -> Result<(), Problem> {
    let name = "hooksign_gateway_deliveries_total";
    family(
        text,
        name,
        "counter",
        "Deliveries through the receiver gateway, accepted or refused by code.",
    );
    for source in sources {
        let stats = inbound::stats(platform, source.name, source.secrets)?;
        let accepted = i64::try_from(stats.accepted).unwrap_or(i64::MAX);
        sample(
            text,
            name,
            &[("source", source.name), ("outcome", "accepted")],
            accepted,
        );
        for (code, count) in &stats.rejected {
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            let labels = [
                ("source", source.name),
                ("outcome", "refused"),
                ("code", code.as_str()),
            ];
            sample(text, name, &labels, count);
        }
    }
    Ok(())
}

fn latency(text: &mut String, platform: &impl Platform, routes: &[&str]) -> Result<(), Problem> {
    let name = "hooksign_request_duration_seconds";
    family(
        text,
        name,
        "histogram",
        "Request latency by route, from routing to the answer.",
    );
    for route in routes {
        let read =
            |part: &str| store::read_counter(platform, &keys::metric(&["latency", route, part]));
        let mut cumulative = 0;
        let mut buckets = Vec::new();
        for bound in LATENCY_BUCKETS_MS {
            cumulative += read(&bound.to_string())?;
            buckets.push((format!("{}", bound as f64 / 1000.0), cumulative));
        }
        cumulative += read("inf")?;
        if cumulative == 0 {
            continue;
        }
        buckets.push(("+Inf".to_string(), cumulative));
        for (le, count) in &buckets {
            sample(
                text,
                &format!("{name}_bucket"),
                &[("route", route), ("le", le)],
                *count,
            );
        }
        sample_f(
            text,
            &format!("{name}_sum"),
            &[("route", route)],
            read("sum_ms")? as f64 / 1000.0,
        );
        sample(
            text,
            &format!("{name}_count"),
            &[("route", route)],
            cumulative,
        );
    }
    Ok(())
}

fn family(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(text: &mut String, name: &str, labels: &[(&str, &str)], value: i64) {
    sample_f(text, name, labels, value as f64);
}

fn sample_f(text: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let _ = write!(text, "{name}");
    if !labels.is_empty() {
        let pairs: Vec<String> = labels
            .iter()
            .map(|(label, value)| format!("{label}=\"{}\"", escape(value)))
            .collect();
        let _ = write!(text, "{{{}}}", pairs.join(","));
    }
    let _ = writeln!(text, " {value}");
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
