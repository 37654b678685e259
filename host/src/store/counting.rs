//! A store that counts the calls made through it: under `hooksign serve
//! --log-store-calls` each request's instance gets one, and its counts are
//! logged when the instance ends (its first attempts included), so the
//! store round trips of each operation can be measured (BENCHMARKS.md)
//! and held to a ceiling by a test (`host/tests/store_calls.rs`). Every
//! call is one round trip on each store (Redis: one command or script).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{KeyValueStore, Pairs, StoreError};

/// The calls of each kind.
#[derive(Debug, Default)]
pub struct Counts {
    get: AtomicU64,
    get_many: AtomicU64,
    set: AtomicU64,
    set_many: AtomicU64,
    delete: AtomicU64,
    delete_many: AtomicU64,
    keys: AtomicU64,
    swap: AtomicU64,
    increment: AtomicU64,
}

impl Counts {
    fn all(&self) -> [(&'static str, u64); 9] {
        let load = |count: &AtomicU64| count.load(Ordering::Relaxed);
        [
            ("get", load(&self.get)),
            ("get-many", load(&self.get_many)),
            ("set", load(&self.set)),
            ("set-many", load(&self.set_many)),
            ("delete", load(&self.delete)),
            ("delete-many", load(&self.delete_many)),
            ("keys", load(&self.keys)),
            ("swap", load(&self.swap)),
            ("increment", load(&self.increment)),
        ]
    }

    /// `N store calls (G get, S set, …)`, kinds never called left out.
    pub fn summary(&self) -> String {
        let all = self.all();
        let total: u64 = all.iter().map(|(_, count)| count).sum();
        let kinds: Vec<String> = all
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(kind, count)| format!("{count} {kind}"))
            .collect();
        format!("{total} store calls ({})", kinds.join(", "))
    }
}

/// Counts each call, then makes it on `inner`.
pub struct Counting {
    /// The store that does the work.
    pub inner: Arc<dyn KeyValueStore>,
    /// Where the calls are counted.
    pub counts: Arc<Counts>,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl KeyValueStore for Counting {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        count(&self.counts.get);
        self.inner.get(key)
    }

    fn get_many(&self, keys: &[String]) -> Result<Pairs, StoreError> {
        count(&self.counts.get_many);
        self.inner.get_many(keys)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        count(&self.counts.set);
        self.inner.set(key, value)
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        count(&self.counts.set_many);
        self.inner.set_many(pairs)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        count(&self.counts.delete);
        self.inner.delete(key)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        count(&self.counts.delete_many);
        self.inner.delete_many(keys)
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        count(&self.counts.keys);
        self.inner.keys()
    }

    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Result<(), Option<Vec<u8>>>, StoreError> {
        count(&self.counts.swap);
        self.inner.swap(key, expected, value)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        count(&self.counts.increment);
        self.inner.increment(key, delta)
    }
}
