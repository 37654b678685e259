//! The key schema: every key the service writes is built here, and only
//! here, by one rule: segments are joined with `/`, and every segment that
//! comes from outside (an organisation, a message id, a source name, a
//! webhook id) is percent-encoded ([`segment`]), so no value can reach
//! into another's keys. Ids the service makes (UUIDs, hashes in hex,
//! numbers) encode to themselves.
//!
//! | key | holds | home |
//! |---|---|---|
//! | `endpoint/{endpoint}` | the whole endpoint, keyring included | [`crate::domain::endpoint`] |
//! | `org/{org}/endpoints` | the organisation's endpoints, newest first, with the event types each may want | [`crate::domain::endpoint`] |
//! | `attempt/{endpoint}/{n % 200}` | attempt `n`, and `n` with it: a ring of the newest 200 | [`crate::domain::attempt`] |
//! | `attempt/{endpoint}/count` | the endpoint's attempts counted, a counter: each takes its number from it | [`crate::domain::endpoint`] |
//! | `message/{org}/{message}` | the message, its envelope and the endpoints it goes to | [`crate::domain::message`] |
//! | `log/{org}/{day}/{n}`, `log/{org}/{day}/count` | the day's messages in the order accepted, one key each, and their count; `log/{org}/{day}`, the list of before | [`crate::domain::message`] |
//! | `retention/{day}`, `retention/days` | the organisations that logged messages that day, and those days: what to prune when a day expires | [`crate::domain::message`] |
//! | `delivery/{org}/{message}/{endpoint}` | status, attempts, next attempt, lease | [`crate::domain::delivery`] |
//! | `due/{second}/{org}/{n}`, `due/{second}/{org}/count`, `due/{second}/{org}/swept`, `due/{second}`, `due/minute/{minute}`, `due/minutes` | an organisation's deliveries due in a second, one key per request that listed them, their count, and how far a pass has swept them; the organisations, seconds and minutes with entries | [`crate::domain::queue`] |
//! | `queue/{second}`, `queue/seconds` | the shared lists of before, drained | [`crate::domain::queue`] |
//! | `held/{endpoint}` | a paused endpoint's held deliveries, in order | [`crate::domain::delivery`] |
//! | `orgs/{org}`, `orgs` | an organisation's record, and the ids of every recorded organisation, sorted | [`crate::domain::org`] |
//! | `dashlink/{sha256}`, `dashlink/{sha256}/opened`, `session/{sha256}`, `org/{org}/sessions` | a dashboard link by its token's hash and the count of its opens, a dashboard session by its token's hash, the organisation's links and sessions | [`crate::domain::session`] |
//! | `eventtype/{org}/{name}`, `org/{org}/eventtypes` | an event type of the organisation's catalogue, and their names | [`crate::domain::event_type`] |
//! | `ratelimit/platform` | the platform keys' token buckets | [`crate::domain::limits`] |
//! | `ratelimit/endpoint/{endpoint}` | an endpoint's token bucket of sends (`rateLimitPerSecond`) | [`crate::domain::limits`] |
//! | `apikey/{sha256}`, `org/{org}/apikeys` | a minted key's record by its hash, the organisation's keys | [`crate::domain::api_key`] |
//! | `ratelimit/org/{org}` | an organisation's token bucket and its keys' (those not full) | [`crate::domain::limits`] |
//! | `ratelimit/dispatch` | the bucket of refused `POST /dispatch` tokens | [`crate::domain::limits`] |
//! | `ratelimit/{sha256}` | an API key's token bucket of before, no longer read | |
//! | `inflight/{endpoint}/{n}` | an endpoint's send slots | [`crate::domain::limits`] |
//! | `usage/{org}/bytes` | the bytes of the organisation's stored messages, counted | [`crate::domain::limits`] |
//! | `inbound/{source}/…` | the gateway's replay marks, their expiry lists and its counts | [`crate::domain::inbound`] |
//! | `metrics/…` | the service's counts, when `metrics_token` is set | [`crate::domain::metrics`] |
//! | `created/{key}` | the requests that found `key` absent: the first creates it | [`crate::store::update_json`] |
//!
//! Times in keys are Unix seconds (`{second}`) or days since the epoch
//! (`{day}`).

use crate::ids::{EndpointId, MessageId, OrgId};
use crate::platform::DeliveryRef;

/// One key segment from outside: percent-encoded (organisation names and
/// message ids may hold `/`).
pub fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A list of an organisation's records, at `org/{org}/{list}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgList {
    /// Its endpoints ([`crate::domain::endpoint`]).
    Endpoints,
    /// Its minted API keys ([`crate::domain::api_key`]).
    ApiKeys,
    /// Its dashboard links and sessions ([`crate::domain::session`]).
    Sessions,
    /// Its event types' names ([`crate::domain::event_type`]).
    EventTypes,
}

impl OrgList {
    fn name(self) -> &'static str {
        match self {
            OrgList::Endpoints => "endpoints",
            OrgList::ApiKeys => "apikeys",
            OrgList::Sessions => "sessions",
            OrgList::EventTypes => "eventtypes",
        }
    }
}

pub fn org_list(list: OrgList, org: &OrgId) -> String {
    format!("org/{}/{}", segment(org.as_str()), list.name())
}

/// The key an organisation's list had before every segment was encoded,
/// where that differs (see [`crate::store::get_org_list`]).
pub fn unencoded_org_list(list: OrgList, org: &OrgId) -> Option<String> {
    let raw = org.as_str();
    (segment(raw) != raw).then(|| format!("org/{raw}/{}", list.name()))
}

/// The ids of the recorded organisations.
pub const ORGS: &str = "orgs";

pub fn org_record(org: &OrgId) -> String {
    format!("orgs/{}", segment(org.as_str()))
}

pub fn dashboard_link(hash: &str) -> String {
    format!("dashlink/{}", segment(hash))
}

/// How many times the link has been opened: the first open counts 1.
pub fn dashboard_link_opened(hash: &str) -> String {
    format!("dashlink/{}/opened", segment(hash))
}

pub fn session(hash: &str) -> String {
    format!("session/{}", segment(hash))
}

pub const PLATFORM_RATE_LIMIT: &str = "ratelimit/platform";

pub fn event_type(org: &OrgId, name: &str) -> String {
    format!("eventtype/{}/{}", segment(org.as_str()), segment(name))
}

pub fn endpoint(endpoint: &EndpointId) -> String {
    format!("endpoint/{}", segment(endpoint.as_str()))
}

/// Attempt `number`'s slot in its endpoint's ring of `ring` slots.
pub fn attempt(endpoint: &EndpointId, number: u64, ring: u64) -> String {
    format!("attempt/{}/{}", segment(endpoint.as_str()), number % ring)
}

/// The counter that numbers an endpoint's attempts.
pub fn attempt_count(endpoint: &EndpointId) -> String {
    format!("attempt/{}/count", segment(endpoint.as_str()))
}

pub fn message(org: &OrgId, message: &MessageId) -> String {
    format!(
        "message/{}/{}",
        segment(org.as_str()),
        segment(message.as_str())
    )
}

/// The day's log as one list, as it was written before each entry had a
/// key of its own (still read and pruned).
pub fn message_log(org: &OrgId, day: i64) -> String {
    format!("log/{}/{day}", segment(org.as_str()))
}

/// The count of the day's log entries: each accept takes the next number.
pub fn message_log_count(org: &OrgId, day: i64) -> String {
    format!("log/{}/{day}/count", segment(org.as_str()))
}

/// Entry `n` of the day's log.
pub fn message_log_entry(org: &OrgId, day: i64, n: i64) -> String {
    format!("log/{}/{day}/{n}", segment(org.as_str()))
}

pub const RETENTION_DAYS: &str = "retention/days";

pub fn retention(day: i64) -> String {
    format!("retention/{day}")
}

pub fn delivery(delivery: &DeliveryRef) -> String {
    format!(
        "delivery/{}/{}/{}",
        segment(delivery.org.as_str()),
        segment(delivery.message.as_str()),
        segment(delivery.endpoint.as_str())
    )
}

/// The shared queue of before ([`crate::domain::queue`] drains it).
pub const QUEUE_SECONDS: &str = "queue/seconds";

pub fn queue(second: i64) -> String {
    format!("queue/{second}")
}

pub const DUE_MINUTES: &str = "due/minutes";

pub fn due_minute(minute: i64) -> String {
    format!("due/minute/{minute}")
}

pub fn due_orgs(second: i64) -> String {
    format!("due/{second}")
}

/// How many entries the organisation's queue of the second has had.
pub fn due_count(second: i64, org: &OrgId) -> String {
    format!("due/{second}/{}/count", segment(org.as_str()))
}

/// How far the organisation's queue of the second is swept: every entry
/// up to this number is done and removed.
pub fn due_swept(second: i64, org: &OrgId) -> String {
    format!("due/{second}/{}/swept", segment(org.as_str()))
}

/// Entry `n` of the organisation's queue of the second: the deliveries one
/// request listed.
pub fn due_entry(second: i64, org: &OrgId, n: i64) -> String {
    format!("due/{second}/{}/{n}", segment(org.as_str()))
}

pub fn held(endpoint: &EndpointId) -> String {
    format!("held/{}", segment(endpoint.as_str()))
}

pub fn api_key(hash: &str) -> String {
    format!("apikey/{}", segment(hash))
}

pub const DISPATCH_GUESSES: &str = "ratelimit/dispatch";

pub fn rate_limit(org: &OrgId) -> String {
    format!("ratelimit/org/{}", segment(org.as_str()))
}

/// An endpoint's token bucket (`rateLimitPerSecond`).
pub fn endpoint_rate_limit(endpoint: &EndpointId) -> String {
    format!("ratelimit/endpoint/{}", segment(endpoint.as_str()))
}

pub fn stored_bytes(org: &OrgId) -> String {
    format!("usage/{}/bytes", segment(org.as_str()))
}

pub fn send_slot(endpoint: &EndpointId, n: u64) -> String {
    format!("inflight/{}/{n}", segment(endpoint.as_str()))
}

pub fn inbound_claim(source: &str, id: &str) -> String {
    format!("inbound/{}/claims/{}", segment(source), segment(id))
}

pub fn inbound_seen(source: &str, id: &str) -> String {
    format!("inbound/{}/seen/{}", segment(source), segment(id))
}

pub fn inbound_expiring(source: &str) -> String {
    format!("inbound/{}/expiring", segment(source))
}

pub fn inbound_expiring_shard(source: &str, bucket: i64, shard: u8) -> String {
    format!("inbound/{}/expiring/{bucket}/{shard}", segment(source))
}

/// A bucket's one list, as stored before the shards.
pub fn inbound_expiring_unsharded(source: &str, bucket: i64) -> String {
    format!("inbound/{}/expiring/{bucket}", segment(source))
}

pub fn inbound_stats(source: &str) -> String {
    format!("inbound/{}/stats", segment(source))
}

pub fn inbound_accepted(source: &str, secret: usize) -> String {
    format!("inbound/{}/accepted/{secret}", segment(source))
}

pub fn inbound_refused(source: &str, code: &str) -> String {
    format!("inbound/{}/refused/{}", segment(source), segment(code))
}

/// A metric's count: `metrics/` and its parts, each encoded.
pub fn metric(parts: &[&str]) -> String {
    let parts: Vec<String> = parts.iter().map(|part| segment(part)).collect();
    format!("metrics/{}", parts.join("/"))
}

pub fn creation(key: &str) -> String {
    format!("created/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_values_cannot_reach_into_other_keys() {
        assert_eq!(
            message(&OrgId::new("a/b"), &MessageId::new("m/1")),
            "message/a%2Fb/m%2F1"
        );
        let acme = OrgId::new("acme");
        assert_eq!(org_list(OrgList::Endpoints, &acme), "org/acme/endpoints");
        let uuid = "0b5e3f9c-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
        let id = EndpointId::parse(uuid);
        assert_eq!(id.map(|id| endpoint(&id)), Some(format!("endpoint/{uuid}")));
        let corp = OrgId::new("acme corp");
        assert_eq!(org_list(OrgList::ApiKeys, &corp), "org/acme+corp/apikeys");
        assert_eq!(
            unencoded_org_list(OrgList::Endpoints, &corp).as_deref(),
            Some("org/acme corp/endpoints")
        );
        assert_eq!(unencoded_org_list(OrgList::Endpoints, &acme), None);
    }
}
