//! Attempts: each endpoint keeps its newest 200 in a ring of keys
//! (`attempt/{endpoint}/{n % 200}` holds attempt `n`, and `n` with it). An
//! attempt first takes its number from its endpoint's counter
//! ([`crate::domain::endpoint::record_attempt`]), then is
//! written here, so two attempts never share a slot; a slot whose number is
//! not the expected one (a failure between the two writes) is skipped when
//! listing.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::foundation::problem::Problem;
use crate::ids::{EndpointId, MessageId};
use crate::platform::Platform;
use crate::store::{Writes, get_many_json, keys};

/// How many attempts an endpoint keeps.
pub const KEPT_ATTEMPTS: u64 = 200;

/// One delivery attempt, stored and shown as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub id: String,
    pub endpoint_id: EndpointId,
    pub message_id: MessageId,
    pub event_type: String,
    pub test: bool,
    /// 1 for a message's first attempt at this endpoint, 2 for its first
    /// retry, and so on; a test send is 1.
    pub attempt_number: u32,
    pub attempted_at: String,
    pub succeeded: bool,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

/// An attempt in its ring slot, with its number.
#[derive(Serialize, Deserialize)]
struct Numbered<T> {
    number: u64,
    #[serde(flatten)]
    attempt: T,
}

/// Writes waiting to be made a group at a time: the attempts of one
/// follow-up or pass whose sends were answered in the same round of the
/// host's event loop, with the delivery records their results wrote
/// without a swap, go in one batch write.
#[derive(Default)]
pub struct Group {
    waiting: RefCell<Writes>,
    /// Sends of the group not answered yet.
    in_flight: Cell<usize>,
    /// The number of the write gathering now; those before it are made.
    gathering: Cell<u64>,
    /// Why the writes that failed failed, by number: each attempt in one
    /// fails with it.
    failed: RefCell<BTreeMap<u64, Problem>>,
}

/// A send of a [`Group`]'s, counted while it waits for its answer.
pub struct InFlight<'a>(&'a Group);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

impl Group {
    /// Counts a send until the guard is dropped.
    pub fn send_starts(&self) -> InFlight<'_> {
        self.in_flight.set(self.in_flight.get() + 1);
        InFlight(self)
    }

    /// Adds attempt `number` of its endpoint, in its slot, to the next write.
    pub fn join_attempt(&self, number: u64, attempt: &Attempt) -> Result<(), Problem> {
        let key = keys::attempt(&attempt.endpoint_id, number, KEPT_ATTEMPTS);
        self.join(key, &Numbered { number, attempt })
    }

    /// Adds `value` under `key` to the next write.
    pub fn join<T: Serialize>(&self, key: String, value: &T) -> Result<(), Problem> {
        self.waiting.borrow_mut().set_json(key, value)
    }

    /// Writes what waits, what this attempt joined with it. While other
    /// sends of the group wait for their answers, after one round of the
    /// event loop, in which the attempts answered meanwhile join; the
    /// first of them writes them all, and those after it share its
    /// outcome. With none out (one endpoint's deliveries in turn), at once.
    pub async fn write(&self, platform: &impl Platform) -> Result<(), Problem> {
        // This attempt joined since its last await: into this write.
        let ours = self.gathering.get();
        if self.in_flight.get() > 0 {
            platform.yield_now().await;
        }
        if self.gathering.get() != ours {
            return self.failed.borrow().get(&ours).cloned().map_or(Ok(()), Err);
        }
        self.gathering.set(ours + 1);
        let written = self.waiting.take().write(platform);
        if let Err(problem) = &written {
            self.failed.borrow_mut().insert(ours, problem.clone());
        }
        written
    }
}

/// The newest `limit` of an endpoint's `count` attempts, newest first.
pub fn newest(
    platform: &impl Platform,
    endpoint: &EndpointId,
    count: u64,
    limit: u64,
) -> Result<Vec<Attempt>, Problem> {
    let listed = limit.min(KEPT_ATTEMPTS).min(count);
    let numbers: Vec<u64> = (count - listed..count).rev().collect();
    let keys: Vec<String> = numbers
        .iter()
        .map(|number| keys::attempt(endpoint, *number, KEPT_ATTEMPTS))
        .collect();
    let slots = get_many_json::<Numbered<Attempt>>(platform, &keys)?;
    let found = numbers
        .iter()
        .zip(slots)
        .filter_map(|(number, slot)| slot.filter(|slot| slot.number == *number))
        .map(|slot| slot.attempt)
        .collect();
    Ok(found)
}

/// Removes the kept attempts of an endpoint that made `count`.
pub fn delete_all(
    platform: &impl Platform,
    endpoint: &EndpointId,
    count: u64,
) -> Result<(), Problem> {
    let kept = count.min(KEPT_ATTEMPTS);
    for number in count - kept..count {
        platform.delete(&keys::attempt(endpoint, number, KEPT_ATTEMPTS))?;
    }
    Ok(())
}
