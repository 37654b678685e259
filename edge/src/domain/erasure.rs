//! Removing everything of an organisation (`DELETE /orgs/{org}`): its
//! endpoints with their sealed secrets, attempts, held lists and send
//! slots; its messages, deliveries, logs and queue entries; its API keys,
//! dashboard links and sessions, rate buckets and storage count; and the
//! counts of the gateway sources it owns. The store has no scan: each kind
//! is found through the lists that name it. Every step is idempotent, so a
//! deletion cut off is finished by the next.

use crate::domain::{
    api_key, delivery, endpoint, event_type, inbound, limits, message, queue, session,
};
use crate::foundation::problem::Problem;
use crate::ids::OrgId;
use crate::platform::Platform;

/// What of the service's configuration an erasure needs.
pub struct Owned<'a> {
    /// `max_in_flight_per_endpoint`: how many send slots an endpoint has.
    pub send_slots: u64,
    /// The gateway sources the organisation owns, with the number of
    /// secrets in each keyring.
    pub sources: Vec<(&'a str, usize)>,
}

/// Removes everything of the organisation but its record.
pub fn erase(platform: &impl Platform, org: &OrgId, owned: &Owned<'_>) -> Result<(), Problem> {
    for id in endpoint::list_ids(platform, org)? {
        if let Some(record) = endpoint::find(platform, org, &id)? {
            endpoint::delete(platform, &record)?;
        }
        delivery::forget_held(platform, &id)?;
        limits::erase_slots(platform, &id, owned.send_slots)?;
    }
    endpoint::erase_index(platform, org)?;
    message::erase_org(platform, org)?;
    queue::erase_org(platform, org)?;
    api_key::erase(platform, org)?;
    session::erase(platform, org)?;
    event_type::erase(platform, org)?;
    limits::erase_org(platform, org)?;
    for (name, secrets) in &owned.sources {
        inbound::erase_counts(platform, name, *secrets)?;
    }
    Ok(())
}
