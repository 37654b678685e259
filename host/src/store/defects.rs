//! A test mode of every store: compare-and-swap that misreports as Spin's
//! own key-value providers do (spinframework/spin: `key-value-redis`
//! answers every swap with the error of its UNWATCH, and with that fixed
//! would take an aborted EXEC for success; `key-value-spin` upserts a swap
//! on an absent key). The edge component must stay correct on them; the
//! concurrency, fault and multi-node tests run through each
//! (`hooksign serve --store-defect NAME`, hidden).

use std::sync::Arc;

use super::{KeyValueStore, StoreError};

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

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.set(key, value)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
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
