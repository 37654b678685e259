//! Operational events (docs/API.md): the service's own events about an
//! organisation's endpoints and deliveries, accepted as messages of that
//! organisation like any event (stored, signed, retried, logged), for its
//! endpoints that list the type by name (an endpoint that takes every type
//! does not get them), and never for the endpoint they are about.
//! Deliveries of operational events raise none themselves, so that two
//! failing endpoints cannot keep each other busy.

use serde_json::{Value, json};

use crate::domain::delivery::{FirstAttempts, Lease};
use crate::domain::endpoint::{EndpointRecord, OPERATIONAL_PREFIX};
use crate::domain::message::{self, Event};
use crate::foundation::config::Config;
use crate::foundation::encoding::{new_message_id, new_uuid, rfc3339};
use crate::foundation::problem::Problem;
use crate::ids::{EndpointId, OrgId};
use crate::platform::{DeliveryRef, Platform};
use crate::store::ReadAhead;

/// An endpoint was paused by its failures (auto-pause, or a 410).
pub const ENDPOINT_DISABLED: &str = "hooksign.endpoint.disabled";

/// A delivery failed its last slot.
pub const ATTEMPT_EXHAUSTED: &str = "hooksign.message.attempt.exhausted";

/// A delivery succeeded after failing.
pub const ATTEMPT_RECOVERED: &str = "hooksign.message.attempt.recovered";

/// Whether an event type is the service's own: reserved, and taken only by
/// endpoints that list it.
pub fn is_operational(event_type: &str) -> bool {
    event_type.starts_with(OPERATIONAL_PREFIX)
}

/// `hooksign.endpoint.disabled`, for an endpoint its failures just paused.
pub fn endpoint_disabled(
    platform: &impl Platform,
    config: &Config,
    endpoint: &EndpointRecord,
) -> Result<(), Problem> {
    let data = json!({
        "endpointId": endpoint.id,
        "url": endpoint.url,
        "reason": endpoint.paused_reason,
        "consecutiveFailures": endpoint.consecutive_failures,
        "pausedAt": endpoint.paused_at_s.map(rfc3339),
    });
    emit(
        platform,
        config,
        &endpoint.org,
        ENDPOINT_DISABLED,
        &endpoint.id,
        data,
    )
}

/// What a delivery came to, for the events about it.
pub struct Settled<'a> {
    pub delivery: &'a DeliveryRef,
    pub event_type: &'a str,
    pub attempts: u32,
    pub last_error: Option<&'a str>,
}

/// `hooksign.message.attempt.exhausted`, for a delivery that failed its
/// last slot.
pub fn attempt_exhausted(
    platform: &impl Platform,
    config: &Config,
    settled: &Settled<'_>,
) -> Result<(), Problem> {
    about_delivery(platform, config, ATTEMPT_EXHAUSTED, settled)
}

/// `hooksign.message.attempt.recovered`, for a delivery that succeeded
/// after failing.
pub fn attempt_recovered(
    platform: &impl Platform,
    config: &Config,
    settled: &Settled<'_>,
) -> Result<(), Problem> {
    about_delivery(platform, config, ATTEMPT_RECOVERED, settled)
}

fn about_delivery(
    platform: &impl Platform,
    config: &Config,
    event_type: &str,
    settled: &Settled<'_>,
) -> Result<(), Problem> {
    if is_operational(settled.event_type) {
        return Ok(());
    }
    let delivery = settled.delivery;
    let data = json!({
        "endpointId": delivery.endpoint,
        "messageId": delivery.message,
        "eventType": settled.event_type,
        "attempts": settled.attempts,
        "lastError": settled.last_error,
    });
    emit(
        platform,
        config,
        &delivery.org,
        event_type,
        &delivery.endpoint,
        data,
    )
}

/// Accepts the event for the organisation's other endpoints; their
/// deliveries are queued for the dispatcher.
fn emit(
    platform: &impl Platform,
    config: &Config,
    org: &OrgId,
    event_type: &str,
    about: &EndpointId,
    data: Value,
) -> Result<(), Problem> {
    let now_ms = platform.now_millis();
    let first = FirstAttempts {
        lease: Lease {
            token: new_uuid()?,
            until_ms: now_ms,
        },
        count: 0,
    };
    let event = Event {
        event_type: event_type.to_string(),
        data,
        id: new_message_id()?,
        skip: Some(about.clone()),
    };
    let now = now_ms.div_euclid(1000);
    message::accept(
        &ReadAhead::new(platform),
        org,
        now,
        event,
        &first,
        config.max_stored_bytes_per_org,
    )?;
    Ok(())
}
