//! The queue: where a pending delivery waits to be found when it is due.
//! An accept writes an entry of its own; the indexes above the entries
//! change only with the first entry of an organisation, a second or a
//! minute, so no traffic, another organisation's or its own, grows what an
//! accept rewrites:
//!
//! - `due/{second}/{org}/{n}`: deliveries of the organisation due in that
//!   Unix second, one key per request that listed them (`n` counted
//!   atomically in `due/{second}/{org}/count`), so a request writes a few
//!   bytes however busy the second;
//! - `due/{second}/{org}/swept`: how far a pass has swept them (below);
//! - `due/{second}`: the organisations with entries in that second;
//! - `due/minute/{minute}`: the seconds of that minute with entries (60 at
//!   most);
//! - `due/minutes`: the minutes with entries (no more than the retry
//!   schedule spans).
//!
//! Each is written before the list it points at, so a pass that walks
//! them down misses nothing; an emptied list is dropped, bottom up, only
//! once it is [`SETTLED_SECONDS`] old, when nothing can be listed in it
//! any more (every delivery is listed at its due time, which is never in
//! the past by more than a request's duration). Entries stay listed until
//! a pass sees they are done, so concurrent senders do not all rewrite
//! the same list.
//!
//! A pass reads only the entries past `due/{second}/{org}/swept`: the
//! entries up to it are done and removed, so a busy second is read whole
//! once, not by every pass until it is dropped. A missing entry may be
//! one counted by a request that has not written it yet, so the mark
//! moves only over entries seen done; one seen done past a missing one is
//! left as an empty list (`[]`) until the mark reaches it.
//!
//! Before it, every organisation shared one list a second (`queue/{second}`,
//! indexed by `queue/seconds`); a pass still drains those.

use std::collections::BTreeSet;

use crate::foundation::problem::Problem;
use crate::ids::OrgId;
use crate::platform::{DeliveryRef, Platform};
use crate::store::{self, Writes, get_json, get_many_json, keys, update_json, update_or_default};

/// How old an emptied list must be before it is dropped.
const SETTLED_SECONDS: i64 = 120;

/// Lists deliveries, in order, as due at `at_ms`: for each organisation,
/// one entry for all of them.
pub fn enqueue_all(
    platform: &impl Platform,
    deliveries: &[DeliveryRef],
    at_ms: i64,
) -> Result<(), Problem> {
    let mut entries = Writes::default();
    enqueue_into(platform, deliveries, at_ms, &mut entries)?;
    entries.write(platform)
}

/// [`enqueue_all`], its entries left in `entries` for the caller to write
/// with its own before it counts them as listed. An entry counted and not
/// yet written is skipped ([`entries`]).
pub fn enqueue_into(
    platform: &impl Platform,
    deliveries: &[DeliveryRef],
    at_ms: i64,
    entries: &mut Writes,
) -> Result<(), Problem> {
    let second = at_ms.div_euclid(1000);
    let orgs: BTreeSet<&OrgId> = deliveries.iter().map(|delivery| &delivery.org).collect();
    for org in orgs {
        index(platform, org, second)?;
        let listed: Vec<&DeliveryRef> = deliveries
            .iter()
            .filter(|delivery| delivery.org == *org)
            .collect();
        // A key of its own: written as it is, no other request writes it.
        let n = platform.increment(&keys::due_count(second, org), 1)?;
        entries.set_json(keys::due_entry(second, org, n), &listed)?;
    }
    Ok(())
}

/// Lists the organisation in the second, and the second and its minute
/// above it when they are new: one read when the organisation has entries
/// in that second already.
fn index(platform: &impl Platform, org: &OrgId, second: i64) -> Result<(), Problem> {
    let orgs: Option<Vec<OrgId>> = get_json(platform, &keys::due_orgs(second))?;
    if orgs.as_ref().is_some_and(|orgs| orgs.contains(org)) {
        return Ok(());
    }
    let minute = second.div_euclid(60);
    let seconds: Option<Vec<i64>> = get_json(platform, &keys::due_minute(minute))?;
    if seconds.is_none() {
        update_or_default(platform, keys::DUE_MINUTES, |minutes: &mut Vec<i64>| {
            add(minutes, minute);
        })?;
    }
    if !seconds.is_some_and(|seconds| seconds.contains(&second)) {
        update_or_default(
            platform,
            &keys::due_minute(minute),
            |seconds: &mut Vec<i64>| add(seconds, second),
        )?;
    }
    update_or_default(
        platform,
        &keys::due_orgs(second),
        |orgs: &mut Vec<OrgId>| {
            add(orgs, org.clone());
        },
    )
}

fn add<T: PartialEq>(list: &mut Vec<T>, entry: T) {
    if !list.contains(&entry) {
        list.push(entry);
    }
}

/// One list of deliveries due in a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub second: i64,
    owner: Owner,
    /// The entries counted in it, and how far they are swept.
    count: i64,
    swept: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Org(OrgId),
    /// A second's list shared by every organisation, as written before.
    Shared,
}

/// Deliveries listed together under one key of a place.
pub struct Entry {
    key: String,
    /// Its number in its place; `None` for the shared list of before.
    number: Option<i64>,
    pub deliveries: Vec<DeliveryRef>,
}

/// What a pass is done with in a place: the writes that unlist what its
/// entries' deliveries are done with, and the entries emptied, to be
/// removed as the place's swept mark moves past them ([`Sweep::write`]).
pub struct Sweep {
    /// The place's organisation and second; `None` for the shared list.
    place: Option<(OrgId, i64)>,
    /// The mark as read: every entry up to it is done and removed.
    swept: i64,
    /// Entries done with: read as an empty list, or emptied now.
    emptied: BTreeSet<i64>,
    /// Of those, the ones read as an empty list.
    empty_as_read: BTreeSet<i64>,
    writes: Writes,
}

impl Sweep {
    /// Writes what the pass left in it; then moves the place's mark past
    /// the entries done with that follow it without a gap, and removes
    /// them. One done with past a gap (an entry counted but not seen) is
    /// kept as an empty list, for a later pass's mark to pass over.
    pub fn write(mut self, platform: &impl Platform) -> Result<(), Problem> {
        let Some((org, second)) = self.place.take() else {
            return self.writes.write(platform);
        };
        let mut swept = self.swept;
        while self.emptied.contains(&(swept + 1)) {
            swept += 1;
        }
        for &n in &self.emptied {
            let key = keys::due_entry(second, &org, n);
            if n <= swept {
                self.writes.remove(key);
            } else if !self.empty_as_read.contains(&n) {
                self.writes.set_json(key, &Vec::<DeliveryRef>::new())?;
            }
        }
        self.writes.write(platform)?;
        if swept == self.swept {
            return Ok(());
        }
        // Passes that race move it only forward.
        update_json(
            platform,
            &keys::due_swept(second, &org),
            |marked: Option<i64>| Ok(((marked.unwrap_or(0) < swept).then_some(swept), ())),
        )
    }
}

/// A second up to now that may have entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueSecond {
    pub second: i64,
    /// It has a shared list of before.
    shared: bool,
}

/// The seconds up to `now` that may have entries, oldest first. An empty
/// old minute is dropped here.
pub fn due_seconds(platform: &impl Platform, now: i64) -> Result<Vec<DueSecond>, Problem> {
    let shared: Vec<i64> = get_json(platform, keys::QUEUE_SECONDS)?.unwrap_or_default();
    let mut seconds: Vec<DueSecond> = shared
        .into_iter()
        .map(|second| DueSecond {
            second,
            shared: true,
        })
        .collect();
    let minutes: Vec<i64> = get_json(platform, keys::DUE_MINUTES)?.unwrap_or_default();
    for minute in minutes
        .into_iter()
        .filter(|minute| *minute <= now.div_euclid(60))
    {
        let listed: Vec<i64> = get_json(platform, &keys::due_minute(minute))?.unwrap_or_default();
        if listed.is_empty() && minute * 60 < now - SETTLED_SECONDS {
            forget_minute(platform, minute)?;
        }
        seconds.extend(listed.into_iter().map(|second| DueSecond {
            second,
            shared: false,
        }));
    }
    seconds.retain(|due| due.second <= now);
    seconds.sort_unstable();
    seconds.dedup();
    Ok(seconds)
}

/// The lists of the seconds, in order: each organisation's, or the shared
/// one of before; their indexes, counts and marks read in batches. An
/// empty old second is dropped from its minute here.
pub fn places(
    platform: &impl Platform,
    seconds: &[DueSecond],
    now: i64,
) -> Result<Vec<Place>, Problem> {
    let index_keys: Vec<String> = seconds
        .iter()
        .filter(|due| !due.shared)
        .map(|due| keys::due_orgs(due.second))
        .collect();
    // In the order of `seconds`, one for each that is not shared.
    let mut indexes = get_many_json::<Vec<OrgId>>(platform, &index_keys)?.into_iter();
    let mut places = Vec::new();
    for due in seconds {
        let place = |owner| Place {
            second: due.second,
            owner,
            count: 0,
            swept: 0,
        };
        if due.shared {
            places.push(place(Owner::Shared));
            continue;
        }
        let orgs = indexes.next().flatten().unwrap_or_default();
        if orgs.is_empty() && due.second < now - SETTLED_SECONDS {
            forget_second(platform, due.second)?;
        }
        places.extend(orgs.into_iter().map(|org| place(Owner::Org(org))));
    }
    let marks: Vec<String> = places
        .iter()
        .filter_map(|place| match &place.owner {
            Owner::Org(org) => Some([
                keys::due_count(place.second, org),
                keys::due_swept(place.second, org),
            ]),
            Owner::Shared => None,
        })
        .flatten()
        .collect();
    let mut read = store::get_many(platform, &marks)?.into_iter();
    for place in places
        .iter_mut()
        .filter(|place| place.owner != Owner::Shared)
    {
        let (Some(count), Some(swept)) = (read.next(), read.next()) else {
            return Err(Problem::store_unavailable());
        };
        place.count = store::counter_value(count.as_deref())?;
        place.swept = swept
            .as_deref()
            .map(store::decode)
            .transpose()?
            .unwrap_or(0);
    }
    Ok(places)
}

/// The entries of a place not yet swept, in the order listed, and the
/// place's [`Sweep`]; a number counted but not (yet) written is skipped,
/// and so is an entry left empty.
pub fn entries(platform: &impl Platform, place: &Place) -> Result<(Vec<Entry>, Sweep), Problem> {
    let mut sweep = Sweep {
        place: None,
        swept: 0,
        emptied: BTreeSet::new(),
        empty_as_read: BTreeSet::new(),
        writes: Writes::default(),
    };
    let org = match &place.owner {
        Owner::Org(org) => org,
        Owner::Shared => {
            let key = keys::queue(place.second);
            let listed: Option<Vec<DeliveryRef>> = get_json(platform, &key)?;
            let entries = listed
                .into_iter()
                .filter(|deliveries| !deliveries.is_empty())
                .map(|deliveries| Entry {
                    key: key.clone(),
                    number: None,
                    deliveries,
                })
                .collect();
            return Ok((entries, sweep));
        }
    };
    sweep.swept = place.swept;
    sweep.place = Some((org.clone(), place.second));
    let numbers = place.swept + 1..=place.count;
    let keys: Vec<String> = numbers
        .clone()
        .map(|n| keys::due_entry(place.second, org, n))
        .collect();
    let values: Vec<Option<Vec<DeliveryRef>>> = get_many_json(platform, &keys)?;
    let mut entries = Vec::new();
    for ((n, key), deliveries) in numbers.zip(keys).zip(values) {
        match deliveries {
            None => {}
            Some(deliveries) if deliveries.is_empty() => {
                sweep.emptied.insert(n);
                sweep.empty_as_read.insert(n);
            }
            Some(deliveries) => entries.push(Entry {
                key,
                number: Some(n),
                deliveries,
            }),
        }
    }
    Ok((entries, sweep))
}

/// Removes deliveries from an entry: a numbered entry's one write is left
/// in `sweep`, for a pass to make with the other entries' in a batch (an
/// entry emptied is noted there instead); the shared list of before is
/// changed at once. Passes that race write what each leaves; a delivery
/// one of them put back is found done and removed by the next.
pub fn unlist(
    platform: &impl Platform,
    entry: &Entry,
    done: &[DeliveryRef],
    sweep: &mut Sweep,
) -> Result<(), Problem> {
    if done.is_empty() {
        return Ok(());
    }
    if let Some(n) = entry.number {
        let left: Vec<&DeliveryRef> = entry
            .deliveries
            .iter()
            .filter(|delivery| !done.contains(delivery))
            .collect();
        if left.is_empty() {
            sweep.emptied.insert(n);
            return Ok(());
        }
        return sweep.writes.set_json(entry.key.clone(), &left);
    }
    update_json(platform, &entry.key, |listed: Option<Vec<DeliveryRef>>| {
        Ok(match listed {
            Some(mut listed) if listed.iter().any(|entry| done.contains(entry)) => {
                listed.retain(|entry| !done.contains(entry));
                (Some(listed), ())
            }
            _ => (None, ()),
        })
    })
}

/// Drops a place found empty, its entries and marks, and its entry in the
/// index above it, once it is old enough that nothing can be listed in it
/// any more; whether it did.
pub fn forget(platform: &impl Platform, place: &Place, now: i64) -> Result<bool, Problem> {
    if place.second >= now - SETTLED_SECONDS {
        return Ok(false);
    }
    match &place.owner {
        Owner::Org(org) => {
            // Every number, not only those left empty: one a racing pass
            // wrote back behind the mark is not read again.
            let mut removals = Writes::default();
            for n in 1..=place.count {
                removals.remove(keys::due_entry(place.second, org, n));
            }
            removals.write(platform)?;
            store::remove(platform, &keys::due_swept(place.second, org))?;
            store::remove(platform, &keys::due_count(place.second, org))?;
            let left = remove_entry(platform, &keys::due_orgs(place.second), org)?;
            if left == 0 {
                forget_second(platform, place.second)?;
            }
        }
        Owner::Shared => {
            store::remove(platform, &keys::queue(place.second))?;
            remove_entry(platform, keys::QUEUE_SECONDS, &place.second)?;
        }
    }
    Ok(true)
}

/// Removes every entry of the organisation's queue, in every second, and
/// takes it off each second's list.
pub fn erase_org(platform: &impl Platform, org: &OrgId) -> Result<(), Problem> {
    let minutes: Vec<i64> = get_json(platform, keys::DUE_MINUTES)?.unwrap_or_default();
    for minute in minutes {
        let seconds: Vec<i64> = get_json(platform, &keys::due_minute(minute))?.unwrap_or_default();
        for second in seconds {
            let orgs: Vec<OrgId> = get_json(platform, &keys::due_orgs(second))?.unwrap_or_default();
            if !orgs.contains(org) {
                continue;
            }
            let count = store::read_counter(platform, &keys::due_count(second, org))?;
            for n in 1..=count {
                store::remove(platform, &keys::due_entry(second, org, n))?;
            }
            store::remove(platform, &keys::due_count(second, org))?;
            store::remove(platform, &keys::due_swept(second, org))?;
            remove_entry(platform, &keys::due_orgs(second), org)?;
        }
    }
    Ok(())
}

/// Removes an entry from a stored list; returns how many are left.
fn remove_entry<T>(platform: &impl Platform, key: &str, entry: &T) -> Result<usize, Problem>
where
    T: PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    update_json(platform, key, |listed: Option<Vec<T>>| {
        let mut listed = listed.unwrap_or_default();
        listed.retain(|listed| listed != entry);
        let left = listed.len();
        Ok((Some(listed), left))
    })
}

/// Drops a second whose organisations are all gone from its minute, and
/// the minute once it has no second left.
fn forget_second(platform: &impl Platform, second: i64) -> Result<(), Problem> {
    store::remove(platform, &keys::due_orgs(second))?;
    let minute = second.div_euclid(60);
    if remove_entry(platform, &keys::due_minute(minute), &second)? == 0 {
        forget_minute(platform, minute)?;
    }
    Ok(())
}

/// Drops a minute whose seconds are all gone.
fn forget_minute(platform: &impl Platform, minute: i64) -> Result<(), Problem> {
    store::remove(platform, &keys::due_minute(minute))?;
    remove_entry(platform, keys::DUE_MINUTES, &minute)?;
    Ok(())
}
