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

use super::{Answer, KeyValueStore, Pairs};

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
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Vec<u8>>> {
        self.inner.get(key)
    }

    #[allow(clippy::panic)]
    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Pairs> {
        Box::pin(async move {
            match self.defect {
                Defect::ReportsFailure | Defect::ConflictReportsSuccess => match keys {
                    [] => Ok(Vec::new()),
                    [key] if self.inner.get(key).await?.is_none() => Ok(Vec::new()),
                    [_] => panic!(
                        "a batch read of one present key, which Spin's Redis store cannot answer"
                    ),
                    _ => Err("wrong number of arguments for 'keys' command".into()),
                },
                Defect::AbsentUpserts => Ok(self
                    .inner
                    .get_many(keys)
                    .await?
                    .into_iter()
                    .filter(|(_, value)| value.is_some())
                    .collect()),
            }
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> Answer<'a, ()> {
        self.inner.set(key, value)
    }

    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)]) -> Answer<'a, ()> {
        self.inner.set_many(pairs)
    }

    fn delete<'a>(&'a self, key: &'a str) -> Answer<'a, ()> {
        self.inner.delete(key)
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, ()> {
        self.inner.delete_many(keys)
    }

    fn keys(&self) -> Answer<'_, Vec<String>> {
        self.inner.keys()
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
    ) -> Answer<'a, Result<(), Option<Vec<u8>>>> {
        Box::pin(async move {
            match self.defect {
                Defect::ReportsFailure => {
                    // Made or not, it answers a conflict.
                    let _made = self.inner.swap(key, expected, value).await?;
                    Ok(Err(self.inner.get(key).await?))
                }
                Defect::ConflictReportsSuccess => {
                    self.inner.swap(key, expected, value).await.map(|_| Ok(()))
                }
                Defect::AbsentUpserts if expected.is_none() => {
                    self.inner.set(key, value).await.map(Ok)
                }
                Defect::AbsentUpserts => self.inner.swap(key, expected, value).await,
            }
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> Answer<'a, i64> {
        self.inner.increment(key, delta)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{blocking, open_sqlite};

    fn store(dir: &std::path::Path, defect: Defect) -> Defective {
        let inner = Arc::new(open_sqlite(dir));
        blocking(inner.set("present", b"1")).unwrap();
        Defective { inner, defect }
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_string()).collect()
    }

    #[test]
    fn batch_reads_answer_as_spins_providers_do() {
        let dir = tempfile::tempdir().unwrap();
        let redis = store(dir.path(), Defect::ReportsFailure);
        assert!(blocking(redis.get_many(&keys(&["present", "absent"]))).is_err());
        assert!(
            blocking(redis.get_many(&keys(&["absent"])))
                .unwrap()
                .is_empty()
        );
        let sqlite = store(dir.path(), Defect::AbsentUpserts);
        let answer = blocking(sqlite.get_many(&keys(&["absent", "present"]))).unwrap();
        assert_eq!(answer, vec![("present".to_string(), Some(b"1".to_vec()))]);
    }

    #[test]
    #[should_panic(expected = "one present key")]
    fn a_batch_read_of_one_present_key_loses_the_request_as_on_spins_redis() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), Defect::ConflictReportsSuccess);
        let _ = blocking(store.get_many(&keys(&["present"])));
    }
}
