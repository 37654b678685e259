//! The store layer: the key schema ([`keys`]) and the ways to change a
//! key that stay right on Spin's stores. Spin's key-value store writes one
//! key atomically and has no transactions, so every change is one key's,
//! ordered by its domain module to leave nothing half-written.
//!
//! Every read-modify-write of a shared key (an endpoint, an index, a
//! counter) goes through [`update_json`]: the write is a compare-and-swap
//! against what was read, retried on a fresh read if another request wrote
//! first, so concurrent changes are applied one after the other, none lost.

pub mod keys;
mod read_ahead;

pub use read_ahead::ReadAhead;

use serde::Serialize;

use crate::foundation::problem::{Code, Problem};
use crate::ids::OrgId;
use crate::platform::{Platform, StoreError};
use crate::store::keys::OrgList;

/// How many times a change is retried when other requests keep changing
/// the same key first; past it the request gets 503 `store_busy`.
const MAX_TRIES: usize = 128;

/// A stored JSON value; an unreadable one is a store failure.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|_| Problem::store_unavailable())
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value).map_err(|_| Problem::store_unavailable())
}

/// Reads a JSON value.
pub fn get_json<T: serde::de::DeserializeOwned>(
    platform: &impl Platform,
    key: &str,
) -> Result<Option<T>, Problem> {
    platform.get(key)?.as_deref().map(decode).transpose()
}

/// The most keys one batch read asks for: a few hundred kilobytes of
/// records at most (Spin's stores refuse an answer past a byte limit).
pub const BATCH_KEYS: usize = 128;

/// Reads several JSON values, in the order of `keys`, in batches of at
/// most [`BATCH_KEYS`] where the host has them ([`Platform::get_many`]).
pub fn get_many_json<T: serde::de::DeserializeOwned>(
    platform: &impl Platform,
    keys: &[String],
) -> Result<Vec<Option<T>>, Problem> {
    get_many(platform, keys)?
        .iter()
        .map(|value| value.as_deref().map(decode).transpose())
        .collect()
}

/// Reads several values as stored, in the order of `keys`, in batches of
/// at most [`BATCH_KEYS`].
pub fn get_many(
    platform: &impl Platform,
    keys: &[String],
) -> Result<Vec<Option<Vec<u8>>>, Problem> {
    let mut values = Vec::with_capacity(keys.len());
    for keys in keys.chunks(BATCH_KEYS) {
        values.extend(platform.get_many(keys)?);
    }
    Ok(values)
}

/// A value as a key holds it, for [`crate::platform::FollowUp::known`].
pub fn known(key: String, value: &impl Serialize) -> Result<(String, Vec<u8>), Problem> {
    Ok((key, encode(value)?))
}

/// Writes a JSON value.
pub fn set_json(
    platform: &impl Platform,
    key: &str,
    value: &impl Serialize,
) -> Result<(), Problem> {
    Ok(platform.set(key, &encode(value)?)?)
}

/// Plain writes and removals gathered to go to the store in batches
/// ([`Platform::set_many`], [`Platform::delete_many`]), each to a key that
/// no request writes by compare-and-swap meanwhile (a queue entry, a log
/// entry, a delivery's record under its sender's lease): their order
/// among themselves is not kept, so nothing may read one as a sign that
/// another is written.
#[derive(Default)]
pub struct Writes {
    sets: Vec<(String, Vec<u8>)>,
    removals: Vec<String>,
}

impl Writes {
    /// Adds the write of a JSON value.
    pub fn set_json(&mut self, key: String, value: &impl Serialize) -> Result<(), Problem> {
        self.sets.push((key, encode(value)?));
        Ok(())
    }

    /// Adds the removal of a key.
    pub fn remove(&mut self, key: String) {
        self.removals.push(key);
    }

    /// Writes them all, then removes: one call for a batch of at most
    /// [`BATCH_KEYS`] of each, a plain call for one, nothing for none.
    pub fn write(self, platform: &impl Platform) -> Result<(), Problem> {
        in_batches(
            &self.sets,
            |(key, value)| platform.set(key, value),
            |pairs| platform.set_many(pairs),
        )?;
        in_batches(
            &self.removals,
            |key| platform.delete(key),
            |keys| platform.delete_many(keys),
        )?;
        Ok(())
    }
}

/// `one` for a single item, `many` for each [`BATCH_KEYS`] of several.
fn in_batches<T>(
    items: &[T],
    one: impl Fn(&T) -> Result<(), StoreError>,
    many: impl Fn(&[T]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    match items {
        [] => Ok(()),
        [item] => one(item),
        items => items.chunks(BATCH_KEYS).try_for_each(many),
    }
}

/// Reads a JSON value, lets `change` compute its successor (`None`: leave
/// the key as it is) and a result, and writes the successor by
/// compare-and-swap against that very read. On a store that answers swaps
/// truthfully (the host says so: [`Platform::swaps_are_truthful`]) a swap
/// that is made is the change made; one that is refused is tried again on
/// a fresh read. Otherwise, whatever the swap reports, the key is read
/// again and `change` applied again, until it finds itself in place (it
/// returns `None`, or the value it would write is the one stored): a
/// change is only taken as made once a read shows it.
///
/// So `change` must be idempotent: applied to its own result, it writes
/// nothing and returns the same result. That keeps every update correct on
/// stores whose compare-and-swap misreports (Spin's Redis provider reports
/// every swap as failed, and with that fixed would report a conflicting
/// one as done; its SQLite provider upserts a swap on an absent key), and
/// on a swap whose answer is lost.
pub fn update_json<T, R>(
    platform: &impl Platform,
    key: &str,
    mut change: impl FnMut(Option<T>) -> Result<(Option<T>, R), Problem>,
) -> Result<R, Problem>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    let truthful = platform.swaps_are_truthful();
    for _ in 0..MAX_TRIES {
        let (read, snapshot) = platform.read_for_swap(key)?;
        let current = read.as_deref().map(decode).transpose()?;
        let (next, result) = change(current)?;
        let Some(next) = next else {
            return Ok(result);
        };
        let next = encode(&next)?;
        if read.as_deref() == Some(next.as_slice()) {
            return Ok(result);
        }
        // A truthful swap on an absent key is atomic as any other.
        let creating = read.is_none() && !truthful;
        if creating && !may_create(platform, key)? {
            // Another request is creating the key: wait for its write.
            std::thread::sleep(CREATION_WAIT);
            continue;
        }
        match platform.swap(snapshot, &next) {
            Ok(true) if truthful => return Ok(result),
            // Refused, or not trusted either way: the next round's read
            // decides.
            Ok(_) => {}
            Err(error) => {
                if creating {
                    // Hand the turn on rather than leave others waiting for it.
                    let _ = platform.delete(&keys::creation(key));
                }
                return Err(error.into());
            }
        }
    }
    Err(Problem::new(
        Code::StoreBusy,
        "other requests kept changing the same record; try again",
    ))
}

/// Whether this request may write an absent key. Spin's SQLite store
/// upserts a compare-and-swap on an absent key, so two requests that both
/// read "absent" would both write, the second over the first after the
/// first had confirmed its write. So only one request per key creates it:
/// the one whose count of the key's creation counter is 1, since counting
/// is atomic on every store. A creator whose write fails hands the turn
/// on; should it die before writing, the turn passes on after
/// [`CREATOR_TURN`] more counts.
fn may_create(platform: &impl Platform, key: &str) -> Result<bool, Problem> {
    let ticket = platform.increment(&keys::creation(key), 1)?;
    Ok(ticket % CREATOR_TURN == 1)
}

/// How many creation counts one creator's turn lasts (each waiting round
/// of another request counts one).
const CREATOR_TURN: i64 = 256;

/// How long a request waits for another's creation before reading again.
const CREATION_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Removes a key written through [`update_json`], and its creation counter
/// (kept only where swaps are confirmed).
pub fn remove(platform: &impl Platform, key: &str) -> Result<(), Problem> {
    platform.delete(key)?;
    if !platform.swaps_are_truthful() {
        platform.delete(&keys::creation(key))?;
    }
    Ok(())
}

/// [`remove`] of several keys in one batch removal ([`BATCH_KEYS`] a
/// call): a store that removes a batch at once (`hooksign serve`'s) never
/// shows some of them gone and the others still there.
pub fn remove_together(platform: &impl Platform, removed: Vec<String>) -> Result<(), Problem> {
    let confirmed = !platform.swaps_are_truthful();
    let mut removals = Writes::default();
    for key in removed {
        if confirmed {
            removals.remove(keys::creation(&key));
        }
        removals.remove(key);
    }
    removals.write(platform)
}

/// A counter written by [`Platform::increment`] (absent: 0). Stores keep
/// them differently: Spin's SQLite store as 8 little-endian bytes, Redis as
/// decimal text; 8 decimal digits never end in a zero byte, and a count
/// small enough to matter (under 2^56) always does.
pub fn read_counter(platform: &impl Platform, key: &str) -> Result<i64, Problem> {
    counter_value(platform.get(key)?.as_deref())
}

/// The count a counter's stored bytes hold ([`read_counter`]).
pub fn counter_value(bytes: Option<&[u8]>) -> Result<i64, Problem> {
    let Some(bytes) = bytes else {
        return Ok(0);
    };
    if let Ok(little_endian) = <[u8; 8]>::try_from(bytes)
        && little_endian[7] == 0
    {
        return Ok(i64::from_le_bytes(little_endian));
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(Problem::store_unavailable)
}

/// [`update_json`] for a value that starts as its default: sets kept as
/// lists. `change` must be idempotent (add if absent, remove).
pub fn update_or_default<T>(
    platform: &impl Platform,
    key: &str,
    mut change: impl FnMut(&mut T),
) -> Result<(), Problem>
where
    T: Default + Serialize + serde::de::DeserializeOwned,
{
    update_json(platform, key, |value: Option<T>| {
        let mut value = value.unwrap_or_default();
        change(&mut value);
        Ok((Some(value), ()))
    })
}

/// Stores `record` at `key` if nothing is there; `taken` is the problem
/// when something else is (a record found equal is this call's own write,
/// found by a confirming read).
pub fn create_json<T>(
    platform: &impl Platform,
    key: &str,
    record: &T,
    taken: impl Fn() -> Problem,
) -> Result<(), Problem>
where
    T: Clone + PartialEq + Serialize + serde::de::DeserializeOwned,
{
    update_json(platform, key, |stored: Option<T>| match stored {
        None => Ok((Some(record.clone()), ())),
        Some(stored) if stored == *record => Ok((None, ())),
        Some(_) => Err(taken()),
    })
}

/// Adds `item` to a sorted list unless it is there: the change for
/// [`update_or_default`] of an index kept in order.
pub fn insert_sorted<T: Ord + Clone>(list: &mut Vec<T>, item: &T) {
    if let Err(at) = list.binary_search(item) {
        list.insert(at, item.clone());
    }
}

/// An organisation's list; while it is absent, the list at its key from
/// before every segment was encoded ([`keys::unencoded_org_list`]), so no
/// organisation loses its list.
pub fn get_org_list<T: Default + serde::de::DeserializeOwned>(
    platform: &impl Platform,
    list: OrgList,
    org: &OrgId,
) -> Result<T, Problem> {
    let found = match get_json(platform, &keys::org_list(list, org))? {
        None => match keys::unencoded_org_list(list, org) {
            Some(old_key) => get_json(platform, &old_key)?,
            None => None,
        },
        found => found,
    };
    Ok(found.unwrap_or_default())
}

/// [`update_or_default`] of an organisation's list: a first write starts
/// from the list at its old key (see [`get_org_list`]).
pub fn update_org_list<T>(
    platform: &impl Platform,
    list: OrgList,
    org: &OrgId,
    mut change: impl FnMut(&mut T),
) -> Result<(), Problem>
where
    T: Default + Clone + Serialize + serde::de::DeserializeOwned,
{
    let new_key = keys::org_list(list, org);
    let old: Option<T> = match keys::unencoded_org_list(list, org) {
        Some(old_key) if platform.get(&new_key)?.is_none() => get_json(platform, &old_key)?,
        _ => None,
    };
    update_json(platform, &new_key, |value: Option<T>| {
        let mut value = value.or_else(|| old.clone()).unwrap_or_default();
        change(&mut value);
        Ok((Some(value), ()))
    })
}

/// Keeps `done` among the newest `keep` entries of a record's ring of
/// changes already applied: a change finds itself there when its swap was
/// made but reported failed, and is applied once.
pub fn remember<T>(recent: &mut Vec<T>, done: T, keep: usize) {
    recent.push(done);
    let excess = recent.len().saturating_sub(keep);
    recent.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;

    fn gathered(count: usize) -> Writes {
        let mut writes = Writes::default();
        for n in 0..count {
            writes
                .set_json(format!("entry/{n}"), &n)
                .unwrap_or_default();
        }
        writes
    }

    #[test]
    fn gathered_writes_go_in_as_few_calls_as_the_batch_size_allows() {
        for (count, calls, batches) in [(0, 0, 0), (1, 1, 0), (2, 1, 1), (BATCH_KEYS + 1, 2, 2)] {
            let platform = FakePlatform::default();
            assert!(gathered(count).write(&platform).is_ok());
            assert_eq!(platform.writes.get(), calls, "{count} writes");
            assert_eq!(
                platform.write_batches.borrow().len(),
                batches,
                "{count} writes"
            );
            for n in 0..count {
                let value: Option<usize> =
                    get_json(&platform, &format!("entry/{n}")).ok().flatten();
                assert_eq!(value, Some(n));
            }
        }
    }

    #[test]
    fn gathered_removals_go_in_as_few_calls_as_the_batch_size_allows() {
        for (count, calls) in [(0, 0), (1, 1), (2, 1), (BATCH_KEYS + 1, 2)] {
            let platform = FakePlatform::default();
            assert!(gathered(count).write(&platform).is_ok());
            let mut removals = Writes::default();
            for n in 0..count {
                removals.remove(format!("entry/{n}"));
            }
            assert!(removals.write(&platform).is_ok());
            let batches: Vec<usize> = platform.removals.borrow().iter().map(Vec::len).collect();
            assert_eq!(batches.len(), calls, "{count} removals");
            assert_eq!(batches.iter().sum::<usize>(), count, "{count} removals");
            assert!(platform.entries.borrow().is_empty(), "{count} removals");
        }
    }
}
