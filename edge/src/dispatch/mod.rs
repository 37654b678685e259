//! The dispatch layer: sending. [`send`] signs, sends and records one
//! attempt; this module sends each pending delivery when it is due (a pass
//! of the dispatcher, or the first attempts that follow a request's
//! answer), retries on the schedule and holds deliveries for paused
//! endpoints. Where deliveries wait and how they are leased is
//! [`crate::domain::delivery`]'s.

mod known;
pub mod operational;
pub mod send;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dispatch::known::Knowing;
use crate::dispatch::send::{Delivered, Message, deliver};
use crate::domain::delivery::{self, Claim, DeliveryStatus, Due};
use crate::domain::limits::{self, SendSlot};
use crate::domain::message::{self, DAY_SECONDS, MessageRecord};
use crate::domain::{attempt, endpoint, inbound};
use crate::domain::{metrics, queue};
use crate::foundation::config::Config;
use crate::foundation::encoding::new_uuid;
use crate::foundation::problem::Problem;
use crate::ids::{EndpointId, OrgId};
use crate::platform::{Counted, DeliveryRef, FollowUp, Platform};
use crate::store::{BATCH_KEYS, ReadAhead, keys};

/// A message accepted but never marked whole (its request failed and was
/// not retried) is given this long before its queue entries are dropped.
const UNFINISHED_GRACE_MS: i64 = 600_000;

/// How many attempts one dispatch pass makes at most.
pub const MAX_PER_PASS: usize = 512;

/// A pass starts sends for this long, then lets the ones out finish and
/// ends: so it lasts at most this and one delivery timeout, whatever the
/// receivers do, and the next pass (which sends a quiet organisation
/// first) is never held up behind another's hanging endpoints.
pub const PASS_BUDGET_MS: i64 = 1_000;

/// How many deliveries one request sends after its answer; the dispatcher
/// takes the rest.
pub const MAX_FOLLOW_UP: usize = 100;

/// What happened to a delivery that a dispatcher looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// An attempt was made (whatever it answered).
    Attempted,
    /// Its message is still being written: left where it is.
    Busy,
    /// Another sender holds it, or every send slot of its endpoint: left
    /// where it is, and the endpoint's later deliveries wait for a later
    /// turn, so that none overtakes it.
    Taken,
    /// Nothing to do here any more (done, held, rescheduled, gone).
    Settled,
    /// The endpoint's `rateLimitPerSecond` is spent: left where it is, and
    /// the endpoint's other deliveries wait for the next pass too.
    Limited,
}

/// What a dispatch pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    /// Attempts made.
    pub attempted: usize,
    /// Deliveries left to another dispatcher.
    pub busy: usize,
}

/// Sends the deliveries a request just queued, after its answer: one at a
/// time per endpoint, in order, endpoints side by side (at most
/// `dispatch_concurrency` at once, and at most the first `MAX_FOLLOW_UP`
/// deliveries), reading what the request held from its [`FollowUp`].
pub async fn follow_up(platform: &impl Platform, follow_up: &FollowUp) -> Result<(), Problem> {
    let counted = Counted::new(platform);
    let result = follow_up_counted(&counted, follow_up).await;
    let (calls, errors) = counted.counts();
    metrics::count_store_calls(platform, calls, errors);
    result
}

async fn follow_up_counted(platform: &impl Platform, follow_up: &FollowUp) -> Result<(), Problem> {
    let platform = &Knowing {
        inner: platform,
        follow_up,
    };
    let config = &Config::load(platform)?;
    let sending = &Sending::new(config);
    let mut by_endpoint: Vec<Vec<&DeliveryRef>> = Vec::new();
    for delivery in follow_up.deliveries.iter().take(MAX_FOLLOW_UP) {
        match by_endpoint
            .iter_mut()
            .find(|group| group[0].endpoint == delivery.endpoint)
        {
            Some(group) => group.push(delivery),
            None => by_endpoint.push(vec![delivery]),
        }
    }
    // Each endpoint's run takes the next free slot, so a hanging endpoint
    // holds up no other.
    let runs = by_endpoint.into_iter().map(|group| async move {
        for delivery in group {
            if first_attempt(platform, sending, delivery)
                .await?
                .holds_up_the_endpoint()
            {
                // The rest goes after it, in a pass.
                break;
            }
        }
        Ok(())
    });
    run_to_the_end(runs, config.dispatch_concurrency, |()| {}).await
}

/// Runs `runs` at most `concurrency` at once, each taking the next free
/// slot, and every one to its end: a run dropped mid-send would leave its
/// answer unrecorded and its receiver to get it again when the lease
/// ends. Hands each result to `each`; the first failure is the answer.
async fn run_to_the_end<T>(
    runs: impl Iterator<Item = impl Future<Output = Result<T, Problem>>>,
    concurrency: usize,
    mut each: impl FnMut(T),
) -> Result<(), Problem> {
    use futures::StreamExt as _;
    let mut runs = futures::stream::iter(runs).buffer_unordered(concurrency);
    let mut failed = None;
    while let Some(result) = runs.next().await {
        match result {
            Ok(value) => each(value),
            Err(problem) => {
                failed.get_or_insert(problem);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// One pass: prunes an expired day and the gateway's expired replay marks,
/// then sends what is due, oldest first:
/// one attempt at a time per endpoint, in order, and at most
/// `dispatch_concurrency` endpoints at once; at most `MAX_PER_PASS`
/// attempts, and none started after `PASS_BUDGET_MS`, so that a pass ends
/// and the next sees new work.
pub async fn dispatch(platform: &impl Platform) -> Result<PassReport, Problem> {
    let counted = Counted::new(platform);
    let result = match Config::load(&counted) {
        Ok(config) => pass(&counted, &config).await,
        Err(problem) => Err(problem),
    };
    let (calls, errors) = counted.counts();
    metrics::count_store_calls(platform, calls, errors);
    result
}

/// [`dispatch`] with the variables read already.
pub async fn pass(platform: &impl Platform, config: &Config) -> Result<PassReport, Problem> {
    let platform = &ReadAhead::new(platform);
    let now_ms = platform.now_millis();
    let now = now_ms.div_euclid(1000);
    message::prune_expired_day(platform, now.div_euclid(DAY_SECONDS), config.retention_days)?;
    inbound::prune_expired(platform, &config.inbound_sources, now)?;
    let mut choice = Choice {
        oldest_due_ms: now_ms,
        ..Choice::default()
    };
    let seconds = queue::due_seconds(platform, now)?;
    for place in queue::places(platform, &seconds, now)? {
        // What the place's entries are done with, written in batches.
        let (entries, mut unlisted) = queue::entries(platform, &place)?;
        if entries.is_empty() && queue::forget(platform, &place, now)? {
            continue;
        }
        let mut read_up_to = 0;
        for (at, entry) in entries.iter().enumerate() {
            if at == read_up_to {
                read_up_to = at + read_deliveries(platform, &entries[at..])?;
            }
            choose(
                platform,
                entry,
                (place.second, now_ms),
                config.delivery_timeout_ms,
                &mut choice,
                &mut unlisted,
            )?;
            if choice.is_full() {
                break;
            }
        }
        unlisted.write(platform)?;
        if choice.is_full() {
            break;
        }
    }
    metrics::note_pass(
        platform,
        choice.chosen as u64,
        now_ms - choice.oldest_due_ms,
    );
    let mut report = PassReport {
        busy: choice.busy,
        ..PassReport::default()
    };
    let groups = fair_order(choice.by_endpoint.into_values().collect());
    let ends_ms = now_ms.saturating_add(PASS_BUDGET_MS);
    let sending = &Sending::new(config);
    let runs = groups.into_iter().map(|group| async move {
        let mut outcomes = Vec::with_capacity(group.len());
        for delivery in &group {
            // The rest stays queued for the next pass.
            if platform.now_millis() >= ends_ms {
                break;
            }
            let outcome = attempt(platform, sending, delivery).await?;
            outcomes.push(outcome);
            if outcome.holds_up_the_endpoint() {
                break;
            }
        }
        Ok(outcomes)
    });
    run_to_the_end(runs, config.dispatch_concurrency, |outcomes| {
        for outcome in outcomes {
            match outcome {
                Outcome::Busy | Outcome::Taken | Outcome::Limited => report.busy += 1,
                Outcome::Attempted => report.attempted += 1,
                Outcome::Settled => {}
            }
        }
    })
    .await?;
    Ok(report)
}

/// What a pass chose to send.
#[derive(Default)]
struct Choice {
    /// Each endpoint's due deliveries, oldest first.
    by_endpoint: BTreeMap<EndpointId, Vec<DeliveryRef>>,
    /// How many deliveries are in `by_endpoint`.
    chosen: usize,
    /// When the oldest of them was due.
    oldest_due_ms: i64,
    /// Endpoints with an earlier delivery out (or due later this second):
    /// their later ones wait, so that none overtakes it.
    waiting: BTreeSet<EndpointId>,
    /// Deliveries left to another sender.
    busy: usize,
}

impl Choice {
    fn is_full(&self) -> bool {
        self.chosen == MAX_PER_PASS
    }
}

/// Reads ahead, in one batch, the delivery records of as many of
/// `entries` as fit in [`BATCH_KEYS`] keys; returns how many entries it
/// read (at least one, if there is one: of a longer first entry, the first
/// [`BATCH_KEYS`] records, [`choose`] reading the rest as it goes, so that
/// a pass that fills up reads no further).
fn read_deliveries<P: Platform>(
    platform: &ReadAhead<'_, P>,
    entries: &[queue::Entry],
) -> Result<usize, Problem> {
    let mut records: Vec<String> = Vec::new();
    let mut read = 0;
    for entry in entries {
        if read > 0 && records.len() + entry.deliveries.len() > BATCH_KEYS {
            break;
        }
        let first = entry.deliveries.iter().take(BATCH_KEYS);
        records.extend(first.map(keys::delivery));
        read += 1;
    }
    platform.read(&records, &[])?;
    Ok(read)
}

/// Chooses the due deliveries of a queue entry of `second`, at `now_ms`,
/// their records read a batch at a time (unless read ahead), and leaves in
/// `unlisted` the entry's one write that removes those it is done with.
/// `timeout_ms` bounds a first attempt's lease ([`delivery::due`]).
fn choose<P: Platform>(
    platform: &ReadAhead<'_, P>,
    entry: &queue::Entry,
    (second, now_ms): (i64, i64),
    timeout_ms: u64,
    choice: &mut Choice,
    unlisted: &mut queue::Sweep,
) -> Result<(), Problem> {
    let mut settled = Vec::new();
    'entry: for deliveries in entry.deliveries.chunks(BATCH_KEYS) {
        // For `due` below, and, where the host begins swaps from what it
        // read, for their leases.
        let records: Vec<String> = deliveries.iter().map(keys::delivery).collect();
        platform.read(&records, &[])?;
        for delivery in deliveries {
            if choice.is_full() {
                break 'entry;
            }
            let message_kept =
                || Ok(message::find(platform, &delivery.org, &delivery.message)?.is_some());
            match delivery::due(
                platform,
                delivery,
                (second, now_ms),
                timeout_ms,
                message_kept,
            )? {
                Due::Settled => settled.push(delivery.clone()),
                Due::Busy => {
                    choice.busy += 1;
                    choice.waiting.insert(delivery.endpoint.clone());
                }
                Due::Now if choice.waiting.contains(&delivery.endpoint) => choice.busy += 1,
                Due::Now => {
                    choice.oldest_due_ms = choice.oldest_due_ms.min(second * 1000);
                    let group = choice
                        .by_endpoint
                        .entry(delivery.endpoint.clone())
                        .or_default();
                    choice.chosen += usize::from(place_last(group, delivery));
                }
            }
        }
    }
    queue::unlist(platform, entry, &settled, unlisted)
}

/// Puts `delivery` last in its endpoint's group; whether it was not in it.
/// A delivery listed again by a later entry of the second (a release, a
/// recovery, after the entry of its first attempt) takes the later one's
/// place, so that the order is the latest enqueue's.
fn place_last(group: &mut Vec<DeliveryRef>, delivery: &DeliveryRef) -> bool {
    let listed = group.iter().position(|listed| listed == delivery);
    if let Some(at) = listed {
        group.remove(at);
    }
    group.push(delivery.clone());
    listed.is_none()
}

/// The order in which a pass sends its endpoints' deliveries (each group
/// one endpoint's, in order): organisations with the fewest endpoints due
/// first, then each organisation's next in turn. A pass sends
/// `dispatch_concurrency` endpoints at once, so an organisation whose
/// endpoints hang holds at most its turn of the slots, and a quiet
/// organisation's due retry is among the first sent instead of behind
/// another's flood.
fn fair_order(groups: Vec<Vec<DeliveryRef>>) -> Vec<Vec<DeliveryRef>> {
    let mut by_org: BTreeMap<OrgId, Vec<Vec<DeliveryRef>>> = BTreeMap::new();
    for group in groups {
        if let Some(first) = group.first() {
            by_org.entry(first.org.clone()).or_default().push(group);
        }
    }
    let mut orgs: Vec<Vec<Vec<DeliveryRef>>> = by_org.into_values().collect();
    // Stable: among equals, the organisations' order.
    orgs.sort_by_key(Vec::len);
    let total = orgs.iter().map(Vec::len).sum();
    let mut ordered = Vec::with_capacity(total);
    let mut turns: Vec<_> = orgs.into_iter().map(Vec::into_iter).collect();
    while ordered.len() < total {
        for turn in &mut turns {
            ordered.extend(turn.next());
        }
    }
    ordered
}

/// When a lease (a delivery's, a send slot's) taken at `now_ms` ends: the
/// send's timeout and a margin.
fn lease_until(config: &Config, now_ms: i64) -> i64 {
    delivery::lease_until(config.delivery_timeout_ms, now_ms)
}

/// Leases one delivery, sends its next attempt and records the result.
/// Its queue entry stays: the next pass sees that it is done with it (or
/// that it is due again in that second) and removes it with the others,
/// so that concurrent senders do not all rewrite the same list.
async fn attempt(
    platform: &impl Platform,
    sending: &Sending<'_>,
    delivery: &DeliveryRef,
) -> Result<Outcome, Problem> {
    attempt_as(platform, sending, delivery, &new_uuid()?).await
}

/// What the attempts of one follow-up or pass share: the configuration,
/// and the group their attempts are written in.
struct Sending<'a> {
    config: &'a Config,
    attempts: attempt::Group,
}

impl Sending<'_> {
    fn new(config: &Config) -> Sending<'_> {
        Sending {
            config,
            attempts: attempt::Group::default(),
        }
    }
}

/// [`attempt()`] under a lease with `token`: a new one, or one the delivery
/// holds already, extended. Its message is read first: it says what the
/// delivery's record stands for while there is none.
async fn attempt_as(
    platform: &impl Platform,
    sending: &Sending<'_>,
    delivery: &DeliveryRef,
    token: &str,
) -> Result<Outcome, Problem> {
    let message = message::find(platform, &delivery.org, &delivery.message)?;
    let unwritten = message.as_ref().map(MessageRecord::unwritten);
    let now_ms = platform.now_millis();
    let until_ms = lease_until(sending.config, now_ms);
    let leased = Leased {
        delivery,
        unwritten: unwritten.as_ref(),
        token,
        handed: None,
    };
    match delivery::claim(
        platform,
        delivery,
        leased.unwritten,
        token,
        now_ms,
        until_ms,
    )? {
        Claim::Busy => Ok(Outcome::Taken),
        Claim::Settled => Ok(Outcome::Settled),
        Claim::Leased(record) => {
            attempt_leased(platform, sending, &leased, message, &record, now_ms).await
        }
    }
}

impl Outcome {
    /// Whether the endpoint's later deliveries must wait behind this one.
    fn holds_up_the_endpoint(self) -> bool {
        matches!(self, Outcome::Taken | Outcome::Limited)
    }
}

/// A first attempt after a request's answer: under the lease the request
/// took on the delivery ([`delivery::FirstAttempts`]: in the message it
/// accepted, or in the record it released) while that still covers a
/// send; later (other sends went first), under that lease extended;
/// otherwise as any attempt.
async fn first_attempt<P: Platform>(
    platform: &Knowing<'_, P>,
    sending: &Sending<'_>,
    delivery: &DeliveryRef,
) -> Result<Outcome, Problem> {
    let now_ms = platform.now_millis();
    let message: Option<MessageRecord> =
        platform.known_json(&keys::message(&delivery.org, &delivery.message))?;
    let released: Option<delivery::DeliveryRecord> =
        platform.known_json(&keys::delivery(delivery))?;
    // An accept hands on its message, and no record of the deliveries it
    // left to these attempts.
    let unwritten = message
        .as_ref()
        .filter(|message| message.first_attempts.is_some())
        .map(MessageRecord::unwritten);
    let known = released.or_else(|| unwritten.clone());
    let Some((record, lease)) = known
        .as_ref()
        .and_then(|record| record.lease.as_ref().map(|lease| (record, lease)))
    else {
        return attempt(platform, sending, delivery).await;
    };
    let timeout_ms = sending.config.delivery_timeout_ms;
    if delivery::lease_covering(record, now_ms, timeout_ms).is_none() {
        return attempt_as(platform, sending, delivery, &lease.token).await;
    }
    let message = match message {
        Some(message) => Some(message),
        None => message::find(platform, &delivery.org, &delivery.message)?,
    };
    let leased = Leased {
        delivery,
        unwritten: unwritten.as_ref(),
        token: &lease.token,
        handed: Some(record),
    };
    attempt_leased(platform, sending, &leased, message, record, now_ms).await
}

/// A delivery as its sender holds it: under the lease `token`, with what
/// its record stands for while there is none.
struct Leased<'a> {
    delivery: &'a DeliveryRef,
    unwritten: Option<&'a delivery::DeliveryRecord>,
    token: &'a str,
    /// The record as the request that took the lease left it, for the
    /// attempt that follows its answer ([`delivery::finished_plainly`]).
    handed: Option<&'a delivery::DeliveryRecord>,
}

impl Leased<'_> {
    /// [`delivery::finish`] under this lease.
    fn finish(
        &self,
        platform: &impl Platform,
        change: impl FnMut(&mut delivery::DeliveryRecord),
    ) -> Result<bool, Problem> {
        delivery::finish(platform, self.delivery, self.unwritten, self.token, change)
    }

    /// Records an attempt's result: in `attempts`' next write, with the
    /// attempt, where the record was handed on and its lease allows
    /// ([`delivery::finished_plainly`]); otherwise by [`Leased::finish`].
    /// Without `attempts` (the endpoint went during the send: its
    /// organisation erased, perhaps), only over a record still there:
    /// neither a plain write nor what an absent record stands for brings
    /// back one removed with the endpoint.
    fn finish_attempted(
        &self,
        platform: &impl Platform,
        attempts: Option<&attempt::Group>,
        now_ms: i64,
        mut change: impl FnMut(&mut delivery::DeliveryRecord),
    ) -> Result<bool, Problem> {
        let Some(attempts) = attempts else {
            return delivery::finish(platform, self.delivery, None, self.token, change);
        };
        let plain = self
            .handed
            .and_then(|handed| delivery::finished_plainly(handed, self.token, now_ms, &mut change));
        match plain {
            Some(record) => {
                attempts.join(keys::delivery(self.delivery), &record)?;
                Ok(true)
            }
            None => self.finish(platform, change),
        }
    }
}

/// [`attempt()`] once the lease is held; `message` as read.
async fn attempt_leased(
    platform: &impl Platform,
    sending: &Sending<'_>,
    leased: &Leased<'_>,
    message: Option<MessageRecord>,
    record: &delivery::DeliveryRecord,
    now_ms: i64,
) -> Result<Outcome, Problem> {
    let (config, delivery) = (sending.config, leased.delivery);
    let message = match message {
        Some(message) if message.accepted => message,
        // Still being written by its request, which sends it: not ours yet.
        Some(message) if now_ms - message.created_at_s * 1000 < UNFINISHED_GRACE_MS => {
            leased.finish(platform, |_| {})?;
            return Ok(Outcome::Busy);
        }
        // Never finished: never sent.
        _ => {
            leased.finish(platform, |record| {
                record.status = DeliveryStatus::Failed;
                record.next_attempt_at_ms = None;
                record.last_error = Some("the message was never accepted whole".into());
            })?;
            return Ok(Outcome::Settled);
        }
    };
    let Some(endpoint) = endpoint::find(platform, &delivery.org, &delivery.endpoint)? else {
        leased.finish(platform, |record| {
            record.status = DeliveryStatus::Failed;
            record.next_attempt_at_ms = None;
            record.last_error = Some("the endpoint was deleted".into());
        })?;
        return Ok(Outcome::Settled);
    };
    if endpoint.paused {
        if leased.finish(platform, |record| {
            record.status = DeliveryStatus::Held;
            record.next_attempt_at_ms = None;
        })? {
            delivery::hold(platform, delivery)?;
        }
        return Ok(Outcome::Settled);
    }
    let slot = match send_turn(platform, config, &endpoint, leased, now_ms)? {
        Ok(slot) => slot,
        Err(outcome) => return Ok(outcome),
    };
    let number = record.attempts.saturating_add(1);
    let message = Message {
        id: &message.id,
        event_type: &message.event_type,
        body: message.body.as_bytes(),
        test: false,
        attempt_number: number,
    };
    let delivered = deliver(platform, config, &endpoint, &message, &sending.attempts).await;
    limits::give_back(platform, &slot)?;
    let delivered = delivered?;
    let attempt = Attempted {
        number,
        failed_before: record.last_error.is_some(),
        delivered: &delivered,
    };
    let recorded = record_result(platform, sending, leased, &attempt);
    let written = sending.attempts.write(platform).await;
    recorded?;
    // Settled by the receiver's answer; the store's failure to keep the
    // attempt is still this pass's error.
    match delivered.unrecorded.or(written.err()) {
        Some(problem) => Err(problem),
        None => Ok(Outcome::Attempted),
    }
}

/// A turn to send to the endpoint now: a send slot, and a token of its
/// `rateLimitPerSecond`. Without one, the delivery is let go where it is,
/// and the outcome says why.
fn send_turn(
    platform: &impl Platform,
    config: &Config,
    endpoint: &endpoint::EndpointRecord,
    leased: &Leased<'_>,
    now_ms: i64,
) -> Result<Result<SendSlot, Outcome>, Problem> {
    let slot = limits::take_send_slot(
        platform,
        &endpoint.id,
        config.max_in_flight_per_endpoint,
        now_ms,
        lease_until(config, now_ms),
    )?;
    if let SendSlot::Full = slot {
        // As many sends to the endpoint as it may take are out: a later pass.
        leased.finish(platform, |_| {})?;
        return Ok(Err(Outcome::Taken));
    }
    if let Some(per_second) = endpoint.rate_limit_per_second
        && !limits::take_endpoint_send(platform, &endpoint.id, per_second, now_ms)?
    {
        limits::give_back(platform, &slot)?;
        leased.finish(platform, |_| {})?;
        return Ok(Err(Outcome::Limited));
    }
    Ok(Ok(slot))
}

/// An attempt made: its number, whether the one before it failed, and
/// what it came to.
struct Attempted<'a> {
    number: u32,
    failed_before: bool,
    delivered: &'a Delivered,
}

/// The delivery's state after attempt `number`: succeeded; held if the
/// endpoint is paused now (a 410, or auto-pause); pending until the next
/// slot of the schedule; failed after the last.
fn record_result(
    platform: &impl Platform,
    sending: &Sending<'_>,
    leased: &Leased<'_>,
    &Attempted {
        number,
        failed_before,
        delivered,
    }: &Attempted<'_>,
) -> Result<(), Problem> {
    let (config, now_ms) = (sending.config, platform.now_millis());
    let paused = delivered
        .endpoint
        .as_ref()
        .is_none_or(|endpoint| endpoint.paused);
    let next = config
        .retry_schedule
        .get(number as usize)
        .map(|slot| now_ms.saturating_add(retry_delay_ms(*slot, delivered)));
    let status = match (delivered.attempt.succeeded, paused, next) {
        (true, _, _) => DeliveryStatus::Succeeded,
        (false, true, _) => DeliveryStatus::Held,
        (false, false, Some(_)) => DeliveryStatus::Pending,
        (false, false, None) => DeliveryStatus::Failed,
    };
    let next = next.filter(|_| status == DeliveryStatus::Pending);
    let delivery = leased.delivery;
    // None: the endpoint was deleted meanwhile.
    let attempts = delivered.endpoint.is_some().then_some(&sending.attempts);
    let written = leased.finish_attempted(platform, attempts, now_ms, |record| {
        record.attempts = number;
        record.status = status;
        record.last_attempt_at_s = Some(now_ms.div_euclid(1000));
        record.last_error.clone_from(&delivered.attempt.error);
        record.next_attempt_at_ms = next;
    })?;
    if !written {
        return Ok(());
    }
    let settled = operational::Settled {
        delivery,
        event_type: &delivered.attempt.event_type,
        attempts: number,
        last_error: delivered.attempt.error.as_deref(),
    };
    // An operational event that cannot be stored is dropped: the delivery's
    // result stands.
    if status == DeliveryStatus::Failed {
        metrics::count_failed_delivery(platform);
        let _ = operational::attempt_exhausted(platform, config, &settled);
    }
    if status == DeliveryStatus::Succeeded && failed_before {
        let _ = operational::attempt_recovered(platform, config, &settled);
    }
    match (status, next) {
        (DeliveryStatus::Pending, Some(at)) => delivery::enqueue(platform, delivery, at),
        (DeliveryStatus::Held, _) => delivery::hold(platform, delivery),
        _ => Ok(()),
    }
}

/// The wait before the next attempt: the schedule's slot with up to 10 %
/// of jitter either way; a `Retry-After` (seconds) on 429 or 503 is
/// honoured up to the slot's length.
fn retry_delay_ms(slot_seconds: u64, delivered: &Delivered) -> i64 {
    let slot_ms = i64::try_from(slot_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let retry_after_ms = delivered
        .response
        .as_ref()
        .filter(|response| matches!(response.status, 429 | 503))
        .and_then(|response| {
            response
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        })
        .and_then(|(_, value)| value.trim().parse::<i64>().ok())
        .map(|seconds| seconds.saturating_mul(1000).max(0));
    if let Some(wait) = retry_after_ms {
        return wait.min(slot_ms);
    }
    let spread = slot_ms / 10;
    let mut random = [0u8; 4];
    // Without randomness the slot is used as it is.
    if spread == 0 || getrandom::fill(&mut random).is_err() {
        return slot_ms;
    }
    let offset = i64::from(u32::from_le_bytes(random)) % (2 * spread + 1) - spread;
    slot_ms + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(org: &str, endpoint: u128) -> Vec<DeliveryRef> {
        let endpoint = EndpointId::from(uuid::Uuid::from_u128(endpoint));
        let message = crate::ids::MessageId::new("m");
        vec![DeliveryRef::new(&OrgId::new(org), &message, &endpoint)]
    }

    #[test]
    fn a_quiet_organisation_goes_first_and_each_takes_its_turn() {
        let mut groups: Vec<_> = (0..5).map(|n| group("flood", n)).collect();
        groups.push(group("quiet", 9));
        groups.extend((10..12).map(|n| group("other", n)));
        let orgs: Vec<String> = fair_order(groups)
            .iter()
            .map(|group| group[0].org.to_string())
            .collect();
        assert_eq!(
            orgs,
            [
                "quiet", "other", "flood", "other", "flood", "flood", "flood", "flood"
            ]
        );
    }
}
