//! The platform layer: what the edge service and its host exchange. The
//! host hands in a [`Request`] and a [`Platform`] (its key-value store,
//! variables, clock and outbound HTTP) and takes back a [`Response`];
//! nothing here knows a route, a record or a key.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::ids::{EndpointId, MessageId, OrgId};

/// One message at one endpoint: the handle a [`Response`] gives the host
/// for each delivery it queued, and the host hands back to
/// [`follow_up`](crate::follow_up). Its store key is
/// `store::keys::delivery`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRef {
    /// The organisation.
    pub org: OrgId,
    /// The message.
    pub message: MessageId,
    /// The endpoint.
    pub endpoint: EndpointId,
}

impl DeliveryRef {
    /// The delivery of a message to an endpoint.
    pub fn new(org: &OrgId, message: &MessageId, endpoint: &EndpointId) -> DeliveryRef {
        DeliveryRef {
            org: org.clone(),
            message: message.clone(),
            endpoint: endpoint.clone(),
        }
    }
}

/// What a request leaves for [`follow_up`](crate::follow_up): the
/// deliveries it queued, and store values it holds already, which their
/// first attempts take instead of reading them again. Such a value is as
/// old as the request (milliseconds): no staler than one read before a
/// send, which a change during the send outdates as well.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowUp {
    /// The deliveries, in order.
    pub deliveries: Vec<DeliveryRef>,
    /// Values by store key.
    pub known: Vec<(String, Vec<u8>)>,
}

impl FollowUp {
    /// Deliveries with nothing known beforehand.
    pub fn of(deliveries: Vec<DeliveryRef>) -> FollowUp {
        FollowUp {
            deliveries,
            known: Vec::new(),
        }
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }
}

/// An HTTP request as the service sees it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Deliveries the request queued: the host sends them with
    /// [`follow_up`](crate::follow_up) once the answer is out.
    pub follow_up: FollowUp,
}

impl Response {
    /// A response with a body.
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Response {
        Response {
            status,
            headers,
            body,
            follow_up: FollowUp::default(),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        // Serialising our own types cannot fail: they hold no maps with non-string keys.
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response::new(
            status,
            vec![("content-type".into(), "application/json".into())],
            body,
        )
    }
}

/// The `User-Agent` of every request the service sends.
pub const USER_AGENT: &str = concat!("hooksign/", env!("CARGO_PKG_VERSION"));

/// An outgoing delivery: always a `POST`, made by [`OutboundRequest::post`].
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The target URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How much of the answer's body to read; the rest is dropped unread.
    pub response_limit: usize,
}

impl OutboundRequest {
    /// A `POST` of `body` to `url` with `headers`, then the headers every
    /// send carries: `Content-Length` (the body is known, so it is never
    /// sent chunked: many receivers read only `Content-Length`) and
    /// [`USER_AGENT`].
    pub fn post(
        url: String,
        mut headers: Vec<(String, String)>,
        body: Vec<u8>,
        response_limit: usize,
    ) -> OutboundRequest {
        headers.push(("content-length".into(), body.len().to_string()));
        headers.push(("user-agent".into(), USER_AGENT.into()));
        OutboundRequest {
            url,
            headers,
            body,
            response_limit,
        }
    }
}

/// What a receiver answered.
#[derive(Debug, Clone, Default)]
pub struct OutboundResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a delivery got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// No answer within the timeout.
    Timeout,
    /// The connection failed or the exchange broke off; the text says how.
    Failed(String),
    /// The host's outbound policy refused the target (an internal address
    /// that a public name resolved to); the text says so.
    Refused(String),
}

impl SendFailure {
    /// What happened, in words.
    pub fn reason(&self, timeout_ms: u64) -> String {
        match self {
            SendFailure::Timeout => format!("no answer within {timeout_ms} ms"),
            SendFailure::Failed(reason) | SendFailure::Refused(reason) => reason.clone(),
        }
    }
}

/// A platform that counts its store calls and how many failed (for the
/// metrics); everything else passes through.
pub struct Counted<'a, P> {
    inner: &'a P,
    calls: std::cell::Cell<u64>,
    errors: std::cell::Cell<u64>,
}

impl<'a, P: Platform> Counted<'a, P> {
    /// Counts `inner`'s store calls from now on.
    pub fn new(inner: &'a P) -> Counted<'a, P> {
        Counted {
            inner,
            calls: std::cell::Cell::new(0),
            errors: std::cell::Cell::new(0),
        }
    }

    /// The store calls made, and how many of them failed.
    pub fn counts(&self) -> (u64, u64) {
        (self.calls.get(), self.errors.get())
    }

    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.calls.set(self.calls.get() + 1);
        if result.is_err() {
            self.errors.set(self.errors.get() + 1);
        }
        result
    }
}

impl<P: Platform> Platform for Counted<'_, P> {
    type Snapshot = P::Snapshot;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.note(self.inner.get(key))
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.note(self.inner.get_many(keys))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.note(self.inner.set(key, value))
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.note(self.inner.set_many(pairs))
    }
    fn read_for_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Snapshot), StoreError> {
        self.note(self.inner.read_for_swap(key))
    }
    fn swap(&self, snapshot: Self::Snapshot, value: &[u8]) -> Result<bool, StoreError> {
        self.note(self.inner.swap(snapshot, value))
    }
    fn swaps_are_truthful(&self) -> bool {
        self.inner.swaps_are_truthful()
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.note(self.inner.delete(key))
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.note(self.inner.delete_many(keys))
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.note(self.inner.increment(key, delta))
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

/// A host's batch read answer (wasi:keyvalue `get-many`: keys with their
/// values) as the values of `keys`, in their order. A key the answer
/// leaves out is absent (Spin's SQLite store answers only the keys it
/// holds); a key it names that was not asked for is no answer (Spin's
/// Redis store matches keys as patterns).
pub fn batch_answer_in_order(
    keys: &[String],
    answer: Vec<(String, Option<Vec<u8>>)>,
) -> Vec<Option<Vec<u8>>> {
    let mut answer: std::collections::HashMap<String, Option<Vec<u8>>> =
        answer.into_iter().collect();
    keys.iter()
        .map(|key| answer.remove(key).flatten())
        .collect()
}

/// The values of `keys`, in their order, where a wrapper holds some of
/// them already (`held`: `Some(value)` for each it holds) and `read` reads
/// the others in one batch (none if it holds them all).
pub fn get_many_holding(
    keys: &[String],
    mut held: Vec<Option<Option<Vec<u8>>>>,
    read: impl FnOnce(&[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    let missing: Vec<String> = keys
        .iter()
        .zip(&held)
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| key.clone())
        .collect();
    if !missing.is_empty() {
        let mut read = read(&missing)?.into_iter();
        for value in held.iter_mut().filter(|value| value.is_none()) {
            *value = Some(read.next().flatten());
        }
    }
    Ok(held.into_iter().map(Option::flatten).collect())
}

/// The key-value store failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// The name of the variable by which a host says that its store answers
/// every compare-and-swap truthfully (`hooksign serve` sets it to `true`
/// for its own stores). Spin's stores do not (docs/DEPLOYING.md): under
/// Spin it stays unset, and every swap is confirmed by a read.
pub const TRUTHFUL_SWAPS_VARIABLE: &str = "store_swaps_are_truthful";

/// What the service needs from its host.
pub trait Platform {
    /// A value read for a compare-and-swap ([`Platform::read_for_swap`]).
    type Snapshot;

    /// A value of the key-value store.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values of several keys, in their order, in one round trip where
    /// the host has a batch read (wasi:keyvalue `batch`); otherwise one
    /// read each.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|key| self.get(key)).collect()
    }
    /// Writes one value; a write is atomic per key.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Writes several values in one round trip where the host has a batch
    /// write (wasi:keyvalue `batch`); otherwise one write each. Each write
    /// is atomic per key, and none is ordered before another.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        pairs
            .iter()
            .try_for_each(|(key, value)| self.set(key, value))
    }
    /// A value, read as the start of a compare-and-swap: [`Platform::swap`]
    /// writes only if the key still holds what this read.
    fn read_for_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Snapshot), StoreError>;
    /// Writes `value` only if the key still holds what `snapshot` read, as
    /// one atomic step; `Ok(false)`, writing nothing, if it holds something
    /// else. Concurrent changes to one record go through this.
    fn swap(&self, snapshot: Self::Snapshot, value: &[u8]) -> Result<bool, StoreError>;
    /// Whether [`Platform::swap`]'s answer can be taken as it is (see
    /// [`TRUTHFUL_SWAPS_VARIABLE`]); otherwise a read confirms each swap.
    fn swaps_are_truthful(&self) -> bool;
    /// Removes a value; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Removes several values in one round trip where the host has a batch
    /// removal (wasi:keyvalue `batch`); otherwise one removal each.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        keys.iter().try_for_each(|key| self.delete(key))
    }
    /// Adds `delta` to a counter (absent: 0) as one atomic step and returns
    /// the new value. Unlike a compare-and-swap on an absent key, this is
    /// atomic on every store Spin has, so "the first to count 1" decides
    /// who creates a record.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// A configuration variable (`api_keys`, …), if set.
    fn variable(&self, name: &str) -> Option<String>;
    /// The wall clock, Unix milliseconds.
    fn now_millis(&self) -> i64;
    /// POSTs a delivery and waits at most `timeout_ms` for the answer and
    /// the first `response_limit` bytes of its body.
    fn send(
        &self,
        request: OutboundRequest,
        timeout_ms: u64,
    ) -> impl Future<Output = Result<OutboundResponse, SendFailure>>;
    /// Lets the other tasks of the instance whose waits are over (sends
    /// answered meanwhile) run first: one round of the host's event loop.
    /// A host without one goes on at once.
    fn yield_now(&self) -> impl Future<Output = ()> {
        std::future::ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_string()).collect()
    }

    #[test]
    fn a_batch_answer_is_put_in_the_order_asked_whatever_the_host_left_out() {
        let asked = keys(&["a", "b", "c"]);
        let value = |bytes: &[u8]| Some(bytes.to_vec());
        // As the interface says: every key, absent ones with no value.
        let whole = vec![
            ("c".to_string(), value(b"3")),
            ("a".to_string(), value(b"1")),
            ("b".to_string(), None),
        ];
        let expected = vec![value(b"1"), None, value(b"3")];
        assert_eq!(batch_answer_in_order(&asked, whole), expected);
        // Spin's SQLite store: only the keys it holds.
        let held = vec![
            ("c".to_string(), value(b"3")),
            ("a".to_string(), value(b"1")),
        ];
        assert_eq!(batch_answer_in_order(&asked, held), expected);
        // A key not asked for is nobody's value.
        let stray = vec![("a*".to_string(), value(b"x"))];
        assert_eq!(batch_answer_in_order(&keys(&["a"]), stray), vec![None]);
    }
}
