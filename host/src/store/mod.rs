//! The key-value stores `hooksign serve` can keep the edge component's
//! `default` store in, behind one trait: the embedded SQLite file, and
//! Redis for several nodes.

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

/// What the edge component's wasi:keyvalue `store` and `atomics` need.
/// Each call is atomic on its own; [`KeyValueStore::swap`] and
/// [`KeyValueStore::increment`] are atomic across processes too.
pub trait KeyValueStore: Send + Sync {
    /// A value.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values of several keys with their keys (`None`: absent), in one
    /// call: wasi:keyvalue's batch read.
    fn get_many(&self, keys: &[String]) -> Result<Pairs, StoreError>;
    /// Writes a value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Writes several values in one call, all or none: wasi:keyvalue's
    /// batch write.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError>;
    /// Removes a value; a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Removes several values in one call: wasi:keyvalue's batch removal.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError>;
    /// Every key, in order.
    fn keys(&self) -> Result<Vec<String>, StoreError>;
    /// Writes `value` if the key holds `expected` (`None`: no value);
    /// otherwise writes nothing and returns what it holds now.
    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Result<(), Option<Vec<u8>>>, StoreError>;
    /// Adds `delta` to a counter (absent is 0) in the store's own counter
    /// format, and returns the new value.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
}
