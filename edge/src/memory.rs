//! A key-value store in memory with the [`Platform`](crate::Platform) store
//! semantics, for platforms without a host: the tests and the fuzz targets.

use std::cell::{RefCell, RefMut};
use std::collections::BTreeMap;

/// Keys and values in a map; one thread.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    /// A value.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.borrow().get(key).cloned()
    }

    /// Writes a value.
    pub fn set(&self, key: &str, value: &[u8]) {
        self.entries.borrow_mut().insert(key.into(), value.to_vec());
    }

    /// Writes `value` if the key holds `expected` (`None`: no value); `false`
    /// if it holds something else.
    pub fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> bool {
        let mut entries = self.entries.borrow_mut();
        if entries.get(key).map(Vec::as_slice) != expected {
            return false;
        }
        entries.insert(key.into(), value.to_vec());
        true
    }

    /// Removes a value, if there is one.
    pub fn delete(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }

    /// Every entry, to read or change directly.
    pub fn entries(&self) -> RefMut<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.borrow_mut()
    }
}
