//! A platform that answers reads of the keys a request already holds
//! ([`FollowUp::known`]) from those values, and passes everything else,
//! compare-and-swap reads included, to the platform it wraps: a first
//! attempt that follows its request's answer does not read again the
//! message and endpoint that request just held.

use std::future::Future;

use crate::foundation::problem::Problem;
use crate::platform::{
    FollowUp, OutboundRequest, OutboundResponse, Platform, SendFailure, StoreError,
    get_many_holding,
};

/// `inner`, with the values of a [`FollowUp`].
pub struct Knowing<'a, P> {
    /// The platform that does the work.
    pub inner: &'a P,
    /// The values known, by key.
    pub follow_up: &'a FollowUp,
}

impl<P: Platform> Knowing<'_, P> {
    /// The value the request holds at `key`, if it holds one.
    fn known(&self, key: &str) -> Option<&[u8]> {
        self.follow_up
            .known
            .iter()
            .find(|(known, _)| known == key)
            .map(|(_, value)| value.as_slice())
    }

    /// A value the request holds, if it holds one; never read from the store.
    pub fn known_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, Problem> {
        self.known(key)
            .map(|value| serde_json::from_slice(value).map_err(|_| Problem::store_unavailable()))
            .transpose()
    }
}

impl<P: Platform> Platform for Knowing<'_, P> {
    type Snapshot = P::Snapshot;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.known(key) {
            Some(value) => Ok(Some(value.to_vec())),
            None => self.inner.get(key),
        }
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let held = keys
            .iter()
            .map(|key| self.known(key).map(|value| Some(value.to_vec())))
            .collect();
        get_many_holding(keys, held, |missing| self.inner.get_many(missing))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set(key, value)
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.inner.set_many(pairs)
    }

    fn read_for_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Snapshot), StoreError> {
        self.inner.read_for_swap(key)
    }

    fn swap(&self, snapshot: Self::Snapshot, value: &[u8]) -> Result<bool, StoreError> {
        self.inner.swap(snapshot, value)
    }

    fn swaps_are_truthful(&self) -> bool {
        self.inner.swaps_are_truthful()
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.inner.delete_many(keys)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
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

    #[test]
    fn a_batch_read_answers_the_keys_held_and_reads_only_the_others() {
        let platform = FakePlatform::default();
        platform.entries.borrow_mut().extend([
            ("held".to_string(), b"stale".to_vec()),
            ("other".to_string(), b"stored".to_vec()),
        ]);
        let follow_up = FollowUp {
            deliveries: Vec::new(),
            known: vec![("held".to_string(), b"held".to_vec())],
        };
        let knowing = Knowing {
            inner: &platform,
            follow_up: &follow_up,
        };
        let keys = ["other", "held", "absent"].map(String::from);
        let values = knowing.get_many(&keys).unwrap_or_default();
        assert_eq!(
            values,
            [Some(b"stored".to_vec()), Some(b"held".to_vec()), None]
        );
        let read: Vec<Vec<String>> = platform.batches.borrow().clone();
        assert_eq!(read, [["other", "absent"].map(String::from).to_vec()]);
    }
}
