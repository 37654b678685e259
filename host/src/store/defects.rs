//! A test mode of every store: compare-and-swap that misreports as Spin's
//! own key-value providers do (spinframework/spin: `key-value-redis`
//! answers every swap with the error of its UNWATCH, and with that fixed
//! would take an aborted EXEC for success; `key-value-spin` upserts a swap
//! on an absent key), and batch reads answered as each of them answers
//! them (`key-value-redis` sends `KEYS` with the keys as patterns;
//! `key-value-spin` leaves absent keys out). The edge component must stay
//! correct on them; the
//! concurrency, fault and multi-node tests run through each
//! (`hooksign serve --store-defect NAME`, hidden).

use std::sync::Arc;

use super::{KeyValueStore, Pairs, StoreError};

/// Which misreport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Every swap reports a conflict, made or not.
    ReportsFailure,
    /// A conflicting swap reports success with nothing written.
    ConflictReportsSuccess,
    /// A swap on an absent key writes over whatever is there.
    AbsentUpserts,
}

impl Defect {
    /// By its command-line name.
    pub fn named(name: &str) -> Option<Defect> {
        match name {
            "reports-failure" => Some(Defect::ReportsFailure),
            "conflict-reports-success" => Some(Defect::ConflictReportsSuccess),
            "absent-upserts" => Some(Defect::AbsentUpserts),
            _ => None,
        }
    }
}

/// A store whose swaps misreport.
pub struct Defective {
    /// The store that does the work.
    pub inner: Arc<dyn KeyValueStore>,
    /// How its swaps misreport.
    pub defect: Defect,
}

impl KeyValueStore for Defective {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    /// The two Redis defects answer as Spin's Redis provider: `KEYS k1 k2
    /// …` fails for several keys; for one it lists the key if present,
    /// which redis-rs's conversion to pairs meets with `unreachable!`: a
    /// panic of the host's task, the request lost. The SQLite defect
    /// answers only the keys present.
    #[allow(clippy::panic)]
    fn get_many(&self, keys: &[String]) -> Result<Pairs, StoreError> {
        match self.defect {
            Defect::ReportsFailure | Defect::ConflictReportsSuccess => match keys {
                [] => Ok(Vec::new()),
                [key] if self.inner.get(key)?.is_none() => Ok(Vec::new()),
                [_] => panic!(
                    "a batch read of one present key, which Spin's Redis store cannot answer"
                ),
                _ => Err("wrong number of arguments for 'keys' command".into()),
            },
            Defect::AbsentUpserts => Ok(self
                .inner
                .get_many(keys)?
                .into_iter()
                .filter(|(_, value)| value.is_some())
                .collect()),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set(key, value)
    }

    /// As it is: both of Spin's providers write a batch whole.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.inner.set_many(pairs)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.inner.delete_many(keys)
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.inner.keys()
    }

    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Result<(), Option<Vec<u8>>>, StoreError> {
        match self.defect {
            Defect::ReportsFailure => {
                // Made or not, it answers a conflict.
                let _made = self.inner.swap(key, expected, value)?;
                Ok(Err(self.inner.get(key)?))
            }
            Defect::ConflictReportsSuccess => self.inner.swap(key, expected, value).map(|_| Ok(())),
            Defect::AbsentUpserts if expected.is_none() => self.inner.set(key, value).map(Ok),
            Defect::AbsentUpserts => self.inner.swap(key, expected, value),
        }
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.inner.increment(key, delta)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::SqliteStore;

    fn store(dir: &std::path::Path, defect: Defect) -> Defective {
        let inner = Arc::new(SqliteStore::open(dir).unwrap());
        inner.set("present", b"1").unwrap();
        Defective { inner, defect }
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_string()).collect()
    }

    #[test]
    fn batch_reads_answer_as_spins_providers_do() {
        let dir = tempfile::tempdir().unwrap();
        let redis = store(dir.path(), Defect::ReportsFailure);
        assert!(redis.get_many(&keys(&["present", "absent"])).is_err());
        assert!(redis.get_many(&keys(&["absent"])).unwrap().is_empty());
        let sqlite = store(dir.path(), Defect::AbsentUpserts);
        let answer = sqlite.get_many(&keys(&["absent", "present"])).unwrap();
        assert_eq!(answer, vec![("present".to_string(), Some(b"1".to_vec()))]);
    }

    #[test]
    #[should_panic(expected = "one present key")]
    fn a_batch_read_of_one_present_key_loses_the_request_as_on_spins_redis() {
        let dir = tempfile::tempdir().unwrap();
        let _ = store(dir.path(), Defect::ConflictReportsSuccess).get_many(&keys(&["present"]));
    }
}
