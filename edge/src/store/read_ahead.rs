//! Reads ahead: a request that knows which keys it will read asks for them
//! in one batch, and each is then answered from that batch by its next
//! read, once. A value read ahead is as fresh as a read at that moment:
//! every change still goes through a compare-and-swap with the store, and
//! a key's second read, or any read after a write to it, goes to the store.

use std::cell::RefCell;
use std::collections::HashMap;

use super::BATCH_KEYS;
use crate::platform::{
    OutboundRequest, OutboundResponse, Platform, SendFailure, StoreError, get_many_holding,
};

/// A platform whose reads are answered first from a batch read ahead.
pub struct ReadAhead<'a, P> {
    inner: &'a P,
    /// Values read ahead and not yet used, by key (`None`: absent).
    values: RefCell<HashMap<String, Option<Vec<u8>>>>,
}

impl<'a, P: Platform> ReadAhead<'a, P> {
    /// Nothing read ahead yet.
    pub fn new(inner: &'a P) -> ReadAhead<'a, P> {
        ReadAhead {
            inner,
            values: RefCell::new(HashMap::new()),
        }
    }

    /// Reads `keys` and, on a host that begins a swap from what its
    /// instance read (one whose swaps are truthful: `hooksign serve`),
    /// `swapped`, keys that swaps will begin with: in batches of at most
    /// [`BATCH_KEYS`], skipping keys read ahead already. Elsewhere a swap
    /// reads its key anyway, and `swapped` is not read.
    pub fn read(&self, keys: &[String], swapped: &[String]) -> Result<(), StoreError> {
        let swapped = if self.inner.swaps_are_truthful() {
            swapped
        } else {
            &[]
        };
        let mut wanted: Vec<String> = Vec::with_capacity(keys.len() + swapped.len());
        {
            let values = self.values.borrow();
            for key in keys.iter().chain(swapped) {
                if !values.contains_key(key) && !wanted.contains(key) {
                    wanted.push(key.clone());
                }
            }
        }
        for keys in wanted.chunks(BATCH_KEYS) {
            let answer = self.inner.get_many(keys)?;
            self.values
                .borrow_mut()
                .extend(keys.iter().cloned().zip(answer));
        }
        Ok(())
    }

    /// The value read ahead for `key`, taken: its next read is the store's.
    fn take(&self, key: &str) -> Option<Option<Vec<u8>>> {
        self.values.borrow_mut().remove(key)
    }
}

impl<P: Platform> Platform for ReadAhead<'_, P> {
    type Snapshot = P::Snapshot;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.take(key) {
            Some(value) => Ok(value),
            None => self.inner.get(key),
        }
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let held = keys.iter().map(|key| self.take(key)).collect();
        get_many_holding(keys, held, |missing| self.inner.get_many(missing))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.take(key);
        self.inner.set(key, value)
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        for (key, _) in pairs {
            self.take(key);
        }
        self.inner.set_many(pairs)
    }
    /// Always the store's read: a host that remembers what its instance
    /// read begins the swap from the batch without a round trip.
    fn read_for_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Snapshot), StoreError> {
        self.take(key);
        self.inner.read_for_swap(key)
    }
    fn swap(&self, snapshot: Self::Snapshot, value: &[u8]) -> Result<bool, StoreError> {
        self.inner.swap(snapshot, value)
    }
    fn swaps_are_truthful(&self) -> bool {
        self.inner.swaps_are_truthful()
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.take(key);
        self.inner.delete(key)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.take(key);
        }
        self.inner.delete_many(keys)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.take(key);
        self.inner.increment(key, delta)
    }
    fn variable(&self, name: &str) -> Option<String> {
        self.inner.variable(name)
    }
    fn now_millis(&self) -> i64 {
        self.inner.now_millis()
    }
    fn send(
        &self,
        request: OutboundRequest,
        timeout_ms: u64,
    ) -> impl Future<Output = Result<OutboundResponse, SendFailure>> {
        self.inner.send(request, timeout_ms)
    }
    fn yield_now(&self) -> impl Future<Output = ()> {
        self.inner.yield_now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_string()).collect()
    }

    fn store_with(values: &[(&str, &[u8])]) -> FakePlatform {
        let platform = FakePlatform::default();
        for (key, value) in values {
            platform
                .entries
                .borrow_mut()
                .insert((*key).to_string(), value.to_vec());
        }
        platform
    }

    #[test]
    fn a_key_read_ahead_answers_its_next_read_once() -> Result<(), StoreError> {
        let store = store_with(&[("a", b"1")]);
        let ahead = ReadAhead::new(&store);
        ahead.read(&keys(&["a", "b", "a"]), &[])?;
        assert_eq!(*store.reads.borrow(), keys(&["a", "b"]));
        assert_eq!(ahead.get("a")?, Some(b"1".to_vec()));
        assert_eq!(ahead.get("b")?, None);
        assert_eq!(store.reads.borrow().len(), 2);
        // Read again: from the store, which another request changed.
        store.entries.borrow_mut().insert("a".into(), b"2".to_vec());
        assert_eq!(ahead.get("a")?, Some(b"2".to_vec()));
        assert_eq!(*store.reads.borrow(), keys(&["a", "b", "a"]));
        Ok(())
    }

    #[test]
    fn a_write_or_a_swap_forgets_what_was_read_ahead() -> Result<(), StoreError> {
        let five = 5i64.to_le_bytes();
        let store = store_with(&[("a", b"1"), ("b", &five), ("c", b"1")]);
        let ahead = ReadAhead::new(&store);
        ahead.read(&keys(&["a", "b", "c"]), &[])?;
        ahead.set("a", b"set")?;
        assert_eq!(ahead.get("a")?, Some(b"set".to_vec()));
        assert_eq!(ahead.increment("b", 1)?, 6);
        assert_eq!(ahead.get("b")?, Some(6i64.to_le_bytes().to_vec()));
        // A swap begins from the store's value, not the batch's.
        store.entries.borrow_mut().insert("c".into(), b"2".to_vec());
        let (value, snapshot) = ahead.read_for_swap("c")?;
        assert_eq!(value, Some(b"2".to_vec()));
        assert!(ahead.swap(snapshot, b"3")?);
        assert_eq!(ahead.get("c")?, Some(b"3".to_vec()));
        assert_eq!(
            *store.reads.borrow(),
            keys(&["a", "b", "c", "a", "b", "c", "c"])
        );
        Ok(())
    }

    #[test]
    fn a_batch_read_asks_the_store_only_for_keys_not_read_ahead() -> Result<(), StoreError> {
        let store = store_with(&[("a", b"1"), ("c", b"3")]);
        let ahead = ReadAhead::new(&store);
        ahead.read(&keys(&["b"]), &[])?;
        store
            .entries
            .borrow_mut()
            .insert("b".into(), b"late".to_vec());
        let values = ahead.get_many(&keys(&["a", "b", "c"]))?;
        assert_eq!(values, vec![Some(b"1".to_vec()), None, Some(b"3".to_vec())]);
        assert_eq!(*store.reads.borrow(), keys(&["b", "a", "c"]));
        Ok(())
    }

    #[test]
    fn keys_swaps_begin_with_are_read_only_where_the_host_remembers_them() -> Result<(), StoreError>
    {
        let store = store_with(&[("a", b"1"), ("s", b"2")]);
        store
            .defect
            .set(Some(crate::testing::SwapDefect::AbsentUpserts));
        ReadAhead::new(&store).read(&keys(&["a"]), &keys(&["s"]))?;
        assert_eq!(*store.reads.borrow(), keys(&["a"]));
        store.defect.set(None);
        ReadAhead::new(&store).read(&keys(&["a"]), &keys(&["s"]))?;
        assert_eq!(*store.reads.borrow(), keys(&["a", "a", "s"]));
        Ok(())
    }
}
