//! Endpoints: the record (one key holds all of it, keyring included, so
//! every change to it is one atomic write), its rules (subscriptions,
//! pausing, the effect of an attempt) and its keys.
//!
//! `org/{org}/endpoints` lists the organisation's endpoints, newest first:
//! each id with the event types it may subscribe to, so that an event
//! loads only the endpoints that may want it. Those types are a superset
//! of the endpoint's: a change of event types widens the entry before the
//! endpoint is written and never narrows it, so no failure or race can hide
//! a subscriber (an event re-checks each endpoint it loads). Creation
//! writes the endpoint before listing it (a failure leaves an unlisted
//! record that nobody was told about); deletion unlists first (a failure
//! leaves the endpoint whole and listed, or unlisted and unreachable).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::attempt::{self, Attempt};
use crate::foundation::encoding::rfc3339;
use crate::foundation::problem::{Code, Problem};
use crate::foundation::seal::{StoredHeaders, StoredSecrets};
use crate::ids::{EndpointId, OrgId};
use crate::platform::Platform;
use crate::store::keys::{self, OrgList};
use crate::store::{
    self, get_json, get_many_json, get_org_list, read_counter, remember, set_json, update_json,
    update_org_list,
};

/// How many event types an endpoint may subscribe to.
pub const MAX_EVENT_TYPES: usize = 100;

/// The longest event type name, in characters.
pub const MAX_EVENT_TYPE_CHARS: usize = 256;

/// The highest `rateLimitPerSecond`.
pub const MAX_RATE_LIMIT_PER_SECOND: i64 = 10_000;

/// How many custom headers an endpoint may have, sensitive ones included.
pub const MAX_CUSTOM_HEADERS: usize = 20;

/// The longest custom header name and value, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 256;
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// Header names no endpoint may set: the signature's and the service's
/// own, and those that frame the exchange.
const RESERVED_HEADER_PREFIXES: [&str; 4] = ["webhook-", "svix-", "hooksign-", "content-"];
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "expect",
];

/// Why `name` (lowercase) cannot be a custom header's name, if it cannot:
/// an RFC 9110 token, and none of the reserved names.
pub fn refused_header_name(name: &str) -> Option<&'static str> {
    let token = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.is_empty() || name.len() > MAX_HEADER_NAME_BYTES || !name.bytes().all(token) {
        return Some("is not a header name (1 to 256 letters, digits and !#$%&'*+-.^_`|~)");
    }
    if RESERVED_HEADERS.contains(&name)
        || RESERVED_HEADER_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
    {
        return Some(
            "is set by the service (webhook-*, svix-*, hooksign-*, content-*, host, user-agent, transfer-encoding, connection and the other hop-by-hop headers)",
        );
    }
    None
}

/// Why `value` cannot be a custom header's value, if it cannot: visible
/// ASCII and inner spaces or tabs, at most 4096 bytes (no line breaks, so
/// no value can add a header).
pub fn refused_header_value(value: &str) -> Option<&'static str> {
    let allowed = |byte: u8| byte == b' ' || byte == b'\t' || (0x21..0x7f).contains(&byte);
    let trimmed = value.trim_matches([' ', '\t']) == value;
    if value.len() > MAX_HEADER_VALUE_BYTES || !value.bytes().all(allowed) || !trimmed {
        return Some(
            "must be at most 4096 bytes of visible ASCII, with spaces or tabs only inside",
        );
    }
    None
}

/// How many recorded attempt ids an endpoint remembers, so that recording
/// one twice counts it once.
const RECENT_ATTEMPTS: usize = 32;

/// Whether a list of event types takes `event_type`: an empty list takes
/// every type.
fn takes(event_types: &[String], event_type: &str) -> bool {
    event_types.iter().any(|wanted| wanted == event_type)
        || (event_types.is_empty() && !event_type.starts_with(OPERATIONAL_PREFIX))
}

/// The prefix of the service's own (operational) event types, which an
/// endpoint takes only by listing them.
pub const OPERATIONAL_PREFIX: &str = "hooksign.";

/// An endpoint as stored: one key-value entry holds all of it, keyring
/// included, so that every change to it is a single atomic write.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRecord {
    pub id: EndpointId,
    pub org: OrgId,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub paused: bool,
    pub paused_reason: Option<String>,
    #[serde(rename = "pausedAt")]
    pub paused_at_s: Option<i64>,
    pub consecutive_failures: u32,
    #[serde(rename = "lastSuccessAt")]
    pub last_success_at_s: Option<i64>,
    #[serde(rename = "lastFailureAt")]
    pub last_failure_at_s: Option<i64>,
    #[serde(rename = "createdAt")]
    pub created_at_s: i64,
    #[serde(rename = "updatedAt")]
    pub updated_at_s: i64,
    /// The signing keyring, current secret first, sealed ([`crate::foundation::seal`]).
    pub secrets: StoredSecrets,
    /// What its deliveries are signed with (`v1` when stored before there
    /// was a choice).
    #[serde(default)]
    pub signature: SignatureKind,
    /// The current Ed25519 key's public key, `whpk_` (`v1a` endpoints):
    /// not secret, so shown with the endpoint and kept outside the seal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_public_key: Option<String>,
    /// Custom headers sent with every attempt, by lowercase name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The names of its sensitive custom headers, whose values are sealed
    /// in `sensitive_headers` and never shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_header_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive_headers: Option<StoredHeaders>,
    /// Sends to it per second, across every node (a token bucket whose
    /// burst is as much); none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// How many attempts were recorded before the endpoint's attempt
    /// counter ([`keys::attempt_count`]) numbered them; the counter's
    /// attempts are numbered from here on ([`attempts_recorded`]).
    pub attempt_count: u64,
    /// The ids and numbers of the newest attempts that changed the record,
    /// so that one recorded twice changes it once: kept only where swaps
    /// are confirmed.
    #[serde(default)]
    pub recent_attempts: Vec<(String, u64)>,
}

impl EndpointRecord {
    /// Whether an event of this type goes to the endpoint.
    pub fn subscribed(&self, event_type: &str) -> bool {
        takes(&self.event_types, event_type)
    }

    /// Pauses the endpoint for `reason`, unless it is paused already.
    pub fn pause(&mut self, reason: String, now: i64) {
        if !self.paused {
            self.paused = true;
            self.paused_reason = Some(reason);
            self.paused_at_s = Some(now);
            self.updated_at_s = now;
        }
    }

    /// Unpauses the endpoint and forgets its failures.
    pub fn unpause(&mut self) {
        self.paused = false;
        self.paused_reason = None;
        self.paused_at_s = None;
        self.consecutive_failures = 0;
    }

    /// The effect of an event's attempt: a success resets the failure
    /// count; a failure counts, and pauses the endpoint at `pause_after`
    /// failures in a row, or at once on 410 Gone.
    pub fn apply_outcome(
        &mut self,
        succeeded: bool,
        status: Option<u16>,
        now: i64,
        pause_after: u32,
    ) {
        if succeeded {
            self.last_success_at_s = Some(now);
            self.consecutive_failures = 0;
            return;
        }
        self.last_failure_at_s = Some(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if status == Some(410) {
            self.pause("the endpoint answered 410 Gone".into(), now);
        } else if self.consecutive_failures >= pause_after {
            let reason = format!(
                "{} consecutive deliveries failed",
                self.consecutive_failures
            );
            self.pause(reason, now);
        }
    }

    /// The public view (docs/API.md, Endpoint object): no secrets.
    pub fn view(&self) -> EndpointView<'_> {
        EndpointView {
            id: &self.id,
            url: &self.url,
            description: &self.description,
            event_types: &self.event_types,
            paused: self.paused,
            paused_reason: self.paused_reason.as_deref(),
            paused_at: self.paused_at_s.map(rfc3339),
            consecutive_failures: self.consecutive_failures,
            last_success_at: self.last_success_at_s.map(rfc3339),
            last_failure_at: self.last_failure_at_s.map(rfc3339),
            created_at: rfc3339(self.created_at_s),
            updated_at: rfc3339(self.updated_at_s),
            signature: self.signature,
            signing_public_key: self.signing_public_key.as_deref(),
            headers: &self.headers,
            sensitive_headers: &self.sensitive_header_names,
            rate_limit_per_second: self.rate_limit_per_second,
        }
    }
}

/// The endpoint object of the API.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView<'a> {
    id: &'a EndpointId,
    url: &'a str,
    description: &'a str,
    event_types: &'a [String],
    paused: bool,
    paused_reason: Option<&'a str>,
    paused_at: Option<String>,
    consecutive_failures: u32,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
    created_at: String,
    updated_at: String,
    signature: SignatureKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_public_key: Option<&'a str>,
    headers: &'a BTreeMap<String, String>,
    sensitive_headers: &'a [String],
    rate_limit_per_second: Option<u32>,
}

/// An endpoint's signature: `v1` (HMAC-SHA256 with a shared `whsec_`
/// secret) or `v1a` (Ed25519: the receiver holds only the public key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureKind {
    /// HMAC-SHA256.
    #[default]
    V1,
    /// Ed25519.
    V1a,
}

impl SignatureKind {
    /// The kind named in a request body.
    pub fn from_name(name: &str) -> Option<SignatureKind> {
        match name {
            "v1" => Some(SignatureKind::V1),
            "v1a" => Some(SignatureKind::V1a),
            _ => None,
        }
    }
}

/// An endpoint in its organisation's index: its id, event types that
/// include every type it subscribes to (none: every type), and its URL's
/// host, counted against `max_endpoints_per_host` (entries of before have
/// none until their URL changes).
#[derive(Clone, Serialize, Deserialize)]
struct Listed {
    id: EndpointId,
    #[serde(rename = "eventTypes")]
    event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
}

/// The host a target URL sends to, as the index counts it.
fn target_host(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}

/// 409 `quota_exceeded`: the organisation has `max` endpoints on `host`.
fn host_full(host: &str, max: usize) -> Problem {
    Problem::new(
        Code::QuotaExceeded,
        format!(
            "the organisation has {max} endpoints on {host}, as many as max_endpoints_per_host allows"
        ),
    )
}

/// Entries on `host` other than `id`.
fn on_host(listed: &[Listed], host: Option<&str>, id: &EndpointId) -> usize {
    listed
        .iter()
        .filter(|entry| {
            entry.id != *id && host.is_some_and(|host| entry.host.as_deref() == Some(host))
        })
        .count()
}

impl Listed {
    fn may_want(&self, event_type: &str) -> bool {
        takes(&self.event_types, event_type)
    }
}

fn index(platform: &impl Platform, org: &OrgId) -> Result<Vec<Listed>, Problem> {
    get_org_list(platform, OrgList::Endpoints, org)
}

/// Changes the organisation's list.
fn update_index(
    platform: &impl Platform,
    org: &OrgId,
    change: impl FnMut(&mut Vec<Listed>),
) -> Result<(), Problem> {
    update_org_list(platform, OrgList::Endpoints, org, change)
}

/// The organisation's endpoint ids, newest first.
pub fn list_ids(platform: &impl Platform, org: &OrgId) -> Result<Vec<EndpointId>, Problem> {
    Ok(index(platform, org)?
        .iter()
        .map(|listed| listed.id.clone())
        .collect())
}

/// The ids of the organisation's endpoints that may subscribe to
/// `event_type` (a superset: load each and check).
pub fn may_want(
    platform: &impl Platform,
    org: &OrgId,
    event_type: &str,
) -> Result<Vec<EndpointId>, Problem> {
    Ok(index(platform, org)?
        .iter()
        .filter(|listed| listed.may_want(event_type))
        .map(|listed| listed.id.clone())
        .collect())
}

/// Widens an endpoint's index entry to include `event_types` (empty: every
/// type), before the endpoint itself is changed to them. An entry is never
/// narrowed (a narrowing racing another patch could hide a subscriber), so
/// one that would list more types than an endpoint may have becomes "every
/// type": an event then loads the endpoint and checks it.
pub fn widen_subscriptions(
    platform: &impl Platform,
    org: &OrgId,
    id: &EndpointId,
    event_types: &[String],
) -> Result<(), Problem> {
    update_index(platform, org, |listed: &mut Vec<Listed>| {
        for Listed {
            id: listed_id,
            event_types: types,
            ..
        } in listed
        {
            if listed_id == id && !types.is_empty() {
                if event_types.is_empty() {
                    types.clear();
                } else {
                    for wanted in event_types {
                        if !types.contains(wanted) {
                            types.push(wanted.clone());
                        }
                    }
                    // Past what one endpoint may hold, "every type" is the
                    // superset: the entry never grows with the patches.
                    if types.len() > MAX_EVENT_TYPES {
                        types.clear();
                    }
                }
            }
        }
    })
}

/// An endpoint of this organisation, if it exists.
pub fn find(
    platform: &impl Platform,
    org: &OrgId,
    id: &EndpointId,
) -> Result<Option<EndpointRecord>, Problem> {
    Ok(get_json::<EndpointRecord>(platform, &keys::endpoint(id))?
        .filter(|record| record.org == *org))
}

/// The endpoints of this organisation among `ids`, in their order, in
/// one batch read; deleted ones and other organisations' left out.
pub fn find_many(
    platform: &impl Platform,
    org: &OrgId,
    ids: &[EndpointId],
) -> Result<Vec<EndpointRecord>, Problem> {
    let keys: Vec<String> = ids.iter().map(keys::endpoint).collect();
    Ok(get_many_json::<EndpointRecord>(platform, &keys)?
        .into_iter()
        .flatten()
        .filter(|record| record.org == *org)
        .collect())
}

/// An endpoint of this organisation; another organisation's is not found.
pub fn load(
    platform: &impl Platform,
    org: &OrgId,
    id: &EndpointId,
) -> Result<EndpointRecord, Problem> {
    find(platform, org, id)?.ok_or_else(|| Problem::not_found(format!("no endpoint {id}")))
}

/// Stores a new endpoint, then lists it, if its host has fewer than
/// `max_per_host` of the organisation's endpoints (counted in the change
/// that lists it); otherwise removes it again (its id was never given
/// out) and answers 409 `quota_exceeded`.
pub fn create(
    platform: &impl Platform,
    record: &EndpointRecord,
    max_per_host: usize,
) -> Result<(), Problem> {
    set_json(platform, &keys::endpoint(&record.id), record)?;
    let host = target_host(&record.url);
    let mut full = false;
    update_index(platform, &record.org, |listed: &mut Vec<Listed>| {
        full = on_host(listed, host.as_deref(), &record.id) >= max_per_host;
        if !full && !listed.iter().any(|listed| listed.id == record.id) {
            let entry = Listed {
                id: record.id.clone(),
                event_types: record.event_types.clone(),
                host: host.clone(),
            };
            listed.insert(0, entry);
        }
    })?;
    if full {
        store::remove(platform, &keys::endpoint(&record.id))?;
        return Err(host_full(host.as_deref().unwrap_or_default(), max_per_host));
    }
    Ok(())
}

/// Moves an endpoint's index entry to the host of `url`, before the
/// endpoint itself is changed to it; 409 `quota_exceeded` when that host
/// has `max_per_host` of the organisation's other endpoints.
pub fn move_host(
    platform: &impl Platform,
    org: &OrgId,
    id: &EndpointId,
    url: &str,
    max_per_host: usize,
) -> Result<(), Problem> {
    let host = target_host(url);
    let mut full = false;
    update_index(platform, org, |listed: &mut Vec<Listed>| {
        full = on_host(listed, host.as_deref(), id) >= max_per_host;
        for entry in listed.iter_mut().filter(|entry| entry.id == *id && !full) {
            entry.host.clone_from(&host);
        }
    })?;
    if full {
        return Err(host_full(host.as_deref().unwrap_or_default(), max_per_host));
    }
    Ok(())
}

/// Applies `change` to this organisation's endpoint as stored now (see
/// [`update_json`]) and returns the endpoint as written.
pub fn modify(
    platform: &impl Platform,
    org: &OrgId,
    id: &EndpointId,
    mut change: impl FnMut(&mut EndpointRecord) -> Result<(), Problem>,
) -> Result<EndpointRecord, Problem> {
    update_json(
        platform,
        &keys::endpoint(id),
        |record: Option<EndpointRecord>| match record {
            Some(mut record) if record.org == *org => {
                change(&mut record)?;
                Ok((Some(record.clone()), record))
            }
            _ => Err(Problem::not_found(format!("no endpoint {id}"))),
        },
    )
}

/// Unlists an endpoint, then removes it, its attempts and their counter.
pub fn delete(platform: &impl Platform, record: &EndpointRecord) -> Result<(), Problem> {
    update_index(platform, &record.org, |listed: &mut Vec<Listed>| {
        listed.retain(|entry| entry.id != record.id);
    })?;
    platform.delete(&keys::endpoint(&record.id))?;
    let recorded = attempts_recorded(platform, record)?;
    attempt::delete_all(platform, &record.id, recorded)?;
    Ok(platform.delete(&keys::attempt_count(&record.id))?)
}

/// How many attempts the endpoint has recorded: the newest is number
/// `recorded - 1`.
pub fn attempts_recorded(
    platform: &impl Platform,
    record: &EndpointRecord,
) -> Result<u64, Problem> {
    let counted = read_counter(platform, &keys::attempt_count(&record.id))?;
    Ok(counted_attempts(record, counted))
}

/// The stored count (attempts before the counter, [`EndpointRecord::attempt_count`])
/// plus the counter's value.
fn counted_attempts(record: &EndpointRecord, counter: i64) -> u64 {
    record.attempt_count + u64::try_from(counter).unwrap_or(0)
}

/// Removes the organisation's endpoint list (its endpoints deleted first).
pub fn erase_index(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    store::remove(platform, &keys::org_list(OrgList::Endpoints, org))?;
    match keys::unencoded_org_list(OrgList::Endpoints, org) {
        Some(old) => store::remove(platform, &old),
        None => Ok(()),
    }
}

/// Numbers an attempt from the endpoint's counter and applies `update`
/// (its effect on the delivery state) to the endpoint as stored now (a
/// delivery may have taken seconds), which is written only if that changed
/// it: every attempt counts, but a success after a success in the same
/// second changes nothing, so the endpoint's record is no key that every
/// attempt rewrites (on Redis, concurrent attempts to one endpoint kept
/// refusing each other's swaps: BENCHMARKS.md). Returns the endpoint and
/// the attempt's number, for its slot ([`attempt::Group::join_attempt`]),
/// or `None` if it was deleted meanwhile.
pub fn record_attempt(
    platform: &impl Platform,
    attempt: &Attempt,
    mut update: impl FnMut(&mut EndpointRecord),
) -> Result<Option<(EndpointRecord, u64)>, Problem> {
    let key = keys::endpoint(&attempt.endpoint_id);
    // A truthful store runs the change again only after a refused swap, so
    // there is nothing to tell apart: the list is not kept.
    let truthful = platform.swaps_are_truthful();
    // Counted once, however often a refused swap runs the change again.
    let mut counted: Option<u64> = None;
    let written = update_json(platform, &key, |record: Option<EndpointRecord>| {
        let Some(mut record) = record else {
            return Ok((None, None));
        };
        // Changed by it already (a swap that reported failure but was made).
        let remembered = record
            .recent_attempts
            .iter()
            .find(|(id, _)| *id == attempt.id)
            .map(|(_, number)| *number);
        if let Some(number) = remembered {
            return Ok((None, Some((record, number))));
        }
        let number = match counted {
            Some(number) => number,
            None => {
                let count = platform.increment(&keys::attempt_count(&record.id), 1)?;
                // Numbered from 0: the attempts before this one.
                *counted.insert(counted_attempts(&record, count.saturating_sub(1)))
            }
        };
        let before = DeliveryState::of(&record);
        update(&mut record);
        if DeliveryState::of(&record) == before {
            return Ok((None, Some((record, number))));
        }
        if truthful {
            record.recent_attempts.clear();
        } else {
            remember(
                &mut record.recent_attempts,
                (attempt.id.clone(), number),
                RECENT_ATTEMPTS,
            );
        }
        Ok((Some(record.clone()), Some((record, number))))
    })?;
    Ok(written)
}

/// What an attempt may change in its endpoint's record.
#[derive(PartialEq)]
struct DeliveryState {
    paused: bool,
    paused_reason: Option<String>,
    paused_at_s: Option<i64>,
    consecutive_failures: u32,
    last_success_at_s: Option<i64>,
    last_failure_at_s: Option<i64>,
}

impl DeliveryState {
    fn of(record: &EndpointRecord) -> DeliveryState {
        DeliveryState {
            paused: record.paused,
            paused_reason: record.paused_reason.clone(),
            paused_at_s: record.paused_at_s,
            consecutive_failures: record.consecutive_failures,
            last_success_at_s: record.last_success_at_s,
            last_failure_at_s: record.last_failure_at_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;

    #[test]
    fn an_organisations_list_under_its_unencoded_key_is_read_and_kept() {
        let platform = FakePlatform::default();
        let listed = r#"[{"id":"0b5e3f9c-1a2b-4c3d-8e9f-0a1b2c3d4e5f","eventTypes":[]}]"#;
        platform
            .entries
            .borrow_mut()
            .insert("org/acme corp/endpoints".into(), listed.as_bytes().to_vec());
        let org = OrgId::new("acme corp");
        let listed = list_ids(&platform, &org).unwrap_or_default();
        let listed: Vec<&str> = listed.iter().map(EndpointId::as_str).collect();
        assert_eq!(listed, ["0b5e3f9c-1a2b-4c3d-8e9f-0a1b2c3d4e5f"]);
        // The first write under the new key starts from the old list.
        let other = EndpointId::from(uuid::Uuid::nil());
        widen_subscriptions(&platform, &org, &other, &[]).unwrap_or_default();
        assert!(
            platform
                .entries
                .borrow()
                .contains_key("org/acme+corp/endpoints")
        );
        assert_eq!(list_ids(&platform, &org).unwrap_or_default().len(), 1);
    }
}
