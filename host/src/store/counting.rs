//! A store that counts the calls made through it: under `hooksign serve
//! --log-store-calls` each request's instance gets one, and its counts are
//! logged when the instance ends (its first attempts included), so the
//! store round trips of each operation can be measured (BENCHMARKS.md)
//! and held to a ceiling by a test (`host/tests/store_calls.rs`). Every
//! call is one round trip on each store (Redis: one command or script).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Answer, KeyValueStore, Pairs};

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
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Vec<u8>>> {
        count(&self.counts.get);
        self.inner.get(key)
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Pairs> {
        count(&self.counts.get_many);
        self.inner.get_many(keys)
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Answer<'a, ()> {
        count(&self.counts.set);
        self.inner.set(key, value)
    }

    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)]) -> Answer<'a, ()> {
        count(&self.counts.set_many);
        self.inner.set_many(pairs)
    }

    fn delete<'a>(&'a self, key: &'a str) -> Answer<'a, ()> {
        count(&self.counts.delete);
        self.inner.delete(key)
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, ()> {
        count(&self.counts.delete_many);
        self.inner.delete_many(keys)
    }

    fn keys(&self) -> Answer<'_, Vec<String>> {
        count(&self.counts.keys);
        self.inner.keys()
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
    ) -> Answer<'a, Result<(), Option<Vec<u8>>>> {
        count(&self.counts.swap);
        self.inner.swap(key, expected, value)
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> Answer<'a, i64> {
        count(&self.counts.increment);
        self.inner.increment(key, delta)
    }
}
