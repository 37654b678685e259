//! The hooksign edge service as a Spin HTTP component: a thin shell that
//! hands Spin's request, key-value store (through wasi:keyvalue, which has
//! the compare-and-swap Spin's own key-value interface lacks), variables and
//! outbound HTTP to `hooksign-edge`, where the logic lives.

#![allow(unsafe_code)] // the export glue that `#[http_component]` generates

// Linked for its `hooksign:webhooks/signing` exports (the `edge` world).
extern crate hooksign_signing;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use futures::future::{Either, select};
use futures::{SinkExt as _, StreamExt as _};
use hooksign_edge::{OutboundRequest, OutboundResponse, Platform, SendFailure, StoreError};
use spin_sdk::http::{
    Fields, IncomingRequest, IncomingResponse, Method, OutgoingResponse, Request, ResponseOutparam,
};
use spin_sdk::http_component;
// wasi:keyvalue as spin-sdk binds it.
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store as wasi_store};
use wasi::clocks::monotonic_clock;

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let (path, query) = match request.path_with_query() {
        Some(target) => match target.split_once('?') {
            Some((path, query)) => (path.to_string(), Some(query.to_string())),
            None => (target, None),
        },
        None => ("/".to_string(), None),
    };
    // Every header line as received: repeated webhook headers must stay
    // visible to verification (spin-sdk's `Request` keeps one per name).
    let mut headers: Vec<(String, String)> = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    // wasi:http hands the Host header over as the authority; the service
    // builds dashboard links on it.
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        && let Some(authority) = request.authority()
    {
        headers.push(("host".into(), authority));
    }
    let mut edge_request = hooksign_edge::Request {
        method: request.method().to_string(),
        path,
        query,
        headers,
        body: Vec::new(),
    };
    // A request its headers settle (no route, no API key) is answered
    // without reading its body.
    if let Some(response) = hooksign_edge::answer_before_body(&edge_request) {
        respond(response_out, response).await;
        return;
    }
    edge_request.body = read_body(request).await;
    let platform = Spin {
        bucket: wasi_store::open(DEFAULT_STORE).ok(),
        // Read once a request: every update asks.
        truthful_swaps: spin_sdk::variables::get(hooksign_edge::TRUTHFUL_SWAPS_VARIABLE)
            .is_ok_and(|value| value.trim() == "true"),
        batch_reads: std::cell::Cell::new(true),
    };
    let response = hooksign_edge::handle(&platform, &edge_request).await;
    let follow_up = respond(response_out, response).await;
    // The answer is out; the deliveries it queued get their first attempt
    // now, in this invocation (the dispatcher retries what fails).
    if !follow_up.is_empty()
        && let Err(problem) = hooksign_edge::follow_up(&platform, &follow_up).await
    {
        eprintln!("hooksign: first attempts stopped: {}", problem.code());
    }
}

/// Sends the whole answer and closes it; returns the deliveries to send next.
async fn respond(
    response_out: ResponseOutparam,
    response: hooksign_edge::Response,
) -> hooksign_edge::FollowUp {
    let headers: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    let Ok(fields) = Fields::from_list(&headers) else {
        eprintln!("hooksign: a response header was refused");
        return hooksign_edge::FollowUp::default();
    };
    let outgoing = OutgoingResponse::new(fields);
    if outgoing.set_status_code(response.status).is_err() {
        eprintln!("hooksign: status {} was refused", response.status);
    }
    let mut body = outgoing.take_body();
    response_out.set(outgoing);
    if let Err(error) = body.send(response.body).await {
        eprintln!("hooksign: the answer's body broke off: {error:?}");
    }
    // Dropping the sink finishes the body: the client has all of it.
    drop(body);
    response.follow_up
}

/// The body, read up to one byte past the limit (the service answers 413
/// for that) so that an oversized upload is not held in memory. A body
/// that breaks off is taken as what arrived.
async fn read_body(request: IncomingRequest) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = pin!(request.into_body_stream());
    while let Some(Ok(chunk)) = chunks.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > hooksign_edge::MAX_BODY_BYTES {
            body.truncate(hooksign_edge::MAX_BODY_BYTES + 1);
            break;
        }
    }
    body
}

/// The store label granted in spin.toml.
const DEFAULT_STORE: &str = "default";

/// Spin's services, as the edge logic needs them.
struct Spin {
    /// The `default` store; `None` if the component may not open it.
    bucket: Option<wasi_store::Bucket>,
    /// The host says its store answers compare-and-swap truthfully.
    truthful_swaps: bool,
    /// Batch reads have not failed in this instance.
    batch_reads: std::cell::Cell<bool>,
}

impl Spin {
    fn bucket(&self) -> Result<&wasi_store::Bucket, StoreError> {
        self.bucket
            .as_ref()
            .ok_or_else(|| StoreError("the default key-value store is not available".into()))
    }
}

fn bucket_error(error: wasi_store::Error) -> StoreError {
    StoreError(match error {
        wasi_store::Error::NoSuchStore => "no such store".into(),
        wasi_store::Error::AccessDenied => "access to the store was denied".into(),
        wasi_store::Error::Other(reason) => reason,
    })
}

impl Platform for Spin {
    /// wasi:keyvalue's swap in progress: the value read when it began.
    type Snapshot = atomics::Cas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket()?.get(key).map_err(bucket_error)
    }

    /// Spin's Redis store makes a batch read a `KEYS` command with the
    /// keys as patterns (spinframework/spin 94a8fc8a,
    /// `crates/key-value-redis/src/store.rs`): several keys fail, one
    /// absent key answers nothing (right), and one present key panics its
    /// host in redis-rs's conversion. So one key is read alone, and after
    /// a failed batch every read is single, for the rest of the instance.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.len() > 1 && self.batch_reads.get() {
            match batch::get_many(self.bucket()?, keys) {
                Ok(answer) => return Ok(hooksign_edge::batch_answer_in_order(keys, answer)),
                Err(_) => self.batch_reads.set(false),
            }
        }
        keys.iter().map(|key| self.get(key)).collect()
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bucket()?.set(key, value).map_err(bucket_error)
    }

    /// Spin's stores write a batch whole (its SQLite store in one
    /// transaction, its Redis store with `MSET`: spinframework/spin
    /// 94a8fc8a).
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        batch::set_many(self.bucket()?, pairs).map_err(bucket_error)
    }

    fn read_for_swap(&self, key: &str) -> Result<(Option<Vec<u8>>, atomics::Cas), StoreError> {
        let cas = atomics::Cas::new(self.bucket()?, key).map_err(bucket_error)?;
        let current = cas.current().map_err(bucket_error)?;
        Ok((current, cas))
    }

    fn swap(&self, cas: atomics::Cas, value: &[u8]) -> Result<bool, StoreError> {
        match atomics::swap(cas, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(error)) => Err(bucket_error(error)),
        }
    }

    fn swaps_are_truthful(&self) -> bool {
        self.truthful_swaps
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bucket()?.delete(key).map_err(bucket_error)
    }

    /// Spin's stores remove a batch with one statement (its SQLite store)
    /// or one `DEL` (its Redis store): spinframework/spin 94a8fc8a.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        batch::delete_many(self.bucket()?, keys).map_err(bucket_error)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(self.bucket()?, key, delta).map_err(bucket_error)
    }

    fn variable(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).ok()
    }

    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            })
    }

    async fn send(
        &self,
        request: OutboundRequest,
        timeout_ms: u64,
    ) -> Result<OutboundResponse, SendFailure> {
        let limit = request.response_limit;
        let mut builder = Request::builder();
        builder
            .method(Method::Post)
            .uri(request.url)
            .body(request.body);
        for (name, value) in request.headers {
            builder.header(name, value);
        }
        let exchange = pin!(async move {
            let response = spin_sdk::http::send::<_, IncomingResponse>(builder.build())
                .await
                .map_err(|error| classify(&error))?;
            let headers = response
                .headers()
                .entries()
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect();
            Ok(OutboundResponse {
                status: response.status(),
                headers,
                body: read_at_most(&response, limit).await,
            })
        });
        // spin-sdk 5.2 sends without wasi:http request options, so the timeout
        // is a race against a monotonic-clock deadline.
        let deadline = Deadline::after_millis(timeout_ms);
        match select(exchange, deadline).await {
            Either::Left((answer, _)) => answer,
            Either::Right(_) => Err(SendFailure::Timeout),
        }
    }

    /// Waits on a pollable that is ready at once: Spin's executor polls it
    /// with every other, and wakes all that are ready before this goes on.
    async fn yield_now(&self) {
        let mut subscribed = false;
        std::future::poll_fn(|context| {
            if subscribed {
                return Poll::Ready(());
            }
            subscribed = true;
            spin_executor::push_waker(
                monotonic_clock::subscribe_duration(0),
                context.waker().clone(),
            );
            Poll::Pending
        })
        .await;
    }
}

/// Up to `limit` bytes of a response's body; the rest is never read (the
/// stream is dropped), so a receiver that streams for ever costs nothing
/// past the limit. A body that breaks off is taken as what arrived.
async fn read_at_most(response: &IncomingResponse, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = pin!(response.take_body_stream());
    while body.len() < limit {
        match chunks.next().await {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(limit);
    body
}

/// A readable reason for a failed exchange.
/// A failed send: refused by the host's outbound policy, or failed.
fn classify(error: &spin_sdk::http::SendError) -> SendFailure {
    use spin_sdk::http::{ErrorCode, SendError};
    match error {
        SendError::Http(ErrorCode::DestinationIpProhibited | ErrorCode::HttpRequestDenied) => {
            SendFailure::Refused(describe(error))
        }
        _ => SendFailure::Failed(describe(error)),
    }
}

fn describe(error: &spin_sdk::http::SendError) -> String {
    use spin_sdk::http::SendError;
    match error {
        SendError::Http(code) => {
            use spin_sdk::http::ErrorCode;
            let reason = match code {
                ErrorCode::ConnectionRefused => "the connection was refused",
                ErrorCode::ConnectionTimeout => "the connection timed out",
                ErrorCode::ConnectionTerminated => "the connection was closed",
                ErrorCode::ConnectionReadTimeout | ErrorCode::ConnectionWriteTimeout => {
                    "the connection stalled"
                }
                ErrorCode::DnsTimeout | ErrorCode::DnsError(_) => "the host name did not resolve",
                ErrorCode::DestinationNotFound
                | ErrorCode::DestinationUnavailable
                | ErrorCode::DestinationIpUnroutable => "the host could not be reached",
                ErrorCode::DestinationIpProhibited | ErrorCode::HttpRequestDenied => {
                    "the host's outbound policy refused the target"
                }
                ErrorCode::TlsProtocolError
                | ErrorCode::TlsCertificateError
                | ErrorCode::TlsAlertReceived(_) => "the TLS handshake failed",
                _ => return format!("delivery failed: {code:?}"),
            };
            format!("delivery failed: {reason}")
        }
        SendError::Io(_) => "delivery failed: the connection broke off".into(),
        SendError::RequestConversion(_) | SendError::ResponseConversion(_) => {
            "delivery failed: the exchange was malformed".into()
        }
    }
}

/// Completes at a monotonic-clock instant, waking through Spin's executor.
struct Deadline {
    at: monotonic_clock::Instant,
}

impl Deadline {
    fn after_millis(millis: u64) -> Deadline {
        Deadline {
            at: monotonic_clock::now().saturating_add(millis.saturating_mul(1_000_000)),
        }
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if monotonic_clock::now() >= self.at {
            return Poll::Ready(());
        }
        spin_executor::push_waker(
            monotonic_clock::subscribe_instant(self.at),
            context.waker().clone(),
        );
        Poll::Pending
    }
}
