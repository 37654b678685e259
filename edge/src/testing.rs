//! A [`Platform`] without a host, for the native tests and the fuzz
//! targets (feature `testing`): a key-value map, a settable clock, writes
//! that can be made to fail or to race, and a sender that records what it
//! is given and answers as told.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::platform::{OutboundRequest, OutboundResponse, Platform, SendFailure, StoreError};

/// Runs just before a compare-and-swap or an increment with the whole
/// store, as if another request wrote between a read and this request's
/// next step; returns `false` when done.
pub type Meddler = Box<dyn FnMut(&mut BTreeMap<String, Vec<u8>>) -> bool>;

/// A way a store's compare-and-swap misreports, as Spin's stores do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapDefect {
    /// Every swap reports failure, made or not (Spin's Redis provider:
    /// its UNWATCH after EXEC fails).
    ReportsFailure,
    /// A conflicting swap reports success with nothing written (that
    /// provider with the UNWATCH fixed: EXEC's nil is taken as success).
    ConflictReportsSuccess,
    /// A swap on an absent key writes whatever is there (Spin's SQLite
    /// provider's upsert).
    AbsentUpserts,
}

/// Answers the `n`th send (from 0).
pub type Responder =
    Box<dyn FnMut(usize, &OutboundRequest) -> Result<OutboundResponse, SendFailure>>;

/// An in-memory platform; one thread.
pub struct FakePlatform {
    /// The key-value store.
    pub entries: RefCell<BTreeMap<String, Vec<u8>>>,
    /// The clock, Unix milliseconds.
    pub now_ms: Cell<i64>,
    /// How far the clock moves at each reading (0: it stands still).
    pub tick_ms: Cell<i64>,
    /// Writes left before every write fails; `None`: never fail.
    pub writes_left: Cell<Option<usize>>,
    /// A batch write with a key that begins with this fails, and only it.
    pub failing_batches: RefCell<Option<String>>,
    /// Every request sent, in order.
    pub sent: RefCell<Vec<OutboundRequest>>,
    /// How sends are answered.
    pub responder: RefCell<Responder>,
    /// See [`Meddler`].
    pub meddler: RefCell<Option<Meddler>>,
    /// A [`Meddler`] called after a swap has written: other requests'
    /// writes between a swap and its confirming read.
    pub after_swap: RefCell<Option<Meddler>>,
    /// Every key read, in order (a batch's keys too).
    pub reads: RefCell<Vec<String>>,
    /// The keys of every batch read, in order.
    pub batches: RefCell<Vec<Vec<String>>>,
    /// The keys of every batch write, in order.
    pub write_batches: RefCell<Vec<Vec<String>>>,
    /// The keys of every removal, one list per call, in order.
    pub removals: RefCell<Vec<Vec<String>>>,
    /// The variables.
    pub variables: RefCell<BTreeMap<String, String>>,
    /// The name of every variable read.
    pub variables_read: RefCell<std::collections::BTreeSet<String>>,
    /// How compare-and-swap misreports, if it does.
    pub defect: Cell<Option<SwapDefect>>,
    /// Writes made (sets, swaps, increments).
    pub writes: Cell<usize>,
    /// Each send, once out, waits once for its answer (pending, woken at
    /// once), as a real send does, so that sends started side by side are
    /// in flight together.
    pub sends_wait: Cell<bool>,
}

impl Default for FakePlatform {
    fn default() -> FakePlatform {
        FakePlatform {
            entries: RefCell::default(),
            now_ms: Cell::new(1_700_000_000_000),
            tick_ms: Cell::new(0),
            writes_left: Cell::new(None),
            failing_batches: RefCell::new(None),
            sent: RefCell::default(),
            responder: RefCell::new(Box::new(|_, _| Ok(answer(200)))),
            meddler: RefCell::new(None),
            after_swap: RefCell::new(None),
            reads: RefCell::default(),
            batches: RefCell::default(),
            write_batches: RefCell::default(),
            removals: RefCell::default(),
            variables: RefCell::default(),
            variables_read: RefCell::default(),
            defect: Cell::new(None),
            writes: Cell::new(0),
            sends_wait: Cell::new(false),
        }
    }
}

/// A receiver's answer with this status and the body `ok`.
pub fn answer(status: u16) -> OutboundResponse {
    OutboundResponse {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: b"ok".to_vec(),
    }
}

impl FakePlatform {
    /// Sets a variable.
    pub fn set_variable(&self, name: &str, value: impl Into<String>) {
        self.variables
            .borrow_mut()
            .insert(name.into(), value.into());
    }

    /// The bytes of the values under `prefix` written or changed since the
    /// store held `before`.
    pub fn bytes_changed_since(&self, before: &BTreeMap<String, Vec<u8>>, prefix: &str) -> usize {
        self.entries
            .borrow()
            .iter()
            .filter(|(key, value)| key.starts_with(prefix) && before.get(*key) != Some(*value))
            .map(|(_, value)| value.len())
            .sum()
    }

    /// Answers every later send with this status.
    pub fn answer_with(&self, status: u16) {
        *self.responder.borrow_mut() = Box::new(move |_, _| Ok(answer(status)));
    }

    fn meddle(&self) {
        let mut meddler = self.meddler.borrow_mut();
        if let Some(meddle) = meddler.as_mut()
            && !meddle(&mut self.entries.borrow_mut())
        {
            *meddler = None;
        }
    }

    fn spend_write(&self) -> Result<(), StoreError> {
        self.writes.set(self.writes.get() + 1);
        match self.writes_left.get() {
            Some(0) => Err(StoreError("injected failure".into())),
            Some(left) => {
                self.writes_left.set(Some(left - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Platform for FakePlatform {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads.borrow_mut().push(key.into());
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.batches.borrow_mut().push(keys.to_vec());
        keys.iter().map(|key| self.get(key)).collect()
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.spend_write()?;
        self.entries.borrow_mut().insert(key.into(), value.to_vec());
        Ok(())
    }

    /// One write, all or nothing.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        if let Some(prefix) = self.failing_batches.borrow().as_deref()
            && pairs.iter().any(|(key, _)| key.starts_with(prefix))
        {
            return Err(StoreError("injected batch failure".into()));
        }
        self.spend_write()?;
        self.write_batches
            .borrow_mut()
            .push(pairs.iter().map(|(key, _)| key.clone()).collect());
        self.entries.borrow_mut().extend(pairs.iter().cloned());
        Ok(())
    }

    /// The key and the value read.
    type Snapshot = (String, Option<Vec<u8>>);

    fn read_for_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Snapshot), StoreError> {
        let read = self.get(key)?;
        Ok((read.clone(), (key.to_string(), read)))
    }

    /// Swaps truthfully unless [`FakePlatform::defect`] says how it
    /// misreports.
    fn swap(&self, (key, expected): Self::Snapshot, value: &[u8]) -> Result<bool, StoreError> {
        self.spend_write()?;
        self.meddle();
        let expected = expected.as_deref();
        let key = key.as_str();
        let mut entries = self.entries.borrow_mut();
        let matches = entries.get(key).map(Vec::as_slice) == expected;
        let defect = self.defect.get();
        let writes = matches || (expected.is_none() && defect == Some(SwapDefect::AbsentUpserts));
        if writes {
            entries.insert(key.into(), value.to_vec());
            let mut after_swap = self.after_swap.borrow_mut();
            if let Some(meddle) = after_swap.as_mut()
                && !meddle(&mut entries)
            {
                *after_swap = None;
            }
        }
        Ok(match defect {
            Some(SwapDefect::ReportsFailure) => false,
            Some(SwapDefect::ConflictReportsSuccess) => true,
            Some(SwapDefect::AbsentUpserts) | None => writes,
        })
    }

    fn swaps_are_truthful(&self) -> bool {
        self.defect.get().is_none()
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.removals.borrow_mut().push(vec![key.into()]);
        self.entries.borrow_mut().remove(key);
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.removals.borrow_mut().push(keys.to_vec());
        let mut entries = self.entries.borrow_mut();
        for key in keys {
            entries.remove(key);
        }
        Ok(())
    }

    /// 8 little-endian bytes, as Spin's SQLite store keeps a counter.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.spend_write()?;
        self.meddle();
        let mut entries = self.entries.borrow_mut();
        let current = match entries.get(key) {
            None => 0,
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(i64::from_le_bytes)
                .map_err(|_| StoreError("not a counter".into()))?,
        };
        let next = current.saturating_add(delta);
        entries.insert(key.into(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    fn variable(&self, name: &str) -> Option<String> {
        self.variables_read.borrow_mut().insert(name.into());
        self.variables.borrow().get(name).cloned()
    }

    fn now_millis(&self) -> i64 {
        let now = self.now_ms.get();
        self.now_ms.set(now + self.tick_ms.get());
        now
    }

    async fn send(
        &self,
        request: OutboundRequest,
        _timeout_ms: u64,
    ) -> Result<OutboundResponse, SendFailure> {
        let n = self.sent.borrow().len();
        let answer = (self.responder.borrow_mut())(n, &request);
        self.sent.borrow_mut().push(request);
        if self.sends_wait.get() {
            self.yield_now().await;
        }
        answer
    }

    /// One round of `block_on`'s loop: the other tasks woken go first.
    async fn yield_now(&self) {
        let mut yielded = false;
        std::future::poll_fn(|context| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            context.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await;
    }
}
