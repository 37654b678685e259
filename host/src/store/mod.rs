//! The key-value stores `hooksign serve` can keep the edge component's
//! `default` store in, behind one trait: the embedded SQLite file, and
//! Redis for several nodes.

use std::future::Future;
use std::pin::Pin;

mod counting;
mod defects;
mod redis;
mod sqlite;

pub use self::redis::RedisStore;
pub use counting::{Counting, Counts};
pub use defects::{Defect, Defective};
pub use sqlite::SqliteStore;

/// A failed store operation, in words; never holds a value or a credential.
pub type StoreError = String;

/// Keys with their values (`None`: absent), as a batch read answers them.
pub type Pairs = Vec<(String, Option<Vec<u8>>)>;

/// A store call's answer, awaited: a request's instance waits for it
/// without holding its worker thread (Redis answers over the network,
/// SQLite once the group the call is queued in is committed).
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An answer already made.
pub(crate) fn answered<'a, T: Send + 'a>(result: Result<T, StoreError>) -> Answer<'a, T> {
    Box::pin(std::future::ready(result))
}

/// The runtime a test's stores run on (the SQLite store's driver is a
/// task), shared by this crate's tests.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn test_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the tests")
    })
}

/// A store call's answer, waited for on the test runtime.
#[cfg(test)]
pub(crate) fn blocking<F: Future>(future: F) -> F::Output {
    test_runtime().block_on(future)
}

/// A SQLite store in `dir` on the test runtime.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn open_sqlite(dir: &std::path::Path) -> SqliteStore {
    let _entered = test_runtime().enter();
    SqliteStore::open(dir).expect("a SQLite store")
}

/// What the edge component's wasi:keyvalue `store`, `atomics` and `batch`
/// need. Each call is atomic on its own; [`KeyValueStore::swap`] and
/// [`KeyValueStore::increment`] are atomic across processes too.
pub trait KeyValueStore: Send + Sync {
    /// A value.
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Vec<u8>>>;
    /// The values of several keys with their keys (`None`: absent), in one
    /// call: wasi:keyvalue's batch read.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Pairs>;
    /// Writes a value.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Answer<'a, ()>;
    /// Writes several values in one call, all or none: wasi:keyvalue's
    /// batch write.
    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)]) -> Answer<'a, ()>;
    /// Removes a value; a missing key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> Answer<'a, ()>;
    /// Removes several values in one call: wasi:keyvalue's batch removal.
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, ()>;
    /// Every key, in order.
    fn keys(&self) -> Answer<'_, Vec<String>>;
    /// Writes `value` if the key holds `expected` (`None`: no value);
    /// otherwise writes nothing and answers what it holds now.
    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
    ) -> Answer<'a, Result<(), Option<Vec<u8>>>>;
    /// Adds `delta` to a counter (absent is 0) in the store's own counter
    /// format, and answers the new value.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> Answer<'a, i64>;
}
